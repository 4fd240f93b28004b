-- T-MR-08: DOWN{2,} UP with FIRST/LAST offsets and an expression in FIRST (Flink ITCase testLogicalOffsets)
CREATE TABLE Ticker (
  symbol STRING,
  tstamp TIMESTAMP(3),
  price INT,
  tax INT,
  WATERMARK FOR tstamp AS tstamp - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{{DATA}}/mr_offsets.jsonl', 'format' = 'json');

SELECT * FROM Ticker MATCH_RECOGNIZE (
  PARTITION BY symbol ORDER BY tstamp
  MEASURES FIRST(DOWN.tstamp) AS start_tstamp, LAST(DOWN.tstamp) AS bottom_tstamp,
           UP.tstamp AS end_tstamp, FIRST(DOWN.price + DOWN.tax + 1) AS bottom_total,
           UP.price + UP.tax AS end_total
  AFTER MATCH SKIP PAST LAST ROW
  PATTERN (DOWN{2,} UP)
  DEFINE DOWN AS price < LAST(DOWN.price, 1) OR LAST(DOWN.price, 1) IS NULL,
         UP AS price < FIRST(DOWN.price))
