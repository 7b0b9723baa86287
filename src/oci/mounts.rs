//! config.json's `mounts`, and the /dev the runtime makes, in the
//! container's mount namespace before pivot_root(2).
//!
//! Chapters 03-09 mounted a fixed list; here the bundle gives the list,
//! as mount(8) would read it: a type, a source, a destination inside the
//! root, and options that are either flags (`ro`, `nosuid`, `rbind`,
//! `rslave`, ...) or the filesystem's own data (`mode=755`, `size=64k`).
//!
//! A destination is found with openat2(2) and RESOLVE_IN_ROOT, so a
//! symlink in the image cannot send a mount outside the root
//! (CVE-2021-30465 raced runc on exactly this), and the mount goes onto
//! the descriptor found, through /proc/self/fd.

use crate::error::LabError;
use crate::narrator::{Narrator, Step};
use crate::oci::config::{DeviceNode, MountPlan, propagation_flag};
use crate::runtime::mounts::{
    kept_mount_flags, link_standard_names, make_device, make_standard_devices, mount_step,
};
use crate::runtime::volumes::resolve_target;
use nix::mount::MsFlags;
use nix::sys::stat::SFlag;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// `mount(8)`'s flag options: (name, flag, whether the option clears it).
const FLAG_OPTIONS: [(&str, MsFlags, bool); 24] = [
    ("ro", MsFlags::MS_RDONLY, false),
    ("rw", MsFlags::MS_RDONLY, true),
    ("nosuid", MsFlags::MS_NOSUID, false),
    ("suid", MsFlags::MS_NOSUID, true),
    ("nodev", MsFlags::MS_NODEV, false),
    ("dev", MsFlags::MS_NODEV, true),
    ("noexec", MsFlags::MS_NOEXEC, false),
    ("exec", MsFlags::MS_NOEXEC, true),
    ("sync", MsFlags::MS_SYNCHRONOUS, false),
    ("async", MsFlags::MS_SYNCHRONOUS, true),
    ("dirsync", MsFlags::MS_DIRSYNC, false),
    ("remount", MsFlags::MS_REMOUNT, false),
    ("mand", MsFlags::MS_MANDLOCK, false),
    ("nomand", MsFlags::MS_MANDLOCK, true),
    ("atime", MsFlags::MS_NOATIME, true),
    ("noatime", MsFlags::MS_NOATIME, false),
    ("diratime", MsFlags::MS_NODIRATIME, true),
    ("nodiratime", MsFlags::MS_NODIRATIME, false),
    ("relatime", MsFlags::MS_RELATIME, false),
    ("norelatime", MsFlags::MS_RELATIME, true),
    ("strictatime", MsFlags::MS_STRICTATIME, false),
    ("nostrictatime", MsFlags::MS_STRICTATIME, true),
    ("bind", MsFlags::MS_BIND, false),
    ("rbind", MsFlags::MS_BIND.union(MsFlags::MS_REC), false),
];

/// Options this runtime does not implement, refused by name rather than
/// passed to the filesystem as data it would misread.
const REFUSED_OPTIONS: [&str; 9] = [
    "tmpcopyup",
    "idmap",
    "ridmap",
    "rro",
    "rrw",
    "rnosuid",
    "rnodev",
    "rnoexec",
    "nosymfollow",
];

/// Every option this runtime reads (for `features`).
pub fn option_names() -> Vec<&'static str> {
    let propagation = [
        "shared",
        "rshared",
        "slave",
        "rslave",
        "private",
        "rprivate",
        "unbindable",
        "runbindable",
    ];
    FLAG_OPTIONS
        .iter()
        .map(|(name, _, _)| *name)
        .chain(propagation)
        .collect()
}

/// A mount's options, sorted into what mount(2) takes.
#[derive(Debug, PartialEq)]
pub struct Options {
    pub flags: MsFlags,
    pub propagation: Vec<MsFlags>,
    pub data: Vec<String>,
}

/// Sort `options` into flags, propagation changes and data.
pub fn parse_options(options: &[String]) -> Result<Options, LabError> {
    let mut parsed = Options {
        flags: MsFlags::empty(),
        propagation: Vec::new(),
        data: Vec::new(),
    };
    for option in options {
        if let Some((_, flag, clears)) = FLAG_OPTIONS.iter().find(|(n, _, _)| n == option) {
            match clears {
                true => parsed.flags.remove(*flag),
                false => parsed.flags.insert(*flag),
            }
        } else if let Some(flag) = propagation_flag(option) {
            parsed.propagation.push(flag);
        } else if REFUSED_OPTIONS.contains(&option.as_str()) {
            return Err(LabError::Refused {
                message: format!(
                    "config.json: mount option {option:?} is not supported by this runtime"
                ),
                hint: "remove it from the mount's options, or run this bundle with runc".into(),
            });
        } else {
            parsed.data.push(option.clone());
        }
    }
    Ok(parsed)
}

impl MountPlan {
    fn is_bind(&self) -> bool {
        self.kind == "bind" || self.options.iter().any(|o| o == "bind" || o == "rbind")
    }
}

/// The mount's destination inside `rootfs`, made if missing (a file when
/// a file is bound onto it), opened O_PATH.
fn destination(
    narrator: &Narrator,
    rootfs: &Path,
    mount: &MountPlan,
    directory: bool,
) -> Result<OwnedFd, LabError> {
    let args = format!(
        "root of {:?}, {:?}, O_PATH, RESOLVE_IN_ROOT",
        rootfs.display().to_string(),
        mount.destination.display().to_string()
    );
    narrator
        .run(
            Step {
                syscall: "openat2",
                args: &args,
                why: "the mount point, found inside the root (a symlink cannot lead out), made if missing",
                man: "openat2(2)",
            },
            || resolve_target(rootfs, &mount.destination, directory, None),
        )
        .map(|(fd, _)| fd)
}

/// The magic link through which mount(2) reaches a descriptor's file.
fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

// ANCHOR: mount_all
/// Mount each of `mounts` under `rootfs`, in the file's order (a later
/// mount may go inside an earlier one). `bundle` is where a relative bind
/// source starts; `cgroups` are the container's cgroup directories, shown
/// at a `cgroup` mount.
pub fn mount_all(
    narrator: &Narrator,
    rootfs: &Path,
    bundle: &Path,
    mounts: &[MountPlan],
    cgroups: &[PathBuf],
) -> Result<(), LabError> {
    for mount in mounts {
        let options = parse_options(&mount.options)?;
        if mount.is_bind() {
            bind(narrator, rootfs, bundle, mount, &options)?;
        } else if mount.kind == "cgroup" {
            mount_cgroups(narrator, rootfs, mount, &options, cgroups)?;
        } else {
            filesystem(narrator, rootfs, mount, &options)?;
        }
    }
    Ok(())
}
// ANCHOR_END: mount_all

/// A filesystem of its own (proc, sysfs, tmpfs, devpts, mqueue, ...).
fn filesystem(
    narrator: &Narrator,
    rootfs: &Path,
    mount: &MountPlan,
    options: &Options,
) -> Result<(), LabError> {
    let at = destination(narrator, rootfs, mount, true)?;
    let source = mount
        .source
        .as_ref()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| mount.kind.clone());
    let data = options.data.join(",");
    let why = format!(
        "config.json: a {} at {}",
        mount.kind,
        mount.destination.display()
    );
    let mounted = mount_step(
        narrator,
        Some(&source),
        &fd_path(&at),
        Some(&mount.kind),
        options.flags,
        (!data.is_empty()).then_some(data.as_str()),
        &why,
    );
    match mounted {
        // A user namespace may mount a sysfs only for a network namespace
        // it owns (sysfs(5)); sharing the host's, it gets the host's /sys.
        Err(LabError::StepFailed {
            errno: nix::errno::Errno::EPERM,
            ..
        }) if mount.kind == "sysfs" => {
            let why = "no sysfs of its own without a network namespace of its own: the host's";
            mount_step(
                narrator,
                Some("/sys"),
                &fd_path(&at),
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None,
                why,
            )?;
            remount(narrator, rootfs, mount, options.flags | MsFlags::MS_RDONLY)
        }
        other => other,
    }?;
    propagate(narrator, rootfs, mount, options)
}

/// A bind mount of a host path: the bind, then a remount for its flags
/// (mount(2) ignores them on the bind itself), then its propagation.
fn bind(
    narrator: &Narrator,
    rootfs: &Path,
    bundle: &Path,
    mount: &MountPlan,
    options: &Options,
) -> Result<(), LabError> {
    let source = bundle.join(mount.source.as_deref().unwrap_or(Path::new("")));
    let metadata = std::fs::metadata(&source).map_err(|e| LabError::Refused {
        message: format!(
            "config.json: the source of the mount at {}, {}: {e}",
            mount.destination.display(),
            source.display()
        ),
        hint: "bind mounts need a source that exists on the host".into(),
    })?;
    let at = destination(narrator, rootfs, mount, metadata.is_dir())?;
    let recursive = options.flags & MsFlags::MS_REC;
    let why = format!(
        "config.json: {} shown at {}",
        source.display(),
        mount.destination.display()
    );
    mount_step(
        narrator,
        Some(&source.to_string_lossy()),
        &fd_path(&at),
        None,
        MsFlags::MS_BIND | recursive,
        None,
        &why,
    )?;
    let wanted = options.flags - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
    if !wanted.is_empty() {
        // The flags the source's mount has and the kernel may have locked
        // (in a user namespace it refuses to clear them, mount(2)).
        remount(narrator, rootfs, mount, wanted | kept_mount_flags(&source))?;
    }
    propagate(narrator, rootfs, mount, options)
}

/// The mount now at `mount`'s destination, a directory or a file, found
/// again: the descriptor found before the mount is the one beneath it.
fn mounted(narrator: &Narrator, rootfs: &Path, mount: &MountPlan) -> Result<OwnedFd, LabError> {
    destination(narrator, rootfs, mount, true)
        .or_else(|_| destination(narrator, rootfs, mount, false))
}

/// MS_REMOUNT|MS_BIND with `flags`, on the mount now at the destination
/// (found again: the descriptor found before the mount is the directory
/// beneath it).
fn remount(
    narrator: &Narrator,
    rootfs: &Path,
    mount: &MountPlan,
    flags: MsFlags,
) -> Result<(), LabError> {
    let at = mounted(narrator, rootfs, mount)?;
    mount_step(
        narrator,
        None,
        &fd_path(&at),
        None,
        flags | MsFlags::MS_REMOUNT | MsFlags::MS_BIND,
        None,
        "the flags config.json asks for, on the mount just made",
    )
}

fn propagate(
    narrator: &Narrator,
    rootfs: &Path,
    mount: &MountPlan,
    options: &Options,
) -> Result<(), LabError> {
    for flag in &options.propagation {
        let at = mounted(narrator, rootfs, mount)?;
        mount_step(
            narrator,
            None,
            &fd_path(&at),
            None,
            *flag,
            None,
            "the propagation config.json asks for",
        )?;
    }
    Ok(())
}

// ANCHOR: cgroup_mount
/// A `cgroup` mount: the container's own cgroup directories, not the
/// whole tree. On cgroup v2 its one directory is bound at the
/// destination; on v1 a tmpfs holds one bind per hierarchy, named as the
/// host names it (`memory`, `cpu,cpuacct`, ...), with links for each
/// controller of a shared one, as runc lays it out.
fn mount_cgroups(
    narrator: &Narrator,
    rootfs: &Path,
    mount: &MountPlan,
    options: &Options,
    cgroups: &[PathBuf],
) -> Result<(), LabError> {
    let at = destination(narrator, rootfs, mount, true)?;
    let unified = cgroups.len() == 1 && cgroups[0].join("cgroup.controllers").exists();
    let flags = options.flags;
    if unified {
        let source = cgroups[0].to_string_lossy();
        mount_step(
            narrator,
            Some(&source),
            &fd_path(&at),
            None,
            MsFlags::MS_BIND,
            None,
            "the container's own cgroup, at /sys/fs/cgroup",
        )?;
        return remount(
            narrator,
            rootfs,
            mount,
            flags | kept_mount_flags(&cgroups[0]),
        );
    }
    mount_step(
        narrator,
        Some("tmpfs"),
        &fd_path(&at),
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=755"),
        "a directory to hold the container's cgroup v1 hierarchies",
    )?;
    for dir in cgroups {
        let Some(hierarchy) = hierarchy_name(dir) else {
            continue;
        };
        let inside = MountPlan {
            destination: mount.destination.join(&hierarchy),
            kind: "bind".into(),
            source: Some(dir.clone()),
            options: Vec::new(),
        };
        let target = destination(narrator, rootfs, &inside, true)?;
        let why = format!("the container's own {hierarchy} cgroup");
        mount_step(
            narrator,
            Some(&dir.to_string_lossy()),
            &fd_path(&target),
            None,
            MsFlags::MS_BIND,
            None,
            &why,
        )?;
        remount(
            narrator,
            rootfs,
            &inside,
            (flags & MsFlags::MS_RDONLY) | kept_mount_flags(dir),
        )?;
        // `cpu` and `cpuacct` for a `cpu,cpuacct` hierarchy.
        if hierarchy.contains(',') {
            let tmpfs = mounted(narrator, rootfs, mount)?;
            for controller in hierarchy.split(',') {
                let link = fd_path(&tmpfs).join(controller);
                let _ = std::os::unix::fs::symlink(&hierarchy, link);
            }
        }
    }
    if flags.contains(MsFlags::MS_RDONLY) {
        remount(
            narrator,
            rootfs,
            mount,
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        )?;
    }
    Ok(())
}
// ANCHOR_END: cgroup_mount

/// `memory` for /sys/fs/cgroup/memory/PATH: the hierarchy's mount point
/// under /sys/fs/cgroup, where every layout the lab supports puts them.
fn hierarchy_name(dir: &Path) -> Option<String> {
    let rest = dir.strip_prefix("/sys/fs/cgroup").ok()?;
    rest.components()
        .next()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
}

// ANCHOR: devices
/// The nodes of a /dev the runtime made (a tmpfs in config.json, not a
/// bind of the host's): the standard six, `linux.devices`, and the links.
pub fn make_dev(
    narrator: &Narrator,
    rootfs: &Path,
    devices: &[DeviceNode],
) -> Result<(), LabError> {
    // /dev as found inside the root, never `rootfs/dev` as a path: the
    // image may have made `dev` a symlink that leads out.
    let dev_plan = MountPlan {
        destination: PathBuf::from("/dev"),
        kind: "none".into(),
        source: None,
        options: Vec::new(),
    };
    let dev_fd = destination(narrator, rootfs, &dev_plan, true)?;
    let dev = fd_path(&dev_fd);
    make_standard_devices(narrator, &dev, |name| {
        devices
            .iter()
            .any(|d| d.path == Path::new("/dev").join(name))
    })?;
    for device in devices {
        let kind = match device.kind {
            'b' => SFlag::S_IFBLK,
            'p' => SFlag::S_IFIFO,
            _ => SFlag::S_IFCHR,
        };
        let plan = MountPlan {
            destination: device.path.clone(),
            kind: "none".into(),
            source: None,
            options: Vec::new(),
        };
        // Its directory, made inside the root; the node itself next to it.
        let parent = device.path.parent().unwrap_or(Path::new("/dev"));
        let parent_plan = MountPlan {
            destination: parent.to_path_buf(),
            ..plan.clone()
        };
        let parent_fd = destination(narrator, rootfs, &parent_plan, true)?;
        let name = device.path.file_name().unwrap_or_default();
        let path = fd_path(&parent_fd).join(name);
        make_device(
            narrator,
            &path,
            &device.path,
            kind,
            (device.major as u64, device.minor as u64),
            device.mode & 0o7777,
            "config.json's linux.devices: a node the container is given",
        )?;
        nix::unistd::chown(&path, Some(device.uid.into()), Some(device.gid.into())).map_err(
            |errno| LabError::StepFailed {
                syscall: "chown",
                target: device.path.display().to_string(),
                errno,
            },
        )?;
    }
    if !dev.join("ptmx").exists() {
        link_standard_names(narrator, &dev)?;
    }
    Ok(())
}
// ANCHOR_END: devices

/// Whether config.json gives the container a /dev of its own to fill (a
/// tmpfs, as engines send) rather than a bind of the host's.
pub fn runtime_makes_dev(mounts: &[MountPlan]) -> bool {
    mounts
        .iter()
        .any(|m| m.destination == Path::new("/dev") && !m.is_bind())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(options: &[&str]) -> Vec<String> {
        options.iter().map(|o| o.to_string()).collect()
    }

    #[test]
    fn options_split_into_flags_propagation_and_data() {
        let parsed = parse_options(&words(&[
            "nosuid",
            "strictatime",
            "mode=755",
            "size=65536k",
            "rslave",
        ]))
        .unwrap();
        assert_eq!(parsed.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(parsed.propagation, [MsFlags::MS_SLAVE | MsFlags::MS_REC]);
        assert_eq!(parsed.data, ["mode=755", "size=65536k"]);
    }

    #[test]
    fn a_later_option_undoes_an_earlier_one() {
        let parsed = parse_options(&words(&["ro", "rw", "rbind"])).unwrap();
        assert_eq!(parsed.flags, MsFlags::MS_BIND | MsFlags::MS_REC);
    }

    #[test]
    fn unimplemented_options_are_refused_by_name() {
        let message = parse_options(&words(&["tmpcopyup"]))
            .err()
            .unwrap()
            .to_string();
        assert!(message.contains("tmpcopyup"), "{message}");
    }

    #[test]
    fn hierarchy_names_come_from_the_mount_point() {
        assert_eq!(
            hierarchy_name(Path::new("/sys/fs/cgroup/cpu,cpuacct/default/x")).as_deref(),
            Some("cpu,cpuacct")
        );
        assert_eq!(hierarchy_name(Path::new("/elsewhere/x")), None);
    }

    #[test]
    fn propagation_names_parse() {
        assert_eq!(
            propagation_flag("rprivate"),
            Some(MsFlags::MS_PRIVATE | MsFlags::MS_REC)
        );
        assert_eq!(propagation_flag("shared"), Some(MsFlags::MS_SHARED));
        assert_eq!(propagation_flag("rw"), None);
    }
}
