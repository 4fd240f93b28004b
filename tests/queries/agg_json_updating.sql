-- JSON_ARRAYAGG and JSON_OBJECTAGG in a GROUP BY without a window (an updating result): each supplier's items so far
CREATE TABLE Bid (
  bidtime TIMESTAMP(3),
  price DECIMAL(10, 2),
  item STRING,
  supplier_id STRING
) WITH (
  'connector' = 'filesystem',
  'path' = '{{DATA}}/bid_win.jsonl',
  'format' = 'json'
);

SELECT supplier_id, JSON_ARRAYAGG(item) AS items, JSON_OBJECTAGG(KEY item VALUE price) AS prices
FROM Bid
GROUP BY supplier_id
