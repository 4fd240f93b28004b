-- T-MR-06a: WITHIN INTERVAL '1' MINUTE (Flink MatchRecognizeITCase testTimeConstraint)
CREATE TABLE events (
  id INT,
  name STRING,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{{DATA}}/mr_within.jsonl', 'format' = 'json');

SELECT * FROM events MATCH_RECOGNIZE (
  ORDER BY ts
  MEASURES A.id AS aid, B.id AS bid, C.id AS cid
  AFTER MATCH SKIP PAST LAST ROW
  PATTERN (A B C) WITHIN INTERVAL '1' MINUTE
  DEFINE A AS name = 'a', B AS name = 'b', C AS name = 'c')
