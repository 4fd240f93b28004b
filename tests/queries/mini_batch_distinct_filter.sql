-- Mini-batch aggregation: one change per group per mini-batch, the same result table
-- compare: final
SET 'table.exec.mini-batch.enabled' = 'true';
SET 'table.exec.mini-batch.allow-latency' = '1 s';
SET 'table.exec.mini-batch.size' = '4';
CREATE TABLE Orders (
  order_id BIGINT,
  user_id STRING,
  product STRING,
  amount INT,
  price DECIMAL(10, 2),
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{{DATA}}/orders_cl.jsonl', 'format' = 'json');

SELECT user_id, COUNT(*) AS n, COUNT(DISTINCT product) AS products,
  SUM(amount) FILTER (WHERE amount > 1) AS big_units, MAX(price) AS top, MIN(product) AS first_product
FROM Orders GROUP BY user_id;
