//! Namespaces: each gives the container a private copy of one kind of
//! global resource (namespaces(7)).
//!
//! Linux gained them one by one: mount (2.4.19, 2002), UTS and IPC
//! (2.6.19, 2006), PID (2.6.24, 2008), network (completed around 2.6.29,
//! 2009), user (3.8, 2013), cgroup (4.6, 2016), time (5.6, 2020).

use crate::error::LabError;
use crate::narrator::{Narrator, Step};
use crate::runtime::fork::{exit_code_of, fork_forwarding};
use crate::runtime::sync::Handshake;
use nix::sched::CloneFlags;

/// Why a container wants each kind, for the narration.
const REASONS: &[(CloneFlags, &str, &str)] = &[
    (
        CloneFlags::CLONE_NEWPID,
        "CLONE_NEWPID",
        "a process tree of its own whose first process is PID 1",
    ),
    (
        CloneFlags::CLONE_NEWUTS,
        "CLONE_NEWUTS",
        "a hostname of its own",
    ),
    (
        CloneFlags::CLONE_NEWNS,
        "CLONE_NEWNS",
        "a mount table of its own",
    ),
    (
        CloneFlags::CLONE_NEWIPC,
        "CLONE_NEWIPC",
        "SysV and POSIX IPC objects of its own",
    ),
    (
        CloneFlags::CLONE_NEWNET,
        "CLONE_NEWNET",
        "a network stack of its own",
    ),
    (
        CloneFlags::CLONE_NEWUSER,
        "CLONE_NEWUSER",
        "user and group ids of its own",
    ),
    (
        CloneFlags::CLONE_NEWCGROUP,
        "CLONE_NEWCGROUP",
        "a view of the cgroup tree rooted at its own cgroup",
    ),
];

/// The `CLONE_NEW*` names in `kinds`, joined as C would write them.
pub fn flag_names(kinds: CloneFlags) -> String {
    REASONS
        .iter()
        .filter(|(flag, _, _)| kinds.contains(*flag))
        .map(|(_, name, _)| *name)
        .collect::<Vec<_>>()
        .join("|")
}

// ANCHOR: unshare
/// unshare(2): move the calling process into new namespaces of `kinds`.
/// For CLONE_NEWPID the caller stays where it is and its *next child* is
/// the new namespace's PID 1.
pub fn unshare(narrator: &Narrator, kinds: CloneFlags) -> Result<(), LabError> {
    let names = flag_names(kinds);
    let reasons: Vec<&str> = REASONS
        .iter()
        .filter(|(flag, _, _)| kinds.contains(*flag))
        .map(|(_, _, why)| *why)
        .collect();
    let why = if kinds == CloneFlags::CLONE_NEWPID {
        "the next child starts a process tree of its own, as its PID 1".to_string()
    } else {
        format!("the container gets {}", reasons.join(", "))
    };
    narrator.run(
        Step {
            syscall: "unshare",
            args: &names,
            why: &why,
            man: "unshare(2)",
        },
        || nix::sched::unshare(kinds),
    )
}
// ANCHOR_END: unshare

/// After unshare(CLONE_NEWPID) and the fork that made the container's PID 1,
/// put the runtime's own later children (newuidmap, pasta) back in its PID
/// namespace: setns(2) to the namespace the runtime itself is in resets
/// /proc/self/ns/pid_for_children (pid_namespaces(7)). Its threads need it
/// too: clone(2) refuses CLONE_THREAD with EINVAL while children would go
/// to another PID namespace than the caller's own. Not narrated: it
/// runs while the child narrates its own steps, and the narration of
/// unshare(CLONE_NEWPID) already says it.
pub fn restore_pid_namespace_for_children() -> nix::Result<()> {
    let own = std::fs::read_link("/proc/self/ns/pid").ok();
    let for_children = std::fs::read_link("/proc/self/ns/pid_for_children").ok();
    if own == for_children {
        return Ok(());
    }
    let flags = nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC;
    let own = nix::fcntl::open("/proc/self/ns/pid", flags, nix::sys::stat::Mode::empty())?;
    nix::sched::setns(own, CloneFlags::CLONE_NEWPID)
}

// ANCHOR: enter_pid_namespace
/// For a process already in its own user namespace: unshare(CLONE_NEWPID)
/// and fork, so that the new PID namespace belongs to that user namespace
/// (mounting its /proc takes CAP_SYS_ADMIN over the user namespace that
/// owns it). Only the child, PID 1, returns; this process waits for it and
/// leaves with its exit code, passing signals on.
pub fn enter_new_pid_namespace(narrator: &Narrator) -> Result<(), LabError> {
    unshare(narrator, CloneFlags::CLONE_NEWPID)?;
    let why = "the child is PID 1 of a PID namespace the container's user namespace owns";
    fork_into_pid_namespace(narrator, why, "pid 1")
}

/// A new PID namespace (unshare) or another's (setns) is only for the
/// caller's children (pid_namespaces(7)): fork, and only the child, in the
/// namespace, returns, narrating as `actor`. This process waits for it and
/// leaves with its exit code, passing signals on.
pub fn fork_into_pid_namespace(
    narrator: &Narrator,
    why: &str,
    actor: &'static str,
) -> Result<(), LabError> {
    let step = Step {
        syscall: "fork",
        args: "",
        why,
        man: "fork(2)",
    };
    match fork_forwarding(narrator, step)? {
        nix::unistd::ForkResult::Child => {
            // If this waiting parent dies, so does the container.
            crate::runtime::fork::die_with_parent();
            narrator.act_as(actor);
            Ok(())
        }
        nix::unistd::ForkResult::Parent { child } => {
            // Keep nothing open: the runtime must see its pipes close when
            // the command execs, not when this process ends.
            crate::runtime::fds::close_all_above_stdio();
            let code = loop {
                match nix::sys::wait::waitpid(child, None) {
                    Err(nix::errno::Errno::EINTR) => continue,
                    Ok(status) => break exit_code_of(narrator, status),
                    Err(_) => break crate::error::EXIT_RUNTIME_FAILURE,
                }
            };
            // SAFETY: leave without the runtime's exit handlers.
            unsafe { libc::_exit(code) }
        }
    }
}
// ANCHOR_END: enter_pid_namespace

// ANCHOR: fork_detached
/// Chapter 10: fork the container's first process (PID 1 when a PID
/// namespace was made or joined: it is for children only), tell the
/// runtime its pid, and end this process, so that the container's process
/// is orphaned to the runtime's caller. Only the new process returns.
pub fn fork_detached(narrator: &Narrator, handshake: &Handshake) -> Result<(), LabError> {
    let step = Step {
        syscall: "fork",
        args: "",
        why: "the container's first process; this one tells the runtime its pid and leaves",
        man: "fork(2)",
    };
    // SAFETY: single-threaded, as every fork of the lab's.
    match narrator.run(step, || unsafe { nix::unistd::fork() })? {
        nix::unistd::ForkResult::Child => {
            narrator.act_as("pid 1");
            Ok(())
        }
        nix::unistd::ForkResult::Parent { child } => {
            let why = "the runtime learns the host's pid of the container's process";
            let code = match handshake.ask_runtime(narrator, &format!("pid {child}"), why) {
                Ok(()) => 0,
                Err(_) => crate::error::EXIT_RUNTIME_FAILURE,
            };
            // SAFETY: leave without the runtime's exit handlers.
            unsafe { libc::_exit(code) }
        }
    }
}
// ANCHOR_END: fork_detached

/// A namespace to join, opened: every one is opened before the first
/// setns(2), since after joining a user or mount namespace the paths
/// (and the right to open them) are no longer the runtime's.
pub struct NamespaceFile {
    pub path: std::path::PathBuf,
    pub kind: CloneFlags,
    file: std::os::fd::OwnedFd,
}

impl std::os::fd::AsRawFd for NamespaceFile {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.file.as_raw_fd()
    }
}

/// Open the namespace file at `path` (a /proc/PID/ns/KIND file or a bind
/// mount of one), of kind `kind`.
pub fn open_namespace(path: &std::path::Path, kind: CloneFlags) -> Result<NamespaceFile, LabError> {
    let flags = nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC;
    let file = nix::fcntl::open(path, flags, nix::sys::stat::Mode::empty()).map_err(|errno| {
        LabError::StepFailed {
            syscall: "open",
            target: path.display().to_string(),
            errno,
        }
    })?;
    Ok(NamespaceFile {
        path: path.to_path_buf(),
        kind,
        file,
    })
}

/// setns(2) into an opened namespace.
pub fn join(narrator: &Narrator, namespace: &NamespaceFile) -> Result<(), LabError> {
    let args = format!(
        "{:?}, {}",
        namespace.path.display().to_string(),
        flag_names(namespace.kind)
    );
    narrator.run(
        Step {
            syscall: "setns",
            args: &args,
            why: "join a namespace that already exists, as config.json asks",
            man: "setns(2)",
        },
        || nix::sched::setns(&namespace.file, namespace.kind),
    )
}

/// sethostname(2) inside the new UTS namespace: the host's stays as it is.
pub fn set_hostname(narrator: &Narrator, hostname: &str) -> Result<(), LabError> {
    let args = format!("{hostname:?}");
    narrator.run(
        Step {
            syscall: "sethostname",
            args: &args,
            why: "name the container; only its own UTS namespace sees the change",
            man: "sethostname(2)",
        },
        || nix::unistd::sethostname(hostname),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_names_read_like_c() {
        let kinds = CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWPID;
        assert_eq!(flag_names(kinds), "CLONE_NEWPID|CLONE_NEWUTS");
    }
}
