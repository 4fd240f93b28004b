CREATE TABLE t (a INT) WITH ('connector' = 'filesystem', 'path' = '{{DATA}}/err_events.jsonl', 'format' = 'json', 'pathh' = 'x');
SELECT a FROM t;
