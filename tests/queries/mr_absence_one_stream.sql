-- Absence in one stream: orders not paid in full within 15 minutes; partial
-- payments and shipments in between do not count. The expected rows come from
-- Flink through the equivalent interval LEFT JOIN in flink/mr_absence_one_stream.sql.
CREATE TABLE shop_events (
  kind STRING,
  order_id BIGINT,
  customer STRING,
  amount BIGINT,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '{{DATA}}/shop_events.jsonl',
  'format' = 'json'
);

SELECT * FROM shop_events MATCH_RECOGNIZE (
  PARTITION BY order_id
  ORDER BY ts
  MEASURES O.customer AS customer, O.amount AS amount, O.ts AS order_ts,
           MATCH_ROWTIME() AS unpaid_at, MATCH_TIMED_OUT() AS timed_out
  ONE ROW PER MATCH
  AFTER MATCH SKIP PAST LAST ROW
  PATTERN (O NOT P) WITHIN INTERVAL '15' MINUTE
  DEFINE
    O AS O.kind = 'order',
    P AS P.kind = 'payment' AND P.amount >= O.amount
);
