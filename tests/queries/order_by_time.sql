-- ORDER BY a time attribute ascending (Flink's temporal sort): rows come out in time order once the watermark passes them, rows of one time ordered by the further sort keys
-- compare: ordered
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

SELECT order_id, currency, amount, order_time FROM orders ORDER BY order_time, amount DESC
