-- T-IJ-04: equal times as the interval (t2.rowtime = t1.rowtime)
CREATE TABLE T1 (
  k STRING,
  val STRING,
  rowtime TIMESTAMP(3),
  WATERMARK FOR rowtime AS rowtime - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{{DATA}}/ij04_t1.jsonl', 'format' = 'json');

CREATE TABLE T2 (
  k STRING,
  val STRING,
  rowtime TIMESTAMP(3),
  WATERMARK FOR rowtime AS rowtime - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{{DATA}}/ij04_t2.jsonl', 'format' = 'json');

SELECT t1.k, t1.rowtime AS t, t1.val AS lval, t2.val AS rval FROM T1 t1 JOIN T2 t2 ON t1.k = t2.k AND t2.rowtime = t1.rowtime;
