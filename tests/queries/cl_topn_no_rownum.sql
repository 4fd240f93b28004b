-- Top-N per key without the row number
CREATE TABLE Orders (
  order_id BIGINT,
  user_id STRING,
  product STRING,
  amount INT,
  price DECIMAL(10, 2),
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{{DATA}}/orders_cl.jsonl', 'format' = 'json');

SELECT product, order_id, amount FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY product ORDER BY amount ASC) AS rn FROM Orders) WHERE rn <= 3;
