#!/usr/bin/env python3
"""Flink 2.3's rows for the upsert-kafka cases tests/kafka/upsert_*.sql,
written to tests/golden/kafka/<case>.jsonl.

Starts one Apache Kafka node (KRaft, loopback, from the jars `.ci/kafka/install`
puts in VIGIL_KAFKA_LIBS), has Flink write the records of
tests/data/upsert_rates.jsonl into a one-partition topic (a key, a value
and a timestamp each, a null value being a tombstone) through its `kafka` connector with the
`raw` format, then runs each case with `{{BROKERS}}`, `{{TOPIC}}` and
`{{DATA}}` filled in, through PyFlink with the Kafka SQL connector from Maven
Central (`mvn dependency:copy`, cached in ~/.cache/flink-jars).

    $(../shared/flink-oracle/setup.sh) tests/kafka/regen_upsert.py [case ...]

tests/kafka_broker.rs produces the same records with rdkafka and checks that
Vigil's rows for the same scripts equal these.
"""
import glob
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
CONNECTOR = 'org.apache.flink:flink-sql-connector-kafka:5.0.0-2.2'
JARS = os.path.expanduser('~/.cache/flink-jars')


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def connector_jar():
    name = CONNECTOR.split(':')
    jar = os.path.join(JARS, f'{name[1]}-{name[2]}.jar')
    if not os.path.exists(jar):
        os.makedirs(JARS, exist_ok=True)
        subprocess.run(['mvn', '-q', '-B', 'dependency:copy', f'-Dartifact={CONNECTOR}',
                        f'-DoutputDirectory={JARS}'], check=True)
    return jar


def start_kafka(workdir):
    libs = os.environ.get('VIGIL_KAFKA_LIBS') or glob.glob(
        os.path.expanduser('~/.cache/vigil-kafka/*/libs'))[0]
    port, controller = free_port(), free_port()
    config = os.path.join(workdir, 'server.properties')
    with open(config, 'w') as f:
        f.write(f"""process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs={workdir}/data
num.partitions=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.ms=-1
""")
    java = ['java', '-Xmx512m', '-cp', os.path.join(libs, '*')]
    subprocess.run(java + ['kafka.tools.StorageTool', 'format', '-t', 'vigil-regen-cluster-0',
                           '-c', config], check=True, capture_output=True)
    log = open(os.path.join(workdir, 'kafka.log'), 'w')
    proc = subprocess.Popen(java + ['kafka.Kafka', config], stdout=log, stderr=log)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            socket.create_connection(('127.0.0.1', port), timeout=1).close()
            return proc, f'127.0.0.1:{port}'
        except OSError:
            time.sleep(0.5)
    proc.kill()
    sys.exit('Kafka did not start; see ' + log.name)


def sql_string(s):
    return "'" + s.replace("'", "''") + "'"


def produce(env, brokers, topic):
    env.execute_sql(f"""CREATE TABLE produced (k STRING, v STRING,
      t TIMESTAMP_LTZ(3) METADATA FROM 'timestamp') WITH (
      'connector' = 'kafka', 'topic' = '{topic}', 'properties.bootstrap.servers' = '{brokers}',
      'key.format' = 'raw', 'key.fields' = 'k', 'value.format' = 'raw',
      'value.fields-include' = 'EXCEPT_KEY')""")
    rows = []
    with open(os.path.join(TESTS, 'data', 'upsert_rates.jsonl')) as f:
        for line in f:
            rec = json.loads(line)
            key = sql_string(json.dumps(rec['key']))
            value = 'CAST(NULL AS STRING)' if rec['value'] is None else sql_string(
                json.dumps(rec['value']))
            rows.append(f"({key}, {value}, TO_TIMESTAMP_LTZ({rec['timestamp']}, 3))")
    env.execute_sql('INSERT INTO produced VALUES ' + ', '.join(rows)).wait()


def main():
    sys.path.insert(0, os.path.join(TESTS, 'oracle'))
    import flink_ext
    oracle = flink_ext.load_oracle()
    from pyflink.table import EnvironmentSettings, TableEnvironment
    from pyflink.common import RowKind

    cases = sys.argv[1:] or sorted(
        os.path.basename(p)[:-4] for p in glob.glob(os.path.join(HERE, 'upsert_*.sql')))
    jar = connector_jar()
    with tempfile.TemporaryDirectory() as workdir:
        proc, brokers = start_kafka(workdir)
        try:
            topic = 'upsert-rates'
            env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
            env.get_config().set('pipeline.jars', 'file://' + jar)
            env.get_config().set('parallelism.default', '1')
            produce(env, brokers, topic)
            for case in cases:
                env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
                conf = env.get_config()
                conf.set('pipeline.jars', 'file://' + jar)
                conf.set('parallelism.default', '1')
                conf.set('table.local-time-zone', 'UTC')
                text = open(os.path.join(HERE, case + '.sql')).read()
                text = (text.replace('{{BROKERS}}', brokers).replace('{{TOPIC}}', topic)
                        .replace('{{DATA}}', os.path.join(TESTS, 'data')))
                stmts = oracle.split_statements(text)
                for s in stmts[:-1]:
                    env.execute_sql(s)
                result = env.execute_sql(stmts[-1])
                names = result.get_table_schema().get_field_names()
                out = []
                with result.collect() as rows:
                    for row in rows:
                        obj = {k: oracle.to_json(v) for k, v in zip(names, row)}
                        if row.get_row_kind() != RowKind.INSERT:
                            obj['_op'] = str(row.get_row_kind())
                        out.append(json.dumps(obj, ensure_ascii=False))
                path = os.path.join(TESTS, 'golden', 'kafka', case + '.jsonl')
                with open(path, 'w') as f:
                    f.write(''.join(line + '\n' for line in out))
                print(f'{case:40} {len(out)} rows')
        finally:
            proc.kill()
            proc.wait()


if __name__ == '__main__':
    main()
