-- JSON_QUERY ... RETURNING ARRAY<STRING>: an array's elements as strings (a string as itself, JSON null as NULL, anything else as its JSON text), NULL for what is not an array
-- oracle: nested
CREATE TABLE docs (
  id INT,
  payload STRING
) WITH (
  'connector' = 'filesystem',
  'path' = '{{DATA}}/json_texts.jsonl',
  'format' = 'json'
);
SELECT
  id,
  JSON_QUERY(payload, '$.tags' RETURNING ARRAY<STRING>) AS tags,
  JSON_QUERY(payload, '$' RETURNING ARRAY<STRING>) AS whole,
  JSON_QUERY(payload, '$.o' RETURNING ARRAY<STRING>) AS obj,
  JSON_QUERY(payload, 'lax $.missing' RETURNING ARRAY<STRING> EMPTY ARRAY ON EMPTY) AS missing,
  JSON_QUERY(payload, '$.o.*' RETURNING ARRAY<STRING>) AS members
FROM docs;
