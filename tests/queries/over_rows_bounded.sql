-- OVER aggregation, ROWS BETWEEN 2 PRECEDING AND CURRENT ROW per key in a WINDOW clause: SUM, COUNT, MIN, MAX, AVG (rows of one time in arrival order; NULL values)
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
  SUM(v) OVER w AS s, COUNT(v) OVER w AS c, COUNT(*) OVER w AS n, MIN(v) OVER w AS lo, MAX(v) OVER w AS hi, AVG(v) OVER w AS mean
FROM events
WINDOW w AS (PARTITION BY k ORDER BY ts ROWS BETWEEN 2 PRECEDING AND CURRENT ROW)
