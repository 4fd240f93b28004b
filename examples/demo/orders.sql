-- Commerce: an order with no payment in the 10 seconds after it is unpaid.
-- Orders and payments come from two topics; a session window per order closes
-- 10 seconds after its last event, and an order whose session holds no payment
-- is reported. Part of `vigil demo`.
SET 'table.exec.source.idle-timeout' = '5 s';

CREATE TABLE orders (
  order_id BIGINT,
  customer STRING,
  amount DOUBLE,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
) WITH (
  'connector' = 'kafka',
  'topic' = 'orders',
  'properties.bootstrap.servers' = 'embedded',
  'properties.group.id' = 'vigil-demo-orders',
  'scan.startup.mode' = 'earliest-offset',
  'format' = 'json'
);

CREATE TABLE payments (
  order_id BIGINT,
  amount DOUBLE,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
) WITH (
  'connector' = 'kafka',
  'topic' = 'payments',
  'properties.bootstrap.servers' = 'embedded',
  'properties.group.id' = 'vigil-demo-orders',
  'scan.startup.mode' = 'earliest-offset',
  'format' = 'json'
);

CREATE TABLE unpaid (
  order_id BIGINT,
  customer STRING,
  amount DOUBLE,
  ordered_at TIMESTAMP(3)
) WITH ('connector' = 'print', 'print-identifier' = 'UNPAID');

CREATE VIEW order_events AS
  SELECT order_id, customer, amount, 1 AS is_order, 0 AS is_payment, ts FROM orders
  UNION ALL
  SELECT order_id, CAST(NULL AS STRING), amount, 0, 1, ts FROM payments;

INSERT INTO unpaid
SELECT order_id, MAX(customer), MAX(amount), MIN(ts)
FROM TABLE(SESSION(TABLE order_events PARTITION BY order_id, DESCRIPTOR(ts), INTERVAL '10' SECOND))
GROUP BY window_start, window_end, order_id
HAVING SUM(is_order) > 0 AND SUM(is_payment) = 0;
