//! Bounded JSON-lines file source. One thread reads the file in chunks cut at
//! line ends; chunks are decoded in parallel and emitted in file order.

use std::io::Read;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use futures::stream::StreamExt;
use tokio::sync::mpsc;
use vigil_engine::connector::{Source, SourceContext, TableSpec};
use vigil_engine::metrics::{names, Counter, Metrics};
use vigil_engine::{EngineError, Result};

use super::{data_files, local_path};
use crate::error::connector_error;
use crate::format::decode::RecordDecoder;
use crate::format::{Format, Part};

/// Bytes per chunk handed to a decoder.
const CHUNK_BYTES: usize = 1 << 21;
/// Malformed lines logged one by one before the rest are only counted.
const LOGGED_BAD_LINES: u64 = 20;

/// Reads JSON lines from a file, or from every file of a directory in name order.
pub struct FileSource {
    table: String,
    path: PathBuf,
    decoder: RecordDecoder,
    parallelism: usize,
    rows: Counter,
    malformed: Counter,
    /// Where a restored job resumes.
    resume: Option<Position>,
    /// Where records that cannot be decoded go, if the table names a place.
    dlq: Option<tokio::sync::Mutex<crate::dlq::DeadLetters>>,
}

/// How far the source has read: the next byte and line of a file. This is
/// what a checkpoint stores.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Position {
    file: String,
    offset: u64,
    line: u64,
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
        Ok(Self {
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
            resume: None,
            dlq: crate::dlq::DeadLetters::from_spec(spec, metrics)?.map(tokio::sync::Mutex::new),
        })
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

    /// Injects a checkpoint barrier if one is due, at position `pos`.
    async fn maybe_barrier(&self, ctx: &SourceContext, pos: &Position) -> Result<()> {
        if let Some(id) = ctx.checkpoint_due() {
            let state = serde_json::to_vec(pos)
                .map_err(|e| self.error(format!("cannot encode the position: {e}")))?;
            ctx.barrier(id, state).await?;
        }
        Ok(())
    }

    async fn read_file(&self, file: &Path, from: (u64, u64), ctx: &SourceContext) -> Result<()> {
        let (tx, rx) = mpsc::channel::<Chunk>(self.parallelism * 2);
        // Decoded chunks' buffers go back to the reader: fresh 2 MiB buffers per
        // chunk would cost a page fault per 4 KiB.
        let (recycle_tx, recycle_rx) = std::sync::mpsc::channel::<Vec<u8>>();
        let path = file.to_path_buf();
        let reader = tokio::task::spawn_blocking(move || read_chunks(&path, from, tx, recycle_rx));
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
                    (decoded, chunk.end, chunk.next_line)
                })
            })
            .buffered(self.parallelism)
            .boxed();
        let name = file.display().to_string();
        while let Some(res) = decoded.next().await {
            let (res, end, next_line) =
                res.map_err(|e| self.error(format!("decoder task failed: {e}")))?;
            for bad in &res.bad {
                let seen = self.malformed.get();
                self.malformed.add(1);
                if seen < LOGGED_BAD_LINES {
                    let to = if self.dlq.is_some() {
                        "sent to the dead-letter output"
                    } else {
                        "skipped"
                    };
                    tracing::warn!(table = %self.table, "{name}:{}: {to} a malformed record: {} ({})", bad.line, bad.reason, bad.excerpt);
                }
            }
            if let (Some(dlq), false) = (&self.dlq, res.bad.is_empty()) {
                let letters: Vec<crate::dlq::DeadLetter<'_>> = res
                    .bad
                    .iter()
                    .map(|b| crate::dlq::DeadLetter {
                        position: crate::dlq::Position::Line {
                            file: name.clone(),
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
            if let Some(batch) = res.batch {
                self.rows.add(batch.num_rows() as u64);
                ctx.emit(batch).await?;
            }
            let pos = Position {
                file: name.clone(),
                offset: end,
                line: next_line,
            };
            self.maybe_barrier(ctx, &pos).await?;
        }
        reader
            .await
            .map_err(|e| self.error(format!("reader task failed: {e}")))?
            .map_err(|e| self.error(format!("cannot read '{name}': {e}")))
    }
}

/// Whole lines of a file, with where they end.
struct Chunk {
    bytes: Vec<u8>,
    first_line: u64,
    /// The offset just past the chunk.
    end: u64,
    /// The number of the line after it.
    next_line: u64,
}

/// Reads `path` in chunks of whole lines from `(byte offset, line number)`.
fn read_chunks(
    path: &Path,
    (start_offset, first_line): (u64, u64),
    tx: mpsc::Sender<Chunk>,
    recycled: std::sync::mpsc::Receiver<Vec<u8>>,
) -> std::io::Result<()> {
    use std::io::Seek;
    let mut file = std::fs::File::open(path)?;
    file.seek(std::io::SeekFrom::Start(start_offset))?;
    let mut carry: Vec<u8> = Vec::new();
    let mut line = first_line;
    let mut offset = start_offset;
    loop {
        let mut buf = recycled
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(2 * CHUNK_BYTES));
        buf.clear();
        buf.extend_from_slice(&carry);
        carry.clear();
        let start = buf.len();
        buf.resize(start + CHUNK_BYTES, 0);
        let mut filled = start;
        while filled < buf.len() {
            let n = file.read(&mut buf[filled..])?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        buf.truncate(filled);
        let eof = filled < start + CHUNK_BYTES;
        let cut = if eof {
            buf.len()
        } else {
            match memchr::memrchr(b'\n', &buf) {
                Some(p) => p + 1,
                None => buf.len(), // one huge line: keep reading into it
            }
        };
        if !eof && cut == buf.len() && memchr::memrchr(b'\n', &buf).is_none() {
            // One line longer than a chunk: keep reading into it.
            carry = buf;
            continue;
        }
        carry.extend_from_slice(&buf[cut..]);
        buf.truncate(cut);
        if !buf.is_empty() {
            let lines = memchr::memchr_iter(b'\n', &buf).count() as u64;
            offset += buf.len() as u64;
            let chunk = Chunk {
                bytes: buf,
                first_line: line,
                end: offset,
                next_line: line + lines,
            };
            if tx.blocking_send(chunk).is_err() {
                return Ok(()); // the job is shutting down
            }
            line += lines;
        }
        if eof {
            return Ok(());
        }
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

    fn restore(&mut self, states: &[Vec<u8>]) -> Result<()> {
        for state in states {
            let pos: Position = serde_json::from_slice(state)
                .map_err(|e| self.error(format!("cannot read the stored position: {e}")))?;
            self.resume = Some(pos);
        }
        Ok(())
    }

    async fn run(self: Box<Self>, ctx: SourceContext) -> Result<()> {
        for file in self.files()? {
            let name = file.display().to_string();
            let from = match &self.resume {
                // Files are read in name order: those before the stored one are done.
                Some(p) if name < p.file => continue,
                Some(p) if name == p.file => (p.offset, p.line),
                _ => (0, 1),
            };
            self.read_file(&file, from, &ctx).await?;
        }
        let bad = self.malformed.get();
        if bad > 0 {
            tracing::warn!(table = %self.table, "skipped {bad} malformed record(s) in total");
        }
        Ok(())
    }
}
