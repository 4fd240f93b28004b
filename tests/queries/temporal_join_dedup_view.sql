-- Event-time temporal join with a versioned view: the latest rate per currency by deduplication (ROW_NUMBER() ... ORDER BY update_time DESC = 1) over an append-only log, as Flink's documentation writes it
CREATE TABLE orders (
  order_id INT,
  currency STRING,
  amount INT,
  order_time TIMESTAMP(3),
  WATERMARK FOR order_time AS order_time - INTERVAL '5' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '{{DATA}}/tj_orders.jsonl',
  'format' = 'json'
);

CREATE TABLE rates_log (
  currency STRING,
  rate DOUBLE,
  update_time TIMESTAMP(3),
  WATERMARK FOR update_time AS update_time - INTERVAL '5' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '{{DATA}}/tj_rates.jsonl',
  'format' = 'json'
);

CREATE VIEW versioned_rates AS
SELECT currency, rate, update_time
FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY currency ORDER BY update_time DESC) AS rownum
  FROM rates_log
)
WHERE rownum = 1;

SELECT o.order_id, o.amount, r.rate, r.update_time
FROM orders AS o
JOIN versioned_rates FOR SYSTEM_TIME AS OF o.order_time AS r
ON o.currency = r.currency
