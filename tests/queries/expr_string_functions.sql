-- Projection: UPPER, LOWER, CHAR_LENGTH, SUBSTRING, CONCAT, ||, TRIM, REPLACE, LIKE, on nullable strings
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
       UPPER(customer) AS up, LOWER(product) AS low,
       CHAR_LENGTH(note) AS note_len,
       SUBSTRING(product FROM 2 FOR 3) AS sub,
       SUBSTRING(product, 3) AS sub_tail,
       CONCAT(customer, '-', product) AS cat,
       customer || ':' || `method` AS piped,
       TRIM(note) AS trimmed,
       TRIM(LEADING ' ' FROM note) AS ltrimmed,
       REPLACE(note, ' ', '_') AS replaced,
       product LIKE 'G%' AS starts_g,
       note LIKE '%ragile%' AS has_ragile
FROM orders
