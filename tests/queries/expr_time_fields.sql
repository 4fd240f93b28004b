-- HOUR, MINUTE, SECOND, YEAR, QUARTER, MONTH, WEEK, DAYOFYEAR, DAYOFMONTH, DAYOFWEEK of a TIMESTAMP(3) (NULL in, NULL out)
CREATE TABLE times (
  id INT,
  ts TIMESTAMP(3)
) WITH (
  'connector' = 'filesystem',
  'path' = '{{DATA}}/times.jsonl',
  'format' = 'json'
);
SELECT id, HOUR(ts) AS h, MINUTE(ts) AS mi, SECOND(ts) AS s, YEAR(ts) AS y, QUARTER(ts) AS q,
  MONTH(ts) AS mo, WEEK(ts) AS w, DAYOFYEAR(ts) AS doy, DAYOFMONTH(ts) AS dom, DAYOFWEEK(ts) AS dow,
  HOUR(ts) + 1 AS h1
FROM times;
