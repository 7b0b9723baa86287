//! Facts about the host the lab runs on: kernel, cgroups, mounts,
//! filesystems, user namespace switches, tools on PATH.
//!
//! Everything here only looks; nothing changes the host and nothing needs
//! root. Each fact comes in two halves: a pure function that interprets text
//! or numbers the kernel hands out (unit-tested with fixtures, including
//! hosts unlike this one), and a thin reader that fetches them. `lab doctor`
//! turns the facts into advice; the chapters can use them to explain what
//! they find.

use crate::error::describe_errno;
use nix::errno::Errno;
use nix::sys::statfs::{CGROUP2_SUPER_MAGIC, FsType, TMPFS_MAGIC, statfs};
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::Read;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Where systemd and every distribution mount the cgroup filesystems.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// Where a hybrid host mounts its (controller-less, or nearly) cgroup2.
pub const CGROUP_UNIFIED: &str = "/sys/fs/cgroup/unified";
/// This process's mount table, one mount per line (proc_pid_mountinfo(5)).
pub const MOUNTINFO: &str = "/proc/self/mountinfo";
/// The filesystem types the kernel can mount now (proc_filesystems(5)).
pub const FILESYSTEMS: &str = "/proc/filesystems";
/// Upstream limit on user namespaces per user; 0 disables them for
/// everyone, root included (namespaces(7), "The /proc/sys/user directory").
pub const MAX_USER_NAMESPACES: &str = "/proc/sys/user/max_user_namespaces";
/// Debian's (and older Ubuntu's) patch: 0 keeps user namespaces to
/// privileged processes. Upstream kernels do not have this file.
pub const UNPRIVILEGED_USERNS_CLONE: &str = "/proc/sys/kernel/unprivileged_userns_clone";
/// Ubuntu's AppArmor mediation (23.10 on, default in 24.04): 1 confines an
/// unprivileged process's new user namespace to a profile without
/// capabilities unless its own AppArmor profile allows `userns`.
pub const APPARMOR_RESTRICT_USERNS: &str = "/proc/sys/kernel/apparmor_restrict_unprivileged_userns";

/// Something the host could not tell us. Every variant names the path and
/// keeps the errno, so a report can say exactly what was looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostInfoError {
    /// statfs(2) on `path` failed.
    Statfs { path: PathBuf, errno: Errno },
    /// `path` is a filesystem that holds no cgroups.
    NotCgroup { path: PathBuf, fs: FsKind },
    /// Reading the file at `path` failed.
    Read { path: PathBuf, errno: Errno },
}

impl fmt::Display for HostInfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostInfoError::Statfs { path, errno } => {
                write!(f, "statfs {}: {}", path.display(), describe_errno(*errno))
            }
            HostInfoError::NotCgroup { path, fs } => write!(
                f,
                "{} is {fs}, neither cgroup2 nor the tmpfs that holds cgroup v1 hierarchies",
                path.display()
            ),
            HostInfoError::Read { path, errno } => {
                write!(f, "read {}: {}", path.display(), describe_errno(*errno))
            }
        }
    }
}

impl std::error::Error for HostInfoError {}

fn read_error(path: &Path, error: &std::io::Error) -> HostInfoError {
    HostInfoError::Read {
        path: path.to_path_buf(),
        errno: crate::error::errno_of(error),
    }
}

/// Read a whole text file, such as a file under /proc.
pub fn read_text(path: &Path) -> Result<String, HostInfoError> {
    std::fs::read_to_string(path).map_err(|error| read_error(path, &error))
}

/// Read a file that may legitimately not exist: a sysctl that only some
/// kernels have. Missing is `Ok(None)`; any other failure is an error.
pub fn read_if_present(path: &Path) -> Result<Option<String>, HostInfoError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(read_error(path, &error)),
    }
}

/// A process's command line, an argument a word (/proc/PID/cmdline,
/// proc(5)); empty for a process that is gone or a kernel thread.
pub fn command_line(pid: i32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .split(|byte| *byte == 0)
        .filter(|word| !word.is_empty())
        .map(|word| String::from_utf8_lossy(word).into_owned())
        .collect()
}

/// A process's command line as one line for a terminal. A container writes
/// its own argv, so control characters in it (escape sequences that retitle
/// or repaint the operator's terminal, a newline that forges a row) are
/// shown as `?`, as ps(1) shows them.
pub fn printable_command_line(pid: i32) -> String {
    printable(&command_line(pid).join(" "))
}

fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

// ---------------------------------------------------------------------------
// Kernel

/// The running kernel's release, as `uname -r` prints it (uname(2)).
pub fn kernel_release() -> String {
    match nix::sys::utsname::uname() {
        Ok(name) => name.release().to_string_lossy().into_owned(),
        Err(errno) => format!("unknown (uname: {})", describe_errno(errno)),
    }
}

/// `(major, minor)` of a release string such as `6.8.0-45-generic` or
/// `5.4.0`; `None` when it does not start with two numbers.
pub fn parse_kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.trim().split('.');
    let number = |part: Option<&str>| -> Option<u32> {
        let part = part?;
        let end = part
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(part.len());
        part[..end].parse().ok()
    };
    let major = number(parts.next())?;
    let minor = number(parts.next())?;
    Some((major, minor))
}

// ---------------------------------------------------------------------------
// cgroup layout

/// What statfs(2) says a directory's filesystem is, as far as cgroups care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsKind {
    /// CGROUP2_SUPER_MAGIC (0x63677270, "cgrp"): the unified hierarchy.
    Cgroup2,
    /// TMPFS_MAGIC (0x01021994): what systemd mounts at /sys/fs/cgroup to
    /// hold one directory per cgroup v1 hierarchy.
    Tmpfs,
    /// Any other `f_type`, kept for the message.
    Other(u64),
}

impl From<FsType> for FsKind {
    fn from(fs: FsType) -> FsKind {
        if fs == CGROUP2_SUPER_MAGIC {
            FsKind::Cgroup2
        } else if fs == TMPFS_MAGIC {
            FsKind::Tmpfs
        } else {
            // fs_type_t is signed in glibc, unsigned in musl; magics fit both.
            #[allow(clippy::unnecessary_cast)]
            let magic = fs.0 as u64;
            FsKind::Other(magic)
        }
    }
}

impl fmt::Display for FsKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FsKind::Cgroup2 => write!(f, "cgroup2"),
            FsKind::Tmpfs => write!(f, "tmpfs"),
            FsKind::Other(magic) => write!(f, "a filesystem of type {magic:#x}"),
        }
    }
}

/// How the host arranges its control groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupLayout {
    /// cgroup v2 only: one tree at /sys/fs/cgroup, every controller in it.
    Unified,
    /// cgroup v1 only: a tmpfs at /sys/fs/cgroup with one mount per
    /// hierarchy (memory, cpu,cpuacct, pids, ...).
    Legacy,
    /// v1 hierarchies for the controllers, plus a cgroup2 mount at
    /// /sys/fs/cgroup/unified that systemd uses to track processes and
    /// that holds only the controllers no v1 hierarchy took.
    Hybrid,
}

impl fmt::Display for CgroupLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CgroupLayout::Unified => "unified (cgroup v2)",
            CgroupLayout::Legacy => "legacy (cgroup v1)",
            CgroupLayout::Hybrid => "hybrid (cgroup v1 + v2)",
        })
    }
}

/// The layout, from the filesystem at /sys/fs/cgroup and whether
/// /sys/fs/cgroup/unified is itself a cgroup2 mount. This is the decision
/// runc and systemd make: cgroup2 at the top is unified; tmpfs at the top
/// is legacy, or hybrid when a cgroup2 sits at `unified`. Anything else
/// holds no cgroups the lab knows how to use: `None`.
pub fn cgroup_layout_from(root: FsKind, unified_is_cgroup2: bool) -> Option<CgroupLayout> {
    match root {
        FsKind::Cgroup2 => Some(CgroupLayout::Unified),
        FsKind::Tmpfs if unified_is_cgroup2 => Some(CgroupLayout::Hybrid),
        FsKind::Tmpfs => Some(CgroupLayout::Legacy),
        FsKind::Other(_) => None,
    }
}

/// What filesystem `path` is on, by statfs(2)'s `f_type`.
pub fn fs_kind(path: &Path) -> Result<FsKind, HostInfoError> {
    statfs(path)
        .map(|fs| FsKind::from(fs.filesystem_type()))
        .map_err(|errno| HostInfoError::Statfs {
            path: path.to_path_buf(),
            errno,
        })
}

/// This host's cgroup layout, detected as runc and systemd do it: by
/// statfs(2) on /sys/fs/cgroup, and on /sys/fs/cgroup/unified when the
/// first is a tmpfs. Mountinfo is not needed for this, and statfs cannot be
/// fooled by a directory that merely has the right name.
pub fn detect_cgroup_layout() -> Result<CgroupLayout, HostInfoError> {
    detect_cgroup_layout_at(Path::new(CGROUP_ROOT))
}

/// [`detect_cgroup_layout`] for a cgroup root somewhere else.
pub fn detect_cgroup_layout_at(root: &Path) -> Result<CgroupLayout, HostInfoError> {
    let root_kind = fs_kind(root)?;
    // A missing or unreadable `unified` means no v2 next to the v1 trees.
    let unified_is_cgroup2 =
        root_kind == FsKind::Tmpfs && fs_kind(&root.join("unified")) == Ok(FsKind::Cgroup2);
    cgroup_layout_from(root_kind, unified_is_cgroup2).ok_or_else(|| HostInfoError::NotCgroup {
        path: root.to_path_buf(),
        fs: root_kind,
    })
}

// ---------------------------------------------------------------------------
// Mount table

/// One line of /proc/PID/mountinfo (proc_pid_mountinfo(5)):
///
/// ```text
/// 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
/// (1)(2) (3)   (4)   (5)     (6)      (7)   (8) (9)    (10)        (11)
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    /// (1) unique id of the mount (may be reused after umount).
    pub mount_id: u64,
    /// (2) id of the parent mount (itself for the root of the tree).
    pub parent_id: u64,
    /// (3) `st_dev` of files on this filesystem, as (major, minor).
    pub major_minor: (u32, u32),
    /// (4) the directory of the filesystem mounted here (`/` unless a bind
    /// mount of a subdirectory).
    pub root: PathBuf,
    /// (5) where it is mounted, relative to this process's root.
    pub mount_point: PathBuf,
    /// (6) per-mount options (`rw`, `nosuid`, `relatime`, ...).
    pub options: Vec<String>,
    /// (7) zero or more `tag[:value]`: `shared:N`, `master:N`,
    /// `propagate_from:N`, `unbindable` (mount_namespaces(7)).
    pub optional_fields: Vec<String>,
    /// (9) filesystem type (`ext4`, `cgroup`, `fuse.sshfs`).
    pub fs_type: String,
    /// (10) filesystem-specific source (`/dev/vda`, `tmpfs`, `none`).
    pub source: String,
    /// (11) per-superblock options; for cgroup v1 these name the
    /// controllers (`rw,cpu,cpuacct`).
    pub super_options: Vec<String>,
}

impl MountInfo {
    /// The peer group this mount shares events with (`shared:N`).
    pub fn peer_group(&self) -> Option<u64> {
        self.tagged("shared")
    }

    /// The peer group this mount receives events from (`master:N`).
    pub fn master_group(&self) -> Option<u64> {
        self.tagged("master")
    }

    fn tagged(&self, tag: &str) -> Option<u64> {
        self.optional_fields.iter().find_map(|field| {
            let (name, value) = field.split_once(':')?;
            if name == tag {
                value.parse().ok()
            } else {
                None
            }
        })
    }
}

/// Undo the kernel's escaping of a mountinfo field. The kernel writes
/// space, tab, newline and backslash as three octal digits (`\040`,
/// `\011`, `\012`, `\134`) so that fields stay space-separated, and a
/// superblock option value may also escape `,` and `=`. The bytes that come
/// out need not be UTF-8: a path is bytes.
fn unescape(field: &str) -> Vec<u8> {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = match bytes[i] {
            b'\\' => bytes
                .get(i + 1..i + 4)
                .filter(|digits| digits.iter().all(|d| (b'0'..=b'7').contains(d))),
            _ => None,
        };
        match octal {
            // Three octal digits reach 0o777; a byte is what the kernel wrote.
            Some(digits) => {
                let value = digits
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                out.push((value & 0xff) as u8);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    out
}

fn unescape_path(field: &str) -> PathBuf {
    PathBuf::from(OsString::from_vec(unescape(field)))
}

fn unescape_string(field: &str) -> String {
    String::from_utf8_lossy(&unescape(field)).into_owned()
}

fn option_list(field: &str) -> Vec<String> {
    field
        .split(',')
        .filter(|option| !option.is_empty())
        .map(unescape_string)
        .collect()
}

/// Parse one mountinfo line; `None` if it is not one.
pub fn parse_mountinfo_line(line: &str) -> Option<MountInfo> {
    // Fields are separated by single spaces; none contains one (escaped).
    let fields: Vec<&str> = line.trim_end_matches(['\n', '\r']).split(' ').collect();
    // The optional fields vary in number, so the lone "-" tells where the
    // fixed tail starts. It comes after the six leading fields.
    let separator = 6 + fields.get(6..)?.iter().position(|field| *field == "-")?;
    let (major, minor) = fields[2].split_once(':')?;
    Some(MountInfo {
        mount_id: fields[0].parse().ok()?,
        parent_id: fields[1].parse().ok()?,
        major_minor: (major.parse().ok()?, minor.parse().ok()?),
        root: unescape_path(fields[3]),
        mount_point: unescape_path(fields[4]),
        options: option_list(fields[5]),
        optional_fields: fields[6..separator]
            .iter()
            .filter(|field| !field.is_empty())
            .map(|field| field.to_string())
            .collect(),
        fs_type: unescape_string(fields.get(separator + 1)?),
        source: unescape_string(fields.get(separator + 2)?),
        // Old kernels may end the line after the source.
        super_options: fields
            .get(separator + 3)
            .map(|field| option_list(field))
            .unwrap_or_default(),
    })
}

/// Parse a whole mountinfo file. Lines that do not parse are skipped: a
/// report about the host should not die on one odd line.
pub fn parse_mountinfo(text: &str) -> Vec<MountInfo> {
    text.lines().filter_map(parse_mountinfo_line).collect()
}

/// This process's mount table, from /proc/self/mountinfo.
pub fn read_mountinfo() -> Result<Vec<MountInfo>, HostInfoError> {
    read_text(Path::new(MOUNTINFO)).map(|text| parse_mountinfo(&text))
}

/// Superblock options of a cgroup v1 mount that are not controllers: the
/// generic `rw`/`ro` and the flags cgroup v1 accepts (cgroups(7),
/// Documentation/admin-guide/cgroup-v1/cgroups.rst).
const CGROUP_V1_FLAGS: [&str; 10] = [
    "rw",
    "ro",
    "none",
    "all",
    "noprefix",
    "clone_children",
    "cpuset_v2_mode",
    "xattr",
    "favordynmods",
    "nofavordynmods",
];

/// Every cgroup v1 controller the host has mounted, with the mount point of
/// its hierarchy, in mount order. Controllers that share a hierarchy
/// (`cpu,cpuacct`) share a mount point. A hierarchy mounted twice (a bind
/// mount, a container's view) is reported once, where it was first mounted.
pub fn cgroup_v1_controllers(mounts: &[MountInfo]) -> Vec<(String, PathBuf)> {
    let mut found: Vec<(String, PathBuf)> = Vec::new();
    for mount in mounts.iter().filter(|mount| mount.fs_type == "cgroup") {
        for option in &mount.super_options {
            // Valued options (name=, release_agent=) are never controllers.
            let is_controller =
                !option.contains('=') && !CGROUP_V1_FLAGS.contains(&option.as_str());
            if is_controller && !found.iter().any(|(name, _)| name == option) {
                found.push((option.clone(), mount.mount_point.clone()));
            }
        }
    }
    found
}

/// Named cgroup v1 hierarchies (`name=systemd`): trees with no controller,
/// used only to group processes. systemd keeps one on legacy and hybrid
/// hosts.
pub fn cgroup_v1_named_hierarchies(mounts: &[MountInfo]) -> Vec<(String, PathBuf)> {
    let mut found: Vec<(String, PathBuf)> = Vec::new();
    for mount in mounts.iter().filter(|mount| mount.fs_type == "cgroup") {
        for option in &mount.super_options {
            if let Some(name) = option.strip_prefix("name=")
                && !found.iter().any(|(known, _)| known == name)
            {
                found.push((name.to_string(), mount.mount_point.clone()));
            }
        }
    }
    found
}

/// Where the cgroup2 filesystem is mounted, if anywhere (the first mount).
pub fn cgroup2_mount(mounts: &[MountInfo]) -> Option<PathBuf> {
    mounts
        .iter()
        .find(|mount| mount.fs_type == "cgroup2")
        .map(|mount| mount.mount_point.clone())
}

/// The controllers a cgroup2 directory offers, from its
/// `cgroup.controllers` (space-separated, cgroups(7) "Cgroups version 2").
/// At the root of a hybrid host this lists only the controllers that no v1
/// hierarchy has taken: a controller lives in one version at a time.
pub fn cgroup2_controllers(dir: &Path) -> Result<Vec<String>, HostInfoError> {
    let text = read_text(&dir.join("cgroup.controllers"))?;
    Ok(text.split_whitespace().map(str::to_string).collect())
}

// ---------------------------------------------------------------------------
// Filesystems

/// Whether /proc/filesystems lists `overlay`: the kernel can mount
/// overlayfs now. (A module that is not loaded yet is not listed; modprobe
/// adds it.)
pub fn overlay_listed(filesystems: &str) -> bool {
    filesystems
        .lines()
        .filter_map(|line| line.split_whitespace().last())
        .any(|name| name == "overlay")
}

/// Whether this kernel can mount overlayfs, which chapter 08's images
/// stack their layers with.
pub fn overlayfs_available() -> bool {
    read_text(Path::new(FILESYSTEMS)).is_ok_and(|text| overlay_listed(&text))
}

// ---------------------------------------------------------------------------
// User namespace switches

/// What one sysctl says about creating user namespaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsernsKnob {
    /// The file does not exist: this kernel has no such switch, so it
    /// restricts nothing.
    Absent,
    /// Present, and its value does not get in the way.
    Allows(i64),
    /// Present, and its value stops or restricts user namespaces.
    Blocks(i64),
    /// Present, but not a number.
    Unreadable(String),
}

fn knob(contents: Option<&str>, blocks: impl Fn(i64) -> bool) -> UsernsKnob {
    let Some(text) = contents else {
        return UsernsKnob::Absent;
    };
    match text.trim().parse::<i64>() {
        Ok(value) if blocks(value) => UsernsKnob::Blocks(value),
        Ok(value) => UsernsKnob::Allows(value),
        Err(_) => UsernsKnob::Unreadable(text.trim().to_string()),
    }
}

/// `user.max_user_namespaces`: 0 means nobody, root included, can create
/// a user namespace (namespaces(7)).
pub fn max_user_namespaces(contents: Option<&str>) -> UsernsKnob {
    knob(contents, |value| value <= 0)
}

/// `kernel.unprivileged_userns_clone` (Debian's patch): 0 means only
/// privileged processes can create user namespaces.
pub fn unprivileged_userns_clone(contents: Option<&str>) -> UsernsKnob {
    knob(contents, |value| value == 0)
}

/// `kernel.apparmor_restrict_unprivileged_userns` (Ubuntu): 1 means an
/// unprivileged process gets a user namespace without capabilities unless
/// its AppArmor profile allows `userns`; rootless runs then fail.
pub fn apparmor_restrict_unprivileged_userns(contents: Option<&str>) -> UsernsKnob {
    knob(contents, |value| value != 0)
}

// ---------------------------------------------------------------------------
// Programs

/// Find `program` the way execvp(3) does: a name with a `/` is taken as
/// is, anything else is looked up in each directory of `$PATH`.
pub fn find_in_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    find_in_dirs(program, &path)
}

/// [`find_in_path`] with the colon-separated directory list given. An
/// empty entry means the current directory, as in execvp(3).
pub fn find_in_dirs(program: &str, dirs: &OsStr) -> Option<PathBuf> {
    if program.is_empty() {
        return None;
    }
    if program.contains('/') {
        let path = PathBuf::from(program);
        return is_executable_file(&path).then_some(path);
    }
    std::env::split_paths(dirs)
        .map(|dir| {
            if dir.as_os_str().is_empty() {
                PathBuf::from(".").join(program)
            } else {
                dir.join(program)
            }
        })
        .find(|candidate| is_executable_file(candidate))
}

/// A regular file (after symlinks) with an execute bit set.
fn is_executable_file(path: &Path) -> bool {
    std::fs::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// ELF program header type of the program interpreter (elf(5)).
const PT_INTERP: u32 = 3;

/// Whether the ELF image that starts with `image` is statically linked:
/// it has no PT_INTERP program header naming a dynamic loader (elf(5)).
/// That is what lets one binary run inside a rootfs that has no libraries.
/// `None` when `image` is not ELF or is cut off before its program headers.
pub fn elf_is_static(image: &[u8]) -> Option<bool> {
    if image.get(..4)? != b"\x7fELF" {
        return None;
    }
    let wide = match image.get(4)? {
        1 => false,
        2 => true,
        _ => return None,
    };
    let little = match image.get(5)? {
        1 => true,
        2 => false,
        _ => return None,
    };
    let read = |offset: usize, len: usize| -> Option<u64> {
        let bytes = image.get(offset..offset.checked_add(len)?)?;
        let mut value = 0u64;
        for i in 0..len {
            let byte = if little { bytes[len - 1 - i] } else { bytes[i] };
            value = value << 8 | u64::from(byte);
        }
        Some(value)
    };
    // e_phoff, e_phentsize, e_phnum sit at different offsets per class.
    let (phoff, phentsize, phnum) = if wide {
        (read(0x20, 8)?, read(0x36, 2)?, read(0x38, 2)?)
    } else {
        (read(0x1c, 4)?, read(0x2a, 2)?, read(0x2c, 2)?)
    };
    let phoff = usize::try_from(phoff).ok()?;
    let phentsize = usize::try_from(phentsize).ok()?;
    for index in 0..usize::try_from(phnum).ok()? {
        let header = phoff.checked_add(index.checked_mul(phentsize)?)?;
        if read(header, 4)? == u64::from(PT_INTERP) {
            return Some(false);
        }
    }
    Some(true)
}

/// Whether the program at `path` is a statically linked ELF executable;
/// `Ok(None)` when it is not ELF (a script) or its headers are unusual.
pub fn is_static_executable(path: &Path) -> Result<Option<bool>, HostInfoError> {
    // Program headers follow the ELF header in every linker's output;
    // 64 KiB covers them without reading a multi-megabyte binary.
    let mut image = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(64 * 1024).read_to_end(&mut image))
        .map_err(|error| read_error(path, &error))?;
    Ok(elf_is_static(&image))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    #[test]
    fn control_characters_are_shown_as_question_marks() {
        assert_eq!(
            printable("sh \u{1b}]0;title\u{7}\nrow\tcell ünïcode"),
            "sh ?]0;title??row?cell ünïcode"
        );
    }

    /// A Ubuntu 22.04-style host: only cgroup2, at /sys/fs/cgroup.
    const UNIFIED: &str = "\
22 28 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
23 28 0:22 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
28 1 252:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
35 22 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

    /// A CentOS 7-style host: cgroup v1 only, systemd's named hierarchy,
    /// cpu and cpuacct (and net_cls, net_prio) sharing hierarchies.
    const LEGACY: &str = "\
18 61 0:17 / /sys rw,nosuid,nodev,noexec,relatime shared:6 - sysfs sysfs rw
24 18 0:20 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:7 - tmpfs tmpfs ro,mode=755
25 24 0:21 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:8 - cgroup cgroup rw,xattr,release_agent=/usr/lib/systemd/systemd-cgroups-agent,name=systemd
28 24 0:24 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
29 24 0:25 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,memory
30 24 0:26 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,pids
31 24 0:27 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,net_cls,net_prio
32 24 0:28 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,cpuset
61 0 253:0 / / rw,relatime shared:1 - xfs /dev/mapper/centos-root rw,attr2,inode64,noquota
";

    /// This lab's own build machine: v1 controllers each in its own
    /// hierarchy, systemd's named one, and a cgroup2 at `unified` that
    /// holds the one controller left over (hugetlb).
    const HYBRID: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
23 27 0:22 / /sys rw,relatime - sysfs sysfs rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    fn controllers(mounts: &[MountInfo]) -> Vec<(String, String)> {
        cgroup_v1_controllers(mounts)
            .into_iter()
            .map(|(name, path)| (name, path.display().to_string()))
            .collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    fn temp_dir(test: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("lab-hostinfo-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn layout_follows_runc_and_systemd() {
        assert_eq!(
            cgroup_layout_from(FsKind::Cgroup2, false),
            Some(CgroupLayout::Unified)
        );
        // cgroup2 at the top wins whatever `unified` is.
        assert_eq!(
            cgroup_layout_from(FsKind::Cgroup2, true),
            Some(CgroupLayout::Unified)
        );
        assert_eq!(
            cgroup_layout_from(FsKind::Tmpfs, false),
            Some(CgroupLayout::Legacy)
        );
        assert_eq!(
            cgroup_layout_from(FsKind::Tmpfs, true),
            Some(CgroupLayout::Hybrid)
        );
        assert_eq!(cgroup_layout_from(FsKind::Other(0x62656572), false), None);
    }

    #[test]
    fn magic_numbers_map_to_kinds() {
        assert_eq!(FsKind::from(FsType(0x63677270)), FsKind::Cgroup2);
        assert_eq!(FsKind::from(FsType(0x01021994)), FsKind::Tmpfs);
        let sysfs = FsKind::from(FsType(0x62656572));
        assert_eq!(sysfs, FsKind::Other(0x62656572));
        assert_eq!(sysfs.to_string(), "a filesystem of type 0x62656572");
    }

    #[test]
    fn detecting_a_missing_root_is_an_error_with_errno() {
        let error = detect_cgroup_layout_at(Path::new("/nonexistent/cgroup")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "statfs /nonexistent/cgroup: no such file or directory (ENOENT)"
        );
    }

    #[test]
    fn a_plain_directory_is_not_a_cgroup_root() {
        // /proc is procfs on every Linux host: neither tmpfs nor cgroup2.
        let error = detect_cgroup_layout_at(Path::new("/proc")).unwrap_err();
        assert!(
            matches!(error, HostInfoError::NotCgroup { .. }),
            "{error:?}"
        );
        assert!(
            error
                .to_string()
                .starts_with("/proc is a filesystem of type 0x9fa0,")
        );
    }

    #[test]
    fn parses_every_field() {
        let line = "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue";
        let mount = parse_mountinfo_line(line).unwrap();
        assert_eq!(
            mount,
            MountInfo {
                mount_id: 36,
                parent_id: 35,
                major_minor: (98, 0),
                root: "/mnt1".into(),
                mount_point: "/mnt2".into(),
                options: vec!["rw".into(), "noatime".into()],
                optional_fields: vec!["master:1".into()],
                fs_type: "ext3".into(),
                source: "/dev/root".into(),
                super_options: vec!["rw".into(), "errors=continue".into()],
            }
        );
        assert_eq!(mount.master_group(), Some(1));
        assert_eq!(mount.peer_group(), None);
    }

    #[test]
    fn optional_fields_vary_in_number() {
        let none = parse_mountinfo_line("1 0 0:1 / / rw - rootfs rootfs rw").unwrap();
        assert!(none.optional_fields.is_empty());
        let two =
            parse_mountinfo_line("40 30 0:40 / /mnt/slave rw shared:5 master:3 - tmpfs tmpfs rw")
                .unwrap();
        assert_eq!(two.optional_fields, ["shared:5", "master:3"]);
        assert_eq!(two.peer_group(), Some(5));
        assert_eq!(two.master_group(), Some(3));
        assert_eq!(two.fs_type, "tmpfs");
    }

    #[test]
    fn escaped_paths_are_decoded() {
        let line = r"50 27 0:50 /a\134b /mnt/my\040disk\011tab rw,relatime - fuse.sshfs me@host:/my\040files rw";
        let mount = parse_mountinfo_line(line).unwrap();
        assert_eq!(mount.mount_point, Path::new("/mnt/my disk\ttab"));
        assert_eq!(mount.root, Path::new("/a\\b"));
        assert_eq!(mount.source, "me@host:/my files");
        assert_eq!(mount.fs_type, "fuse.sshfs");
    }

    #[test]
    fn escapes_may_decode_to_bytes_that_are_not_utf8() {
        let mount = parse_mountinfo_line(r"1 0 0:1 / /mnt/\377 rw - tmpfs tmpfs rw").unwrap();
        assert_eq!(mount.mount_point.as_os_str().as_bytes(), b"/mnt/\xff");
    }

    #[test]
    fn a_lone_backslash_is_kept() {
        let mount = parse_mountinfo_line(r"1 0 0:1 / /mnt/a\b\04 rw - tmpfs tmpfs rw").unwrap();
        assert_eq!(mount.mount_point, Path::new(r"/mnt/a\b\04"));
    }

    #[test]
    fn bad_lines_are_skipped_not_fatal() {
        let text = "garbage\n\n1 0 0:1 / / rw no-separator\nx 0 0:1 / / rw - tmpfs tmpfs rw\n\
                    7 1 0:9 / /ok rw - tmpfs tmpfs rw\n2 1 8 / /x rw - tmpfs tmpfs rw\n";
        let mounts = parse_mountinfo(text);
        assert_eq!(mounts.len(), 1);
        assert_eq!(mounts[0].mount_point, Path::new("/ok"));
    }

    #[test]
    fn line_without_super_options_still_parses() {
        let mount = parse_mountinfo_line("3 1 0:3 / /old rw - tmpfs none").unwrap();
        assert_eq!(mount.source, "none");
        assert!(mount.super_options.is_empty());
    }

    #[test]
    fn unified_host_has_one_cgroup2_and_no_v1() {
        let mounts = parse_mountinfo(UNIFIED);
        assert_eq!(mounts.len(), 4);
        assert_eq!(
            cgroup2_mount(&mounts),
            Some(PathBuf::from("/sys/fs/cgroup"))
        );
        assert!(cgroup_v1_controllers(&mounts).is_empty());
        assert!(cgroup_v1_named_hierarchies(&mounts).is_empty());
    }

    #[test]
    fn legacy_host_lists_controllers_by_hierarchy() {
        let mounts = parse_mountinfo(LEGACY);
        assert_eq!(cgroup2_mount(&mounts), None);
        assert_eq!(
            controllers(&mounts),
            pairs(&[
                ("cpu", "/sys/fs/cgroup/cpu,cpuacct"),
                ("cpuacct", "/sys/fs/cgroup/cpu,cpuacct"),
                ("memory", "/sys/fs/cgroup/memory"),
                ("pids", "/sys/fs/cgroup/pids"),
                ("net_cls", "/sys/fs/cgroup/net_cls,net_prio"),
                ("net_prio", "/sys/fs/cgroup/net_cls,net_prio"),
                ("cpuset", "/sys/fs/cgroup/cpuset"),
            ])
        );
        // xattr and release_agent= are flags, name=systemd is no controller.
        let named: Vec<_> = cgroup_v1_named_hierarchies(&mounts);
        assert_eq!(
            named,
            [(
                "systemd".to_string(),
                PathBuf::from("/sys/fs/cgroup/systemd")
            )]
        );
    }

    #[test]
    fn hybrid_host_has_both() {
        let mounts = parse_mountinfo(HYBRID);
        assert_eq!(
            cgroup2_mount(&mounts),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        let names: Vec<String> = cgroup_v1_controllers(&mounts)
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        assert_eq!(
            names,
            [
                "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids"
            ]
        );
        assert_eq!(cgroup_v1_named_hierarchies(&mounts).len(), 1);
    }

    #[test]
    fn a_hierarchy_mounted_twice_is_reported_once() {
        let text = format!(
            "{LEGACY}90 1 0:25 / /container/sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
        );
        let memory: Vec<_> = cgroup_v1_controllers(&parse_mountinfo(&text))
            .into_iter()
            .filter(|(name, _)| name == "memory")
            .collect();
        assert_eq!(
            memory,
            [("memory".to_string(), PathBuf::from("/sys/fs/cgroup/memory"))]
        );
    }

    #[test]
    fn cgroup2_controllers_come_from_the_file() {
        let dir = temp_dir("controllers");
        std::fs::write(
            dir.join("cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        )
        .unwrap();
        assert_eq!(
            cgroup2_controllers(&dir).unwrap(),
            ["cpuset", "cpu", "io", "memory", "pids"]
        );
        std::fs::write(dir.join("cgroup.controllers"), "\n").unwrap();
        assert!(cgroup2_controllers(&dir).unwrap().is_empty());
        std::fs::remove_file(dir.join("cgroup.controllers")).unwrap();
        let error = cgroup2_controllers(&dir).unwrap_err();
        assert!(error.to_string().starts_with("read "), "{error}");
        assert!(error.to_string().ends_with("(ENOENT)"), "{error}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn kernel_versions_parse() {
        assert_eq!(parse_kernel_version("6.18.44-fc-v509"), Some((6, 18)));
        assert_eq!(parse_kernel_version("5.4.0-150-generic"), Some((5, 4)));
        assert_eq!(parse_kernel_version("4.19"), Some((4, 19)));
        assert_eq!(parse_kernel_version("5.6rc1"), Some((5, 6)));
        assert_eq!(parse_kernel_version("6"), None);
        assert_eq!(parse_kernel_version("unknown"), None);
        assert!(parse_kernel_version(&kernel_release()).is_some());
    }

    #[test]
    fn overlay_is_found_in_proc_filesystems() {
        let with = "nodev\tsysfs\nnodev\ttmpfs\n\text4\nnodev\toverlay\n";
        let without = "nodev\tsysfs\n\text4\nnodev\toverlayish\n";
        assert!(overlay_listed(with));
        assert!(!overlay_listed(without));
        assert!(!overlay_listed(""));
    }

    #[test]
    fn max_user_namespaces_zero_disables() {
        assert_eq!(max_user_namespaces(Some("0\n")), UsernsKnob::Blocks(0));
        assert_eq!(
            max_user_namespaces(Some("63372\n")),
            UsernsKnob::Allows(63372)
        );
        assert_eq!(max_user_namespaces(None), UsernsKnob::Absent);
        assert_eq!(
            max_user_namespaces(Some("lots")),
            UsernsKnob::Unreadable("lots".into())
        );
    }

    #[test]
    fn debian_clone_switch_zero_disables_unprivileged() {
        assert_eq!(
            unprivileged_userns_clone(Some("0\n")),
            UsernsKnob::Blocks(0)
        );
        assert_eq!(
            unprivileged_userns_clone(Some("1\n")),
            UsernsKnob::Allows(1)
        );
        assert_eq!(unprivileged_userns_clone(None), UsernsKnob::Absent);
    }

    #[test]
    fn apparmor_switch_one_restricts() {
        assert_eq!(
            apparmor_restrict_unprivileged_userns(Some("1\n")),
            UsernsKnob::Blocks(1)
        );
        assert_eq!(
            apparmor_restrict_unprivileged_userns(Some("0\n")),
            UsernsKnob::Allows(0)
        );
        assert_eq!(
            apparmor_restrict_unprivileged_userns(None),
            UsernsKnob::Absent
        );
    }

    #[test]
    fn missing_sysctl_is_none_not_an_error() {
        let dir = temp_dir("sysctl");
        assert_eq!(read_if_present(&dir.join("absent")), Ok(None));
        std::fs::write(dir.join("present"), "1\n").unwrap();
        assert_eq!(
            read_if_present(&dir.join("present")),
            Ok(Some("1\n".to_string()))
        );
        // A directory cannot be read as a file: that is an error, with errno.
        assert!(matches!(
            read_if_present(&dir),
            Err(HostInfoError::Read {
                errno: Errno::EISDIR,
                ..
            })
        ));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn programs_are_found_in_the_listed_dirs_only() {
        let dir = temp_dir("path");
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        std::fs::create_dir_all(dir.join("sbin")).unwrap();
        let tool = dir.join("sbin/tool");
        std::fs::write(&tool, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        let data = dir.join("bin/data");
        std::fs::write(&data, "").unwrap();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::create_dir_all(dir.join("bin/subdir")).unwrap();

        let dirs = std::env::join_paths([dir.join("bin"), dir.join("sbin")]).unwrap();
        assert_eq!(find_in_dirs("tool", &dirs), Some(tool.clone()));
        assert_eq!(find_in_dirs("data", &dirs), None, "not executable");
        assert_eq!(find_in_dirs("subdir", &dirs), None, "a directory");
        assert_eq!(find_in_dirs("tool", dir.join("bin").as_os_str()), None);
        assert_eq!(find_in_dirs("", &dirs), None);
        let absolute = tool.to_str().unwrap();
        assert_eq!(find_in_dirs(absolute, OsStr::new("")), Some(tool.clone()));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_shell_is_on_path() {
        assert!(find_in_path("sh").is_some());
        assert_eq!(find_in_path("no-such-program-container-lab"), None);
    }

    /// A minimal ELF header with `types` as its program headers' p_type.
    fn elf64(types: &[u32]) -> Vec<u8> {
        let mut image = vec![0u8; 64];
        image[..4].copy_from_slice(b"\x7fELF");
        image[4] = 2; // ELFCLASS64
        image[5] = 1; // ELFDATA2LSB
        image[0x20..0x28].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
        image[0x36..0x38].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
        image[0x38..0x3a].copy_from_slice(&(types.len() as u16).to_le_bytes());
        for p_type in types {
            let mut header = vec![0u8; 56];
            header[..4].copy_from_slice(&p_type.to_le_bytes());
            image.extend(header);
        }
        image
    }

    fn elf32_big_endian(types: &[u32]) -> Vec<u8> {
        let mut image = vec![0u8; 52];
        image[..4].copy_from_slice(b"\x7fELF");
        image[4] = 1; // ELFCLASS32
        image[5] = 2; // ELFDATA2MSB
        image[0x1c..0x20].copy_from_slice(&52u32.to_be_bytes());
        image[0x2a..0x2c].copy_from_slice(&32u16.to_be_bytes());
        image[0x2c..0x2e].copy_from_slice(&(types.len() as u16).to_be_bytes());
        for p_type in types {
            let mut header = vec![0u8; 32];
            header[..4].copy_from_slice(&p_type.to_be_bytes());
            image.extend(header);
        }
        image
    }

    #[test]
    fn pt_interp_means_dynamic() {
        // PT_PHDR, PT_INTERP, PT_LOAD: a dynamically linked program.
        assert_eq!(elf_is_static(&elf64(&[6, 3, 1])), Some(false));
        // PT_LOAD, PT_NOTE, PT_TLS: a static one.
        assert_eq!(elf_is_static(&elf64(&[1, 4, 7])), Some(true));
        assert_eq!(elf_is_static(&elf32_big_endian(&[1, 3])), Some(false));
        assert_eq!(elf_is_static(&elf32_big_endian(&[1])), Some(true));
    }

    #[test]
    fn not_elf_or_cut_short_is_unknown() {
        assert_eq!(elf_is_static(b"#!/bin/sh\n"), None);
        assert_eq!(elf_is_static(b""), None);
        let whole = elf64(&[1, 3]);
        assert_eq!(elf_is_static(&whole[..80]), None);
        let mut bad_class = elf64(&[1]);
        bad_class[4] = 9;
        assert_eq!(elf_is_static(&bad_class), None);
    }

    #[test]
    fn reading_a_script_is_not_elf() {
        let dir = temp_dir("elf");
        std::fs::write(dir.join("script"), "#!/bin/sh\n").unwrap();
        assert_eq!(is_static_executable(&dir.join("script")), Ok(None));
        assert!(is_static_executable(&dir.join("absent")).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
