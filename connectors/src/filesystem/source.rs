//! Bounded JSON-lines file source. Each subtask reads its splits (see
//! [`super::splits`]) one after another: a thread reads a split in chunks
//! cut at line ends; chunks are decoded in parallel and emitted in order.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::StreamExt;
use tokio::sync::mpsc;
use vigil_engine::connector::{Source, SourceContext, TableSpec};
use vigil_engine::metrics::{names, Counter, Metrics};
use vigil_engine::{EngineError, Result};

use super::splits::{self, Chunk, Split};
use super::{data_files, local_path};
use crate::error::connector_error;
use crate::format::decode::RecordDecoder;
use crate::format::{Format, Part};

/// Malformed lines logged one by one before the rest are only counted.
const LOGGED_BAD_LINES: u64 = 20;

/// Reads JSON lines from a file, or from every file of a directory in name
/// order; as several subtasks, each reads its splits.
#[derive(Clone)]
pub struct FileSource {
    table: String,
    path: PathBuf,
    decoder: RecordDecoder,
    parallelism: usize,
    rows: Counter,
    malformed: Counter,
    /// The positions a restore handed it (read once the files are listed).
    restored: Vec<Vec<u8>>,
    /// Which subtask of how many it is.
    subtask: (usize, usize),
    /// The size of the splits of a file (`source.split-size`).
    split_size: u64,
    /// Where records that cannot be decoded go, if the table names a place
    /// (one for all subtasks).
    dlq: Option<Arc<tokio::sync::Mutex<crate::dlq::DeadLetters>>>,
}

impl FileSource {
    /// Validates the path (it must exist) and prepares the decoder.
    pub fn new(spec: &TableSpec, metrics: &Metrics) -> Result<Self> {
        let path = local_path(spec)?;
        if !path.exists() {
            return Err(connector_error(
                "filesystem",
                spec,
                format!(
                    "path '{}' does not exist; check the table's 'path' option",
                    path.display()
                ),
            ));
        }
        let parallelism = match spec.option("source.decode-parallelism") {
            Some(p) => p.parse::<usize>().ok().filter(|p| *p > 0).ok_or_else(|| {
                connector_error(
                    "filesystem",
                    spec,
                    format!("'source.decode-parallelism' must be a positive integer, not '{p}'"),
                )
            })?,
            None => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
        };
        let split_size = match spec.option("source.split-size") {
            Some(v) => vigil_engine::window::spill::parse_memory_size(v)
                .filter(|b| *b > 0)
                .ok_or_else(|| {
                    connector_error(
                        "filesystem",
                        spec,
                        format!("'source.split-size' must be a size like '16 mb', not '{v}'"),
                    )
                })? as u64,
            None => splits::DEFAULT_SPLIT_BYTES,
        };
        Ok(Self {
            split_size,
            table: spec.name.clone(),
            path,
            decoder: RecordDecoder::for_format(
                Format::from_spec("filesystem", spec, Part::Table, super::SOURCE_FORMATS)?
                    .unwrap_or(Format::Json),
                spec.schema.clone(),
            ),
            parallelism,
            rows: metrics.counter(names::SOURCE_ROWS, &spec.name),
            malformed: metrics.counter(names::MALFORMED_RECORDS, &spec.name),
            restored: vec![],
            subtask: (0, 1),
            dlq: crate::dlq::DeadLetters::from_spec(spec, metrics)?
                .map(|d| Arc::new(tokio::sync::Mutex::new(d))),
        })
    }

    /// The data files with their sizes.
    fn sized_files(&self) -> Result<Vec<(String, u64)>> {
        self.files()?
            .into_iter()
            .map(|f| {
                let size = std::fs::metadata(&f)
                    .map_err(|e| self.error(format!("cannot read '{}': {e}", f.display())))?
                    .len();
                Ok((f.display().to_string(), size))
            })
            .collect()
    }

    fn files(&self) -> Result<Vec<PathBuf>> {
        data_files(&self.path).map_err(|e| {
            self.error(format!(
                "cannot list directory '{}': {e}",
                self.path.display()
            ))
        })
    }

    fn error(&self, message: String) -> EngineError {
        EngineError::Connector {
            connector: "filesystem".into(),
            table: self.table.clone(),
            message,
        }
    }

    /// Injects a checkpoint barrier if one is due, with the positions of
    /// the subtask's splits.
    async fn maybe_barrier(&self, ctx: &SourceContext, splits: &[Split]) -> Result<()> {
        if let Some(id) = ctx.checkpoint_due() {
            let state = serde_json::to_vec(splits)
                .map_err(|e| self.error(format!("cannot encode the position: {e}")))?;
            ctx.barrier(id, state).await?;
        }
        Ok(())
    }

    /// Reads the splits of `splits` that are not done, in order, each from
    /// where it was left: one reader thread, chunks decoded in parallel.
    async fn read(&self, splits: &mut [Split], ctx: &SourceContext) -> Result<()> {
        let (tx, rx) = mpsc::channel::<Chunk>(self.parallelism * 2);
        // Decoded chunks' buffers go back to the reader: fresh 2 MiB buffers per
        // chunk would cost a page fault per 4 KiB.
        let (recycle_tx, recycle_rx) = std::sync::mpsc::channel::<Vec<u8>>();
        let todo: Vec<(usize, Split)> = splits
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.done())
            .map(|(i, s)| (i, s.clone()))
            .collect();
        let reader = tokio::task::spawn_blocking(move || splits::read_splits(todo, tx, recycle_rx));
        let decoder = self.decoder.clone();
        let chunks =
            futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
        let mut decoded = chunks
            .map(|chunk: Chunk| {
                let d = decoder.clone();
                let recycle = recycle_tx.clone();
                tokio::task::spawn_blocking(move || {
                    let decoded = d.decode_chunk(&chunk.bytes, chunk.first_line);
                    let _ = recycle.send(chunk.bytes);
                    (decoded, chunk.split, chunk.end, chunk.next_line)
                })
            })
            .buffered(self.parallelism)
            .boxed();
        while let Some(res) = decoded.next().await {
            let (res, at, end, next_line) =
                res.map_err(|e| self.error(format!("decoder task failed: {e}")))?;
            self.bad_records(&splits[at].file, &res.bad).await?;
            if let Some(batch) = res.batch {
                self.rows.add(batch.num_rows() as u64);
                ctx.emit(batch).await?;
            }
            splits[at].offset = end;
            splits[at].line = next_line;
            self.maybe_barrier(ctx, splits).await?;
        }
        reader
            .await
            .map_err(|e| self.error(format!("reader task failed: {e}")))?
            .map_err(|e| self.error(format!("cannot read '{}': {e}", self.path.display())))
    }

    /// Counts and logs the malformed records of a chunk of file `name`, and
    /// sends them to the dead-letter output if there is one.
    async fn bad_records(
        &self,
        name: &str,
        bad: &[crate::format::decode::BadRecord],
    ) -> Result<()> {
        for b in bad {
            let seen = self.malformed.get();
            self.malformed.add(1);
            if seen < LOGGED_BAD_LINES {
                let to = if self.dlq.is_some() {
                    "sent to the dead-letter output"
                } else {
                    "skipped"
                };
                tracing::warn!(table = %self.table, "{name}:{}: {to} a malformed record: {} ({})", b.line, b.reason, b.excerpt);
            }
        }
        if let (Some(dlq), false) = (&self.dlq, bad.is_empty()) {
            let letters: Vec<crate::dlq::DeadLetter<'_>> = bad
                .iter()
                .map(|b| crate::dlq::DeadLetter {
                    position: crate::dlq::Position::Line {
                        file: name.to_string(),
                        line: b.line,
                    },
                    error: &b.reason,
                    key: None,
                    record: &b.raw,
                    headers: vec![],
                })
                .collect();
            dlq.lock().await.send(&letters).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Source for FileSource {
    fn describe(&self) -> String {
        format!("FileSource({}: {})", self.table, self.path.display())
    }

    fn supports_checkpoints(&self) -> bool {
        true
    }

    /// Kept until `run` lists the files (see [`splits::stored`]).
    fn restore(&mut self, states: &[Vec<u8>]) -> Result<()> {
        self.restored = states.to_vec();
        Ok(())
    }

    fn splits(&self) -> bool {
        true
    }

    fn subtasks(self: Box<Self>, n: usize) -> Result<Vec<Box<dyn Source>>> {
        (0..n)
            .map(|i| {
                // The same table: counters and dead-letter output shared.
                let mut sub = (*self).clone();
                sub.subtask = (i, n);
                Ok(Box::new(sub) as Box<dyn Source>)
            })
            .collect()
    }

    async fn run(self: Box<Self>, ctx: SourceContext) -> Result<()> {
        let files = self.sized_files()?;
        let stored = splits::stored(&self.restored, &files).map_err(|e| self.error(e))?;
        let mut mine = splits::assign(stored, &files, self.split_size, self.subtask);
        self.read(&mut mine, &ctx).await?;
        for split in mine.iter_mut() {
            // One no line starts in was never moved to its end.
            split.offset = split.offset.max(split.end);
        }
        let bad = self.malformed.get();
        if bad > 0 && self.subtask.0 == 0 {
            tracing::warn!(table = %self.table, "skipped {bad} malformed record(s) in total");
        }
        let state = serde_json::to_vec(&mine)
            .map_err(|e| self.error(format!("cannot encode the position: {e}")))?;
        ctx.finished_at(state);
        Ok(())
    }
}
