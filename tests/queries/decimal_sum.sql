-- TUMBLE 10 min on LTZ rowtime: SUM/AVG/MIN/MAX over DECIMAL(10,2) with NULLs, and a DECIMAL expression
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

SELECT window_start, window_end, SUM(amount) AS total, AVG(amount) AS avg_amount, MIN(amount) AS lo, MAX(amount) AS hi,
       SUM(amount * qty) AS revenue
FROM TABLE(TUMBLE(TABLE orders, DESCRIPTOR(ts), INTERVAL '10' MINUTES))
GROUP BY window_start, window_end
