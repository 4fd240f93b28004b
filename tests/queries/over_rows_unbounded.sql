-- OVER aggregation, ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW per key: running COUNT, SUM, MIN
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

SELECT k, id, v,
  COUNT(*) OVER w AS n, SUM(v) OVER w AS s, MIN(v) OVER w AS lo
FROM events
WINDOW w AS (PARTITION BY k ORDER BY ts ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
