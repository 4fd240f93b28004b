-- UNION ALL of two sources as a plain projection (no window)
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

SELECT user_name, url, ts FROM clicks_a WHERE url <> '/home'
UNION ALL
SELECT user_name, url, ts FROM clicks_b WHERE url <> '/cart'
