-- HOP slide 1 min size 2 min per sensor: COUNT, MIN, MAX of readings
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

SELECT sensor, window_start, window_end, COUNT(*) AS cnt, MIN(reading) AS lo, MAX(reading) AS hi
FROM TABLE(HOP(TABLE sensors, DESCRIPTOR(ts), INTERVAL '1' MINUTE, INTERVAL '2' MINUTES))
GROUP BY sensor, window_start, window_end
