-- Flink's filesystem tables cannot be looked up: a regular LEFT join over the static table has the same final table
CREATE TABLE Orders (
  order_id BIGINT,
  user_id STRING,
  product STRING,
  amount INT,
  price DECIMAL(10, 2),
  ts TIMESTAMP(3)
) WITH ('connector' = 'filesystem', 'path' = '{{DATA}}/orders_cl.jsonl', 'format' = 'json');
CREATE TABLE Users (
  user_id STRING,
  name STRING,
  region STRING,
  ts TIMESTAMP(3)
) WITH ('connector' = 'filesystem', 'path' = '{{DATA}}/users_cl.jsonl', 'format' = 'json');
SELECT o.order_id, u.name, UPPER(u.region) AS r FROM Orders AS o LEFT JOIN Users AS u ON o.user_id = u.user_id AND o.amount > 1 AND u.region <> 'US';
