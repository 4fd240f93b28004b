-- FIRST_VALUE and LAST_VALUE over a bounded ROWS frame: rows leave the frame as it slides
CREATE TABLE Orders (
  order_id BIGINT,
  user_id STRING,
  product STRING,
  amount INT,
  price DECIMAL(10, 2),
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{{DATA}}/orders_cl.jsonl', 'format' = 'json');

SELECT order_id, user_id, FIRST_VALUE(amount) OVER w AS first3, LAST_VALUE(price) OVER w AS last3, FIRST_VALUE(product) OVER w AS first_product FROM Orders WINDOW w AS (PARTITION BY user_id ORDER BY ts ROWS BETWEEN 2 PRECEDING AND CURRENT ROW);
