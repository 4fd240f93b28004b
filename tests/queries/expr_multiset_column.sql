-- A MULTISET<STRING> column read from JSON (an object of each element's count) and written back, NULL and empty ones too
-- oracle: nested
CREATE TABLE docs (
  id INT,
  tags MULTISET<STRING>,
  ts TIMESTAMP(3)
) WITH ('connector' = 'filesystem', 'path' = '{{DATA}}/multisets.jsonl', 'format' = 'json');
SELECT id, tags FROM docs;
