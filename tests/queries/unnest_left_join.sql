-- LEFT JOIN UNNEST(array) ON TRUE: a row with an empty or NULL array kept once, its element NULL
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

SELECT id, customer, q
FROM orders LEFT JOIN UNNEST(qty) AS t(q) ON TRUE
