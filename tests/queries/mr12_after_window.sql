-- T-MR-12a: MATCH_RECOGNIZE over a window aggregation, ordered by window_time (Flink ITCase testMatchRecognizeAppliedToWindowedGrouping)
CREATE TABLE Ticker (
  symbol STRING,
  rowtime TIMESTAMP(3),
  price INT,
  tax INT,
  WATERMARK FOR rowtime AS rowtime - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{{DATA}}/mr_windows.jsonl', 'format' = 'json');

CREATE VIEW windowed AS
SELECT symbol, SUM(price) AS price, window_time AS rowTime, window_start AS startTime
FROM TABLE(TUMBLE(TABLE Ticker, DESCRIPTOR(rowtime), INTERVAL '3' SECOND))
GROUP BY symbol, window_start, window_end, window_time;

SELECT * FROM windowed MATCH_RECOGNIZE (
  PARTITION BY symbol ORDER BY rowTime
  MEASURES B.price AS dPrice, B.startTime AS dTime
  AFTER MATCH SKIP PAST LAST ROW
  PATTERN (A B)
  DEFINE B AS B.price < A.price)
