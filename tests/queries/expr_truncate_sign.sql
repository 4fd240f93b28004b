-- TRUNCATE (digits cut, not rounded), SIGN, and LOCALTIMESTAMP
CREATE TABLE Orders (
  order_id BIGINT,
  user_id STRING,
  product STRING,
  amount INT,
  price DECIMAL(10, 2),
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{{DATA}}/orders_cl.jsonl', 'format' = 'json');

SELECT order_id, TRUNCATE(price, 1) AS t1, TRUNCATE(price) AS t0, TRUNCATE(-2.57, 1) AS neg, SIGN(amount - 3) AS s, SIGN(price - 2) AS sp, LOCALTIMESTAMP IS NOT NULL AS has_now FROM Orders;
