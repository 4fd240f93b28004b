CREATE TABLE events (
  ts TIMESTAMP(3),
  k STRING,
  v BIGINT,
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{{DATA}}/err_events.jsonl', 'format' = 'json');


SELECT * FROM events MATCH_RECOGNIZE (ORDER BY ts MEASURES FINAL ABS(A.v) AS av ALL ROWS PER MATCH PATTERN (A B) DEFINE A AS v > 1);
