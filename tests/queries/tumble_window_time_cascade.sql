-- Cascaded windows: 30 s TUMBLE per sensor in a view keeps window_time as rowtime, then a 2-minute TUMBLE over the view
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

CREATE VIEW per_sensor AS
SELECT sensor, window_start AS inner_start, window_time AS rowtime, COUNT(*) AS cnt, SUM(reading) AS total
FROM TABLE(TUMBLE(TABLE sensors, DESCRIPTOR(ts), INTERVAL '30' SECONDS))
GROUP BY sensor, window_start, window_end, window_time;

SELECT window_start, window_end, window_time, COUNT(*) AS inner_windows, SUM(cnt) AS cnt, SUM(total) AS total
FROM TABLE(TUMBLE(TABLE per_sensor, DESCRIPTOR(rowtime), INTERVAL '2' MINUTES))
GROUP BY window_start, window_end, window_time
