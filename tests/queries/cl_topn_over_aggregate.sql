-- Top-N over an updating result (a GROUP BY): a row leaving the top lets the next one in
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

SELECT user_id, total, rn FROM (SELECT user_id, total, ROW_NUMBER() OVER (ORDER BY total DESC, user_id) AS rn FROM (SELECT user_id, SUM(amount) AS total FROM Orders WHERE user_id IS NOT NULL GROUP BY user_id)) WHERE rn <= 2;
