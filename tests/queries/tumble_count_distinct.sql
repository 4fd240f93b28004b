-- TUMBLE 1 min: COUNT(DISTINCT) over strings (NULLs not counted) and booleans, COUNT(DISTINCT) vs COUNT
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
       COUNT(DISTINCT sensor) AS distinct_sensors,
       COUNT(DISTINCT status) AS distinct_status,
       COUNT(DISTINCT ok) AS distinct_ok,
       COUNT(status) AS cnt_status
FROM TABLE(TUMBLE(TABLE sensors, DESCRIPTOR(ts), INTERVAL '1' MINUTE))
GROUP BY window_start, window_end
