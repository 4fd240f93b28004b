-- ROLLUP without a window over an expression key (final table)
-- compare: final
CREATE TABLE Orders (
  order_id BIGINT,
  user_id STRING,
  product STRING,
  amount INT,
  price DECIMAL(10, 2),
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{{DATA}}/orders_cl.jsonl', 'format' = 'json');

SELECT user_id, UPPER(product) AS p, SUM(amount) AS total FROM Orders GROUP BY ROLLUP (user_id, UPPER(product));
