-- OVER aggregation without PARTITION BY and without a frame (RANGE UNBOUNDED PRECEDING): peers of one time share the running totals
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

SELECT id, ts, v, COUNT(*) OVER (ORDER BY ts) AS n, SUM(v) OVER (ORDER BY ts) AS s
FROM events
