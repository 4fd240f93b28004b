-- A number cast to a DECIMAL it does not fit is NULL (Flink's DecimalData), the other rows as usual
CREATE TABLE t (
  k STRING,
  v INT,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '{{DATA}}/decimal_overflow.jsonl',
  'format' = 'json'
);

SELECT k, v, CAST(CAST(v AS DECIMAL(10, 2)) * 10 AS DECIMAL(5, 2)) AS d, CAST(v AS DECIMAL(3, 0)) AS small, CAST(v AS DECIMAL(6, 1)) AS fits
FROM t
