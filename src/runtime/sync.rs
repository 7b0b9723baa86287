//! The runtime and its child talk until the command runs: a close-on-exec
//! pipe carries the child's reports up (a failed step, or "please do this
//! from outside"), a second pipe carries the runtime's answers down.
//!
//! If the exec succeeds the kernel closes the pipe and the runtime reads
//! nothing; if a step fails, the child writes its error first. This is how
//! Go's os/exec and Rust's std::process::Command learn that an exec failed.

use crate::error::{EXIT_RUNTIME_FAILURE, LabError};
use crate::narrator::{Narrator, Step};
use nix::errno::Errno;
use nix::unistd::{read, write};
use std::os::fd::{AsFd, OwnedFd};

/// The child's end of the conversation with the runtime.
pub struct Handshake<'a> {
    pub(super) report: &'a OwnedFd,
    pub(super) go: OwnedFd,
}

impl Handshake<'_> {
    /// Its two pipe ends, for a child that closes everything else.
    pub fn descriptors(&self) -> [std::os::fd::RawFd; 2] {
        use std::os::fd::AsRawFd;
        [self.report.as_raw_fd(), self.go.as_raw_fd()]
    }

    /// Ask the runtime to do `what` from outside, and wait until it has.
    pub fn ask_runtime(&self, narrator: &Narrator, what: &str, why: &str) -> Result<(), LabError> {
        let args = format!("sync pipe, {what:?}");
        let answer = narrator.run(
            Step {
                syscall: "write",
                args: &args,
                why,
                man: "pipe(7)",
            },
            || {
                write(self.report, format!("S{what}\n").as_bytes())?;
                let mut answer = [0u8; 1];
                loop {
                    match read(&self.go, &mut answer) {
                        Err(Errno::EINTR) => continue,
                        Err(errno) => return Err(errno),
                        // The runtime went away without a word: a refusal.
                        Ok(0) => return Ok(b'F'),
                        Ok(_) => return Ok(answer[0]),
                    }
                }
            },
        )?;
        if answer == b'G' {
            Ok(())
        } else {
            Err(LabError::RuntimeGaveUp)
        }
    }
}

/// What the child said on the report pipe.
pub(super) enum Report {
    /// Nothing, and the pipe closed: the command was executed.
    Exec,
    /// Setup failed; the child's error.
    Failed(LabError),
    /// The child waits for the runtime to do something from outside.
    Asks(String),
}

pub(super) struct ReportReader {
    pub(super) pipe: OwnedFd,
    pub(super) buffer: Vec<u8>,
}

impl ReportReader {
    /// Read until one whole message is in: an `S...\n` line, or an `E`
    /// report that runs to end of file.
    pub(super) fn next(&mut self) -> Report {
        let mut chunk = [0u8; 1024];
        loop {
            let line_end = self.buffer.iter().position(|b| *b == b'\n');
            if let (Some(b'S'), Some(end)) = (self.buffer.first(), line_end) {
                let what = String::from_utf8_lossy(&self.buffer[1..end]).into_owned();
                self.buffer.drain(..=end);
                return Report::Asks(what);
            }
            match read(&self.pipe, &mut chunk) {
                Ok(0) | Err(_) if self.buffer.is_empty() => return Report::Exec,
                Ok(0) | Err(_) => return Report::Failed(parse_report(&self.buffer)),
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

// ANCHOR: report_and_exit
/// Send `error` to the runtime through `report` and end this process.
pub fn report_and_exit(report: OwnedFd, error: &LabError) -> ! {
    write_report(report, error);
    // SAFETY: _exit(2) skips atexit handlers and stdio flushing that belong
    // to the parent's copy of the process.
    unsafe { libc::_exit(error.exit_code()) }
}

/// Serialise an error from the child: exit code, message, hint, one per line.
fn write_report(pipe: OwnedFd, error: &LabError) {
    let text = format!(
        "E{}\n{}\n{}",
        error.exit_code(),
        error,
        error.hint().unwrap_or_default()
    );
    let _ = write(pipe.as_fd(), text.as_bytes());
}
// ANCHOR_END: report_and_exit

/// An `E` report: exit code, message and hint, one per line.
fn parse_report(bytes: &[u8]) -> LabError {
    let bytes = bytes.strip_prefix(b"E").unwrap_or(bytes);
    let text = String::from_utf8_lossy(bytes);
    let mut lines = text.splitn(3, '\n');
    let exit_code = lines
        .next()
        .and_then(|c| c.parse().ok())
        .unwrap_or(EXIT_RUNTIME_FAILURE);
    let message = lines
        .next()
        .unwrap_or("the child failed before exec")
        .to_string();
    let hint = lines.next().filter(|h| !h.is_empty()).map(str::to_string);
    LabError::InChild {
        exit_code,
        message,
        hint,
    }
}

/// pipe2(2) with both ends close-on-exec: they reach no program the
/// runtime's children execute, unless a child puts one on 0-2 itself.
pub fn cloexec_pipe() -> Result<(OwnedFd, OwnedFd), LabError> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|errno| LabError::StepFailed {
        syscall: "pipe2",
        target: "O_CLOEXEC".into(),
        errno,
    })
}
