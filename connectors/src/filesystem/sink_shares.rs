//! The file sink of a job running as several processes: each process's
//! pending parts are committed once whoever takes them over, and a process
//! removes only the leftovers of the runs it restored, never the files
//! another process has still to commit.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::Int64Array;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use vigil_engine::connector::{Share, Sink, SinkState, TableSpec};
use vigil_engine::metrics::Metrics;

use super::sink::FileSink;

fn spec(dir: &Path) -> TableSpec {
    let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, true)]));
    let options: BTreeMap<String, String> = [
        ("connector", "filesystem"),
        ("format", "csv"),
        ("path", &dir.display().to_string()),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let mut spec = TableSpec::new("out", schema, options);
    spec.job_options
        .insert("execution.checkpointing.interval".into(), "1 s".into());
    spec
}

fn rows(spec: &TableSpec, ids: std::ops::Range<i64>) -> RecordBatch {
    RecordBatch::try_new(
        spec.schema.clone(),
        vec![Arc::new(Int64Array::from_iter_values(ids))],
    )
    .expect("batch")
}

/// A sink of process `index` of `count` in `generation`.
fn sink_of(spec: &TableSpec, index: usize, count: usize, generation: u64) -> FileSink {
    let mut s = FileSink::new(spec, &Metrics::new()).expect("sink");
    if count > 1 {
        s.assign(Share {
            index,
            count,
            generation,
        })
        .expect("assign");
    }
    s
}

/// The ids in committed files, sorted, and the number of in-progress files.
fn committed(dir: &Path) -> (Vec<i64>, usize) {
    let (mut ids, mut open) = (vec![], 0);
    for e in std::fs::read_dir(dir).expect("dir").flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".inprogress") {
            open += 1;
        } else if name.starts_with("part-") {
            let text = std::fs::read_to_string(e.path()).expect("read");
            ids.extend(text.lines().map(|l| l.parse::<i64>().expect("id")));
        }
    }
    ids.sort_unstable();
    (ids, open)
}

/// Two processes pre-commit checkpoint 1 and write on; both die before the
/// commit. A new generation of two restores them: the first to start writes
/// and pre-commits before the second restored, and must not remove the
/// second's pending files. Each share's pending rows are committed once,
/// the rows after the barrier are gone, and a rescale to one process then
/// commits the rest.
#[tokio::test]
async fn pending_parts_of_every_process_commit_once_and_no_process_removes_another_s() {
    let dir = std::env::temp_dir().join(format!("vigil-file-shares-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let spec = spec(&dir);
    let (mut a, mut b) = (sink_of(&spec, 0, 2, 7), sink_of(&spec, 1, 2, 7));
    a.write(rows(&spec, 0..5)).await.expect("write");
    b.write(rows(&spec, 5..10)).await.expect("write");
    let sa = a.pre_commit(1).await.expect("pre-commit");
    let sb = b.pre_commit(1).await.expect("pre-commit");
    a.write(rows(&spec, 100..105)).await.expect("write");
    b.write(rows(&spec, 105..110)).await.expect("write");
    a.stop().await.expect("stop");
    b.stop().await.expect("stop");
    drop((a, b));
    assert_eq!(committed(&dir), (vec![], 4), "nothing is visible yet");

    // Generation 8, two processes: process 0 starts first.
    let mut a = sink_of(&spec, 0, 2, 8);
    a.restore(&[SinkState {
        share: 0,
        bytes: sa,
    }])
    .await
    .expect("restore");
    a.write(rows(&spec, 10..12)).await.expect("write");
    let sa = a.pre_commit(2).await.expect("pre-commit");
    let mut b = sink_of(&spec, 1, 2, 8);
    b.restore(&[SinkState {
        share: 1,
        bytes: sb,
    }])
    .await
    .expect("restore");
    b.write(rows(&spec, 12..14)).await.expect("write");
    let sb = b.pre_commit(2).await.expect("pre-commit");
    let expected: Vec<i64> = (0..10).collect();
    assert_eq!(
        committed(&dir),
        (expected, 2),
        "both shares' checkpoint-1 rows committed once; only generation 8's pending parts remain"
    );
    drop((a, b));

    // One process takes over both shares of checkpoint 2.
    let mut one = sink_of(&spec, 0, 1, 9);
    let states = [
        SinkState {
            share: 0,
            bytes: sa,
        },
        SinkState {
            share: 1,
            bytes: sb,
        },
    ];
    one.restore(&states).await.expect("restore");
    one.write(rows(&spec, 14..15)).await.expect("write");
    one.finish().await.expect("finish");
    assert_eq!(committed(&dir), ((0..15).collect(), 0));
    std::fs::remove_dir_all(&dir).expect("clean");
}
