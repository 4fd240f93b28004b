-- Top-1 by a value (not the time attribute)
CREATE TABLE Orders (
  order_id BIGINT,
  user_id STRING,
  product STRING,
  amount INT,
  price DECIMAL(10, 2),
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{{DATA}}/orders_cl.jsonl', 'format' = 'json');

SELECT user_id, order_id, price FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY price DESC, order_id ASC) AS rn FROM Orders) WHERE rn = 1;
