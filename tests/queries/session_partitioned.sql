-- SESSION gap 30 s PARTITION BY sensor (NULL sensor is its own partition), out-of-order input within the watermark
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

SELECT sensor, window_start, window_end, window_time, COUNT(*) AS cnt, SUM(`value`) AS total
FROM TABLE(SESSION(TABLE sensors PARTITION BY sensor, DESCRIPTOR(ts), INTERVAL '30' SECONDS))
GROUP BY sensor, window_start, window_end, window_time
