-- IoT: a sensor whose average temperature over 10 seconds is above 80 °C is failing.
-- Part of `vigil demo`, which produces the readings into its embedded Kafka broker.
SET 'table.exec.source.idle-timeout' = '5 s';

CREATE TABLE readings (
  sensor_id STRING,
  temperature DOUBLE,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
) WITH (
  'connector' = 'kafka',
  'topic' = 'sensor-readings',
  'properties.bootstrap.servers' = 'embedded',
  'properties.group.id' = 'vigil-demo-sensors',
  'scan.startup.mode' = 'earliest-offset',
  'format' = 'json'
);

CREATE TABLE overheating (
  sensor_id STRING,
  window_start TIMESTAMP(3),
  window_end TIMESTAMP(3),
  avg_temperature DOUBLE,
  readings BIGINT
) WITH ('connector' = 'print', 'print-identifier' = 'OVERHEATING');

INSERT INTO overheating
SELECT sensor_id, window_start, window_end, ROUND(AVG(temperature), 1), COUNT(*)
FROM TABLE(TUMBLE(TABLE readings, DESCRIPTOR(ts), INTERVAL '10' SECOND))
GROUP BY window_start, window_end, sensor_id
HAVING AVG(temperature) > 80;
