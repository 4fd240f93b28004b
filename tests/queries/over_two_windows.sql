-- Beyond Flink: two different OVER windows in one SELECT (Flink refuses them; its rows come from the join of one query per window in flink/)
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
  SUM(v) OVER (PARTITION BY k ORDER BY ts ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS s2,
  COUNT(*) OVER (ORDER BY ts RANGE BETWEEN INTERVAL '5' SECOND PRECEDING AND CURRENT ROW) AS n5
FROM events
