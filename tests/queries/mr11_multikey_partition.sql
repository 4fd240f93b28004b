-- T-MR-11: PARTITION BY two keys, LIKE and LAST(A.name, 2) in DEFINE (Flink ITCase testCodeSplitsAreProperlyGenerated)
CREATE TABLE events (
  id INT,
  name STRING,
  key1 STRING,
  key2 STRING,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{{DATA}}/mr_multikey.jsonl', 'format' = 'json');

SELECT * FROM events MATCH_RECOGNIZE (
  PARTITION BY key1, key2 ORDER BY ts
  MEASURES A.id AS aid, A.key1 AS akey1, LAST(B.id) AS bid, C.id AS cid, C.key2 AS ckey2
  AFTER MATCH SKIP PAST LAST ROW
  PATTERN (A B C)
  DEFINE A AS name = 'a' AND key1 LIKE '%key%' AND id > 0,
         B AS name = 'b' AND LAST(A.name, 2) IS NULL,
         C AS name = 'c' AND LAST(A.name) = 'a')
