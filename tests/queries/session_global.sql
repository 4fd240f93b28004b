-- SESSION gap 30 s without PARTITION BY: one stream-wide session sequence
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

SELECT window_start, window_end, COUNT(*) AS cnt, COUNT(DISTINCT sensor) AS sensors, MAX(`value`) AS max_value
FROM TABLE(SESSION(TABLE sensors, DESCRIPTOR(ts), INTERVAL '30' SECONDS))
GROUP BY window_start, window_end
