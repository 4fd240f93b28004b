-- CROSS JOIN UNNEST(array) AS t(item): a row per element (NULL elements kept), none for an empty or NULL array; the outer columns qualified
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

SELECT o.id, o.customer, t.item
FROM orders AS o CROSS JOIN UNNEST(o.items) AS t(item)
