-- CUMULATE step 1 min size 3 min per sensor: COUNT and SUM, window_time
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

SELECT sensor, window_start, window_end, window_time, COUNT(*) AS cnt, SUM(reading) AS total
FROM TABLE(CUMULATE(TABLE sensors, DESCRIPTOR(ts), INTERVAL '1' MINUTE, INTERVAL '3' MINUTE))
GROUP BY sensor, window_start, window_end, window_time
