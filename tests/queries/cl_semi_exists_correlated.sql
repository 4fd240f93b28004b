-- EXISTS with a correlated subquery and a condition beyond the key: a semi join with a residual condition
CREATE TABLE Orders (
  order_id BIGINT,
  user_id STRING,
  product STRING,
  amount INT,
  price DECIMAL(10, 2),
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{{DATA}}/orders_cl.jsonl', 'format' = 'json');

CREATE TABLE Users (
  user_id STRING,
  name STRING,
  region STRING,
  ts TIMESTAMP(3)
) WITH ('connector' = 'filesystem', 'path' = '{{DATA}}/users_cl.jsonl', 'format' = 'json');

SELECT o.order_id, o.user_id FROM Orders o WHERE EXISTS (SELECT 1 FROM Users u WHERE u.user_id = o.user_id AND u.region <> 'EU' AND o.amount > 1);
