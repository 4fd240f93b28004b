-- Flink's formulation of over_two_windows: each window in a query of its own, joined on the unique id
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

SELECT a.k, a.id, a.v, a.s2, b.n5
FROM (SELECT k, id, v, SUM(v) OVER (PARTITION BY k ORDER BY ts ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS s2 FROM events) AS a
JOIN (SELECT id, COUNT(*) OVER (ORDER BY ts RANGE BETWEEN INTERVAL '5' SECOND PRECEDING AND CURRENT ROW) AS n5 FROM events) AS b
ON a.id = b.id
