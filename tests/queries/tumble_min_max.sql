-- TUMBLE 1 min: MIN/MAX over DOUBLE, BIGINT, INT, STRING, BOOLEAN and TIMESTAMP (NULLs ignored)
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

SELECT window_start, window_end,
       MIN(`value`) AS min_value, MAX(`value`) AS max_value,
       MIN(reading) AS min_reading, MAX(reading) AS max_reading,
       MIN(level) AS min_level, MAX(level) AS max_level,
       MIN(status) AS min_status, MAX(status) AS max_status,
       MIN(sensor) AS min_sensor, MAX(sensor) AS max_sensor,
       MIN(ok) AS min_ok, MAX(ok) AS max_ok,
       MIN(ts) AS first_ts, MAX(ts) AS last_ts
FROM TABLE(TUMBLE(TABLE sensors, DESCRIPTOR(ts), INTERVAL '1' MINUTE))
GROUP BY window_start, window_end
