-- Nexmark q2: selection WHERE MOD(auction, 123) = 0
CREATE TABLE bid (
  auction BIGINT,
  bidder BIGINT,
  price BIGINT,
  channel STRING,
  url STRING,
  `dateTime` TIMESTAMP(3),
  extra STRING,
  WATERMARK FOR `dateTime` AS `dateTime` - INTERVAL '4' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '{{DATA}}/bid.jsonl',
  'format' = 'json'
);

SELECT auction, price FROM bid WHERE MOD(auction, 123) = 0
