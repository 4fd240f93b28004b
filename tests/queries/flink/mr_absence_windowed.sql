-- Flink's formulation of ../mr_absence_windowed.sql: the unpaid orders of the
-- interval LEFT JOIN, windowed by order time shifted by the deadline (an
-- absence's time is order time + 15 min - 1 ms, so its hour [S, S + 1 h)
-- holds the orders of [S - 15 min + 1 ms, S + 45 min + 1 ms)).
CREATE TABLE shop_orders (
  order_id BIGINT,
  customer STRING,
  amount BIGINT,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '{{DATA}}/shop_orders.jsonl',
  'format' = 'json'
);

CREATE TABLE shop_payments (
  order_id BIGINT,
  amount BIGINT,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '{{DATA}}/shop_payments.jsonl',
  'format' = 'json'
);

CREATE VIEW unpaid AS
SELECT o.order_id, o.amount, o.ts
FROM shop_orders o LEFT JOIN shop_payments p
  ON o.order_id = p.order_id AND p.ts > o.ts AND p.ts < o.ts + INTERVAL '15' MINUTE
WHERE p.order_id IS NULL;

SELECT window_start + INTERVAL '14:59.999' MINUTE TO SECOND AS window_start,
       window_end + INTERVAL '14:59.999' MINUTE TO SECOND AS window_end,
       COUNT(*) AS unpaid, SUM(amount) AS amount
FROM TABLE(TUMBLE(TABLE unpaid, DESCRIPTOR(ts), INTERVAL '1' HOUR, INTERVAL '45:00.001' MINUTE TO SECOND))
GROUP BY window_start, window_end;
