-- T-MR-07: ties on event time broken by further ORDER BY keys, DESC and ASC (Flink ITCase testEventsAreProperlyOrdered)
CREATE TABLE events (
  id INT,
  name STRING,
  secondaryOrder INT,
  ternaryOrder INT,
  rowtime TIMESTAMP(3),
  WATERMARK FOR rowtime AS rowtime - INTERVAL '5' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{{DATA}}/mr_secondary_order.jsonl', 'format' = 'json');

SELECT * FROM events MATCH_RECOGNIZE (
  ORDER BY rowtime, secondaryOrder DESC, ternaryOrder ASC
  MEASURES A.id AS aid, B.id AS bid, C.id AS cid
  AFTER MATCH SKIP PAST LAST ROW
  PATTERN (A B C)
  DEFINE A AS name = 'a', B AS name = 'b', C AS name = 'c')
