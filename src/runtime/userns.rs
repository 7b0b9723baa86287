//! User namespaces: root inside, an unprivileged user outside
//! (user_namespaces(7), complete in Linux 3.8, 2013).
//!
//! The child makes the namespace; only its parent, outside, can write the
//! maps that say which host ids the namespace's ids stand for. Until then
//! the child is "nobody" inside. As root the runtime maps the container's
//! ids onto a range that no line of /etc/subuid or /etc/subgid gives to
//! anyone (0 -> 1879048192 by default); run by an ordinary
//! user it maps container root onto that user (and, with newuidmap(1) and
//! an entry in /etc/subuid, a whole subordinate range besides).

use crate::error::LabError;
use crate::narrator::{Narrator, Step};
use nix::unistd::Pid;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// One line of a uid_map or gid_map: `count` ids from `inside` stand for
/// `count` ids from `outside`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IdMap {
    pub inside: u32,
    pub outside: u32,
    pub count: u32,
}

impl FromStr for IdMap {
    type Err = String;
    fn from_str(text: &str) -> Result<IdMap, String> {
        let parts: Vec<&str> = text.split(':').collect();
        let [inside, outside, count] = parts[..] else {
            return Err(format!(
                "{text}: expected CONTAINER_ID:HOST_ID:COUNT, as in 0:1879048192:65536"
            ));
        };
        let number = |value: &str| {
            value
                .parse::<u32>()
                .map_err(|_| format!("{text}: {value:?} is not a number"))
        };
        let map = IdMap {
            inside: number(inside)?,
            outside: number(outside)?,
            count: number(count)?,
        };
        if map.count == 0 {
            return Err(format!("{text}: the count must be at least 1"));
        }
        if map.inside.checked_add(map.count).is_none()
            || map.outside.checked_add(map.count).is_none()
        {
            return Err(format!("{text}: the range runs past the largest id"));
        }
        Ok(map)
    }
}

impl fmt::Display for IdMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.inside, self.outside, self.count)
    }
}

impl IdMap {
    /// The ranges of a /proc/PID/uid_map or gid_map as the kernel prints
    /// it: `INSIDE OUTSIDE COUNT` a line (user_namespaces(7)).
    pub fn parse_proc_map(text: &str) -> Vec<IdMap> {
        text.lines()
            .filter_map(|line| {
                let mut numbers = line.split_whitespace().map(|n| n.parse::<u32>().ok());
                Some(IdMap {
                    inside: numbers.next()??,
                    outside: numbers.next()??,
                    count: numbers.next()??,
                })
            })
            .collect()
    }

    /// The host id that container id `id` stands for, if it is mapped.
    pub fn to_host(&self, id: u32) -> Option<u32> {
        (id >= self.inside && id - self.inside < self.count)
            .then(|| self.outside + (id - self.inside))
    }

    /// The container id that host id `id` stands for, if it is mapped.
    pub fn to_container(&self, id: u32) -> Option<u32> {
        (id >= self.outside && id - self.outside < self.count)
            .then(|| self.inside + (id - self.outside))
    }
}

/// The default range for root: 65536 ids (the 16-bit ids a distribution's
/// files use, nobody's 65534 among them) from 0x70000000 = 1879048192.
///
/// Not 100000: that is where useradd(8) starts handing out ranges in
/// /etc/subuid (SUB_UID_MIN in login.defs(5)), so on most machines the
/// first user owns 100000:65536, and that user's rootless containers would
/// run as the very host ids of root's: able to signal and ptrace them and
/// to own what they write. Nor "the first free range above every line of
/// /etc/subuid": the next useradd takes exactly that one. 0x70000000 lies
/// above useradd's whole default pool (SUB_UID_MAX 600100000 on Debian),
/// just above the pool systemd-nspawn picks container ranges from
/// (0x00080000 to 0x6FFF0000 + 65535, systemd.io/UIDS-GIDS), and below
/// 2^31, above which systemd advises against ids because some programs
/// still treat uid_t as signed. And it is the same number on every host
/// whose files do not claim it, which keeps the book and the tests exact.
/// `root_default` moves past any line that does claim it.
pub const ROOT_DEFAULT: IdMap = IdMap {
    inside: 0,
    outside: 0x7000_0000,
    count: 65536,
};

/// One well-formed line of /etc/subuid or /etc/subgid (subuid(5)): `count`
/// ids from `start` granted to `owner`, a login name or a uid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubordinateRange {
    pub owner: String,
    pub start: u32,
    pub count: u32,
}

impl SubordinateRange {
    /// One past its last id (in u64: a line may run past u32::MAX).
    fn end(&self) -> u64 {
        u64::from(self.start) + u64::from(self.count)
    }

    /// Whether any of `count` ids from `start` is one of its.
    pub fn overlaps(&self, start: u32, count: u32) -> bool {
        u64::from(self.start) < u64::from(start) + u64::from(count) && u64::from(start) < self.end()
    }

    /// Whether it is `user`'s: by name, or by uid (newuidmap(1) and
    /// newgidmap(1) accept both, in both files).
    pub fn belongs_to(&self, user: &str, uid: u32) -> bool {
        self.owner == user || self.owner == uid.to_string()
    }
}

impl fmt::Display for SubordinateRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.owner, self.start, self.count)
    }
}

/// Every well-formed `owner:start:count` line of /etc/subuid or
/// /etc/subgid. A line with another number of fields, a field that is not
/// a number or a count of 0 grants nothing (shadow's parser, which
/// newuidmap(1) uses, skips such lines too), so it is skipped here.
pub fn subordinate_ranges(file: &str) -> Vec<SubordinateRange> {
    file.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.trim().split(':').collect();
            let [owner, start, count] = fields[..] else {
                return None;
            };
            let range = SubordinateRange {
                owner: owner.to_string(),
                start: start.parse().ok()?,
                count: count.parse().ok()?,
            };
            (!owner.is_empty() && range.count > 0).then_some(range)
        })
        .collect()
}

/// The first range of /etc/subuid or /etc/subgid for `user` (by name or
/// by uid).
pub fn subordinate_range(file: &str, user: &str, uid: u32) -> Option<(u32, u32)> {
    subordinate_ranges(file)
        .into_iter()
        .find(|range| range.belongs_to(user, uid))
        .map(|range| (range.start, range.count))
}

/// The map of a run as root that gives no flag: `ROOT_DEFAULT`, or when a
/// line of `claimed` (/etc/subuid and /etc/subgid together, so that uids
/// and gids stay one range) overlaps it, the first 65536-aligned block
/// after it that no line overlaps. None when no block is left below
/// 4294967295, which is no id at all (chown(2) reads it as "no change").
pub fn root_default(claimed: &[SubordinateRange]) -> Option<IdMap> {
    let count = u64::from(ROOT_DEFAULT.count);
    let mut start = u64::from(ROOT_DEFAULT.outside);
    loop {
        if start + count > u64::from(u32::MAX) {
            return None;
        }
        let (start32, count32) = (start as u32, ROOT_DEFAULT.count);
        match claimed
            .iter()
            .filter(|range| range.overlaps(start32, count32))
            .map(SubordinateRange::end)
            .max()
        {
            None => {
                return Some(IdMap {
                    outside: start32,
                    ..ROOT_DEFAULT
                });
            }
            Some(end) => start = end.next_multiple_of(count),
        }
    }
}

/// The first line of `claimed` that is not `user`'s and that `map`'s host
/// ids overlap: a map onto another user's subordinate ids would let that
/// user's own containers signal, ptrace and own this one's.
pub fn claimed_by_another<'a>(
    map: &IdMap,
    claimed: &'a [SubordinateRange],
    user: &str,
    uid: u32,
) -> Option<&'a SubordinateRange> {
    claimed
        .iter()
        .find(|range| !range.belongs_to(user, uid) && range.overlaps(map.outside, map.count))
}

/// The maps a rootless run uses: container root is the user itself; with
/// newuidmap and a subordinate range, ids 1.. map onto that range too.
pub fn rootless_maps(own: u32, subordinate: Option<(u32, u32)>) -> Vec<IdMap> {
    let mut maps = vec![IdMap {
        inside: 0,
        outside: own,
        count: 1,
    }];
    if let Some((start, count)) = subordinate {
        maps.push(IdMap {
            inside: 1,
            outside: start,
            count,
        });
    }
    maps
}

// ANCHOR: write_maps
/// From outside: write the child's uid and gid maps. Root writes
/// /proc/PID/uid_map itself. An ordinary user may map only its own id, and
/// only after writing "deny" to /proc/PID/setgroups (else it could drop a
/// supplementary group that denies it access: CVE-2014-8989); a wider map
/// takes the setuid helpers newuidmap(1)/newgidmap(1), which check
/// /etc/subuid and /etc/subgid.
pub fn write_maps(
    narrator: &Narrator,
    child: Pid,
    uids: &[IdMap],
    gids: &[IdMap],
) -> Result<(), LabError> {
    let rootless = !nix::unistd::geteuid().is_root();
    if rootless && (uids.len() > 1 || gids.len() > 1) {
        helper(narrator, "newuidmap", child, uids)?;
        return helper(narrator, "newgidmap", child, gids);
    }
    if rootless {
        write_proc(
            narrator,
            child,
            "setgroups",
            "deny",
            "an unprivileged map of our own group needs setgroups(2) turned off first",
        )?;
    }
    let lines = |maps: &[IdMap]| maps.iter().map(|m| format!("{m}\n")).collect::<String>();
    write_proc(
        narrator,
        child,
        "uid_map",
        &lines(uids),
        "which host uids the container's uids stand for",
    )?;
    write_proc(
        narrator,
        child,
        "gid_map",
        &lines(gids),
        "which host gids the container's gids stand for",
    )
}
// ANCHOR_END: write_maps

fn write_proc(
    narrator: &Narrator,
    child: Pid,
    file: &str,
    text: &str,
    why: &str,
) -> Result<(), LabError> {
    let path = PathBuf::from(format!("/proc/{child}/{file}"));
    let args = format!("{:?}, {:?}", path.display().to_string(), text.trim_end());
    narrator.run(
        Step {
            syscall: "write",
            args: &args,
            why,
            man: "user_namespaces(7)",
        },
        || std::fs::write(&path, text).map_err(|e| crate::error::errno_of(&e)),
    )
}

fn helper(
    narrator: &Narrator,
    program: &'static str,
    child: Pid,
    maps: &[IdMap],
) -> Result<(), LabError> {
    let mut args = vec![child.to_string()];
    for map in maps {
        args.extend([
            map.inside.to_string(),
            map.outside.to_string(),
            map.count.to_string(),
        ]);
    }
    let shown = args.join(" ");
    narrator.run_tool(
        Step {
            syscall: program,
            args: &shown,
            why: "a setuid helper writes the wider map after checking /etc/subuid and /etc/subgid",
            man: "newuidmap(1)",
        },
        || {
            let output = std::process::Command::new(program)
                .args(&args)
                .output()
                .map_err(|e| LabError::ToolFailed {
                    command: format!("{program} {shown}"),
                    message: format!("cannot run {program}: {e}"),
                })?;
            if output.status.success() {
                Ok(())
            } else {
                Err(LabError::ToolFailed {
                    command: format!("{program} {shown}"),
                    message: String::from_utf8_lossy(&output.stderr).trim().to_string(),
                })
            }
        },
    )
}

// ANCHOR: idmapped_root
/// MOUNT_ATTR_* of <linux/mount.h>, for mount_setattr(2).
pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
pub const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// `struct mount_attr` of <linux/mount.h>, for mount_setattr(2).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// From outside, once the maps are written: a detached copy of the rootfs
/// mount (open_tree(2)) that shows every file's owner through the
/// container's user namespace (mount_setattr(2) with MOUNT_ATTR_IDMAP,
/// Linux 5.12). Files the host's root owns appear owned by the container's
/// root, and nothing on disk changes. Read-only: through an idmapped mount
/// a file the container's root creates is the host root's on disk, and a
/// setuid one would be a way up for anyone on the host who can reach the
/// rootfs. The child attaches it in its own mount namespace.
pub fn idmapped_rootfs(
    narrator: &Narrator,
    rootfs: &Path,
    child: Pid,
) -> Result<std::os::fd::OwnedFd, LabError> {
    use std::os::unix::ffi::OsStrExt;
    let userns_path = format!("/proc/{child}/ns/user");
    let userns =
        std::fs::File::open(&userns_path).map_err(|e| LabError::io("open", &userns_path, e))?;
    let path = std::ffi::CString::new(rootfs.as_os_str().as_bytes()).expect("paths have no NUL");
    let args = format!(
        "AT_FDCWD, {:?}, OPEN_TREE_CLONE|OPEN_TREE_CLOEXEC|AT_RECURSIVE",
        rootfs.display().to_string()
    );
    let tree = narrator.run(
        Step {
            syscall: "open_tree",
            args: &args,
            why: "a detached copy of the rootfs mount, not yet attached anywhere",
            man: "open_tree(2)",
        },
        || open_tree_clone(&path),
    )?;
    // nodev: through the id map a node the host's root left in the rootfs
    // looks like the container root's own; it must not open a host device.
    let set = MOUNT_ATTR_IDMAP | MOUNT_ATTR_RDONLY | MOUNT_ATTR_NODEV;
    let shown = format!(
        "tree, \"\", AT_EMPTY_PATH|AT_RECURSIVE, {{MOUNT_ATTR_IDMAP|MOUNT_ATTR_RDONLY|MOUNT_ATTR_NODEV, userns of {child}}}"
    );
    narrator.run(
        Step { syscall: "mount_setattr", args: &shown, why: "ownership through the container's id maps: host root's files are the container root's", man: "mount_setattr(2)" },
        || set_mount_attributes(&tree, set, Some(&userns)),
    )
    .map_err(|error| match error {
        LabError::StepFailed { errno, .. } => LabError::Refused {
            message: format!("no idmapped mount of {}: {}", rootfs.display(), crate::error::describe_errno(errno)),
            hint: "idmapped mounts need Linux 5.12 and a filesystem that supports them: use --chown-copy".into(),
        },
        other => other,
    })?;
    Ok(tree)
}

/// open_tree(2) with OPEN_TREE_CLONE|AT_RECURSIVE: a detached copy of the
/// mount tree at `path`, attached nowhere until move_mount(2).
pub fn open_tree_clone(path: &std::ffi::CStr) -> nix::Result<std::os::fd::OwnedFd> {
    use std::os::fd::{FromRawFd, OwnedFd};
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    let flags =
        OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | libc::AT_RECURSIVE as libc::c_uint;
    // SAFETY: open_tree takes a dirfd, a NUL-terminated path and flags.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) };
    // SAFETY: a descriptor open_tree just returned, ours alone.
    nix::errno::Errno::result(fd).map(|fd| unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// mount_setattr(2) on every mount of a detached tree: `set` is
/// MOUNT_ATTR_* bits; with `userns`, MOUNT_ATTR_IDMAP's user namespace.
pub fn set_mount_attributes(
    tree: &std::os::fd::OwnedFd,
    set: u64,
    userns: Option<&std::fs::File>,
) -> nix::Result<()> {
    use std::os::fd::AsRawFd;
    let attr = MountAttr {
        attr_set: set,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.map_or(0, |file| file.as_raw_fd() as u64),
    };
    // SAFETY: the attr struct is the kernel's layout and outlives the call.
    let result = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            (libc::AT_EMPTY_PATH | libc::AT_RECURSIVE) as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    nix::errno::Errno::result(result).map(drop)
}

/// Where the idmapped rootfs is attached: `/run/container-lab/rootfs-PID`,
/// an empty directory of the host's root, open to everyone (0755), removed
/// when dropped. Once inside its user namespace the child reaches its root
/// by path, as the container's root, an unprivileged uid on the host, and
/// every directory on the way must let that uid through. The rootfs the
/// user named may lie under a home directory of mode 0700 or a `mktemp -d`
/// directory; the runtime, as the host's root, opens it there, and the
/// child finds it here.
pub struct RootfsMountPoint {
    pub path: PathBuf,
}

impl RootfsMountPoint {
    pub fn make() -> Result<RootfsMountPoint, LabError> {
        let path =
            Path::new(crate::runtime::RUN_DIR).join(format!("rootfs-{}", std::process::id()));
        std::fs::create_dir_all(crate::runtime::RUN_DIR)
            .map_err(|e| LabError::io("mkdir", crate::runtime::RUN_DIR, e))?;
        // One left by a killed runtime whose pid this one reuses.
        let _ = std::fs::remove_dir(&path);
        std::fs::create_dir(&path).map_err(|e| LabError::io("mkdir", path.display(), e))?;
        use std::os::unix::fs::PermissionsExt;
        for dir in [Path::new(crate::runtime::RUN_DIR), &path] {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
                .map_err(|e| LabError::io("chmod", dir.display(), e))?;
        }
        Ok(RootfsMountPoint { path })
    }
}

impl Drop for RootfsMountPoint {
    fn drop(&mut self) {
        // Only the child's mount namespace had the rootfs mounted here.
        let _ = std::fs::remove_dir(&self.path);
    }
}

/// From outside: attach the idmapped tree over the rootfs's path in the
/// child's mount namespace (move_mount(2)), from a short-lived thread that
/// joins that namespace (setns(2)), so that the runtime's own stays as it
/// is. The child made that namespace before its user namespace, as the
/// host's root; the container's own mount namespace, made next inside the
/// user namespace, is a copy of it, and the kernel locks the flags of every
/// mount it copies into a less privileged namespace (mount_namespaces(7)):
/// root inside cannot remount the rootfs writable or without `nodev`.
pub fn attach_rootfs(
    narrator: &Narrator,
    child: nix::unistd::Pid,
    tree: std::os::fd::OwnedFd,
    target: &Path,
) -> Result<(), LabError> {
    use std::os::unix::ffi::OsStrExt;
    // setns resets the working directory: the path must not be relative.
    let absolute =
        std::fs::canonicalize(target).map_err(|e| LabError::io("realpath", target.display(), e))?;
    let path = std::ffi::CString::new(absolute.as_os_str().as_bytes()).expect("paths have no NUL");
    let namespace = format!("/proc/{child}/ns/mnt");
    let args = format!(
        "tree, \"\", AT_FDCWD, {:?}, MOVE_MOUNT_F_EMPTY_PATH",
        target.display().to_string()
    );
    let why = format!(
        "from a thread that joined the child's mount namespace (setns {namespace:?}): the idmapped rootfs in place, where the container's mount namespace will be copied from, flags locked"
    );
    narrator.run(
        Step {
            syscall: "move_mount",
            args: &args,
            why: &why,
            man: "move_mount(2)",
        },
        || in_mount_namespace_of(child, || move_mount_to(&tree, &path)),
    )
}

/// Attach a detached mount (from open_tree(2) or fsmount(2)) at `target`.
pub fn move_mount_to(tree: &std::os::fd::OwnedFd, target: &std::ffi::CStr) -> nix::Result<()> {
    use std::os::fd::AsRawFd;
    const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
    // SAFETY: move_mount takes two dirfd/path pairs and flags.
    let result = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    nix::errno::Errno::result(result).map(drop)
}

/// Run `work` on a short-lived thread that joined the child's mount
/// namespace (setns(2)), so that the runtime's own stays as it is and no
/// process is forked for it. setns(2) into a mount namespace needs a
/// thread that shares no filesystem attributes (root, cwd) with others:
/// the thread unshares them first.
pub fn in_mount_namespace_of<T: Send>(
    child: nix::unistd::Pid,
    work: impl FnOnce() -> nix::Result<T> + Send,
) -> nix::Result<T> {
    let namespace = format!("/proc/{child}/ns/mnt");
    let mount_ns = std::fs::File::open(&namespace)
        .map_err(|e| nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_FS)?;
                nix::sched::setns(&mount_ns, nix::sched::CloneFlags::CLONE_NEWNS)?;
                work()
            })
            .join()
            .unwrap_or(Err(nix::errno::Errno::EIO))
    })
}
// ANCHOR_END: idmapped_root

/// Inside, once the maps are written: become the namespace's root. Its
/// capabilities hold only over what the namespace owns.
pub fn become_root(narrator: &Narrator) -> Result<(), LabError> {
    // No supplementary group of whoever started the runtime follows it in.
    // (Refused after "deny" in /proc/PID/setgroups; there it cannot have
    // any that matter.)
    let args = "0, NULL";
    match narrator.run(
        Step {
            syscall: "setgroups",
            args,
            why: "no supplementary group of the host's comes along",
            man: "setgroups(2)",
        },
        || nix::unistd::setgroups(&[]),
    ) {
        Ok(())
        | Err(LabError::StepFailed {
            errno: nix::errno::Errno::EPERM,
            ..
        }) => {}
        Err(error) => return Err(error),
    }
    let runtime = nix::unistd::getppid();
    let root_gid = nix::unistd::Gid::from_raw(0);
    let root_uid = nix::unistd::Uid::from_raw(0);
    narrator.run(
        Step {
            syscall: "setresgid",
            args: "0, 0, 0",
            why: "group 0 inside, which is an unprivileged gid outside",
            man: "setresgid(2)",
        },
        || nix::unistd::setresgid(root_gid, root_gid, root_gid),
    )?;
    narrator.run(
        Step {
            syscall: "setresuid",
            args: "0, 0, 0",
            why: "root inside, which is an unprivileged uid outside",
            man: "setresuid(2)",
        },
        || nix::unistd::setresuid(root_uid, root_uid, root_uid),
    )?;
    // Changing the effective ids cleared the parent-death signal: without
    // it again, a SIGKILLed runtime would leave this container running
    // unwatched, its lease and port guard soon given to another. If the
    // runtime died meanwhile, follow it now.
    crate::runtime::fork::die_with_parent();
    if nix::unistd::getppid() != runtime {
        // SAFETY: leave at once, as the signal would have made us.
        unsafe { libc::_exit(crate::error::EXIT_RUNTIME_FAILURE) }
    }
    Ok(())
}

/// With --chown-copy: a copy of the rootfs owned by the host ids the
/// container's ids stand for, so that root inside owns its files (what
/// Docker's userns-remap does to its image layers), for kernels or
/// filesystems without idmapped mounts. Removed when dropped.
pub struct RemappedRootfs {
    pub path: PathBuf,
    /// The root-only directory the copy is made and chowned in.
    staging: PathBuf,
}

/// Where remapped copies live; `lab clean` removes those of dead runs
/// (`run-PID`, and `staging-PID` of a run killed while preparing one).
pub const REMAPPED_ROOT: &str = "/var/lib/container-lab/remapped";

impl RemappedRootfs {
    /// Copy `rootfs` and give the copy to the container's ids.
    ///
    /// The copy is made and chowned in `staging-PID`, a directory of the
    /// host's root with mode 0700, and moved to `run-PID` only when every
    /// owner is shifted. Until then no process of the container's host ids
    /// (which may already run: every root-run container of the same map
    /// has them, and the rootfs's own owners are host ids too) can even
    /// look up a path in the copy, so none can swap a directory for a
    /// symlink while root walks it: the race of CVE-2018-15664, in which
    /// `docker cp` followed a symlink a container exchanged in
    /// (renameat2(2) RENAME_EXCHANGE) between its check and its use. The
    /// walk itself works by file descriptor as well (`shift_ownership`),
    /// so that a staging directory someone reaches anyway still cannot
    /// lead it out of the copy.
    pub fn prepare(
        narrator: &Narrator,
        rootfs: &Path,
        uids: &[IdMap],
        gids: &[IdMap],
    ) -> Result<RemappedRootfs, LabError> {
        let root = Path::new(REMAPPED_ROOT);
        let copy = RemappedRootfs {
            path: root.join(format!("run-{}", std::process::id())),
            staging: root.join(format!("staging-{}", std::process::id())),
        };
        // Leftovers of a killed run that had our PID.
        let _ = std::fs::remove_dir_all(&copy.path);
        let _ = std::fs::remove_dir_all(&copy.staging);
        std::fs::create_dir_all(root).map_err(|e| LabError::io("mkdir", REMAPPED_ROOT, e))?;
        check_root_only(root)?;
        let staged = copy.staging.join("rootfs");
        let args = format!("{:?}, 0700", copy.staging.display().to_string());
        narrator.run(
            Step {
                syscall: "mkdir",
                args: &args,
                why: "only the host's root may enter it: the container's ids cannot reach the copy before it is finished",
                man: "mkdir(2)",
            },
            || make_staging(&copy.staging),
        )?;
        let args = format!("-a {} {}", rootfs.display(), staged.display());
        narrator.run_tool(
            Step {
                syscall: "cp",
                args: &args,
                why: "a copy of the rootfs for this container, to be given to its ids",
                man: "cp(1)",
            },
            || {
                let status = std::process::Command::new("cp")
                    .arg("-a")
                    .arg("--reflink=auto")
                    .arg(rootfs)
                    .arg(&staged)
                    .status()
                    .map_err(|e| LabError::ToolFailed {
                        command: format!("cp {args}"),
                        message: e.to_string(),
                    })?;
                if status.success() {
                    Ok(())
                } else {
                    Err(LabError::ToolFailed {
                        command: format!("cp {args}"),
                        message: format!("{status}"),
                    })
                }
            },
        )?;
        let shown = format!(
            "{:?}, uid+{}, gid+{}, each entry by its O_PATH|O_NOFOLLOW descriptor",
            staged.display().to_string(),
            uids[0].outside,
            gids[0].outside
        );
        narrator.run_tool(
            Step {
                syscall: "fchownat",
                args: &shown,
                why: "every file of the copy belongs to the host ids the container's ids stand for; no symlink can lead the walk out",
                man: "fchownat(2)",
            },
            || shift_ownership(&staged, uids, gids),
        )?;
        let args = format!(
            "{:?}, {:?}",
            staged.display().to_string(),
            copy.path.display().to_string()
        );
        narrator.run(
            Step {
                syscall: "rename",
                args: &args,
                why: "only the finished copy becomes reachable by the container's ids",
                man: "rename(2)",
            },
            || {
                nix::fcntl::renameat(
                    nix::fcntl::AT_FDCWD,
                    &staged,
                    nix::fcntl::AT_FDCWD,
                    &copy.path,
                )
            },
        )?;
        std::fs::remove_dir(&copy.staging)
            .map_err(|e| LabError::io("rmdir", copy.staging.display(), e))?;
        Ok(copy)
    }
}

/// A directory only the host's root may enter (mode 0700). mkdir(2) fails
/// if the name exists, so it is one we made, and the umask can only take
/// bits away from 0700.
fn make_staging(dir: &Path) -> nix::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(dir)
        .map_err(|e| crate::error::errno_of(&e))
}

/// Refuse a REMAPPED_ROOT that is a symlink, or that anyone but the host's
/// root owns or may write to: whoever could, could put a name of their own
/// where the staging directory goes, and the staging would protect nothing.
fn check_root_only(dir: &Path) -> Result<(), LabError> {
    use std::os::unix::fs::MetadataExt;
    let meta =
        std::fs::symlink_metadata(dir).map_err(|e| LabError::io("lstat", dir.display(), e))?;
    if meta.file_type().is_dir() && meta.uid() == 0 && meta.mode() & 0o022 == 0 {
        return Ok(());
    }
    Err(LabError::Refused {
        message: format!(
            "{} is not a directory that only the host's root may write to (owner {}, mode {:o})",
            dir.display(),
            meta.uid(),
            meta.mode() & 0o7777
        ),
        hint: format!(
            "another user could then race the copy of --chown-copy: check who made it, then sudo rm -r {0} (the runtime makes it again)",
            dir.display()
        ),
    })
}

impl Drop for RemappedRootfs {
    fn drop(&mut self) {
        // std's remove_dir_all works by descriptor and never follows a
        // symlink (CVE-2022-21658 fixed the race it once had), so what the
        // container left in its copy cannot point it at the host.
        let _ = std::fs::remove_dir_all(&self.path);
        let _ = std::fs::remove_dir_all(&self.staging);
    }
}

/// Give every entry of the tree at `dir`, `dir` included, the host ids its
/// owner stands for in the maps (65534 for an owner they do not cover).
///
/// By file descriptor, never by a path from the top. A walk that checks a
/// path (lstat) and then acts on the path (lchown, opendir) can be made to
/// act on something else in between: whoever can write to a directory of
/// the tree can exchange a subdirectory with a symlink to a host directory
/// (renameat2(2) RENAME_EXCHANGE), and every later path through it ends on
/// the host (the class of CVE-2018-15664). Here each entry is opened
/// relative to its parent's descriptor with O_PATH|O_NOFOLLOW, so a
/// symlink is opened as itself (open(2)), and everything after that
/// (fstat, fchownat with AT_EMPTY_PATH, opening a directory's "." to read
/// it) acts on that one inode, whatever its name now leads to.
pub fn shift_ownership(dir: &Path, uids: &[IdMap], gids: &[IdMap]) -> Result<(), LabError> {
    use nix::fcntl::{AT_FDCWD, OFlag};
    // O_NOFOLLOW holds for the last component only; the parents of `dir`
    // are the runtime's own (REMAPPED_ROOT, root's, checked).
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let top = nix::fcntl::openat(AT_FDCWD, dir, flags, nix::sys::stat::Mode::empty())
        .map_err(|errno| step_failed("open", dir, errno))?;
    shift_directory(top, dir, uids, gids)
}

fn step_failed(syscall: &'static str, path: &Path, errno: nix::errno::Errno) -> LabError {
    LabError::StepFailed {
        syscall,
        target: path.display().to_string(),
        errno,
    }
}

/// The host ids an entry owned by `stat`'s ids gets.
fn shifted(
    stat: &nix::sys::stat::FileStat,
    uids: &[IdMap],
    gids: &[IdMap],
) -> (nix::unistd::Uid, nix::unistd::Gid) {
    let map = |maps: &[IdMap], id: u32| maps.iter().find_map(|m| m.to_host(id)).unwrap_or(65534);
    (
        nix::unistd::Uid::from_raw(map(uids, stat.st_uid)),
        nix::unistd::Gid::from_raw(map(gids, stat.st_gid)),
    )
}

/// `dir` is an open directory (its name, `path`, is for errors only): its
/// entries first, then itself, so that a directory stays the host root's
/// until the walk is done with it.
fn shift_directory(
    dir: std::os::fd::OwnedFd,
    path: &Path,
    uids: &[IdMap],
    gids: &[IdMap],
) -> Result<(), LabError> {
    use nix::fcntl::{AtFlags, OFlag};
    use nix::sys::stat::{Mode, SFlag};
    // The names first, from a descriptor of our own for the same directory
    // (".", never followed anywhere), so that nothing is read while the
    // directory changes under the iterator.
    let listing = nix::fcntl::openat(
        &dir,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|errno| step_failed("openat", path, errno))?;
    let mut names = Vec::new();
    for entry in nix::dir::Dir::from_fd(listing)
        .map_err(|errno| step_failed("fdopendir", path, errno))?
        .iter()
    {
        let entry = entry.map_err(|errno| step_failed("getdents64", path, errno))?;
        let name = entry.file_name();
        if name != c"." && name != c".." {
            names.push(name.to_owned());
        }
    }
    for name in names {
        let entry_path = path
            .join(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(name.to_bytes()));
        let entry = nix::fcntl::openat(
            &dir,
            name.as_c_str(),
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|errno| step_failed("openat", &entry_path, errno))?;
        let stat = nix::sys::stat::fstat(&entry)
            .map_err(|errno| step_failed("fstat", &entry_path, errno))?;
        if SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR {
            // The same inode, readable: "." of it cannot be a symlink.
            let child = nix::fcntl::openat(
                &entry,
                ".",
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(|errno| step_failed("openat", &entry_path, errno))?;
            shift_directory(child, &entry_path, uids, gids)?;
        } else {
            // Files, symlinks, device nodes, fifos, sockets: the O_PATH
            // descriptor itself is chowned (AT_EMPTY_PATH), with nothing
            // left to resolve or follow.
            let (uid, gid) = shifted(&stat, uids, gids);
            nix::unistd::fchownat(
                &entry,
                "",
                Some(uid),
                Some(gid),
                AtFlags::AT_EMPTY_PATH | AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(|errno| step_failed("fchownat", &entry_path, errno))?;
        }
    }
    let stat = nix::sys::stat::fstat(&dir).map_err(|errno| step_failed("fstat", path, errno))?;
    let (uid, gid) = shifted(&stat, uids, gids);
    nix::unistd::fchown(&dir, Some(uid), Some(gid))
        .map_err(|errno| step_failed("fchown", path, errno))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether this test can run: as root it can, and `cargo test` runs as
    /// root; without root it must fail loudly unless root tests are
    /// skipped on purpose (CONTAINER_LAB_SKIP_ROOT_TESTS=1). lchown to other
    /// ids needs root.
    fn running_as_root() -> bool {
        if nix::unistd::geteuid().is_root() {
            return true;
        }
        assert_eq!(
            std::env::var("CONTAINER_LAB_SKIP_ROOT_TESTS").as_deref(),
            Ok("1"),
            "this test needs root"
        );
        false
    }

    #[test]
    fn id_maps_parse_and_map() {
        let map: IdMap = "0:1879048192:65536".parse().unwrap();
        assert_eq!(map, ROOT_DEFAULT);
        assert_eq!(map.to_host(0), Some(1879048192));
        assert_eq!(map.to_host(65535), Some(1879113727));
        assert_eq!(map.to_host(65536), None);
        assert_eq!(map.to_container(1879113727), Some(65535));
        assert_eq!(map.to_container(1879048191), None);
        assert_eq!(map.to_string(), "0 1879048192 65536");
        for bad in ["0:100000", "a:b:c", "0:0:0", "0:4294967295:2"] {
            assert!(bad.parse::<IdMap>().is_err(), "{bad}");
        }
    }

    #[test]
    fn subordinate_ranges_by_name_or_number() {
        let file = "alice:100000:65536\n1001:300000:1000\n";
        assert_eq!(
            subordinate_range(file, "alice", 1000),
            Some((100000, 65536))
        );
        assert_eq!(subordinate_range(file, "bob", 1001), Some((300000, 1000)));
        assert_eq!(subordinate_range(file, "carol", 1002), None);
    }

    #[test]
    fn malformed_subordinate_lines_grant_nothing() {
        let file = "\n  \nalice:100000:65536\nbob:200000\ncarol:x:65536\ndave:300000:0\n\
                    eve:400000:65536:extra\n:500000:65536\n-1:600000:1\n  1002:700000:10  \n\
                    frank:4294967295:2\n";
        let ranges = subordinate_ranges(file);
        let shown: Vec<String> = ranges.iter().map(|r| r.to_string()).collect();
        assert_eq!(
            shown,
            [
                "alice:100000:65536",
                "-1:600000:1",
                "1002:700000:10",
                "frank:4294967295:2"
            ]
        );
        // A line past the largest id still claims what it names.
        assert!(ranges[3].overlaps(u32::MAX, 1));
    }

    #[test]
    fn the_default_range_avoids_every_subordinate_line() {
        let claimed = |text: &str| subordinate_ranges(text);
        // Nothing listed, or only useradd's usual ranges: the fixed base.
        assert_eq!(root_default(&[]), Some(ROOT_DEFAULT));
        let debian = "alice:100000:65536\nbob:165536:65536\n1003:231072:65536\n";
        assert_eq!(root_default(&claimed(debian)), Some(ROOT_DEFAULT));
        // A line that reaches into the base by one id pushes the default to
        // the next 65536-aligned block after it, and so on past a second one.
        let clash = "lxd:1000000:1878048193\nroot:1879113728:70000\n";
        let chosen = root_default(&claimed(clash)).unwrap();
        assert_eq!(chosen.outside, 0x7000_0000 + 3 * 65536);
        assert!(
            claimed(clash)
                .iter()
                .all(|r| !r.overlaps(chosen.outside, chosen.count))
        );
        // Everything from the base on is taken: no default.
        assert_eq!(root_default(&claimed("all:1879048192:2415919104\n")), None);
        // The last block that ends at 4294967295 (not an id) is not used.
        let tail = format!("all:1879048192:{}\n", 4294901760u64 - 1879048192);
        assert_eq!(root_default(&claimed(&tail)), None);
        let tail = format!("all:1879048192:{}\n", 4294836224u64 - 1879048192);
        assert_eq!(root_default(&claimed(&tail)).unwrap().outside, 4294836224);
    }

    #[test]
    fn a_map_onto_another_users_range_is_found() {
        let ranges =
            subordinate_ranges("alice:100000:65536\n1001:165536:65536\nroot:1000000:65536\n");
        let map = |text: &str| text.parse::<IdMap>().unwrap();
        let found = |m: &str, user: &str, uid: u32| {
            claimed_by_another(&map(m), &ranges, user, uid).map(|r| r.owner.clone())
        };
        assert_eq!(found("0:100000:65536", "root", 0).as_deref(), Some("alice"));
        // One id into a range is enough; one past its end is not.
        assert_eq!(found("0:165535:1", "root", 0).as_deref(), Some("alice"));
        assert_eq!(found("0:90000:10001", "root", 0).as_deref(), Some("alice"));
        assert_eq!(found("0:90000:10000", "root", 0), None);
        // By number, as newuidmap reads it.
        assert_eq!(found("0:200000:10", "root", 0).as_deref(), Some("1001"));
        // A user's own range is its own to use.
        assert_eq!(found("0:100000:65536", "alice", 1000), None);
        assert_eq!(found("0:200000:10", "bob", 1001), None);
        assert_eq!(found("0:1000000:65536", "root", 0), None);
        assert_eq!(found("0:1879048192:65536", "root", 0), None);
    }

    #[test]
    fn rootless_maps_put_root_on_the_user() {
        assert_eq!(
            rootless_maps(1000, None),
            vec![IdMap {
                inside: 0,
                outside: 1000,
                count: 1
            }]
        );
        assert_eq!(rootless_maps(1000, Some((100000, 65536))).len(), 2);
    }

    /// A directory for one test, removed when dropped, also when the test
    /// fails (std's remove_dir_all does not follow symlinks: CVE-2022-21658).
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            let dir = std::env::temp_dir().join(format!("lab-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// The attacker of the review: a thread that, until dropped, swaps a
    /// directory of the tree with a symlink to a directory outside it,
    /// atomically, with renameat2(2) RENAME_EXCHANGE (what a process running
    /// as the mapped uid could do to a copy whose directories it owns).
    struct Racer {
        stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
        swaps: std::sync::Arc<std::sync::atomic::AtomicU64>,
        thread: Option<std::thread::JoinHandle<()>>,
    }

    impl Racer {
        fn start(dir: PathBuf, link: PathBuf) -> Racer {
            use std::sync::atomic::Ordering;
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let swaps = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
            let (stop2, swaps2) = (stop.clone(), swaps.clone());
            let thread = std::thread::spawn(move || {
                while !stop2.load(Ordering::Relaxed) {
                    let swapped = nix::fcntl::renameat2(
                        nix::fcntl::AT_FDCWD,
                        &dir,
                        nix::fcntl::AT_FDCWD,
                        &link,
                        nix::fcntl::RenameFlags::RENAME_EXCHANGE,
                    );
                    if swapped.is_ok() {
                        swaps2.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
            Racer {
                stop,
                swaps,
                thread: Some(thread),
            }
        }

        fn swaps(&self) -> u64 {
            self.swaps.load(std::sync::atomic::Ordering::Relaxed)
        }
    }

    impl Drop for Racer {
        fn drop(&mut self) {
            self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        }
    }

    /// The review's attack, for real: while the walk runs, a directory of
    /// the tree keeps trading places with a symlink to a root-owned
    /// directory outside it. Nothing outside may change owner. (Against
    /// the old path-based walk, the first few walks already gave the
    /// outside files to the mapped uid.)
    #[test]
    fn ownership_shift_survives_a_symlink_exchange_race() {
        if !running_as_root() {
            return;
        }
        use std::os::unix::fs::MetadataExt;
        let scratch = TempDir::new("userns-race");
        let (outside, tree) = (scratch.0.join("outside"), scratch.0.join("tree"));
        // The same names inside and out, so that a path through the
        // swapped symlink always lands on a host file.
        for dir in [outside.join("d"), tree.join("a/d")] {
            std::fs::create_dir_all(dir).unwrap();
        }
        for n in 0..200 {
            std::fs::write(outside.join(format!("f{n:03}")), "host").unwrap();
            std::fs::write(tree.join(format!("a/f{n:03}")), "copy").unwrap();
        }
        std::os::unix::fs::symlink(&outside, tree.join("swap")).unwrap();
        let owners = |dir: &Path| -> Vec<(PathBuf, u32, u32)> {
            let mut found = Vec::new();
            let mut todo = vec![dir.to_path_buf()];
            while let Some(path) = todo.pop() {
                let meta = std::fs::symlink_metadata(&path).unwrap();
                if meta.is_dir() {
                    todo.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
                }
                found.push((path, meta.uid(), meta.gid()));
            }
            found
        };
        let before = owners(&outside);
        assert!(before.iter().all(|(_, uid, gid)| (*uid, *gid) == (0, 0)));
        let map = IdMap {
            inside: 0,
            outside: 1_879_048_192,
            count: 65536,
        };
        let racer = Racer::start(tree.join("a"), tree.join("swap"));
        let mut refused = 0;
        for _ in 0..300 {
            // Refusing to go on is a fine answer to an attack; following it is not.
            if shift_ownership(&tree, &[map], &[map]).is_err() {
                refused += 1;
            }
        }
        let swaps = racer.swaps();
        drop(racer);
        let changed: Vec<_> = owners(&outside)
            .into_iter()
            .filter(|(_, uid, gid)| (*uid, *gid) != (0, 0))
            .collect();
        assert!(
            swaps > 100,
            "the racer swapped only {swaps} times: no race was run"
        );
        assert!(
            changed.is_empty(),
            "{} of {} host files outside the tree changed owner ({refused} walks refused), such as {:?}",
            changed.len(),
            before.len(),
            changed.first()
        );
    }

    #[test]
    fn ownership_shifts_in_a_temp_dir() {
        if !running_as_root() {
            return;
        }
        use std::os::unix::fs::MetadataExt;
        let scratch = TempDir::new("userns-shift");
        let (dir, host) = (scratch.0.join("tree"), scratch.0.join("host-file"));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("sub/file"), "x").unwrap();
        std::fs::write(&host, "host").unwrap();
        std::os::unix::fs::symlink("file", dir.join("sub/link")).unwrap();
        // A link out of the tree is changed as a link: its target is not.
        std::os::unix::fs::symlink(&host, dir.join("sub/out")).unwrap();
        nix::unistd::mkfifo(&dir.join("sub/fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let map = IdMap {
            inside: 0,
            outside: 1_879_048_192,
            count: 65536,
        };
        shift_ownership(&dir, &[map], &[map]).unwrap();
        for name in ["", "sub", "sub/file", "sub/link", "sub/out", "sub/fifo"] {
            let meta = std::fs::symlink_metadata(dir.join(name)).unwrap();
            assert_eq!(
                (meta.uid(), meta.gid()),
                (1_879_048_192, 1_879_048_192),
                "{name}"
            );
        }
        let meta = std::fs::metadata(&host).unwrap();
        assert_eq!(
            (meta.uid(), meta.gid()),
            (0, 0),
            "the link's target changed owner"
        );
        // The top is opened with O_NOFOLLOW too: a symlink is refused with
        // the step, the path and the errno.
        let error = shift_ownership(&dir.join("sub/out"), &[map], &[map]).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "open {}: not a directory (ENOTDIR)",
                dir.join("sub/out").display()
            )
        );
    }

    /// The copy of --chown-copy is made in a directory that a process of
    /// the container's host ids cannot enter, so it cannot race the walk.
    #[test]
    fn staging_is_closed_to_the_mapped_ids() {
        if !running_as_root() {
            return;
        }
        use std::os::unix::process::CommandExt;
        let scratch = TempDir::new("userns-staging");
        let staging = scratch.0.join("staging");
        make_staging(&staging).unwrap();
        std::fs::create_dir(staging.join("rootfs")).unwrap();
        // Made by root, as the copy is, and given to the mapped root, as
        // the walk does: only the staging directory keeps it out of reach.
        nix::unistd::chown(
            &staging.join("rootfs"),
            Some(nix::unistd::Uid::from_raw(1_879_048_192)),
            Some(nix::unistd::Gid::from_raw(1_879_048_192)),
        )
        .unwrap();
        let output = std::process::Command::new("stat")
            .arg(staging.join("rootfs"))
            .uid(1_879_048_192)
            .gid(1_879_048_192)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success(),
            "the mapped root reached the staged copy"
        );
        assert!(err.contains("Permission denied"), "{err}");
        // And the same process may enter the copy once it is moved out.
        std::fs::rename(staging.join("rootfs"), scratch.0.join("run")).unwrap();
        let output = std::process::Command::new("stat")
            .arg(scratch.0.join("run"))
            .uid(1_879_048_192)
            .gid(1_879_048_192)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
