-- FINAL before a navigation or aggregate in MEASURES (a no-op with ONE ROW PER
-- MATCH, accepted by Flink), and MATCH_ROWTIME with its time column.
CREATE TABLE t (
  id STRING,
  v BIGINT,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '{{DATA}}/mr_held_rowtime.jsonl',
  'format' = 'json'
);

SELECT * FROM t MATCH_RECOGNIZE (
  PARTITION BY id
  ORDER BY ts
  MEASURES FINAL LAST(B.v) AS last_b, FINAL COUNT(B.v) AS bs, FINAL SUM(B.v) AS sum_b,
           FIRST(A.ts) AS a_ts, MATCH_ROWTIME(ts) AS mt
  ONE ROW PER MATCH
  AFTER MATCH SKIP PAST LAST ROW
  PATTERN (A B* C)
  DEFINE B AS B.v <= A.v + 10, C AS C.v > A.v + 10
);
