-- TUMBLE 1 min: aggregates over groups whose inputs are all NULL (SUM/AVG/MIN/MAX give NULL, COUNT gives 0) and COALESCE of the aggregate
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

SELECT window_start, window_end, sensor IS NULL AS null_sensor,
       COUNT(*) AS cnt, COUNT(status) AS cnt_status,
       SUM(CASE WHEN sensor IS NULL THEN `value` END) AS sum_null_sensor_value,
       MAX(CASE WHEN level > 100 THEN level END) AS max_none,
       AVG(CASE WHEN level > 100 THEN `value` END) AS avg_none,
       COALESCE(SUM(CASE WHEN level > 100 THEN reading END), -1) AS coalesced
FROM TABLE(TUMBLE(TABLE sensors, DESCRIPTOR(ts), INTERVAL '1' MINUTE))
GROUP BY window_start, window_end, sensor IS NULL
