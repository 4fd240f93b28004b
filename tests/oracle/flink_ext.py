#!/usr/bin/env python3
"""Run a Flink SQL script like ../shared/flink-oracle/flink_run.py (which this
imports), with what that oracle lacks:

- nested values print as JSON: a ROW as an object of its field names, an
  ARRAY as an array, a MAP as an object (flink_run.py stops at a ROW: "Row is
  not JSON serializable");
- `--files`: the rows go through Flink's own JSON format instead of PyFlink's
  collect, which fails on a NULL inside a ROW and loses ROW field names: the
  query is inserted into a filesystem table of format json in a temporary
  directory, whose lines are printed (append-only results only);
- `--batch`: Flink's BATCH runtime mode, which the streaming oracle cannot
  switch to (the mode is fixed when its TableEnvironment is made). For queries
  Flink refuses on a stream but runs on a bounded table, such as Nexmark q6 (an
  OVER aggregation over a Top-1's result): the batch result is the table a
  streaming engine's updating result must end at.

    flink_ext.py SCRIPT.sql [--batch] [--files]   (the oracle's python: $(../shared/flink-oracle/setup.sh))

Prints the rows of the last statement as JSON lines; an update or delete row
carries "_op", as flink_run.py prints it.
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


def nested(oracle):
    from pyflink.common import Row

    def to_json(v):
        if isinstance(v, Row):
            names = v._fields if getattr(v, '_fields', None) else ['f%d' % i for i in range(len(v))]
            return {n: to_json(x) for n, x in zip(names, v)}
        if isinstance(v, dict):
            return {str(k): to_json(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [to_json(x) for x in v]
        return oracle.to_json(v)
    return to_json


def print_via_files(env, query):
    import glob
    import tempfile
    from pyflink.table import Schema, TableDescriptor
    table = env.sql_query(query)
    schema = Schema.new_builder().from_row_data_type(table.get_schema().to_row_data_type()).build()
    out = tempfile.mkdtemp(prefix='flink-ext-')
    env.create_temporary_table('__flink_ext_out', TableDescriptor.for_connector('filesystem')
                               .schema(schema)
                               .option('path', out)
                               .format('json')
                               .build())
    table.execute_insert('__flink_ext_out').wait()
    for f in sorted(glob.glob(os.path.join(out, '**', '*'), recursive=True)):
        name = os.path.basename(f)
        if os.path.isfile(f) and not name.startswith('.') and not name.startswith('_'):
            with open(f) as lines:
                for line in lines:
                    if line.strip():
                        print(line.strip())


def main():
    oracle = load_oracle()
    from pyflink.table import EnvironmentSettings, TableEnvironment
    from pyflink.common import RowKind

    batch = '--batch' in sys.argv[2:]
    settings = EnvironmentSettings.in_batch_mode() if batch else EnvironmentSettings.in_streaming_mode()
    env = TableEnvironment.create(settings)
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
    if '--files' in sys.argv[2:]:
        print_via_files(env, stmts[-1])
        return
    to_json = nested(oracle)
    result = env.execute_sql(stmts[-1])
    names = result.get_table_schema().get_field_names()
    with result.collect() as rows:
        for row in rows:
            obj = {k: to_json(v) for k, v in zip(names, row)}
            if row.get_row_kind() != RowKind.INSERT:
                obj['_op'] = str(row.get_row_kind())
            print(json.dumps(obj, ensure_ascii=False))


if __name__ == '__main__':
    main()
