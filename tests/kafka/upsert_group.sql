-- GROUP BY over an upsert-kafka table: an upsert moves its row between groups, a tombstone takes it out
-- compare: final
CREATE TABLE rates (
  currency STRING,
  region STRING,
  rate DECIMAL(10, 4),
  ts TIMESTAMP(3),
  PRIMARY KEY (currency) NOT ENFORCED
) WITH (
  'connector' = 'upsert-kafka',
  'topic' = '{{TOPIC}}',
  'properties.bootstrap.servers' = '{{BROKERS}}',
  'key.format' = 'json',
  'value.format' = 'json',
  'scan.bounded.mode' = 'latest-offset'
);
SELECT region, COUNT(*) AS currencies, SUM(rate) AS total, MAX(ts) AS latest
FROM rates
GROUP BY region;
