-- Event-time temporal join (FOR SYSTEM_TIME AS OF o.order_time) with a versioned table (PRIMARY KEY and WATERMARK): each order gets the rate current at its time (a version at the same time counts); orders before any version of their currency, or of a currency without rates, are dropped
CREATE TABLE orders (
  order_id INT,
  currency STRING,
  amount INT,
  order_time TIMESTAMP(3),
  WATERMARK FOR order_time AS order_time - INTERVAL '5' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '{{DATA}}/tj_orders.jsonl',
  'format' = 'json'
);

CREATE TABLE rates (
  currency STRING,
  rate DOUBLE,
  update_time TIMESTAMP(3),
  WATERMARK FOR update_time AS update_time - INTERVAL '5' SECOND,
  PRIMARY KEY (currency) NOT ENFORCED
) WITH (
  'connector' = 'filesystem',
  'path' = '{{DATA}}/tj_rates.jsonl',
  'format' = 'json'
);

SELECT o.order_id, o.currency, o.amount * r.rate AS total, r.rate, r.update_time, o.order_time
FROM orders AS o
JOIN rates FOR SYSTEM_TIME AS OF o.order_time AS r
ON o.currency = r.currency
