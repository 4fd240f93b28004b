-- REGEXP_EXTRACT: a group of the first match; NULL for no match, a group that took no part, a group beyond the pattern's, a NULL argument
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
  REGEXP_EXTRACT(s, '(&|^)channel_id=([^&]*)', 2) AS channel_id,
  REGEXP_EXTRACT(s, 'c(x)?h', 1) AS optional_group,
  REGEXP_EXTRACT(s, 'ch[a-z]*') AS whole_match,
  REGEXP_EXTRACT(s, '(\d+)-(\d+)-(\d+)', 3) AS third,
  REGEXP_EXTRACT(s, 'c(h)', 5) AS beyond,
  REGEXP_EXTRACT(s, CAST(NULL AS STRING), 1) AS null_pattern
FROM texts;
