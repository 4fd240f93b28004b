-- CROSS JOIN UNNEST ... WITH ORDINALITY: each element with its 1-based position, filtered on it
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

SELECT id, item, pos
FROM orders CROSS JOIN UNNEST(items) WITH ORDINALITY AS t(item, pos)
WHERE pos <= 2
