//! The container's log: what it wrote on stdout and stderr, one JSON line
//! per line of output, in the order the monitor read it, each stamped with
//! the time it arrived. The format is Docker's json-file log driver's:
//!
//! ```text
//! {"log":"hello\n","stream":"stdout","time":"2026-12-02T03:04:05.123456789Z"}
//! ```
//!
//! The monitor holds the read ends of the container's output pipes, so the
//! container never writes to a terminal or a file of the host: nothing it
//! prints can reach a user's terminal except through `logs`.
//!
//! The log lives beside the state, on tmpfs, which is memory: a container
//! that prints for ever would fill /run and starve the host's services. So
//! the log is kept to two files of at most `ROTATE_AT` bytes each: when the
//! current one is full it becomes `container.log.1` (the older one goes),
//! as Docker's json-file driver does with `max-size` and `max-file=2`.

use crate::runtime::state::{now, rfc3339};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, Write};
use std::path::Path;

/// One line of output as the log keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The text, with its newline (a last line without one has none).
    pub log: String,
    /// `stdout` or `stderr`.
    pub stream: String,
    pub time: String,
}

/// The two streams a container writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Docker splits a line longer than this into several entries, so that a
/// container printing without newlines cannot make the monitor hold an
/// unbounded line in memory.
const LONGEST_LINE: usize = 16 * 1024;

/// A log file is set aside as `.1` once it holds this many bytes.
pub const ROTATE_AT: u64 = 8 << 20;

/// The older half of a log: `container.log.1`.
pub fn older(path: &Path) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".1");
    name.into()
}

/// Appends entries to the log file; keeps each stream's unfinished line
/// until its newline arrives.
pub struct LogWriter {
    path: std::path::PathBuf,
    file: std::fs::File,
    written: u64,
    partial: [Vec<u8>; 2],
}

fn open_for_append(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

impl LogWriter {
    pub fn append_to(path: &Path) -> std::io::Result<LogWriter> {
        let file = open_for_append(path)?;
        Ok(LogWriter {
            path: path.to_path_buf(),
            written: file.metadata()?.len(),
            file,
            partial: [Vec::new(), Vec::new()],
        })
    }

    /// What the container wrote on `stream`: complete lines go to the log.
    pub fn write(&mut self, stream: Stream, bytes: &[u8]) {
        let index = stream as usize;
        let mut pending = std::mem::take(&mut self.partial[index]);
        pending.extend_from_slice(bytes);
        // Whole lines, and pieces of an endless one, in one pass; what is
        // left waits for its newline.
        let mut start = 0;
        let mut batch = Vec::new();
        while start < pending.len() {
            let rest = &pending[start..];
            let end = match rest.iter().position(|b| *b == b'\n') {
                Some(newline) if newline < LONGEST_LINE => newline + 1,
                _ if rest.len() >= LONGEST_LINE => LONGEST_LINE,
                _ => break,
            };
            entry(&mut batch, stream, &rest[..end]);
            start += end;
        }
        self.partial[index] = pending.split_off(start);
        self.append(&batch);
    }

    /// The container's output ended: whatever is left becomes a last entry.
    pub fn flush(&mut self) {
        let mut batch = Vec::new();
        for stream in [Stream::Stdout, Stream::Stderr] {
            let rest = std::mem::take(&mut self.partial[stream as usize]);
            if !rest.is_empty() {
                entry(&mut batch, stream, &rest);
            }
        }
        self.append(&batch);
    }

    /// Whole entries, in one write(2) on an O_APPEND file (a reader that
    /// comes upon a line still being written waits for its end). A full
    /// disk loses log lines, never the container.
    fn append(&mut self, batch: &[u8]) {
        if batch.is_empty() {
            return;
        }
        let _ = self.file.write_all(batch);
        self.written += batch.len() as u64;
        if self.written >= ROTATE_AT
            && std::fs::rename(&self.path, older(&self.path)).is_ok()
            && let Ok(file) = open_for_append(&self.path)
        {
            self.file = file;
            self.written = 0;
        }
    }
}

/// One entry, as a JSON line, added to `batch`.
fn entry(batch: &mut Vec<u8>, stream: Stream, text: &[u8]) {
    let entry = Entry {
        log: String::from_utf8_lossy(text).into_owned(),
        stream: stream.name().into(),
        time: rfc3339(now()),
    };
    serde_json::to_writer(&mut *batch, &entry).expect("an entry serialises");
    batch.push(b'\n');
}

/// Reads a log from where it was last read, for `logs` and `logs -f`:
/// the older file first if there is one, then the current one, and the
/// new current one when the monitor sets this one aside.
pub struct LogReader {
    path: std::path::PathBuf,
    reader: Option<std::io::BufReader<std::fs::File>>,
    /// Whether the file being read is the current one (not `.1`).
    current: bool,
    /// A line the monitor had not finished writing when it was read.
    pending: String,
}

fn inode(file: &std::fs::File) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    file.metadata().ok().map(|m| m.ino())
}

impl LogReader {
    /// A reader from the start of what is kept (nothing yet is fine).
    pub fn open(path: &Path) -> LogReader {
        let older = std::fs::File::open(older(path)).ok();
        let current = older.is_none();
        let reader = older
            .or_else(|| std::fs::File::open(path).ok())
            .map(std::io::BufReader::new);
        LogReader {
            path: path.to_path_buf(),
            reader,
            current,
            pending: String::new(),
        }
    }

    /// At the end of the file being read: go on with the current file if
    /// that is another one now (this one was set aside, or was `.1`).
    fn next_file(&mut self) -> bool {
        let Ok(file) = std::fs::File::open(&self.path) else {
            return false;
        };
        let reading = self.reader.as_ref().and_then(|r| inode(r.get_ref()));
        if self.current && reading == inode(&file) {
            return false;
        }
        self.reader = Some(std::io::BufReader::new(file));
        self.current = true;
        true
    }

    /// The entries written since the last call.
    pub fn read_new(&mut self) -> Vec<Entry> {
        let mut entries = Vec::new();
        loop {
            let mut line = String::new();
            let read = match self.reader.as_mut() {
                Some(reader) => reader.read_line(&mut line),
                None => Ok(0),
            };
            match read {
                Ok(0) | Err(_) if self.next_file() => continue,
                Ok(0) | Err(_) => return entries,
                Ok(_) => {}
            }
            self.pending.push_str(&line);
            if !self.pending.ends_with('\n') {
                continue; // the rest of the line is still being written
            }
            if let Ok(entry) = serde_json::from_str(&std::mem::take(&mut self.pending)) {
                entries.push(entry);
            }
        }
    }
}

/// An entry as `logs` prints it: the text, after its time with `-t`.
pub fn render(entry: &Entry, timestamps: bool) -> String {
    match timestamps {
        true => format!("{} {}", entry.time, entry.log),
        false => entry.log.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch_log() -> std::path::PathBuf {
        std::env::temp_dir().join(format!("lab-log-test-{}", crate::runtime::state::new_id()))
    }

    #[test]
    fn lines_are_kept_whole_and_in_order() {
        let path = scratch_log();
        let mut writer = LogWriter::append_to(&path).unwrap();
        let mut reader = LogReader::open(&path);
        writer.write(Stream::Stdout, b"one\ntw");
        writer.write(Stream::Stderr, b"oops\n");
        assert_eq!(
            reader
                .read_new()
                .iter()
                .map(|e| (e.stream.as_str(), e.log.as_str()))
                .collect::<Vec<_>>(),
            [("stdout", "one\n"), ("stderr", "oops\n")]
        );
        writer.write(Stream::Stdout, b"o\nthree");
        writer.flush();
        let rest = reader.read_new();
        assert_eq!(
            rest.iter().map(|e| e.log.as_str()).collect::<Vec<_>>(),
            ["two\n", "three"]
        );
        assert!(rest[0].time.ends_with('Z') && rest[0].time.contains('T'));
        assert!(render(&rest[0], true).ends_with(" two\n"));
        assert_eq!(render(&rest[0], false), "two\n");
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn a_full_log_is_set_aside_and_readers_follow_it() {
        let path = scratch_log();
        let mut writer = LogWriter::append_to(&path).unwrap();
        let mut follower = LogReader::open(&path);
        let line = vec![b'y'; 1023];
        let per_file = ROTATE_AT / 1024 + 1;
        let mut seen = 0;
        for _ in 0..per_file * 3 {
            writer.write(Stream::Stdout, &line);
            writer.write(Stream::Stdout, b"\n");
            seen += follower.read_new().len() as u64;
        }
        assert_eq!(seen, per_file * 3, "a follower misses nothing");
        let kept = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        assert!(kept(&path) < ROTATE_AT + 2048 && kept(&older(&path)) < ROTATE_AT + 2048);
        let from_start = LogReader::open(&path).read_new().len() as u64;
        assert!(
            from_start < per_file * 3 && from_start >= per_file,
            "{from_start}"
        );
        std::fs::remove_file(&path).unwrap();
        std::fs::remove_file(older(&path)).unwrap();
    }

    #[test]
    fn endless_lines_are_cut_and_bytes_that_are_not_utf8_survive() {
        let path = scratch_log();
        let mut writer = LogWriter::append_to(&path).unwrap();
        writer.write(Stream::Stdout, &vec![b'x'; LONGEST_LINE * 2 + 5]);
        writer.write(Stream::Stdout, b"\xff\n");
        writer.flush();
        let entries = LogReader::open(&path).read_new();
        let lengths: Vec<usize> = entries.iter().map(|e| e.log.len()).collect();
        assert_eq!(lengths[..2], [LONGEST_LINE, LONGEST_LINE]);
        assert_eq!(entries[2].log, "xxxxx\u{fffd}\n");
        std::fs::remove_file(path).unwrap();
    }
}
