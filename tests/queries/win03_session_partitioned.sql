-- T-WIN-03: SESSION gap 5 min PARTITION BY item, out-of-order input; window_time included (A rows: 08:12:59.999)
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

SELECT item, window_start, window_end, window_time, SUM(price) AS total_price, COUNT(*) AS cnt
FROM TABLE(SESSION(TABLE Bid PARTITION BY item, DESCRIPTOR(bidtime), INTERVAL '5' MINUTES))
GROUP BY item, window_start, window_end, window_time
