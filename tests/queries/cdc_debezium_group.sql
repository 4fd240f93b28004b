-- GROUP BY over a CDC table: each update retracts the old row from its group and adds the new one (a region change moves it), deletes retract
-- compare: final
CREATE TABLE rates (
  currency STRING,
  region STRING,
  rate DECIMAL(10, 4),
  ts TIMESTAMP(3),
  PRIMARY KEY (currency) NOT ENFORCED
) WITH (
  'connector' = 'filesystem',
  'path' = '{{DATA}}/cdc_rates.json',
  'format' = 'debezium-json'
);
SELECT region, COUNT(*) AS currencies, SUM(rate) AS total, MAX(rate) AS top, MIN(ts) AS oldest
FROM rates
GROUP BY region;
