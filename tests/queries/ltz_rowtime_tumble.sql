-- TIMESTAMP_LTZ(3) rowtime via computed column TO_TIMESTAMP_LTZ(epoch_ms, 3), 10-minute TUMBLE; window_time and MAX(ts) are LTZ, cast to TIMESTAMP(3) (UTC session zone) for printing
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

SELECT window_start, window_end, CAST(window_time AS TIMESTAMP(3)) AS wtime, COUNT(*) AS orders, SUM(qty) AS qty,
       CAST(MAX(ts) AS TIMESTAMP(3)) AS last_ts
FROM TABLE(TUMBLE(TABLE orders, DESCRIPTOR(ts), INTERVAL '10' MINUTES))
GROUP BY window_start, window_end, window_time
