-- Event-time temporal join against a CDC table (a versioned table): each order takes the rate current at its time; a delete (at its before-image's time, as Flink places it) ends the key's row, a later create starts a new one; both watermarks lag an hour so that every change is in before any order is joined
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
  'connector' = 'filesystem',
  'path' = '{{DATA}}/cdc_rates.json',
  'format' = 'debezium-json'
);
SELECT o.id, o.currency, o.amount, r.rate, r.region, o.ts
FROM orders AS o
LEFT JOIN rates FOR SYSTEM_TIME AS OF o.ts AS r ON o.currency = r.currency;
