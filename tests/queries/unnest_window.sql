-- UNNEST feeding a TUMBLE window aggregation: elements counted per item and 2-second window (the time attribute passes through)
CREATE TABLE orders (
  id INT,
  customer STRING,
  items ARRAY<STRING>,
  qty ARRAY<INT>,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '{{DATA}}/unnest_orders.jsonl',
  'format' = 'json'
);

CREATE VIEW lines AS SELECT ts, item FROM orders CROSS JOIN UNNEST(items) AS t(item);

SELECT item, window_start, COUNT(*) AS n
FROM TABLE(TUMBLE(TABLE lines, DESCRIPTOR(ts), INTERVAL '2' SECOND))
GROUP BY item, window_start, window_end
