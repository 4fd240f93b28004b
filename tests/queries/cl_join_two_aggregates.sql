-- Regular join of two updating results (GROUP BYs): a retracted row takes its pairs back
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

SELECT a.user_id, a.total, b.big FROM (SELECT user_id, SUM(amount) AS total FROM Orders GROUP BY user_id) a JOIN (SELECT user_id, COUNT(*) AS big FROM Orders WHERE amount >= 3 GROUP BY user_id) b ON a.user_id = b.user_id;
