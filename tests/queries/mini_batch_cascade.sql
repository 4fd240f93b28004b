-- Mini-batch aggregation over an updating aggregate: retractions fold into each mini-batch
-- compare: final
SET 'table.exec.mini-batch.enabled' = 'true';
SET 'table.exec.mini-batch.allow-latency' = '1 s';
SET 'table.exec.mini-batch.size' = '3';
CREATE TABLE Orders (
  order_id BIGINT,
  user_id STRING,
  product STRING,
  amount INT,
  price DECIMAL(10, 2),
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{{DATA}}/orders_cl.jsonl', 'format' = 'json');

SELECT n, COUNT(*) AS users, MAX(total) AS biggest, MIN(total) AS smallest, SUM(total) AS units
FROM (SELECT user_id, COUNT(*) AS n, SUM(amount) AS total FROM Orders GROUP BY user_id) GROUP BY n;
