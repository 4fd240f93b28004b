-- Top-N by DENSE_RANK() without the rank in the output: every row among the two best amounts of its user (final table) (beyond Flink, whose streaming mode refuses RANK and DENSE_RANK Top-Ns: the expected table is Flink's batch result)
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

SELECT order_id, user_id, amount FROM (SELECT order_id, user_id, amount, DENSE_RANK() OVER (PARTITION BY user_id ORDER BY amount DESC) AS dr FROM Orders WHERE amount IS NOT NULL) WHERE dr <= 2;
