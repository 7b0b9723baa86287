//! The monitor: the process that stays with a container for its whole life,
//! so that nobody else has to.
//!
//! Up to ch06 the runtime in the user's terminal was the container's parent:
//! it waited for it, passed signals on and cleaned up, and closing the
//! terminal ended the container. From ch07 on that parent is a small process
//! of its own, the monitor (podman's conmon, LXC's lxc-monitord, the shim of
//! containerd), started by `run`:
//! - with `-d` the command forks it, the monitor leaves the user's session
//!   (setsid(2)), and the command returns as soon as the container runs;
//!   a closed terminal or a SIGKILLed command no longer matters;
//! - without `-d` the command itself is the monitor and stays attached.
//!
//! Either way the monitor holds the read ends of the container's stdout and
//! stderr (the log), waits for its end, writes how it ended into the state
//! (exit code, OOM kill, time), applies `--restart`, releases the
//! container's cgroup, network and mounts (the recipe's values, dropped), and
//! with `--rm` removes its state.

use crate::error::{EXIT_RUNTIME_FAILURE, LabError};
use crate::narrator::{Narrator, Step};
use crate::runtime::cgroups::ContainerCgroup;
use crate::runtime::fork::Child;
use crate::runtime::logfile::{LogWriter, Stream};
use crate::runtime::state::{NetworkRecord, ProcessRef, RestartPolicy, Status, Store, now};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::unistd::{ForkResult, Pid, dup2_stderr, dup2_stdin, dup2_stdout, pipe2, read, write};
use std::cell::{Cell, RefCell};
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};

/// The process that watches one container.
pub struct Monitor {
    pub store: Store,
    pub id: String,
    /// Without `-d`: the output is shown as well as logged, and keys typed
    /// go to the container's stdin with `-i`.
    attached: bool,
    interactive: bool,
    /// With `-d`: the pipe to the command still waiting for the container
    /// to run. It learns "running", or the error that stopped it.
    waiting_command: RefCell<Option<OwnedFd>>,
    /// Whether the last run ended by the OOM killer.
    oom_killed: Cell<bool>,
}

// ANCHOR: detach
/// Become the container's monitor. With `detach`, fork: the parent (the
/// user's command) waits until the container runs, prints its id and
/// exits 0, or exits with the error that stopped it; only the child
/// returns, in a session of its own, with /dev/null for stdio.
pub fn become_monitor(
    narrator: &Narrator,
    store: Store,
    id: &str,
    detach: bool,
    interactive: bool,
) -> Result<Monitor, LabError> {
    let monitor = |waiting| Monitor {
        store,
        id: id.to_string(),
        attached: !detach,
        interactive,
        waiting_command: RefCell::new(waiting),
        oom_killed: Cell::new(false),
    };
    if !detach {
        return Ok(monitor(None));
    }
    let (news_read, news_write) =
        pipe2(OFlag::O_CLOEXEC).map_err(|errno| LabError::StepFailed {
            syscall: "pipe2",
            target: "O_CLOEXEC".into(),
            errno,
        })?;
    let step = Step {
        syscall: "fork",
        args: "",
        why: "the monitor: it stays with the container after this command returns",
        man: "fork(2)",
    };
    // SAFETY: single-threaded; the child goes on as an ordinary process.
    match narrator.run(step, || unsafe { nix::unistd::fork() })? {
        ForkResult::Parent { child } => {
            drop(news_write);
            let news = read_to_end(&news_read);
            let _ = nix::sys::wait::waitpid(child, Some(nix::sys::wait::WaitPidFlag::WNOHANG));
            match news.split_once('\n') {
                Some(("running", _)) => {
                    println!("{id}");
                    std::process::exit(0)
                }
                Some(("failed", error)) => Err(decode_error(error)),
                _ => Err(LabError::Container {
                    message: "the monitor ended before the container ran".into(),
                    hint: "run it again without -d to see what happens".into(),
                }),
            }
        }
        ForkResult::Child => {
            drop(news_read);
            narrator.act_as("monitor");
            leave_the_users_session(narrator)?;
            Ok(monitor(Some(news_write)))
        }
    }
}
// ANCHOR_END: detach

/// A session of its own: no terminal of the user's can hang it up; stdio on
/// /dev/null, so that nothing waiting for the command's output (a pipe, a
/// test harness) waits for the monitor too; and / as its directory, so it
/// pins no mount.
fn leave_the_users_session(narrator: &Narrator) -> Result<(), LabError> {
    narrator.run(
        Step {
            syscall: "setsid",
            args: "",
            why: "the monitor leaves the user's session: closing the terminal no longer reaches the container",
            man: "setsid(2)",
        },
        nix::unistd::setsid,
    )?;
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| LabError::io("open", "/dev/null", e))?;
    let redirected = dup2_stdin(&null)
        .and_then(|()| dup2_stdout(&null))
        .and_then(|()| dup2_stderr(&null));
    redirected.map_err(|errno| LabError::StepFailed {
        syscall: "dup2",
        target: "/dev/null onto 0, 1, 2".into(),
        errno,
    })?;
    let _ = std::env::set_current_dir("/");
    Ok(())
}

fn read_to_end(fd: &OwnedFd) -> String {
    let mut text = Vec::new();
    let mut buffer = [0u8; 1024];
    loop {
        match read(fd, &mut buffer) {
            Ok(0) => break,
            Ok(n) => text.extend_from_slice(&buffer[..n]),
            Err(Errno::EINTR) => continue,
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&text).into_owned()
}

/// An error crosses the pipe as three lines: exit code, message, hint.
fn encode_error(error: &LabError) -> String {
    format!(
        "failed\n{}\n{}\n{}",
        error.exit_code(),
        error.to_string().replace('\n', " "),
        error.hint().unwrap_or_default().replace('\n', " ")
    )
}

fn decode_error(text: &str) -> LabError {
    let mut lines = text.lines();
    let exit_code = lines
        .next()
        .and_then(|code| code.parse().ok())
        .unwrap_or(EXIT_RUNTIME_FAILURE);
    let message = lines.next().unwrap_or("the container did not start").into();
    let hint = lines.next().filter(|h| !h.is_empty()).map(str::to_string);
    LabError::InChild {
        exit_code,
        message,
        hint,
    }
}

/// The container's ends of its stdio and the monitor's ends, for one run.
pub struct ContainerStdio {
    /// The container's stdin: a pipe with `-i` (the monitor writes what the
    /// user types, or keeps it open and silent with `-d`), else /dev/null.
    stdin: Option<(OwnedFd, OwnedFd)>,
    stdout: (OwnedFd, OwnedFd),
    stderr: (OwnedFd, OwnedFd),
}

impl ContainerStdio {
    // ANCHOR: attach_stdio
    /// In the container's first process, just before it becomes the
    /// command: stdout and stderr are the monitor's pipes, stdin its pipe or
    /// /dev/null. The host's terminal and files never reach the container.
    pub fn attach(&self, narrator: &Narrator) -> Result<(), LabError> {
        let null;
        let stdin = match &self.stdin {
            Some((read_end, _)) => read_end.as_fd(),
            None => {
                null = std::fs::File::open("/dev/null")
                    .map_err(|e| LabError::io("open", "/dev/null", e))?;
                null.as_fd()
            }
        };
        narrator.run(
            Step {
                syscall: "dup2",
                args: "stdin, stdout and stderr pipes onto 0, 1, 2",
                why: "the container writes into the monitor's pipes, which the log keeps",
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
}

impl Monitor {
    /// Pipes for the container's stdio (close-on-exec: only the copies on
    /// 0-2 reach the command).
    pub fn stdio(&self) -> Result<ContainerStdio, LabError> {
        let pipe = || {
            pipe2(OFlag::O_CLOEXEC).map_err(|errno| LabError::StepFailed {
                syscall: "pipe2",
                target: "the container's stdio".into(),
                errno,
            })
        };
        Ok(ContainerStdio {
            stdin: match self.interactive {
                true => Some(pipe()?),
                false => None,
            },
            stdout: pipe()?,
            stderr: pipe()?,
        })
    }

    // ANCHOR: watch
    /// The container runs: record it, tell a waiting `run -d`, then keep
    /// its output in the log until it exits, and return its exit code.
    pub fn watch(
        &self,
        narrator: &Narrator,
        child: Child,
        stdio: ContainerStdio,
        cgroup: Option<&ContainerCgroup>,
        network: NetworkRecord,
    ) -> Result<i32, LabError> {
        let ContainerStdio {
            stdin,
            stdout,
            stderr,
        } = stdio;
        // Only the container may hold the write ends now: when its last
        // process is gone, the monitor reads end-of-file.
        let (stdout, stderr) = (stdout.0, stderr.0);
        let stdin = stdin.map(|(_, write_end)| write_end);
        // PID 1 of the container is the child's child (the child waits in
        // the host's PID namespace, see namespaces::enter_new_pid_namespace).
        let pid_one = first_child_of(child.pid).or_else(|| ProcessRef::of(child.pid.as_raw()));
        let record = self.store.update(&self.id, |record| {
            record.status = Status::Running;
            record.pid = pid_one;
            record.monitor = ProcessRef::of(std::process::id() as i32);
            record.started_at = Some(now());
            record.cgroups = cgroup.map(ContainerCgroup::dirs).unwrap_or_default();
            record.network = network;
        })?;
        if record.is_none() {
            // removed (rm -f) before it ever ran: end it.
            let _ = nix::sys::signal::kill(child.pid, nix::sys::signal::Signal::SIGKILL);
        }
        if let Some(news) = self.waiting_command.borrow_mut().take() {
            let _ = write(&news, b"running\n");
            narrator.go_quiet();
        }
        let log_path = self.store.log_path(&self.id);
        let mut log = LogWriter::append_to(&log_path)
            .map_err(|e| LabError::io("open", log_path.display(), e))?;
        self.relay_output(&child, &stdout, &stderr, stdin, &mut log);
        log.flush();
        let code = crate::runtime::process::wait(narrator, child)?;
        self.oom_killed
            .set(code == 137 && cgroup.is_some_and(ContainerCgroup::oom_killed));
        Ok(code)
    }
    // ANCHOR_END: watch

    /// Copy the container's output to the log (and, attached, to the user),
    /// and the user's keys to its stdin with `-i`, until it exits.
    fn relay_output(
        &self,
        child: &Child,
        stdout: &OwnedFd,
        stderr: &OwnedFd,
        mut stdin: Option<OwnedFd>,
        log: &mut LogWriter,
    ) {
        let exited = pidfd_of(child.pid);
        // SAFETY: fds 0-2 stay open for the life of the monitor.
        let own = |fd| unsafe { BorrowedFd::borrow_raw(fd) };
        let mut open = [true, true];
        // With -d the write end stays open and silent: the container's
        // stdin neither ends nor delivers anything, as `docker run -di`.
        let mut typing = self.attached && stdin.is_some();
        let mut buffer = [0u8; 16 * 1024];
        let mut ended_at: Option<std::time::Instant> = None;
        loop {
            // A closed pipe would report POLLHUP for ever: only open ones
            // are polled. `roles` says what each polled fd is.
            let mut fds = Vec::new();
            let mut roles = Vec::new();
            for (i, source) in [stdout, stderr].into_iter().enumerate() {
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
                fds.push(PollFd::new(own(0), PollFlags::POLLIN));
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
            let readiness = [ready(Role::Output(0)), ready(Role::Output(1))];
            let child_ended = match &exited {
                Some(_) => ready(Role::Exited),
                None => has_exited(child.pid),
            };
            let keys = ready(Role::Keys);
            let mut quiet = true;
            for (i, stream) in [Stream::Stdout, Stream::Stderr].into_iter().enumerate() {
                if !open[i] || !readiness[i] {
                    continue;
                }
                let source = if i == 0 { stdout } else { stderr };
                match read(source, &mut buffer) {
                    Ok(0) => open[i] = false,
                    Ok(n) => {
                        quiet = false;
                        log.write(stream, &buffer[..n]);
                        if self.attached {
                            write_all(own(i as i32 + 1), &buffer[..n]);
                        }
                    }
                    Err(Errno::EINTR | Errno::EAGAIN) => {}
                    Err(_) => open[i] = false,
                }
            }
            if keys && let Some(pipe) = &stdin {
                match read(own(0), &mut buffer) {
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
                ended_at = Some(std::time::Instant::now());
            }
            // Once the container's PID 1 is gone the kernel kills the rest
            // of it; what they had written is read until the pipes are
            // quiet (a descendant that escaped the PID namespace cannot
            // hold the monitor for ever).
            if let Some(at) = ended_at
                && quiet
                && at.elapsed() > std::time::Duration::from_millis(200)
            {
                break;
            }
        }
    }

    /// Run the container (the chapter's recipe, `start`) until it ends for
    /// good: record each end, start it again as `--restart` says, and with
    /// `--rm` remove its state. Returns the last exit code.
    pub fn run_until_done(
        &self,
        mut start: impl FnMut() -> Result<i32, LabError>,
    ) -> Result<i32, LabError> {
        let mut first = true;
        loop {
            let result = start();
            let code = match result {
                Ok(code) => code,
                Err(error) => {
                    if let Some(news) = self.waiting_command.borrow_mut().take() {
                        let _ = write(&news, encode_error(&error).as_bytes());
                    }
                    // A container that never ran leaves nothing behind.
                    if first {
                        let _ = self.store.remove(&self.id);
                    } else {
                        self.record_end(EXIT_RUNTIME_FAILURE)?;
                    }
                    return Err(error);
                }
            };
            first = false;
            let Some(record) = self.record_end(code)? else {
                return Ok(code); // removed meanwhile (rm -f)
            };
            let restart = match record.restart {
                RestartPolicy::No => false,
                RestartPolicy::OnFailure(limit) => {
                    code != 0
                        && !record.stop_requested
                        && limit.is_none_or(|limit| record.restart_count < limit)
                }
            };
            if restart {
                // Docker's back-off: 100 ms, doubled on each restart.
                let delay = 100u64 << record.restart_count.min(6);
                self.store.update(&self.id, |record| {
                    record.status = Status::Restarting;
                    record.restart_count += 1;
                })?;
                std::thread::sleep(std::time::Duration::from_millis(delay));
                continue;
            }
            if record.auto_remove {
                self.store.remove(&self.id)?;
            }
            return Ok(code);
        }
    }

    fn record_end(&self, code: i32) -> Result<Option<crate::runtime::state::Record>, LabError> {
        let oom = self.oom_killed.get();
        self.store.update(&self.id, |record| {
            record.status = Status::Exited;
            record.exit_code = Some(code);
            record.finished_at = Some(now());
            record.oom_killed = oom;
        })
    }
}

/// What a polled descriptor of the monitor's is.
#[derive(Clone, Copy, PartialEq)]
enum Role {
    Output(usize),
    Exited,
    Keys,
}

/// The first child of `pid`, from /proc/PID/task/PID/children (proc(5)).
fn first_child_of(pid: Pid) -> Option<ProcessRef> {
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
    let first: i32 = children.split_whitespace().next()?.parse().ok()?;
    ProcessRef::of(first)
}

/// A pidfd for our own child: readable once it has exited (pidfd_open(2)).
fn pidfd_of(pid: Pid) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    // SAFETY: the kernel just returned this fd to us.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn has_exited(child: Pid) -> bool {
    use nix::sys::wait::{Id, WaitPidFlag, waitid};
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
    matches!(waitid(Id::Pid(child), flags), Ok(status) if status.pid().is_some())
}

fn write_all(to: BorrowedFd<'_>, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        match write(to, bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::EINTR | Errno::EAGAIN) => continue,
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_crosses_the_pipe_whole() {
        let error = LabError::CommandNotFound {
            command: "nope".into(),
            root: "/r".into(),
        };
        let text = encode_error(&error);
        let (word, rest) = text.split_once('\n').unwrap();
        assert_eq!(word, "failed");
        let decoded = decode_error(rest);
        assert_eq!(decoded.exit_code(), 127);
        assert_eq!(decoded.to_string(), error.to_string());
        assert_eq!(decoded.hint(), error.hint());
    }
}
