//! User namespaces: root inside, an unprivileged user outside
//! (user_namespaces(7), complete in Linux 3.8, 2013).
//!
//! The child makes the namespace; only its parent, outside, can write the
//! maps that say which host ids the namespace's ids stand for. Until then
//! the child is "nobody" inside. As root the runtime maps the container's
//! ids onto an unused range (0 -> 100000 by default); run by an ordinary
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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
                "{text}: expected CONTAINER_ID:HOST_ID:COUNT, as in 0:100000:65536"
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
    /// The host id that container id `id` stands for, if it is mapped.
    pub fn to_host(&self, id: u32) -> Option<u32> {
        (id >= self.inside && id - self.inside < self.count)
            .then(|| self.outside + (id - self.inside))
    }
}

/// The default range for root: 65536 ids from 100000 (the first range
/// useradd(8) hands out in /etc/subuid on many systems: pick another with
/// --uid-map if a user already has it).
pub const ROOT_DEFAULT: IdMap = IdMap {
    inside: 0,
    outside: 100000,
    count: 65536,
};

/// The first `name:start:count` line of /etc/subuid or /etc/subgid for
/// `user` (by name or by number).
pub fn subordinate_range(file: &str, user: &str, id: u32) -> Option<(u32, u32)> {
    file.lines().find_map(|line| {
        let mut fields = line.trim().split(':');
        let (owner, start, count) = (fields.next()?, fields.next()?, fields.next()?);
        (owner == user || owner == id.to_string()).then_some(())?;
        Some((start.parse().ok()?, count.parse().ok()?))
    })
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
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::ffi::OsStrExt;
    let userns_path = format!("/proc/{child}/ns/user");
    let userns =
        std::fs::File::open(&userns_path).map_err(|e| LabError::io("open", &userns_path, e))?;
    let path = std::ffi::CString::new(rootfs.as_os_str().as_bytes()).expect("paths have no NUL");
    const OPEN_TREE_CLONE: libc::c_uint = 1;
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
        || {
            let flags = OPEN_TREE_CLONE
                | libc::O_CLOEXEC as libc::c_uint
                | libc::AT_RECURSIVE as libc::c_uint;
            // SAFETY: open_tree takes a dirfd, a NUL-terminated path and flags.
            let fd =
                unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) };
            if fd < 0 {
                Err(nix::errno::Errno::last())
            } else {
                Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
            }
        },
    )?;
    const MOUNT_ATTR_RDONLY: u64 = 0x1;
    const MOUNT_ATTR_NODEV: u64 = 0x4;
    const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
    // nodev: through the id map a node the host's root left in the rootfs
    // looks like the container root's own; it must not open a host device.
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP | MOUNT_ATTR_RDONLY | MOUNT_ATTR_NODEV,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    let shown = format!(
        "tree, \"\", AT_EMPTY_PATH|AT_RECURSIVE, {{MOUNT_ATTR_IDMAP|MOUNT_ATTR_RDONLY|MOUNT_ATTR_NODEV, userns of {child}}}"
    );
    narrator.run(
        Step { syscall: "mount_setattr", args: &shown, why: "ownership through the container's id maps: host root's files are the container root's", man: "mount_setattr(2)" },
        || {
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
            if result < 0 { Err(nix::errno::Errno::last()) } else { Ok(()) }
        },
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

/// Inside, in the container's own mount namespace: attach the idmapped
/// tree over the rootfs's path (move_mount(2)).
pub fn attach_rootfs(
    narrator: &Narrator,
    tree: std::os::fd::OwnedFd,
    target: &Path,
) -> Result<(), LabError> {
    use std::os::fd::AsRawFd;
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(target.as_os_str().as_bytes()).expect("paths have no NUL");
    let args = format!(
        "tree, \"\", AT_FDCWD, {:?}, MOVE_MOUNT_F_EMPTY_PATH",
        target.display().to_string()
    );
    narrator.run(
        Step {
            syscall: "move_mount",
            args: &args,
            why: "the idmapped rootfs in place, in this mount namespace only",
            man: "move_mount(2)",
        },
        || {
            const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
            // SAFETY: move_mount takes two dirfd/path pairs and flags.
            let result = unsafe {
                libc::syscall(
                    libc::SYS_move_mount,
                    tree.as_raw_fd(),
                    c"".as_ptr(),
                    libc::AT_FDCWD,
                    path.as_ptr(),
                    MOVE_MOUNT_F_EMPTY_PATH,
                )
            };
            if result < 0 {
                Err(nix::errno::Errno::last())
            } else {
                Ok(())
            }
        },
    )
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
    )
}

/// With --chown-copy: a copy of the rootfs owned by the host ids the
/// container's ids stand for, so that root inside owns its files (what
/// Docker's userns-remap does to its image layers), for kernels or
/// filesystems without idmapped mounts. Removed when dropped.
pub struct RemappedRootfs {
    pub path: PathBuf,
}

/// Where remapped copies live; `lab clean` removes those of dead runs.
pub const REMAPPED_ROOT: &str = "/var/lib/container-lab/remapped";

impl RemappedRootfs {
    pub fn prepare(
        narrator: &Narrator,
        rootfs: &Path,
        uids: &[IdMap],
        gids: &[IdMap],
    ) -> Result<RemappedRootfs, LabError> {
        let path = Path::new(REMAPPED_ROOT).join(format!("run-{}", std::process::id()));
        let copy = RemappedRootfs { path };
        let _ = std::fs::remove_dir_all(&copy.path);
        std::fs::create_dir_all(REMAPPED_ROOT)
            .map_err(|e| LabError::io("mkdir", REMAPPED_ROOT, e))?;
        let args = format!("-a {} {}", rootfs.display(), copy.path.display());
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
                    .arg(&copy.path)
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
            "{:?}, uid+{}, gid+{}",
            copy.path.display().to_string(),
            uids[0].outside,
            gids[0].outside
        );
        narrator.run(
            Step {
                syscall: "lchown",
                args: &shown,
                why: "every file of the copy belongs to the host ids the container's ids stand for",
                man: "lchown(2)",
            },
            || shift_ownership(&copy.path, uids, gids),
        )?;
        Ok(copy)
    }
}

impl Drop for RemappedRootfs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// lchown every entry under `dir` from its id to the host id it maps to.
pub fn shift_ownership(dir: &Path, uids: &[IdMap], gids: &[IdMap]) -> nix::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let map = |maps: &[IdMap], id: u32| maps.iter().find_map(|m| m.to_host(id)).unwrap_or(65534);
    let meta = std::fs::symlink_metadata(dir).map_err(|e| crate::error::errno_of(&e))?;
    nix::unistd::fchownat(
        nix::fcntl::AT_FDCWD,
        dir,
        Some(nix::unistd::Uid::from_raw(map(uids, meta.uid()))),
        Some(nix::unistd::Gid::from_raw(map(gids, meta.gid()))),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )?;
    if meta.is_dir() {
        let entries = std::fs::read_dir(dir).map_err(|e| crate::error::errno_of(&e))?;
        for entry in entries.flatten() {
            shift_ownership(&entry.path(), uids, gids)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_maps_parse_and_map() {
        let map: IdMap = "0:100000:65536".parse().unwrap();
        assert_eq!(map, ROOT_DEFAULT);
        assert_eq!(map.to_host(0), Some(100000));
        assert_eq!(map.to_host(65535), Some(165535));
        assert_eq!(map.to_host(65536), None);
        assert_eq!(map.to_string(), "0 100000 65536");
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

    #[test]
    fn ownership_shifts_in_a_temp_dir() {
        if !nix::unistd::geteuid().is_root() {
            // lchown to other ids needs root; `cargo test` runs as root.
            assert_eq!(
                std::env::var("CONTAINER_LAB_SKIP_ROOT_TESTS").as_deref(),
                Ok("1"),
                "this test needs root"
            );
            return;
        }
        use std::os::unix::fs::MetadataExt;
        let dir = std::env::temp_dir().join(format!("lab-userns-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("sub/file"), "x").unwrap();
        std::os::unix::fs::symlink("file", dir.join("sub/link")).unwrap();
        shift_ownership(&dir, &[ROOT_DEFAULT], &[ROOT_DEFAULT]).unwrap();
        for path in [dir.clone(), dir.join("sub/file"), dir.join("sub/link")] {
            let meta = std::fs::symlink_metadata(&path).unwrap();
            assert_eq!(
                (meta.uid(), meta.gid()),
                (100000, 100000),
                "{}",
                path.display()
            );
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
