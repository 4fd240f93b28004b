-- CAST to a ROW type in a query (both spellings): a constructed row and a ROW column cast field by field by position, to other names and types, nested rows too
-- oracle: nested
CREATE TABLE docs (
  id INT,
  r ROW<n INT, s STRING, `inner` ROW<x DOUBLE>>
) WITH (
  'connector' = 'filesystem',
  'path' = '{{DATA}}/nested_rows.jsonl',
  'format' = 'json'
);
SELECT id, CAST(ROW(id, 'a') AS ROW<x BIGINT, y STRING>) AS made,
  CAST(r AS ROW<`count` BIGINT, label STRING, deep ROW<v STRING>>) AS renamed,
  CAST(r AS ROW(a DOUBLE, b STRING, c ROW(d DOUBLE))) AS paren
FROM docs;
