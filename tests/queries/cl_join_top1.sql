-- Join to a Top-1 without its row number: Flink upserts the pairs by the order (the join key holds the Top-1's key), Vigil retracts the replaced pair; both leave the same table
-- compare: upsert(order_id)
CREATE TABLE Orders (
  order_id BIGINT,
  user_id STRING,
  product STRING,
  amount INT,
  price DECIMAL(10, 2),
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{{DATA}}/orders_cl.jsonl', 'format' = 'json');

SELECT o.order_id, o.user_id, m.product AS best FROM Orders o JOIN (SELECT user_id, product FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY price DESC, order_id) AS rn FROM Orders) WHERE rn = 1) m ON o.user_id = m.user_id;
