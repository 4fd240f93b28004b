-- An aggregate over an updating aggregate takes back retracted rows
CREATE TABLE Orders (
  order_id BIGINT,
  user_id STRING,
  product STRING,
  amount INT,
  price DECIMAL(10, 2),
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{{DATA}}/orders_cl.jsonl', 'format' = 'json');

SELECT n, COUNT(*) AS users, MAX(total) AS biggest FROM (SELECT user_id, COUNT(*) AS n, SUM(amount) AS total FROM Orders GROUP BY user_id) GROUP BY n;
