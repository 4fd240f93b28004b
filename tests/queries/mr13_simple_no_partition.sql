-- T-MR-13: PATTERN (A B C) without PARTITION BY (Flink ITCase testSimplePattern)
CREATE TABLE events (
  id INT,
  name STRING,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{{DATA}}/mr_names.jsonl', 'format' = 'json');

SELECT * FROM events MATCH_RECOGNIZE (
  ORDER BY ts
  MEASURES A.id AS aid, B.id AS bid, C.id AS cid, MATCH_ROWTIME() AS mt
  AFTER MATCH SKIP PAST LAST ROW
  PATTERN (A B C)
  DEFINE A AS name = 'a', B AS name = 'b', C AS name = 'c')
