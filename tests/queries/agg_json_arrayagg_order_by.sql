-- JSON_ARRAYAGG(v ORDER BY ...) in a window aggregation: Flink 2.3 reads the ORDER BY and keeps the arrival order all the same
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
  JSON_ARRAYAGG(item ORDER BY item DESC) AS items,
  JSON_ARRAYAGG(price ORDER BY price ABSENT ON NULL) AS prices
FROM TABLE(TUMBLE(TABLE Bid, DESCRIPTOR(bidtime), INTERVAL '10' MINUTES))
GROUP BY window_start, window_end, supplier_id
