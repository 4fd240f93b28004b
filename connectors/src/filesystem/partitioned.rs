//! The sink of a `PARTITIONED BY (k1, k2)` filesystem table, as Flink's:
//! each row goes into the directory `path/k1=v1/k2=v2/` of its partition
//! values (escaped as Flink escapes them, NULL as `partition.default-name`),
//! without the partition columns, which the path holds. Each partition is a
//! two-phase [`FileSink`] of its own (parts roll by the rolling policy and
//! become visible when committed). A partition is committed, its success
//! file written, once its trigger holds (see [`CommitPolicy`]) and every
//! row it received is in a committed part; at the end of the input every
//! partition is committed.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, AsArray, UInt32Array};
use datafusion::arrow::compute::{cast, take_record_batch};
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::HashMap;
use serde::{Deserialize, Serialize};
use vigil_engine::connector::{Share, Sink, SinkState, TableSpec};
use vigil_engine::message::{CheckpointId, EventTime};
use vigil_engine::metrics::Metrics;
use vigil_engine::{EngineError, Result};

use super::local_path;
use super::partition_commit::{escape_path_name, CommitPolicy, Trigger};
use super::sink::FileSink;
use crate::error::connector_error;

/// One partition being written.
struct Partition {
    values: Vec<String>,
    sink: FileSink,
    /// When its first row came (wall clock, ms), for the process-time trigger.
    created: EventTime,
    /// Whether its success file is written and nothing came since.
    committed: bool,
}

/// What a checkpoint stores: each partition's file-sink state.
#[derive(Serialize, Deserialize)]
struct Stored {
    partitions: BTreeMap<String, (Vec<String>, EventTime, Vec<u8>)>,
}

/// Writes a partitioned table's rows into a directory per partition.
pub struct PartitionedFileSink {
    table: String,
    base: PathBuf,
    /// The spec of the files' rows (the table's columns but the keys).
    data_spec: TableSpec,
    metrics: Metrics,
    keys: Vec<String>,
    key_idx: Vec<usize>,
    data_idx: Vec<usize>,
    converter: RowConverter,
    default_name: String,
    policy: CommitPolicy,
    partitions: BTreeMap<String, Partition>,
    watermark: EventTime,
    /// Of a job running as several processes, this process's share.
    share: Option<Share>,
}

fn now_ms() -> EventTime {
    chrono::Utc::now().timestamp_millis()
}

impl PartitionedFileSink {
    /// The sink of `spec`, whose `partition_keys` are set.
    pub fn new(spec: &TableSpec, metrics: &Metrics) -> Result<Self> {
        let schema = spec.schema.clone();
        let mut key_idx = vec![];
        for k in &spec.partition_keys {
            let i = schema.index_of(k).map_err(|_| {
                connector_error(
                    "filesystem",
                    spec,
                    format!("partition column '{k}' is not a column of the table"),
                )
            })?;
            key_idx.push(i);
        }
        let data_idx: Vec<usize> = (0..schema.fields().len())
            .filter(|i| !key_idx.contains(i))
            .collect();
        if data_idx.is_empty() {
            return Err(connector_error(
                "filesystem",
                spec,
                "every column is a partition column: the files would hold nothing; keep at least one column out of PARTITIONED BY",
            ));
        }
        let data_schema = Arc::new(Schema::new(
            data_idx
                .iter()
                .map(|&i| schema.field(i).clone())
                .collect::<Vec<_>>(),
        ));
        let data_spec = TableSpec {
            schema: data_schema,
            partition_keys: vec![],
            ..spec.clone()
        };
        let converter = RowConverter::new(
            key_idx
                .iter()
                .map(|&i| SortField::new(schema.field(i).data_type().clone()))
                .collect(),
        )
        .map_err(|e| connector_error("filesystem", spec, format!("cannot key partitions: {e}")))?;
        Ok(Self {
            table: spec.name.clone(),
            base: local_path(spec)?,
            data_spec,
            metrics: metrics.clone(),
            keys: spec.partition_keys.clone(),
            key_idx,
            data_idx,
            converter,
            default_name: spec
                .option("partition.default-name")
                .unwrap_or("__DEFAULT_PARTITION__")
                .to_string(),
            policy: CommitPolicy::from_spec(spec)?,
            partitions: BTreeMap::new(),
            watermark: EventTime::MIN,
            share: None,
        })
    }

    fn error(&self, message: String) -> EngineError {
        EngineError::Connector {
            connector: "filesystem".into(),
            table: self.table.clone(),
            message,
        }
    }

    /// The partition values of row `row` as text (NULL: the default name).
    fn values(&self, batch: &RecordBatch, row: usize) -> Result<Vec<String>> {
        self.key_idx
            .iter()
            .map(|&i| {
                let col = batch.column(i);
                if col.is_null(row) {
                    return Ok(self.default_name.clone());
                }
                let text = cast(&col.slice(row, 1), &DataType::Utf8).map_err(|e| {
                    self.error(format!("cannot write a partition value as text: {e}"))
                })?;
                Ok(text.as_string::<i32>().value(0).to_string())
            })
            .collect()
    }

    /// The partition of `values`, opened if new.
    fn partition(&mut self, values: Vec<String>) -> Result<&mut Partition> {
        let rel: Vec<String> = self
            .keys
            .iter()
            .zip(&values)
            .map(|(k, v)| format!("{k}={}", escape_path_name(v)))
            .collect();
        let rel = rel.join("/");
        if !self.partitions.contains_key(&rel) {
            let mut sink = FileSink::in_dir(&self.data_spec, &self.metrics, self.base.join(&rel))?;
            if let Some(share) = self.share {
                sink.assign(share)?;
            }
            self.partitions.insert(
                rel.clone(),
                Partition {
                    values,
                    sink,
                    created: now_ms(),
                    committed: false,
                },
            );
        }
        self.partitions
            .get_mut(&rel)
            .ok_or_else(|| EngineError::Graph("partition vanished".into()))
    }

    /// Whether `p`'s trigger holds (`end`: the input ended, every one does).
    fn due(&self, p: &Partition, end: bool) -> bool {
        if end {
            return true;
        }
        match &self.policy.trigger {
            Trigger::ProcessTime => now_ms() >= p.created.saturating_add(self.policy.delay),
            Trigger::PartitionTime { .. } => self
                .policy
                .partition_time(&self.keys, &p.values)
                .is_some_and(|t| self.watermark > t.saturating_add(self.policy.delay)),
        }
    }

    /// Commits the partitions whose trigger holds: without checkpoints their
    /// open part is closed and committed first; with them, only partitions
    /// whose rows are all committed already are.
    async fn commit_due(&mut self, end: bool, checkpointing: bool) -> Result<()> {
        let due: Vec<String> = self
            .partitions
            .iter()
            .filter(|(_, p)| !p.committed && self.due(p, end))
            .map(|(k, _)| k.clone())
            .collect();
        for rel in due {
            let Some(p) = self.partitions.get_mut(&rel) else {
                continue;
            };
            if !checkpointing {
                p.sink.roll().await?;
            }
            if !p.sink.all_committed() {
                continue;
            }
            if let Some(name) = &self.policy.success_file {
                let path = p.sink.dir().join(name);
                tokio::fs::create_dir_all(p.sink.dir())
                    .await
                    .and(tokio::fs::write(&path, b"").await)
                    .map_err(|e| EngineError::Connector {
                        connector: "filesystem".into(),
                        table: self.table.clone(),
                        message: format!("cannot write '{}': {e}", path.display()),
                    })?;
            }
            p.committed = true;
        }
        Ok(())
    }

    fn checkpointing(&self) -> bool {
        self.data_spec
            .job_options
            .contains_key("execution.checkpointing.interval")
    }
}

#[async_trait]
impl Sink for PartitionedFileSink {
    fn describe(&self) -> String {
        format!(
            "PartitionedFileSink({}: {} by {})",
            self.table,
            self.base.display(),
            self.keys.join(", ")
        )
    }

    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        let key_cols: Vec<_> = self
            .key_idx
            .iter()
            .map(|&i| batch.column(i).clone())
            .collect();
        let rows = self
            .converter
            .convert_columns(&key_cols)
            .map_err(|e| self.error(format!("cannot key partitions: {e}")))?;
        // Row indices by partition, in order of first appearance.
        let mut groups: HashMap<_, usize> = HashMap::new();
        let mut members: Vec<(usize, Vec<u32>)> = vec![];
        for i in 0..batch.num_rows() {
            let g = *groups.entry(rows.row(i)).or_insert_with(|| {
                members.push((i, vec![]));
                members.len() - 1
            });
            members[g].1.push(i as u32);
        }
        let data = batch
            .project(&self.data_idx)
            .map_err(|e| self.error(format!("cannot split off the partition columns: {e}")))?;
        for (first, idx) in members {
            let values = self.values(&batch, first)?;
            let part = if idx.len() == data.num_rows() {
                data.clone()
            } else {
                take_record_batch(&data, &UInt32Array::from(idx))
                    .map_err(|e| self.error(format!("cannot gather a partition's rows: {e}")))?
            };
            let p = self.partition(values)?;
            p.committed = false;
            p.sink.write(part).await?;
        }
        Ok(())
    }

    async fn on_watermark(&mut self, wm: EventTime) -> Result<()> {
        self.watermark = self.watermark.max(wm);
        for p in self.partitions.values_mut() {
            p.sink.roll_if_due().await?;
        }
        let checkpointing = self.checkpointing();
        self.commit_due(false, checkpointing).await
    }

    async fn finish(&mut self) -> Result<()> {
        for p in self.partitions.values_mut() {
            p.sink.finish().await?;
        }
        self.commit_due(true, false).await
    }

    async fn stop(&mut self) -> Result<()> {
        for p in self.partitions.values_mut() {
            p.sink.stop().await?;
        }
        Ok(())
    }

    async fn pre_commit(&mut self, id: CheckpointId) -> Result<Vec<u8>> {
        let mut stored = Stored {
            partitions: BTreeMap::new(),
        };
        for (rel, p) in &mut self.partitions {
            let state = p.sink.pre_commit(id).await?;
            stored
                .partitions
                .insert(rel.clone(), (p.values.clone(), p.created, state));
        }
        serde_json::to_vec(&stored)
            .map_err(|e| self.error(format!("cannot encode sink state: {e}")))
    }

    async fn commit(&mut self, id: CheckpointId) -> Result<()> {
        for p in self.partitions.values_mut() {
            p.sink.commit(id).await?;
        }
        self.commit_due(false, true).await
    }

    async fn restore(&mut self, states: &[SinkState]) -> Result<()> {
        for state in states.iter().filter(|s| !s.bytes.is_empty()) {
            let stored: Stored = serde_json::from_slice(&state.bytes)
                .map_err(|e| self.error(format!("cannot read the stored sink state: {e}")))?;
            for (rel, (values, created, bytes)) in stored.partitions {
                let restored = [SinkState {
                    share: state.share,
                    bytes,
                }];
                if let Some(p) = self.partitions.get_mut(&rel) {
                    // Another process wrote this partition too.
                    p.sink.restore(&restored).await?;
                    p.created = p.created.min(created);
                    continue;
                }
                let mut sink =
                    FileSink::in_dir(&self.data_spec, &self.metrics, self.base.join(&rel))?;
                if let Some(share) = self.share {
                    sink.assign(share)?;
                }
                sink.restore(&restored).await?;
                self.partitions.insert(
                    rel,
                    Partition {
                        values,
                        sink,
                        created,
                        committed: false,
                    },
                );
            }
        }
        Ok(())
    }

    fn assign(&mut self, share: Share) -> Result<()> {
        self.share = Some(share);
        for p in self.partitions.values_mut() {
            p.sink.assign(share)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::Field;

    fn spec(dir: &std::path::Path, extra: &[(&str, &str)]) -> TableSpec {
        let schema = Arc::new(Schema::new(vec![
            Field::new("price", DataType::Int64, true),
            Field::new("dt", DataType::Utf8, true),
            Field::new("hm", DataType::Utf8, true),
        ]));
        let mut options: BTreeMap<String, String> = [
            ("connector", "filesystem"),
            ("format", "csv"),
            ("sink.partition-commit.trigger", "partition-time"),
            ("sink.partition-commit.delay", "1 min"),
            ("sink.partition-commit.policy.kind", "success-file"),
            ("partition.time-extractor.timestamp-pattern", "$dt $hm:00"),
        ]
        .iter()
        .chain(extra)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        options.insert("path".into(), dir.display().to_string());
        let mut spec = TableSpec::new("bids", schema, options);
        spec.partition_keys = vec!["dt".into(), "hm".into()];
        spec
    }

    fn batch(spec: &TableSpec, rows: &[(i64, Option<&str>, &str)]) -> RecordBatch {
        RecordBatch::try_new(
            spec.schema.clone(),
            vec![
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
                Arc::new(StringArray::from_iter(rows.iter().map(|r| r.1))),
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.2))),
            ],
        )
        .unwrap()
    }

    fn ms(text: &str) -> EventTime {
        chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
            .unwrap()
            .and_utc()
            .timestamp_millis()
    }

    /// The committed data files of a partition directory and their lines.
    fn lines(dir: &std::path::Path) -> Vec<String> {
        let mut out = vec![];
        for f in super::super::data_files(dir).unwrap() {
            out.extend(
                std::fs::read_to_string(f)
                    .unwrap()
                    .lines()
                    .map(str::to_string),
            );
        }
        out.sort();
        out
    }

    #[tokio::test]
    async fn rows_go_to_their_partitions_directory_which_is_committed_when_the_watermark_passes_it()
    {
        let dir = std::env::temp_dir().join(format!("vigil-partitioned-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let spec = spec(&dir, &[]);
        let mut sink = PartitionedFileSink::new(&spec, &Metrics::new()).unwrap();
        sink.write(batch(
            &spec,
            &[
                (1, Some("2015-07-15"), "00:01"),
                (2, Some("2015-07-15"), "00:02"),
                (3, Some("2015-07-15"), "00:01"),
                (4, None, "00:01"),
            ],
        ))
        .await
        .unwrap();
        let first = dir.join("dt=2015-07-15").join("hm=00%3A01");
        let second = dir.join("dt=2015-07-15").join("hm=00%3A02");
        // 00:01 + 1 min delay is not yet behind the watermark.
        sink.on_watermark(ms("2015-07-15 00:02:00")).await.unwrap();
        assert!(!first.join("_SUCCESS").exists());
        assert!(
            lines(&first).is_empty(),
            "rows are invisible until committed"
        );
        sink.on_watermark(ms("2015-07-15 00:02:00") + 1)
            .await
            .unwrap();
        assert!(first.join("_SUCCESS").exists());
        assert_eq!(
            lines(&first),
            vec!["1", "3"],
            "the partition columns are in the path only"
        );
        assert!(!second.join("_SUCCESS").exists());
        // A NULL value goes to the default partition; the end commits all.
        sink.finish().await.unwrap();
        assert!(second.join("_SUCCESS").exists());
        assert_eq!(lines(&second), vec!["2"]);
        let default = dir.join("dt=__DEFAULT_PARTITION__").join("hm=00%3A01");
        assert_eq!(lines(&default), vec!["4"]);
        assert!(default.join("_SUCCESS").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_part_rolls_at_its_size_and_the_rolled_part_is_visible_at_once_without_checkpoints() {
        let dir = std::env::temp_dir().join(format!("vigil-rolling-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let spec = spec(&dir, &[("sink.rolling-policy.file-size", "1b")]);
        let mut sink = PartitionedFileSink::new(&spec, &Metrics::new()).unwrap();
        for price in [7, 8] {
            sink.write(batch(&spec, &[(price, Some("2015-07-15"), "00:01")]))
                .await
                .unwrap();
        }
        let p = dir.join("dt=2015-07-15").join("hm=00%3A01");
        assert_eq!(super::super::data_files(&p).unwrap().len(), 2);
        assert_eq!(lines(&p), vec!["7", "8"]);
        assert!(!p.join("_SUCCESS").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
