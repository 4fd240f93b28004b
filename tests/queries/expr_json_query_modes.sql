-- JSON paths in lax and strict mode (strict unless written), wildcards, JSON_QUERY's wrappers and ON EMPTY / ON ERROR behaviours, JSON_EXISTS ON ERROR, JSON_VALUE's ON EMPTY in lax mode
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
  JSON_QUERY(payload, '$.o') AS o,
  JSON_QUERY(payload, '$.tags' WITH WRAPPER) AS tags_wrapped,
  JSON_QUERY(payload, '$.tags' WITH CONDITIONAL ARRAY WRAPPER) AS tags_conditional,
  JSON_QUERY(payload, '$.user' WITH CONDITIONAL WRAPPER) AS user_conditional,
  JSON_QUERY(payload, '$.user' WITH UNCONDITIONAL ARRAY WRAPPER EMPTY OBJECT ON ERROR) AS user_wrapped,
  JSON_QUERY(payload, '$.user' EMPTY ARRAY ON ERROR) AS user_strict,
  JSON_QUERY(payload, 'lax $.user' EMPTY ARRAY ON EMPTY EMPTY OBJECT ON ERROR) AS user_lax,
  JSON_QUERY(payload, 'lax $.missing' EMPTY OBJECT ON EMPTY) AS missing_lax,
  JSON_QUERY(payload, 'strict $.missing' EMPTY ARRAY ON EMPTY EMPTY OBJECT ON ERROR) AS missing_strict,
  JSON_QUERY(payload, '$.tags[*]' WITH WRAPPER) AS tags_star,
  JSON_QUERY(payload, '$.o.*') AS o_members,
  JSON_QUERY(payload, '$[*].user') AS users_in_array,
  JSON_QUERY(payload, 'lax $.tags[5]' EMPTY ARRAY ON EMPTY) AS tag5_lax,
  JSON_QUERY(payload, '$.tags[5]' EMPTY ARRAY ON ERROR) AS tag5_strict,
  JSON_VALUE(payload, 'lax $.missing' DEFAULT 'empty' ON EMPTY DEFAULT 'err' ON ERROR) AS value_lax_missing,
  JSON_VALUE(payload, 'lax $.o' DEFAULT 'empty' ON EMPTY DEFAULT 'err' ON ERROR) AS value_lax_object,
  JSON_VALUE(payload, 'lax $.o.q' DEFAULT 'empty' ON EMPTY DEFAULT 'err' ON ERROR) AS value_lax_null,
  JSON_VALUE(payload, '$.tags[*]' DEFAULT 'empty' ON EMPTY DEFAULT 'err' ON ERROR) AS value_star,
  JSON_EXISTS(payload, '$.missing' TRUE ON ERROR) AS exists_strict_true,
  JSON_EXISTS(payload, 'lax $.missing' TRUE ON ERROR) AS exists_lax,
  JSON_EXISTS(payload, '$.o.q' UNKNOWN ON ERROR) AS exists_null_unknown,
  JSON_EXISTS(payload, '$.tags[*]') AS exists_star
FROM docs;
