-- TUMBLE 500 ms, millisecond window boundaries: the 10:00:59.999 row falls into [10:00:59.500, 10:01:00)
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

SELECT window_start, window_end, window_time, COUNT(*) AS cnt
FROM TABLE(TUMBLE(TABLE sensors, DESCRIPTOR(ts), INTERVAL '0.5' SECOND))
WHERE ts >= TIMESTAMP '2021-06-01 10:00:40' AND ts < TIMESTAMP '2021-06-01 10:01:05'
GROUP BY window_start, window_end, window_time
