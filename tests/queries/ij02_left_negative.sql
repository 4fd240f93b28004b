-- T-IJ-02: left outer join with an empty (negative) interval: every left row padded
CREATE TABLE T1 (
  k STRING,
  id STRING,
  rowtime TIMESTAMP(3),
  WATERMARK FOR rowtime AS rowtime - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{{DATA}}/ij02n_t1.jsonl', 'format' = 'json');

CREATE TABLE T2 (
  k STRING,
  id STRING,
  rowtime TIMESTAMP(3),
  WATERMARK FOR rowtime AS rowtime - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{{DATA}}/ij02n_t2.jsonl', 'format' = 'json');

SELECT t2.k, t2.id AS rid, t1.id AS lid FROM T1 t1 LEFT OUTER JOIN T2 t2 ON t1.k = t2.k AND t1.rowtime BETWEEN t2.rowtime + INTERVAL '3' SECOND AND t2.rowtime + INTERVAL '1' SECOND;
