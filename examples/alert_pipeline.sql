-- An alert pipeline: sensor readings from Kafka, bad records to a dead-letter topic,
-- overheating sensors (1-minute average above 80 °C) POSTed to a webhook as CloudEvents,
-- undeliverable alerts to a dead-letter file. Run with checkpoints so that alerts not
-- yet delivered survive a restart:  vigil run --state-dir state/ examples/alert_pipeline.sql
CREATE TABLE readings (
  sensor_id STRING,
  temperature DOUBLE,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
) WITH (
  'connector' = 'kafka',
  'topic' = 'sensor-readings',
  'properties.bootstrap.servers' = 'localhost:9092',
  'properties.group.id' = 'alerts',
  'scan.startup.mode' = 'group-offsets',
  'properties.auto.offset.reset' = 'earliest',
  'format' = 'json',
  'dlq.connector' = 'kafka',
  'dlq.topic' = 'sensor-readings-dlq',
  'dlq.properties.bootstrap.servers' = 'localhost:9092'
);

CREATE TABLE pager (
  sensor_id STRING,
  window_end TIMESTAMP(3),
  avg_temperature DOUBLE
) WITH (
  'connector' = 'webhook',
  'url' = 'http://localhost:8080/alerts',
  'format' = 'cloudevents',
  'cloudevents.type' = 'com.example.sensor.overheating',
  'timeout' = '5 s',
  'sink.dlq.connector' = 'filesystem',
  'sink.dlq.path' = 'dead-letters/'
);

INSERT INTO pager
SELECT sensor_id, window_end, AVG(temperature)
FROM TABLE(TUMBLE(TABLE readings, DESCRIPTOR(ts), INTERVAL '1' MINUTE))
GROUP BY sensor_id, window_start, window_end
HAVING AVG(temperature) > 80;
