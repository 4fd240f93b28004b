-- SET 'table.local-time-zone' = 'UTC', then a 1-day TUMBLE per payment method over a TIMESTAMP_LTZ rowtime (days start at UTC midnight), DATE_FORMAT of an LTZ value, window_time cast to TIMESTAMP(3)
SET 'table.local-time-zone' = 'UTC';

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

SELECT `method`, window_start, window_end, CAST(window_time AS TIMESTAMP(3)) AS wtime, COUNT(*) AS orders,
       DATE_FORMAT(MIN(ts), 'yyyy-MM-dd HH:mm:ss') AS first_order
FROM TABLE(TUMBLE(TABLE orders, DESCRIPTOR(ts), INTERVAL '1' DAY))
GROUP BY `method`, window_start, window_end, window_time
