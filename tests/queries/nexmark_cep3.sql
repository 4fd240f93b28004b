-- Nexmark CEP q3: A B* C WITHIN 5 s, a price drop (nexmark queries-cep/q3.sql)
CREATE TABLE bid (auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, url STRING,
  `dateTime` TIMESTAMP(3), extra STRING, WATERMARK FOR `dateTime` AS `dateTime` - INTERVAL '4' SECOND)
WITH ('connector' = 'filesystem', 'path' = '{{DATA}}/bids_cep.jsonl', 'format' = 'json');

SELECT * FROM bid MATCH_RECOGNIZE (PARTITION BY auction, bidder ORDER BY `dateTime`
  MEASURES C.`dateTime` AS drop_time, A.price - C.price AS drop_diff
  ONE ROW PER MATCH AFTER MATCH SKIP PAST LAST ROW PATTERN (A B* C) WITHIN INTERVAL '5' SECOND
  DEFINE B AS B.price > A.price - 50, C AS C.price < A.price - 50) MR
