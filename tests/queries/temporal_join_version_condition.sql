-- Event-time temporal LEFT JOIN: a condition on the versioned side is checked on the version current at the row's time (an order whose current version fails it gets NULLs, not an older version that passes), as Flink does
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

SELECT o.order_id, o.currency, r.rate, r.update_time
FROM orders AS o
LEFT JOIN rates FOR SYSTEM_TIME AS OF o.order_time AS r
ON o.currency = r.currency AND r.rate < 1.13
