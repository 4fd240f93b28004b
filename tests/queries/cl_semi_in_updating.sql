-- IN over an updating subquery (a GROUP BY with HAVING): left rows come and go as users enter and leave it (final table)
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

SELECT order_id, user_id FROM Orders WHERE user_id IN (SELECT user_id FROM Orders GROUP BY user_id HAVING SUM(amount) > 10);
