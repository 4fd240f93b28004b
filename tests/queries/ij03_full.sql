-- Full outer interval join over the T-IJ-03 data: unmatched rows of both sides padded
CREATE TABLE T1 (
  k STRING,
  id STRING,
  rowtime TIMESTAMP(3),
  WATERMARK FOR rowtime AS rowtime - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{{DATA}}/ij03_t1.jsonl', 'format' = 'json');

CREATE TABLE T2 (
  k STRING,
  id STRING,
  rowtime TIMESTAMP(3),
  WATERMARK FOR rowtime AS rowtime - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{{DATA}}/ij03_t2.jsonl', 'format' = 'json');

SELECT t1.k AS lk, t2.k AS rk, t2.id AS rid, t1.id AS lid FROM T1 t1 FULL OUTER JOIN T2 t2 ON t1.k = t2.k AND t1.rowtime BETWEEN t2.rowtime - INTERVAL '2' SECOND AND t2.rowtime + INTERVAL '1' SECOND;
