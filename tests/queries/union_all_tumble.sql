-- UNION ALL of two sources with the same schema in a view feeding a 10 s TUMBLE
CREATE TABLE clicks_a (
  ts TIMESTAMP(3),
  user_name STRING,
  url STRING,
  WATERMARK FOR ts AS ts - INTERVAL '3' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '{{DATA}}/clicks_a.jsonl',
  'format' = 'json'
);

CREATE TABLE clicks_b (
  ts TIMESTAMP(3),
  user_name STRING,
  url STRING,
  WATERMARK FOR ts AS ts - INTERVAL '3' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '{{DATA}}/clicks_b.jsonl',
  'format' = 'json'
);

CREATE VIEW clicks AS
SELECT ts, user_name, url, 'a' AS origin FROM clicks_a
UNION ALL
SELECT ts, user_name, url, 'b' AS origin FROM clicks_b;

SELECT window_start, window_end, COUNT(*) AS clicks, COUNT(DISTINCT user_name) AS users,
       SUM(CASE WHEN origin = 'a' THEN 1 ELSE 0 END) AS from_a
FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '10' SECONDS))
GROUP BY window_start, window_end
