-- OVER aggregation, RANGE BETWEEN INTERVAL '10' SECOND PRECEDING AND CURRENT ROW per key: rows of the same time are peers, the lower bound inclusive
CREATE TABLE events (
  ts TIMESTAMP(3),
  k STRING,
  v INT,
  id INT,
  WATERMARK FOR ts AS ts - INTERVAL '10' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '{{DATA}}/over_events.jsonl',
  'format' = 'json'
);

SELECT k, id, ts, v,
  SUM(v) OVER (PARTITION BY k ORDER BY ts RANGE BETWEEN INTERVAL '10' SECOND PRECEDING AND CURRENT ROW) AS s,
  COUNT(*) OVER (PARTITION BY k ORDER BY ts RANGE BETWEEN INTERVAL '10' SECOND PRECEDING AND CURRENT ROW) AS n,
  MAX(v) OVER (PARTITION BY k ORDER BY ts RANGE BETWEEN INTERVAL '10' SECOND PRECEDING AND CURRENT ROW) AS hi
FROM events
