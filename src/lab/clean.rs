//! `lab clean`: find and remove what interrupted lab runs left behind.
//!
//! A run cleans up after itself on success, on error and on Ctrl-C; only a
//! SIGKILL (or a crash of the machine) can leave things behind. Everything
//! the lab creates carries a name it can recognise, and `lab clean` removes
//! only things with those names, and only when the run that made them is
//! gone.

use crate::hostinfo::read_mountinfo;
use crate::runtime::nftables::{self, Family};
use nix::mount::{MntFlags, umount2};
use std::path::{Path, PathBuf};

/// Name prefix of the probe's scratch directories and mount points.
pub const PROBE_PREFIX: &str = ".lab-probe-";
/// The breakout's trapdoor directory, left if it is killed mid-escape.
pub const BREAKOUT_DIR: &str = ".lab-breakout";

/// One thing a lab run left behind.
#[derive(Debug, PartialEq, Eq)]
pub enum Leftover {
    /// A mount of the probe's, or the /proc of a ch02 runtime that died.
    Mount(PathBuf),
    /// A loop device the tour attached, and its backing file.
    LoopDevice(u64, PathBuf),
    /// A tour's bait directory under /run/container-lab.
    BaitDir(PathBuf),
    /// A scratch directory of the probe or the breakout inside a rootfs, or
    /// the empty mount point a ch05 runtime made for its idmapped rootfs.
    ScratchDir(PathBuf),
    /// An nftables table (family, name) of a ch04 container whose runtime
    /// died: its published ports (`ip`) or its port guard (`bridge`).
    NftTable(Family, String),
    /// The host end of a dead ch04 container's veth pair.
    Link(String),
    /// A lease, port claim or /etc copy of a dead ch04 container.
    NetState(PathBuf),
    /// A cgroup ch06 made for a run that died.
    Cgroup(PathBuf),
    /// A rootfs copy ch05 made for a run that died.
    RemappedCopy(PathBuf),
    /// A lab bridge no running container uses (it stays between runs).
    Bridge(String, PathBuf),
    /// A pasta (pid, pid file) a ch05 runtime started and died without
    /// stopping: it would serve the dead container's network namespace,
    /// and keep it alive, for ever.
    Pasta(i32, PathBuf),
    /// The state of a ch07 container whose monitor was killed (`ps` says
    /// Dead): nothing will ever record its end.
    ContainerState(PathBuf),
    /// What a dead ch08 run left in the image store: a layer half unpacked,
    /// a blob half written, the writable layer of a container that is gone.
    ImageScratch(PathBuf),
    /// The empty mount points (`layers-PID/N`) a dead ch08 runtime made for
    /// an image's layers.
    LayerPoints(PathBuf),
    /// A file a dead tour planted in or beside a rootfs (a device node, a
    /// file for its handle) or its stand-in's copy of /etc/subuid.
    TourFile(PathBuf),
    /// A key a dead tour added to root's keyring (serial, description).
    TourKey(i64, String),
    /// kernel.ctrl-alt-del as a killed tour left it, and the machine's
    /// own value, which the tour kept in its lock file.
    CtrlAltDel(String),
    /// The image store of a killed `lab anatomy` (`anatomy-PID`), and the
    /// container of the same name it was still running.
    AnatomySpecimen(PathBuf),
}

impl std::fmt::Display for Leftover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Leftover::Mount(path) => write!(f, "mount {}", path.display()),
            Leftover::LoopDevice(n, backing) => {
                write!(f, "loop device /dev/loop{n} ({})", backing.display())
            }
            Leftover::BaitDir(path) => write!(f, "bait directory {}", path.display()),
            Leftover::ScratchDir(path) => write!(f, "scratch directory {}", path.display()),
            Leftover::NftTable(family, name) => {
                write!(f, "nftables table {} {name}", family.nft_name())
            }
            Leftover::Link(name) => write!(f, "network interface {name}"),
            Leftover::NetState(path) => write!(f, "network state {}", path.display()),
            Leftover::Bridge(name, _) => write!(f, "bridge {name} with its NAT table"),
            Leftover::RemappedCopy(path) => write!(f, "remapped rootfs copy {}", path.display()),
            Leftover::Cgroup(path) => write!(f, "cgroup {}", path.display()),
            Leftover::TourFile(path) => write!(f, "tour bait file {}", path.display()),
            Leftover::TourKey(serial, description) => {
                write!(f, "tour key {description} ({serial:08x})")
            }
            Leftover::CtrlAltDel(value) => {
                write!(
                    f,
                    "kernel.ctrl-alt-del as a tour left it (the machine had {value})"
                )
            }
            Leftover::ImageScratch(path) => write!(f, "image store leftover {}", path.display()),
            Leftover::LayerPoints(path) => write!(f, "layer mount points {}", path.display()),
            Leftover::ContainerState(path) => {
                write!(f, "state of dead container {}", path.display())
            }
            Leftover::Pasta(pid, file) => write!(f, "pasta process {pid} ({})", file.display()),
            Leftover::AnatomySpecimen(store) => write!(
                f,
                "lab anatomy's container and image store {}",
                store.display()
            ),
        }
    }
}

/// The pid in a tour's bait directory name (`tour-PID-chNN`).
fn tour_pid(name: &str) -> Option<i32> {
    name.strip_prefix("tour-")?.split('-').next()?.parse().ok()
}

fn is_block_device(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_block_device())
}

fn is_running(pid: i32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

/// Everything to remove, in the order it must go: mounts before the
/// directories under them, loop devices before their backing files.
pub fn find(rootfs_dirs: &[PathBuf], bait_root: &Path) -> Vec<Leftover> {
    let mut found = Vec::new();
    let is_ours = |path: &Path| {
        path.file_name()
            .map(|n| n.to_string_lossy().starts_with(PROBE_PREFIX))
            .unwrap_or(false)
    };
    // The probe's mount points, and the /proc of a ch02 runtime that died.
    let dead_runtime_proc = |source: &str| {
        source
            .strip_prefix(crate::runtime::mounts::HOST_PROC_SOURCE_PREFIX)
            .and_then(|pid| pid.parse().ok())
            .is_some_and(|pid| !is_running(pid))
    };
    let mut mounts: Vec<PathBuf> = read_mountinfo()
        .unwrap_or_default()
        .into_iter()
        .filter(|m| is_ours(&m.mount_point) || dead_runtime_proc(&m.source))
        .map(|m| m.mount_point)
        .collect();
    // Deepest first, so nested mounts come off before their parents.
    mounts.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found.extend(mounts.into_iter().map(Leftover::Mount));

    let dead_bait = |path: &Path| {
        path.strip_prefix(bait_root)
            .ok()
            .and_then(|rest| rest.components().next())
            .and_then(|first| {
                let name = first.as_os_str().to_string_lossy();
                tour_pid(&name).filter(|pid| !is_running(*pid))
            })
    };
    for (number, backing) in crate::lab::loopdev::attached() {
        if dead_bait(&backing).is_some() {
            found.push(Leftover::LoopDevice(number, backing));
        }
    }
    if let Ok(entries) = std::fs::read_dir(bait_root) {
        for entry in entries.flatten() {
            if dead_bait(&entry.path()).is_some() {
                found.push(Leftover::BaitDir(entry.path()));
            }
        }
    }
    find_network(&mut found);
    found.extend(find_pastas(Path::new("/proc")));
    // ch07's containers whose monitor died (root's store only).
    let store = crate::runtime::state::Store {
        root: Path::new(crate::runtime::RUN_DIR).join("containers"),
    };
    {
        for record in store.list() {
            if crate::runtime::lifecycle::observe(&record)
                == crate::runtime::lifecycle::Observed::Dead
            {
                found.push(Leftover::ContainerState(store.dir(&record.id)));
            }
        }
    }
    // ch06's cgroups of runs that died (named container-lab-PID, found in
    // every hierarchy, a few levels below the runtime's own).
    find_cgroups(Path::new("/sys/fs/cgroup"), 5, &mut found);
    // ch05's remapped rootfs copies of runs that died, finished (run-PID)
    // or still in their root-only staging directory (staging-PID).
    for entry in std::fs::read_dir(crate::runtime::userns::REMAPPED_ROOT)
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = pid_suffix(&name, "run-").or_else(|| pid_suffix(&name, "staging-"));
        if pid.is_some_and(|pid| !is_running(pid)) {
            found.push(Leftover::RemappedCopy(entry.path()));
        }
    }
    // ch05/ch06's empty mount points for the idmapped rootfs (rootfs-PID).
    for entry in std::fs::read_dir(crate::runtime::RUN_DIR)
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if pid_suffix(&name, "rootfs-").is_some_and(|pid| !is_running(pid)) {
            found.push(Leftover::ScratchDir(entry.path()));
        }
        if pid_suffix(&name, "layers-").is_some_and(|pid| !is_running(pid)) {
            found.push(Leftover::LayerPoints(entry.path()));
        }
        if pid_suffix(&name, "anatomy-").is_some_and(|pid| !is_running(pid)) {
            found.push(Leftover::AnatomySpecimen(entry.path()));
        }
    }
    // ch08's image store (root's): what writers that died left, and the
    // writable layers of containers whose state is gone (a reboot empties
    // /run, not /var/lib).
    if Path::new(crate::image::store::ROOT_STORE).is_dir()
        && let Ok(images) =
            crate::image::store::ImageStore::at(Path::new(crate::image::store::ROOT_STORE))
    {
        let containers: Vec<String> = store.list().into_iter().map(|record| record.id).collect();
        found.extend(
            images
                .leftovers(&containers)
                .into_iter()
                .map(Leftover::ImageScratch),
        );
    }
    // Files a tour planted (`.container-lab-tour-node-PID` in a rootfs,
    // `.container-lab-tour-handle-PID` beside it) and its stand-in's copies
    // (`container-lab-stand-in-PID-subuid` in the temporary directory).
    let beside: Vec<PathBuf> = rootfs_dirs
        .iter()
        .filter_map(|r| r.parent())
        .map(Path::to_path_buf)
        .collect();
    // The setuid-root copy of the probe (`.container-lab-tour-suid-PID`,
    // user.setuid-gain) sits beside the probe, in usr/local/bin.
    let beside_probe: Vec<PathBuf> = rootfs_dirs
        .iter()
        .map(|r| r.join("usr/local/bin"))
        .collect();
    let places = rootfs_dirs
        .iter()
        .cloned()
        .chain(beside)
        .chain(beside_probe)
        .chain([std::env::temp_dir()]);
    for dir in places {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let pid = [
                ".container-lab-tour-node-",
                ".container-lab-tour-handle-",
                ".container-lab-tour-write-",
                ".container-lab-tour-suid-",
            ]
            .iter()
            .find_map(|prefix| pid_suffix(&name, prefix))
            .or_else(|| {
                let rest = name.strip_prefix("container-lab-stand-in-")?;
                let (pid, file) = rest.split_once('-')?;
                ["subuid", "subgid"]
                    .contains(&file)
                    .then(|| pid.parse().ok())?
            });
            let dead = pid.is_some_and(|pid| !is_running(pid));
            if dead && (entry.path().is_file() || is_block_device(&entry.path())) {
                found.push(Leftover::TourFile(entry.path()));
            }
        }
    }
    found.extend(dead_tour_keys(
        &std::fs::read_to_string("/proc/keys").unwrap_or_default(),
    ));
    if let Some(value) =
        ctrl_alt_del_to_restore(&bait_root.join(crate::lab::tour::CTRL_ALT_DEL_LOCK))
    {
        found.push(Leftover::CtrlAltDel(value));
    }
    for rootfs in rootfs_dirs {
        for dir in [rootfs.join("tmp"), rootfs.to_path_buf()] {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with(PROBE_PREFIX) || name == BREAKOUT_DIR {
                    found.push(Leftover::ScratchDir(entry.path()));
                }
            }
        }
    }
    found
}

/// The pid at the end of a lab name (`labv1234`, `container-lab-c1234`,
/// `ctr-1234`), when it has one.
/// The keys of /proc/keys (proc(5)) that a tour which is gone added:
/// `SERIAL FLAGS USAGE TIMEOUT PERM UID GID TYPE DESCRIPTION: ...`.
fn dead_tour_keys(proc_keys: &str) -> Vec<Leftover> {
    let prefix = crate::lab::tour::TOUR_KEY_PREFIX;
    proc_keys
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let serial = i64::from_str_radix(fields.first()?, 16).ok()?;
            let description = fields.get(8)?.trim_end_matches(':');
            let pid = description
                .strip_prefix(prefix)?
                .split('-')
                .next()?
                .parse()
                .ok()?;
            (fields.get(7) == Some(&"user") && !is_running(pid))
                .then(|| Leftover::TourKey(serial, description.to_string()))
        })
        .collect()
}

/// The machine's kernel.ctrl-alt-del a killed tour kept in its lock file,
/// when no tour holds the lock and the setting differs from it.
fn ctrl_alt_del_to_restore(lock: &Path) -> Option<String> {
    let file = std::fs::File::open(lock).ok()?;
    // SAFETY: flock on a descriptor we own; released when it closes.
    let free = unsafe {
        libc::flock(
            std::os::fd::AsRawFd::as_raw_fd(&file),
            libc::LOCK_EX | libc::LOCK_NB,
        )
    } == 0;
    let kept = std::fs::read_to_string(lock).ok()?.trim().to_string();
    let now = std::fs::read_to_string(crate::lab::tour::CTRL_ALT_DEL).ok()?;
    (free && !kept.is_empty() && now.trim() != kept).then_some(kept)
}

fn pid_suffix(name: &str, prefix: &str) -> Option<i32> {
    name.strip_prefix(prefix)?.parse().ok()
}

/// ch04's leftovers in this network namespace: per-container tables,
/// veths and state of runtimes that died, then bridges nobody uses.
fn find_network(found: &mut Vec<Leftover>) {
    let dead = |pid: Option<i32>| pid.is_some_and(|pid| !is_running(pid));
    // Listed over nf_tables netlink, as `nft list tables` does; a host
    // without nf_tables (no module) has no tables of ours either.
    for (family, name) in nftables::list_tables().unwrap_or_default() {
        let ours = crate::runtime::net::CONTAINER_TABLE_FAMILIES.contains(&family);
        if ours && dead(pid_suffix(&name, "container-lab-c")) {
            found.push(Leftover::NftTable(family, name));
        }
    }
    if let Ok(links) = nix::net::if_::if_nameindex() {
        for link in links.iter() {
            let name = link.name().to_string_lossy().into_owned();
            if dead(pid_suffix(&name, "labv")) {
                found.push(Leftover::Link(name));
            }
        }
    }
    let Ok(bridges) = std::fs::read_dir(crate::runtime::net::state_root()) else {
        return;
    };
    for bridge in bridges.flatten() {
        let mut in_use = false;
        for kind in ["leases", "ports"] {
            for entry in std::fs::read_dir(bridge.path().join(kind))
                .into_iter()
                .flatten()
                .flatten()
            {
                let owner = std::fs::read_to_string(entry.path())
                    .ok()
                    .and_then(|t| t.trim().parse().ok());
                if dead(owner) {
                    found.push(Leftover::NetState(entry.path()));
                } else {
                    in_use = true;
                }
            }
        }
        for entry in std::fs::read_dir(bridge.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            if dead(pid_suffix(&name, "ctr-")) {
                found.push(Leftover::NetState(entry.path()));
            }
        }
        if !in_use {
            let name = bridge.file_name().to_string_lossy().into_owned();
            found.push(Leftover::Bridge(name, bridge.path()));
        }
    }
}

/// Every pasta whose `--pid` file a lab runtime named after itself
/// (usernet::pid_file_name) and whose runtime is gone, from `proc`'s
/// command lines: rootless runs keep their pid files in each user's own
/// directory, which root cannot list, but every process is in /proc.
pub fn find_pastas(proc: &Path) -> Vec<Leftover> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(proc).into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let words: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|w| String::from_utf8_lossy(w).into_owned())
            .collect();
        let is_pasta = words
            .first()
            .is_some_and(|w| Path::new(w).file_name().is_some_and(|n| n == "pasta"));
        let pid_file = words
            .windows(2)
            .find(|pair| pair[0] == "--pid" || pair[0] == "-P")
            .map(|pair| PathBuf::from(&pair[1]));
        let Some(pid_file) = pid_file.filter(|_| is_pasta) else {
            continue;
        };
        let runtime = crate::runtime::usernet::runtime_of_pid_file(&pid_file);
        if runtime.is_some_and(|runtime| !is_running(runtime)) {
            found.push(Leftover::Pasta(pid, pid_file));
        }
    }
    found
}

fn find_cgroups(dir: &Path, depth: u32, found: &mut Vec<Leftover>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if !kind.is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = pid_suffix(&name, crate::runtime::cgroups::RUNTIME_LEAF_PREFIX)
            .or_else(|| pid_suffix(&name, "container-lab-"));
        if pid.is_some_and(|pid| !is_running(pid)) {
            found.push(Leftover::Cgroup(entry.path()));
        } else if depth > 0 {
            find_cgroups(&entry.path(), depth - 1, found);
        }
    }
}

/// Remove one leftover.
pub fn remove(leftover: &Leftover) -> Result<(), String> {
    match leftover {
        Leftover::Mount(path) => umount2(path, MntFlags::MNT_DETACH).map_err(|errno| {
            format!(
                "umount {}: {}",
                path.display(),
                crate::error::describe_errno(errno)
            )
        }),
        Leftover::LoopDevice(number, _) => crate::lab::loopdev::detach(*number),
        Leftover::BaitDir(path) => {
            std::fs::remove_dir_all(path).map_err(|e| format!("{}: {e}", path.display()))
        }
        Leftover::NftTable(family, name) => {
            nftables::delete_table(*family, name).map_err(|error| error.to_string())
        }
        // Gone meanwhile is fine: a veth goes when its peer's namespace dies,
        // which the kernel finishes in the background some time after the
        // container's last process; that may be between the check and the
        // delete, so a failed delete of a link that is gone is no failure.
        Leftover::Link(name) => {
            let gone = || nix::net::if_::if_nametoindex(name.as_str()).is_err();
            if gone() {
                return Ok(());
            }
            use crate::runtime::netlink::{Change, Rtnl};
            Rtnl::open()
                .and_then(|rtnl| rtnl.apply(&Change::DeleteLink { link: name }))
                .map_err(|error| error.to_string())
                .or_else(|why| if gone() { Ok(()) } else { Err(why) })
        }
        Leftover::NetState(path) => std::fs::remove_dir_all(path)
            .or_else(|_| std::fs::remove_file(path))
            .map_err(|e| format!("{}: {e}", path.display())),
        Leftover::Bridge(name, state) => {
            crate::runtime::net::remove_bridge(name, state);
            Ok(())
        }
        Leftover::Cgroup(path) => crate::runtime::cgroups::empty_and_remove(path)
            .map_err(|e| format!("{}: {e}", path.display())),
        Leftover::TourFile(path) => {
            std::fs::remove_file(path).map_err(|e| format!("{}: {e}", path.display()))
        }
        Leftover::TourKey(serial, description) => crate::lab::tour::invalidate_key(*serial)
            .map_err(|errno| {
                format!(
                    "keyctl invalidate {description}: {}",
                    crate::error::describe_errno(errno)
                )
            }),
        Leftover::CtrlAltDel(value) => {
            let setting = crate::lab::tour::CTRL_ALT_DEL;
            std::fs::write(setting, value).map_err(|e| format!("{setting}: {e}"))?;
            let lock = Path::new(crate::runtime::RUN_DIR).join(crate::lab::tour::CTRL_ALT_DEL_LOCK);
            std::fs::write(&lock, "").map_err(|e| format!("{}: {e}", lock.display()))
        }
        Leftover::Pasta(pid, file) => {
            crate::runtime::usernet::stop(*pid, file);
            Ok(())
        }
        Leftover::AnatomySpecimen(store) => crate::lab::anatomy::remove_leftover(store),
        Leftover::RemappedCopy(path) => {
            std::fs::remove_dir_all(path).map_err(|e| format!("{}: {e}", path.display()))
        }
        // Through the store, which takes a ch08 container's writable layer too.
        Leftover::ContainerState(path) => {
            let id = path.file_name().unwrap_or_default().to_string_lossy();
            let store = crate::runtime::state::Store {
                root: path.parent().unwrap_or(Path::new("/")).to_path_buf(),
            };
            store.remove(&id).map_err(|error| error.to_string())
        }
        Leftover::ImageScratch(path) => crate::runtime::state::remove_tree(path)
            .or_else(|_| {
                std::fs::remove_file(path)
                    .map_err(|e| crate::error::LabError::io("unlink", path.display(), e))
            })
            .map_err(|error| error.to_string()),
        // Empty directories, one per layer: never recurse further.
        Leftover::LayerPoints(path) => {
            for entry in std::fs::read_dir(path).into_iter().flatten().flatten() {
                let _ = std::fs::remove_dir(entry.path());
            }
            std::fs::remove_dir(path).map_err(|e| format!("{}: {e}", path.display()))
        }
        // Only ever empty directories or device nodes the probe made: never
        // recurse into something that might hold a user's files.
        Leftover::ScratchDir(path) => std::fs::remove_dir(path)
            .or_else(|_| std::fs::remove_file(path))
            .map_err(|e| format!("{}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tour_pids_come_from_bait_dir_names() {
        assert_eq!(tour_pid("tour-1234-ch01"), Some(1234));
        assert_eq!(tour_pid("tour-x-ch01"), None);
        assert_eq!(tour_pid("containers"), None);
    }

    #[test]
    fn scratch_dirs_are_found_only_by_their_names() {
        let root = std::env::temp_dir().join(format!("lab-clean-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("tmp/.lab-probe-mnt-42")).unwrap();
        std::fs::create_dir_all(root.join("tmp/users-own-dir")).unwrap();
        std::fs::create_dir_all(root.join(".lab-breakout")).unwrap();
        let found = find(std::slice::from_ref(&root), &root.join("no-bait-here"));
        let scratch: Vec<_> = found
            .iter()
            .filter_map(|l| match l {
                // Only this test's: the machine may have its own.
                Leftover::ScratchDir(p) if p.starts_with(&root) => Some(p.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(scratch.len(), 2, "{found:?}");
        assert!(scratch.contains(&root.join("tmp/.lab-probe-mnt-42")));
        assert!(scratch.contains(&root.join(".lab-breakout")));
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn keys_of_dead_tours_are_read_from_proc_keys() {
        let alive = std::process::id();
        let keys = format!(
            "0b0b8f7f I--Q---     1 perm 3f010000     0     0 user      lab-tour-key-4194305-ab12: 23\n\
             0c0c0c0c I--Q---     1 perm 3f010000     0     0 user      lab-tour-key-{alive}-cd34: 23\n\
             1d2d3d4d I--Q---     2 perm 3f030000     0     0 keyring   _uid.0: 1\n"
        );
        assert_eq!(
            dead_tour_keys(&keys),
            vec![Leftover::TourKey(
                0x0b0b8f7f,
                "lab-tour-key-4194305-ab12".into()
            )]
        );
    }

    #[test]
    fn a_dead_tours_setuid_probe_is_found_beside_the_probe() {
        let root = std::env::temp_dir().join(format!("lab-clean-suid-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let bin = root.join("usr/local/bin");
        std::fs::create_dir_all(&bin).unwrap();
        // pid 2^22 + 1 is over any pid_max: never a running tour.
        let dead = bin.join(".container-lab-tour-suid-4194305");
        let alive = bin.join(format!(".container-lab-tour-suid-{}", std::process::id()));
        std::fs::write(&dead, "").unwrap();
        std::fs::write(&alive, "").unwrap();
        let found = find(std::slice::from_ref(&root), &root.join("no-bait-here"));
        assert!(found.contains(&Leftover::TourFile(dead)), "{found:?}");
        assert!(!found.contains(&Leftover::TourFile(alive)), "{found:?}");
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn only_pastas_of_dead_lab_runtimes_are_found() {
        let proc = std::env::temp_dir().join(format!("lab-clean-proc-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&proc);
        // No pid reaches 4194304 (the kernel's highest pid_max): dead.
        let dead = "/run/container-lab/pasta/pasta-4194305.pid";
        let alive = format!(
            "/tmp/container-lab-1000/pasta/pasta-{}.pid",
            std::process::id()
        );
        let processes = [
            ("11", vec!["/usr/bin/pasta", "--config-net", "--pid", dead]),
            ("12", vec!["pasta", "--pid", &alive]),
            (
                "13",
                vec!["pasta", "--pid", "/run/user/1000/containers/pasta.pid"],
            ),
            ("14", vec!["sleep", "--pid", dead]),
            ("self", vec!["pasta", "--pid", dead]),
        ];
        for (pid, words) in &processes {
            std::fs::create_dir_all(proc.join(pid)).unwrap();
            let cmdline: Vec<u8> = words
                .iter()
                .flat_map(|w| [w.as_bytes(), b"\0"].concat())
                .collect();
            std::fs::write(proc.join(pid).join("cmdline"), cmdline).unwrap();
        }
        let found = find_pastas(&proc);
        assert_eq!(found, [Leftover::Pasta(11, PathBuf::from(dead))]);
        std::fs::remove_dir_all(proc).unwrap();
    }
}
