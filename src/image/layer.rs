//! Unpacking one layer: a tar whose entries become files in a directory of
//! their own, with Docker's whiteouts turned into overlayfs's. This is the
//! one place where bytes from an image become files on the host, so it is
//! also where a hostile archive is stopped.
//!
//! The `tar` crate parses headers (ustar, GNU and pax long names, pax
//! records); what becomes of each entry is decided here:
//!
//! - a path with `..`, or an absolute one, is refused: it names a place
//!   outside the layer;
//! - every directory on the way to an entry is opened with openat2(2) and
//!   `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`: an archive that plants a
//!   symlink and then writes through it (the path traversals of Docker's
//!   layer extraction, CVE-2014-6407 and CVE-2014-9356) is refused by the
//!   kernel, not by a string check;
//! - files are made with the `*at` calls relative to that directory, with
//!   `O_EXCL | O_NOFOLLOW`: nothing already there is followed;
//! - a hard link must name an earlier entry of this layer, found the same
//!   way;
//! - a file larger than the free space of the store's filesystem is
//!   refused before a byte of it is written;
//! - overlayfs's own xattrs (`trusted.overlay.*`) in an archive are
//!   dropped: only the lab's whiteouts may steer the overlay.
//!
//! Whiteouts (the OCI image spec's, from AUFS): an entry `dir/.wh.NAME`
//! says NAME of a lower layer is deleted: it becomes a character device
//! 0/0 named NAME, which is how overlayfs marks a deletion. `.wh..wh..opq`
//! says its directory hides everything lower layers have in it: the
//! directory gets the xattr `trusted.overlay.opaque=y`.

use crate::error::LabError;
use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{Mode, SFlag};
use std::ffi::{CString, OsStr, OsString};
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

pub const WHITEOUT_PREFIX: &str = ".wh.";
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// What unpacking may do, which depends on who does it.
#[derive(Clone, Debug)]
pub struct ApplyOptions {
    /// The host's root: files get the owners the archive gives them,
    /// device nodes are made, the overlay's xattrs are `trusted.*`.
    /// Anyone else: every file is theirs, device nodes are skipped, the
    /// overlay's xattrs are `user.*` (overlayfs's `userxattr`).
    pub privileged: bool,
}

impl ApplyOptions {
    pub fn for_this_user() -> ApplyOptions {
        ApplyOptions {
            privileged: nix::unistd::geteuid().is_root(),
        }
    }

    /// The xattr that makes a directory opaque to the layers below.
    pub fn opaque_xattr(&self) -> &'static str {
        match self.privileged {
            true => "trusted.overlay.opaque",
            false => "user.overlay.opaque",
        }
    }
}

/// What a layer held.
#[derive(Debug, Default, Clone)]
pub struct Applied {
    pub entries: u64,
    /// Bytes of file content written.
    pub bytes: u64,
    pub whiteouts: u64,
    /// What was left out, and why (device nodes when rootless, ...).
    pub notes: Vec<String>,
}

/// One refusal: the entry's path, and why.
fn hostile(path: &[u8], why: impl std::fmt::Display) -> LabError {
    LabError::Image {
        message: format!("archive refused: entry {:?} {why}", String::from_utf8_lossy(path)),
        hint: "the archive tries to write outside its layer or is damaged; nothing was written outside the layer's own directory, which was removed".into(),
    }
}

/// The components of an entry's path, refused if any is `..` or the path
/// is absolute. `./a//b/` gives `[a, b]`; `./` gives `[]` (the layer's
/// root).
pub fn components(path: &[u8]) -> Result<Vec<&[u8]>, LabError> {
    if path.starts_with(b"/") {
        return Err(hostile(path, "is an absolute path"));
    }
    if path.contains(&0) {
        return Err(hostile(path, "holds a NUL byte"));
    }
    let parts: Vec<&[u8]> = path
        .split(|&b| b == b'/')
        .filter(|part| !part.is_empty() && *part != b".")
        .collect();
    if parts.iter().any(|part| *part == b"..") {
        return Err(hostile(path, "climbs out with `..`"));
    }
    Ok(parts)
}

fn join(parts: &[&[u8]]) -> Vec<u8> {
    parts.join(&b'/')
}

fn c_name(part: &[u8]) -> CString {
    CString::new(part).expect("components hold no NUL")
}

// ANCHOR: open_beneath
/// A directory of the layer, opened so that the kernel itself refuses to
/// leave the layer (RESOLVE_BENEATH) or to follow any symlink on the way
/// (RESOLVE_NO_SYMLINKS), so no earlier entry can redirect a later one.
pub fn open_beneath(root: &OwnedFd, parts: &[&[u8]]) -> nix::Result<OwnedFd> {
    let how = OpenHow::new()
        .flags(OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW)
        .resolve(
            ResolveFlag::RESOLVE_BENEATH
                | ResolveFlag::RESOLVE_NO_SYMLINKS
                | ResolveFlag::RESOLVE_NO_MAGICLINKS
                | ResolveFlag::RESOLVE_NO_XDEV,
        );
    match parts.is_empty() {
        true => nix::fcntl::openat2(root, c".", how),
        false => nix::fcntl::openat2(root, OsStr::from_bytes(&join(parts)), how),
    }
}
// ANCHOR_END: open_beneath

/// The entry's parent directory, made (0755, owned by whoever unpacks) if
/// the archive did not list it first, as tar(1) does.
fn parent_dir(root: &OwnedFd, path: &[u8], parts: &[&[u8]]) -> Result<OwnedFd, LabError> {
    match open_beneath(root, parts) {
        Ok(fd) => return Ok(fd),
        Err(Errno::ENOENT) => {}
        Err(errno) => return Err(refusal_for(path, errno)),
    }
    let mut dir = open_beneath(root, &[]).map_err(|errno| LabError::StepFailed {
        syscall: "openat2",
        target: ".".into(),
        errno,
    })?;
    for (depth, part) in parts.iter().enumerate() {
        match nix::sys::stat::mkdirat(
            &dir,
            c_name(part).as_c_str(),
            Mode::from_bits_truncate(0o755),
        ) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(errno) => return Err(refusal_for(path, errno)),
        }
        dir = open_beneath(root, &parts[..=depth]).map_err(|errno| refusal_for(path, errno))?;
    }
    Ok(dir)
}

/// What an errno from resolving a path means for the archive.
fn refusal_for(path: &[u8], errno: Errno) -> LabError {
    match errno {
        Errno::ELOOP => hostile(
            path,
            "goes through a symlink (a write through a link is how archives escape)",
        ),
        Errno::EXDEV => hostile(path, "resolves outside the layer"),
        Errno::ENOTDIR => hostile(path, "goes through something that is not a directory"),
        Errno::ENAMETOOLONG => hostile(path, "has a name too long for the kernel"),
        errno => LabError::StepFailed {
            syscall: "openat2",
            target: String::from_utf8_lossy(path).into_owned(),
            errno,
        },
    }
}

/// Bytes the store's filesystem can still take.
fn free_bytes(dir: &OwnedFd) -> u64 {
    nix::sys::statvfs::fstatvfs(dir)
        .map(|s| s.blocks_available() * s.fragment_size())
        .unwrap_or(u64::MAX)
}

/// A directory whose mode and time are set once its entries are in: a
/// 0555 directory set first would refuse them, and each entry changes
/// its directory's mtime.
struct DirLater {
    path: Vec<u8>,
    mode: u32,
    mtime: i64,
}

// ANCHOR: apply
/// Unpack the tar read from `tar` into `dir` (empty, the layer's own).
pub fn apply(tar: impl Read, dir: &Path, options: &ApplyOptions) -> Result<Applied, LabError> {
    let root: OwnedFd = std::fs::File::open(dir)
        .map_err(|e| LabError::io("open", dir.display(), e))?
        .into();
    let mut archive = tar::Archive::new(HeaderGuard::new(tar));
    let mut applied = Applied::default();
    let mut dirs_later = Vec::new();
    let mut room = free_bytes(&root);
    let mut devices_skipped = 0;
    let entries = archive
        .entries()
        .map_err(|e| LabError::io("read", "tar", e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| damaged(&e))?;
        let path = entry.path_bytes().into_owned();
        let parts = components(&path)?;
        let kind = entry.header().entry_type();
        applied.entries += 1;
        let Some((name, parents)) = parts.split_last() else {
            // `./`: the layer's root directory itself.
            if kind.is_dir() {
                dirs_later.push(DirLater {
                    path: vec![],
                    mode: mode_of(&entry),
                    mtime: mtime_of(&entry),
                });
            }
            continue;
        };
        let parent = parent_dir(&root, &path, parents)?;
        // Whiteouts: deletions of what lower layers hold.
        if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
            applied.whiteouts += 1;
            if *name == OPAQUE_MARKER.as_bytes() {
                set_xattr(&parent, options.opaque_xattr(), b"y")
                    .map_err(|errno| step("fsetxattr", &path, errno))?;
            } else if hidden.starts_with(WHITEOUT_PREFIX.as_bytes()) {
                // AUFS's own bookkeeping (.wh..wh.plnk, ...): not a deletion.
            } else if hidden.is_empty() || hidden == b"." || hidden == b".." {
                return Err(hostile(
                    &path,
                    "is a whiteout of no file, or of a path outside",
                ));
            } else {
                make_whiteout(&parent, hidden).map_err(|errno| step("mknodat", &path, errno))?;
            }
            continue;
        }
        let name = c_name(name);
        clear_the_way(&parent, &name, kind.is_dir())
            .map_err(|errno| step("unlinkat", &path, errno))?;
        let (uid, gid) = owner_of(&mut entry);
        let mode = mode_of(&entry);
        let mtime = mtime_of(&entry);
        match kind {
            tar::EntryType::Directory => {
                match nix::sys::stat::mkdirat(
                    &parent,
                    name.as_c_str(),
                    Mode::from_bits_truncate(0o700),
                ) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(errno) => return Err(step("mkdirat", &path, errno)),
                }
                let dir = open_beneath(&root, &parts).map_err(|errno| refusal_for(&path, errno))?;
                if options.privileged {
                    chown(&dir, uid, gid).map_err(|errno| step("fchown", &path, errno))?;
                }
                set_xattrs(&dir, &mut entry, options, &path, &mut applied)?;
                dirs_later.push(DirLater {
                    path: path.clone(),
                    mode,
                    mtime,
                });
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let size = entry.size();
                if size > room {
                    return Err(hostile(
                        &path,
                        format!(
                            "is {size} bytes, more than the {room} bytes free where the store is"
                        ),
                    ));
                }
                room -= size;
                let fd = nix::fcntl::openat(
                    &parent,
                    name.as_c_str(),
                    OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_WRONLY
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o600),
                )
                .map_err(|errno| step("openat", &path, errno))?;
                // One write(2) per 256 KiB, not per 8 KiB (io::copy's own
                // buffer); no larger than the file, so a small file costs
                // no large allocation.
                let buffer = (size as usize).clamp(4096, 256 << 10);
                let mut file = std::io::BufWriter::with_capacity(buffer, std::fs::File::from(fd));
                applied.bytes += std::io::copy(&mut entry, &mut file).map_err(|e| damaged(&e))?;
                let file = file.into_inner().map_err(|e| damaged(e.error()))?;
                let fd = OwnedFd::from(file);
                if options.privileged {
                    chown(&fd, uid, gid).map_err(|errno| step("fchown", &path, errno))?;
                }
                // After chown(2), which clears setuid and setgid bits.
                nix::sys::stat::fchmod(&fd, Mode::from_bits_truncate(mode))
                    .map_err(|errno| step("fchmod", &path, errno))?;
                set_xattrs(&fd, &mut entry, options, &path, &mut applied)?;
                set_mtime(&fd, mtime).map_err(|errno| step("futimens", &path, errno))?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| hostile(&path, "is a symlink to nothing"))?;
                // Any target may be stored: it is resolved inside the
                // container's root when followed there, and nothing here
                // ever follows it (RESOLVE_NO_SYMLINKS above).
                nix::unistd::symlinkat(OsStr::from_bytes(&target), &parent, name.as_c_str())
                    .map_err(|errno| step("symlinkat", &path, errno))?;
                if options.privileged {
                    chown_entry(&parent, &name, uid, gid)
                        .map_err(|errno| step("fchownat", &path, errno))?;
                }
                let time = nix::sys::time::TimeSpec::new(mtime, 0);
                nix::sys::stat::utimensat(
                    &parent,
                    name.as_c_str(),
                    &time,
                    &time,
                    nix::sys::stat::UtimensatFlags::NoFollowSymlink,
                )
                .map_err(|errno| step("utimensat", &path, errno))?;
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| hostile(&path, "is a hard link to nothing"))?
                    .into_owned();
                let target_parts = components(&target)
                    .map_err(|_| hostile(&path, "is a hard link to a path outside the layer"))?;
                let Some((target_name, target_parents)) = target_parts.split_last() else {
                    return Err(hostile(&path, "is a hard link to the layer's root"));
                };
                let target_dir =
                    open_beneath(&root, target_parents).map_err(|errno| match errno {
                        Errno::ENOENT => {
                            hostile(&path, "is a hard link to a file this layer does not hold")
                        }
                        errno => refusal_for(&path, errno),
                    })?;
                nix::unistd::linkat(
                    &target_dir,
                    c_name(target_name).as_c_str(),
                    &parent,
                    name.as_c_str(),
                    nix::fcntl::AtFlags::empty(),
                )
                .map_err(|errno| match errno {
                    Errno::ENOENT => {
                        hostile(&path, "is a hard link to a file this layer does not hold")
                    }
                    errno => step("linkat", &path, errno),
                })?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let file_type = match kind {
                    tar::EntryType::Char => SFlag::S_IFCHR,
                    tar::EntryType::Block => SFlag::S_IFBLK,
                    _ => SFlag::S_IFIFO,
                };
                if file_type != SFlag::S_IFIFO && !options.privileged {
                    devices_skipped += 1;
                    continue;
                }
                let major = entry.header().device_major().ok().flatten().unwrap_or(0);
                let minor = entry.header().device_minor().ok().flatten().unwrap_or(0);
                nix::sys::stat::mknodat(
                    &parent,
                    name.as_c_str(),
                    file_type,
                    Mode::from_bits_truncate(mode),
                    nix::sys::stat::makedev(major.into(), minor.into()),
                )
                .map_err(|errno| step("mknodat", &path, errno))?;
                if options.privileged {
                    chown_entry(&parent, &name, uid, gid)
                        .map_err(|errno| step("fchownat", &path, errno))?;
                }
                // mknodat(2) applies the umask, and chown clears setgid:
                // the archive's mode, exactly, last. The node was made just
                // now by this process, in a directory only it writes.
                nix::sys::stat::fchmodat(
                    &parent,
                    name.as_c_str(),
                    Mode::from_bits_truncate(mode),
                    nix::sys::stat::FchmodatFlags::FollowSymlink,
                )
                .map_err(|errno| step("fchmodat", &path, errno))?;
            }
            other => {
                applied.notes.push(format!(
                    "{}: a tar entry of type {other:?} was left out",
                    String::from_utf8_lossy(&path)
                ));
            }
        }
    }
    if devices_skipped > 0 {
        applied.notes.push(format!(
            "{devices_skipped} device node(s) left out: only the host's root can make them (the container gets its own /dev)"
        ));
    }
    // Deepest first, so a parent's time is set after its children.
    for later in dirs_later.iter().rev() {
        let parts = components(&later.path)?;
        let dir = open_beneath(&root, &parts).map_err(|errno| refusal_for(&later.path, errno))?;
        nix::sys::stat::fchmod(&dir, Mode::from_bits_truncate(later.mode))
            .map_err(|errno| step("fchmod", &later.path, errno))?;
        set_mtime(&dir, later.mtime).map_err(|errno| step("futimens", &later.path, errno))?;
    }
    Ok(applied)
}
// ANCHOR_END: apply

/// Long names and pax records (tar entries of type `L`, `K`, `x`, `g`) are
/// read whole into memory by the tar crate before the entry they describe:
/// a 3 MB gzip of a header that declares a 3 GiB long name would take 3 GiB
/// of the host's memory. Real ones are a path or a few xattrs long.
pub const MAX_EXTENDED_HEADER: u64 = 1 << 20;

/// Watches the tar stream on its way to the tar crate, block by block,
/// and stops it at an extended header larger than MAX_EXTENDED_HEADER,
/// before a byte of it is buffered.
struct HeaderGuard<R> {
    inner: R,
    /// Bytes of the current header block seen so far.
    header: Vec<u8>,
    /// Bytes of entry data (padded to 512) still to pass before a header.
    data_left: u64,
    /// Old GNU sparse headers (type `S`) may be followed by extension
    /// blocks before their data: the data waits until the last one.
    in_sparse_extension: bool,
    data_after_extensions: u64,
}

impl<R> HeaderGuard<R> {
    fn new(inner: R) -> HeaderGuard<R> {
        HeaderGuard {
            inner,
            header: Vec::with_capacity(512),
            data_left: 0,
            in_sparse_extension: false,
            data_after_extensions: 0,
        }
    }

    /// A header block is complete: how much data follows it, or why not.
    fn check(&self) -> std::io::Result<u64> {
        let block = &self.header;
        if block.iter().all(|&b| b == 0) {
            return Ok(0); // an end-of-archive block
        }
        let size = tar_size(&block[124..136]);
        let kind = block[156];
        if matches!(kind, b'L' | b'K' | b'x' | b'g') && size > MAX_EXTENDED_HEADER {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "an extended header (type {}) of {size} bytes, more than the {MAX_EXTENDED_HEADER} a name or a few xattrs need: refused before it is read",
                    kind as char
                ),
            ));
        }
        Ok(size.div_ceil(512) * 512)
    }
}

/// A tar header's size field: octal digits, or GNU's base-256 (the high
/// bit of the first byte set) for sizes of 8 GiB and more.
fn tar_size(field: &[u8]) -> u64 {
    if field[0] & 0x80 != 0 {
        return field[1..]
            .iter()
            .fold(0u64, |n, &b| n.saturating_mul(256).saturating_add(b as u64));
    }
    field
        .iter()
        .skip_while(|&&b| b == b' ' || b == 0)
        .take_while(|b| b.is_ascii_digit())
        .fold(0u64, |n, &b| {
            n.saturating_mul(8).saturating_add((b - b'0') as u64)
        })
}

impl<R: Read> Read for HeaderGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // Never hand out more than the rest of the current block or data,
        // so every header passes through `header` whole.
        let want = match self.data_left {
            0 => buf.len().min(512 - self.header.len()),
            left => buf.len().min(left.min(usize::MAX as u64) as usize),
        };
        let n = self.inner.read(&mut buf[..want])?;
        if self.data_left > 0 {
            self.data_left -= n as u64;
        } else {
            self.header.extend_from_slice(&buf[..n]);
            if self.header.len() == 512 {
                if self.in_sparse_extension {
                    // Byte 504 of an extension block: another follows.
                    self.in_sparse_extension = self.header[504] != 0;
                    if !self.in_sparse_extension {
                        self.data_left = self.data_after_extensions;
                    }
                } else {
                    let data = self.check()?;
                    // Byte 482 of a GNU sparse header: extension blocks follow.
                    match self.header[156] == b'S' && self.header[482] != 0 {
                        true => {
                            self.in_sparse_extension = true;
                            self.data_after_extensions = data;
                        }
                        false => self.data_left = data,
                    }
                }
                self.header.clear();
            }
        }
        Ok(n)
    }
}

fn damaged(error: &std::io::Error) -> LabError {
    LabError::Image {
        message: format!("archive is damaged: {error}"),
        hint: "the file is truncated or not a tar archive; nothing was kept of this layer".into(),
    }
}

fn step(syscall: &'static str, path: &[u8], errno: Errno) -> LabError {
    LabError::StepFailed {
        syscall,
        target: String::from_utf8_lossy(path).into_owned(),
        errno,
    }
}

/// Permission bits, with setuid, setgid and sticky (07777).
fn mode_of<R: Read>(entry: &tar::Entry<R>) -> u32 {
    entry.header().mode().unwrap_or(0o644) & 0o7777
}

fn mtime_of<R: Read>(entry: &tar::Entry<R>) -> i64 {
    entry.header().mtime().unwrap_or(0) as i64
}

/// Owner and group: the header's, or the pax record's when the ids are too
/// large for the header's octal fields.
fn owner_of<R: Read>(entry: &mut tar::Entry<R>) -> (u32, u32) {
    let mut uid = entry.header().uid().unwrap_or(0) as u32;
    let mut gid = entry.header().gid().unwrap_or(0) as u32;
    if let Ok(Some(extensions)) = entry.pax_extensions() {
        for extension in extensions.flatten() {
            let value = extension.value().ok().and_then(|v| v.parse::<u32>().ok());
            match (extension.key(), value) {
                (Ok("uid"), Some(value)) => uid = value,
                (Ok("gid"), Some(value)) => gid = value,
                _ => {}
            }
        }
    }
    (uid, gid)
}

/// A later entry replaces an earlier one of the same name (tar's rule); a
/// directory stays a directory when the entry is one too.
fn clear_the_way(parent: &OwnedFd, name: &CString, keep_dir: bool) -> nix::Result<()> {
    let existing = nix::sys::stat::fstatat(
        parent,
        name.as_c_str(),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    );
    let Ok(existing) = existing else {
        return Ok(());
    };
    let is_dir = SFlag::from_bits_truncate(existing.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR;
    match (is_dir, keep_dir) {
        (true, true) => Ok(()),
        (true, false) => {
            let path = Path::new("/proc/self/fd")
                .join(parent.as_raw_fd().to_string())
                .join(OsStr::from_bytes(name.as_bytes()));
            crate::runtime::state::remove_tree(&path).map_err(|_| Errno::EIO)
        }
        (false, _) => nix::unistd::unlinkat(
            parent,
            name.as_c_str(),
            nix::unistd::UnlinkatFlags::NoRemoveDir,
        ),
    }
}

/// overlayfs's whiteout: a character device with device number 0/0.
fn make_whiteout(parent: &OwnedFd, name: &[u8]) -> nix::Result<()> {
    let name = c_name(name);
    clear_the_way(parent, &name, false)?;
    nix::sys::stat::mknodat(parent, name.as_c_str(), SFlag::S_IFCHR, Mode::empty(), 0)
}

/// Owner and group of an entry made by name (a symlink, a node), never
/// through a symlink.
fn chown_entry(parent: &OwnedFd, name: &CString, uid: u32, gid: u32) -> nix::Result<()> {
    let flags = nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW;
    nix::unistd::fchownat(
        parent,
        name.as_c_str(),
        Some(uid.into()),
        Some(gid.into()),
        flags,
    )
}

fn chown(fd: &OwnedFd, uid: u32, gid: u32) -> nix::Result<()> {
    nix::unistd::fchown(fd, Some(uid.into()), Some(gid.into()))
}

fn set_mtime(fd: &OwnedFd, mtime: i64) -> nix::Result<()> {
    let time = nix::sys::time::TimeSpec::new(mtime, 0);
    nix::sys::stat::futimens(fd, &time, &time)
}

pub fn set_xattr(fd: &impl AsFd, name: &str, value: &[u8]) -> nix::Result<()> {
    let name = CString::new(name).expect("xattr names hold no NUL");
    // SAFETY: a valid descriptor, a NUL-terminated name, a value and its length.
    let result = unsafe {
        libc::fsetxattr(
            fd.as_fd().as_raw_fd(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    Errno::result(result).map(drop)
}

/// The entry's xattrs (pax `SCHILY.xattr.NAME` records). overlayfs's own
/// are dropped; `trusted.*` and `security.*` need the host's root.
fn set_xattrs<R: Read>(
    fd: &OwnedFd,
    entry: &mut tar::Entry<R>,
    options: &ApplyOptions,
    path: &[u8],
    applied: &mut Applied,
) -> Result<(), LabError> {
    let Ok(Some(extensions)) = entry.pax_extensions() else {
        return Ok(());
    };
    for extension in extensions.flatten() {
        let Some(name) = extension
            .key()
            .ok()
            .and_then(|k| k.strip_prefix("SCHILY.xattr."))
        else {
            continue;
        };
        let overlays = name.starts_with("trusted.overlay.") || name.starts_with("user.overlay.");
        let privileged_only = name.starts_with("trusted.") || name.starts_with("security.");
        if overlays || (privileged_only && !options.privileged) {
            applied.notes.push(format!(
                "{}: xattr {name} left out",
                String::from_utf8_lossy(path)
            ));
            continue;
        }
        match set_xattr(fd, name, extension.value_bytes()) {
            Ok(()) => {}
            // A filesystem without xattrs of that kind: say so, go on.
            Err(Errno::EOPNOTSUPP) => applied.notes.push(format!(
                "{}: xattr {name} not supported here",
                String::from_utf8_lossy(path)
            )),
            Err(errno) => return Err(step("fsetxattr", path, errno)),
        }
    }
    Ok(())
}

// Reading a layer directory back, as overlayfs left it: `commit` reads a
// container's upper directory with these, the OCI bundle (ch10) an image's
// layers.

/// A directory's names, sorted (the same tree gives the same result).
pub fn sorted_names(dir: &OwnedFd) -> std::io::Result<Vec<OsString>> {
    let mut names: Vec<OsString> = crate::runtime::state::read_directory(dir)
        .map_err(std::io::Error::from)?
        .iter()
        .flatten()
        .map(|entry| OsStr::from_bytes(entry.file_name().to_bytes()).to_os_string())
        .filter(|name| name != "." && name != "..")
        .collect();
    names.sort();
    Ok(names)
}

/// The names of a file's extended attributes (flistxattr(2)).
pub fn xattr_names(file: &impl AsFd, path: &Path) -> std::io::Result<Vec<CString>> {
    let fd = file.as_fd().as_raw_fd();
    // SAFETY: a null buffer of size 0 asks for the size only.
    let size = unsafe { libc::flistxattr(fd, std::ptr::null_mut(), 0) };
    if size < 0 {
        return Err(xattr_error(path));
    }
    let mut buffer = vec![0u8; size as usize];
    // SAFETY: the buffer is as large as we say.
    let size = unsafe { libc::flistxattr(fd, buffer.as_mut_ptr().cast(), buffer.len()) };
    if size < 0 {
        return Err(xattr_error(path));
    }
    buffer.truncate(size as usize);
    Ok(buffer
        .split(|b| *b == 0)
        .filter(|name| !name.is_empty())
        .filter_map(|name| CString::new(name).ok())
        .collect())
}

pub fn xattr_value(file: &impl AsFd, name: &CString, path: &Path) -> std::io::Result<Vec<u8>> {
    let fd = file.as_fd().as_raw_fd();
    // SAFETY: as in xattr_names.
    let size = unsafe { libc::fgetxattr(fd, name.as_ptr(), std::ptr::null_mut(), 0) };
    if size < 0 {
        return Err(xattr_error(path));
    }
    let mut value = vec![0u8; size as usize];
    // SAFETY: the buffer is as large as we say.
    let size =
        unsafe { libc::fgetxattr(fd, name.as_ptr(), value.as_mut_ptr().cast(), value.len()) };
    if size < 0 {
        return Err(xattr_error(path));
    }
    value.truncate(size as usize);
    Ok(value)
}

fn xattr_error(path: &Path) -> std::io::Error {
    let error = std::io::Error::last_os_error();
    std::io::Error::new(error.kind(), format!("{}: xattrs: {error}", path.display()))
}

/// overlayfs' bookkeeping (opaque, origin, impure, redirect, ...), under
/// `trusted.overlay.` as root or `user.overlay.` with userxattr.
pub fn is_overlay_xattr(name: &[u8]) -> bool {
    name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay.")
}

/// Whether overlayfs marked a directory opaque. Only the namespace the
/// mount used counts: `trusted.` as root (no container can set it: it
/// takes CAP_SYS_ADMIN in the host's user namespace), `user.` without root
/// (mounted with userxattr). A root container's own `user.overlay.opaque`
/// is only an xattr, and the layer drops it.
pub fn is_opaque(dir: &impl AsFd) -> bool {
    let own = match nix::unistd::geteuid().is_root() {
        true => c"trusted.overlay.opaque",
        false => c"user.overlay.opaque",
    };
    let mut value = [0u8; 1];
    // SAFETY: the buffer is one byte, and we say so.
    let size = unsafe {
        libc::fgetxattr(
            dir.as_fd().as_raw_fd(),
            own.as_ptr(),
            value.as_mut_ptr().cast(),
            1,
        )
    };
    size == 1 && value[0] == b'y'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_long_name_record_is_refused_before_it_is_read() {
        let mut header = [0u8; 512];
        header[..13].copy_from_slice(b"././@LongLink");
        header[124..135].copy_from_slice(format!("{:011o}", 3u64 << 30).as_bytes());
        header[156] = b'L';
        let mut guard = HeaderGuard::new(&header[..]);
        let error = std::io::copy(&mut guard, &mut std::io::sink()).unwrap_err();
        assert!(
            error.to_string().contains("extended header (type L)"),
            "{error}"
        );
        // A real archive passes through unchanged.
        let mut builder = tar::Builder::new(Vec::new());
        let mut entry = tar::Header::new_gnu();
        entry.set_size(5);
        builder
            .append_data(&mut entry, "a/".repeat(80) + "long-name", &b"hello"[..])
            .unwrap();
        let tar = builder.into_inner().unwrap();
        let mut out = Vec::new();
        std::io::copy(&mut HeaderGuard::new(&tar[..]), &mut out).unwrap();
        assert_eq!(out, tar);
        assert_eq!(tar_size(b"00000000005\0"), 5);
        assert_eq!(tar_size(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]), 256);
    }

    #[test]
    fn paths_are_split_and_dot_dot_and_absolute_paths_refused() {
        assert_eq!(components(b"./a//b/").unwrap(), [b"a" as &[u8], b"b"]);
        assert!(components(b"./").unwrap().is_empty());
        assert!(components(b"a/../../etc").is_err());
        assert!(components(b"..").is_err());
        assert!(components(b"/etc/passwd").is_err());
        assert!(
            components(b"a/..b").is_ok(),
            "a name that starts with .. is a name"
        );
    }

    #[test]
    fn only_overlayfs_bookkeeping_is_left_out() {
        assert!(is_overlay_xattr(b"trusted.overlay.opaque"));
        assert!(is_overlay_xattr(b"user.overlay.origin"));
        assert!(!is_overlay_xattr(b"security.capability"));
        assert!(!is_overlay_xattr(b"user.comment"));
    }
}
