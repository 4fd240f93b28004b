-- JSON_ARRAYAGG and JSON_OBJECTAGG in a window aggregation: each window's items in arrival order, and an object of item to price (keys sorted); NULL handling by ON NULL
CREATE TABLE Bid (
  bidtime TIMESTAMP(3),
  price DECIMAL(10, 2),
  item STRING,
  supplier_id STRING,
  WATERMARK FOR bidtime AS bidtime - INTERVAL '1' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '{{DATA}}/bid_win.jsonl',
  'format' = 'json'
);

SELECT window_start, window_end, supplier_id,
  JSON_ARRAYAGG(item) AS items,
  JSON_OBJECTAGG(KEY item VALUE price) AS prices,
  JSON_ARRAYAGG(CASE WHEN price > 3 THEN item END NULL ON NULL) AS expensive
FROM TABLE(TUMBLE(TABLE Bid, DESCRIPTOR(bidtime), INTERVAL '10' MINUTES))
GROUP BY window_start, window_end, supplier_id
