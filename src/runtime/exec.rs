//! Joining a running container: `exec` runs one more command where the
//! container's own processes are (docker exec, runc exec, nsenter(1)).
//!
//! Nothing is made here; everything is joined. The runtime, outside, takes
//! a pidfd on the container's first process and opens its namespaces; a
//! child then writes itself into the container's cgroups, enters each
//! namespace with setns(2), user first, and forks once more, because a PID
//! namespace is entered by children only. The grandchild gets the
//! container's bounding set, a session of its own, finds the command in
//! the container's root with the container's PATH, and executes it.
//!
//! runc's exec had two famous holes here. In CVE-2016-9962 the joining
//! process could be ptraced by the container's processes while it still
//! held descriptors of the host's; in CVE-2019-5736 a container process
//! opened the joining process's /proc/PID/exe, which was runc's own binary
//! on the host, and overwrote it. Both go through ptrace's access check
//! (ptrace(2), "Ptrace access mode checking"), which the joining process
//! fails for everyone until its execve(2), because it is not dumpable.
//! A command that is a script starting `#!/proc/self/exe` still makes
//! execve(2) run the lab's binary again, inside and dumpable: the file on
//! the host stays safe because the container's root is an unprivileged
//! uid there, which may not write it (user namespaces, ch05). runc, often
//! run without one, came to execute itself from a sealed copy in memory.
//!
//! Not here: refusing a paused container, which is the caller's job, since
//! only it knows the container's state. Docker says "container X is
//! paused, unpause the container before exec"; a process joining a frozen
//! cgroup would freeze on the spot.

use crate::error::LabError;
use crate::hostinfo::{self, MountInfo};
use crate::narrator::{Narrator, Step};
use crate::runtime::caps;
use crate::runtime::cgroups;
use crate::runtime::command::{self, Command};
use crate::runtime::fork::{self, exec_or_report, fork_forwarding};
use crate::runtime::hardening::Hardening;
use crate::runtime::state::ProcessRef;
use crate::runtime::stdio::{self, ContainerStdio};
use crate::runtime::sync::{Report, ReportReader, cloexec_pipe, report_and_exit};
use crate::runtime::terminal::{self, ContainerTerminal};
use crate::runtime::{fds, namespaces, userns};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::stat::{Mode, fstat, stat};
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid};
use std::ffi::OsString;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

/// What to run in the container, as `exec`'s flags say it.
#[derive(Debug)]
pub struct ExecRequest<'a> {
    /// COMMAND [ARG]...: found in the container's root, on its PATH.
    pub words: &'a [OsString],
    /// `-e KEY=VALUE` or `-e KEY`, as `JailArgs::env`: the container's own
    /// settings (from its state) first, then exec's, which win. The rest
    /// of the environment is `command::clean_environment`'s, with the
    /// hostname of the container's UTS namespace.
    pub env: &'a [String],
    /// `-w DIR`: where the command starts, inside; `/` without it.
    pub workdir: Option<&'a Path>,
    /// `-t`: a pseudo-terminal of its own, even when the caller has none.
    pub tty: bool,
    /// `-i`: the command reads the caller's stdin; without it, /dev/null.
    pub interactive: bool,
}

/// The namespaces `exec` joins, in the order it joins them: the user
/// namespace first, since it owns the others and joining it gives the
/// capabilities to join them (setns(2)); the mount namespace last, since
/// after it every path is the container's.
const KINDS: [(&str, CloneFlags, &str, &str); 8] = [
    (
        "user",
        CloneFlags::CLONE_NEWUSER,
        "CLONE_NEWUSER",
        "its ids, and capabilities over the namespaces it owns: the others can be joined now",
    ),
    (
        "ipc",
        CloneFlags::CLONE_NEWIPC,
        "CLONE_NEWIPC",
        "its SysV and POSIX IPC objects",
    ),
    (
        "uts",
        CloneFlags::CLONE_NEWUTS,
        "CLONE_NEWUTS",
        "its hostname, which comes with it: nothing to set",
    ),
    (
        "net",
        CloneFlags::CLONE_NEWNET,
        "CLONE_NEWNET",
        "its network interfaces, addresses and routes",
    ),
    (
        "cgroup",
        CloneFlags::CLONE_NEWCGROUP,
        "CLONE_NEWCGROUP",
        "its view of the cgroup tree",
    ),
    (
        "time",
        CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
        "CLONE_NEWTIME",
        "its clocks' offsets",
    ),
    (
        "pid",
        CloneFlags::CLONE_NEWPID,
        "CLONE_NEWPID",
        "its process tree, for this process's children: a fork follows",
    ),
    (
        "mnt",
        CloneFlags::CLONE_NEWNS,
        "CLONE_NEWNS",
        "its mounts; / and the working directory become its root (last: from here on every path is the container's)",
    ),
];

const READ: (OFlag, &str) = (OFlag::O_RDONLY, "O_RDONLY");

/// One namespace of the container's that is not the runtime's own.
struct Namespace {
    kind: &'static str,
    flag: CloneFlags,
    flag_name: &'static str,
    why: &'static str,
    file: OwnedFd,
}

/// What the runtime learns about the container from outside, before it
/// forks: everything the child will join.
struct Target {
    pid: Pid,
    /// In the order of `KINDS`.
    namespaces: Vec<Namespace>,
    /// The cgroup directories to write the child into.
    cgroups: Vec<PathBuf>,
    /// The bounding set of the container's first process (`CapBnd`).
    bounding_set: u64,
    /// The container's root, to check where setns(2) into its mount
    /// namespace lands.
    root: OwnedFd,
}

// ANCHOR: exec_in
/// Join the container whose first process (PID 1 in its PID namespace)
/// has host pid `pid`, run the command there and wait for it. Returns the
/// exit code, Docker's way: the command's own, or 128+N if signal N killed
/// it; a command not found (127) or not executable (126) is an error with
/// that exit code, as in a run.
///
/// `process` is the pid and start time the container's state recorded: a
/// pid whose start time differs is another process and is refused. The
/// caller refuses a paused container (see the module's comment).
pub fn exec_in(
    narrator: &Narrator,
    process: ProcessRef,
    request: &ExecRequest,
    hardening: Option<&Hardening>,
) -> Result<i32, LabError> {
    let target = Target::open(narrator, process)?;
    // With -t a pty of its own; without, pipes the runtime copies from
    // (see `stdio`): never the caller's own files.
    let terminal = match request.tty {
        true => Some(terminal::allocate_in_place_of(
            narrator,
            terminal_fds(request, is_terminal)?,
        )?),
        false => None,
    };
    let stdio = match request.tty {
        true => None,
        false => Some(ContainerStdio::new(request.interactive)?),
    };
    // -t without -i: the host's /dev/null, not the container's: whatever
    // the container put at its /dev/null (a FIFO that blocks on open)
    // stays unopened.
    let null = match request.tty && !request.interactive {
        false => None,
        true => Some(open(
            narrator,
            "/dev/null",
            READ,
            "the command's stdin without -i",
        )?),
    };
    // As in process::spawn: the child's errors come up this pipe; the
    // command's execve closes it.
    let (report_read, report_write) = cloexec_pipe()?;
    let step = Step {
        syscall: "fork",
        args: "",
        why: "a process to join the container; the runtime stays outside and waits for it",
        man: "fork(2)",
    };
    match fork_forwarding(narrator, step)? {
        ForkResult::Parent { child } => {
            drop(report_write);
            // The child holds what it will join; the runtime needs none of it.
            drop(target);
            drop(null);
            let mut reports = ReportReader {
                pipe: report_read,
                buffer: Vec::new(),
            };
            // This child never asks the runtime for anything (`Asks`).
            if let Report::Failed(error) = reports.next() {
                let _ = waitpid(child, None);
                return Err(error);
            }
            if let Some(terminal) = terminal {
                terminal.relay(narrator, child)?;
            }
            if let Some(stdio) = stdio {
                stdio.relay(child, request.interactive, stdio::show);
            }
            fork::wait(narrator, fork::Child { pid: child })
        }
        ForkResult::Child => {
            drop(report_read);
            narrator.act_as("exec");
            fork::die_with_parent();
            match join(
                narrator,
                &target,
                request,
                terminal.as_ref(),
                stdio.as_ref(),
                null,
                hardening,
            ) {
                Ok(command) => exec_or_report(narrator, &command, report_write),
                Err(error) => report_and_exit(report_write, &error),
            }
        }
    }
}

/// In the child: go where the container is, step by step, and fork into
/// its PID namespace; only the grandchild returns, ready to execute the
/// command.
fn join(
    narrator: &Narrator,
    target: &Target,
    request: &ExecRequest,
    terminal: Option<&ContainerTerminal>,
    stdio: Option<&ContainerStdio>,
    null: Option<OwnedFd>,
    hardening: Option<&Hardening>,
) -> Result<Command, LabError> {
    fork::become_undumpable(narrator)?;
    // Its cgroups first, with the caller's host ids (root's): once root of
    // the user namespace, an unprivileged uid outside, this process may no
    // longer write to the host's cgroup trees.
    let host_root = nix::unistd::geteuid().is_root();
    for dir in &target.cgroups {
        join_cgroup(narrator, dir, host_root)?;
    }
    for namespace in &target.namespaces {
        let args = format!(
            "\"/proc/{}/ns/{}\", {}",
            target.pid, namespace.kind, namespace.flag_name
        );
        narrator.run(
            Step {
                syscall: "setns",
                args: &args,
                why: namespace.why,
                man: "setns(2)",
            },
            || nix::sched::setns(&namespace.file, namespace.flag),
        )?;
        if namespace.kind == "user" {
            // Root inside, as the container's own processes are.
            userns::become_root(narrator)?;
        }
    }
    check_root(narrator, target)?;
    let workdir = request.workdir.unwrap_or(Path::new("/"));
    let args = format!("{:?}", workdir.display().to_string());
    narrator.run(
        Step {
            syscall: "chdir",
            args: &args,
            why: "where the command starts inside the container: -w DIR, or its /",
            man: "chdir(2)",
        },
        || nix::unistd::chdir(workdir),
    )?;
    if target.joins("pid") {
        let why = "the child is in the container's PID namespace, with a pid of its own there";
        namespaces::fork_into_pid_namespace(narrator, why, "command")?;
    }
    // Without a terminal of its own, the caller's stays out of reach: in a
    // session of its own it is nobody's controlling terminal, and TIOCSTI
    // on another terminal takes CAP_SYS_ADMIN in the host's user namespace
    // (ioctl_tty(2)), which root in a user namespace never has.
    terminal::enter_new_session(narrator, terminal)?;
    if let Some(stdio) = stdio {
        stdio.attach(narrator)?;
    }
    if let Some(null) = null {
        narrator.run(
            Step {
                syscall: "dup2",
                args: "/dev/null, 0",
                why: "without -i the command reads nothing, not the caller's input",
                man: "dup2(2)",
            },
            || nix::unistd::dup2_stdin(&null),
        )?;
    }
    // From ch09 the container's protections, last, cut the bounding set
    // with the rest; before, the bounding set is all there is to match.
    if hardening.is_none() {
        match_bounding_set(narrator, target.bounding_set)?;
    }
    let hostname = nix::unistd::gethostname()
        .map_err(|errno| LabError::StepFailed {
            syscall: "gethostname",
            target: "the container's UTS namespace".into(),
            errno,
        })?
        .to_string_lossy()
        .into_owned();
    let environment = command::clean_environment(&hostname, request.env)?;
    // The root is the container's now: "/" is its root, PATH its PATH.
    let command = command::resolve_with_environment(Path::new("/"), request.words, environment)?;
    fds::close_inherited(narrator)?;
    // From ch09: the container's capabilities, no_new_privs and filter,
    // last (the command's path was found first, with calls a filter might
    // refuse).
    if let Some(hardening) = hardening {
        hardening.lock_down(narrator, None)?;
    }
    Ok(command)
}
// ANCHOR_END: exec_in

impl Target {
    /// Open everything `exec` joins, from outside, while a pidfd holds on
    /// to the container's first process, and check at the end that it is
    /// still alive: then every /proc/PID file read was its own, not that
    /// of a newer process given the same pid.
    fn open(narrator: &Narrator, process: ProcessRef) -> Result<Target, LabError> {
        let pid = Pid::from_raw(process.pid);
        let pidfd = narrator.run(
            Step {
                syscall: "pidfd_open",
                args: &format!("{pid}, 0"),
                why: "a handle on the container's first process; unlike its pid, it never comes to name another",
                man: "pidfd_open(2)",
            },
            || {
                let pidfd = fork::pidfd_open(process.pid)?;
                // The pid is the container's only if its start time is the
                // one recorded: checked after the pidfd holds on, so the
                // process checked is the one the pidfd names.
                match process.is_alive() {
                    true => Ok(pidfd),
                    false => Err(Errno::ESRCH),
                }
            },
        )?;
        let mut namespaces = Vec::new();
        for (kind, flag, flag_name, why) in KINDS {
            let theirs = format!("/proc/{pid}/ns/{kind}");
            let ours = format!("/proc/self/ns/{kind}");
            // A kind this kernel does not have (time before 5.6).
            let Ok(own) = stat(ours.as_str()) else {
                continue;
            };
            let other = stat(theirs.as_str()).map_err(|errno| LabError::StepFailed {
                syscall: "stat",
                target: theirs.clone(),
                errno,
            })?;
            // One namespace, one inode of nsfs (namespaces(7)).
            if (other.st_dev, other.st_ino) == (own.st_dev, own.st_ino) {
                narrator.note(&format!(
                    "its {kind} namespace is the runtime's own: nothing to join"
                ));
                continue;
            }
            let purpose = format!("the container's {kind} namespace, to join with setns(2)");
            let file = open(narrator, &theirs, READ, &purpose)?;
            namespaces.push(Namespace {
                kind,
                flag,
                flag_name,
                why,
                file,
            });
        }
        // Joining nothing would run the command on the host.
        if namespaces.is_empty() {
            return Err(LabError::Refused {
                message: format!(
                    "process {pid} shares every namespace with the runtime: it is no container's"
                ),
                hint: "the container has exited and its pid names another process now".into(),
            });
        }
        let cgroups = cgroup_dirs_to_join(
            &read(&format!("/proc/{pid}/cgroup"))?,
            &read("/proc/self/cgroup")?,
            &hostinfo::parse_mountinfo(&read("/proc/self/mountinfo")?),
        )?;
        let status = format!("/proc/{pid}/status");
        let bounding_set =
            caps::bounding_from_status(&read(&status)?).ok_or_else(|| LabError::StepFailed {
                syscall: "read",
                target: format!("{status}: CapBnd"),
                errno: Errno::EINVAL,
            })?;
        let why = "its root, to check that setns(2) into its mount namespace lands there";
        let root = open(
            narrator,
            &format!("/proc/{pid}/root"),
            (OFlag::O_PATH | OFlag::O_DIRECTORY, "O_PATH|O_DIRECTORY"),
            why,
        )?;
        narrator.run(
            Step {
                syscall: "pidfd_send_signal",
                args: "pidfd, 0, NULL, 0",
                why: "still alive: what was just read in /proc is the container's, not a newer process's with the same pid",
                man: "pidfd_send_signal(2)",
            },
            || {
                // SAFETY: signal 0 only checks; no siginfo, no flags.
                let result = unsafe {
                    libc::syscall(
                        libc::SYS_pidfd_send_signal,
                        pidfd.as_raw_fd(),
                        0,
                        std::ptr::null::<libc::siginfo_t>(),
                        0,
                    )
                };
                Errno::result(result).map(drop)
            },
        )?;
        Ok(Target {
            pid,
            namespaces,
            cgroups,
            bounding_set,
            root,
        })
    }

    /// Whether the container's `kind` namespace is another than the runtime's.
    fn joins(&self, kind: &str) -> bool {
        self.namespaces
            .iter()
            .any(|namespace| namespace.kind == kind)
    }
}

/// open(2) a file of the host's, close-on-exec, narrated (`flags` as C
/// spells them in `names`).
fn open(
    narrator: &Narrator,
    path: &str,
    (flags, names): (OFlag, &str),
    why: &str,
) -> Result<OwnedFd, LabError> {
    let args = format!("{path:?}, {names}|O_CLOEXEC");
    narrator.run(
        Step {
            syscall: "open",
            args: &args,
            why,
            man: "open(2)",
        },
        || nix::fcntl::open(path, flags | OFlag::O_CLOEXEC, Mode::empty()),
    )
}

fn read(path: &str) -> Result<String, LabError> {
    std::fs::read_to_string(path).map_err(|error| LabError::io("read", path, error))
}

/// Write this process into one of the container's cgroups. Without root
/// on the host, a cgroup outside the user's own delegated tree cannot be
/// joined (cgroup.procs of the common ancestor is root's); a rootless
/// container has no budget of its own (ch06 refuses one), so exec goes on
/// in the caller's cgroup, as podman's rootless exec does without a
/// delegated cgroup.
fn join_cgroup(narrator: &Narrator, dir: &Path, host_root: bool) -> Result<(), LabError> {
    let why = "the container's cgroup: this process and all it starts count against its budget";
    let own = std::process::id().to_string();
    match cgroups::write(narrator, &dir.join("cgroup.procs"), &own, why) {
        Err(LabError::StepFailed {
            errno: Errno::EACCES | Errno::EPERM,
            ..
        }) if !host_root => {
            narrator.note(&format!(
                "{} is not the user's to join: exec stays in the caller's cgroup",
                dir.display()
            ));
            Ok(())
        }
        other => other,
    }
}

/// The cgroup directories a process must write itself into to be where
/// the container is: for each hierarchy of `theirs` (/proc/PID/cgroup)
/// on which `ours` (/proc/self/cgroup) has another path, that path under
/// the hierarchy's mount in `mounts`. A line `0::/path` is cgroup v2 (the
/// cgroup2 mount, /sys/fs/cgroup/unified on a hybrid host); `N:a,b:/path`
/// and `N:name=systemd:/path` are cgroup v1 (the cgroup mount whose
/// options name them all). The path is relative to the root of the
/// mount's hierarchy as the reader sees it (cgroups(7), "/proc/[pid]/cgroup"),
/// and a mount may show only a subtree of it (its mountinfo root).
pub fn cgroup_dirs_to_join(
    theirs: &str,
    ours: &str,
    mounts: &[MountInfo],
) -> Result<Vec<PathBuf>, LabError> {
    let ours = cgroups::own_cgroups(ours);
    let mut dirs = Vec::new();
    for (controllers, path) in cgroups::own_cgroups(theirs) {
        if ours.contains(&(controllers.clone(), path.clone())) {
            continue;
        }
        let v2 = controllers.is_empty();
        let hierarchy = match v2 {
            true => "cgroup2".to_string(),
            false => controllers.join(","),
        };
        let mount = mounts.iter().find(|mount| match v2 {
            true => mount.fs_type == "cgroup2",
            false => {
                mount.fs_type == "cgroup"
                    && controllers.iter().all(|c| mount.super_options.contains(c))
            }
        });
        let refused = |why: String| LabError::Refused {
            message: format!("cannot join the container's {hierarchy} cgroup {path}: {why}"),
            hint: "run `lab doctor` to see this machine's cgroup mounts".into(),
        };
        let Some(mount) = mount else {
            return Err(refused("no mount of that hierarchy here".into()));
        };
        let inside = Path::new(&path).strip_prefix(&mount.root).map_err(|_| {
            refused(format!(
                "{} shows only {} of that hierarchy",
                mount.mount_point.display(),
                mount.root.display()
            ))
        })?;
        dirs.push(match inside.as_os_str().is_empty() {
            true => mount.mount_point.clone(),
            false => mount.mount_point.join(inside),
        });
    }
    Ok(dirs)
}

/// After setns(2) into the container's mount namespace, / should be the
/// root its first process sees: the namespace's root with the container's
/// pivot_root(2) on it. A first process that chroot(2)ed further would
/// leave exec at the wrong root, so that is refused.
fn check_root(narrator: &Narrator, target: &Target) -> Result<(), LabError> {
    let ours = narrator.run(
        Step {
            syscall: "stat",
            args: "\"/\"",
            why: "the root setns(2) gave: it must be the container's (/proc/PID/root)",
            man: "stat(2)",
        },
        || stat("/"),
    )?;
    let theirs = fstat(&target.root).map_err(|errno| LabError::StepFailed {
        syscall: "fstat",
        target: format!("/proc/{}/root", target.pid),
        errno,
    })?;
    if (ours.st_dev, ours.st_ino) == (theirs.st_dev, theirs.st_ino) {
        return Ok(());
    }
    Err(LabError::Refused {
        message: format!(
            "/ in the mount namespace of process {} is not its root",
            target.pid
        ),
        hint: "that process changed its root after pivot_root(2) (a chroot): exec cannot follow it there".into(),
    })
}

/// Drop from the bounding set every capability the container's first
/// process lacks in its own, so that the command can never hold more than
/// the container's own processes (ch06 drops CAP_SYS_CHROOT and
/// CAP_DAC_READ_SEARCH; later chapters drop more).
fn match_bounding_set(narrator: &Narrator, theirs: u64) -> Result<(), LabError> {
    let why = "the container's own processes do not have it (CapBnd of its first process)";
    for number in 0..64u32 {
        // SAFETY: PR_CAPBSET_READ takes a capability number; past the
        // last one the kernel knows, it fails with EINVAL.
        let ours = unsafe { libc::prctl(libc::PR_CAPBSET_READ, number as libc::c_ulong, 0, 0, 0) };
        if ours < 0 {
            break;
        }
        if ours == 1 && theirs & (1 << number) == 0 {
            caps::drop_from_bounding_set(narrator, caps::numbered(number), why)?;
        }
    }
    Ok(())
}

/// Which of fds 0-2 get a pseudo-terminal of the command's own in their
/// place, from the runtime's /dev/ptmx (as `run` does; a pty of the
/// container's own devpts would take the command's help, as runc's
/// console socket does).
///
/// - `-t`: 1 and 2, and 0 with `-i`, as Docker's `exec -t`; without `-i`
///   its stdin is /dev/null rather than a terminal nobody types into. With
///   `-i` the caller's stdin must be a terminal: "the input device is not
///   a TTY", as Docker says.
fn terminal_fds(
    request: &ExecRequest,
    is_terminal: impl Fn(RawFd) -> bool,
) -> Result<Vec<RawFd>, LabError> {
    let wanted: Vec<RawFd> = match request.interactive {
        true => vec![0, 1, 2],
        false => vec![1, 2],
    };
    if request.interactive && !is_terminal(0) {
        return Err(LabError::Refused {
            message: "the input device is not a TTY".into(),
            hint: "leave out -t, or run it from a terminal".into(),
        });
    }
    Ok(wanted)
}

fn is_terminal(fd: RawFd) -> bool {
    // SAFETY: borrowed for isatty only; fds 0-2 stay open.
    nix::unistd::isatty(unsafe { BorrowedFd::borrow_raw(fd) }).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mounts(lines: &[&str]) -> Vec<MountInfo> {
        hostinfo::parse_mountinfo(&lines.join("\n"))
    }

    /// This machine's layout: v1 controllers, a named systemd tree, and a
    /// controller-less cgroup2 at /sys/fs/cgroup/unified.
    fn hybrid() -> Vec<MountInfo> {
        mounts(&[
            "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755",
            "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct",
            "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory",
            "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids",
            "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd",
            "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate",
        ])
    }

    #[test]
    fn hybrid_joins_each_tree_where_the_container_differs() {
        let ours = "5:pids:/\n4:memory:/api/x\n2:cpu,cpuacct:/\n1:name=systemd:/user.slice\n0::/user.slice\n";
        let theirs = "5:pids:/container-lab-9\n4:memory:/api/x/container-lab-9\n2:cpu,cpuacct:/\n1:name=systemd:/user.slice\n0::/other\n";
        let dirs = cgroup_dirs_to_join(theirs, ours, &hybrid()).unwrap();
        assert_eq!(
            dirs,
            [
                "/sys/fs/cgroup/pids/container-lab-9",
                "/sys/fs/cgroup/memory/api/x/container-lab-9",
                "/sys/fs/cgroup/unified/other",
            ]
            .map(PathBuf::from)
        );
        // The named hierarchy is found by its name= option.
        let theirs = "1:name=systemd:/system.slice/x.scope\n";
        let dirs = cgroup_dirs_to_join(theirs, ours, &hybrid()).unwrap();
        assert_eq!(
            dirs,
            [PathBuf::from("/sys/fs/cgroup/systemd/system.slice/x.scope")]
        );
    }

    #[test]
    fn pure_v2_joins_one_directory() {
        let v2 = mounts(&[
            "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot",
        ]);
        let ours = "0::/user.slice/user-0.slice/session-1.scope\n";
        let theirs = "0::/user.slice/user-0.slice/session-1.scope/container-lab-42\n";
        assert_eq!(
            cgroup_dirs_to_join(theirs, ours, &v2).unwrap(),
            [PathBuf::from(
                "/sys/fs/cgroup/user.slice/user-0.slice/session-1.scope/container-lab-42"
            )]
        );
        // Already there: nothing to write.
        assert!(cgroup_dirs_to_join(ours, ours, &v2).unwrap().is_empty());
    }

    #[test]
    fn pure_v1_ignores_the_unmounted_v2_root() {
        let v1 = mounts(&[
            "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory",
            "36 31 0:33 / /sys/fs/cgroup/net_cls,net_prio rw - cgroup cgroup rw,net_cls,net_prio",
        ]);
        let ours = "3:net_cls,net_prio:/\n2:memory:/\n0::/\n";
        let theirs = "3:net_cls,net_prio:/\n2:memory:/c1\n0::/\n";
        assert_eq!(
            cgroup_dirs_to_join(theirs, ours, &v1).unwrap(),
            [PathBuf::from("/sys/fs/cgroup/memory/c1")]
        );
    }

    #[test]
    fn a_mount_of_a_subtree_and_a_missing_mount() {
        // Inside a container of another runtime: the memory tree is
        // mounted from /docker/abc, and paths in /proc/PID/cgroup start there.
        let subtree =
            mounts(&["35 31 0:32 /docker/abc /sys/fs/cgroup/memory ro - cgroup cgroup rw,memory"]);
        let theirs = "2:memory:/docker/abc/c1\n";
        assert_eq!(
            cgroup_dirs_to_join(theirs, "2:memory:/docker/abc\n", &subtree).unwrap(),
            [PathBuf::from("/sys/fs/cgroup/memory/c1")]
        );
        let outside = cgroup_dirs_to_join("2:memory:/elsewhere\n", "", &subtree)
            .unwrap_err()
            .to_string();
        assert!(outside.contains("shows only /docker/abc"), "{outside}");
        let missing = cgroup_dirs_to_join("7:pids:/c1\n", "7:pids:/\n", &subtree)
            .unwrap_err()
            .to_string();
        assert_eq!(
            missing,
            "cannot join the container's pids cgroup /c1: no mount of that hierarchy here"
        );
    }

    fn request(tty: bool, interactive: bool) -> ExecRequest<'static> {
        ExecRequest {
            words: &[],
            env: &[],
            workdir: None,
            tty,
            interactive,
        }
    }

    #[test]
    fn who_gets_a_terminal_of_its_own() {
        let all = |_| true;
        let none = |_| false;
        // -t: the pty, whatever the caller has; stdin only with -i.
        assert_eq!(terminal_fds(&request(true, true), all).unwrap(), [0, 1, 2]);
        assert_eq!(terminal_fds(&request(true, false), none).unwrap(), [1, 2]);
        let error = terminal_fds(&request(true, true), none).unwrap_err();
        assert_eq!(error.to_string(), "the input device is not a TTY");
    }
}
