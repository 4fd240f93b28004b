-- A match held back by an earlier partial match: its MATCH_ROWTIME() is the
-- time of the row that released it (Flink stamps matches with the row being
-- processed). The match starting at 00:00:02 completes at 00:00:03 but waits
-- for the one starting at 00:00:01, which completes at 00:00:04.
CREATE TABLE t (
  id STRING,
  v BIGINT,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '{{DATA}}/mr_held_rowtime.jsonl',
  'format' = 'json'
);

SELECT * FROM t MATCH_RECOGNIZE (
  PARTITION BY id
  ORDER BY ts
  MEASURES A.ts AS a_ts, C.ts AS c_ts, MATCH_ROWTIME() AS mt
  ONE ROW PER MATCH
  AFTER MATCH SKIP TO NEXT ROW
  PATTERN (A B* C)
  DEFINE B AS B.v <= A.v + 10, C AS C.v > A.v + 10
);
