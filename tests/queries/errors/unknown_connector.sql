CREATE TABLE t (a INT) WITH ('connector' = 'kafka2');
SELECT a FROM t;
