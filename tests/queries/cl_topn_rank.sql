-- Top-N by RANK(): ties share a rank and the next rank skips, so the top 2 may hold more than 2 rows (final table) (beyond Flink, whose streaming mode refuses RANK and DENSE_RANK Top-Ns: the expected table is Flink's batch result)
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

SELECT * FROM (SELECT order_id, user_id, amount, RANK() OVER (PARTITION BY user_id ORDER BY amount DESC) AS rk FROM Orders WHERE amount IS NOT NULL) WHERE rk <= 2;
