-- TUMBLE TVF projection (no aggregation) with WHERE on input and window columns and expressions over window_start
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

SELECT sensor, ts, reading, window_start, window_end, window_time,
       TIMESTAMPDIFF(SECOND, window_start, ts) AS secs_into_window
FROM TABLE(TUMBLE(TABLE sensors, DESCRIPTOR(ts), INTERVAL '1' MINUTE))
WHERE reading > 10 AND window_start >= TIMESTAMP '2021-06-01 10:01:00'
