CREATE TABLE t (a INT, WATERMARK FOR ts AS ts) WITH ('connector' = 'blackhole');
