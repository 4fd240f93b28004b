-- ROW, ARRAY and MAP values in the result, written as JSON objects and arrays: columns of the table (nested ROWs, NULL fields, empty and NULL arrays and maps; PyFlink cannot hand over a NULL ROW, so none is here), their fields, and constructors
-- oracle: nested
CREATE TABLE docs (
  id INT,
  r ROW<n INT, s STRING, `inner` ROW<x DOUBLE>>,
  tags ARRAY<STRING>,
  attrs MAP<STRING, STRING>
) WITH (
  'connector' = 'filesystem',
  'path' = '{{DATA}}/nested_rows.jsonl',
  'format' = 'json'
);
SELECT id, r, r.`inner` AS i, tags, attrs, ARRAY[id, id * 2] AS arr, MAP['k', id] AS m
FROM docs
