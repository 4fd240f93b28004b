-- ORDER BY a time attribute with LIMIT: Flink ranks the whole stream (an updating result); Vigil sorts by the watermark and keeps the first rows, insert-only, the same final table (rows of one time in arrival order)
-- compare: final
CREATE TABLE orders (
  order_id INT,
  currency STRING,
  amount INT,
  order_time TIMESTAMP(3),
  WATERMARK FOR order_time AS order_time - INTERVAL '5' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '{{DATA}}/tj_orders_shuffled.jsonl',
  'format' = 'json'
);

SELECT order_id, currency, amount, order_time FROM orders ORDER BY order_time LIMIT 4
