-- Absences counted per hour downstream: MATCH_ROWTIME() of an absence (the
-- deadline's last millisecond) is a time attribute, and no absence is late for
-- the window. Flink's formulation (flink/mr_absence_windowed.sql) windows the
-- interval LEFT JOIN's unpaid orders by order time with the deadline's offset.
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

CREATE VIEW shop AS
SELECT 'order' AS kind, order_id, customer, amount, ts FROM shop_orders
UNION ALL
SELECT 'payment' AS kind, order_id, CAST(NULL AS STRING) AS customer, amount, ts FROM shop_payments;

CREATE VIEW unpaid AS
SELECT * FROM shop MATCH_RECOGNIZE (
  PARTITION BY order_id
  ORDER BY ts
  MEASURES O.customer AS customer, O.amount AS amount, O.ts AS order_ts,
           MATCH_ROWTIME() AS unpaid_at
  ONE ROW PER MATCH
  AFTER MATCH SKIP PAST LAST ROW
  PATTERN (O NOT P) WITHIN INTERVAL '15' MINUTE
  DEFINE O AS O.kind = 'order', P AS P.kind = 'payment'
);

SELECT window_start, window_end, COUNT(*) AS unpaid, SUM(amount) AS amount
FROM TABLE(TUMBLE(TABLE unpaid, DESCRIPTOR(unpaid_at), INTERVAL '1' HOUR))
GROUP BY window_start, window_end;
