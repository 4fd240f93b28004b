-- The join's left time stays a time attribute: a tumbling window counts the pairs
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

CREATE VIEW pairs AS SELECT t1.k, t1.id AS lid, t2.id AS rid, t1.rowtime AS lt FROM T1 t1 JOIN T2 t2 ON t1.k = t2.k AND t1.rowtime BETWEEN t2.rowtime - INTERVAL '5' SECOND AND t2.rowtime + INTERVAL '6' SECOND;

SELECT k, window_start, window_end, COUNT(*) AS n FROM TABLE(TUMBLE(TABLE pairs, DESCRIPTOR(lt), INTERVAL '10' SECOND)) GROUP BY k, window_start, window_end;
