//! Masked and read-only paths: the parts of /proc and /sys a container's
//! root may not read or change, covered after the pivot, as Docker's
//! defaults (2015-2016) cover them.
//!
//! /proc and /sys show the whole machine in places their namespaces do not
//! reach: /proc/kcore is the kernel's memory, /proc/keys the keys of every
//! user, /proc/timer_list and /proc/sched_debug the host's timers and
//! tasks, /proc/sysrq-trigger reboots or crashes the host in one write,
//! /proc/sys/kernel/core_pattern runs a program as host root on the next
//! crash. From chapter 05 on, root inside is an unprivileged user outside
//! and the kernel's own permission checks refuse most of these; the masks
//! are the second wall, and the only one for a container run without a
//! user namespace, as Docker's are by default.
//!
//! A masked file gets /dev/null bound over it, a masked directory an empty
//! read-only tmpfs; a read-only path is bound onto itself and remounted
//! read-only. Root inside could undo each with umount(2), so the chapter
//! keeps it from doing so twice: without CAP_SYS_ADMIN (capabilities) and
//! without the mount syscalls (seccomp).

use crate::error::LabError;
use crate::narrator::Narrator;
use crate::runtime::mounts::{kept_mount_flags, mount_step};
use nix::mount::MsFlags;
use std::path::Path;

// ANCHOR: lists
/// Hidden: read as empty files or empty directories.
pub const MASKED: [&str; 12] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/sys/devices/virtual/powercap",
    "/sys/firmware",
];

/// Readable, never writable.
pub const READ_ONLY: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];
// ANCHOR_END: lists

// ANCHOR: apply
/// Cover every path of both lists that exists in the container's root,
/// which must be `/` already (after pivot_root). A path this kernel does
/// not have is skipped: there is nothing to hide.
pub fn apply(narrator: &Narrator) -> Result<(), LabError> {
    apply_lists(narrator, &MASKED, &READ_ONLY)
}

/// Mask each of `masked` and make each of `read_only` read-only, as
/// `apply` does with Docker's lists (chapter 10: config.json's
/// maskedPaths and readonlyPaths).
pub fn apply_lists<S: AsRef<str>>(
    narrator: &Narrator,
    masked: &[S],
    read_only: &[S],
) -> Result<(), LabError> {
    for path in masked.iter().map(|p| Path::new(p.as_ref())) {
        let Ok(metadata) = std::fs::metadata(path) else {
            continue;
        };
        if metadata.is_dir() {
            mount_step(
                narrator,
                Some("tmpfs"),
                path,
                Some("tmpfs"),
                MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                Some("size=0"),
                "an empty, read-only directory in place of what the kernel shows there",
            )?;
        } else {
            mount_step(
                narrator,
                Some("/dev/null"),
                path,
                None,
                MsFlags::MS_BIND,
                None,
                "reads as an empty file: the kernel's file stays out of reach",
            )?;
        }
    }
    for path in read_only.iter().map(|p| Path::new(p.as_ref())) {
        if std::fs::symlink_metadata(path).is_err() {
            continue;
        }
        mount_step(
            narrator,
            Some(&path.display().to_string()),
            path,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
            "a mount of its own, whose flags can differ from /proc's",
        )?;
        // A remount keeps what the mount had (nosuid, nodev, noexec): the
        // kernel would refuse to clear a flag it locked.
        let flags = MsFlags::MS_BIND
            | MsFlags::MS_REMOUNT
            | MsFlags::MS_RDONLY
            | kept_mount_flags(path)
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV
            | MsFlags::MS_NOEXEC;
        mount_step(
            narrator,
            None,
            path,
            None,
            flags,
            None,
            "read-only: the container may read these tunables, never write them",
        )?;
    }
    Ok(())
}
// ANCHOR_END: apply
