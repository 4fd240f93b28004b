-- Event-time temporal join against an upsert-kafka table whose time attribute is the record's timestamp: a tombstone has a time then, and ends its key's row from it on (a later record starts a new one)
CREATE TABLE orders (
  id STRING,
  currency STRING,
  amount INT,
  ts TIMESTAMP(3),
  ots AS CAST(ts AS TIMESTAMP_LTZ(3)),
  WATERMARK FOR ots AS ots - INTERVAL '1' HOUR
) WITH (
  'connector' = 'filesystem',
  'path' = '{{DATA}}/cdc_orders.csv',
  'format' = 'csv'
);
CREATE TABLE rates (
  currency STRING,
  region STRING,
  rate DECIMAL(10, 4),
  rt TIMESTAMP_LTZ(3) METADATA FROM 'timestamp',
  PRIMARY KEY (currency) NOT ENFORCED,
  WATERMARK FOR rt AS rt - INTERVAL '1' HOUR
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
LEFT JOIN rates FOR SYSTEM_TIME AS OF o.ots AS r ON o.currency = r.currency;
