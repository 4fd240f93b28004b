-- A regular join of an append-only stream with a CDC table: an update of a rate retracts the pairs it made and makes new ones; a delete takes them back
-- compare: final
CREATE TABLE orders (
  id STRING,
  currency STRING,
  amount INT,
  ts TIMESTAMP(3)
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
  PRIMARY KEY (currency) NOT ENFORCED
) WITH (
  'connector' = 'filesystem',
  'path' = '{{DATA}}/cdc_rates.json',
  'format' = 'debezium-json'
);
SELECT o.id, o.currency, o.amount * r.rate AS converted, r.region
FROM orders AS o JOIN rates AS r ON o.currency = r.currency;
