-- Nexmark CEP q1: A+ B with AVG in DEFINE, SKIP PAST LAST ROW (nexmark queries-cep/q1.sql)
CREATE TABLE bid (auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, url STRING,
  `dateTime` TIMESTAMP(3), extra STRING, WATERMARK FOR `dateTime` AS `dateTime` - INTERVAL '4' SECOND)
WITH ('connector' = 'filesystem', 'path' = '{{DATA}}/bids_cep.jsonl', 'format' = 'json');

SELECT * FROM bid MATCH_RECOGNIZE (PARTITION BY auction, bidder ORDER BY `dateTime`
  MEASURES FIRST(A.`dateTime`) AS start_ts, LAST(A.`dateTime`) AS end_ts, AVG(A.price) AS avgp
  ONE ROW PER MATCH AFTER MATCH SKIP PAST LAST ROW PATTERN (A+ B) DEFINE A AS AVG(A.price) < 10000) MR
