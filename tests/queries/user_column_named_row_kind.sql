-- A column of the user's that happens to be named like Vigil's internal row-kind
-- column is data: every row is an insert, the column is printed as it is.
CREATE TABLE t (
  k STRING,
  v INT,
  __row_kind TINYINT
) WITH ('connector' = 'filesystem', 'path' = '{{DATA}}/row_kind_column.jsonl', 'format' = 'json');

SELECT k, v * 10 AS v10, __row_kind FROM t;
