//! fork, exec and wait: the three calls every process the runtime starts
//! goes through, with the signal proxy around fork.
//!
//! A user stops a container by signalling the runtime (Ctrl-C, `kill`), so
//! the runtime passes those signals on to its child instead of dying and
//! leaving the child behind; PID 1 of a jail (`init`) and the waiting parent
//! of a new PID namespace (`namespaces`) fork through the same proxy. If the
//! child's exec fails, the error goes back to the runtime over the report
//! pipe (`sync`), and the runtime ends with the shell's exit codes.

use crate::error::{EXIT_RUNTIME_FAILURE, LabError};
use crate::narrator::{Narrator, Step};
use crate::runtime::command::Command;
use crate::runtime::sync::report_and_exit;
use nix::errno::Errno;
use nix::sys::signal::{
    SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal, sigaction, sigprocmask,
};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, execv, execve, fork};
use std::os::fd::OwnedFd;
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

/// fork(2) with the signal proxy in place: from its first instant the new
/// child receives the signals a user sends to stop the container, and the
/// child starts with default dispositions and nothing blocked (both survive
/// execve(2), signal(7)); SIGPIPE alone gets its default at exec.
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

/// CVE-2019-5736 and CVE-2016-9962: until its execve(2) a process that
/// joins or builds a container is the lab's binary and holds descriptors
/// of the host's. Not dumpable, it fails ptrace's access check for anyone
/// without CAP_SYS_PTRACE over the host (prctl(2)): no process of the
/// container can ptrace it or open its /proc/PID/exe, fd/ or mem. The flag
/// is inherited by fork(2); execve(2) makes the command dumpable again,
/// once it is the container's program.
pub fn become_undumpable(narrator: &Narrator) -> Result<(), LabError> {
    narrator.run(
        Step {
            syscall: "prctl",
            args: "PR_SET_DUMPABLE, 0",
            why: "no process of the container may ptrace this one, or open its /proc/PID/exe (CVE-2019-5736), before the command replaces it",
            man: "prctl(2)",
        },
        || nix::sys::prctl::set_dumpable(false),
    )
}

/// Pass the signals a user stops a container with on to `pid`, a
/// process this one did not fork itself (chapter 10's container process,
/// a grandchild that became this subreaper's child).
pub fn forward_signals_to(pid: Pid) {
    install_signal_forwarding();
    CHILD.store(pid.as_raw(), Ordering::SeqCst);
}

/// SIGKILL this process when its parent ends, even by SIGKILL, so that a
/// container never runs on unwatched (prctl(2), PR_SET_PDEATHSIG). Armed
/// right after fork, and again after any change of effective ids, which
/// clears it.
pub fn die_with_parent() {
    // SAFETY: PR_SET_PDEATHSIG takes a signal number.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) };
}

// ANCHOR: exec_or_report
/// Replace this process with the command; if execve(2) fails, send the
/// error through `report` and exit.
pub fn exec_or_report(narrator: &Narrator, command: &Command, report: OwnedFd) -> ! {
    let error = exec_command(narrator, command);
    report_and_exit(report, &error)
}
// ANCHOR_END: exec_or_report

/// Replace the child with the command. Returns only if execve(2) failed.
pub fn exec_command(narrator: &Narrator, command: &Command) -> LabError {
    let path = command.path.to_string_lossy().into_owned();
    let mut args = format!("{path:?}, [{}]", command.display_argv());
    if let Some(environment) = &command.environment {
        let keys: Vec<String> = environment
            .iter()
            .map(|setting| {
                setting
                    .to_string_lossy()
                    .split('=')
                    .next()
                    .unwrap_or("")
                    .to_string()
            })
            .collect();
        args.push_str(&format!(", [{}]", keys.join(", ")));
    }
    let result = narrator.run(
        Step {
            syscall: "execve",
            args: &args,
            why: "replace the child with the command; from here on it is the container",
            man: "execve(2)",
        },
        || {
            restore_default_sigpipe();
            match &command.environment {
                Some(environment) => execve(&command.path, &command.argv, environment),
                None => execv(&command.path, &command.argv),
            }
        },
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

/// pidfd_open(2): a descriptor that names process `pid` for good (even once
/// its pid is given to another), readable when it has exited (Linux 5.3).
pub fn pidfd_open(pid: i32) -> nix::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor
    // (close-on-exec) or -1.
    let fd = Errno::result(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
    // SAFETY: a descriptor the kernel just gave us, owned once.
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd as i32) })
}

/// Whether our child `child` has exited, without reaping it.
pub fn has_exited(child: Pid) -> bool {
    use nix::sys::wait::{Id, WaitPidFlag, waitid};
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
    matches!(waitid(Id::Pid(child), flags), Ok(status) if status.pid().is_some())
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
    let status = narrator.run_unpaused(step, || {
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
    for signal in FORWARDED_SIGNALS {
        // SAFETY: restoring SIG_DFL has no handler to be unsafe about.
        let _ = unsafe { sigaction(signal, &default) };
    }
}

/// Rust ignores SIGPIPE in every program it starts; an ignored signal
/// stays ignored across execve(2), and `yes | head` in the container would
/// misbehave, so the command gets the default back. Only at exec: until
/// then the child narrates, and a narration written after the reader of
/// stderr went away (`--explain 2>&1 | head`) must fail quietly with EPIPE,
/// not kill the child halfway through building the container.
fn restore_default_sigpipe() {
    let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    // SAFETY: restoring SIG_DFL has no handler to be unsafe about.
    let _ = unsafe { sigaction(Signal::SIGPIPE, &default) };
}
