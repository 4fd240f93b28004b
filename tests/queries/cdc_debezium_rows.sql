-- A debezium-json file as a changelog source: snapshot reads and creates are +I, updates -U/+U of before/after, deletes -D of before; a filter keeps each change's kind
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
SELECT currency, rate, ts FROM rates WHERE region <> 'as';
