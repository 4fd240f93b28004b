-- Two window aggregates joined on their window_start (aliased) and key alone: a regular join, as in Flink
CREATE TABLE sensors (ts TIMESTAMP(3), sensor STRING, `value` DOUBLE, reading BIGINT, level INT, status STRING, ok BOOLEAN,
  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND) WITH ('connector' = 'filesystem', 'path' = '{{DATA}}/sensors.jsonl', 'format' = 'json');
CREATE VIEW w AS SELECT sensor, window_start AS ws, COUNT(*) AS n FROM TABLE(TUMBLE(TABLE sensors, DESCRIPTOR(ts), INTERVAL '1' MINUTE)) GROUP BY sensor, window_start, window_end;
CREATE VIEW x AS SELECT sensor, window_start AS ws, MAX(reading) AS m FROM TABLE(TUMBLE(TABLE sensors, DESCRIPTOR(ts), INTERVAL '1' MINUTE)) GROUP BY sensor, window_start, window_end;
SELECT w.sensor, w.ws, w.n, x.m FROM w JOIN x ON w.sensor = x.sensor AND w.ws = x.ws;
