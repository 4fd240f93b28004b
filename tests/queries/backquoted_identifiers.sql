-- Reserved words as table/column names and aliases (`timestamp`, `value`, `method`, `user`, `from`) through a TUMBLE aggregation
CREATE TABLE `events` (
  `timestamp` TIMESTAMP(3),
  `value` DOUBLE,
  `method` STRING,
  `user` STRING,
  `from` STRING,
  WATERMARK FOR `timestamp` AS `timestamp` - INTERVAL '2' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '{{DATA}}/reserved_words.jsonl',
  'format' = 'json'
);

SELECT `method`, window_start, window_end, COUNT(*) AS `count`, SUM(`value`) AS `sum`, MAX(`user`) AS `user`, COUNT(`from`) AS `from count`
FROM TABLE(TUMBLE(TABLE `events`, DESCRIPTOR(`timestamp`), INTERVAL '10' SECONDS))
GROUP BY `method`, window_start, window_end
