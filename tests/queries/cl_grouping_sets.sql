-- GROUPING SETS without a window: an updating aggregation per set, as Flink runs it (rows expanded per set); a NULL key and a key left out of a set stay apart (final table)
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

SELECT user_id, product, COUNT(*) AS n, SUM(amount) AS total, GROUPING(user_id) AS g_user FROM Orders GROUP BY GROUPING SETS ((user_id), (product), (user_id, product), ());
