-- TUMBLE 1 min: aggregates over expressions (CASE inside SUM/COUNT, arithmetic on aggregates, integer division of aggregates)
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
       SUM(CASE WHEN ok THEN 1 ELSE 0 END) AS ok_count,
       COUNT(CASE WHEN status = 'FAIL' THEN 1 END) AS fail_count,
       SUM(reading) / COUNT(reading) AS int_mean,
       SUM(reading) * 2 + 1 AS expr,
       MAX(`value`) - MIN(`value`) AS value_range
FROM TABLE(TUMBLE(TABLE sensors, DESCRIPTOR(ts), INTERVAL '1' MINUTE))
GROUP BY window_start, window_end
