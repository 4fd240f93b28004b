-- JSON_VALUE, JSON_QUERY, JSON_EXISTS and IS JSON over JSON text: scalars as strings, objects and arrays as JSON, NULL for a missing path or text that is not JSON
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
  JSON_VALUE(payload, '$.user') AS usr,
  JSON_VALUE(payload, '$.age') AS age,
  JSON_VALUE(payload, '$.ok') AS ok,
  JSON_VALUE(payload, '$.price') AS price,
  JSON_VALUE(payload, '$.tags[1]') AS tag1,
  JSON_VALUE(payload, '$.o.p') AS op,
  JSON_VALUE(payload, '$.o') AS obj_as_value,
  JSON_VALUE(payload, '$[2].user') AS in_array,
  JSON_VALUE(payload, '$[''a b''].c') AS quoted_key,
  JSON_QUERY(payload, '$.tags') AS tags,
  JSON_QUERY(payload, '$.user') AS scalar_as_query,
  JSON_EXISTS(payload, '$.o.q') AS null_exists,
  JSON_EXISTS(payload, '$.missing') AS missing_exists,
  payload IS JSON AS is_json,
  payload IS JSON OBJECT AS is_object,
  payload IS JSON ARRAY AS is_array,
  payload IS JSON SCALAR AS is_scalar,
  payload IS NOT JSON AS is_not_json
FROM docs;
