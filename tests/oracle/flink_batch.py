#!/usr/bin/env python3
"""Run a Flink SQL script like ../shared/flink-oracle/flink_run.py, but in Flink's
BATCH runtime mode, which the streaming oracle cannot switch to (the mode is fixed
when its TableEnvironment is made). For queries Flink refuses on a stream but runs
on a bounded table, such as Nexmark q6 (an OVER aggregation over a Top-1's result):
the batch result is the table that a streaming engine's updating result must end at.

    flink_batch.py SCRIPT.sql   (the oracle's python: $(../shared/flink-oracle/setup.sh))

Prints the rows of the last statement as JSON lines, as flink_run.py does.
"""
import importlib.util
import json
import os
import re
import sys


def load_oracle():
    here = os.path.dirname(os.path.abspath(__file__))
    default = os.path.join(here, '..', '..', '..', 'shared', 'flink-oracle')
    path = os.path.join(os.environ.get('FLINK_ORACLE', default), 'flink_run.py')
    spec = importlib.util.spec_from_file_location('flink_run', path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main():
    oracle = load_oracle()
    from pyflink.table import EnvironmentSettings, TableEnvironment

    env = TableEnvironment.create(EnvironmentSettings.in_batch_mode())
    conf = env.get_config()
    conf.set('parallelism.default', '1')
    conf.set('table.local-time-zone', 'UTC')
    stmts = oracle.split_statements(open(sys.argv[1]).read())
    for s in stmts[:-1]:
        m = re.match(r"(?is)^SET\s+'?([^'=\s]+)'?\s*=\s*'?([^']*)'?$", s)
        if m:
            conf.set(m.group(1), m.group(2))
        else:
            env.execute_sql(s)
    result = env.execute_sql(stmts[-1])
    names = result.get_table_schema().get_field_names()
    with result.collect() as rows:
        for row in rows:
            print(json.dumps({k: oracle.to_json(v) for k, v in zip(names, row)}, ensure_ascii=False))


if __name__ == '__main__':
    main()
