-- T-MR-09: FIRST/LAST offsets on the universal variable (Flink ITCase testLogicalOffsetsWithStarVariable)
CREATE TABLE Ticker (
  id INT,
  symbol STRING,
  tstamp TIMESTAMP(3),
  price INT,
  WATERMARK FOR tstamp AS tstamp - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{{DATA}}/mr_star_offsets.jsonl', 'format' = 'json');

SELECT * FROM Ticker MATCH_RECOGNIZE (
  PARTITION BY symbol ORDER BY tstamp
  MEASURES FIRST(id, 0) AS id0, FIRST(id, 1) AS id1, FIRST(id, 2) AS id2, FIRST(id, 3) AS id3,
           FIRST(id, 4) AS id4, FIRST(id, 5) AS id5, FIRST(id, 6) AS id6, FIRST(id, 7) AS id7,
           LAST(id, 0) AS id8, LAST(id, 1) AS id9, LAST(id, 2) AS id10, LAST(id, 3) AS id11,
           LAST(id, 4) AS id12, LAST(id, 5) AS id13, LAST(id, 6) AS id14, LAST(id, 7) AS id15
  AFTER MATCH SKIP PAST LAST ROW
  PATTERN (DOWN{2,} UP)
  DEFINE DOWN AS price < LAST(price, 1) OR LAST(price, 1) IS NULL,
         UP AS price = FIRST(price) AND price > FIRST(price, 3) AND price = LAST(price, 7))
