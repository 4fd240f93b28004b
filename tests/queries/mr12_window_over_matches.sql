-- T-MR-12b: a TUMBLE window over MATCH_ROWTIME() of the matches (Flink ITCase testWindowedGroupingAppliedToMatchRecognize)
CREATE TABLE Ticker (
  symbol STRING,
  rowtime TIMESTAMP(3),
  price INT,
  tax INT,
  WATERMARK FOR rowtime AS rowtime - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{{DATA}}/mr_windows.jsonl', 'format' = 'json');

CREATE VIEW found AS
SELECT * FROM Ticker MATCH_RECOGNIZE (
  PARTITION BY symbol ORDER BY rowtime
  MEASURES A.price AS price, A.tax AS tax, MATCH_ROWTIME() AS matchRowtime
  AFTER MATCH SKIP PAST LAST ROW
  PATTERN (A)
  DEFINE A AS A.price > 0);

SELECT symbol, SUM(price) AS price, window_time, window_start
FROM TABLE(TUMBLE(TABLE found, DESCRIPTOR(matchRowtime), INTERVAL '3' SECOND))
GROUP BY symbol, window_start, window_end, window_time
