-- LAG in a streaming OVER aggregation: the value n rows before in the partition's time order, its default (NULL unless given) before that; beside an aggregate over another frame
CREATE TABLE Orders (
  order_id BIGINT,
  user_id STRING,
  product STRING,
  amount INT,
  price DECIMAL(10, 2),
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{{DATA}}/orders_cl.jsonl', 'format' = 'json');

SELECT order_id, user_id, amount, LAG(amount) OVER w AS prev1, LAG(amount, 2) OVER w AS prev2, LAG(product, 1, 'none') OVER w AS prev_product, LAG(amount, 0) OVER w AS same_row, SUM(amount) OVER w AS total FROM Orders WINDOW w AS (PARTITION BY user_id ORDER BY ts);
