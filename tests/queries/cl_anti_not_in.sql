-- NOT IN without NULLs in the subquery: a left row with a NULL value is out (NULL NOT IN a non-empty set is not true), the others as in an anti join (final table)
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

SELECT order_id, user_id FROM Orders WHERE user_id NOT IN (SELECT user_id FROM Users WHERE user_id IS NOT NULL AND region = 'EU');
