-- JSON_OBJECT and JSON_ARRAY: keys with values of each type as JSON, nested constructors embedded as JSON (not as strings), NULL ON NULL (JSON_OBJECT's default) and ABSENT ON NULL (JSON_ARRAY's default)
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
  JSON_OBJECT('id' VALUE id, 'user' VALUE JSON_VALUE(payload, '$.user')) AS o1,
  JSON_OBJECT(KEY 'id' VALUE id, KEY 'user' VALUE JSON_VALUE(payload, '$.user') ABSENT ON NULL) AS o2,
  JSON_OBJECT('n' VALUE JSON_OBJECT('ok' VALUE TRUE, 'half' VALUE 0.5), 'a' VALUE JSON_ARRAY(1, 'two', id)) AS nested,
  JSON_ARRAY(id, JSON_VALUE(payload, '$.user')) AS a1,
  JSON_ARRAY(id, JSON_VALUE(payload, '$.user') NULL ON NULL) AS a2,
  JSON_OBJECT() AS empty_object,
  JSON_ARRAY() AS empty_array
FROM docs;
