-- The golden case tests/queries/hop_partitioned_count.sql read from Kafka and
-- written to Kafka: {{BROKERS}}, {{IN}} and {{OUT}} are filled in by tests/kafka_tansu.rs.
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
  'connector' = 'kafka',
  'topic' = '{{IN}}',
  'properties.bootstrap.servers' = '{{BROKERS}}',
  'scan.startup.mode' = 'earliest-offset',
  'scan.bounded.mode' = 'latest-offset',
  'format' = 'json'
);

CREATE TABLE results (
  sensor STRING,
  window_start TIMESTAMP(3),
  window_end TIMESTAMP(3),
  cnt BIGINT,
  lo BIGINT,
  hi BIGINT
) WITH (
  'connector' = 'kafka',
  'topic' = '{{OUT}}',
  'properties.bootstrap.servers' = '{{BROKERS}}',
  'format' = 'json'
);

INSERT INTO results
SELECT sensor, window_start, window_end, COUNT(*) AS cnt, MIN(reading) AS lo, MAX(reading) AS hi
FROM TABLE(HOP(TABLE sensors, DESCRIPTOR(ts), INTERVAL '1' MINUTE, INTERVAL '2' MINUTES))
GROUP BY sensor, window_start, window_end
