CREATE TABLE events (
  ts TIMESTAMP(3),
  k STRING,
  v BIGINT,
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{{DATA}}/err_events.jsonl', 'format' = 'json');
CREATE TABLE counts (k STRING, n BIGINT) WITH ('connector' = 'filesystem', 'path' = '/tmp/vigil-never-written', 'format' = 'json');

INSERT INTO counts SELECT k, COUNT(*) FROM events GROUP BY k;
