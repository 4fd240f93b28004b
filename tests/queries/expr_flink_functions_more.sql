-- REGEXP_REPLACE (every match, group references), UNIX_TIMESTAMP of text with and without a pattern, TIMESTAMPADD, FROM_UNIXTIME
CREATE TABLE texts (
  id INT,
  s STRING
) WITH (
  'connector' = 'filesystem',
  'path' = '{{DATA}}/regexp.jsonl',
  'format' = 'json'
);
SELECT
  id,
  REGEXP_REPLACE(s, '[0-9]+', '#') AS digits,
  REGEXP_REPLACE(s, '(ch)(an)', '$2$1') AS swapped,
  UNIX_TIMESTAMP('2026-12-04 10:11:12') AS fixed_secs,
  UNIX_TIMESTAMP(REPLACE(s, 'T', ' ')) AS parsed,
  UNIX_TIMESTAMP('04/12/2026', 'dd/MM/yyyy') AS with_pattern,
  TIMESTAMPADD(HOUR, id, TIMESTAMP '2026-12-04 10:00:00') AS plus_hours,
  TIMESTAMPADD(DAY, 2, TIMESTAMP '2026-12-04 10:00:00') AS plus_days,
  TIMESTAMPADD(MONTH, 1, TIMESTAMP '2026-01-31 10:00:00') AS plus_month
FROM texts;
