-- Top-N by RANK() over an updating result (totals per user and product) (final table) (beyond Flink, whose streaming mode refuses RANK and DENSE_RANK Top-Ns: the expected table is Flink's batch result)
-- compare: final
-- oracle: batch
CREATE TABLE Orders (
  order_id BIGINT,
  user_id STRING,
  product STRING,
  amount INT,
  price DECIMAL(10, 2),
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{{DATA}}/orders_cl.jsonl', 'format' = 'json');

SELECT * FROM (SELECT user_id, product, total, RANK() OVER (PARTITION BY product ORDER BY total DESC) AS rk FROM (SELECT user_id, product, SUM(amount) AS total FROM Orders WHERE amount IS NOT NULL GROUP BY user_id, product)) WHERE rk <= 1;
