CREATE TABLE t (a TEXT) WITH ('connector' = 'blackhole');
