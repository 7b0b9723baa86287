//! Starting the container's process and waiting for it.
//!
//! fork(2) makes the child; the child runs the chapter's setup steps (chroot,
//! namespaces, ...) and then execve(2)s the command. A close-on-exec pipe
//! tells the parent how that went: if exec succeeds the kernel closes the
//! pipe and the parent reads nothing; if any step fails the child writes its
//! error into the pipe first. This is how Go's os/exec and Rust's std::process::Command learn
//! that an exec failed.

use crate::error::{EXIT_RUNTIME_FAILURE, LabError};
use crate::narrator::{Narrator, Step};
use crate::runtime::command::Command;
use crate::runtime::fork::{self, die_with_parent, exec_or_report, fork_forwarding};
use crate::runtime::sharing::Probe;
use crate::runtime::sync::{Handshake, Report, ReportReader, cloexec_pipe, report_and_exit};
use crate::runtime::{init, namespaces};
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid, write};

/// A chapter spawns through this module and waits through it too.
pub use crate::runtime::fork::{Child, wait};

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
        |_, _| Ok(()),
        |narrator, _| setup(narrator),
    )
}
// ANCHOR_END: spawn

// ANCHOR: spawn_with_runtime_help
/// Like `spawn`, for containers the runtime must finish from outside: the
/// child's `setup` may stop at `Handshake::ask_runtime`, the runtime then
/// runs `help(child, what)` (move a network interface in, write uid maps)
/// and lets the child go on. A pipe carries the child's requests and a
/// second pipe the runtime's answers.
pub fn spawn_with_runtime_help(
    narrator: &Narrator,
    command: &Command,
    mut help: impl FnMut(Pid, &str) -> Result<(), LabError>,
    setup: impl FnOnce(&Narrator, &Handshake) -> Result<Launch, LabError>,
) -> Result<Child, LabError> {
    // Comparing namespaces costs a dozen /proc reads: only for --explain.
    let host_view = narrator.is_explaining().then(|| Probe::open().view());
    // ANCHOR: report_pipe
    // The child's reports come up this pipe. Both ends are close-on-exec:
    // when the command's execve succeeds, the kernel closes the child's
    // end, and the runtime reads end-of-file.
    let (report_read, report_write) = cloexec_pipe()?;
    // ANCHOR_END: report_pipe
    // The runtime's answers go the other way, on a pipe of their own.
    let (go_read, go_write) = cloexec_pipe()?;
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
            if let Err(errno) = namespaces::restore_pid_namespace_for_children() {
                let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
                let _ = waitpid(child, None);
                return Err(LabError::StepFailed {
                    syscall: "setns",
                    target: "/proc/self/ns/pid, CLONE_NEWPID".into(),
                    errno,
                });
            }
            // ANCHOR: parent_learns
            let mut reports = ReportReader {
                pipe: report_read,
                buffer: Vec::new(),
            };
            loop {
                match reports.next() {
                    // End of file and not a word: execve closed the pipe.
                    Report::Exec => return Ok(Child { pid: child }),
                    // A step failed, or execve did: the child's error.
                    Report::Failed(error) => {
                        let _ = waitpid(child, None);
                        return Err(error);
                    }
                    // ANCHOR_END: parent_learns
                    // From chapter 04 on: the child waits for the runtime.
                    Report::Asks(what) => {
                        if let Err(error) = help(child, &what) {
                            // The child reads the refusal and leaves quietly;
                            // the runtime reports its own error.
                            let _ = write(&go_write, b"F");
                            let _ = waitpid(child, None);
                            return Err(error);
                        }
                        let _ = write(&go_write, b"G");
                    }
                }
            }
        }
        ForkResult::Child => {
            drop(report_read);
            drop(go_write);
            narrator.act_as("child");
            // If the runtime dies (even by SIGKILL), the container dies with it.
            die_with_parent();
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
                        Launch::UnderInit => init::run(narrator, command, report_write),
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

// ANCHOR: spawn_detached
/// Chapter 10, runc's way: the container's process outlives the runtime.
/// Fork a child that runs `setup`; the child forks the container's
/// process itself (`namespaces::fork_detached`: into its PID namespace,
/// telling the runtime its pid) and leaves, so the container's process is
/// orphaned to whoever started the runtime as a subreaper (an engine's
/// shim or conmon; `run` itself). Returns the container's pid once it says
/// "ready" (`create`: it now waits for `start`) or once it executed its
/// command (`exec`); `help` serves its other requests as in
/// `spawn_with_runtime_help`, given the child's pid until the container's
/// process exists, the container's after.
pub fn spawn_detached(
    narrator: &Narrator,
    mut help: impl FnMut(Pid, &str) -> Result<(), LabError>,
    setup: impl FnOnce(&Narrator, &Handshake) -> Result<std::convert::Infallible, LabError>,
) -> Result<Pid, LabError> {
    let (report_read, report_write) = cloexec_pipe()?;
    let (go_read, go_write) = cloexec_pipe()?;
    let step = Step {
        syscall: "fork",
        args: "",
        why: "a process that joins or makes the container's namespaces and forks the container's first process",
        man: "fork(2)",
    };
    match fork_forwarding(narrator, step)? {
        ForkResult::Parent { child } => {
            drop(report_write);
            drop(go_read);
            let mut reports = ReportReader {
                pipe: report_read,
                buffer: Vec::new(),
            };
            let mut container: Option<Pid> = None;
            let give_up = |container: Option<Pid>| {
                if let Some(pid) = container {
                    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                }
                let _ = waitpid(child, None);
            };
            loop {
                match reports.next() {
                    Report::Asks(what) => {
                        if let Some(pid) = what.strip_prefix("pid ") {
                            container = pid.parse().ok().map(Pid::from_raw);
                        } else if what == "ready" {
                            let _ = write(&go_write, b"G");
                            let _ = waitpid(child, None);
                            return container.ok_or(LabError::RuntimeGaveUp);
                        } else if let Err(error) = help(container.unwrap_or(child), &what) {
                            let _ = write(&go_write, b"F");
                            give_up(container);
                            return Err(error);
                        }
                        let _ = write(&go_write, b"G");
                    }
                    // The command was executed (exec): the pipe closed.
                    Report::Exec => {
                        let _ = waitpid(child, None);
                        return container.ok_or_else(|| LabError::InChild {
                            exit_code: EXIT_RUNTIME_FAILURE,
                            message: "the container's process ended before it was ready".into(),
                            hint: None,
                        });
                    }
                    Report::Failed(error) => {
                        give_up(container);
                        return Err(error);
                    }
                }
            }
        }
        ForkResult::Child => {
            drop(report_read);
            drop(go_write);
            narrator.act_as("child");
            let handshake = Handshake {
                report: &report_write,
                go: go_read,
            };
            // In `create` the container's process waits in this binary,
            // holding the state directory, until `start`: nothing in the
            // container may reach into it meanwhile (`exec` included).
            let error = match fork::become_undumpable(narrator)
                .and_then(|()| setup(narrator, &handshake))
            {
                Ok(never) => match never {},
                Err(error) => error,
            };
            drop(handshake);
            match error {
                // SAFETY: the runtime already has its own error to report.
                LabError::RuntimeGaveUp => unsafe { libc::_exit(EXIT_RUNTIME_FAILURE) },
                error => report_and_exit(report_write, &error),
            }
        }
    }
}
// ANCHOR_END: spawn_detached
