-- An upsert-kafka table read as a changelog: a key's first record is +I, a changed one -U/+U, a repeated one nothing, a tombstone -D of the row it deletes, a tombstone of a key without a row nothing
CREATE TABLE rates (
  currency STRING,
  region STRING,
  rate DECIMAL(10, 4),
  ts TIMESTAMP(3),
  PRIMARY KEY (currency) NOT ENFORCED
) WITH (
  'connector' = 'upsert-kafka',
  'topic' = '{{TOPIC}}',
  'properties.bootstrap.servers' = '{{BROKERS}}',
  'key.format' = 'json',
  'value.format' = 'json',
  'scan.bounded.mode' = 'latest-offset'
);
SELECT * FROM rates;
