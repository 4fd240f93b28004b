CREATE TABLE events (
  ts TIMESTAMP(3),
  k STRING,
  v BIGINT,
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{{DATA}}/err_events.jsonl', 'format' = 'json');


SELECT a.k FROM events a JOIN events b ON a.k = b.k AND a.ts >= b.ts - INTERVAL '1' MINUTE;
