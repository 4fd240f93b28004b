-- T-MR-10: aggregates over nulls, COUNT(*) and COUNT(col) (Flink ITCase testAggregatesWithNullInputs)
CREATE TABLE events (
  id INT,
  name STRING,
  price INT,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{{DATA}}/mr_null_aggs.jsonl', 'format' = 'json');

SELECT * FROM events MATCH_RECOGNIZE (
  ORDER BY ts
  MEASURES SUM(A.price) AS sumA, COUNT(A.id) AS countAId, COUNT(A.price) AS countAPrice,
           COUNT(*) AS countAll, COUNT(price) AS countAllPrice, LAST(id) AS endId
  AFTER MATCH SKIP PAST LAST ROW
  PATTERN (A+ C)
  DEFINE A AS SUM(A.price) < 30, C AS C.name = 'c')
