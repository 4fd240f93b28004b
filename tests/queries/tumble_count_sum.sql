-- TUMBLE 1 min per sensor (NULL key is a group): COUNT(*), COUNT(col) skipping NULLs, SUM over DOUBLE/BIGINT/INT with NULLs, window_time
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

SELECT sensor, window_start, window_end, window_time,
       COUNT(*) AS cnt_all, COUNT(`value`) AS cnt_value, COUNT(reading) AS cnt_reading,
       SUM(`value`) AS sum_value, SUM(reading) AS sum_reading, SUM(level) AS sum_level
FROM TABLE(TUMBLE(TABLE sensors, DESCRIPTOR(ts), INTERVAL '1' MINUTE))
GROUP BY sensor, window_start, window_end, window_time
