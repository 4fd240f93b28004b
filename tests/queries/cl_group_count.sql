-- Non-window GROUP BY: a changelog of +I / -U / +U per input row; NULL keys form a group
CREATE TABLE Orders (
  order_id BIGINT,
  user_id STRING,
  product STRING,
  amount INT,
  price DECIMAL(10, 2),
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{{DATA}}/orders_cl.jsonl', 'format' = 'json');

SELECT user_id, COUNT(*) AS n, SUM(amount) AS total, MAX(price) AS top FROM Orders GROUP BY user_id;
