-- TUMBLE 5 s over input that is up to 2 s out of order (inside the 5 s watermark delay): no row is dropped
CREATE TABLE sensors (
  ts TIMESTAMP(3),
  sensor STRING,
  `value` DOUBLE,
  reading BIGINT,
  level INT,
  status STRING,
  ok BOOLEAN,
  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '{{DATA}}/sensors.jsonl',
  'format' = 'json'
);

SELECT window_start, window_end, COUNT(*) AS cnt, SUM(reading) AS total, MIN(ts) AS first_ts, MAX(ts) AS last_ts
FROM TABLE(TUMBLE(TABLE sensors, DESCRIPTOR(ts), INTERVAL '5' SECONDS))
GROUP BY window_start, window_end
