-- The golden case tests/queries/tumble_out_of_order.sql read from Kafka and
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
  window_start TIMESTAMP(3),
  window_end TIMESTAMP(3),
  cnt BIGINT,
  total BIGINT,
  first_ts TIMESTAMP(3),
  last_ts TIMESTAMP(3)
) WITH (
  'connector' = 'kafka',
  'topic' = '{{OUT}}',
  'properties.bootstrap.servers' = '{{BROKERS}}',
  'format' = 'json'
);

INSERT INTO results
SELECT window_start, window_end, COUNT(*) AS cnt, SUM(reading) AS total, MIN(ts) AS first_ts, MAX(ts) AS last_ts
FROM TABLE(TUMBLE(TABLE sensors, DESCRIPTOR(ts), INTERVAL '5' SECONDS))
GROUP BY window_start, window_end
