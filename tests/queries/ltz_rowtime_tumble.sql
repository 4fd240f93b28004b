-- TIMESTAMP_LTZ(3) rowtime via computed column TO_TIMESTAMP_LTZ(epoch_ms, 3), 10-minute TUMBLE with window_time
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

SELECT window_start, window_end, window_time, COUNT(*) AS orders, SUM(qty) AS qty, MAX(ts) AS last_ts
FROM TABLE(TUMBLE(TABLE orders, DESCRIPTOR(ts), INTERVAL '10' MINUTES))
GROUP BY window_start, window_end, window_time
