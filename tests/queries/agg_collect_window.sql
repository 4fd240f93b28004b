-- COLLECT over window TVF windows: each window's multiset of values (NULLs left out), a MULTISET<STRING> written as Flink's JSON format writes it (each distinct value and its count)
-- oracle: nested
CREATE TABLE bids (
  auction BIGINT,
  bidder BIGINT,
  channel STRING,
  `dateTime` TIMESTAMP(3),
  WATERMARK FOR `dateTime` AS `dateTime` - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{{DATA}}/bid.jsonl', 'format' = 'json');
SELECT auction, window_start, COLLECT(CAST(bidder AS STRING)) AS bidders, COLLECT(channel) AS channels,
  COLLECT(CASE WHEN bidder > 2003 THEN channel END) AS late_channels
FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(`dateTime`), INTERVAL '5' SECOND))
GROUP BY auction, window_start, window_end;
