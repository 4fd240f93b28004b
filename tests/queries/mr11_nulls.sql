-- T-MR-11: NULL fields and names, no PARTITION BY (Flink ITCase testSimplePatternWithNulls)
CREATE TABLE events (
  id INT,
  name STRING,
  nullField STRING,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{{DATA}}/mr_nulls.jsonl', 'format' = 'json');

SELECT aid, bNull, cid, aNull FROM events MATCH_RECOGNIZE (
  ORDER BY ts
  MEASURES A.id AS aid, A.nullField AS aNull, LAST(B.nullField) AS bNull, C.id AS cid
  AFTER MATCH SKIP PAST LAST ROW
  PATTERN (A B C)
  DEFINE A AS name = 'a' AND nullField IS NULL,
         B AS name = 'b' AND LAST(A.nullField) IS NULL,
         C AS name = 'c')
