-- TUMBLE 2 min: STDDEV/VAR over BIGINT (result type follows the argument type) and over the same column cast to DOUBLE
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
       VAR_POP(reading) AS var_pop_int, VAR_SAMP(reading) AS var_samp_int,
       STDDEV_POP(reading) AS sd_pop_int, STDDEV_SAMP(reading) AS sd_samp_int,
       VAR_POP(CAST(reading AS DOUBLE)) AS var_pop_dbl, STDDEV_SAMP(CAST(reading AS DOUBLE)) AS sd_samp_dbl
FROM TABLE(TUMBLE(TABLE sensors, DESCRIPTOR(ts), INTERVAL '2' MINUTE))
GROUP BY window_start, window_end
