-- Flink's formulation of ../mr_absence_union.sql: an interval LEFT JOIN emits
-- an order with no payment in [ts, ts + 15 min) once the watermark passes.
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

SELECT o.order_id, o.customer, o.amount, o.ts AS order_ts,
       CAST(o.ts + INTERVAL '15' MINUTE - INTERVAL '0.001' SECOND AS TIMESTAMP(3)) AS unpaid_at
FROM shop_orders o LEFT JOIN shop_payments p
  ON o.order_id = p.order_id AND p.ts > o.ts AND p.ts < o.ts + INTERVAL '15' MINUTE
WHERE p.order_id IS NULL;
