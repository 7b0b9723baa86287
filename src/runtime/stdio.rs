//! The container's stdin, stdout and stderr: pipes the runtime holds, never
//! the user's own files.
//!
//! Up to ch06 the command inherited the runtime's stdout and stderr as they
//! were: a terminal (replaced by a pty of its own since ch02), or a file or
//! pipe of whoever started it. Through /proc/self/fd/1 a process can open
//! that file again, by its own path on the host, with the access the
//! runtime's caller had (a log that was open for appending only can be
//! reopened for writing). From ch07 on the container writes into pipes, and
//! its monitor (or `exec`) copies what comes out: to the log, and to the
//! user when attached, as Docker's daemon and podman's conmon do.
//!
//! That copying is work a process of the host does for the container,
//! outside its cgroup and its CPU budget: a container that prints without
//! pause would have its monitor burn a whole CPU on the host's account.
//! So the relay spends at most `RELAY_CPU_SHARE` of a CPU: past it, it
//! sleeps, the pipe fills, and the container's writes wait.

use crate::error::LabError;
use crate::narrator::{Narrator, Step};
use crate::runtime::fork;
use crate::runtime::logfile::Stream;
use crate::runtime::sync::cloexec_pipe;
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::unistd::{Pid, dup2_stderr, dup2_stdin, dup2_stdout, read, write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

/// The share of one CPU the relay may spend copying a container's output.
pub const RELAY_CPU_SHARE: f64 = 0.1;

/// Keeps the relay's own CPU time under RELAY_CPU_SHARE of the time since
/// it began (clock_gettime(2), CLOCK_THREAD_CPUTIME_ID), with 50 ms of
/// slack so that ordinary bursts go through at full speed.
pub struct CpuGovernor {
    began: Instant,
    cpu_at_start: Duration,
}

fn thread_cpu_time() -> Duration {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(Duration::from)
        .unwrap_or_default()
}

impl CpuGovernor {
    pub fn start() -> CpuGovernor {
        CpuGovernor {
            began: Instant::now(),
            cpu_at_start: thread_cpu_time(),
        }
    }

    /// Sleep for as long as it takes the relay's CPU time to come back
    /// under its share.
    pub fn pace(&self) {
        let spent = thread_cpu_time().saturating_sub(self.cpu_at_start);
        let allowed = self.began.elapsed().mul_f64(RELAY_CPU_SHARE) + Duration::from_millis(50);
        if spent > allowed {
            std::thread::sleep((spent - allowed).div_f64(RELAY_CPU_SHARE));
        }
    }
}

/// Each pipe as (read end, write end); both close-on-exec, so that only
/// the copies the child puts on 0-2 reach the command.
pub struct ContainerStdio {
    stdin: Stdin,
    stdout: (OwnedFd, OwnedFd),
    stderr: (OwnedFd, OwnedFd),
}

enum Stdin {
    /// With `-i`: the runtime writes what the user types.
    Pipe(OwnedFd, OwnedFd),
    /// Without: the host's /dev/null, opened before the child joins or
    /// builds anything (a /dev/null inside the container could be a FIFO
    /// that blocks its opener).
    Null(OwnedFd),
}

impl ContainerStdio {
    pub fn new(interactive: bool) -> Result<ContainerStdio, LabError> {
        let pipe = cloexec_pipe;
        let stdin = match interactive {
            true => {
                let (read_end, write_end) = pipe()?;
                Stdin::Pipe(read_end, write_end)
            }
            false => Stdin::Null(
                std::fs::File::open("/dev/null")
                    .map_err(|e| LabError::io("open", "/dev/null", e))?
                    .into(),
            ),
        };
        Ok(ContainerStdio {
            stdin,
            stdout: pipe()?,
            stderr: pipe()?,
        })
    }

    // ANCHOR: attach_stdio
    /// In the container's first process, just before it becomes the
    /// command: its stdout and stderr are the runtime's pipes, its stdin
    /// the stdin pipe or /dev/null. No file of the host's reaches it.
    pub fn attach(&self, narrator: &Narrator) -> Result<(), LabError> {
        let stdin = match &self.stdin {
            Stdin::Pipe(read_end, _) => read_end.as_fd(),
            Stdin::Null(null) => null.as_fd(),
        };
        narrator.run(
            Step {
                syscall: "dup2",
                args: "stdin, stdout and stderr pipes onto 0, 1, 2",
                why: "the container writes into pipes the runtime reads, never into a file of the host's",
                man: "dup2(2)",
            },
            || {
                dup2_stdin(stdin)?;
                dup2_stdout(&self.stdout.1)?;
                dup2_stderr(&self.stderr.1)
            },
        )
    }
    // ANCHOR_END: attach_stdio

    /// In the runtime, once the command runs: hand each chunk of its output
    /// to `output`, and with `keys` copy this process's stdin into the
    /// container's, until `child` has exited and the pipes are quiet. The
    /// child is not reaped here.
    pub fn relay(self, child: Pid, keys: bool, mut output: impl FnMut(Stream, &[u8])) {
        // Only the container may hold the write ends now: when its last
        // process is gone, reading them ends.
        let ContainerStdio {
            stdin,
            stdout,
            stderr,
        } = self;
        let (sources, write_ends) = ([stdout.0, stderr.0], [stdout.1, stderr.1]);
        drop(write_ends);
        // Without keys, the stdin pipe's write end stays open and silent:
        // the container's stdin neither ends nor delivers (`docker run -di`).
        let mut stdin = match stdin {
            Stdin::Pipe(read_end, write_end) => {
                drop(read_end);
                Some(write_end)
            }
            Stdin::Null(null) => {
                drop(null);
                None
            }
        };
        let mut typing = keys && stdin.is_some();
        let exited = fork::pidfd_open(child.as_raw()).ok();
        // SAFETY: fd 0 stays open for the life of the runtime.
        let own_stdin = unsafe { BorrowedFd::borrow_raw(0) };
        let mut open = [true, true];
        let mut buffer = [0u8; 16 * 1024];
        let mut ended_at: Option<Instant> = None;
        let governor = CpuGovernor::start();
        loop {
            governor.pace();
            // A closed pipe would report POLLHUP for ever: only open ones
            // are polled. `roles` says what each polled fd is.
            let mut fds = Vec::new();
            let mut roles = Vec::new();
            for (i, source) in sources.iter().enumerate() {
                if open[i] {
                    fds.push(PollFd::new(source.as_fd(), PollFlags::POLLIN));
                    roles.push(Role::Output(i));
                }
            }
            if let Some(pidfd) = &exited {
                fds.push(PollFd::new(pidfd.as_fd(), PollFlags::POLLIN));
                roles.push(Role::Exited);
            }
            if typing {
                fds.push(PollFd::new(own_stdin, PollFlags::POLLIN));
                roles.push(Role::Keys);
            }
            let timeout = match ended_at {
                Some(_) => PollTimeout::from(50u16),
                None => PollTimeout::from(500u16),
            };
            match poll(&mut fds, timeout) {
                Err(Errno::EINTR) => continue,
                Err(_) => break,
                Ok(_) => {}
            }
            let ready = |role: Role| {
                roles.iter().zip(&fds).any(|(r, fd)| {
                    *r == role
                        && fd
                            .revents()
                            .is_some_and(|e| e.intersects(PollFlags::POLLIN | PollFlags::POLLHUP))
                })
            };
            let child_ended = match &exited {
                Some(_) => ready(Role::Exited),
                None => fork::has_exited(child),
            };
            let mut quiet = true;
            for (i, stream) in [Stream::Stdout, Stream::Stderr].into_iter().enumerate() {
                if !open[i] || !ready(Role::Output(i)) {
                    continue;
                }
                match read(&sources[i], &mut buffer) {
                    Ok(0) => open[i] = false,
                    Ok(n) => {
                        quiet = false;
                        output(stream, &buffer[..n]);
                    }
                    Err(Errno::EINTR | Errno::EAGAIN) => {}
                    Err(_) => open[i] = false,
                }
            }
            if ready(Role::Keys)
                && let Some(pipe) = &stdin
            {
                match read(own_stdin, &mut buffer) {
                    Ok(n) if n > 0 => write_all(pipe.as_fd(), &buffer[..n]),
                    // The user's input ended: so does the container's.
                    _ => {
                        typing = false;
                        stdin = None;
                    }
                }
            }
            if !open[0] && !open[1] {
                break;
            }
            if child_ended && ended_at.is_none() {
                ended_at = Some(Instant::now());
            }
            // Once the command is gone, what is left in the pipes is read
            // until they are quiet: a process it left behind (one that
            // escaped its PID namespace) cannot hold the runtime for ever.
            if let Some(at) = ended_at
                && quiet
                && at.elapsed() > Duration::from_millis(200)
            {
                break;
            }
        }
    }
}

/// Write output to this process's own stdout or stderr.
pub fn show(stream: Stream, bytes: &[u8]) {
    let fd = match stream {
        Stream::Stdout => 1,
        Stream::Stderr => 2,
    };
    // SAFETY: fds 1 and 2 stay open for the life of the runtime.
    write_all(unsafe { BorrowedFd::borrow_raw(fd) }, bytes);
}

/// What a polled descriptor is.
#[derive(Clone, Copy, PartialEq)]
enum Role {
    Output(usize),
    Exited,
    Keys,
}

/// Write all of `bytes`, unless the reader is gone.
pub fn write_all(to: BorrowedFd<'_>, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        match write(to, bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::EINTR | Errno::EAGAIN) => continue,
            Err(_) => return,
        }
    }
}
