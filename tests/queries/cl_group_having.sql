-- HAVING and a projection over an updating aggregate filter each change row
CREATE TABLE Orders (
  order_id BIGINT,
  user_id STRING,
  product STRING,
  amount INT,
  price DECIMAL(10, 2),
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{{DATA}}/orders_cl.jsonl', 'format' = 'json');

SELECT product, n * 10 AS n10 FROM (SELECT product, COUNT(*) AS n FROM Orders GROUP BY product) WHERE n >= 3;
