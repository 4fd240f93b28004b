-- T-WIN-02: window assignment of ts 2021-06-30 00:00:04 for a 10-minute TUMBLE with offsets -6m,+4m,-4m,+6m,0 (named parameters in one branch); Flink rejects offsets of +-16m (abs(offset) must be < size)
CREATE TABLE probe (
  ts TIMESTAMP(3),
  id INT,
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '{{DATA}}/offset_probe.jsonl',
  'format' = 'json'
);

SELECT 'm6' AS off, window_start, window_end FROM TABLE(TUMBLE(DATA => TABLE probe, TIMECOL => DESCRIPTOR(ts), SIZE => INTERVAL '10' MINUTES, `OFFSET` => INTERVAL '-6' MINUTES))
UNION ALL
SELECT 'p4' AS off, window_start, window_end FROM TABLE(TUMBLE(TABLE probe, DESCRIPTOR(ts), INTERVAL '10' MINUTES, INTERVAL '4' MINUTES))
UNION ALL
SELECT 'm4' AS off, window_start, window_end FROM TABLE(TUMBLE(TABLE probe, DESCRIPTOR(ts), INTERVAL '10' MINUTES, INTERVAL '-4' MINUTES))
UNION ALL
SELECT 'p6' AS off, window_start, window_end FROM TABLE(TUMBLE(TABLE probe, DESCRIPTOR(ts), INTERVAL '10' MINUTES, INTERVAL '6' MINUTES))
UNION ALL
SELECT 'zero' AS off, window_start, window_end FROM TABLE(TUMBLE(TABLE probe, DESCRIPTOR(ts), INTERVAL '10' MINUTES, INTERVAL '0' MINUTES))
