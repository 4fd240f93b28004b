-- Flink's formulation of ../mr_absence_one_stream.sql.
CREATE TABLE shop_events (
  kind STRING,
  order_id BIGINT,
  customer STRING,
  amount BIGINT,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '{{DATA}}/shop_events.jsonl',
  'format' = 'json'
);

CREATE VIEW orders_only AS SELECT * FROM shop_events WHERE kind = 'order';
CREATE VIEW full_payments AS SELECT * FROM shop_events WHERE kind = 'payment';

SELECT o.order_id, o.customer, o.amount, o.ts AS order_ts,
       CAST(o.ts + INTERVAL '15' MINUTE - INTERVAL '0.001' SECOND AS TIMESTAMP(3)) AS unpaid_at,
       FALSE AS timed_out
FROM orders_only o LEFT JOIN full_payments p
  ON o.order_id = p.order_id AND p.amount >= o.amount
  AND p.ts > o.ts AND p.ts < o.ts + INTERVAL '15' MINUTE
WHERE p.order_id IS NULL;
