-- Total bid price per supplier in 10-minute tumbling windows of event time.
-- Run from the repository root:  cargo run -- run examples/tumble.sql
CREATE TABLE Bid (
  bidtime TIMESTAMP(3),
  price DECIMAL(10, 2),
  item STRING,
  supplier_id STRING,
  WATERMARK FOR bidtime AS bidtime - INTERVAL '1' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = 'examples/data/bids.jsonl',
  'format' = 'json'
);

SELECT window_start, window_end, supplier_id, SUM(price) AS total, COUNT(*) AS bids
FROM TABLE(TUMBLE(TABLE Bid, DESCRIPTOR(bidtime), INTERVAL '10' MINUTES))
GROUP BY window_start, window_end, supplier_id;
