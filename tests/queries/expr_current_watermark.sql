-- CURRENT_WATERMARK in a filter that drops late rows, over input in time order (no row is late, so Flink's timing-dependent watermarks and Vigil's agree; late rows: tests/own_expectations.rs)
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

SELECT order_id, amount FROM orders
WHERE CURRENT_WATERMARK(order_time) IS NULL OR order_time > CURRENT_WATERMARK(order_time)
