-- WHERE with three-valued logic: NOT, OR with NULLs, IS TRUE / IS NOT FALSE on a nullable BOOLEAN, <> on NULL
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

SELECT ts, sensor, status, ok
FROM sensors
WHERE (ok IS NOT FALSE AND status <> 'OK') OR (sensor IS NULL AND NOT (reading > 3))
