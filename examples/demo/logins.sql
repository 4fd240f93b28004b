-- Security: five or more failed logins to one account within 20 seconds
-- (sliding every 5 seconds) looks like a brute-force attack.
-- Part of `vigil demo`, which produces the logins into its embedded Kafka broker.
SET 'table.exec.source.idle-timeout' = '5 s';

CREATE TABLE logins (
  user_name STRING,
  ip STRING,
  success BOOLEAN,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
) WITH (
  'connector' = 'kafka',
  'topic' = 'logins',
  'properties.bootstrap.servers' = 'embedded',
  'properties.group.id' = 'vigil-demo-logins',
  'scan.startup.mode' = 'earliest-offset',
  'format' = 'json'
);

CREATE TABLE brute_force (
  user_name STRING,
  window_start TIMESTAMP(3),
  window_end TIMESTAMP(3),
  failures BIGINT,
  last_ip STRING
) WITH ('connector' = 'print', 'print-identifier' = 'BRUTE-FORCE');

INSERT INTO brute_force
SELECT user_name, window_start, window_end, COUNT(*), MAX(ip)
FROM TABLE(HOP(TABLE logins, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '20' SECOND))
WHERE NOT success
GROUP BY window_start, window_end, user_name
HAVING COUNT(*) >= 5;
