//! Mounts: what the container sees at /proc, /sys, /dev and /tmp, and how
//! its root is swapped in with pivot_root(2).
//!
//! Chapter 02 mounts one thing, a /proc for its new PID namespace, and has
//! no mount namespace yet: that mount shows up in the host's mount table
//! until the runtime takes it down. Chapter 03 does everything inside a
//! mount namespace of its own, made private first, so nothing it mounts
//! ever reaches the host and everything disappears with the container.

use crate::error::LabError;
use crate::hostinfo::read_mountinfo;
use crate::narrator::{Narrator, Step};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::{Mode, SFlag, makedev, mknod};
use nix::unistd::{chdir, pivot_root};
use std::path::{Path, PathBuf};

/// Source name of the /proc chapter 02 mounts in the host's mount table,
/// followed by the runtime's pid, so the runtime (and `lab clean`) can tell
/// its own mount from anyone else's.
pub const HOST_PROC_SOURCE_PREFIX: &str = "container-lab-proc-";

const FLAG_NAMES: &[(MsFlags, &str)] = &[
    (MsFlags::MS_RDONLY, "MS_RDONLY"),
    (MsFlags::MS_NOSUID, "MS_NOSUID"),
    (MsFlags::MS_NODEV, "MS_NODEV"),
    (MsFlags::MS_NOEXEC, "MS_NOEXEC"),
    (MsFlags::MS_REMOUNT, "MS_REMOUNT"),
    (MsFlags::MS_BIND, "MS_BIND"),
    (MsFlags::MS_REC, "MS_REC"),
    (MsFlags::MS_PRIVATE, "MS_PRIVATE"),
];

fn flag_names(flags: MsFlags) -> String {
    let names: Vec<&str> = FLAG_NAMES
        .iter()
        .filter(|(flag, _)| flags.contains(*flag))
        .map(|(_, name)| *name)
        .collect();
    if names.is_empty() {
        "0".into()
    } else {
        names.join("|")
    }
}

/// One narrated mount(2).
pub fn mount_step(
    narrator: &Narrator,
    source: Option<&str>,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
    why: &str,
) -> Result<(), LabError> {
    let quoted = |value: Option<&str>| {
        value
            .map(|v| format!("{v:?}"))
            .unwrap_or_else(|| "NULL".into())
    };
    let args = format!(
        "{}, {:?}, {}, {}, {}",
        quoted(source),
        target.display().to_string(),
        quoted(fstype),
        flag_names(flags),
        quoted(data)
    );
    narrator.run(
        Step {
            syscall: "mount",
            args: &args,
            why,
            man: "mount(2)",
        },
        || mount(source, target, fstype, flags, data),
    )
}

const SAFE: MsFlags = MsFlags::MS_NOSUID
    .union(MsFlags::MS_NODEV)
    .union(MsFlags::MS_NOEXEC);

// ANCHOR: proc
/// Mount a procfs at `target`. It shows the processes of the mounting
/// process's PID namespace, so a container that mounts its own /proc sees
/// only its own processes (proc(5)).
pub fn mount_proc(narrator: &Narrator, target: &Path, source: &str) -> Result<(), LabError> {
    let why = "a /proc that lists only the container's own processes, so ps works inside";
    mount_step(
        narrator,
        Some(source),
        target,
        Some("proc"),
        SAFE,
        None,
        why,
    )
}
// ANCHOR_END: proc

/// The /proc chapter 02 mounted in the host's mount table, taken down when
/// the guard drops: after the container ends, on an error, on Ctrl-C.
pub struct HostProcMount {
    source: String,
    proc_dir: PathBuf,
}

impl HostProcMount {
    /// For the container this runtime is about to start on `rootfs`.
    /// Refuses a rootfs whose /proc another running jail has mounted: with
    /// no mount namespace, both jails would share one /proc mount point, and
    /// the one mounted last would hide the other's.
    pub fn for_this_runtime(rootfs: &Path) -> Result<HostProcMount, LabError> {
        let proc_dir =
            std::fs::canonicalize(rootfs.join("proc")).unwrap_or_else(|_| rootfs.join("proc"));
        let other_jail = read_mountinfo().unwrap_or_default().into_iter().find(|m| {
            m.mount_point == proc_dir
                && m.source
                    .strip_prefix(HOST_PROC_SOURCE_PREFIX)
                    .and_then(|pid| pid.parse::<u32>().ok())
                    .is_some_and(|pid| Path::new("/proc").join(pid.to_string()).exists())
        });
        if let Some(other) = other_jail {
            return Err(LabError::Refused {
                message: format!("{} is the /proc of another running jail ({})", proc_dir.display(), other.source),
                hint: "ch02 has no mount namespace, so two jails cannot share a rootfs: use a copy of it, or ch03, whose mounts are private".into(),
            });
        }
        Ok(HostProcMount {
            source: format!("{HOST_PROC_SOURCE_PREFIX}{}", std::process::id()),
            proc_dir,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }
}

impl Drop for HostProcMount {
    fn drop(&mut self) {
        // umount2(2) takes a path and removes the mount on top there: only
        // unmount if the top one is ours (else `lab clean` will, later).
        let mounts = read_mountinfo().unwrap_or_default();
        let top = mounts.iter().rev().find(|m| m.mount_point == self.proc_dir);
        if top.is_some_and(|m| m.source == self.source) {
            let _ = umount2(&self.proc_dir, MntFlags::MNT_DETACH);
        }
    }
}

/// Where mounts whose source is `source` are, as this process sees them.
pub fn mount_points_with_source(source: &str) -> Vec<PathBuf> {
    read_mountinfo()
        .unwrap_or_default()
        .into_iter()
        .filter(|m| m.source == source)
        .map(|m| m.mount_point)
        .collect()
}

// ANCHOR: private
/// Make every mount in our new mount namespace private, recursively, before
/// mounting anything: on a host where / is shared (systemd makes it so),
/// mounts made in a new namespace would otherwise propagate back to the
/// host (mount_namespaces(7)).
pub fn make_all_private(narrator: &Narrator) -> Result<(), LabError> {
    let why = "nothing mounted from here on propagates to the host, nor from the host to us";
    mount_step(
        narrator,
        None,
        Path::new("/"),
        None,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None,
        why,
    )
}
// ANCHOR_END: private

// ANCHOR: bind_onto_itself
/// Bind-mount the rootfs onto itself: pivot_root(2) needs the new root to
/// be a mount point. Then make that mount `nodev`: a device node that came
/// with the rootfs (a hostile image ships `b 8 0`, or an earlier container
/// left one behind) must not open the host's disk; the container's own
/// /dev is a tmpfs of its own and keeps working.
pub fn bind_onto_itself(narrator: &Narrator, rootfs: &Path) -> Result<(), LabError> {
    let why =
        "pivot_root needs the new root to be a mount point; a bind mount onto itself makes it one";
    let source = rootfs.to_string_lossy();
    mount_step(
        narrator,
        Some(&source),
        rootfs,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
        why,
    )?;
    // A bind remount replaces the mount's flags: keep those it has (in a
    // user namespace the kernel refuses to clear locked ones, mount(2)).
    // The kept flags depend on the host's mount options, so the narration
    // names them by where they come from rather than by value.
    let kept = kept_mount_flags(rootfs);
    let args = format!(
        "NULL, {:?}, NULL, MS_BIND|MS_REMOUNT|MS_NODEV|<the flags statvfs reports>, NULL",
        rootfs.display().to_string()
    );
    narrator.run(
        Step {
            syscall: "mount",
            args: &args,
            why: "device nodes inside the rootfs must not open host devices",
            man: "mount(2)",
        },
        || {
            let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_NODEV | kept;
            mount(None::<&str>, rootfs, None::<&str>, flags, None::<&str>)
        },
    )
}

// ANCHOR_END: bind_onto_itself

/// The per-mount flags `path`'s mount has now, from statvfs(3).
pub fn kept_mount_flags(path: &Path) -> MsFlags {
    use nix::sys::statvfs::{FsFlags, statvfs};
    let Ok(stat) = statvfs(path) else {
        return MsFlags::empty();
    };
    let flags = stat.flags();
    [
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ]
    .into_iter()
    .filter(|(statvfs_flag, _)| flags.contains(*statvfs_flag))
    .fold(MsFlags::empty(), |all, (_, mount_flag)| all | mount_flag)
}

/// The kernel filesystems a ch03 container gets, mounted under `rootfs`
/// before the pivot (the rootfs directories must exist; nothing is created
/// in it on disk).
pub fn mount_kernel_filesystems(narrator: &Narrator, rootfs: &Path) -> Result<(), LabError> {
    mount_proc(narrator, &rootfs.join("proc"), "proc")?;
    let sys = rootfs.join("sys");
    let sysfs = mount_step(
        narrator,
        Some("sysfs"),
        &sys,
        Some("sysfs"),
        SAFE | MsFlags::MS_RDONLY,
        None,
        "/sys read-only: the container may look at the kernel's devices and tunables, not change them",
    );
    match sysfs {
        // A user namespace may mount a sysfs only for a network namespace
        // it owns; sharing the host's network, it gets the host's /sys.
        Err(LabError::StepFailed {
            errno: nix::errno::Errno::EPERM,
            ..
        }) => {
            let why =
                "no sysfs of its own without a network namespace of its own: the host's, read-only";
            mount_step(
                narrator,
                Some("/sys"),
                &sys,
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None,
                why,
            )?;
            let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | SAFE | MsFlags::MS_RDONLY;
            mount_step(
                narrator,
                None,
                &sys,
                None,
                flags,
                None,
                "make that view read-only",
            )?;
        }
        other => other?,
    }
    mount_step(
        narrator,
        Some("tmpfs"),
        &rootfs.join("tmp"),
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=1777"),
        "a /tmp in memory: the container's scratch files never touch the rootfs on disk",
    )?;
    populate_dev(narrator, &rootfs.join("dev"))
}

/// The device nodes every container gets: (name, major, minor), as in
/// the kernel's devices.txt.
pub const STANDARD_DEVICES: [(&str, u64, u64); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

// ANCHOR: dev
/// A minimal /dev on a fresh tmpfs: the few device nodes programs expect,
/// a devpts instance of the container's own, /dev/shm, and /dev/console
/// when there is a terminal. The host's /dev, with its disks, stays out.
fn populate_dev(narrator: &Narrator, dev: &Path) -> Result<(), LabError> {
    mount_step(
        narrator,
        Some("tmpfs"),
        dev,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("mode=755,size=64k"),
        "an empty /dev of the container's own instead of the host's",
    )?;
    make_standard_devices(narrator, dev, |_| false)?;
    let pts = dev.join("pts");
    let shm = dev.join("shm");
    for dir in [&pts, &shm] {
        narrator.run(
            Step {
                syscall: "mkdir",
                args: &format!("{:?}", dir.display().to_string()),
                why: "a mount point in the new /dev",
                man: "mkdir(2)",
            },
            || nix::unistd::mkdir(dir.as_path(), Mode::from_bits_truncate(0o755)),
        )?;
    }
    mount_step(
        narrator,
        Some("devpts"),
        &pts,
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620"),
        "pseudo-terminals of the container's own: it cannot see or open the host's",
    )?;
    mount_step(
        narrator,
        Some("shm"),
        &shm,
        Some("tmpfs"),
        SAFE,
        Some("mode=1777,size=64m"),
        "POSIX shared memory (shm_open) lives here",
    )?;
    link_standard_names(narrator, dev)?;
    bind_console(narrator, dev)
}
// ANCHOR_END: dev

/// mknod(2) a device node at `path` with exactly `mode` (the umask does
/// not apply); in a user namespace, where the kernel refuses mknod(2) even
/// to its root, the host's node at `host` is bind-mounted instead, as runc
/// does.
pub fn make_device(
    narrator: &Narrator,
    path: &Path,
    host: &Path,
    kind: SFlag,
    (major, minor): (u64, u64),
    mode: u32,
    why: &str,
) -> Result<(), LabError> {
    let args = format!(
        "{:?}, {}|{mode:04o}, makedev({major}, {minor})",
        path.display().to_string(),
        if kind == SFlag::S_IFBLK {
            "S_IFBLK"
        } else {
            "S_IFCHR"
        }
    );
    let made = narrator.run(
        Step {
            syscall: "mknod",
            args: &args,
            why,
            man: "mknod(2)",
        },
        || {
            mknod(
                path,
                kind,
                Mode::from_bits_truncate(mode),
                makedev(major, minor),
            )?;
            // mknod(2) applies the umask; the node gets the mode asked for.
            nix::sys::stat::fchmodat(
                nix::fcntl::AT_FDCWD,
                path,
                Mode::from_bits_truncate(mode),
                nix::sys::stat::FchmodatFlags::FollowSymlink,
            )
        },
    );
    match made {
        Err(LabError::StepFailed {
            errno: nix::errno::Errno::EPERM,
            ..
        }) => bind_host_device(narrator, host, path),
        other => other,
    }
}

/// The standard six nodes in `dev`, but those `skip` names (chapter 10:
/// the ones config.json lists itself).
pub fn make_standard_devices(
    narrator: &Narrator,
    dev: &Path,
    skip: impl Fn(&str) -> bool,
) -> Result<(), LabError> {
    for (name, major, minor) in STANDARD_DEVICES.into_iter().filter(|(n, _, _)| !skip(n)) {
        let host = Path::new("/dev").join(name);
        make_device(
            narrator,
            &dev.join(name),
            &host,
            SFlag::S_IFCHR,
            (major, minor),
            0o666,
            "a device node every program expects",
        )?;
    }
    Ok(())
}

/// The links programs expect in /dev: ptmx to the container's own devpts,
/// fd and the three standard streams to /proc/self/fd.
pub fn link_standard_names(narrator: &Narrator, dev: &Path) -> Result<(), LabError> {
    for (link, target) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        let path = dev.join(link);
        narrator.run(
            Step {
                syscall: "symlink",
                args: &format!("{target:?}, {:?}", path.display().to_string()),
                why: "the links programs expect in /dev",
                man: "symlink(2)",
            },
            || nix::unistd::symlinkat(target, nix::fcntl::AT_FDCWD, &path),
        )?;
    }
    Ok(())
}

/// Bind-mount the host's device `host` onto an empty file at `path`.
fn bind_host_device(narrator: &Narrator, host: &Path, path: &Path) -> Result<(), LabError> {
    std::fs::File::create(path).map_err(|e| LabError::io("open", path.display(), e))?;
    let source = host.to_string_lossy();
    let why = "mknod is not allowed in a user namespace: the host's node, bind-mounted";
    mount_step(
        narrator,
        Some(&source),
        path,
        None,
        MsFlags::MS_BIND,
        None,
        why,
    )
}

/// When the runtime runs on a terminal, the container's /dev/console is
/// that terminal, bind-mounted (as runc and LXC do).
fn bind_console(narrator: &Narrator, dev: &Path) -> Result<(), LabError> {
    let Ok(terminal) = nix::unistd::ttyname(std::io::stdin()) else {
        return Ok(());
    };
    let console = dev.join("console");
    std::fs::File::create(&console).map_err(|e| LabError::io("open", console.display(), e))?;
    let source = terminal.to_string_lossy();
    mount_step(
        narrator,
        Some(&source),
        &console,
        None,
        MsFlags::MS_BIND,
        None,
        "the container's console is the terminal it runs on",
    )
}

/// Bind-mount each of `files` (a host file, and the name it takes in the
/// rootfs's /etc) over the rootfs's own, when the rootfs has one: the
/// container reads the runtime's copy and the rootfs on disk is untouched.
pub fn bind_etc_files(
    narrator: &Narrator,
    rootfs: &Path,
    files: &[(PathBuf, &str)],
) -> Result<(), LabError> {
    for (source, name) in files {
        let target = rootfs.join("etc").join(name);
        if !target.is_file() {
            narrator.note(&format!("the rootfs has no /etc/{name}: left out (the runtime never creates files in a rootfs)"));
            continue;
        }
        let source = source.to_string_lossy();
        let why = "the container's own copy, written by the runtime; the rootfs's stays as it is";
        mount_step(
            narrator,
            Some(&source),
            &target,
            None,
            MsFlags::MS_BIND,
            None,
            why,
        )?;
    }
    Ok(())
}

// ANCHOR: pivot
/// Make `rootfs` the root of our mount namespace and drop the old root
/// entirely. pivot_root(".", ".") stacks the old root on top of the new one
/// at "/", so a lazy unmount of "." removes it without ever creating a
/// directory for it in the rootfs (pivot_root(2), NOTES).
pub fn pivot_into(narrator: &Narrator, rootfs: &Path) -> Result<(), LabError> {
    let shown = format!("{:?}", rootfs.display().to_string());
    narrator.run(
        Step {
            syscall: "chdir",
            args: &shown,
            why: "stand in the new root, so pivot_root can work with \".\"",
            man: "chdir(2)",
        },
        || chdir(rootfs),
    )?;
    narrator.run(
        Step {
            syscall: "pivot_root",
            args: "\".\", \".\"",
            why: "the rootfs becomes / of the mount namespace; the old root sits on top of it, still reachable",
            man: "pivot_root(2)",
        },
        || pivot_root(".", "."),
    )?;
    narrator.run(
        Step {
            syscall: "umount2",
            args: "\".\", MNT_DETACH",
            why: "detach the old root: the host's filesystem is no longer reachable by any path",
            man: "umount2(2)",
        },
        || umount2(".", MntFlags::MNT_DETACH),
    )?;
    narrator.run(
        Step {
            syscall: "chdir",
            args: "\"/\"",
            why: "stand at the top of the new root",
            man: "chdir(2)",
        },
        || chdir("/"),
    )
}
// ANCHOR_END: pivot

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_read_like_c() {
        assert_eq!(
            flag_names(MsFlags::MS_REC | MsFlags::MS_PRIVATE),
            "MS_REC|MS_PRIVATE"
        );
        assert_eq!(flag_names(MsFlags::empty()), "0");
    }
}
