-- Revenue per supplier in 10-minute windows, for `vigil serve`: on /metrics as the
-- gauge supplier_revenue{supplier_id=...}, and as rows for `vigil results revenue`.
-- From the repository root:  vigil serve &  vigil submit examples/serve_revenue.sql --name revenue
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

CREATE TABLE revenue (supplier_id STRING, total DOUBLE, window_end TIMESTAMP(3))
WITH ('connector' = 'metrics', 'metric.name' = 'supplier_revenue', 'labels' = 'supplier_id');

INSERT INTO revenue
SELECT supplier_id, CAST(SUM(price) AS DOUBLE), window_end
FROM TABLE(TUMBLE(TABLE Bid, DESCRIPTOR(bidtime), INTERVAL '10' MINUTES))
GROUP BY supplier_id, window_start, window_end;

SELECT window_end, supplier_id, SUM(price) AS total, COUNT(*) AS bids
FROM TABLE(TUMBLE(TABLE Bid, DESCRIPTOR(bidtime), INTERVAL '10' MINUTES))
GROUP BY window_start, window_end, supplier_id;
