-- TUMBLE 1 min per sensor: AVG over BIGINT and INT (Flink returns the integer type, truncated toward zero; negatives included)
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

SELECT sensor, window_start, window_end,
       AVG(reading) AS avg_reading, AVG(level) AS avg_level,
       AVG(CAST(level AS DOUBLE)) AS avg_level_double
FROM TABLE(TUMBLE(TABLE sensors, DESCRIPTOR(ts), INTERVAL '1' MINUTE))
GROUP BY sensor, window_start, window_end
