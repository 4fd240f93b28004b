-- Legacy group windows: GROUP BY HOP(ts, slide, size) over an aliased table, HOP_START and HOP_END
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

SELECT s.sensor, HOP_START(s.ts, INTERVAL '1' MINUTE, INTERVAL '2' MINUTE) AS wstart,
  HOP_END(s.ts, INTERVAL '1' MINUTE, INTERVAL '2' MINUTE) AS wend, MIN(s.reading) AS lo, MAX(s.reading) AS hi
FROM sensors AS s
GROUP BY s.sensor, HOP(s.ts, INTERVAL '1' MINUTE, INTERVAL '2' MINUTE)
