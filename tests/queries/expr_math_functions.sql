-- Projection: ABS, FLOOR, CEIL, ROUND, POWER on DOUBLE and DECIMAL and INT
CREATE TABLE orders (
  epoch_ms BIGINT,
  order_id BIGINT,
  customer STRING,
  product STRING,
  qty INT,
  amount DECIMAL(10, 2),
  `method` STRING,
  note STRING,
  ts AS TO_TIMESTAMP_LTZ(epoch_ms, 3),
  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '{{DATA}}/orders.jsonl',
  'format' = 'json'
);

SELECT order_id,
       ABS(qty - 5) AS abs_diff,
       FLOOR(amount) AS floor_amt,
       CEIL(amount) AS ceil_amt,
       ROUND(amount, 1) AS round1,
       ROUND(amount) AS round0,
       POWER(qty, 2) AS sq,
       FLOOR(CAST(amount AS DOUBLE) / 3) AS floor_div,
       CEIL(-CAST(amount AS DOUBLE)) AS ceil_neg,
       ROUND(CAST(qty AS DOUBLE) / 3, 2) AS round_third
FROM orders
