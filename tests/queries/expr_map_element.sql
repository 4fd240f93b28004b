-- MAP[...] constructor with key access and CARDINALITY, and ELEMENT of a one-element array (NULL for an empty one)
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
  MAP['a', id, 'b', id * 10]['b'] AS b,
  MAP['a', id]['missing'] AS missing,
  CARDINALITY(MAP['a', 1, 'b', 2, 'c', id]) AS entries,
  ELEMENT(ARRAY[id + 1]) AS single,
  ELEMENT(CASE WHEN id > 3 THEN ARRAY[id] ELSE ARRAY_REMOVE(ARRAY[id], id) END) AS maybe
FROM docs
