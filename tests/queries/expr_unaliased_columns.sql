-- Projection with unaliased expressions: shows the column names Flink assigns (EXPR$n) next to plain column references
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

SELECT sensor, reading + 1, UPPER(status), level * 2 AS doubled, CAST(ok AS INT)
FROM sensors
WHERE reading IS NOT NULL AND reading < 12
