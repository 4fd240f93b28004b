//! How a file source's input is cut into splits for its subtasks, what a
//! subtask stores of them, and reading a subtask's splits' whole lines in
//! chunks.
//!
//! A file is cut into splits of [`split_bytes`] (`source.split-size`,
//! 16 MiB by default, more for files that would have over 1024); a split holds the lines that *start* in its range (the
//! last may run past its end), as Hadoop's line splits do, so no line is
//! read twice or lost. Splits are dealt round the subtasks in (file, start)
//! order, so subtasks move through a file side by side (as Flink's readers
//! asking for the next split do) and the event time of one runs ahead of
//! another's by about a split at most: what waits for the watermark stays
//! small. A checkpoint stores every split of a subtask with how far it was
//! read, and a restore (at any parallelism) deals the stored splits out
//! again the same way: the splits never change, only who reads them.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use tokio::sync::mpsc;

/// The default split size (`source.split-size`): 8 chunks, so a subtask's
/// decoders stay busy.
pub const DEFAULT_SPLIT_BYTES: u64 = 16 << 20;
/// Bytes per chunk handed to a decoder.
const CHUNK_BYTES: usize = 1 << 21;

/// A byte range of a file and how far it was read.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Split {
    /// The file.
    pub file: String,
    /// Its first byte.
    pub start: u64,
    /// The byte after it.
    pub end: u64,
    /// The next byte to read: a line's start once the split was opened.
    pub offset: u64,
    /// The number of the line at `offset` (0: not known until the split is
    /// opened, for one that starts inside its file).
    pub line: u64,
}

impl Split {
    fn new(file: &str, start: u64, end: u64) -> Self {
        Self {
            file: file.to_string(),
            start,
            end,
            offset: start,
            line: u64::from(start == 0),
        }
    }

    /// Every line that starts in the range was read.
    pub fn done(&self) -> bool {
        self.offset >= self.end
    }
}

/// What the file source stored before it read in splits: the next byte and
/// line of the file it was reading, files being read in name order.
#[derive(serde::Deserialize)]
struct OldPosition {
    file: String,
    offset: u64,
    line: u64,
}

/// The size of the splits of a file of `size` bytes: `target`, or more
/// for a file that would have more than 1024 (a checkpoint lists them).
pub fn split_bytes(size: u64, target: u64) -> u64 {
    target.max(1).max(size.div_ceil(1024))
}

/// The splits of a file of `size` bytes (whatever the parallelism).
fn plan_file(file: &str, size: u64, target: u64) -> Vec<Split> {
    let step = split_bytes(size, target);
    let pieces = size.div_ceil(step).max(1);
    (0..pieces)
        .map(|k| Split::new(file, k * step, ((k + 1) * step).min(size)))
        .collect()
}

/// The splits stored by every subtask (`states`), as one list: a split
/// stored twice keeps its furthest position. `files` (name, size) turns a
/// position of the single reader of old into splits.
pub fn stored(states: &[Vec<u8>], files: &[(String, u64)]) -> Result<Vec<Split>, String> {
    let mut by_start: BTreeMap<(String, u64), Split> = BTreeMap::new();
    for state in states {
        let splits: Vec<Split> = match serde_json::from_slice::<Vec<Split>>(state) {
            Ok(s) => s,
            Err(e) => match serde_json::from_slice::<OldPosition>(state) {
                Ok(old) => files
                    .iter()
                    .filter(|(f, _)| *f <= old.file)
                    .map(|(f, size)| Split {
                        file: f.clone(),
                        start: 0,
                        end: *size,
                        offset: if *f == old.file { old.offset } else { *size },
                        line: if *f == old.file { old.line } else { 1 },
                    })
                    .collect(),
                Err(_) => return Err(format!("cannot read the stored position: {e}")),
            },
        };
        for s in splits {
            match by_start.get(&(s.file.clone(), s.start)) {
                Some(have) if have.offset >= s.offset => {}
                _ => {
                    by_start.insert((s.file.clone(), s.start), s);
                }
            }
        }
    }
    Ok(by_start.into_values().collect())
}

/// The splits subtask `i` of `n` reads: the stored ones of files that are
/// still there, and new splits of files none was stored for, dealt out in
/// (file, start) order.
pub fn assign(
    stored: Vec<Split>,
    files: &[(String, u64)],
    target: u64,
    (i, n): (usize, usize),
) -> Vec<Split> {
    let mut all: Vec<Split> = stored
        .into_iter()
        .filter(|s| files.iter().any(|(f, _)| *f == s.file))
        .collect();
    for (file, size) in files {
        if !all.iter().any(|s| s.file == *file) {
            all.extend(plan_file(file, *size, target));
        }
    }
    all.sort_by(|a, b| (&a.file, a.start).cmp(&(&b.file, b.start)));
    all.into_iter()
        .enumerate()
        .filter(|(j, _)| j % n.max(1) == i)
        .map(|(_, s)| s)
        .collect()
}

/// Whole lines of a split, with where they end.
pub struct Chunk {
    /// Which of the subtask's splits it is of.
    pub split: usize,
    pub bytes: Vec<u8>,
    pub first_line: u64,
    /// The offset just past the chunk.
    pub end: u64,
    /// The number of the line after it.
    pub next_line: u64,
}

/// The start of the first line at or after `pos`.
fn line_start_at(file: &mut File, pos: u64) -> std::io::Result<u64> {
    if pos == 0 {
        return Ok(0);
    }
    file.seek(SeekFrom::Start(pos - 1))?;
    let mut buf = vec![0u8; 64 << 10];
    let mut at = pos - 1;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(at);
        }
        if let Some(k) = memchr::memchr(b'\n', &buf[..n]) {
            return Ok(at + k as u64 + 1);
        }
        at += n as u64;
    }
}

/// The line ends in `[from, upto)`.
fn count_lines(file: &mut File, from: u64, upto: u64) -> std::io::Result<u64> {
    file.seek(SeekFrom::Start(from))?;
    let mut buf = vec![0u8; CHUNK_BYTES];
    let (mut at, mut lines) = (from, 0u64);
    while at < upto {
        let want = buf.len().min((upto - at) as usize);
        let n = file.read(&mut buf[..want])?;
        if n == 0 {
            break;
        }
        lines += memchr::memchr_iter(b'\n', &buf[..n]).count() as u64;
        at += n as u64;
    }
    Ok(lines)
}

/// A known (offset, line number) of the file being read: a split opened
/// after it counts lines from there, not from the file's start.
struct LineMark {
    file: String,
    offset: u64,
    line: u64,
}

/// Reads `splits` (index in the subtask's list, split) one after another,
/// each from where it was left, in chunks of whole lines.
pub fn read_splits(
    splits: Vec<(usize, Split)>,
    tx: mpsc::Sender<Chunk>,
    recycled: std::sync::mpsc::Receiver<Vec<u8>>,
) -> std::io::Result<()> {
    let mut mark: Option<LineMark> = None;
    for (idx, split) in splits {
        let mut file = File::open(&split.file)?;
        let (mut offset, mut line) = (split.offset, split.line);
        if line == 0 {
            // Opened for the first time inside its file: its first line is
            // the first that starts in its range (the one before is its
            // neighbour's).
            offset = line_start_at(&mut file, offset)?;
            let (from, before) = match &mark {
                Some(m) if m.file == split.file && m.offset <= offset => (m.offset, m.line),
                _ => (0, 1),
            };
            line = before + count_lines(&mut file, from, offset)?;
        }
        let reader = SplitReader {
            idx,
            end: split.end,
            offset,
            line,
        };
        match reader.read(&mut file, &tx, &recycled)? {
            Some((offset, line)) => {
                mark = Some(LineMark {
                    file: split.file,
                    offset,
                    line,
                })
            }
            None => return Ok(()), // the job is shutting down
        }
    }
    Ok(())
}

/// Where one split is being read.
struct SplitReader {
    idx: usize,
    end: u64,
    offset: u64,
    line: u64,
}

impl SplitReader {
    /// Sends the split's lines from `offset`; returns where it stopped
    /// (offset, line), or None if nobody takes chunks any more.
    fn read(
        mut self,
        file: &mut File,
        tx: &mpsc::Sender<Chunk>,
        recycled: &std::sync::mpsc::Receiver<Vec<u8>>,
    ) -> std::io::Result<Option<(u64, u64)>> {
        file.seek(SeekFrom::Start(self.offset))?;
        // Bytes from `offset` on that are not yet handed out.
        let mut carry: Vec<u8> = Vec::new();
        while self.offset < self.end {
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
            // The split ends with the line that holds its last byte.
            let last_byte = (self.end - 1 - self.offset) as usize;
            let (cut, last) = if last_byte < buf.len() {
                match memchr::memchr(b'\n', &buf[last_byte..]) {
                    Some(k) => (last_byte + k + 1, true),
                    None if eof => (buf.len(), true),
                    None => {
                        carry = buf; // the last line goes on: read more of it
                        continue;
                    }
                }
            } else if eof {
                (buf.len(), true)
            } else {
                match memchr::memrchr(b'\n', &buf) {
                    Some(p) => (p + 1, false),
                    None => {
                        carry = buf; // one line longer than a chunk
                        continue;
                    }
                }
            };
            carry.extend_from_slice(&buf[cut..]);
            buf.truncate(cut);
            if !buf.is_empty() {
                let lines = memchr::memchr_iter(b'\n', &buf).count() as u64;
                self.offset += buf.len() as u64;
                let chunk = Chunk {
                    split: self.idx,
                    bytes: buf,
                    first_line: self.line,
                    end: self.offset,
                    next_line: self.line + lines,
                };
                if tx.blocking_send(chunk).is_err() {
                    return Ok(None);
                }
                self.line += lines;
            }
            if last {
                break;
            }
        }
        Ok(Some((self.offset, self.line)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every line of `text` read through `pieces` splits of it dealt round
    /// `n` readers (each reading its splits in one go), by line number.
    fn read_all(text: &str, pieces: u64, n: usize) -> Vec<(u64, String)> {
        let dir = std::env::temp_dir().join(format!(
            "vigil-splits-{}-{pieces}-{n}-{}",
            std::process::id(),
            text.len()
        ));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("f.jsonl");
        std::fs::write(&path, text).expect("write");
        let name = path.display().to_string();
        let size = text.len() as u64;
        let all: Vec<Split> = (0..pieces)
            .map(|k| Split::new(&name, size * k / pieces, size * (k + 1) / pieces))
            .collect();
        let mut out = vec![];
        for i in 0..n {
            let mine: Vec<(usize, Split)> = all
                .iter()
                .enumerate()
                .filter(|(j, _)| j % n == i)
                .map(|(j, s)| (j, s.clone()))
                .collect();
            let (tx, mut rx) = mpsc::channel(1024);
            let (_keep, recycled) = std::sync::mpsc::channel();
            read_splits(mine, tx, recycled).expect("read");
            while let Ok(chunk) = rx.try_recv() {
                assert_eq!(chunk.split % n, i, "a chunk of another reader's split");
                let text = String::from_utf8(chunk.bytes).expect("utf8");
                for (l, t) in text.lines().enumerate() {
                    out.push((chunk.first_line + l as u64, t.to_string()));
                }
            }
        }
        out.sort();
        let _ = std::fs::remove_dir_all(&dir);
        out
    }

    #[test]
    fn every_line_is_read_once_with_its_number_however_the_file_is_cut() {
        let text: String = (1..=50)
            .map(|i| format!("line-{i:03}-{}\n", "x".repeat(i % 7)))
            .collect();
        let expected: Vec<(u64, String)> = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i as u64 + 1, l.to_string()))
            .collect();
        for (pieces, n) in [(1, 1), (2, 1), (3, 2), (7, 3), (50, 2), (200, 3)] {
            assert_eq!(
                read_all(&text, pieces, n),
                expected,
                "{pieces} splits, {n} readers"
            );
        }
        // No newline at the end of the file.
        let trimmed = text.trim_end();
        assert_eq!(read_all(trimmed, 4, 2), expected);
    }

    #[test]
    fn splits_go_round_the_subtasks_and_a_restore_deals_the_stored_ones_again() {
        let files = vec![
            ("a".to_string(), 3 * DEFAULT_SPLIT_BYTES),
            ("b".to_string(), 10),
        ];
        let first: Vec<Vec<Split>> = (0..2)
            .map(|i| assign(vec![], &files, DEFAULT_SPLIT_BYTES, (i, 2)))
            .collect();
        // a in three splits, b whole, dealt in turn: a0 a2 | a1 b.
        let starts = |s: &[Split]| -> Vec<(String, u64)> {
            s.iter().map(|s| (s.file.clone(), s.start)).collect()
        };
        let m = DEFAULT_SPLIT_BYTES;
        assert_eq!(starts(&first[0]), [("a".into(), 0), ("a".into(), 2 * m)]);
        assert_eq!(starts(&first[1]), [("a".into(), m), ("b".into(), 0)]);
        // Subtask 1 read part of a1; a restore at three subtasks deals the
        // four stored splits again, positions kept.
        let mut progressed = first[1].clone();
        progressed[0].offset += 100;
        progressed[0].line = 7;
        let states: Vec<Vec<u8>> = [&first[0], &progressed]
            .iter()
            .map(|s| serde_json::to_vec(s).expect("json"))
            .collect();
        let stored = stored(&states, &files).expect("stored");
        assert_eq!(stored.len(), 4);
        let again: Vec<Vec<Split>> = (0..3)
            .map(|i| assign(stored.clone(), &files, DEFAULT_SPLIT_BYTES, (i, 3)))
            .collect();
        assert_eq!(starts(&again[0]), [("a".into(), 0), ("b".into(), 0)]);
        assert_eq!(again[1], vec![progressed[0].clone()]);
        assert_eq!(starts(&again[2]), [("a".into(), 2 * m)]);
    }

    #[test]
    fn a_position_of_the_single_reader_of_old_resumes_its_file() {
        let files = vec![
            ("a".to_string(), 100),
            ("b".to_string(), 50),
            ("c".to_string(), 9),
        ];
        let old = br#"{"file":"b","offset":20,"line":3}"#.to_vec();
        let splits = stored(&[old], &files).expect("stored");
        assert_eq!(splits.len(), 2);
        assert!(splits[0].done());
        assert_eq!((splits[1].offset, splits[1].line), (20, 3));
        // c was not reached: it is planned anew.
        let mine = assign(splits, &files, DEFAULT_SPLIT_BYTES, (0, 1));
        assert_eq!(mine.len(), 3);
        assert_eq!(mine[2], Split::new("c", 0, 9));
    }
}
