-- FIRST_VALUE and LAST_VALUE in a streaming OVER aggregation over the partition so far
CREATE TABLE Orders (
  order_id BIGINT,
  user_id STRING,
  product STRING,
  amount INT,
  price DECIMAL(10, 2),
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{{DATA}}/orders_cl.jsonl', 'format' = 'json');

SELECT order_id, user_id, FIRST_VALUE(product) OVER w AS first_product, LAST_VALUE(product) OVER w AS last_product, FIRST_VALUE(amount) OVER w AS first_amount FROM Orders WINDOW w AS (PARTITION BY user_id ORDER BY ts);
