-- TUMBLE 1 min per sensor: STDDEV_POP, STDDEV_SAMP, VAR_POP, VAR_SAMP over DOUBLE (single-value groups give NULL for _SAMP)
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

SELECT sensor, window_start, window_end, COUNT(`value`) AS n,
       STDDEV_POP(`value`) AS sd_pop, STDDEV_SAMP(`value`) AS sd_samp,
       VAR_POP(`value`) AS v_pop, VAR_SAMP(`value`) AS v_samp
FROM TABLE(TUMBLE(TABLE sensors, DESCRIPTOR(ts), INTERVAL '1' MINUTE))
GROUP BY sensor, window_start, window_end
