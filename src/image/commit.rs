//! `commit`: a container's writable layer becomes one new layer, stacked on
//! the image's own, as Docker's commit makes it. What goes into the layer is
//! what the container changed and nothing else: its overlay upper
//! directory, walked once, with overlayfs' own way of recording a deletion
//! translated into the image format's:
//!
//! | in the upper directory (overlayfs)            | in the layer tar (OCI image spec, "Whiteouts") |
//! |---|---|
//! | a file or directory                            | the same entry, ids as the container sees them |
//! | character device 0/0 `NAME` (a deleted path)   | an empty file `.wh.NAME`                        |
//! | directory with `trusted.overlay.opaque=y`      | the directory, then `DIR/.wh..wh..opq`         |
//! | `trusted.overlay.*`, `user.overlay.*` xattrs   | left out: they are overlayfs' bookkeeping      |
//!
//! The time it takes grows with what the container changed, not with the
//! size of the image under it.

use super::archive::{Added, ExactSize, KeptLayer, unpack_and_keep};
use super::digest::Digest;
use super::layer::{is_opaque, is_overlay_xattr, sorted_names, xattr_names, xattr_value};
use super::reference::Reference;
use super::spec::{History, ImageConfig, RunConfig};
use super::store::{ImageRecord, ImageStore};
use crate::error::LabError;
use crate::runtime::cgroups;
use crate::runtime::state::{self, Record, Status, Store};
use crate::runtime::userns::IdMap;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FileStat, SFlag};
use std::ffi::{CString, OsStr};
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

fn image_error(message: String, hint: &str) -> LabError {
    LabError::Image {
        message,
        hint: hint.into(),
    }
}

/// What `commit` is asked for.
pub struct CommitRequest<'a> {
    /// The container: its id, a unique prefix of it, or its name.
    pub container: &'a str,
    pub tag: Option<Reference>,
    /// The history entry's comment (`-m`).
    pub message: Option<String>,
    pub author: Option<String>,
    /// The history entry's `created_by` (default: the container's command).
    pub created_by: Option<String>,
    /// Changes to the run config (`-c 'CMD ...'`), applied in order.
    pub changes: Vec<super::containerfile::ConfigChange>,
    /// Freeze a running container while its layer is read (docker's default).
    pub pause: bool,
}

/// What the new layer holds, for the summary line.
#[derive(Default, Debug, Clone, Copy)]
pub struct DiffStats {
    pub entries: u64,
    pub whiteouts: u64,
    pub opaque: u64,
    /// Bytes of file content.
    pub bytes: u64,
}

/// `commit`, from the command line: the new image's id on stdout, what
/// its layer holds on stderr.
pub fn commit_verb(store: &ImageStore, args: &super::verbs::CommitArgs) -> Result<i32, LabError> {
    let tag = args
        .reference
        .as_deref()
        .map(super::archive::parse_tag)
        .transpose()?;
    let changes = args
        .changes
        .iter()
        .map(|text| super::containerfile::config_change(text))
        .collect::<Result<Vec<_>, _>>()?;
    let request = CommitRequest {
        container: &args.container,
        tag,
        message: args.message.clone(),
        author: args.author.clone(),
        created_by: None,
        changes,
        pause: args.pause,
    };
    let (record, stats) = commit(store, &request)?;
    if !args.quiet {
        let count = |n: u64, one: &str, many: &str| match n {
            1 => format!("1 {one}"),
            n => format!("{n} {many}"),
        };
        crate::say!(
            "{}: layer {}: {} ({}, {}), {} of files",
            crate::program_name(),
            record.layers.last().map(|d| d.short()).unwrap_or_default(),
            count(stats.entries, "entry", "entries"),
            count(stats.whiteouts, "deletion", "deletions"),
            count(stats.opaque, "opaque directory", "opaque directories"),
            count(stats.bytes, "byte", "bytes"),
        );
    }
    println!("{}", record.id);
    Ok(0)
}

// ANCHOR: commit
/// `commit CONTAINER [IMAGE]`: the container's upper directory as one new
/// layer on top of its image's, and a config that says so.
pub fn commit(
    store: &ImageStore,
    request: &CommitRequest,
) -> Result<(ImageRecord, DiffStats), LabError> {
    let container = Store::open()?.find(request.container)?;
    let (Some(layer), Some(image)) = (&container.layer, &container.image) else {
        return Err(image_error(
            format!(
                "container {} has no image: it runs on a plain root filesystem",
                request.container
            ),
            "commit needs a container run from an image (ch08 on)",
        ));
    };
    let parent = Digest::parse(image)
        .ok()
        .and_then(|id| store.image(&id))
        .ok_or_else(|| {
            image_error(
                format!(
                    "container {}'s image {image} is no longer in the store",
                    container.name
                ),
                "an image is kept while a container uses it; was the store changed by hand?",
            )
        })?;
    // A running container keeps writing; a frozen one cannot, so the
    // layer is one moment of it (docker commit --pause, the default).
    // The lock first: a commit waiting behind another (or a pull) must
    // not keep the container frozen while it waits.
    let _lock = store.lock()?;
    let _frozen = match request.pause {
        true => Frozen::freeze(&container)?,
        false => None,
    };
    let _interruptible = crate::program::Interruptible::install();
    let mut added = Added::default();
    let result = (|| {
        let (kept, stats) = diff_layer(store, &layer.join("upper"), &container, &mut added)?;
        let created_by = request
            .created_by
            .clone()
            .unwrap_or_else(|| container.command.join(" "));
        let history = History {
            created: None,
            created_by: Some(created_by),
            comment: request.message.clone(),
            empty_layer: false,
        };
        let record = child_image(
            store,
            Some(&parent),
            Some(kept),
            history,
            request.author.clone(),
            |config| request.changes.iter().for_each(|change| change(config)),
            &mut added,
        )?;
        store.add_image(&record, request.tag.as_slice())?;
        Ok((record, stats))
    })();
    let kept: Vec<ImageRecord> = result.iter().map(|(r, _)| r.clone()).collect();
    added.remove_unused(store, &kept);
    result
}
// ANCHOR_END: commit

/// A new image: `parent`'s config (or an empty one, FROM scratch) with one
/// more history entry, one more layer if `layer` is given, and `change`
/// applied to its run config. Its record is returned, not yet added.
pub(super) fn child_image(
    store: &ImageStore,
    parent: Option<&ImageRecord>,
    layer: Option<KeptLayer>,
    mut history: History,
    author: Option<String>,
    change: impl FnOnce(&mut RunConfig),
    added: &mut Added,
) -> Result<ImageRecord, LabError> {
    let mut config = match parent {
        Some(parent) => store.read_config(&parent.id)?,
        None => {
            let platform = super::spec::Platform::host();
            let mut config = ImageConfig {
                architecture: platform.architecture,
                os: platform.os,
                ..ImageConfig::default()
            };
            config.rootfs.kind = "layers".into();
            config
        }
    };
    let created = state::rfc3339(state::now());
    config.created = Some(created.clone());
    if author.is_some() {
        config.author = author;
    }
    let mut run = config.config.take().unwrap_or_default();
    change(&mut run);
    config.config = Some(run);
    history.created = Some(created);
    history.empty_layer = layer.is_none();
    config.history.push(history);
    // layer_blobs[i] is the blob of layers[i]; a parent that does not
    // know all of its blobs passes on none (save and push then find each
    // layer's blob by its diffID).
    let mut layer_blobs = parent
        .filter(|p| p.layer_blobs.len() == p.layers.len())
        .map_or_else(Vec::new, |p| p.layer_blobs.clone());
    let aligned = layer_blobs.len() == config.rootfs.diff_ids.len();
    if let Some(layer) = layer {
        config.rootfs.diff_ids.push(layer.diff_id);
        layer_blobs.push(layer.blob);
    }
    if !aligned {
        layer_blobs.clear();
    }
    let bytes = serde_json::to_vec(&config).expect("a config serialises");
    let id = added.put_document(store, &bytes)?;
    super::verbs::record_for(store, &id, None, layer_blobs, vec![])
}

// ANCHOR: diff_layer
/// The upper directory as a layer: a thread writes the tar of the changes
/// into a pipe, which the store keeps as the layer's blob and unpacks as
/// it reads, as `import` does with a directory.
fn diff_layer(
    store: &ImageStore,
    upper: &Path,
    container: &Record,
    added: &mut Added,
) -> Result<(KeptLayer, DiffStats), LabError> {
    let top = state::open_directory(nix::fcntl::AT_FDCWD, upper)
        .map_err(|e| LabError::io("open", upper.display(), std::io::Error::from(e)))?;
    let ids = ContainerIds {
        uids: container.uid_maps.clone(),
        gids: container.gid_maps.clone(),
    };
    let (reader, writer) = std::io::pipe().map_err(|e| LabError::io("pipe", "commit", e))?;
    let upper_shown = upper.to_path_buf();
    // Every byte of the layer is written twice, as the blob and unpacked.
    let budget = nix::sys::statvfs::statvfs(&store.root)
        .map(|s| s.blocks_available() * s.fragment_size() / 2)
        .unwrap_or(u64::MAX);
    let writing = std::thread::spawn(move || {
        let mut builder = tar::Builder::new(std::io::BufWriter::with_capacity(1 << 20, writer));
        let stats = write_changes(&mut builder, top, &ids, budget)?;
        builder.into_inner()?.flush()?;
        Ok::<_, std::io::Error>(stats)
    });
    let unpacked = unpack_and_keep(store, reader, None, added);
    let written = writing.join().expect("the tar writer does not panic");
    // The writer's failure first: it ends the tar early, which the
    // unpacker may have taken as complete; but a broken pipe only says
    // that the unpacker stopped, and the unpacker says why.
    match (written, unpacked) {
        (Err(error), Err(unpacking)) if error.kind() == std::io::ErrorKind::BrokenPipe => {
            Err(unpacking)
        }
        (Err(error), _) => Err(image_error(
            format!("commit {}: {error}", upper_shown.display()),
            "the container's writable layer could not be read all the way; nothing was stored",
        )),
        (Ok(_), Err(error)) => Err(error),
        (Ok(stats), Ok(kept)) => Ok((kept, stats)),
    }
}
// ANCHOR_END: diff_layer

/// The container's id maps, to write each file's owner as the container
/// sees it: the upper directory holds host ids (1879048192 for the
/// container's root, by default), and an image carries container ids, so
/// that it means the same under any other map.
struct ContainerIds {
    uids: Vec<IdMap>,
    gids: Vec<IdMap>,
}

impl ContainerIds {
    fn inside(maps: &[IdMap], host: u32) -> Option<u32> {
        if maps.is_empty() {
            return Some(host);
        }
        maps.iter()
            .find(|m| host >= m.outside && host - m.outside < m.count)
            .map(|m| m.inside + (host - m.outside))
    }

    /// The xattrs that hold ids, told as the container's too: a file
    /// capability's root id (security.capability version 3, whose root 0
    /// is written as version 2, as setcap(8) in the container meant it),
    /// and the users and groups of a POSIX ACL (acl(5)). None when an id
    /// is outside the maps.
    fn translate_xattr(&self, name: &[u8], mut value: Vec<u8>) -> Option<Vec<u8>> {
        let word = |bytes: &[u8], at: usize| {
            u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?).into()
        };
        match name {
            b"security.capability" if value.len() == 24 => {
                // struct vfs_ns_cap_data: magic_etc, 2 x (permitted,
                // inheritable), rootid (linux/capability.h).
                let magic: Option<u32> = word(&value, 0);
                let rootid = Self::inside(&self.uids, word(&value, 20)?)?;
                if rootid == 0 {
                    let flags = magic? & 0x00ff_ffff;
                    value.truncate(20);
                    value[..4].copy_from_slice(&(0x0200_0000 | flags).to_le_bytes());
                } else {
                    value[20..24].copy_from_slice(&rootid.to_le_bytes());
                }
                Some(value)
            }
            b"system.posix_acl_access" | b"system.posix_acl_default" => {
                // A 4-byte version, then entries of (u16 tag, u16 perm,
                // u32 id); ids matter for ACL_USER (2) and ACL_GROUP (8).
                for at in (4..value.len()).step_by(8) {
                    let tag = u16::from_le_bytes(value.get(at..at + 2)?.try_into().ok()?);
                    let maps = match tag {
                        0x02 => &self.uids,
                        0x08 => &self.gids,
                        _ => continue,
                    };
                    let id = Self::inside(maps, word(&value, at + 4)?)?;
                    value[at + 4..at + 8].copy_from_slice(&id.to_le_bytes());
                }
                Some(value)
            }
            _ => Some(value),
        }
    }

    /// (uid, gid) inside, for a file of the upper directory. An id no map
    /// names cannot have been written by the container: it is refused, not
    /// guessed.
    fn of(&self, stat: &FileStat, path: &Path) -> std::io::Result<(u32, u32)> {
        let uid = Self::inside(&self.uids, stat.st_uid);
        let gid = Self::inside(&self.gids, stat.st_gid);
        match (uid, gid) {
            (Some(uid), Some(gid)) => Ok((uid, gid)),
            _ => Err(std::io::Error::other(format!(
                "{}: owner {}:{} is outside the container's id maps",
                path.display(),
                stat.st_uid,
                stat.st_gid
            ))),
        }
    }
}

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";

// ANCHOR: write_changes
/// Every entry of the upper directory, in name order, as tar entries. The
/// walk goes by descriptor, each name opened relative to its directory
/// with O_NOFOLLOW, so a path swapped for a symlink meanwhile is never
/// followed out of the layer (CVE-2018-15664 hit docker cp that way).
fn write_changes<W: Write>(
    builder: &mut tar::Builder<W>,
    top: OwnedFd,
    ids: &ContainerIds,
    budget: u64,
) -> std::io::Result<DiffStats> {
    let mut writer = ChangeWriter {
        builder,
        ids,
        budget,
        stats: DiffStats::default(),
        first_names: Default::default(),
    };
    // Depth first, as tar(1) writes: a directory's entries, each
    // subdirectory's right after its own entry. Only the directories on
    // the way down are held open, so a directory of ten thousand
    // subdirectories needs no more descriptors than a path is deep.
    let mut open = vec![(PathBuf::new(), sorted_names(&top)?.into_iter(), top)];
    while let Some((relative, names, dir)) = open.last_mut() {
        if crate::program::interrupted() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::Interrupted,
                "interrupted by a signal",
            ));
        }
        let Some(name) = names.next() else {
            open.pop();
            continue;
        };
        let path = relative.join(&name);
        if let Some((path, child)) = writer.append(dir, path, &name)? {
            let names = sorted_names(&child)?.into_iter();
            open.push((path, names, child));
        }
    }
    writer.builder.finish()?;
    Ok(writer.stats)
}

/// The tar being written, and what it needs to remember.
struct ChangeWriter<'a, W: Write> {
    builder: &'a mut tar::Builder<W>,
    ids: &'a ContainerIds,
    /// Bytes of file content the store can take (twice over).
    budget: u64,
    stats: DiffStats,
    /// (device, inode) -> the first name of a file with several links.
    first_names: std::collections::BTreeMap<(u64, u64), PathBuf>,
}

impl<W: Write> ChangeWriter<'_, W> {
    /// One entry of the upper directory, `name` in `dir`, at `path` in the
    /// layer. A directory is returned, opened, for the walk to go into.
    fn append(
        &mut self,
        dir: &OwnedFd,
        path: PathBuf,
        name: &OsStr,
    ) -> std::io::Result<Option<(PathBuf, OwnedFd)>> {
        let stat = nix::sys::stat::fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(|e| io_at(e, &path))?;
        let kind = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT;
        self.stats.entries += 1;
        // overlayfs records a deletion as a character device 0/0
        // (Documentation/filesystems/overlayfs.rst, "whiteouts"); the
        // image format, as an empty file named .wh.NAME.
        // A name of the container's own that the image format reserves
        // would turn into a deletion (or an opaque directory) in the image.
        if name.as_bytes().starts_with(WHITEOUT_PREFIX.as_bytes()) {
            return Err(std::io::Error::other(format!(
                "{}: names starting with {WHITEOUT_PREFIX} mean deletions in an image layer; rename it",
                path.display()
            )));
        }
        if kind == SFlag::S_IFCHR && stat.st_rdev == 0 {
            let mut marker = path.clone();
            marker.set_file_name(OsStr::from_bytes(
                &[WHITEOUT_PREFIX.as_bytes(), name.as_bytes()].concat(),
            ));
            self.builder
                .append_data(&mut marker_header(&stat), &marker, std::io::empty())?;
            self.stats.whiteouts += 1;
            return Ok(None);
        }
        let (uid, gid) = self.ids.of(&stat, &path)?;
        let mut header = tar::Header::new_gnu();
        header.set_mode(stat.st_mode & 0o7777);
        header.set_uid(uid.into());
        header.set_gid(gid.into());
        header.set_mtime(stat.st_mtime.max(0) as u64);
        header.set_size(0);
        match kind {
            SFlag::S_IFDIR => {
                let child = open_at(dir, name, OFlag::O_RDONLY | OFlag::O_DIRECTORY, &path)?;
                append_xattrs(self.builder, &kept_xattrs(&child, &path, self.ids)?)?;
                header.set_entry_type(tar::EntryType::Directory);
                self.builder
                    .append_data(&mut header, &path, std::io::empty())?;
                // A directory that replaced one of a lower layer hides all
                // of the lower one's entries: overlayfs marks it with an
                // xattr, the image format with a .wh..wh..opq inside it.
                if is_opaque(&child) {
                    self.builder.append_data(
                        &mut marker_header(&stat),
                        path.join(OPAQUE_MARKER),
                        std::io::empty(),
                    )?;
                    self.stats.opaque += 1;
                }
                return Ok(Some((path, child)));
            }
            SFlag::S_IFREG => self.append_file(dir, name, &path, &stat, header)?,
            SFlag::S_IFLNK => {
                let target = nix::fcntl::readlinkat(dir, name).map_err(|e| io_at(e, &path))?;
                header.set_entry_type(tar::EntryType::Symlink);
                self.builder.append_link(&mut header, &path, &target)?;
            }
            SFlag::S_IFCHR | SFlag::S_IFBLK | SFlag::S_IFIFO => {
                header.set_entry_type(match kind {
                    SFlag::S_IFCHR => tar::EntryType::Char,
                    SFlag::S_IFBLK => tar::EntryType::Block,
                    _ => tar::EntryType::Fifo,
                });
                header.set_device_major(nix::sys::stat::major(stat.st_rdev) as u32)?;
                header.set_device_minor(nix::sys::stat::minor(stat.st_rdev) as u32)?;
                self.builder
                    .append_data(&mut header, &path, std::io::empty())?;
            }
            // Sockets are left out, as tar(1) leaves them out.
            _ => self.stats.entries -= 1,
        }
        Ok(None)
    }

    /// A regular file: its content, or a hard link to the name it was
    /// first written under.
    fn append_file(
        &mut self,
        dir: &OwnedFd,
        name: &OsStr,
        path: &Path,
        stat: &FileStat,
        mut header: tar::Header,
    ) -> std::io::Result<()> {
        if stat.st_nlink > 1 {
            let key = (stat.st_dev, stat.st_ino);
            if let Some(first) = self.first_names.get(&key) {
                header.set_entry_type(tar::EntryType::Link);
                return self.builder.append_link(&mut header, path, first);
            }
            self.first_names.insert(key, path.to_path_buf());
        }
        let file = open_at(dir, name, OFlag::O_RDONLY | OFlag::O_NONBLOCK, path)?;
        // With metacopy=on, overlayfs copies up only a file's metadata and
        // leaves its data below: the upper file alone would be empty.
        if xattr_names(&file, path)?
            .iter()
            .any(|n| n.as_bytes().ends_with(b"overlay.metacopy"))
        {
            return Err(std::io::Error::other(format!(
                "{}: copied up with metacopy=on, its data is in a lower layer",
                path.display()
            )));
        }
        append_xattrs(self.builder, &kept_xattrs(&file, path, self.ids)?)?;
        let size = stat.st_size.max(0) as u64;
        // A sparse file takes its full size in the tar: a container that
        // wrote a hole of a terabyte must not fill the host's disk.
        if self.stats.bytes + size > self.budget {
            return Err(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                format!(
                    "{}: the layer's files would reach {} bytes, written twice (blob and layer), more than the store's free space allows (sparse files count at their full size)",
                    path.display(),
                    self.stats.bytes + size
                ),
            ));
        }
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(size);
        let content = ExactSize {
            inner: std::fs::File::from(file).take(size),
            left: size,
            path,
        };
        self.builder.append_data(&mut header, path, content)?;
        self.stats.bytes += size;
        Ok(())
    }
}
// ANCHOR_END: write_changes

/// A whiteout or opaque marker: an empty file owned by root, as Docker
/// writes them (its mode and owner mean nothing; some readers refuse a
/// header with empty id fields).
fn marker_header(stat: &FileStat) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o600);
    header.set_uid(0);
    header.set_gid(0);
    header.set_size(0);
    header.set_mtime(stat.st_mtime.max(0) as u64);
    header
}

fn io_at(errno: nix::errno::Errno, path: &Path) -> std::io::Error {
    std::io::Error::new(
        std::io::Error::from(errno).kind(),
        format!("{}: {errno}", path.display()),
    )
}

fn open_at(dir: &OwnedFd, name: &OsStr, flags: OFlag, path: &Path) -> std::io::Result<OwnedFd> {
    nix::fcntl::openat(
        dir,
        name,
        flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| io_at(e, path))
}

/// A file's extended attributes, overlayfs' own left out.
fn kept_xattrs(
    file: &impl AsFd,
    path: &Path,
    ids: &ContainerIds,
) -> std::io::Result<Vec<(CString, Vec<u8>)>> {
    xattr_names(file, path)?
        .into_iter()
        .filter(|name| !is_overlay_xattr(name.as_bytes()))
        .map(|name| {
            let value = xattr_value(file, &name, path)?;
            let value = ids.translate_xattr(name.as_bytes(), value).ok_or_else(|| {
                std::io::Error::other(format!(
                    "{}: {} names an id outside the container's id maps",
                    path.display(),
                    name.to_string_lossy()
                ))
            })?;
            Ok((name, value))
        })
        .collect()
}

/// xattrs go into the tar as PAX records `SCHILY.xattr.NAME`, the form GNU
/// tar, Docker and our own unpacker read.
fn append_xattrs<W: Write>(
    builder: &mut tar::Builder<W>,
    xattrs: &[(CString, Vec<u8>)],
) -> std::io::Result<()> {
    if xattrs.is_empty() {
        return Ok(());
    }
    let records: Vec<(String, &[u8])> = xattrs
        .iter()
        .map(|(name, value)| {
            let name = name
                .to_str()
                .map_err(|_| std::io::Error::other(format!("xattr name {name:?} is not UTF-8")))?;
            Ok((format!("SCHILY.xattr.{name}"), value.as_slice()))
        })
        .collect::<std::io::Result<_>>()?;
    builder.append_pax_extensions(records.iter().map(|(k, v)| (k.as_str(), *v)))
}

/// A running container's cgroup, frozen until this is dropped.
struct Frozen(Vec<PathBuf>);

impl Frozen {
    fn freeze(container: &Record) -> Result<Option<Frozen>, LabError> {
        let running = container.status == Status::Running;
        if !running || container.cgroups.is_empty() || cgroups::is_frozen(&container.cgroups) {
            return Ok(None);
        }
        cgroups::set_frozen(&container.cgroups, true)?;
        Ok(Some(Frozen(container.cgroups.clone())))
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        let _ = cgroups::set_frozen(&self.0, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_ids_become_the_container_ids_they_stand_for() {
        let maps = [IdMap {
            inside: 0,
            outside: 1879048192,
            count: 65536,
        }];
        assert_eq!(ContainerIds::inside(&maps, 1879048192), Some(0));
        assert_eq!(ContainerIds::inside(&maps, 1879048192 + 1000), Some(1000));
        assert_eq!(ContainerIds::inside(&maps, 0), None);
        assert_eq!(ContainerIds::inside(&[], 1000), Some(1000));
    }

    #[test]
    fn capability_root_ids_and_acl_ids_are_told_as_the_containers() {
        let map = IdMap {
            inside: 0,
            outside: 1879048192,
            count: 65536,
        };
        let ids = ContainerIds {
            uids: vec![map],
            gids: vec![map],
        };
        // Version 3 with the container's root as its root: version 2.
        let mut v3 = 0x0300_0001u32.to_le_bytes().to_vec();
        v3.extend([0x20u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        v3.extend(1879048192u32.to_le_bytes());
        let v2 = ids
            .translate_xattr(b"security.capability", v3.clone())
            .unwrap();
        assert_eq!(v2.len(), 20);
        assert_eq!(v2[..4], 0x0200_0001u32.to_le_bytes());
        assert_eq!(v2[4..20], v3[4..20]);
        // Another root id inside: kept as version 3, told as inside.
        v3[20..].copy_from_slice(&(1879048192u32 + 5).to_le_bytes());
        let kept = ids.translate_xattr(b"security.capability", v3).unwrap();
        assert_eq!(kept[20..], 5u32.to_le_bytes());
        // An ACL's named user and group; the owner entries carry no id.
        let mut acl = 2u32.to_le_bytes().to_vec();
        for (tag, id) in [(0x01u16, u32::MAX), (0x02, 1879049192), (0x08, 1879048292)] {
            acl.extend(tag.to_le_bytes());
            acl.extend(7u16.to_le_bytes());
            acl.extend(id.to_le_bytes());
        }
        let told = ids
            .translate_xattr(b"system.posix_acl_access", acl)
            .unwrap();
        assert_eq!(told[16..20], 1000u32.to_le_bytes());
        assert_eq!(told[24..28], 100u32.to_le_bytes());
        assert_eq!(told[8..12], u32::MAX.to_le_bytes());
        // An id no map names is refused.
        let mut outside = 2u32.to_le_bytes().to_vec();
        outside.extend([2u8, 0, 7, 0]);
        outside.extend(0u32.to_le_bytes());
        assert!(
            ids.translate_xattr(b"system.posix_acl_access", outside)
                .is_none()
        );
    }
}
