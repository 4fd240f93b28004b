-- Strict bounds (< and >), written in either order, in a WHERE clause
CREATE TABLE T1 (
  k STRING,
  id STRING,
  rowtime TIMESTAMP(3),
  WATERMARK FOR rowtime AS rowtime - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{{DATA}}/ij02_t1.jsonl', 'format' = 'json');

CREATE TABLE T2 (
  k STRING,
  id STRING,
  rowtime TIMESTAMP(3),
  WATERMARK FOR rowtime AS rowtime - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{{DATA}}/ij02_t2.jsonl', 'format' = 'json');

SELECT t1.k, t2.id AS rid, t1.id AS lid FROM T1 t1, T2 t2 WHERE t1.k = t2.k AND t1.rowtime > t2.rowtime - INTERVAL '5' SECOND AND t2.rowtime + INTERVAL '6' SECOND > t1.rowtime;
