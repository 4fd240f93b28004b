-- Projection: CASE, CAST, arithmetic incl. integer division and MOD (negative operands), IN, NOT IN, BETWEEN, IS NULL, COALESCE
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

SELECT ts, sensor,
       CASE WHEN level > 3 THEN 'high' WHEN level < 0 THEN 'neg' ELSE 'low' END AS bucket,
       CAST(reading AS INT) AS reading_int,
       CAST(`value` AS BIGINT) AS value_trunc,
       CAST(level AS STRING) AS level_str,
       CAST(level AS DOUBLE) / 4 AS quarter,
       level / 2 AS half_int,
       MOD(level, 3) AS mod3,
       reading * 3 - level AS arith,
       sensor IN ('s1', 's3') AS in_set,
       sensor NOT IN ('s1', 's3') AS not_in_set,
       level BETWEEN 0 AND 4 AS between_0_4,
       status IS NULL AS status_null,
       COALESCE(sensor, status, 'none') AS coalesced
FROM sensors
