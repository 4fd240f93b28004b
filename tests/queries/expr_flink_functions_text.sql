-- String functions Flink has and DataFusion spells otherwise or lacks: REGEXP, LOCATE, ELT, BIN, HEX, TO_BASE64, FROM_BASE64, CHR, ASCII, IS_ALPHA, IS_DIGIT, IS_DECIMAL, STR_TO_MAP, PARSE_URL, UNIX_TIMESTAMP()
CREATE TABLE Orders (
  order_id BIGINT,
  user_id STRING,
  product STRING,
  amount INT,
  price DECIMAL(10, 2),
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{{DATA}}/orders_cl.jsonl', 'format' = 'json');

SELECT order_id, REGEXP(product, '^[af]') AS re, LOCATE('p', product) AS loc, ELT(amount, 'one', 'two', 'three') AS elt, BIN(order_id) AS b, BIN(-order_id) AS nb, HEX(order_id * 30) AS h, HEX(product) AS hs, TO_BASE64(product) AS b64, FROM_BASE64(TO_BASE64(product)) AS back, CHR(64 + amount) AS c, ASCII(product) AS a, IS_ALPHA(product) AS alpha, IS_ALPHA(user_id) AS alpha2, IS_DIGIT(CAST(amount AS STRING)) AS digit, IS_DECIMAL(CAST(price AS STRING)) AS dec1, IS_DECIMAL(product) AS dec2, STR_TO_MAP(CONCAT('k=', product, ',n=', CAST(amount AS STRING))) AS m, STR_TO_MAP('a:1;b:2', ';', ':') AS m2, PARSE_URL(CONCAT('https://shop.com/p/', product, '?id=', CAST(order_id AS STRING), '&u=x#top'), 'HOST') AS host, PARSE_URL(CONCAT('https://shop.com/p/', product, '?id=', CAST(order_id AS STRING)), 'QUERY', 'id') AS qid, PARSE_URL('https://shop.com/p?x=1#frag', 'REF') AS url_ref, UNIX_TIMESTAMP() > 0 AS now_ok FROM Orders;
