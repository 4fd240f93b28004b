-- A column of the user's that happens to be named like Vigil's internal row-kind
-- column is data, also as a grouping key of an updating result.
CREATE TABLE t (
  k STRING,
  v INT,
  __row_kind TINYINT
) WITH ('connector' = 'filesystem', 'path' = '{{DATA}}/row_kind_column.jsonl', 'format' = 'json');

SELECT __row_kind, COUNT(*) AS n, SUM(v) AS s FROM t GROUP BY __row_kind;
