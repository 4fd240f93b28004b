-- Legacy group windows: GROUP BY sensor, TUMBLE(ts, size) with TUMBLE_START, TUMBLE_END (unaliased: EXPR$n), TUMBLE_ROWTIME and HAVING
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

SELECT sensor, TUMBLE_START(ts, INTERVAL '1' MINUTE), TUMBLE_END(ts, INTERVAL '1' MINUTE) AS wend,
  TUMBLE_ROWTIME(ts, INTERVAL '1' MINUTE) AS wtime, COUNT(*) AS cnt, SUM(reading) AS total
FROM sensors
GROUP BY TUMBLE(ts, INTERVAL '1' MINUTE), sensor
HAVING COUNT(*) > 1
