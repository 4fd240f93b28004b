//! File sink (records of the table's format, a line each) into the directory named by `'path'` (created if missing).
//!
//! Without checkpoints it writes `part-0.json` directly. With checkpoints (or
//! `'sink.delivery-guarantee' = 'exactly-once'`) it commits in two phases, as
//! Flink's FileSink: rows go to a hidden in-progress file
//! (`.part-<run>-<n>.json.inprogress`, skipped by readers of the directory),
//! which is closed at a checkpoint barrier (pre-commit) and renamed to
//! `part-<run>-<n>.json` once that checkpoint completes (commit). After a crash,
//! the files the restored checkpoint pre-committed are committed, and any later
//! in-progress file is deleted: its rows are replayed from the sources.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use datafusion::arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use vigil_engine::connector::{Sink, TableSpec};
use vigil_engine::message::CheckpointId;
use vigil_engine::metrics::{names, Counter, Metrics};
use vigil_engine::{EngineError, Result};

use super::local_path;
use crate::error::connector_error;
use crate::format::encode::{RecordEncoder, Records};
use crate::format::{Format, Part};
use crate::sink_rejects::SinkRejects;

/// Writes rows as lines of the table's format.
pub struct FileSink {
    table: String,
    dir: PathBuf,
    file: Option<tokio::io::BufWriter<tokio::fs::File>>,
    encoder: RecordEncoder,
    records: Records,
    rows: Counter,
    /// Rows the format cannot carry: to `sink.dlq.*`, or logged.
    rejects: SinkRejects,
    /// Two-phase commit state; None writes `part-0.json` directly.
    txn: Option<Txn>,
    /// Starts the names of this job's and table's in-progress files, whatever
    /// the run (see [`FileSink::sweep_orphans`]).
    job_key: String,
    /// Whether the in-progress files of earlier runs were removed.
    swept: bool,
}

/// What a checkpoint stores of a transactional file sink.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Txn {
    /// Distinguishes this job's files from other runs writing the same directory.
    run: String,
    /// The number of the next part file.
    next_part: u64,
    /// The part being written, if any.
    #[serde(skip)]
    current: Option<u64>,
    /// Parts closed at a barrier, awaiting the commit of their checkpoint.
    pending: Vec<(CheckpointId, u64)>,
}

impl Txn {
    fn in_progress(&self, dir: &Path, part: u64) -> PathBuf {
        dir.join(format!(".part-{}-{part}.json.inprogress", self.run))
    }
    fn committed(&self, dir: &Path, part: u64) -> PathBuf {
        dir.join(format!("part-{}-{part}.json", self.run))
    }
}

/// The encoder for the sink's `format`.
fn encoder(spec: &TableSpec) -> Result<RecordEncoder> {
    let format = Format::from_spec("filesystem", spec, Part::Table, super::SINK_FORMATS)?
        .unwrap_or(Format::Json);
    RecordEncoder::new(format, spec, Part::Table)
}

/// A name for this run's files: the job's key, then time and process id, in hex.
fn run_id(job_key: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{job_key}{:x}{:x}",
        nanos & 0xffff_ffff_ffff,
        std::process::id()
    )
}

/// 8 hex digits naming the job (`pipeline.name`) and table, stable across runs.
fn job_key(spec: &TableSpec) -> String {
    use std::hash::Hasher;
    let mut h = siphasher::sip::SipHasher13::new();
    h.write(crate::row_id::job_name(spec).as_bytes());
    h.write_u8(0);
    h.write(spec.name.as_bytes());
    format!("{:08x}", h.finish() as u32)
}

impl FileSink {
    /// Prepares the sink; the file is created on first write.
    pub fn new(spec: &TableSpec, metrics: &Metrics) -> Result<Self> {
        let checkpointing = spec
            .job_options
            .contains_key("execution.checkpointing.interval");
        let exactly_once = match spec.option("sink.delivery-guarantee") {
            None => false,
            Some("exactly-once") => true,
            Some("at-least-once" | "none") => false,
            Some(other) => {
                return Err(connector_error(
                    "filesystem",
                    spec,
                    format!("'sink.delivery-guarantee' must be 'exactly-once', 'at-least-once' or 'none', not '{other}'"),
                ))
            }
        };
        let job_key = job_key(spec);
        Ok(Self {
            table: spec.name.clone(),
            dir: local_path(spec)?,
            file: None,
            encoder: encoder(spec)?,
            records: Records::default(),
            rows: metrics.counter(names::SINK_ROWS, &spec.name),
            rejects: SinkRejects::new(spec, metrics)?,
            txn: (checkpointing || exactly_once).then(|| Txn {
                run: run_id(&job_key),
                next_part: 0,
                current: None,
                pending: vec![],
            }),
            job_key,
            swept: false,
        })
    }

    fn error(&self, message: String) -> EngineError {
        EngineError::Connector {
            connector: "filesystem".into(),
            table: self.table.clone(),
            message,
        }
    }

    /// Removes the in-progress files that earlier runs of this job left for
    /// this table: rows written after their last checkpoint (replayed by this
    /// run), or by a run killed before its first checkpoint. Once, before the
    /// run writes or pre-commits anything; files it restored were committed.
    async fn sweep_orphans(&mut self) -> Result<()> {
        if self.swept || self.txn.is_none() {
            return Ok(());
        }
        self.swept = true;
        let prefix = format!(".part-{}", self.job_key);
        let Ok(mut entries) = tokio::fs::read_dir(&self.dir).await else {
            return Ok(());
        };
        while let Ok(Some(e)) = entries.next_entry().await {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(&prefix) && name.ends_with(".inprogress") {
                tracing::info!(table = %self.table, file = %name, "removing rows an earlier run wrote after its last checkpoint");
                tokio::fs::remove_file(e.path()).await.map_err(|err| {
                    self.error(format!("cannot remove '{}': {err}", e.path().display()))
                })?;
            }
        }
        Ok(())
    }

    async fn open(&mut self) -> Result<()> {
        if self.file.is_some() {
            return Ok(());
        }
        self.sweep_orphans().await?;
        tokio::fs::create_dir_all(&self.dir).await.map_err(|e| {
            self.error(format!(
                "cannot create directory '{}': {e}",
                self.dir.display()
            ))
        })?;
        let path = match &mut self.txn {
            None => self.dir.join("part-0.json"),
            Some(t) => {
                let part = t.next_part;
                t.next_part += 1;
                t.current = Some(part);
                t.in_progress(&self.dir, part)
            }
        };
        let f = tokio::fs::File::create(&path)
            .await
            .map_err(|e| self.error(format!("cannot create '{}': {e}", path.display())))?;
        self.file = Some(tokio::io::BufWriter::new(f));
        Ok(())
    }

    /// Flushes and syncs the open file and closes it.
    async fn close(&mut self) -> Result<()> {
        if let Some(mut f) = self.file.take() {
            let res = async {
                f.flush().await?;
                f.get_mut().sync_all().await
            }
            .await;
            res.map_err(|e| self.error(format!("cannot flush: {e}")))?;
        }
        Ok(())
    }

    /// Renames the in-progress files of parts into their final names.
    async fn commit_parts(&self, parts: &[u64]) -> Result<()> {
        let Some(t) = &self.txn else { return Ok(()) };
        for &part in parts {
            let from = t.in_progress(&self.dir, part);
            let to = t.committed(&self.dir, part);
            match tokio::fs::rename(&from, &to).await {
                Ok(()) => {}
                // Committed already (before a crash that followed the commit).
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && to.exists() => {}
                Err(e) => {
                    return Err(self.error(format!("cannot commit '{}': {e}", from.display())))
                }
            }
        }
        if !parts.is_empty() {
            sync_dir(&self.dir)
                .await
                .map_err(|e| self.error(format!("cannot sync '{}': {e}", self.dir.display())))?;
        }
        Ok(())
    }
}

async fn sync_dir(dir: &Path) -> std::io::Result<()> {
    tokio::fs::File::open(dir).await?.sync_all().await
}

#[async_trait]
impl Sink for FileSink {
    fn describe(&self) -> String {
        format!("FileSink({}: {})", self.table, self.dir.display())
    }

    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        self.open().await?;
        if let Err(e) = self.encoder.encode(&batch, &mut self.records) {
            return Err(self.error(format!("cannot encode rows: {e}")));
        }
        let res = match &mut self.file {
            Some(f) => f.write_all(&self.records.buf).await,
            None => Ok(()),
        };
        res.map_err(|e| self.error(format!("cannot write: {e}")))?;
        let failed = self.records.failed();
        self.rows.add((batch.num_rows() - failed.len()) as u64);
        self.rejects.reject(&batch, failed).await
    }

    async fn finish(&mut self) -> Result<()> {
        if self.txn.is_none() {
            // An empty result still leaves an (empty) output file, so readers find one.
            self.open().await?;
            return self.close().await;
        }
        // The input ended: everything written is final.
        self.close().await?;
        let mut parts: Vec<u64> = vec![];
        if let Some(t) = &mut self.txn {
            parts.extend(t.pending.drain(..).map(|(_, p)| p));
            parts.extend(t.current.take());
        }
        self.commit_parts(&parts).await
    }

    async fn stop(&mut self) -> Result<()> {
        if self.txn.is_none() {
            return self.finish().await;
        }
        // Uncommitted rows are replayed from the last checkpoint on restart.
        self.close().await
    }

    async fn pre_commit(&mut self, id: CheckpointId) -> Result<Vec<u8>> {
        self.sweep_orphans().await?;
        if self.txn.is_none() {
            self.close().await?;
            return Ok(vec![]);
        }
        self.close().await?;
        let Some(t) = &mut self.txn else {
            return Ok(vec![]);
        };
        if let Some(part) = t.current.take() {
            t.pending.push((id, part));
        }
        serde_json::to_vec(t).map_err(|e| self.error(format!("cannot encode sink state: {e}")))
    }

    async fn commit(&mut self, id: CheckpointId) -> Result<()> {
        let Some(t) = &mut self.txn else {
            return Ok(());
        };
        let parts: Vec<u64> = t
            .pending
            .iter()
            .filter(|(c, _)| *c <= id)
            .map(|(_, p)| *p)
            .collect();
        t.pending.retain(|(c, _)| *c > id);
        self.commit_parts(&parts).await
    }

    async fn restore(&mut self, state: &[u8]) -> Result<()> {
        if state.is_empty() || self.txn.is_none() {
            return Ok(());
        }
        let mut t: Txn = serde_json::from_slice(state)
            .map_err(|e| self.error(format!("cannot read the stored sink state: {e}")))?;
        let parts: Vec<u64> = t.pending.drain(..).map(|(_, p)| p).collect();
        self.txn = Some(t);
        // The checkpoint completed, so what it pre-committed is final.
        self.commit_parts(&parts).await?;
        // Anything else in progress was written after it: removed before
        // this run writes (see `sweep_orphans`), as it is replayed.
        Ok(())
    }
}
