-- Top-1 over a left join (an updating result): the best order per region as users arrive
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

SELECT region, order_id, amount FROM (SELECT u.region, o.order_id, o.amount, ROW_NUMBER() OVER (PARTITION BY u.region ORDER BY o.amount DESC, o.order_id) AS rn FROM Orders o LEFT JOIN Users u ON o.user_id = u.user_id WHERE o.amount IS NOT NULL) WHERE rn = 1;
