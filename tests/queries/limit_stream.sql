-- LIMIT on a stream: the first rows in arrival order, then nothing more
CREATE TABLE orders (
  order_id INT,
  currency STRING,
  amount INT,
  order_time TIMESTAMP(3)
) WITH (
  'connector' = 'filesystem',
  'path' = '{{DATA}}/tj_orders.jsonl',
  'format' = 'json'
);

SELECT order_id, currency FROM orders WHERE amount > 5 LIMIT 3
