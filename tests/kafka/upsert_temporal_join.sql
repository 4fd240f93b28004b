-- Event-time temporal join against an upsert-kafka table: a tombstone deletes the key's row with the values (and time) of the row it deletes, as Flink's ChangelogNormalize emits it, so it replaces that version; both watermarks lag an hour so that every version is in before any order is joined
CREATE TABLE orders (
  id STRING,
  currency STRING,
  amount INT,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' HOUR
) WITH (
  'connector' = 'filesystem',
  'path' = '{{DATA}}/cdc_orders.csv',
  'format' = 'csv'
);
CREATE TABLE rates (
  currency STRING,
  region STRING,
  rate DECIMAL(10, 4),
  ts TIMESTAMP(3),
  PRIMARY KEY (currency) NOT ENFORCED,
  WATERMARK FOR ts AS ts - INTERVAL '1' HOUR
) WITH (
  'connector' = 'upsert-kafka',
  'topic' = '{{TOPIC}}',
  'properties.bootstrap.servers' = '{{BROKERS}}',
  'key.format' = 'json',
  'value.format' = 'json',
  'scan.bounded.mode' = 'latest-offset'
);
SELECT o.id, o.currency, o.amount, r.rate, r.region, o.ts
FROM orders AS o
LEFT JOIN rates FOR SYSTEM_TIME AS OF o.ts AS r ON o.currency = r.currency;
