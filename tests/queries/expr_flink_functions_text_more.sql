-- JSON_STRING, URL_ENCODE, URL_DECODE and SPLIT, as Flink runs them
-- oracle: nested
CREATE TABLE Orders (
  order_id BIGINT,
  user_id STRING,
  product STRING,
  amount INT,
  price DECIMAL(10, 2),
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{{DATA}}/orders_cl.jsonl', 'format' = 'json');

SELECT order_id, JSON_STRING(product) AS js, JSON_STRING(amount) AS jn, JSON_STRING(amount > 2) AS jb, JSON_STRING(CONCAT(product, '"q')) AS jq, URL_ENCODE(CONCAT(product, ' & ', user_id, '/é')) AS ue, URL_DECODE(CONCAT(product, '%20x+y')) AS ud, SPLIT(CONCAT(product, ',', user_id, ',,end'), ',') AS sp FROM Orders;
