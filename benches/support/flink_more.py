#!/usr/bin/env python3
"""Time in Apache Flink 2.3 (local, PyFlink) the benchmark queries that
../shared/bench/flink_bench.py lacks, with the same table and settings.
    flink_more.py BIDS.jsonl [query ...]   prints: query rows_in seconds events_per_s"""
import sys, time
from pyflink.table import EnvironmentSettings, TableEnvironment
path = sys.argv[1]
# Nexmark q15 (bidding statistics per day: COUNT DISTINCT with FILTER), with
# mini-batch on as the Nexmark suite runs it.
Q = {
 'q15': """SELECT DATE_FORMAT(`dateTime`, 'yyyy-MM-dd') AS `day`,
   count(*) AS total_bids,
   count(*) FILTER (WHERE price < 10000) AS rank1_bids,
   count(*) FILTER (WHERE price >= 10000 AND price < 1000000) AS rank2_bids,
   count(*) FILTER (WHERE price >= 1000000) AS rank3_bids,
   count(DISTINCT bidder) AS total_bidders,
   count(DISTINCT bidder) FILTER (WHERE price < 10000) AS rank1_bidders,
   count(DISTINCT bidder) FILTER (WHERE price >= 10000 AND price < 1000000) AS rank2_bidders,
   count(DISTINCT bidder) FILTER (WHERE price >= 1000000) AS rank3_bidders,
   count(DISTINCT auction) AS total_auctions,
   count(DISTINCT auction) FILTER (WHERE price < 10000) AS rank1_auctions,
   count(DISTINCT auction) FILTER (WHERE price >= 10000 AND price < 1000000) AS rank2_auctions,
   count(DISTINCT auction) FILTER (WHERE price >= 1000000) AS rank3_auctions
 FROM bid GROUP BY DATE_FORMAT(`dateTime`, 'yyyy-MM-dd')""",
}
MINI_BATCH = {'q15'}
rows = sum(1 for _ in open(path))
for q in (sys.argv[2:] or sorted(Q)):
    if q not in Q:
        continue
    env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    env.get_config().set('parallelism.default', '2')
    env.get_config().set('table.local-time-zone', 'UTC')
    if q in MINI_BATCH:
        env.get_config().set('table.exec.mini-batch.enabled', 'true')
        env.get_config().set('table.exec.mini-batch.allow-latency', '2 s')
        env.get_config().set('table.exec.mini-batch.size', '5000')
    env.execute_sql("""CREATE TABLE bid (auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, url STRING,
      `dateTime` TIMESTAMP(3), extra STRING, WATERMARK FOR `dateTime` AS `dateTime` - INTERVAL '4' SECOND)
      WITH ('connector'='filesystem','path'='file://%s','format'='json')""" % path)
    t = env.sql_query(Q[q])
    cols = ', '.join('`%s` %s' % (n, str(ty)) for n, ty in zip(t.get_schema().get_field_names(), t.get_schema().get_field_data_types()))
    env.execute_sql("CREATE TABLE sink (%s) WITH ('connector'='blackhole')" % cols)
    t0 = time.time()
    t.execute_insert('sink').wait()
    s = time.time() - t0
    print('%s rows_in=%d seconds=%.2f events_per_s=%.0f' % (q, rows, s, rows / s), flush=True)
