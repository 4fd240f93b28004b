-- T-WIN-03: SESSION gap 5 min without PARTITION BY (expect [08:06,08:14) 14.00 and [08:17,08:22) 1.00)
-- Watermark delay is 5 minutes (the reference text uses 1 second) because the rows arrive
-- up to 1 minute out of order and late rows must not be part of a golden test.
CREATE TABLE Bid (
  bidtime TIMESTAMP(3),
  price DECIMAL(10, 2),
  item STRING,
  WATERMARK FOR bidtime AS bidtime - INTERVAL '5' MINUTE
) WITH (
  'connector' = 'filesystem',
  'path' = '{{DATA}}/bid_session.jsonl',
  'format' = 'json'
);

SELECT window_start, window_end, SUM(price) AS total_price
FROM TABLE(SESSION(TABLE Bid, DESCRIPTOR(bidtime), INTERVAL '5' MINUTES))
GROUP BY window_start, window_end
