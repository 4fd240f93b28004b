-- COLLECT in a GROUP BY without a window over an updating input (a per-user deduplication): values taken back leave the multiset (compared as the final table)
-- compare: final
-- oracle: nested-changelog
CREATE TABLE Orders (
  order_id BIGINT,
  user_id STRING,
  product STRING,
  amount INT,
  price DECIMAL(10, 2),
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{{DATA}}/orders_cl.jsonl', 'format' = 'json');

SELECT product, COLLECT(user_id) AS users FROM (SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY ts DESC) AS rn FROM Orders) WHERE rn = 1) GROUP BY product;
