-- WHERE filter before windowing (IN, LIKE, BETWEEN, IS NOT NULL, boolean) then TUMBLE 1 min
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

SELECT sensor, window_start, window_end, COUNT(*) AS cnt, SUM(`value`) AS total
FROM TABLE(TUMBLE(TABLE sensors, DESCRIPTOR(ts), INTERVAL '1' MINUTE))
WHERE sensor IN ('s1', 's2') AND status LIKE '%K%' AND level BETWEEN -3 AND 7 AND `value` IS NOT NULL AND ok
GROUP BY sensor, window_start, window_end
