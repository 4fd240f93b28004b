-- Full join of two updating results with a residual condition: pairs come and go as both sides change
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

SELECT a.user_id AS a_user, a.total, b.user_id AS b_user, b.n FROM (SELECT user_id, SUM(amount) AS total FROM Orders GROUP BY user_id) a FULL JOIN (SELECT user_id, COUNT(*) AS n FROM Orders GROUP BY user_id) b ON a.user_id = b.user_id AND a.total > 3 * b.n;
