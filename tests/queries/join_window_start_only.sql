-- Equating window_start alone is no window join: Flink runs a regular join (WindowJoinUtil.satisfyWindowJoin)
CREATE TABLE events (
  ts TIMESTAMP(3),
  k STRING,
  v BIGINT,
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{{DATA}}/err_events.jsonl', 'format' = 'json');

SELECT a.k FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(ts), INTERVAL '1' MINUTE)) a JOIN TABLE(TUMBLE(TABLE events, DESCRIPTOR(ts), INTERVAL '1' MINUTE)) b ON a.k = b.k AND a.window_start = b.window_start;
