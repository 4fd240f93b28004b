#!/usr/bin/env bash
# Regenerate the golden outputs in tests/golden/ by running each tests/queries/*.sql
# through Apache Flink 2.3 (the oracle in ../shared/flink-oracle, PyFlink).
#
#   tests/golden/regen.sh                 # every query
#   tests/golden/regen.sh NAME [NAME...]  # only these (NAME or NAME.sql or a path)
#
# A query Flink SQL cannot express (Vigil's extensions) gets its expected rows from
# an equivalent Flink query of the same name in tests/queries/flink/.
# {{DATA}} in a script is replaced by the absolute path of tests/data.
# Jobs run one at a time. Any Flink failure aborts the script with a non-zero exit,
# and the previous golden file of that query is left untouched.
# Environment: FLINK_ORACLE (default: <repo>/../shared/flink-oracle).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tests=$(cd "$here/.." && pwd)
repo=$(cd "$tests/.." && pwd)
oracle=${FLINK_ORACLE:-$(cd "$repo/../shared/flink-oracle" 2>/dev/null && pwd || true)}
if [[ -z $oracle || ! -x $oracle/flink_run.py ]]; then
  echo "regen.sh: flink oracle not found (set FLINK_ORACLE)" >&2
  exit 2
fi
data="$tests/data"
queries="$tests/queries"

py=$("$oracle/setup.sh")

names=()
if [[ $# -eq 0 ]]; then
  for f in "$queries"/*.sql; do
    names+=("$(basename "$f" .sql)")
  done
else
  for a in "$@"; do
    a=$(basename "$a")
    names+=("${a%.sql}")
  done
fi

tmpdir=$(mktemp -d)
trap 'rm -rf "$tmpdir"' EXIT

failed=0
for name in "${names[@]}"; do
  src="$queries/$name.sql"
  if [[ ! -f $src ]]; then
    echo "regen.sh: no such query: $src" >&2
    exit 2
  fi
  # A query beyond Flink SQL has its Flink formulation in queries/flink/.
  if [[ -f $queries/flink/$name.sql ]]; then
    src="$queries/flink/$name.sql"
  fi
  script="$tmpdir/$name.sql"
  # literal replacement of {{DATA}} (no regex / sed escaping issues with the path)
  DATA="$data" "$py" -c 'import os,sys; sys.stdout.write(open(sys.argv[1]).read().replace("{{DATA}}", os.environ["DATA"]))' "$src" > "$script"
  out="$here/$name.jsonl"
  tmp="$out.tmp"
  log="$tmpdir/$name.log"
  printf '%-40s ' "$name"
  # A query whose rows hold ROW, ARRAY or MAP values (`-- oracle: nested`)
  # runs through tests/oracle/flink_ext.py, which prints them through
  # Flink's JSON format.
  runner=("$oracle/flink_run.py" "$script")
  # An updating one (`-- oracle: nested-changelog`) through PyFlink's
  # collect, which keeps the row kinds, its values printed as JSON.
  # Beyond Flink's streaming mode (`-- oracle: batch`): Flink's batch
  # result over the same files, the table Vigil's updating result must end at.
  if grep -q -- '-- oracle: batch' "$src"; then
    runner=("$tests/oracle/flink_ext.py" "$script" --batch)
  elif grep -q -- '-- oracle: nested-changelog' "$src"; then
    runner=("$tests/oracle/flink_ext.py" "$script")
  elif grep -q -- '-- oracle: nested' "$src"; then
    runner=("$tests/oracle/flink_ext.py" "$script" --files)
  fi
  if "$py" "${runner[@]}" > "$tmp" 2> "$log"; then
    mv "$tmp" "$out"
    echo "$(wc -l < "$out") rows"
  else
    rc=$?
    echo "FAILED (exit $rc)"
    echo "----- Flink stderr for $name (last 60 lines) -----" >&2
    tail -n 60 "$log" >&2
    rm -f "$tmp"
    failed=1
    break
  fi
done

if [[ $failed -ne 0 ]]; then
  echo "regen.sh: FAILED" >&2
  exit 1
fi
