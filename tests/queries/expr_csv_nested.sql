-- ARRAY and ROW columns in the csv format: an array's elements and a row's fields in one field, separated by ';' (an empty field: an empty array, a NULL row; an empty element or field: an empty string or a NULL number)
-- oracle: nested
CREATE TABLE t (
  id INT,
  tags ARRAY<STRING>,
  r ROW<n INT, s STRING>,
  xs ARRAY<DOUBLE>
) WITH ('connector' = 'filesystem', 'path' = '{{DATA}}/nested.csv', 'format' = 'csv');
SELECT id, tags, r, r.n AS n, xs, CARDINALITY(tags) AS n_tags FROM t;
