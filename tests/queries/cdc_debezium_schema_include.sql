-- debezium-json with 'debezium-json.schema-include': each change is the 'payload' of a {schema, payload} envelope
CREATE TABLE rates (
  currency STRING,
  region STRING,
  rate DECIMAL(10, 4),
  ts TIMESTAMP(3)
) WITH (
  'connector' = 'filesystem',
  'path' = '{{DATA}}/cdc_rates_schema.json',
  'format' = 'debezium-json',
  'debezium-json.schema-include' = 'true'
);
SELECT * FROM rates;
