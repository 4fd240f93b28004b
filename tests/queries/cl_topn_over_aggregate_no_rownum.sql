-- Top-N per partition over an updating result, without the row number
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

SELECT product, user_id, total FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY product ORDER BY total DESC, user_id) AS rn FROM (SELECT product, user_id, SUM(amount) AS total FROM Orders WHERE user_id IS NOT NULL AND amount IS NOT NULL GROUP BY product, user_id)) WHERE rn <= 2;
