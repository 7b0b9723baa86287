//! Starting the container's process and waiting for it.
//!
//! fork(2) makes the child; the child runs the chapter's setup steps (chroot,
//! namespaces, ...) and then execve(2)s the command. A close-on-exec pipe
//! tells the parent how that went: if exec succeeds the kernel closes the
//! pipe and the parent reads nothing; if any step fails the child writes its
//! error into the pipe first. This is how Go's os/exec and Rust's std::process::Command learn
//! that an exec failed.

use crate::command::Command;
use crate::error::{EXIT_RUNTIME_FAILURE, LabError};
use crate::narrator::{Narrator, Step};
use crate::sharing::Probe;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::signal::{
    SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal, sigaction, sigprocmask,
};
use nix::sys::socket::{
    AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType, recvmsg,
    sendmsg, socketpair,
};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, execv, fork, pipe2, read, write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

/// The signals a user sends to stop a container. The runtime passes them on
/// to the command instead of dying and leaving it behind (runc calls this
/// the signal proxy).
const FORWARDED_SIGNALS: [Signal; 4] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
];

/// The child's pid, for the signal handler (0 until there is a child).
static CHILD: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward_to_child(signal: libc::c_int) {
    let child = CHILD.load(Ordering::SeqCst);
    if child > 0 {
        // SAFETY: kill(2) is async-signal-safe; a stale pid at worst gets ESRCH.
        unsafe { libc::kill(child, signal) };
    }
}

/// A running container process.
pub struct Child {
    pub pid: Pid,
}

/// How the child hands over to the command once its setup is done.
pub enum Launch {
    /// execve(2) the command: it becomes the container's first process.
    Exec,
    /// Stay behind as the container's PID 1, an init that reaps orphans and
    /// passes signals on, and run the command as its child (see `init`).
    UnderInit,
}

// ANCHOR: spawn
/// Fork; in the child run `setup` (the chapter's isolation steps), then
/// launch the command. Returns once the command is running, or with the
/// child's error.
pub fn spawn(
    narrator: &Narrator,
    command: &Command,
    setup: impl FnOnce(&Narrator) -> Result<Launch, LabError>,
) -> Result<Child, LabError> {
    spawn_with_runtime_help(
        narrator,
        command,
        |_, _| Ok(Vec::new()),
        |narrator, _| setup(narrator),
    )
}
// ANCHOR_END: spawn

// ANCHOR: spawn_with_runtime_help
/// Like `spawn`, for containers the runtime must finish from outside: the
/// child's `setup` may stop at `Handshake::ask_runtime`, the runtime then
/// runs `help(child, what)` (move a network interface in, write uid maps)
/// and lets the child go on. A pipe carries the child's requests and a unix
/// socket the runtime's answers, which may bring file descriptors along.
pub fn spawn_with_runtime_help(
    narrator: &Narrator,
    command: &Command,
    mut help: impl FnMut(Pid, &str) -> Result<Vec<OwnedFd>, LabError>,
    setup: impl FnOnce(&Narrator, &Handshake) -> Result<Launch, LabError>,
) -> Result<Child, LabError> {
    // Comparing namespaces costs a dozen /proc reads: only for --explain.
    let host_view = narrator.is_explaining().then(|| Probe::open().view());
    let pipe = || {
        pipe2(OFlag::O_CLOEXEC).map_err(|errno| LabError::StepFailed {
            syscall: "pipe2",
            target: "O_CLOEXEC".into(),
            errno,
        })
    };
    let (report_read, report_write) = pipe()?;
    // The runtime's answers go the other way on a socket, which can carry
    // file descriptors along (SCM_RIGHTS, unix(7)): ch05 sends the child its
    // idmapped root this way.
    let (go_read, go_write) = socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|errno| LabError::StepFailed {
        syscall: "socketpair",
        target: "AF_UNIX, SOCK_STREAM".into(),
        errno,
    })?;
    let step = Step {
        syscall: "fork",
        args: "",
        why: "make the process that will become the container; the runtime stays to wait for it",
        man: "fork(2)",
    };
    match fork_forwarding(narrator, step)? {
        ForkResult::Parent { child } => {
            drop(report_write);
            drop(go_read);
            if let Err(errno) = crate::namespaces::restore_pid_namespace_for_children() {
                let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
                let _ = waitpid(child, None);
                return Err(LabError::StepFailed {
                    syscall: "setns",
                    target: "/proc/self/ns/pid, CLONE_NEWPID".into(),
                    errno,
                });
            }
            let mut reports = ReportReader {
                pipe: report_read,
                buffer: Vec::new(),
            };
            loop {
                match reports.next() {
                    Report::Exec => return Ok(Child { pid: child }),
                    Report::Failed(error) => {
                        let _ = waitpid(child, None);
                        return Err(error);
                    }
                    Report::Asks(what) => {
                        let answer = match help(child, &what) {
                            Ok(fds) => fds,
                            Err(error) => {
                                // The child reads the refusal and leaves quietly;
                                // the runtime reports its own error.
                                let _ = write(&go_write, b"F");
                                let _ = waitpid(child, None);
                                return Err(error);
                            }
                        };
                        let raw: Vec<RawFd> = answer.iter().map(|fd| fd.as_raw_fd()).collect();
                        let rights = [ControlMessage::ScmRights(&raw)];
                        let messages: &[ControlMessage] =
                            if raw.is_empty() { &[] } else { &rights };
                        let go = [std::io::IoSlice::new(b"G")];
                        let _ = sendmsg::<()>(
                            go_write.as_raw_fd(),
                            &go,
                            messages,
                            MsgFlags::empty(),
                            None,
                        );
                    }
                }
            }
        }
        ForkResult::Child => {
            drop(report_read);
            drop(go_write);
            narrator.act_as("child");
            // If the runtime dies (even by SIGKILL), the container dies with
            // it rather than run on unwatched (prctl(2), PR_SET_PDEATHSIG).
            // SAFETY: PR_SET_PDEATHSIG takes a signal number.
            unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) };
            let probe = host_view.as_ref().map(|_| Probe::open());
            let handshake = Handshake {
                report: &report_write,
                go: go_read,
            };
            match setup(narrator, &handshake) {
                Ok(launch) => {
                    if let (Some(probe), Some(host_view)) = (&probe, &host_view) {
                        narrator.note(&probe.view().compare(host_view));
                    }
                    // The probe holds the host's /proc/self/ns open: it must
                    // not outlive setup in a process the container can see.
                    drop(probe);
                    drop(handshake);
                    match launch {
                        Launch::Exec => exec_or_report(narrator, command, report_write),
                        Launch::UnderInit => crate::init::run(narrator, command, report_write),
                    }
                }
                // SAFETY: the runtime already has its own error to report.
                Err(LabError::RuntimeGaveUp) => unsafe { libc::_exit(EXIT_RUNTIME_FAILURE) },
                Err(error) => report_and_exit(report_write, &error),
            }
        }
    }
}
// ANCHOR_END: spawn_with_runtime_help

/// The child's end of the conversation with the runtime.
pub struct Handshake<'a> {
    report: &'a OwnedFd,
    go: OwnedFd,
}

impl Handshake<'_> {
    /// Ask the runtime to do `what` from outside, and wait until it has;
    /// returns the file descriptors it sent along, if any.
    pub fn ask_runtime(
        &self,
        narrator: &Narrator,
        what: &str,
        why: &str,
    ) -> Result<Vec<OwnedFd>, LabError> {
        let args = format!("sync pipe, {what:?}");
        let (answer, fds) = narrator.run(
            Step {
                syscall: "write",
                args: &args,
                why,
                man: "pipe(7)",
            },
            || {
                write(self.report, format!("S{what}\n").as_bytes())?;
                let mut answer = [0u8; 1];
                let mut space = nix::cmsg_space!([RawFd; 4]);
                loop {
                    let mut buffer = [std::io::IoSliceMut::new(&mut answer)];
                    let received = recvmsg::<()>(
                        self.go.as_raw_fd(),
                        &mut buffer,
                        Some(&mut space),
                        MsgFlags::MSG_CMSG_CLOEXEC,
                    );
                    match received {
                        Err(Errno::EINTR) => continue,
                        Err(errno) => return Err(errno),
                        Ok(message) if message.bytes == 0 => return Ok((b'F', Vec::new())),
                        Ok(message) => {
                            let mut fds = Vec::new();
                            for control in message.cmsgs()? {
                                if let ControlMessageOwned::ScmRights(raw) = control {
                                    // SAFETY: the kernel just gave us these
                                    // descriptors; we are their only owner.
                                    fds.extend(
                                        raw.into_iter()
                                            .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                                    );
                                }
                            }
                            return Ok((answer[0], fds));
                        }
                    }
                }
            },
        )?;
        if answer == b'G' {
            Ok(fds)
        } else {
            Err(LabError::RuntimeGaveUp)
        }
    }
}

/// What the child said on the report pipe.
enum Report {
    /// Nothing, and the pipe closed: the command was executed.
    Exec,
    /// Setup failed; the child's error.
    Failed(LabError),
    /// The child waits for the runtime to do something from outside.
    Asks(String),
}

struct ReportReader {
    pipe: OwnedFd,
    buffer: Vec<u8>,
}

impl ReportReader {
    /// Read until one whole message is in: an `S...\n` line, or an `E`
    /// report that runs to end of file.
    fn next(&mut self) -> Report {
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

/// fork(2) with the signal proxy in place: from its first instant the new
/// child receives the signals a user sends to stop the container, and the
/// child starts with default dispositions and nothing blocked (both survive
/// execve(2), signal(7)).
pub fn fork_forwarding(narrator: &Narrator, step: Step<'_>) -> Result<ForkResult, LabError> {
    install_signal_forwarding();
    // Hold the forwarded signals until the parent knows the child's pid;
    // one that arrived in between would otherwise be forwarded to nobody.
    let mut previous_mask = SigSet::empty();
    let _ = sigprocmask(
        SigmaskHow::SIG_BLOCK,
        Some(&forwarded_signal_set()),
        Some(&mut previous_mask),
    );
    // SAFETY: the lab's binaries are single-threaded when they fork, so the
    // child may allocate and use the narrator before it execs.
    let result = narrator.run(step, || unsafe { fork() });
    match result {
        Ok(ForkResult::Parent { child }) => CHILD.store(child.as_raw(), Ordering::SeqCst),
        Ok(ForkResult::Child) => restore_default_signals(),
        Err(_) => {}
    }
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&previous_mask), None);
    result
}

/// Replace this process with the command; if execve(2) fails, send the
/// error through `report` and exit.
pub fn exec_or_report(narrator: &Narrator, command: &Command, report: OwnedFd) -> ! {
    let error = exec(narrator, command);
    report_and_exit(report, &error)
}

/// Send `error` to the runtime through `report` and end this process.
pub fn report_and_exit(report: OwnedFd, error: &LabError) -> ! {
    write_report(report, error);
    // SAFETY: _exit(2) skips atexit handlers and stdio flushing that belong
    // to the parent's copy of the process.
    unsafe { libc::_exit(error.exit_code()) }
}

/// Replace the child with the command. Returns only if execve(2) failed.
fn exec(narrator: &Narrator, command: &Command) -> LabError {
    let path = command.path.to_string_lossy().into_owned();
    let args = format!("{path:?}, [{}]", command.display_argv());
    let result = narrator.run(
        Step {
            syscall: "execve",
            args: &args,
            why: "replace the child with the command; from here on it is the container",
            man: "execve(2)",
        },
        || execv(&command.path, &command.argv),
    );
    match result {
        Err(LabError::StepFailed { errno, .. }) => LabError::CommandNotExecutable {
            command: path,
            errno,
        },
        Err(other) => other,
        Ok(never) => match never {},
    }
}

// ANCHOR: exit_code
/// Wait for the command and return the exit code the runtime should end
/// with: the command's own, or 128+N if signal N killed it (the shell's
/// convention, which Docker follows: 137 is SIGKILL, 143 SIGTERM).
pub fn wait(narrator: &Narrator, child: Child) -> Result<i32, LabError> {
    let args = format!("{}, &status, 0", child.pid);
    let step = Step {
        syscall: "waitpid",
        args: &args,
        why: "collect the command's exit status so the runtime can return it",
        man: "waitpid(2)",
    };
    let status = narrator.run(step, || {
        loop {
            match waitpid(child.pid, None) {
                Err(Errno::EINTR) => continue,
                other => return other,
            }
        }
    })?;
    CHILD.store(0, Ordering::SeqCst);
    let code = exit_code_of(narrator, status);
    narrator.note(&format!("the command exited; the runtime exits {code}"));
    Ok(code)
}

/// The shell's encoding of how a process ended: its exit code, or 128+N
/// for death by signal N.
pub fn exit_code_of(narrator: &Narrator, status: WaitStatus) -> i32 {
    match status {
        WaitStatus::Exited(_, code) => code,
        WaitStatus::Signaled(_, signal, _) => {
            narrator.note(&format!("the command was killed by {signal}"));
            128 + signal as i32
        }
        _ => EXIT_RUNTIME_FAILURE,
    }
}
// ANCHOR_END: exit_code

fn install_signal_forwarding() {
    let action = SigAction::new(
        SigHandler::Handler(forward_to_child),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for signal in FORWARDED_SIGNALS {
        // SAFETY: the handler only loads an atomic and calls kill(2).
        let _ = unsafe { sigaction(signal, &action) };
    }
}

fn forwarded_signal_set() -> SigSet {
    let mut set = SigSet::empty();
    for signal in FORWARDED_SIGNALS {
        set.add(signal);
    }
    set
}

/// Back to the default dispositions, not our handlers (exec resets handled
/// signals anyway; this also covers ignored ones).
fn restore_default_signals() {
    let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    // Rust ignores SIGPIPE in every program it starts; an ignored signal
    // stays ignored across execve(2), and `yes | head` would misbehave.
    for signal in FORWARDED_SIGNALS.into_iter().chain([Signal::SIGPIPE]) {
        // SAFETY: restoring SIG_DFL has no handler to be unsafe about.
        let _ = unsafe { sigaction(signal, &default) };
    }
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
