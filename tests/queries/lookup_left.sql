-- Lookup LEFT join with a condition on both sides: unmatched orders padded with NULLs
-- compare: final
CREATE TABLE Orders (
  order_id BIGINT,
  user_id STRING,
  product STRING,
  amount INT,
  price DECIMAL(10, 2),
  ts TIMESTAMP(3),
  proc AS PROCTIME()
) WITH ('connector' = 'filesystem', 'path' = '{{DATA}}/orders_cl.jsonl', 'format' = 'json');
CREATE TABLE Users (
  user_id STRING,
  name STRING,
  region STRING,
  ts TIMESTAMP(3)
) WITH ('connector' = 'filesystem', 'path' = '{{DATA}}/users_cl.jsonl', 'format' = 'json');
SELECT o.order_id, u.name, UPPER(u.region) AS r FROM Orders AS o LEFT JOIN Users FOR SYSTEM_TIME AS OF o.proc AS u ON o.user_id = u.user_id AND o.amount > 1 AND u.region <> 'US';
