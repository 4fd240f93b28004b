CREATE TABLE events (
  ts TIMESTAMP(3),
  k STRING,
  v BIGINT,
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{{DATA}}/err_events.jsonl', 'format' = 'json');


SELECT * FROM events MATCH_RECOGNIZE (ORDER BY ts MEASURES A.v AS v ALL ROWS PER MATCH PATTERN (A) DEFINE A AS v > 1);
