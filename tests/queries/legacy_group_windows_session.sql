-- Legacy group windows: GROUP BY sensor, SESSION(ts, gap): one session per sensor, SESSION_START and SESSION_END
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

SELECT sensor, SESSION_START(ts, INTERVAL '30' SECOND) AS sstart, SESSION_END(ts, INTERVAL '30' SECOND) AS send,
  COUNT(*) AS cnt
FROM sensors
GROUP BY sensor, SESSION(ts, INTERVAL '30' SECOND)
