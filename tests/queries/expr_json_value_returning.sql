-- JSON_VALUE with RETURNING (INT, DOUBLE, BOOLEAN, STRING) and ON EMPTY / ON ERROR clauses: as Flink 2.3 runs them, anything but a scalar at the path (a missing path, JSON null, an object or array, text that is not JSON) takes the ON ERROR behaviour (Flink 2.3 fails the job on a string that does not convert to the returned type: not tested here)
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
  JSON_VALUE(payload, '$.age' RETURNING INT) AS age,
  JSON_VALUE(payload, '$.age' RETURNING INT DEFAULT -1 ON EMPTY) AS age_or_minus_one,
  JSON_VALUE(payload, '$.price' RETURNING DOUBLE) AS price,
  JSON_VALUE(payload, '$.ok' RETURNING BOOLEAN) AS ok,
  JSON_VALUE(payload, '$.o' RETURNING INT DEFAULT 7 ON ERROR) AS obj_as_int,
  JSON_VALUE(payload, '$.o' DEFAULT 'obj' ON ERROR) AS obj,
  JSON_VALUE(payload, '$.missing' DEFAULT 'none' ON EMPTY DEFAULT 'bad' ON ERROR) AS missing,
  JSON_VALUE(payload, '$.tags' RETURNING INT NULL ON EMPTY DEFAULT -2 ON ERROR) AS tags_as_int,
  JSON_VALUE(payload, '$.o.q' DEFAULT 'empty' ON EMPTY DEFAULT 'err' ON ERROR) AS json_null,
  JSON_VALUE(payload, 'strict $.missing' DEFAULT 'empty' ON EMPTY DEFAULT 'err' ON ERROR) AS strict_missing,
  JSON_VALUE(payload, '$.user' DEFAULT 'empty' ON EMPTY DEFAULT 'err' ON ERROR) AS usr
FROM docs;
