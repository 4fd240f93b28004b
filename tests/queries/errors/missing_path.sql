CREATE TABLE t (a INT) WITH ('connector' = 'filesystem', 'path' = '{{DATA}}/no_such_file.jsonl', 'format' = 'json');
SELECT a FROM t;
