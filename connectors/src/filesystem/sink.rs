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
//!
//! Of a job running as several processes, each writes its own parts (the run
//! name carries the generation and process), the pending parts of every
//! process that wrote the restored checkpoint are committed by one process
//! of the new generation, and each removes only the leftovers of the runs it
//! restored. Without checkpoints, process `i` writes `part-<i>.json`.
//!
//! In two-phase mode a part also rolls (closes, and a new one opens) when it
//! reaches `sink.rolling-policy.file-size` or has been open for
//! `sink.rolling-policy.rollover-interval`: a rolled part is committed with
//! the next checkpoint, or at once when the job takes no checkpoints.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use datafusion::arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use vigil_engine::connector::{Share, Sink, SinkState, TableSpec};
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
    /// Of a job running as several processes, this process's share: its
    /// files are named apart, and it removes only the in-progress files of
    /// the runs whose state it restored (another process may still have to
    /// commit the others').
    share: Option<Share>,
    /// The runs whose state this process restored.
    restored_runs: Vec<String>,
    /// When a part rolls.
    roll: RollPolicy,
    /// When the open part was opened, and the bytes written into it.
    opened: Option<(std::time::Instant, u64)>,
    /// Whether the job takes checkpoints (rolled parts then wait for one).
    checkpointing: bool,
}

/// When an open part file is closed and a new one started (Flink's
/// `sink.rolling-policy.*`).
#[derive(Debug, Clone, Copy)]
pub struct RollPolicy {
    /// Bytes after which the part rolls.
    pub file_size: u64,
    /// How long a part stays open at most.
    pub rollover: std::time::Duration,
}

impl RollPolicy {
    /// The policy `spec`'s options set (Flink's defaults: 128 MB, 30 min).
    pub fn from_spec(spec: &TableSpec) -> Result<Self> {
        let size = match spec.option("sink.rolling-policy.file-size") {
            None => 128 << 20,
            Some(v) => vigil_engine::window::spill::parse_memory_size(v).ok_or_else(|| {
                connector_error(
                    "filesystem",
                    spec,
                    format!(
                        "'sink.rolling-policy.file-size' must be a size like '128MB', not '{v}'"
                    ),
                )
            })? as u64,
        };
        let rollover = match spec.option("sink.rolling-policy.rollover-interval") {
            None => std::time::Duration::from_secs(30 * 60),
            Some(v) => vigil_engine::time::parse_duration(v).ok_or_else(|| {
                connector_error("filesystem", spec, format!("'sink.rolling-policy.rollover-interval' must be a duration like '1 min', not '{v}'"))
            })?,
        };
        Ok(Self {
            file_size: size.max(1),
            rollover,
        })
    }

    fn due(&self, opened: Option<(std::time::Instant, u64)>) -> bool {
        opened.is_some_and(|(at, bytes)| bytes >= self.file_size || at.elapsed() >= self.rollover)
    }
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
    /// Parts rolled since the last barrier: pending with the next one.
    #[serde(default)]
    rolled: Vec<u64>,
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
        Self::build(spec, metrics, local_path(spec)?, false)
    }

    /// A sink writing `spec`'s rows into `dir` (a partition of a
    /// partitioned table), always in two phases: each part is visible once
    /// it is committed, so that a partition marked done holds only whole
    /// files.
    pub fn in_dir(spec: &TableSpec, metrics: &Metrics, dir: PathBuf) -> Result<Self> {
        Self::build(spec, metrics, dir, true)
    }

    fn build(spec: &TableSpec, metrics: &Metrics, dir: PathBuf, two_phase: bool) -> Result<Self> {
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
            dir,
            file: None,
            encoder: encoder(spec)?,
            records: Records::default(),
            rows: metrics.counter(names::SINK_ROWS, &spec.name),
            rejects: SinkRejects::new(spec, metrics)?,
            txn: (checkpointing || exactly_once || two_phase).then(|| Txn {
                run: run_id(&job_key),
                next_part: 0,
                current: None,
                pending: vec![],
                rolled: vec![],
            }),
            job_key,
            swept: false,
            share: None,
            restored_runs: vec![],
            roll: RollPolicy::from_spec(spec)?,
            opened: None,
            checkpointing,
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
        let prefixes: Vec<String> = match self.share {
            None => vec![format!(".part-{}", self.job_key)],
            Some(_) => self
                .restored_runs
                .iter()
                .map(|run| format!(".part-{run}-"))
                .collect(),
        };
        if prefixes.is_empty() {
            return Ok(());
        }
        let Ok(mut entries) = tokio::fs::read_dir(&self.dir).await else {
            return Ok(());
        };
        while let Ok(Some(e)) = entries.next_entry().await {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if prefixes.iter().any(|p| name.starts_with(p.as_str()))
                && name.ends_with(".inprogress")
            {
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
            None => self
                .dir
                .join(format!("part-{}.json", self.share.map_or(0, |s| s.index))),
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
        self.opened = Some((std::time::Instant::now(), 0));
        Ok(())
    }

    /// Closes the open part if the rolling policy says so (two-phase mode).
    pub async fn roll_if_due(&mut self) -> Result<()> {
        if self.txn.is_some() && self.roll.due(self.opened) {
            self.roll().await?;
        }
        Ok(())
    }

    /// Closes the open part: committed with the next checkpoint, or at once
    /// without checkpoints.
    pub async fn roll(&mut self) -> Result<()> {
        self.close().await?;
        let Some(t) = &mut self.txn else {
            return Ok(());
        };
        let Some(part) = t.current.take() else {
            return Ok(());
        };
        if self.checkpointing {
            t.rolled.push(part);
            Ok(())
        } else {
            self.commit_parts(&[part]).await
        }
    }

    /// Whether every row written so far is in a committed file.
    pub fn all_committed(&self) -> bool {
        self.txn
            .as_ref()
            .is_none_or(|t| t.current.is_none() && t.pending.is_empty() && t.rolled.is_empty())
    }

    /// The directory it writes into.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Flushes and syncs the open file and closes it.
    async fn close(&mut self) -> Result<()> {
        self.opened = None;
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
        match &self.txn {
            Some(t) => self.commit_parts_of(t, parts).await,
            None => Ok(()),
        }
    }

    /// Renames the in-progress files of run `t`'s parts into their final names.
    async fn commit_parts_of(&self, t: &Txn, parts: &[u64]) -> Result<()> {
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
        if let Some((_, bytes)) = &mut self.opened {
            *bytes += self.records.buf.len() as u64;
        }
        let failed = self.records.failed();
        self.rows.add((batch.num_rows() - failed.len()) as u64);
        self.rejects.reject(&batch, failed).await?;
        self.roll_if_due().await
    }

    async fn on_watermark(&mut self, _wm: vigil_engine::message::EventTime) -> Result<()> {
        // A part open past its rollover interval rolls while input is quiet.
        self.roll_if_due().await
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
            parts.append(&mut t.rolled);
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
        for part in t.rolled.drain(..).chain(t.current.take()) {
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

    async fn restore(&mut self, states: &[SinkState]) -> Result<()> {
        if self.txn.is_none() {
            return Ok(());
        }
        for state in states.iter().filter(|s| !s.bytes.is_empty()) {
            let mut t: Txn = serde_json::from_slice(&state.bytes)
                .map_err(|e| self.error(format!("cannot read the stored sink state: {e}")))?;
            let parts: Vec<u64> = t.pending.drain(..).map(|(_, p)| p).collect();
            // The checkpoint completed, so what it pre-committed is final.
            self.commit_parts_of(&t, &parts).await?;
            // Anything else in progress was written after it: removed before
            // this run writes (see `sweep_orphans`), as it is replayed.
            self.restored_runs.push(t.run.clone());
            if self.share.is_none() {
                // One process: its files go on under the restored run's name.
                t.rolled.clear();
                self.txn = Some(t);
            }
        }
        Ok(())
    }

    fn assign(&mut self, share: Share) -> Result<()> {
        self.share = Some(share);
        if let Some(t) = &mut self.txn {
            t.run = run_id(&format!(
                "{}g{:016x}s{}-",
                self.job_key, share.generation, share.index
            ));
        }
        Ok(())
    }
}
