-- Projection: DATE_FORMAT, EXTRACT, FLOOR/CEIL(ts TO unit), TO_TIMESTAMP_LTZ (seconds and millis), CAST of LTZ to TIMESTAMP (LTZ cannot be printed by the oracle)
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

SELECT order_id,
       DATE_FORMAT(ts, 'yyyy-MM-dd HH:mm') AS fmt,
       EXTRACT(MINUTE FROM ts) AS minute_of_ts,
       EXTRACT(SECOND FROM CAST(ts AS TIMESTAMP(3))) AS second_of_ts,
       EXTRACT(DAY FROM CAST(ts AS TIMESTAMP(3))) AS day_of_ts,
       FLOOR(CAST(ts AS TIMESTAMP(3)) TO MINUTE) AS minute_floor,
       CEIL(CAST(ts AS TIMESTAMP(3)) TO HOUR) AS hour_ceil,
       CAST(TO_TIMESTAMP_LTZ(epoch_ms / 1000, 0) AS TIMESTAMP(3)) AS ltz_seconds,
       CAST(TO_TIMESTAMP_LTZ(epoch_ms, 3) AS TIMESTAMP(3)) AS ltz_millis,
       CAST(ts AS TIMESTAMP(3)) AS ts_plain
FROM orders
