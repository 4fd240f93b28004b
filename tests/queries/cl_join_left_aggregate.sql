-- Left join of a stream to an updating result: a user's padded row goes when its total arrives, its pair changes with the total
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

CREATE TABLE Users (
  user_id STRING,
  name STRING,
  region STRING,
  ts TIMESTAMP(3)
) WITH ('connector' = 'filesystem', 'path' = '{{DATA}}/users_cl.jsonl', 'format' = 'json');

SELECT u.user_id, u.name, t.total, t.n FROM Users u LEFT JOIN (SELECT user_id, SUM(amount) AS total, COUNT(*) AS n FROM Orders GROUP BY user_id) t ON u.user_id = t.user_id;
