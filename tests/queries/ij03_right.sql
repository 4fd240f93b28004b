-- T-IJ-03: right outer interval join with a residual condition
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

SELECT t2.k, t2.id AS rid, t1.id AS lid FROM T1 t1 RIGHT OUTER JOIN T2 t2 ON t1.k = t2.k AND t1.rowtime BETWEEN t2.rowtime - INTERVAL '5' SECOND AND t2.rowtime + INTERVAL '6' SECOND AND t2.id <> 'R-5';
