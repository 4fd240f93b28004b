-- Window over a CREATE VIEW that filters and derives columns (rowtime passes through the view)
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

CREATE VIEW clean AS
SELECT ts, COALESCE(sensor, 'unknown') AS sensor_name, `value` * 2 AS doubled, UPPER(TRIM(status)) AS st
FROM sensors
WHERE `value` IS NOT NULL;

SELECT sensor_name, st, window_start, window_end, COUNT(*) AS cnt, SUM(doubled) AS sum_doubled
FROM TABLE(TUMBLE(TABLE clean, DESCRIPTOR(ts), INTERVAL '2' MINUTES))
GROUP BY sensor_name, st, window_start, window_end
