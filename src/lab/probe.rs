//! The checks `lab-probe` runs inside a container, one function each.
//!
//! Each check tries one way of reaching the host and reports ISOLATED,
//! LEAKS or N/A with one line of evidence. Every check runs in a forked
//! child of the probe, so one that changes the process (the chroot breakout,
//! unshare, a mount) cannot disturb the next. Checks are careful with the
//! host: they open tunables for writing but never write, read a disk but
//! never write it, and keep every resource burst bounded in size and time.
//! One changes something of the machine's when the kernel lets it, and runs
//! only when the tour says it watches and puts it back: sys.reboot turns
//! Ctrl-Alt-Del's instant reboot off. None asks the kernel for anything
//! that could stop, restart or load into it (see sys.reboot and
//! sys.kernel-module).
//!
//! The probe's word is not final: `lab tour` confirms each LEAKS against
//! the secret it planted, and decides the checks whose effect only the host
//! can see (hostname, signal, mount, loopback).

use crate::lab::scorecard::{Bait, Finding, Verdict};
use nix::errno::Errno;
use nix::fcntl::{OFlag, open, openat};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::{Mode, SFlag, fstat, makedev, mknod};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, getpid, getppid, getuid, pipe2, read, write};
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What the probe knows when its checks run.
pub struct Context {
    pub bait: Bait,
    /// Directory fds that were open when the probe started: inherited.
    pub inherited_dirs: Vec<RawFd>,
}

impl Context {
    /// Call first thing in `main`, before the probe opens anything itself.
    pub fn new(bait: Bait) -> Context {
        Context {
            bait,
            inherited_dirs: inherited_directory_fds(),
        }
    }
}

type CheckFn = fn(&Context) -> Finding;

/// Every check the probe knows, by id (the order of `scorecard::CHECKS`).
pub const ALL: &[(&str, CheckFn)] = &[
    ("fs.host-path", host_path),
    ("fs.chroot-breakout", chroot_breakout),
    ("fs.inherited-fd", inherited_fd),
    ("fs.open-by-handle", open_by_handle),
    ("fs.rootfs-write", write_rootfs),
    ("fs.reopen-stdio", reopen_stdio),
    ("pid.see-host", see_host_process),
    ("pid.signal-host", signal_host_process),
    ("pid.own-numbering", own_pid_numbering),
    ("pid.environment", runtime_environment),
    ("pid.ptrace-init", ptrace_init),
    ("tty.inject", type_into_terminal),
    ("uts.hostname", change_hostname),
    ("ipc.sysv-shm", sysv_shm),
    ("ipc.posix-mq", posix_mq),
    ("mnt.leak", leak_a_mount),
    ("net.interfaces", host_interfaces),
    ("net.loopback", host_loopback),
    ("net.host-services", host_service),
    ("net.spoof-source", forge_source_address),
    ("net.arp-spoof", forge_arp),
    ("net.cross-bridge", other_bridge),
    ("net.raw-socket", raw_socket),
    ("user.host-root", host_root),
    ("user.shared-range", shared_range),
    ("user.setuid-gain", setuid_gain),
    ("cap.sys-admin", cap_sys_admin),
    ("cap.dangerous", dangerous_caps),
    ("dev.block-read", read_block_device),
    ("dev.rootfs-node", open_rootfs_node),
    ("sys.proc-sys", write_proc_sys),
    ("sys.sysfs", write_sysfs),
    ("sys.kcore", read_kcore),
    ("sys.keyctl", keyctl),
    ("sys.proc-keys", list_host_keys),
    ("sys.unshare", unshare_namespaces),
    ("sys.perf-event", perf_event),
    ("sys.bpf", load_bpf),
    ("sys.userfaultfd", userfaultfd),
    ("sys.kernel-module", load_module),
    ("sys.reboot", reboot_cad_off),
    ("sys.cgroup-release-agent", cgroup_release_agent),
    ("sys.runtime-exe", runtime_exe),
    ("res.memory", exceed_memory),
    ("res.tcp-memory", queue_tcp_buffers),
    ("res.pids", exceed_pids),
    ("res.cpu", exceed_cpu),
];

/// Run the checks named in `only` (all when empty), each in its own child.
pub fn run(context: &Context, only: &[String]) -> Vec<Finding> {
    ALL.iter()
        .filter(|(id, _)| only.is_empty() || only.iter().any(|o| o == id))
        .map(|(id, check)| in_child(id, context, *check))
        .collect()
}

fn isolated(check: &str, evidence: impl Into<String>) -> Finding {
    Finding::new(check, Verdict::Isolated, evidence)
}

fn leaks(check: &str, evidence: impl Into<String>) -> Finding {
    Finding::new(check, Verdict::Leaks, evidence)
}

fn not_applicable(check: &str, evidence: impl Into<String>) -> Finding {
    Finding::new(check, Verdict::NotApplicable, evidence)
}

fn no_bait(check: &str) -> Finding {
    not_applicable(
        check,
        "no bait planted for this check (run it through `lab tour`)",
    )
}

fn errno_text(errno: Errno) -> String {
    crate::error::describe_errno(errno)
}

/// Run `check` in a forked child with a deadline; the child sends its
/// finding back as JSON through a pipe.
fn in_child(id: &str, context: &Context, check: CheckFn) -> Finding {
    const DEADLINE: Duration = Duration::from_secs(20);
    let Ok((reader, writer)) = pipe2(OFlag::O_CLOEXEC) else {
        return not_applicable(id, "the probe could not make a pipe");
    };
    // SAFETY: the probe is single-threaded; the child only runs the check
    // and leaves with _exit.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            drop(reader);
            let finding = check(context);
            let json = serde_json::to_vec(&finding).unwrap_or_default();
            let _ = write(&writer, &json);
            // SAFETY: skip the parent's atexit handlers and buffers.
            unsafe { libc::_exit(0) }
        }
        Ok(ForkResult::Parent { child }) => {
            drop(writer);
            let bytes = read_with_deadline(&reader, DEADLINE);
            let status = if bytes.is_none() {
                let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
                waitpid(child, None)
            } else {
                waitpid(child, None)
            };
            match bytes.and_then(|b| serde_json::from_slice::<Finding>(&b).ok()) {
                Some(finding) => finding,
                None => not_applicable(
                    id,
                    format!("the check did not report (timed out or died: {status:?})"),
                ),
            }
        }
        Err(errno) => not_applicable(id, format!("fork: {}", errno_text(errno))),
    }
}

/// Everything until EOF, or `None` if the deadline passes first.
fn read_with_deadline(fd: &OwnedFd, deadline: Duration) -> Option<Vec<u8>> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let end = Instant::now() + deadline;
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let left = end.checked_duration_since(Instant::now())?;
        let timeout = PollTimeout::try_from(left.as_millis().min(60_000) as i32).ok()?;
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(0) => continue,
            Err(Errno::EINTR) => continue,
            Err(_) => return None,
            Ok(_) => match read(fd, &mut buffer) {
                Ok(0) => return Some(bytes),
                Ok(n) => bytes.extend_from_slice(&buffer[..n]),
                Err(Errno::EINTR) => continue,
                Err(_) => return None,
            },
        }
    }
}

/// File descriptors 3 and up that are open directories right now.
fn inherited_directory_fds() -> Vec<RawFd> {
    (3..1024)
        .filter(|fd| {
            // SAFETY: the fd is only borrowed for fstat, never closed here.
            let borrowed = unsafe { BorrowedFd::borrow_raw(*fd) };
            nix::fcntl::fcntl(borrowed, nix::fcntl::FcntlArg::F_GETFD).is_ok()
                && fstat(borrowed).is_ok_and(|st| {
                    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR
                })
        })
        .collect()
}

/// A scratch directory for the probe's own mount points and device nodes:
/// /tmp when the container has one, else its root.
fn scratch_path(name: &str) -> PathBuf {
    let base = if Path::new("/tmp").is_dir() {
        "/tmp"
    } else {
        "/"
    };
    Path::new(base).join(format!(".lab-probe-{name}-{}", getpid()))
}

/// A mounted filesystem of `fstype` the check can look into: the
/// container's own (`/proc`, `/sys`) when it has one, else a fresh mount
/// that is undone when the guard drops. Root that can mount a fresh procfs
/// has the same reach as one that was given it.
struct KernelFs {
    path: PathBuf,
    mounted_by_us: bool,
}

impl KernelFs {
    fn get(fstype: &str, usual: &str, sign: &str) -> Result<KernelFs, Errno> {
        if Path::new(usual).join(sign).exists() {
            return Ok(KernelFs {
                path: usual.into(),
                mounted_by_us: false,
            });
        }
        KernelFs::fresh(fstype)
    }

    /// A new mount of `fstype`, as an attacker with CAP_SYS_ADMIN would
    /// make when the container's own copy is read-only.
    fn fresh(fstype: &str) -> Result<KernelFs, Errno> {
        let path = scratch_path(fstype);
        std::fs::create_dir_all(&path).map_err(|e| crate::error::errno_of(&e))?;
        if let Err(errno) = mount(
            Some(fstype),
            &path,
            Some(fstype),
            MsFlags::empty(),
            None::<&str>,
        ) {
            let _ = std::fs::remove_dir(&path);
            return Err(errno);
        }
        Ok(KernelFs {
            path,
            mounted_by_us: true,
        })
    }

    fn proc() -> Result<KernelFs, Errno> {
        KernelFs::get("proc", "/proc", "self/status")
    }
}

impl Drop for KernelFs {
    fn drop(&mut self) {
        if self.mounted_by_us {
            let _ = umount2(&self.path, MntFlags::MNT_DETACH);
            let _ = std::fs::remove_dir(&self.path);
        }
    }
}

fn read_bait_file(path: &Path) -> Result<String, Errno> {
    std::fs::read_to_string(path).map_err(|e| crate::error::errno_of(&e))
}

fn leaks_observed(check: &str, evidence: String, observed: String) -> Finding {
    let mut finding = leaks(check, evidence);
    finding.observed = Some(observed);
    finding
}

// ---- filesystem -----------------------------------------------------------

fn host_path(context: &Context) -> Finding {
    const ID: &str = "fs.host-path";
    let Some(path) = &context.bait.host_file else {
        return no_bait(ID);
    };
    match read_bait_file(path) {
        Ok(text) => leaks_observed(ID, format!("read {}", path.display()), text),
        Err(errno) => isolated(ID, format!("{}: {}", path.display(), errno_text(errno))),
    }
}

fn chroot_breakout(context: &Context) -> Finding {
    const ID: &str = "fs.chroot-breakout";
    let Some(path) = &context.bait.host_file else {
        return no_bait(ID);
    };
    if let Err((step, errno)) = crate::runtime::chroot::break_out(|_| {}) {
        return isolated(ID, format!("{step} failed: {}", errno_text(errno)));
    }
    match read_bait_file(path) {
        Ok(text) => leaks_observed(ID, format!("climbed out and read {}", path.display()), text),
        Err(errno) => isolated(
            ID,
            format!(
                "climbed to the top, but {} is not there: {}",
                path.display(),
                errno_text(errno)
            ),
        ),
    }
}

fn inherited_fd(context: &Context) -> Finding {
    const ID: &str = "fs.inherited-fd";
    let Some(marker) = &context.bait.marker_name else {
        return no_bait(ID);
    };
    for fd in &context.inherited_dirs {
        // SAFETY: borrowed for the openat only.
        let dir = unsafe { BorrowedFd::borrow_raw(*fd) };
        if let Ok(text) = read_marker(dir, marker) {
            return leaks_observed(ID, format!("fd {fd} leads to the host's {marker}"), text);
        }
    }
    // The container's PID 1 may hold what the probe was not given: its
    // descriptors are reachable to anyone in the container through /proc.
    if let Ok(proc) = KernelFs::proc() {
        let fds = proc.path.join("1/fd");
        for entry in std::fs::read_dir(&fds).into_iter().flatten().flatten() {
            let path = entry.path();
            let Ok(dir) = open(
                &path,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            ) else {
                continue;
            };
            if let Ok(text) = read_marker(dir.as_fd(), marker) {
                let name = entry.file_name().to_string_lossy().into_owned();
                return leaks_observed(
                    ID,
                    format!("PID 1's fd {name} leads to the host's {marker}"),
                    text,
                );
            }
        }
    }
    if context.inherited_dirs.is_empty() {
        isolated(
            ID,
            "no directory fd reaches the host's, neither the probe's nor PID 1's",
        )
    } else {
        isolated(
            ID,
            format!(
                "directory fds {:?} were inherited but none reach the bait",
                context.inherited_dirs
            ),
        )
    }
}

fn read_marker(dir: BorrowedFd<'_>, marker: &str) -> Result<String, Errno> {
    let file = openat(
        dir,
        marker,
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let mut text = String::new();
    let _ = std::fs::File::from(file).read_to_string(&mut text);
    Ok(text)
}

/// Shocker (2014): open_by_handle_at(2) opens a file by the handle its
/// filesystem gave it, whatever directory the caller is confined to; the
/// kernel asks only for CAP_DAC_READ_SEARCH in the initial user namespace.
/// Any fd on the same filesystem serves as the mount fd: in a container,
/// its own `/`.
fn open_by_handle(context: &Context) -> Finding {
    const ID: &str = "fs.open-by-handle";
    let Some(bait) = &context.bait.file_handle else {
        return no_bait(ID);
    };
    let Some(bytes) = unhex(&bait.bytes) else {
        return not_applicable(ID, "the bait's handle is not hex");
    };
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let root = match open(bait.mount_path.as_path(), flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(errno) => {
            let path = bait.mount_path.display();
            return not_applicable(ID, format!("open {path}: {}", errno_text(errno)));
        }
    };
    // struct file_handle: handle_bytes, handle_type, then the bytes.
    let mut buffer = vec![0u8; 8 + bytes.len()];
    buffer[..4].copy_from_slice(&(bytes.len() as u32).to_ne_bytes());
    buffer[4..8].copy_from_slice(&bait.handle_type.to_ne_bytes());
    buffer[8..].copy_from_slice(&bytes);
    // SAFETY: the buffer is a file_handle with handle_bytes bytes after
    // its header, as open_by_handle_at(2) reads it; the fd it returns is ours.
    let fd = unsafe {
        libc::open_by_handle_at(
            std::os::fd::AsRawFd::as_raw_fd(&root),
            buffer.as_mut_ptr().cast(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        let errno = Errno::last();
        return isolated(ID, format!("open_by_handle_at: {}", errno_text(errno)));
    }
    // SAFETY: open_by_handle_at just returned this descriptor.
    let mut file =
        std::fs::File::from(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) });
    let mut text = String::new();
    match file.read_to_string(&mut text) {
        Ok(_) => leaks_observed(
            ID,
            "opened a file outside the root by its handle and read it".into(),
            text,
        ),
        Err(error) => isolated(ID, format!("opened by handle, but read failed: {error}")),
    }
}

/// Remount the container's `/` with no per-mount flags (read-write,
/// devices allowed), as root holding CAP_SYS_ADMIN over an unlocked mount
/// can: what the fs.rootfs-write and dev.rootfs-node checks try once the
/// flags have refused them.
fn remount_root_without_flags() -> nix::Result<()> {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REMOUNT | MsFlags::MS_BIND,
        None::<&str>,
    )
}

/// The rootfs is shared: what one container writes there, the next one
/// (and any host user who can reach the directory) finds. Create a file at
/// the tour's path, remounting / read-write first if it is read-only, as
/// root holding CAP_SYS_ADMIN over an unlocked mount can.
fn write_rootfs(context: &Context) -> Finding {
    const ID: &str = "fs.rootfs-write";
    let Some(path) = &context.bait.rootfs_write else {
        return no_bait(ID);
    };
    let create = || {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .and_then(|mut file| std::io::Write::write_all(&mut file, b"lab-probe\n"))
    };
    let first = match create() {
        Ok(()) => return leaks(ID, format!("created {}", path.display())),
        Err(error) => error,
    };
    let remounted = remount_root_without_flags();
    match (remounted, create()) {
        (Ok(()), Ok(())) => leaks(
            ID,
            format!("remounted / read-write and created {}", path.display()),
        ),
        (Ok(()), Err(error)) => isolated(
            ID,
            format!("{}: {first}, also after a remount: {error}", path.display()),
        ),
        (Err(errno), _) => isolated(
            ID,
            format!(
                "{}: {first}; a remount of / read-write: {}",
                path.display(),
                errno_text(errno)
            ),
        ),
    }
}

/// A descriptor the container was given for writing only (its stderr, a
/// host log opened for appending) is also a path: /proc/self/fd/N reopens
/// the file itself, with a mode of the opener's choosing (proc(5)), so the
/// container reads what the host wrote there before and after it.
fn reopen_stdio(_: &Context) -> Finding {
    const ID: &str = "fs.reopen-stdio";
    let proc = match KernelFs::proc() {
        Ok(proc) => proc,
        Err(errno) => {
            return isolated(
                ID,
                format!("no /proc to reopen through: {}", errno_text(errno)),
            );
        }
    };
    let mut tried = Vec::new();
    for fd in 0..3 {
        // SAFETY: borrowed for fstat only.
        let Ok(stat) = fstat(unsafe { BorrowedFd::borrow_raw(fd) }) else {
            continue;
        };
        if SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
            continue;
        }
        let path = proc.path.join(format!("self/fd/{fd}"));
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let first = text.lines().next().unwrap_or_default().to_string();
                return leaks_observed(
                    ID,
                    format!(
                        "reopened fd {fd}, a file, for reading through {}",
                        path.display()
                    ),
                    first,
                );
            }
            Err(error) => tried.push(format!("fd {fd}: {error}")),
        }
    }
    if tried.is_empty() {
        isolated(ID, "none of fds 0-2 is a file")
    } else {
        isolated(ID, tried.join("; "))
    }
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

// ---- processes ------------------------------------------------------------

fn see_host_process(context: &Context) -> Finding {
    const ID: &str = "pid.see-host";
    let Some(pid) = context.bait.host_pid else {
        return no_bait(ID);
    };
    match nix::sys::signal::kill(Pid::from_raw(pid), None) {
        Ok(()) | Err(Errno::EPERM) => leaks(ID, format!("kill({pid}, 0) finds the host's process")),
        Err(errno) => isolated(ID, format!("kill({pid}, 0): {}", errno_text(errno))),
    }
}

fn signal_host_process(context: &Context) -> Finding {
    const ID: &str = "pid.signal-host";
    let Some(pid) = context.bait.host_pid else {
        return no_bait(ID);
    };
    match nix::sys::signal::kill(Pid::from_raw(pid), nix::sys::signal::Signal::SIGUSR1) {
        Ok(()) => leaks(ID, format!("sent SIGUSR1 to pid {pid}")),
        Err(errno) => isolated(ID, format!("kill({pid}, SIGUSR1): {}", errno_text(errno))),
    }
}

fn own_pid_numbering(_: &Context) -> Finding {
    const ID: &str = "pid.own-numbering";
    // The check runs in a child of the probe, so the probe is the parent.
    let probe = getppid();
    let probe_parent = parent_of(probe);
    match (probe.as_raw(), probe_parent) {
        (1, _) => isolated(ID, "the probe is PID 1"),
        (_, Some(0 | 1)) => isolated(
            ID,
            format!("the probe is PID {probe}, its parent is the container's init"),
        ),
        (_, Some(parent)) => leaks(
            ID,
            format!("the probe is PID {probe}, its parent PID {parent}: the host's numbering"),
        ),
        (_, None) => leaks(
            ID,
            format!("the probe is PID {probe}: the host's numbering"),
        ),
    }
}

/// The runtime's environment carries the host user's variables (tokens,
/// proxies, paths) unless the runtime builds the container's own. Its own
/// environment, and every process's /proc/PID/environ it can read (a PID 1
/// that stayed behind from the runtime keeps the runtime's).
fn runtime_environment(context: &Context) -> Finding {
    const ID: &str = "pid.environment";
    let Some(name) = &context.bait.env_name else {
        return no_bait(ID);
    };
    let count = std::env::vars_os().count();
    if let Ok(value) = std::env::var(name) {
        return leaks_observed(
            ID,
            format!("${name} reached the container ({count} variables in all)"),
            value,
        );
    }
    let wanted = format!("{name}=");
    if let Ok(proc) = KernelFs::proc() {
        let pids = std::fs::read_dir(&proc.path)
            .into_iter()
            .flatten()
            .flatten();
        for entry in pids.filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok()) {
            let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
                continue;
            };
            for setting in environ.split(|b| *b == 0) {
                if let Some(value) = setting.strip_prefix(wanted.as_bytes()) {
                    let pid = entry.file_name().to_string_lossy().into_owned();
                    return leaks_observed(
                        ID,
                        format!("${name} is in /proc/{pid}/environ"),
                        String::from_utf8_lossy(value).into_owned(),
                    );
                }
            }
        }
    }
    isolated(
        ID,
        format!("${name} is neither here nor in any /proc/PID/environ ({count} variables here)"),
    )
}

/// PID 1 of the probe's PID namespace is, from ch02 on, the runtime's
/// init: a fork of the host's runtime binary that never executed a program
/// (src/runtime/init.rs). Reading its memory through /proc/1/mem asks the
/// kernel the same question as ptrace(PTRACE_ATTACH) (PTRACE_MODE_ATTACH,
/// proc(5)) without stopping or touching it; who may read may also write,
/// and make PID 1 run code of the container's choosing with whatever it
/// holds. With no PID namespace of its own (ch00-ch01) the probe's PID 1 is
/// the machine's init, which must never be disturbed, so the probe asks
/// about the runtime that started it instead, a host process of root's as
/// the init is: the same question of the same kernel, about a process the
/// tour can spare.
fn ptrace_init(context: &Context) -> Finding {
    const ID: &str = "pid.ptrace-init";
    if getppid().as_raw() == 1 {
        return isolated(ID, "the probe itself is PID 1: no one above it to trace");
    }
    let proc = match KernelFs::proc() {
        Ok(proc) => proc,
        Err(errno) => return isolated(ID, format!("no /proc: {}", errno_text(errno))),
    };
    // The tour's host process in its /proc (alive, or a zombie once
    // pid.signal-host has signalled it): no PID namespace of its own.
    let shares_host_pids = context
        .bait
        .host_pid
        .is_some_and(|pid| proc.path.join(pid.to_string()).exists());
    let runtime = parent_of(getppid()).filter(|pid| *pid > 1);
    let (one, what, note) = match (shares_host_pids, runtime) {
        (true, Some(pid)) => (
            proc.path.join(pid.to_string()),
            format!("the runtime's process {pid}"),
            " (no PID namespace: PID 1 is the host's init, which the probe leaves alone)",
        ),
        _ => (proc.path.join("1"), "PID 1".to_string(), ""),
    };
    let comm = std::fs::read_to_string(one.join("comm"))
        .map(|c| c.trim().to_string())
        .unwrap_or_else(|_| "?".into());
    let exe = std::fs::read_link(one.join("exe"))
        .map(|e| e.display().to_string())
        .unwrap_or_else(|e| format!("exe: {}", errno_text(crate::error::errno_of(&e))));
    let who = format!("{what} ({comm}, {exe})");
    let mem = match open(
        &one.join("mem"),
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(errno) => {
            return isolated(ID, format!("mem of {who}: {}{note}", errno_text(errno)));
        }
    };
    // The first byte of its first mapping: its program's ELF header.
    let start = std::fs::read_to_string(one.join("maps"))
        .ok()
        .and_then(|maps| {
            let first = maps.lines().next()?.split('-').next()?.to_string();
            u64::from_str_radix(&first, 16).ok()
        });
    let Some(start) = start else {
        return leaks(ID, format!("opened the mem of {who} for reading{note}"));
    };
    let mut bytes = [0u8; 4];
    match nix::sys::uio::pread(&mem, &mut bytes, start as i64) {
        Ok(_) => leaks(
            ID,
            format!("read the memory of {who} through /proc, as ptrace can{note}"),
        ),
        Err(errno) => isolated(
            ID,
            format!(
                "opened the mem of {who}, but read: {}{note}",
                errno_text(errno)
            ),
        ),
    }
}

/// TIOCSTI pushes a byte into a terminal's input as if typed (ioctl_tty(2)).
/// Into the user's terminal, "id > /tmp/x" and a newline run on the host
/// once the container exits (CVE-2017-5226). The probe types only the
/// tour's marker, no newline, into every terminal it can reach: its fds
/// 0-2, /dev/tty, /dev/console. Only the host can tell whose terminal took
/// it: a container's own terminal is fair game.
fn type_into_terminal(context: &Context) -> Finding {
    const ID: &str = "tty.inject";
    let Some(marker) = &context.bait.tty_marker else {
        return no_bait(ID);
    };
    let mut tried = Vec::new();
    let mut typed_into = Vec::new();
    let mut candidates: Vec<(String, Result<OwnedFd, Errno>)> = (0..3)
        .filter(|fd| {
            // SAFETY: borrowed for isatty only.
            nix::unistd::isatty(unsafe { BorrowedFd::borrow_raw(*fd) }).unwrap_or(false)
        })
        .map(|fd| {
            (
                format!("fd {fd}"),
                nix::unistd::dup(unsafe { BorrowedFd::borrow_raw(fd) }),
            )
        })
        .collect();
    for path in ["/dev/tty", "/dev/console"] {
        let flags = OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
        candidates.push((path.to_string(), open(path, flags, Mode::empty())));
    }
    for (name, fd) in candidates {
        let fd = match fd {
            Ok(fd) => fd,
            Err(errno) => {
                tried.push(format!("{name}: {}", errno_text(errno)));
                continue;
            }
        };
        let typed = marker.bytes().try_for_each(|byte| {
            // SAFETY: TIOCSTI reads one byte through the pointer.
            Errno::result(unsafe {
                libc::ioctl(std::os::fd::AsRawFd::as_raw_fd(&fd), libc::TIOCSTI, &byte)
            })
            .map(drop)
        });
        match typed {
            Ok(()) => typed_into.push(name),
            Err(errno) => tried.push(format!("{name}: {}", errno_text(errno))),
        }
    }
    if typed_into.is_empty() {
        isolated(ID, format!("TIOCSTI refused: {}", tried.join("; ")))
    } else {
        leaks(
            ID,
            format!("typed the marker into {} (TIOCSTI)", typed_into.join(", ")),
        )
    }
}

/// The parent of `pid`, from /proc when there is one.
fn parent_of(pid: Pid) -> Option<i32> {
    let proc = KernelFs::proc().ok()?;
    let status = std::fs::read_to_string(proc.path.join(format!("{pid}/status"))).ok()?;
    let line = status.lines().find(|l| l.starts_with("PPid:"))?;
    line["PPid:".len()..].trim().parse().ok()
}

// ---- hostname, ipc, mounts ------------------------------------------------

fn change_hostname(context: &Context) -> Finding {
    const ID: &str = "uts.hostname";
    let Some(tag) = &context.bait.hostname_tag else {
        return no_bait(ID);
    };
    match nix::unistd::sethostname(tag) {
        Ok(()) => leaks(ID, format!("set the hostname to {tag}")),
        Err(errno) => isolated(ID, format!("sethostname: {}", errno_text(errno))),
    }
}

fn sysv_shm(context: &Context) -> Finding {
    const ID: &str = "ipc.sysv-shm";
    let Some(key) = context.bait.shm_key else {
        return no_bait(ID);
    };
    // SAFETY: plain syscalls; the segment is attached read-only and read
    // within its size.
    unsafe {
        let id = libc::shmget(key, 0, 0);
        if id < 0 {
            return isolated(
                ID,
                format!("shmget(key {key:#x}): {}", errno_text(Errno::last())),
            );
        }
        let address = libc::shmat(id, std::ptr::null(), libc::SHM_RDONLY);
        if address as isize == -1 {
            return isolated(ID, format!("shmat: {}", errno_text(Errno::last())));
        }
        let bytes = std::slice::from_raw_parts(address as *const u8, 64);
        let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
        let text = String::from_utf8_lossy(&bytes[..end]).into_owned();
        libc::shmdt(address);
        leaks_observed(ID, format!("attached host segment key {key:#x}"), text)
    }
}

fn posix_mq(context: &Context) -> Finding {
    const ID: &str = "ipc.posix-mq";
    let Some(name) = &context.bait.mq_name else {
        return no_bait(ID);
    };
    let flags = nix::mqueue::MQ_OFlag::O_RDONLY | nix::mqueue::MQ_OFlag::O_NONBLOCK;
    match nix::mqueue::mq_open(name.as_str(), flags, Mode::empty(), None) {
        Ok(queue) => {
            let mut buffer = vec![0u8; 8192];
            let mut priority = 0;
            let text = match nix::mqueue::mq_receive(&queue, &mut buffer, &mut priority) {
                Ok(n) => String::from_utf8_lossy(&buffer[..n]).into_owned(),
                Err(_) => String::new(),
            };
            leaks_observed(ID, format!("opened the host's queue {name}"), text)
        }
        Err(errno) => isolated(ID, format!("mq_open({name}): {}", errno_text(errno))),
    }
}

fn leak_a_mount(context: &Context) -> Finding {
    const ID: &str = "mnt.leak";
    let Some(tag) = &context.bait.mount_tag else {
        return no_bait(ID);
    };
    let target = scratch_path("mnt");
    if let Err(error) = std::fs::create_dir_all(&target) {
        return isolated(ID, format!("mkdir {}: {error}", target.display()));
    }
    // Left mounted on purpose: the host looks for it, then removes it.
    match mount(
        Some(tag.as_str()),
        &target,
        Some("tmpfs"),
        MsFlags::empty(),
        Some("size=16k"),
    ) {
        Ok(()) => leaks(
            ID,
            format!("mounted a tmpfs named {tag} on {}", target.display()),
        ),
        Err(errno) => {
            let _ = std::fs::remove_dir(&target);
            isolated(ID, format!("mount tmpfs: {}", errno_text(errno)))
        }
    }
}

// ---- network --------------------------------------------------------------

fn host_interfaces(context: &Context) -> Finding {
    const ID: &str = "net.interfaces";
    let Some(bait) = &context.bait.host_interface else {
        return no_bait(ID);
    };
    let names: Vec<String> = match nix::net::if_::if_nameindex() {
        Ok(list) => list
            .iter()
            .map(|i| i.name().to_string_lossy().into_owned())
            .collect(),
        Err(errno) => return isolated(ID, format!("if_nameindex: {}", errno_text(errno))),
    };
    if names.iter().any(|name| name == bait) {
        leaks(
            ID,
            format!("sees the host's {bait} among {}", names.join(" ")),
        )
    } else {
        isolated(ID, format!("sees only: {}", names.join(" ")))
    }
}

fn host_loopback(context: &Context) -> Finding {
    const ID: &str = "net.loopback";
    let Some(port) = context.bait.loopback_port else {
        return no_bait(ID);
    };
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    match std::net::TcpStream::connect_timeout(&address, Duration::from_secs(2)) {
        Ok(mut stream) => {
            use std::io::Write;
            let _ = stream.write_all(b"lab-probe\n");
            leaks(ID, format!("connected to 127.0.0.1:{port}"))
        }
        Err(error) => isolated(ID, format!("connect 127.0.0.1:{port}: {error}")),
    }
}

/// A service the host binds to every address (0.0.0.0, as most daemons do)
/// answers on each of the host's addresses, and from a bridge the host's
/// addresses are one hop away: Docker lets containers reach them too.
fn host_service(context: &Context) -> Finding {
    const ID: &str = "net.host-services";
    let Some(address) = context.bait.host_service else {
        return no_bait(ID);
    };
    match std::net::TcpStream::connect_timeout(&address, Duration::from_secs(2)) {
        Ok(_) => leaks(ID, format!("connected to {address}")),
        Err(error) => isolated(ID, format!("connect {address}: {error}")),
    }
}

/// Root with CAP_NET_RAW writes its own IP headers (raw(7)): a datagram
/// that says it comes from a neighbour reaches whoever trusts addresses,
/// and answers to it go to the neighbour. The probe sends one, with the
/// tour's marker as payload; only the host can say whether it arrived.
fn forge_source_address(context: &Context) -> Finding {
    const ID: &str = "net.spoof-source";
    let Some(datagram) = &context.bait.forged_datagram else {
        return no_bait(ID);
    };
    let sent =
        crate::lab::spoof::send_forged_udp(datagram.from, datagram.to, datagram.marker.as_bytes());
    match sent {
        Ok(()) => leaks(
            ID,
            format!(
                "sent a UDP datagram to {} from {}",
                datagram.to, datagram.from
            ),
        ),
        Err(error) => isolated(ID, error.to_string()),
    }
}

/// A gratuitous ARP reply, "VICTIM is at my MAC", broadcast on every
/// interface the probe has: a host or neighbour that believes it sends
/// the victim's traffic to the probe. Only the host can say whether its
/// neighbour table changed.
fn forge_arp(context: &Context) -> Finding {
    const ID: &str = "net.arp-spoof";
    let Some(victim) = context.bait.arp_victim else {
        return no_bait(ID);
    };
    let interfaces = crate::lab::spoof::ethernet_interfaces();
    if interfaces.is_empty() {
        return isolated(ID, "no Ethernet interface is up here");
    }
    let mut sent = Vec::new();
    let mut refused = Vec::new();
    for (name, mac) in interfaces {
        match crate::lab::spoof::broadcast_arp_claim(&name, mac, victim) {
            Ok(()) => sent.push(format!("{name} ({})", crate::lab::spoof::mac_text(mac))),
            Err(error) => refused.push(error.to_string()),
        }
    }
    if sent.is_empty() {
        isolated(ID, refused.join("; "))
    } else {
        leaks(
            ID,
            format!("claimed {victim} in ARP on {}", sent.join(", ")),
        )
    }
}

/// Containers on two lab networks are meant not to meet (as two Docker
/// networks do not): connect to a server on the other one, by its own
/// address, and read its greeting.
fn other_bridge(context: &Context) -> Finding {
    use std::io::BufRead;
    const ID: &str = "net.cross-bridge";
    let Some(address) = context.bait.other_bridge_server else {
        return no_bait(ID);
    };
    match std::net::TcpStream::connect_timeout(&address, Duration::from_secs(2)) {
        Ok(stream) => {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let mut greeting = String::new();
            let _ = std::io::BufReader::new(stream).read_line(&mut greeting);
            leaks(ID, format!("connected to {address}: {:?}", greeting.trim()))
        }
        Err(error) => isolated(ID, format!("connect {address}: {error}")),
    }
}

/// raw(7) and packet(7) sockets write whole packets, headers and all:
/// forged sources, forged ARP, anything on the wire. Probe-only, like
/// cap.dangerous: the lab's port guard (ch04) already stops the forged
/// packets on the bridge (net.spoof-source, net.arp-spoof); this row counts
/// the capability to write them, CAP_NET_RAW over the container's network
/// namespace, which Docker's default keeps and ch09 drops.
fn raw_socket(_: &Context) -> Finding {
    const ID: &str = "net.raw-socket";
    let open = |domain, protocol| {
        // SAFETY: plain socket(2); the fd returned is closed at once.
        let fd = unsafe { libc::socket(domain, libc::SOCK_RAW | libc::SOCK_CLOEXEC, protocol) };
        if fd < 0 {
            return Err(Errno::last());
        }
        // SAFETY: as above.
        unsafe { libc::close(fd) };
        Ok(())
    };
    let icmp = open(libc::AF_INET, libc::IPPROTO_ICMP);
    let packet = open(libc::AF_PACKET, i32::from((libc::ETH_P_ALL as u16).to_be()));
    let text = |result: &Result<(), Errno>| match result {
        Ok(()) => "opened".to_string(),
        Err(errno) => errno_text(*errno),
    };
    let what = format!(
        "socket(AF_INET, SOCK_RAW, IPPROTO_ICMP): {}; socket(AF_PACKET, SOCK_RAW, ETH_P_ALL): {}",
        text(&icmp),
        text(&packet)
    );
    if icmp.is_ok() || packet.is_ok() {
        leaks(ID, what)
    } else {
        isolated(ID, what)
    }
}

// ---- users and privileges ---------------------------------------------

/// Whether this process's user namespace is the host's: its uid_map is the
/// identity map the initial namespace has (user_namespaces(7)).
fn in_host_user_namespace() -> Result<bool, String> {
    let proc = KernelFs::proc().map_err(|e| format!("no /proc: {}", errno_text(e)))?;
    let map = std::fs::read_to_string(proc.path.join("self/uid_map")).map_err(|e| e.to_string())?;
    let fields: Vec<&str> = map.split_whitespace().collect();
    Ok(fields == ["0", "0", "4294967295"])
}

fn host_root(_: &Context) -> Finding {
    const ID: &str = "user.host-root";
    if !getuid().is_root() {
        return isolated(ID, format!("runs as uid {}", getuid()));
    }
    match in_host_user_namespace() {
        Ok(true) => leaks(ID, "uid 0 maps to the host's uid 0 (identity uid_map)"),
        Ok(false) => isolated(ID, "uid 0 is mapped to an unprivileged host uid"),
        Err(why) => not_applicable(ID, format!("cannot read uid_map: {why}")),
    }
}

/// Which host ids the container's ids are: the probe reports its maps and
/// the host, which can read /etc/subuid, /etc/subgid and the accounts,
/// decides whether a host user owns any of them.
fn shared_range(_: &Context) -> Finding {
    const ID: &str = "user.shared-range";
    let proc = match KernelFs::proc() {
        Ok(proc) => proc,
        Err(errno) => return not_applicable(ID, format!("no /proc: {}", errno_text(errno))),
    };
    let read = |name: &str| std::fs::read_to_string(proc.path.join("self").join(name));
    match (read("uid_map"), read("gid_map")) {
        (Ok(uids), Ok(gids)) => {
            let mut finding = isolated(ID, format!("uid_map: {}", uids.trim()));
            finding.observed = Some(format!("{uids}--\n{gids}"));
            finding
        }
        (Err(error), _) | (_, Err(error)) => {
            not_applicable(ID, format!("cannot read the id maps: {error}"))
        }
    }
}

/// The unprivileged user the setuid check drops to.
const UNPRIVILEGED: u32 = 1000;

/// A setuid-root program turns any user who may run it into root, unless
/// the mount it lives on is `nosuid` or the process has no_new_privs
/// (prctl(2)), which Docker can set and ch09 does. The host left a
/// setuid-root copy of the probe in the rootfs (owned by the container's
/// root, as the container sees it); a child drops to uid and gid 1000, runs
/// it with --report-euid, and reads back the euid it ran with.
fn setuid_gain(context: &Context) -> Finding {
    const ID: &str = "user.setuid-gain";
    let Some(helper) = &context.bait.setuid_helper else {
        return no_bait(ID);
    };
    let Ok((reader, writer)) = pipe2(OFlag::O_CLOEXEC) else {
        return not_applicable(ID, "the probe could not make a pipe");
    };
    let Ok(path) = std::ffi::CString::new(helper.as_os_str().as_encoded_bytes()) else {
        return not_applicable(ID, "the helper's path has a NUL in it");
    };
    let status = in_grandchild(|| {
        use nix::unistd::{Gid, Uid, setgroups, setresgid, setresuid};
        let say = |text: String| {
            let _ = write(&writer, text.as_bytes());
        };
        // Opened while still root: the helper runs from this descriptor,
        // so the directories on its path need not be open to the
        // unprivileged user (a checkout under a 0700 temporary directory,
        // in chapters without a root of their own).
        // SAFETY: a NUL-terminated path; the descriptor closes at exec.
        let helper_fd = unsafe { libc::open(path.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
        if helper_fd < 0 {
            say(format!("open: {}", errno_text(Errno::last())));
            return 6;
        }
        let (uid, gid) = (Uid::from_raw(UNPRIVILEGED), Gid::from_raw(UNPRIVILEGED));
        let dropped = setgroups(&[])
            .map_err(|e| ("setgroups", e))
            .and_then(|()| setresgid(gid, gid, gid).map_err(|e| ("setresgid", e)))
            .and_then(|()| setresuid(uid, uid, uid).map_err(|e| ("setresuid", e)));
        if let Err((step, errno)) = dropped {
            say(format!("drop {step}: {}", errno_text(errno)));
            return 3;
        }
        // SAFETY: the pipe's write end becomes stdout, for the helper.
        if unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&writer), 1) } < 0 {
            return 4;
        }
        let argv = [
            c"lab-probe".as_ptr(),
            c"--report-euid".as_ptr(),
            std::ptr::null(),
        ];
        let envp = [std::ptr::null::<libc::c_char>()];
        // SAFETY: execveat(2) of the descriptor itself (AT_EMPTY_PATH),
        // NUL-terminated strings and NULL-terminated arrays.
        unsafe {
            libc::syscall(
                libc::SYS_execveat,
                helper_fd,
                c"".as_ptr(),
                argv.as_ptr(),
                envp.as_ptr(),
                libc::AT_EMPTY_PATH,
            )
        };
        let errno = Errno::last();
        say(format!("exec: {}", errno_text(errno)));
        5
    });
    drop(writer);
    let said = read_with_deadline(&reader, Duration::from_secs(5))
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_string())
        .unwrap_or_default();
    let shown = helper.display();
    match (status, said.strip_prefix("euid ")) {
        (_, Some("0")) => leaks(
            ID,
            format!("uid {UNPRIVILEGED} ran {shown} (setuid root) and it ran with euid 0"),
        ),
        (_, Some(euid)) => isolated(
            ID,
            format!(
                "uid {UNPRIVILEGED} ran {shown} (setuid root), which ran with euid {euid}: the setuid bit was ignored"
            ),
        ),
        (Ok(WaitStatus::Exited(_, 3)), _) => not_applicable(
            ID,
            format!("could not become uid {UNPRIVILEGED} to try: {said}"),
        ),
        // A helper that did not run proves nothing either way.
        (Ok(WaitStatus::Exited(_, 5 | 6)), _) => {
            not_applicable(ID, format!("{shown} did not run: {said}"))
        }
        (other, _) => not_applicable(
            ID,
            format!("the helper did not say its euid ({other:?}): {said:?}"),
        ),
    }
}

/// The effective capability set, from capget(2) (no /proc needed).
fn effective_capabilities() -> u64 {
    match crate::runtime::caps::get() {
        Ok(data) => u64::from(data[0].effective) | (u64::from(data[1].effective) << 32),
        Err(_) => 0,
    }
}

const DANGEROUS: &[(u32, &str)] = &[
    (2, "CAP_DAC_READ_SEARCH"),
    (12, "CAP_NET_ADMIN"),
    (16, "CAP_SYS_MODULE"),
    (17, "CAP_SYS_RAWIO"),
    (19, "CAP_SYS_PTRACE"),
    (22, "CAP_SYS_BOOT"),
    (25, "CAP_SYS_TIME"),
    (27, "CAP_MKNOD"),
    (33, "CAP_MAC_ADMIN"),
    (39, "CAP_BPF"),
];

fn capability_finding(id: &str, held: Vec<&str>) -> Finding {
    if held.is_empty() {
        return isolated(id, "not in the effective set");
    }
    match in_host_user_namespace() {
        Ok(false) => isolated(
            id,
            format!(
                "holds {} only inside its own user namespace",
                held.join(" ")
            ),
        ),
        _ => leaks(id, format!("holds {} over the host", held.join(" "))),
    }
}

fn cap_sys_admin(_: &Context) -> Finding {
    let held = if effective_capabilities() & (1 << 21) != 0 {
        vec!["CAP_SYS_ADMIN"]
    } else {
        vec![]
    };
    capability_finding("cap.sys-admin", held)
}

fn dangerous_caps(_: &Context) -> Finding {
    let effective = effective_capabilities();
    let held = DANGEROUS
        .iter()
        .filter(|(bit, _)| effective & (1 << bit) != 0)
        .map(|(_, name)| *name)
        .collect();
    capability_finding("cap.dangerous", held)
}

fn read_block_device(context: &Context) -> Finding {
    const ID: &str = "dev.block-read";
    let Some((major, minor)) = context.bait.block_device else {
        return no_bait(ID);
    };
    // Any writable directory on a filesystem without `nodev` will do, so
    // try the usual suspects, as an attacker would.
    let mut refusals = Vec::new();
    let mut opened = None;
    for dir in ["/tmp", "/", "/dev", "/root", "/var/tmp", "/run"] {
        let node = Path::new(dir).join(format!(".lab-probe-blk-{}", getpid()));
        let made = mknod(
            &node,
            SFlag::S_IFBLK,
            Mode::from_bits_truncate(0o600),
            makedev(major, minor),
        );
        if let Err(errno) = made {
            refusals.push(format!("mknod in {dir}: {}", errno_text(errno)));
            continue;
        }
        let result = open(&node, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty());
        let _ = std::fs::remove_file(&node);
        match result {
            Ok(fd) => {
                opened = Some(fd);
                break;
            }
            Err(errno) => refusals.push(format!("open in {dir}: {}", errno_text(errno))),
        }
    }
    let Some(device) = opened else {
        return isolated(
            ID,
            format!("block {major}:{minor}: {}", refusals.join("; ")),
        );
    };
    let mut first = [0u8; 64];
    match read(&device, &mut first) {
        Ok(n) => {
            let end = first[..n].iter().position(|b| *b == 0).unwrap_or(n);
            leaks_observed(
                ID,
                format!("made a node for the host's block device {major}:{minor} and read it"),
                String::from_utf8_lossy(&first[..end]).into_owned(),
            )
        }
        Err(errno) => isolated(ID, format!("read {major}:{minor}: {}", errno_text(errno))),
    }
}

/// A device node that came with the rootfs (a hostile image ships one, or
/// an earlier container planted it): its owner on disk is the host's root,
/// so in a user namespace with an idmapped root it looks like the
/// container's root. Only `nodev` on the rootfs mount stops open(2).
fn open_rootfs_node(context: &Context) -> Finding {
    const ID: &str = "dev.rootfs-node";
    let Some(node) = &context.bait.rootfs_node else {
        return no_bait(ID);
    };
    let flags = OFlag::O_RDONLY | OFlag::O_CLOEXEC;
    let device = match open(node.as_path(), flags, Mode::empty()) {
        Ok(fd) => fd,
        // `nodev` is a flag of the mount: root that may remount the rootfs
        // without it, as CAP_SYS_ADMIN over the mount allows unless the
        // kernel locked the flag (mount_namespaces(7)), opens the node all
        // the same. So try, as an attacker would.
        Err(first) => {
            let remounted = remount_root_without_flags();
            let opened = open(node.as_path(), flags, Mode::empty());
            let path = node.display();
            match (remounted, opened) {
                (Ok(()), Ok(fd)) => fd,
                (Ok(()), Err(errno)) => {
                    let why = format!(
                        "open {path}: {}, also after a remount without nodev: {}",
                        errno_text(first),
                        errno_text(errno)
                    );
                    return isolated(ID, why);
                }
                (Err(refused), _) => {
                    let why = format!(
                        "open {path}: {}; a remount of / without nodev: {}",
                        errno_text(first),
                        errno_text(refused)
                    );
                    return isolated(ID, why);
                }
            }
        }
    };
    let mut first = [0u8; 64];
    match read(&device, &mut first) {
        Ok(n) => {
            let end = first[..n].iter().position(|b| *b == 0).unwrap_or(n);
            leaks_observed(
                ID,
                format!("opened {} and read the host's block device", node.display()),
                String::from_utf8_lossy(&first[..end]).into_owned(),
            )
        }
        Err(errno) => isolated(
            ID,
            format!("read {}: {}", node.display(), errno_text(errno)),
        ),
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Open `path` for writing and close it without writing a byte.
fn can_open_for_writing(path: &Path) -> Result<(), Errno> {
    open(path, OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::empty()).map(drop)
}

fn write_proc_sys(_: &Context) -> Finding {
    const ID: &str = "sys.proc-sys";
    writable_tunable(
        ID,
        "proc",
        "/proc",
        "self/status",
        &["sys/kernel/core_pattern"],
    )
}

/// Open a kernel tunable for writing (and write nothing): first in the
/// container's own mount of `fstype`, then, if that is read-only or
/// missing, in a fresh mount, as root with CAP_SYS_ADMIN could.
fn writable_tunable(id: &str, fstype: &str, usual: &str, sign: &str, tunables: &[&str]) -> Finding {
    let mut refusals = Vec::new();
    let attempts = [KernelFs::get(fstype, usual, sign), KernelFs::fresh(fstype)];
    for attempt in attempts {
        let fs = match attempt {
            Ok(fs) => fs,
            Err(errno) => {
                refusals.push(format!("mount {fstype}: {}", errno_text(errno)));
                continue;
            }
        };
        let Some(tunable) = tunables.iter().find(|t| fs.path.join(t).exists()) else {
            refusals.push(format!("none of {tunables:?} in {}", fs.path.display()));
            continue;
        };
        let how = if fs.mounted_by_us {
            "a fresh "
        } else {
            "the container's "
        };
        match can_open_for_writing(&fs.path.join(tunable)) {
            Ok(()) => {
                return leaks(
                    id,
                    format!("opened {tunable} in {how}{fstype} for writing (wrote nothing)"),
                );
            }
            Err(errno) => {
                refusals.push(format!("{tunable} in {how}{fstype}: {}", errno_text(errno)))
            }
        }
    }
    // Last, what root with CAP_SYS_ADMIN would try next: make the
    // container's own mount writable again, first the mount (a bind
    // remount), then the filesystem itself (a plain remount).
    let attempts = [
        (MsFlags::MS_REMOUNT | MsFlags::MS_BIND, "the mount"),
        (MsFlags::MS_REMOUNT, "the filesystem"),
    ];
    for (flags, what) in attempts {
        if let Err(errno) = mount(None::<&str>, usual, None::<&str>, flags, None::<&str>) {
            refusals.push(format!(
                "remount {what} at {usual} read-write: {}",
                errno_text(errno)
            ));
            continue;
        }
        let writable = tunables.iter().find(|t| {
            let path = Path::new(usual).join(t);
            path.exists() && can_open_for_writing(&path).is_ok()
        });
        if let Some(tunable) = writable {
            return leaks(
                id,
                format!("remounted {what} at {usual} read-write and opened {tunable} for writing"),
            );
        }
        refusals.push(format!(
            "remounted {what} at {usual} read-write, still no writable tunable"
        ));
    }
    isolated(id, refusals.join("; "))
}

fn write_sysfs(_: &Context) -> Finding {
    const ID: &str = "sys.sysfs";
    let tunables = [
        "kernel/uevent_helper",
        "kernel/mm/ksm/run",
        "kernel/profiling",
    ];
    writable_tunable(ID, "sysfs", "/sys", "kernel", &tunables)
}

// ---- syscalls -------------------------------------------------------------

fn keyctl(_: &Context) -> Finding {
    const ID: &str = "sys.keyctl";
    const KEYCTL_GET_KEYRING_ID: libc::c_long = 0;
    const KEY_SPEC_SESSION_KEYRING: libc::c_long = -3;
    // SAFETY: asks for the id of the session keyring, without creating one.
    let id = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_GET_KEYRING_ID,
            KEY_SPEC_SESSION_KEYRING,
            0,
        )
    };
    if id >= 0 {
        leaks(
            ID,
            "keyctl(2) works: the kernel keyrings are not namespaced",
        )
    } else {
        isolated(ID, format!("keyctl: {}", errno_text(Errno::last())))
    }
}

/// New namespaces are kernel code most programs never reach: an attacker
/// asks for a user namespace first, which unshare(2) grants with no
/// capability at all (user_namespaces(7)), and gets every capability over
/// the namespaces it then makes. Either flag set working is a leak.
fn unshare_namespaces(_: &Context) -> Finding {
    const ID: &str = "sys.unshare";
    use nix::sched::{CloneFlags, unshare};
    let plain = CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWIPC;
    // Each try in a grandchild of its own: the first one that works
    // changes the process, and the second must start from the same place.
    let try_flags = |flags: CloneFlags| -> Result<(), Errno> {
        match in_grandchild(|| match unshare(flags) {
            Ok(()) => 0,
            Err(errno) => errno as i32,
        }) {
            Ok(WaitStatus::Exited(_, 0)) => Ok(()),
            Ok(WaitStatus::Exited(_, code)) => Err(Errno::from_raw(code)),
            _ => Err(Errno::ECHILD),
        }
    };
    let with_user = try_flags(CloneFlags::CLONE_NEWUSER | plain);
    let without = try_flags(plain);
    match (with_user, without) {
        (Ok(()), Ok(())) => leaks(
            ID,
            "unshare(CLONE_NEWUSER|CLONE_NEWNS|CLONE_NEWUTS|CLONE_NEWIPC) and the same without CLONE_NEWUSER both succeeded",
        ),
        (Ok(()), Err(errno)) => leaks(
            ID,
            format!(
                "unshare(CLONE_NEWUSER|CLONE_NEWNS|CLONE_NEWUTS|CLONE_NEWIPC) succeeded (without CLONE_NEWUSER: {})",
                errno_text(errno)
            ),
        ),
        (Err(errno), Ok(())) => leaks(
            ID,
            format!(
                "unshare(CLONE_NEWNS|CLONE_NEWUTS|CLONE_NEWIPC) succeeded (with CLONE_NEWUSER: {})",
                errno_text(errno)
            ),
        ),
        (Err(user), Err(plain)) => isolated(
            ID,
            format!(
                "unshare with CLONE_NEWUSER: {}; without: {}",
                errno_text(user),
                errno_text(plain)
            ),
        ),
    }
}

/// /proc/kcore is the kernel's memory as an ELF core file (proc(5)): root
/// holding CAP_SYS_RAWIO over the host reads it, secrets and all. Docker
/// masks it. The container's /proc first, then a fresh one, as root with
/// CAP_SYS_ADMIN would make when its own is masked.
fn read_kcore(_: &Context) -> Finding {
    const ID: &str = "sys.kcore";
    let mut refusals = Vec::new();
    for attempt in [KernelFs::proc(), KernelFs::fresh("proc")] {
        let proc = match attempt {
            Ok(proc) => proc,
            Err(errno) => {
                refusals.push(format!("mount proc: {}", errno_text(errno)));
                continue;
            }
        };
        let how = if proc.mounted_by_us {
            "a fresh proc"
        } else {
            "the container's /proc"
        };
        let path = proc.path.join("kcore");
        if !path.exists() {
            refusals.push(format!("no kcore in {how}"));
            continue;
        }
        let mut header = [0u8; 4];
        match std::fs::File::open(&path).and_then(|mut file| file.read(&mut header)) {
            Ok(4) if header == *b"\x7fELF" => {
                return leaks(
                    ID,
                    format!("read the ELF header of the kernel's memory in {how}/kcore"),
                );
            }
            Ok(n) => refusals.push(format!(
                "kcore in {how} gave {n} bytes and no ELF header (masked)"
            )),
            Err(error) => refusals.push(format!(
                "kcore in {how}: {}",
                errno_text(crate::error::errno_of(&error))
            )),
        }
    }
    if refusals.iter().all(|r| r.starts_with("no kcore")) {
        return not_applicable(
            ID,
            "this kernel has no /proc/kcore (built without CONFIG_PROC_KCORE)",
        );
    }
    isolated(ID, refusals.join("; "))
}

/// /proc/keys lists every key the reader may view, whoever's keyring holds
/// it, but only keys of the reader's own user namespace (keyrings(7)). The
/// host added one whose description only it knows: the probe reports the
/// descriptions it sees, and the host looks for its own.
fn list_host_keys(context: &Context) -> Finding {
    const ID: &str = "sys.proc-keys";
    if !context.bait.host_key {
        return no_bait(ID);
    }
    let proc = match KernelFs::proc() {
        Ok(proc) => proc,
        Err(errno) => return isolated(ID, format!("no /proc: {}", errno_text(errno))),
    };
    match std::fs::read_to_string(proc.path.join("keys")) {
        Ok(text) => {
            // id flags usage timeout perm uid gid type description: summary
            let descriptions: Vec<String> = text
                .lines()
                .filter_map(|line| line.split_whitespace().nth(8))
                .map(|d| d.trim_end_matches(':').to_string())
                .collect();
            let mut finding = leaks(ID, format!("/proc/keys lists {} keys", descriptions.len()));
            finding.observed = Some(descriptions.join("\n"));
            finding
        }
        Err(error) => isolated(
            ID,
            format!("/proc/keys: {}", errno_text(crate::error::errno_of(&error))),
        ),
    }
}

/// perf_event_open(2) with a zeroed `struct perf_event_attr` of the first
/// published size (PERF_ATTR_SIZE_VER0) but for type, config and flags.
fn open_perf_event(config: u64, pid: i32, cpu: i32) -> Result<(), Errno> {
    const PERF_TYPE_SOFTWARE: u32 = 1;
    const PERF_ATTR_SIZE_VER0: u32 = 64;
    // disabled (bit 0), exclude_kernel (bit 5), exclude_hv (bit 6).
    const FLAGS: u64 = 1 | (1 << 5) | (1 << 6);
    let mut attr = [0u8; PERF_ATTR_SIZE_VER0 as usize];
    attr[0..4].copy_from_slice(&PERF_TYPE_SOFTWARE.to_ne_bytes());
    attr[4..8].copy_from_slice(&PERF_ATTR_SIZE_VER0.to_ne_bytes());
    attr[8..16].copy_from_slice(&config.to_ne_bytes());
    attr[40..48].copy_from_slice(&FLAGS.to_ne_bytes());
    // SAFETY: the attr buffer is as long as its size field says; the fd
    // the kernel returns is closed at once, the counter never enabled.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            attr.as_ptr(),
            pid,
            cpu,
            -1,
            libc::c_ulong::from(0u32),
        )
    };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the kernel just gave us this fd.
    unsafe { libc::close(fd as libc::c_int) };
    Ok(())
}

/// perf_event_open(2) is a large, bug-rich part of the kernel a container
/// has no use for (Docker's seccomp profile refuses it): a counter of the
/// probe's own CPU time, which kernel.perf_event_paranoid=2 allows any user,
/// then one for every process on CPU 0, which needs CAP_PERFMON over the
/// host. Either opening is a leak of kernel surface; the second also
/// watches the host's processes.
fn perf_event(_: &Context) -> Finding {
    const ID: &str = "sys.perf-event";
    const PERF_COUNT_SW_TASK_CLOCK: u64 = 1;
    const PERF_COUNT_SW_CPU_CLOCK: u64 = 0;
    let own = open_perf_event(PERF_COUNT_SW_TASK_CLOCK, 0, -1);
    let cpu_wide = open_perf_event(PERF_COUNT_SW_CPU_CLOCK, -1, 0);
    match (own, cpu_wide) {
        (_, Ok(())) => leaks(
            ID,
            "perf_event_open opened a counter for every process on CPU 0 (pid -1, cpu 0), the host's included",
        ),
        (Ok(()), Err(errno)) => leaks(
            ID,
            format!(
                "perf_event_open opened a counter of its own task clock (the kernel's perf code is reachable); CPU-wide: {}",
                errno_text(errno)
            ),
        ),
        (Err(own), Err(cpu_wide)) => isolated(
            ID,
            format!(
                "perf_event_open of its own task clock: {}; CPU-wide: {}",
                errno_text(own),
                errno_text(cpu_wide)
            ),
        ),
    }
}

/// bpf(2) BPF_PROG_LOAD of the smallest socket filter there is (r0 = 0;
/// exit): an accepted program means the verifier and the JIT, the home of
/// many kernel exploits, are open to the container.
/// kernel.unprivileged_bpf_disabled leaves them to CAP_BPF or
/// CAP_SYS_ADMIN over the host.
fn load_bpf(_: &Context) -> Finding {
    const ID: &str = "sys.bpf";
    const BPF_PROG_LOAD: libc::c_long = 5;
    const BPF_PROG_TYPE_SOCKET_FILTER: u32 = 1;
    // struct bpf_insn: code, dst:4|src:4, off (i16), imm (i32).
    let program: [[u8; 8]; 2] = [
        [0xb7, 0, 0, 0, 0, 0, 0, 0], // BPF_ALU64|BPF_MOV|BPF_K: r0 = 0
        [0x95, 0, 0, 0, 0, 0, 0, 0], // BPF_JMP|BPF_EXIT
    ];
    let license = c"GPL";
    // union bpf_attr, BPF_PROG_LOAD's part: prog_type, insn_cnt, insns,
    // license; the rest zero.
    let mut attr = [0u8; 128];
    attr[0..4].copy_from_slice(&BPF_PROG_TYPE_SOCKET_FILTER.to_ne_bytes());
    attr[4..8].copy_from_slice(&(program.len() as u32).to_ne_bytes());
    attr[8..16].copy_from_slice(&(program.as_ptr() as u64).to_ne_bytes());
    attr[16..24].copy_from_slice(&(license.as_ptr() as u64).to_ne_bytes());
    // SAFETY: attr points to program and license, both alive for the call;
    // the program fd returned is closed at once, never attached.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_LOAD,
            attr.as_ptr(),
            attr.len() as libc::c_uint,
        )
    };
    if fd < 0 {
        return isolated(
            ID,
            format!("bpf(BPF_PROG_LOAD): {}", errno_text(Errno::last())),
        );
    }
    // SAFETY: the kernel just gave us this fd.
    unsafe { libc::close(fd as libc::c_int) };
    leaks(
        ID,
        "bpf(BPF_PROG_LOAD) accepted a socket filter: the verifier and JIT are reachable",
    )
}

/// userfaultfd(2) lets a process pause the kernel in the middle of a copy
/// from user memory, the way many kernel exploits win their races. With
/// UFFD_USER_MODE_ONLY (Linux 5.11) any user may have one; without it,
/// vm.unprivileged_userfaultfd or CAP_SYS_PTRACE over the host.
fn userfaultfd(_: &Context) -> Finding {
    const ID: &str = "sys.userfaultfd";
    const UFFD_USER_MODE_ONLY: libc::c_int = 1;
    let open = |flags: libc::c_int| {
        // SAFETY: the fd returned is closed at once, never registered.
        let fd = unsafe { libc::syscall(libc::SYS_userfaultfd, flags) };
        if fd < 0 {
            return Err(Errno::last());
        }
        // SAFETY: as above.
        unsafe { libc::close(fd as libc::c_int) };
        Ok(())
    };
    let user_mode = open(libc::O_CLOEXEC | UFFD_USER_MODE_ONLY);
    let plain = open(libc::O_CLOEXEC);
    match (user_mode, plain) {
        (_, Ok(())) => leaks(
            ID,
            "userfaultfd(O_CLOEXEC) gave an fd that also handles faults in kernel copies",
        ),
        (Ok(()), Err(errno)) => leaks(
            ID,
            format!(
                "userfaultfd(O_CLOEXEC|UFFD_USER_MODE_ONLY) gave an fd (plain: {})",
                errno_text(errno)
            ),
        ),
        (Err(user_mode), Err(plain)) => isolated(
            ID,
            format!(
                "userfaultfd with UFFD_USER_MODE_ONLY: {}; plain: {}",
                errno_text(user_mode),
                errno_text(plain)
            ),
        ),
    }
}

/// What the module check hands finit_module(2): text, not an ELF file, so
/// no kernel can load it whatever the permission check says; the loader
/// turns it away at its first look (the ELF magic).
const NOT_A_MODULE: &[u8] = b"container-lab: this is not a kernel module\n";

/// finit_module(2) of a memfd holding NOT_A_MODULE: harmless by
/// construction (see there). EPERM is the permission check (CAP_SYS_MODULE
/// over the host); ENOEXEC and the like mean the request got past it to
/// the loader, which a real module would have passed too.
fn load_module(_: &Context) -> Finding {
    const ID: &str = "sys.kernel-module";
    // SAFETY: a name and flags; the fd returned becomes ours.
    let raw = unsafe { libc::memfd_create(c"lab-probe-not-a-module".as_ptr(), libc::MFD_CLOEXEC) };
    if raw < 0 {
        let errno = Errno::last();
        return not_applicable(ID, format!("memfd_create: {}", errno_text(errno)));
    }
    // SAFETY: memfd_create just returned this descriptor.
    let file = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) };
    if let Err(errno) = write(&file, NOT_A_MODULE) {
        return not_applicable(ID, format!("write the memfd: {}", errno_text(errno)));
    }
    debug_assert!(!NOT_A_MODULE.starts_with(b"\x7fELF"));
    // SAFETY: the fd is ours and the parameter string is empty and
    // NUL-terminated.
    let result = unsafe {
        libc::syscall(
            libc::SYS_finit_module,
            std::os::fd::AsRawFd::as_raw_fd(&file),
            c"".as_ptr(),
            0,
        )
    };
    if result == 0 {
        // Cannot happen with text for a module; said plainly if it does.
        return leaks(ID, "finit_module accepted a file that is not a module");
    }
    match Errno::last() {
        Errno::EPERM => isolated(ID, format!("finit_module: {}", errno_text(Errno::EPERM))),
        Errno::ENOSYS if !Path::new("/proc/modules").exists() => not_applicable(
            ID,
            "finit_module: ENOSYS: this kernel was built without module support",
        ),
        errno => leaks(
            ID,
            format!(
                "finit_module got past the permission check to the loader, which turned the non-module away: {}",
                errno_text(errno)
            ),
        ),
    }
}

/// reboot(2) with LINUX_REBOOT_CMD_CAD_OFF, the one harmless command:
/// it only makes Ctrl-Alt-Del send SIGINT to init instead of rebooting at
/// once, and only in the initial PID namespace; in a child one the kernel
/// answers EINVAL for it, and would answer the commands that reboot by
/// killing the container's init, not the machine (pid_namespaces(7)).
/// Only the host can see whether it changed: it watches
/// /proc/sys/kernel/ctrl-alt-del and puts it back. Run only when the host
/// says it watches.
fn reboot_cad_off(context: &Context) -> Finding {
    const ID: &str = "sys.reboot";
    if !context.bait.reboot_watched {
        return no_bait(ID);
    }
    // SAFETY: the magic numbers and CAD_OFF, no argument; see above for why
    // this command cannot restart or stop anything.
    let result = unsafe {
        libc::syscall(
            libc::SYS_reboot,
            REBOOT_MAGIC1,
            REBOOT_MAGIC2,
            REBOOT_CMD_CAD_OFF,
            std::ptr::null::<libc::c_void>(),
        )
    };
    if result == 0 {
        leaks(
            ID,
            "reboot(LINUX_REBOOT_CMD_CAD_OFF) succeeded: the machine's Ctrl-Alt-Del changed",
        )
    } else {
        let errno = Errno::last();
        let why = match errno {
            Errno::EINVAL => " (the kernel's answer in a child PID namespace)",
            Errno::EPERM => " (no CAP_SYS_BOOT)",
            _ => "",
        };
        isolated(
            ID,
            format!(
                "reboot(LINUX_REBOOT_CMD_CAD_OFF): {}{why}",
                errno_text(errno)
            ),
        )
    }
}

/// reboot(2)'s magic numbers and the one command the probe uses
/// (<linux/reboot.h>): LINUX_REBOOT_CMD_CAD_OFF is 0. Never any other.
const REBOOT_MAGIC1: libc::c_long = 0xfee1dead;
const REBOOT_MAGIC2: libc::c_long = 672274793;
const REBOOT_CMD_CAD_OFF: libc::c_long = 0;

fn cgroup_release_agent(_: &Context) -> Finding {
    const ID: &str = "sys.cgroup-release-agent";
    let target = scratch_path("cgroup");
    if let Err(error) = std::fs::create_dir_all(&target) {
        return isolated(ID, format!("mkdir {}: {error}", target.display()));
    }
    // A named v1 hierarchy with no controllers: it still has the
    // release_agent file that CVE-2022-0492 wrote to.
    let mounted = mount(
        Some("cgroup"),
        &target,
        Some("cgroup"),
        MsFlags::empty(),
        Some("none,name=lab-probe"),
    );
    let finding = match mounted {
        Ok(()) => match can_open_for_writing(&target.join("release_agent")) {
            Ok(()) => leaks(
                ID,
                "mounted a cgroup v1 hierarchy and opened release_agent for writing",
            ),
            Err(errno) => isolated(
                ID,
                format!(
                    "mounted cgroup v1, but release_agent: {}",
                    errno_text(errno)
                ),
            ),
        },
        Err(errno) => isolated(ID, format!("mount cgroup v1: {}", errno_text(errno))),
    };
    let _ = umount2(&target, MntFlags::MNT_DETACH);
    let _ = std::fs::remove_dir(&target);
    finding
}

fn runtime_exe(_: &Context) -> Finding {
    const ID: &str = "sys.runtime-exe";
    // This check's parent is the probe; the probe's parent started it.
    let Some(runtime) = parent_of(getppid()).filter(|pid| *pid > 0) else {
        return isolated(
            ID,
            "the process that started the probe is outside its PID namespace",
        );
    };
    let proc = match KernelFs::proc() {
        Ok(proc) => proc,
        Err(errno) => {
            return isolated(
                ID,
                format!("no /proc, and mount proc: {}", errno_text(errno)),
            );
        }
    };
    let exe = proc.path.join(format!("{runtime}/exe"));
    if let Err(errno) = open(&exe, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty()) {
        return isolated(ID, format!("/proc/{runtime}/exe: {}", errno_text(errno)));
    }
    match open(&exe, OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::empty()) {
        Ok(_) => leaks(
            ID,
            format!("opened /proc/{runtime}/exe for writing (wrote nothing)"),
        ),
        Err(Errno::ETXTBSY) => leaks(
            ID,
            format!(
                "/proc/{runtime}/exe is reachable; writing waits only for it to stop running (ETXTBSY)"
            ),
        ),
        Err(errno) => isolated(
            ID,
            format!("/proc/{runtime}/exe for writing: {}", errno_text(errno)),
        ),
    }
}

// ---- resources ------------------------------------------------------------

/// Run `work` in a grandchild and report how it ended.
fn in_grandchild(work: impl FnOnce() -> i32) -> Result<WaitStatus, Errno> {
    // SAFETY: single-threaded; the grandchild leaves with _exit.
    match unsafe { fork() }? {
        ForkResult::Child => {
            let code = work();
            // SAFETY: as above.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => waitpid(child, None),
    }
}

fn exceed_memory(context: &Context) -> Finding {
    const ID: &str = "res.memory";
    let budget = context.bait.memory_limit_bytes;
    if budget == 0 {
        return no_bait(ID);
    }
    let target = budget * 4;
    let status = in_grandchild(|| {
        let mut memory: Vec<u8> = Vec::new();
        if memory.try_reserve_exact(target as usize).is_err() {
            return 2;
        }
        // Touch every page so the kernel really has to provide it.
        memory.resize(target as usize, 1);
        std::hint::black_box(&memory);
        0
    });
    let mib = |bytes: u64| bytes >> 20;
    match status {
        Ok(WaitStatus::Exited(_, 0)) => leaks(
            ID,
            format!(
                "allocated and touched {} MiB, 4x the {} MiB budget",
                mib(target),
                mib(budget)
            ),
        ),
        Ok(WaitStatus::Exited(_, 2)) => {
            isolated(ID, format!("could not reserve {} MiB", mib(target)))
        }
        Ok(WaitStatus::Signaled(_, signal, _)) => isolated(
            ID,
            format!(
                "killed by {signal} before reaching {} MiB (out of memory)",
                mib(target)
            ),
        ),
        other => not_applicable(ID, format!("unexpected end: {other:?}")),
    }
}

/// Most connections the TCP check opens, and the most time it takes: with
/// no budget the 4x target is reached in a few hundred connections (each
/// holds several hundred KiB of unread data). Under a budget the hog goes
/// on to these caps, as an attacker would, since the kernel still forces
/// one segment (up to 64 KiB on loopback) through for every new socket so
/// that it can make progress: on cgroup v1 that segment is charged past
/// the limit, and 2000 of them are well over a 64 MiB budget.
const TCP_MAX_CONNECTIONS: usize = 2000;
const TCP_TIME_LIMIT: Duration = Duration::from_secs(10);
/// How the TCP hog stopped, as it reports it through its pipe.
#[derive(Debug, PartialEq)]
enum TcpStop {
    /// It queued the whole target.
    Target,
    /// It reached the connection cap or the time limit.
    Caps(String),
    /// socket, connect or accept refused for want of memory.
    NoMemory(String),
    /// Something else stopped it first (out of descriptors, ...).
    Other(String),
}

/// Queue TCP data the reader never reads: a loopback listener whose
/// accepted sockets are kept but never read, and clients that write without
/// blocking until the kernel will take no more. On cgroup v1 socket memory
/// is charged to a cgroup only once its `memory.kmem.tcp.limit_in_bytes`
/// is set; v2 charges it to `memory.current` always.
///
/// What this does not measure: the segment the kernel forces through for
/// every socket even past the budget (on v1 it is charged beyond the
/// limit, so many more connections add up), and data waiting in sockets
/// not yet accepted, which belong to no cgroup until accept(2), on v2 too.
fn queue_tcp_buffers(context: &Context) -> Finding {
    const ID: &str = "res.tcp-memory";
    let budget = context.bait.memory_limit_bytes;
    if budget == 0 {
        return no_bait(ID);
    }
    let target = budget * 4;
    let Ok((reader, writer)) = pipe2(OFlag::O_CLOEXEC) else {
        return not_applicable(ID, "the probe could not make a pipe");
    };
    // The hog runs in a process of its own, so that an OOM kill ends it
    // and not the check; every socket it opens closes when it exits.
    // SAFETY: single-threaded; the grandchild leaves with _exit.
    let hog = match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            drop(reader);
            let stop = tcp_hog(target, &writer);
            let line = match stop {
                TcpStop::Target => "stopped target\n".to_string(),
                TcpStop::Caps(why) => format!("stopped caps {why}\n"),
                TcpStop::NoMemory(why) => format!("stopped no-memory {why}\n"),
                TcpStop::Other(why) => format!("stopped other {why}\n"),
            };
            let _ = write(&writer, line.as_bytes());
            // SAFETY: as above.
            unsafe { libc::_exit(0) }
        }
        Ok(ForkResult::Parent { child }) => child,
        Err(errno) => return not_applicable(ID, format!("fork: {}", errno_text(errno))),
    };
    drop(writer);
    let deadline = TCP_TIME_LIMIT + Duration::from_secs(5);
    let Some(report) = read_with_deadline(&reader, deadline) else {
        // Our own kill is no verdict: only the kernel's would be.
        let _ = nix::sys::signal::kill(hog, nix::sys::signal::Signal::SIGKILL);
        let _ = waitpid(hog, None);
        return not_applicable(
            ID,
            format!("the hog did not finish in {} s", deadline.as_secs()),
        );
    };
    let status = waitpid(hog, None);
    let report = String::from_utf8_lossy(&report).into_owned();
    let (queued, connections, stop) = parse_tcp_report(&report);
    judge_tcp(budget, queued, connections, stop, status)
}

/// The verdict from what the hog reported and how it ended.
fn judge_tcp(
    budget: u64,
    queued: u64,
    connections: usize,
    stop: Option<TcpStop>,
    status: Result<WaitStatus, Errno>,
) -> Finding {
    const ID: &str = "res.tcp-memory";
    let mib = |bytes: u64| bytes as f64 / (1 << 20) as f64;
    let so_far = format!(
        "{:.1} MiB queued in {connections} unread loopback connections",
        mib(queued)
    );
    // A budget that lets a quarter more through is not a budget; below
    // that margin sits the segment the kernel forces through for each
    // socket, times the connections it takes to see the refusal.
    if queued > budget + budget / 4 {
        return leaks(
            ID,
            format!("{so_far}, past the {:.0} MiB budget", mib(budget)),
        );
    }
    if let Ok(WaitStatus::Signaled(_, signal, _)) = status {
        return isolated(ID, format!("killed by {signal} after {so_far}"));
    }
    match stop {
        Some(TcpStop::Caps(why)) => isolated(ID, format!("{so_far}, then {why}: the budget held")),
        Some(TcpStop::NoMemory(why)) => isolated(ID, format!("{so_far}; then {why}")),
        Some(TcpStop::Target) => not_applicable(
            ID,
            format!("{so_far}, yet the hog says it reached its target"),
        ),
        Some(TcpStop::Other(why)) => not_applicable(
            ID,
            format!("{so_far}, then stopped before the kernel refused anything: {why}"),
        ),
        None => not_applicable(
            ID,
            format!("{so_far}; the hog did not say why it stopped ({status:?})"),
        ),
    }
}

/// `queued BYTES CONNECTIONS` lines, then `stopped KIND [WHY]`.
fn parse_tcp_report(report: &str) -> (u64, usize, Option<TcpStop>) {
    let (mut queued, mut connections, mut stop) = (0, 0, None);
    for line in report.lines() {
        let mut words = line.splitn(3, ' ');
        match (words.next(), words.next(), words.next()) {
            (Some("queued"), Some(bytes), Some(count)) => {
                queued = bytes.parse().unwrap_or(queued);
                connections = count.parse().unwrap_or(connections);
            }
            (Some("stopped"), Some(kind), why) => {
                let why = why.unwrap_or_default().to_string();
                stop = Some(match kind {
                    "target" => TcpStop::Target,
                    "caps" => TcpStop::Caps(why),
                    "no-memory" => TcpStop::NoMemory(why),
                    _ => TcpStop::Other(why),
                });
            }
            _ => {}
        }
    }
    (queued, connections, stop)
}

/// The hog itself: connect, accept, write until EAGAIN, keep both ends,
/// never read; report the running total on `report` after every
/// connection, so that a kill leaves the last count behind.
fn tcp_hog(target: u64, report: &OwnedFd) -> TcpStop {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};
    let started = Instant::now();
    // Two descriptors a connection: ask for what the cap needs, as far as
    // the hard limit allows.
    let mut cap = TCP_MAX_CONNECTIONS;
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let wanted = (2 * TCP_MAX_CONNECTIONS as u64 + 32).min(hard);
        let have = match wanted > soft && setrlimit(Resource::RLIMIT_NOFILE, wanted, hard).is_ok() {
            true => wanted,
            false => soft,
        };
        cap = cap.min((have.saturating_sub(32) / 2) as usize);
    }
    let listener = match TcpListener::bind("127.0.0.1:0") {
        Ok(listener) => listener,
        Err(error) => return tcp_error("bind 127.0.0.1:0", &error),
    };
    let address = match listener.local_addr() {
        Ok(address) => address,
        Err(error) => return tcp_error("getsockname", &error),
    };
    let _ = listener.set_nonblocking(true);
    let chunk = vec![0x5a_u8; 64 << 10];
    // Kept open, never read: the point of the check.
    let mut ends: Vec<(TcpStream, TcpStream)> = Vec::new();
    let mut queued = 0u64;
    while queued < target {
        if ends.len() >= cap && cap < TCP_MAX_CONNECTIONS {
            return TcpStop::Other(format!("only {cap} connections: the open-files limit"));
        }
        if ends.len() >= cap {
            return TcpStop::Caps(format!("reached the cap of {cap} connections"));
        }
        if started.elapsed() > TCP_TIME_LIMIT {
            return TcpStop::Caps(format!("{} s passed", TCP_TIME_LIMIT.as_secs()));
        }
        let client = match TcpStream::connect(address) {
            Ok(client) => client,
            Err(error) => return tcp_error("connect", &error),
        };
        // Closing with data unsent resets the connection at once (no
        // orphan left holding buffers after the hog is gone).
        let _ = nix::sys::socket::setsockopt(
            &client,
            nix::sys::socket::sockopt::Linger,
            &libc::linger {
                l_onoff: 1,
                l_linger: 0,
            },
        );
        let server = match accept_within(&listener, Duration::from_secs(1)) {
            Ok(server) => server,
            Err(error) => return tcp_error("accept", &error),
        };
        let _ = client.set_nonblocking(true);
        let mut sent = 0u64;
        let stalled = loop {
            let room = (target - queued - sent).min(chunk.len() as u64) as usize;
            if room == 0 {
                break None;
            }
            match (&client).write(&chunk[..room]) {
                Ok(0) => break None,
                Ok(n) => sent += n as u64,
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => break None,
                Err(error) => break Some(error),
            }
        };
        queued += sent;
        ends.push((client, server));
        let line = format!("queued {queued} {}\n", ends.len());
        let _ = write(report, line.as_bytes());
        if let Some(error) = stalled {
            return tcp_error("write", &error);
        }
    }
    TcpStop::Target
}

/// A failed socket call: a refusal for want of memory, or anything else.
fn tcp_error(what: &str, error: &std::io::Error) -> TcpStop {
    let errno = crate::error::errno_of(error);
    let why = format!("{what}: {}", errno_text(errno));
    match errno {
        Errno::ENOBUFS | Errno::ENOMEM => TcpStop::NoMemory(why),
        _ => TcpStop::Other(why),
    }
}

/// accept(2) on a non-blocking listener, waiting up to `limit`.
fn accept_within(
    listener: &std::net::TcpListener,
    limit: Duration,
) -> std::io::Result<std::net::TcpStream> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
    let timeout = PollTimeout::try_from(limit.as_millis() as i32).unwrap_or(PollTimeout::NONE);
    let _ = poll(&mut fds, timeout);
    listener.accept().map(|(stream, _)| stream)
}

fn exceed_pids(context: &Context) -> Finding {
    const ID: &str = "res.pids";
    let budget = context.bait.pids_limit;
    if budget == 0 {
        return no_bait(ID);
    }
    let target = budget * 4;
    let mut children = Vec::new();
    let mut refused = None;
    for _ in 0..target {
        // SAFETY: single-threaded; each child only sleeps until killed.
        match unsafe { fork() } {
            Ok(ForkResult::Child) => loop {
                nix::unistd::pause();
            },
            Ok(ForkResult::Parent { child }) => children.push(child),
            Err(errno) => {
                refused = Some(errno);
                break;
            }
        }
    }
    let started = children.len();
    for child in children {
        let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
        let _ = waitpid(child, None);
    }
    match refused {
        None => leaks(
            ID,
            format!("started {started} processes, 4x the budget of {budget}"),
        ),
        Some(errno) => isolated(
            ID,
            format!(
                "fork refused after {started} processes: {}",
                errno_text(errno)
            ),
        ),
    }
}

/// Busy threads the CPU check runs at once: a quota caps the whole cgroup
/// whatever its thread count, while without one, eight threads take more
/// than their share of a busy machine.
const CPU_THREADS: usize = 8;

/// CPU time spent idle and in all, summed over every CPU, from the first
/// line of /proc/stat (proc(5); the counters are the machine's, not the
/// namespace's).
fn machine_cpu_times(proc: &Path) -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string(proc.join("stat")).ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guests are in user).
    let idle = fields.get(3)? + fields.get(4).unwrap_or(&0);
    Some((idle, fields.iter().take(8).sum()))
}

/// One second of eight busy threads: the CPU they got together, and the
/// share of the machine that stayed idle meanwhile.
fn burn_for_a_second(proc: &Path) -> (f64, Option<f64>) {
    use nix::time::{ClockId, clock_gettime};
    let cpu_now = || {
        clock_gettime(ClockId::CLOCK_PROCESS_CPUTIME_ID)
            .map(|t| Duration::new(t.tv_sec() as u64, t.tv_nsec() as u32))
            .unwrap_or_default()
    };
    let wall = Duration::from_secs(1);
    let machine_before = machine_cpu_times(proc);
    let started = Instant::now();
    let cpu_before = cpu_now();
    std::thread::scope(|scope| {
        for _ in 0..CPU_THREADS {
            scope.spawn(|| {
                let mut spins: u64 = 0;
                while started.elapsed() < wall {
                    spins = std::hint::black_box(spins.wrapping_add(1));
                }
            });
        }
    });
    let share = (cpu_now() - cpu_before).as_secs_f64() / started.elapsed().as_secs_f64();
    let idle = match (machine_before, machine_cpu_times(proc)) {
        (Some((idle0, total0)), Some((idle1, total1))) if total1 > total0 => {
            Some((idle1 - idle0) as f64 / (total1 - total0) as f64)
        }
        _ => None,
    };
    (share, idle)
}

/// Eight threads that get more than 1.5 times the quota: no quota. Less,
/// while a fifth of the machine stayed idle: a quota held them back, since
/// nothing else wanted those CPUs. Less on a machine with no idle time: the
/// other load may be why, so measure again, and if the machine never
/// calms down, say that it could not tell rather than guess.
fn exceed_cpu(context: &Context) -> Finding {
    const ID: &str = "res.cpu";
    let quota = context.bait.cpu_limit;
    if quota <= 0.0 {
        return no_bait(ID);
    }
    let proc = match KernelFs::proc() {
        Ok(proc) => proc,
        Err(errno) => return not_applicable(ID, format!("no /proc/stat: {}", errno_text(errno))),
    };
    let mut busiest = 1.0f64;
    for _ in 0..5 {
        let (share, idle) = burn_for_a_second(&proc.path);
        let what = format!("{CPU_THREADS} busy threads got {share:.2} CPU for 1 s (quota {quota})");
        if share > quota * 1.5 {
            return leaks(ID, what);
        }
        match idle {
            Some(idle) if idle >= 0.2 => {
                return isolated(
                    ID,
                    format!("{what}, while {:.0}% of the machine was idle", idle * 100.0),
                );
            }
            Some(idle) => busiest = busiest.min(idle),
            None => {
                return not_applicable(
                    ID,
                    format!("{what}; /proc/stat unreadable, so load cannot be ruled out"),
                );
            }
        }
    }
    not_applicable(
        ID,
        format!(
            "the machine was too busy to tell a quota from load (at most {:.0}% idle in 5 tries)",
            busiest * 100.0
        ),
    )
}

// ---- a tiny server and client, for the network chapter ----------------------

/// Serve `port` on every address: greet `count` clients with this host's
/// name and the client's address as this side sees it, then exit. Gives up
/// after 60 s so a test that goes wrong cannot leave it running.
pub fn serve(port: u16, count: u32) -> Result<i32, crate::error::LabError> {
    use std::io::Write;
    let listener = listen(port)?;
    let deadline = Instant::now() + Duration::from_secs(60);
    listener.set_nonblocking(true).ok();
    let hostname = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut greeted = 0;
    while greeted < count && Instant::now() < deadline {
        match listener.accept() {
            Ok((mut stream, peer)) => {
                let _ = writeln!(stream, "hello from {hostname}, you are {}", peer.ip());
                greeted += 1;
                // Who was greeted, for whoever runs the server: the tour
                // counts these to know whether the probe got through.
                println!("greeted {}", peer.ip());
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    Ok(if greeted == count { 0 } else { 1 })
}

/// A fixed CPU-bound workload (a linear congruential generator, which no
/// compiler can skip) and how long it took.
pub fn burn_cpu(iterations: u64) -> Duration {
    let started = Instant::now();
    let mut state: u64 = 1;
    for _ in 0..iterations {
        state = std::hint::black_box(
            state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407),
        );
    }
    std::hint::black_box(state);
    started.elapsed()
}

/// A fixed syscall-heavy workload: getppid(2), the cheapest system call
/// that cannot be cached, and how long it took.
pub fn burn_syscalls(iterations: u64) -> Duration {
    let started = Instant::now();
    for _ in 0..iterations {
        std::hint::black_box(getppid());
    }
    started.elapsed()
}

/// Fork a child that sleeps `millis` ms and exits, and return at once: the
/// child is orphaned and re-parented to PID 1 (or a subreaper), which must
/// reap it or it stays a zombie.
pub fn leave_orphan(millis: u64) -> Result<i32, crate::error::LabError> {
    // SAFETY: single-threaded; the child only sleeps and leaves with _exit.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            std::thread::sleep(Duration::from_millis(millis));
            // SAFETY: leave without the parent's exit handlers.
            unsafe { libc::_exit(0) }
        }
        Ok(ForkResult::Parent { child }) => {
            println!("left orphan {child}");
            Ok(0)
        }
        Err(errno) => Err(crate::error::LabError::StepFailed {
            syscall: "fork",
            target: String::new(),
            errno,
        }),
    }
}

/// Listen on `port` on every address and say so on stdout (what the
/// tests and the bench wait for before they connect).
fn listen(port: u16) -> Result<std::net::TcpListener, crate::error::LabError> {
    use std::io::Write;
    let listener = std::net::TcpListener::bind(("0.0.0.0", port))
        .map_err(|error| crate::error::LabError::io("bind", format!("0.0.0.0:{port}"), error))?;
    println!("listening on port {port}");
    let _ = std::io::stdout().flush();
    Ok(listener)
}

/// Accept one connection on `port`, read it to the end, print the count.
pub fn sink(port: u16) -> Result<i32, crate::error::LabError> {
    let (mut stream, _) = listen(port)?
        .accept()
        .map_err(|error| crate::error::LabError::io("accept", format!("0.0.0.0:{port}"), error))?;
    let received = std::io::copy(&mut stream, &mut std::io::sink()).unwrap_or(0);
    println!("received {received} bytes");
    Ok(0)
}

/// Connect to `address`, print the one-line greeting, exit 0 (1 on failure).
pub fn connect(address: std::net::SocketAddr) -> Result<i32, crate::error::LabError> {
    use std::io::BufRead;
    match std::net::TcpStream::connect_timeout(&address, Duration::from_secs(3)) {
        Ok(stream) => {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(3)));
            let mut line = String::new();
            let _ = std::io::BufReader::new(stream).read_line(&mut line);
            print!("{line}");
            Ok(0)
        }
        Err(error) => {
            eprintln!("lab-probe: connect {address}: {error}");
            Ok(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scorecard_check_has_a_probe_function_in_order() {
        let probe: Vec<&str> = ALL.iter().map(|(id, _)| *id).collect();
        let card: Vec<&str> = crate::lab::scorecard::CHECKS.iter().map(|c| c.id).collect();
        assert_eq!(probe, card);
    }

    #[test]
    fn checks_without_bait_say_so() {
        let context = Context {
            bait: Bait::default(),
            inherited_dirs: vec![],
        };
        let finding = host_path(&context);
        assert_eq!(finding.verdict, Verdict::NotApplicable);
        assert!(finding.evidence.contains("lab tour"));
    }

    #[test]
    fn a_check_runs_in_a_child_and_reports_back() {
        let context = Context {
            bait: Bait::default(),
            inherited_dirs: vec![],
        };
        let finding = in_child("sys.keyctl", &context, keyctl);
        assert_eq!(finding.check, "sys.keyctl");
        assert_ne!(
            finding.verdict,
            Verdict::NotApplicable,
            "{}",
            finding.evidence
        );
    }

    fn tcp_verdict(queued: u64, report_stop: &str, status: Result<WaitStatus, Errno>) -> Finding {
        let report = format!("queued 1000 1\nqueued {queued} 49\n{report_stop}");
        let (queued, connections, stop) = parse_tcp_report(&report);
        assert_eq!(connections, 49);
        judge_tcp(64 << 20, queued, connections, stop, status)
    }

    /// The TCP check's verdict: past the budget and its margin is a leak
    /// however the hog ended; below it, the kernel's refusal, its OOM kill
    /// or the hog's own caps reached is isolation, anything else stopping
    /// the hog (too few descriptors) is N/A.
    #[test]
    fn tcp_buffers_are_judged_by_what_was_queued_and_why_it_stopped() {
        let exited = || Ok(WaitStatus::Exited(Pid::from_raw(1), 0));
        let finding = tcp_verdict(256 << 20, "stopped target\n", exited());
        assert_eq!(finding.verdict, Verdict::Leaks, "{}", finding.evidence);
        assert!(
            finding.evidence.starts_with("256.0 MiB queued in 49"),
            "{}",
            finding.evidence
        );
        let capped = "stopped caps reached the cap of 2000 connections\n";
        let finding = tcp_verdict(90 << 20, capped, exited());
        assert_eq!(finding.verdict, Verdict::Leaks, "{}", finding.evidence);
        let finding = tcp_verdict(64 << 20, capped, exited());
        assert_eq!(finding.verdict, Verdict::Isolated, "{}", finding.evidence);
        let finding = tcp_verdict(
            10 << 20,
            "stopped no-memory socket: no buffer space available (ENOBUFS)\n",
            exited(),
        );
        assert_eq!(finding.verdict, Verdict::Isolated, "{}", finding.evidence);
        assert!(
            finding.evidence.ends_with("(ENOBUFS)"),
            "{}",
            finding.evidence
        );
        let killed = Ok(WaitStatus::Signaled(
            Pid::from_raw(1),
            nix::sys::signal::Signal::SIGKILL,
            false,
        ));
        let finding = tcp_verdict(30 << 20, "", killed);
        assert_eq!(finding.verdict, Verdict::Isolated, "{}", finding.evidence);
        let finding = tcp_verdict(
            30 << 20,
            "stopped other connect: too many open files (EMFILE)\n",
            exited(),
        );
        assert_eq!(
            finding.verdict,
            Verdict::NotApplicable,
            "{}",
            finding.evidence
        );
    }

    /// The two checks that could hurt the machine are harmless by
    /// construction: reboot(2) is only ever asked to turn Ctrl-Alt-Del's
    /// instant reboot off, and finit_module(2) only ever gets text.
    #[test]
    fn reboot_and_module_checks_cannot_do_harm() {
        assert_eq!(REBOOT_CMD_CAD_OFF, 0, "LINUX_REBOOT_CMD_CAD_OFF");
        assert_eq!(REBOOT_MAGIC1, 0xfee1dead);
        assert_eq!(REBOOT_MAGIC2, 0x28121969);
        assert!(!NOT_A_MODULE.starts_with(b"\x7fELF"));
    }

    /// Checks that act on the host's behalf only run when the tour planted
    /// their bait: by hand they touch nothing.
    #[test]
    fn host_side_checks_need_their_bait() {
        let context = Context {
            bait: Bait::default(),
            inherited_dirs: vec![],
        };
        for check in [reboot_cad_off, list_host_keys, setuid_gain] {
            let finding = check(&context);
            assert_eq!(finding.verdict, Verdict::NotApplicable, "{}", finding.check);
            assert!(
                finding.evidence.contains("lab tour"),
                "{}",
                finding.evidence
            );
        }
    }

    #[test]
    fn hex_is_lowercase_pairs() {
        assert_eq!(hex(&[0, 15, 255]), "000fff");
    }
}
