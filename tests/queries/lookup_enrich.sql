-- Lookup join (beyond Flink's filesystem connector): orders enriched with their user from a file table
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
SELECT o.order_id, o.amount, u.name, u.region FROM Orders AS o JOIN Users FOR SYSTEM_TIME AS OF o.proc AS u ON o.user_id = u.user_id WHERE u.region <> 'US';
