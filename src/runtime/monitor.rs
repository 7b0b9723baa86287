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
use crate::runtime::stdio::{self, ContainerStdio};
use crate::runtime::sync::cloexec_pipe;
use crate::runtime::terminal::ConsoleSocket;
use nix::errno::Errno;
use nix::unistd::{ForkResult, Pid, dup2_stderr, dup2_stdin, dup2_stdout, read, write};
use std::cell::{Cell, RefCell};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// The process that watches one container.
pub struct Monitor {
    store: Store,
    id: String,
    /// Without `-d`: the output is shown as well as logged, and keys typed
    /// go to the container's stdin with `-i`.
    attached: bool,
    interactive: bool,
    /// `-t`: a pseudo-terminal instead of pipes.
    tty: bool,
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
    tty: bool,
) -> Result<Monitor, LabError> {
    let monitor = |waiting| Monitor {
        store,
        id: id.to_string(),
        attached: !detach,
        interactive,
        tty,
        waiting_command: RefCell::new(waiting),
        oom_killed: Cell::new(false),
    };
    if !detach {
        return Ok(monitor(None));
    }
    let (news_read, news_write) = cloexec_pipe()?;
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
            leave_the_users_session(narrator, news_write.as_raw_fd())?;
            Ok(monitor(Some(news_write)))
        }
    }
}
// ANCHOR_END: detach

/// A session of its own: no terminal of the user's can hang it up; stdio on
/// /dev/null and every other descriptor of its caller's closed, so that
/// nothing waiting for the command's output (a pipe, a test harness) waits
/// for the monitor too; and / as its directory, so it pins no mount.
fn leave_the_users_session(narrator: &Narrator, news: RawFd) -> Result<(), LabError> {
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
    drop(null);
    let mut keep = narrator.descriptors();
    keep.push(news);
    crate::runtime::fds::close_all_above_stdio_except(&keep);
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

/// The container's stdio: pipes, or (`-t`) a pseudo-terminal PID 1 opens
/// in its own devpts and hands over through a console socket.
pub enum ContainerIo {
    Pipes(ContainerStdio),
    Console(ConsoleSocket),
}

impl ContainerIo {
    /// In the child, after its new session: the pipes onto 0-2.
    pub fn attach(&self, narrator: &Narrator) -> Result<(), LabError> {
        match self {
            ContainerIo::Pipes(pipes) => pipes.attach(narrator),
            ContainerIo::Console(_) => Ok(()),
        }
    }

    /// In PID 1, once its /dev is the container's (after pivot_root): with
    /// `-t`, the terminal from its own devpts, master sent to the monitor.
    pub fn open_console(&self, narrator: &Narrator) -> Result<(), LabError> {
        match self {
            ContainerIo::Console(console) => console.open_inside(narrator),
            ContainerIo::Pipes(_) => Ok(()),
        }
    }
}

impl Monitor {
    /// The container's stdio for one run: the monitor's pipes, or with
    /// `-t` a pseudo-terminal of its own on all of 0-2.
    pub fn stdio(&self) -> Result<ContainerIo, LabError> {
        Ok(match self.tty {
            true => ContainerIo::Console(ConsoleSocket::new()?),
            false => ContainerIo::Pipes(ContainerStdio::new(self.interactive)?),
        })
    }

    // ANCHOR: watch
    /// The container runs: record it, tell a waiting `run -d`, then keep
    /// its output in the log until it exits, and return its exit code.
    pub fn watch(
        &self,
        narrator: &Narrator,
        child: Child,
        stdio: ContainerIo,
        cgroup: Option<&ContainerCgroup>,
        network: NetworkRecord,
    ) -> Result<i32, LabError> {
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
        // Attached, the user sees the output too, and types into stdin (-i).
        let attached = self.attached;
        match stdio {
            ContainerIo::Pipes(pipes) => pipes.relay(child.pid, attached, |stream, bytes| {
                log.write(stream, bytes);
                if attached {
                    stdio::show(stream, bytes);
                }
            }),
            // A terminal has one stream, which Docker logs as stdout.
            ContainerIo::Console(console) => {
                let keys = attached && self.interactive;
                console
                    .receive()?
                    .relay_into(narrator, child.pid, keys, |bytes| {
                        log.write(Stream::Stdout, bytes)
                    })?
            }
        }
        log.flush();
        let code = crate::runtime::process::wait(narrator, child)?;
        self.oom_killed
            .set(code == 137 && cgroup.is_some_and(ContainerCgroup::oom_killed));
        Ok(code)
    }
    // ANCHOR_END: watch

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
                        self.record_end(EXIT_RUNTIME_FAILURE, false)?;
                    }
                    return Err(error);
                }
            };
            first = false;
            let (record, restart) = self.record_end(code, true)?;
            let Some(record) = record else {
                return Ok(code); // removed meanwhile (rm -f)
            };
            if restart {
                // Docker's back-off: 100 ms, doubled on each restart.
                let delay = 100u64 << (record.restart_count - 1).min(6);
                std::thread::sleep(std::time::Duration::from_millis(delay));
                continue;
            }
            if record.auto_remove {
                self.store.remove(&self.id)?;
            }
            return Ok(code);
        }
    }

    /// Record how the container ended, and whether it starts again, in one
    /// change of the record, so that no reader (wait, logs -f, rm) sees it
    /// "exited" between two runs.
    fn record_end(
        &self,
        code: i32,
        may_restart: bool,
    ) -> Result<(Option<crate::runtime::state::Record>, bool), LabError> {
        let oom = self.oom_killed.get();
        let mut restart = false;
        let record = self.store.update(&self.id, |record| {
            record.exit_code = Some(code);
            record.finished_at = Some(now());
            record.oom_killed = oom;
            restart = may_restart
                && match record.restart {
                    RestartPolicy::No => false,
                    RestartPolicy::OnFailure(limit) => {
                        code != 0
                            && !record.stop_requested
                            && limit.is_none_or(|limit| record.restart_count < limit)
                    }
                };
            match restart {
                true => {
                    record.status = Status::Restarting;
                    record.restart_count += 1;
                }
                false => record.status = Status::Exited,
            }
        })?;
        Ok((record, restart))
    }
}

/// The first child of `pid`, from /proc/PID/task/PID/children (proc(5)).
fn first_child_of(pid: Pid) -> Option<ProcessRef> {
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
    let first: i32 = children.split_whitespace().next()?.parse().ok()?;
    ProcessRef::of(first)
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
