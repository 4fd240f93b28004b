-- Nexmark CEP q0: V-shape per (auction, bidder), SKIP TO LAST PRICE_UP (nexmark queries-cep/q0.sql)
CREATE TABLE bid (auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, url STRING,
  `dateTime` TIMESTAMP(3), extra STRING, WATERMARK FOR `dateTime` AS `dateTime` - INTERVAL '4' SECOND)
WITH ('connector' = 'filesystem', 'path' = '{{DATA}}/bids_cep.jsonl', 'format' = 'json');

SELECT * FROM bid MATCH_RECOGNIZE (
  PARTITION BY auction, bidder ORDER BY `dateTime`
  MEASURES START_ROW.`dateTime` AS start_tstamp, LAST(PRICE_DOWN.`dateTime`) AS bottom_tstamp,
           LAST(PRICE_UP.`dateTime`) AS end_tstamp
  ONE ROW PER MATCH AFTER MATCH SKIP TO LAST PRICE_UP
  PATTERN (START_ROW PRICE_DOWN+ PRICE_UP)
  DEFINE PRICE_DOWN AS (LAST(PRICE_DOWN.price, 1) IS NULL AND PRICE_DOWN.price < START_ROW.price)
                       OR PRICE_DOWN.price < LAST(PRICE_DOWN.price, 1),
         PRICE_UP AS PRICE_UP.price > LAST(PRICE_DOWN.price, 1)) MR
