//! The image store: content-addressed, as Docker's has been since 1.10
//! (2016). Everything is named by the sha256 of its bytes, so what two
//! images share is stored once and cannot be changed without changing its
//! name.
//!
//! ```text
//! /var/lib/container-lab/storage/       0700: layers hold setuid files of the host's root
//!   lock                                flock(2): one writer of images and tags at a time
//!   blobs/sha256/HEX                    manifests, configs, layers as they came (compressed or not)
//!   layers/HEX/                         one layer unpacked, named by its diffID (the digest of its tar)
//!   layers/.partial-HEX-PID/            a layer being unpacked; renamed into place when complete
//!   images/HEX.json                     one record per image, named by its id (the config's digest)
//!   tags.json                           "name:tag" -> image id
//!   containers/ID/{upper,work}          each container's writable layer
//!   tmp/                                blobs being written, renamed into place once verified
//! ```
//!
//! Writers make a file under a temporary name and rename(2) it into place,
//! so a reader never sees half of one; a digest is checked before a blob or
//! a layer gets its name. Two pulls of one layer may both unpack it; the
//! first rename wins and the second throws its copy away.

use super::digest::{Digest, Hashing, HashingWriter};
use super::layer::{self, Applied, ApplyOptions};
use super::reference::Reference;
use super::spec::{Descriptor, ImageConfig};
use crate::error::LabError;
use crate::runtime::state::{self, Lock, remove_tree};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

pub const ROOT_STORE: &str = "/var/lib/container-lab/storage";
pub const STORAGE_ENV: &str = "CONTAINER_LAB_STORAGE";

/// One image: its config's digest is its id; the rest says where it came
/// from and which layers it stacks (bottom first).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ImageRecord {
    pub id: Digest,
    /// The diffIDs of its layers, bottom first (the config's rootfs.diff_ids).
    pub layers: Vec<Digest>,
    /// The manifest it came with, if any (pulled or loaded with one).
    #[serde(default)]
    pub manifest: Option<Digest>,
    /// The manifest's layer descriptors, as stored in blobs/ (compressed as
    /// they came), so that the image can be saved or pushed as it was.
    #[serde(default)]
    pub layer_blobs: Vec<Descriptor>,
    /// `name@sha256:...` of the manifest in the registry it was pulled from.
    #[serde(default)]
    pub repo_digests: Vec<String>,
    /// Bytes of its layers, unpacked.
    pub size: u64,
    /// Nanoseconds since the epoch, when it entered this store.
    pub added: u64,
}

impl ImageRecord {
    /// Every blob this image keeps: its config, its manifest, its layers'
    /// blobs, and any blob named by a layer's diffID (an uncompressed
    /// layer, as commit, build and load of a docker-archive store them).
    pub fn blobs(&self) -> impl Iterator<Item = &Digest> {
        std::iter::once(&self.id)
            .chain(self.manifest.as_ref())
            .chain(self.layer_blobs.iter().map(|d| &d.digest))
            .chain(&self.layers)
    }
}

pub struct ImageStore {
    pub root: PathBuf,
}

/// What a finished unpack says about a layer.
pub struct UnpackedLayer {
    pub diff_id: Digest,
    /// Bytes of the uncompressed tar.
    pub size: u64,
    /// It was in the store already: nothing was written.
    pub existed: bool,
    pub applied: Option<Applied>,
}

/// A blob being written: see [`ImageStore::blob_writer`].
pub struct BlobWriter<'a> {
    store: &'a ImageStore,
    file: std::io::BufWriter<std::fs::File>,
    /// None when the caller hashes the same bytes itself.
    hasher: Option<HashingWriter<std::io::Sink>>,
    bytes: u64,
    pub staging: PathBuf,
}

impl Write for BlobWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        if let Some(hasher) = &mut self.hasher {
            hasher.write_all(&buf[..n])?;
        }
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl BlobWriter<'_> {
    /// Name the blob by its digest, if that is the one expected.
    pub fn commit(mut self, expected: Option<&Digest>) -> Result<(Digest, u64), LabError> {
        let (_, digest) = self
            .hasher
            .take()
            .expect("commit is for a blob_writer, commit_as for an unhashed one")
            .finish();
        if let Some(expected) = expected
            && *expected != digest
        {
            return Err(image_error(
                format!("blob {expected} does not match its content: its bytes hash to {digest}"),
                "the source sent damaged or altered data; nothing was stored",
            ));
        }
        self.commit_as(&digest)
    }

    /// Name the blob by a digest its writer computed of the same bytes
    /// (an uncompressed layer's diffID, hashed as it was unpacked).
    pub fn commit_as(mut self, digest: &Digest) -> Result<(Digest, u64), LabError> {
        self.file
            .flush()
            .map_err(|e| LabError::io("write", self.staging.display(), e))?;
        let path = self.store.blob_path(digest);
        std::fs::rename(&self.staging, &path)
            .map_err(|e| LabError::io("rename", path.display(), e))?;
        Ok((digest.clone(), self.bytes))
    }
}

impl Drop for BlobWriter<'_> {
    /// Not committed, or refused: nothing is stored.
    fn drop(&mut self) {
        if self.staging.exists() {
            let _ = std::fs::remove_file(&self.staging);
        }
    }
}

/// A layer unpacked and checked, not yet under its name.
struct PartialLayer {
    dir: PathBuf,
    diff_id: Digest,
    size: u64,
    applied: Applied,
}

/// A reader that writes a copy of what it reads: a layer's compressed bytes
/// go to the decompressor and to the staging blob in one pass.
pub struct Tee<R, W> {
    pub reader: R,
    pub copy: W,
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.reader.read(buf)?;
        self.copy.write_all(&buf[..n])?;
        Ok(n)
    }
}

fn image_error(message: String, hint: &str) -> LabError {
    LabError::Image {
        message,
        hint: hint.into(),
    }
}

impl ImageStore {
    /// The store of this user: the host's root's under /var/lib, anyone
    /// else's under $XDG_DATA_HOME (or ~/.local/share).
    /// `CONTAINER_LAB_STORAGE` names another store (podman's `--root`):
    /// the tests give each test a store of its own.
    pub fn open() -> Result<ImageStore, LabError> {
        if let Some(root) = std::env::var_os(STORAGE_ENV) {
            return ImageStore::at(Path::new(&root));
        }
        let root = match nix::unistd::geteuid().is_root() {
            true => PathBuf::from(ROOT_STORE),
            false => {
                let data = std::env::var_os("XDG_DATA_HOME")
                    .map(PathBuf::from)
                    .or_else(|| {
                        std::env::var_os("HOME").map(|home| Path::new(&home).join(".local/share"))
                    })
                    .ok_or_else(|| {
                        image_error(
                            "no place for the image store: neither XDG_DATA_HOME nor HOME is set"
                                .into(),
                            "set HOME",
                        )
                    })?;
                data.join("container-lab")
            }
        };
        ImageStore::at(&root)
    }

    /// The store at `root`, made if missing.
    pub fn at(root: &Path) -> Result<ImageStore, LabError> {
        use std::os::unix::fs::PermissionsExt;
        for dir in ["blobs/sha256", "layers", "images", "containers", "tmp"] {
            let path = root.join(dir);
            std::fs::create_dir_all(&path).map_err(|e| LabError::io("mkdir", path.display(), e))?;
        }
        // Layers keep the setuid bits and the owners an image gave its
        // files: a setuid-root shell from an image must not be reachable by
        // the host's users (Docker's /var/lib/docker is 0710 for the same
        // reason). Containers reach their layers through the overlay mount.
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| LabError::io("chmod", root.display(), e))?;
        Ok(ImageStore {
            root: root.to_path_buf(),
        })
    }

    /// One writer of images and tags at a time.
    pub fn lock(&self) -> Result<Lock, LabError> {
        state::lock_file(&self.root.join("lock"))
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// A staging file in tmp/, unique to this process and call.
    fn staging(&self, what: &str) -> PathBuf {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        self.root
            .join("tmp")
            .join(format!("{what}-{}-{n}", std::process::id()))
    }

    // ANCHOR: put_blob
    /// Write a blob: copied to a staging file while hashed, and renamed to
    /// its digest only if that digest is the one expected. A blob that
    /// does not match is deleted, never stored under either name.
    pub fn put_blob(
        &self,
        reader: impl Read,
        expected: Option<&Digest>,
    ) -> Result<(Digest, u64), LabError> {
        let mut writer = self.blob_writer(true)?;
        let mut reader = reader;
        std::io::copy(&mut reader, &mut writer)
            .map_err(|e| LabError::io("write", writer.staging.display(), e))?;
        writer.commit(expected)
    }
    // ANCHOR_END: put_blob

    /// A blob written piece by piece (load copies a layer into one while
    /// unpacking it): hashed as it is written when `hashed`, named by
    /// `commit` (or `commit_as`), deleted if dropped before.
    pub fn blob_writer(&self, hashed: bool) -> Result<BlobWriter<'_>, LabError> {
        let staging = self.staging("blob");
        let file = std::fs::File::create(&staging)
            .map_err(|e| LabError::io("create", staging.display(), e))?;
        Ok(BlobWriter {
            store: self,
            file: std::io::BufWriter::with_capacity(1 << 20, file),
            hasher: hashed.then(|| HashingWriter::new(std::io::sink())),
            bytes: 0,
            staging,
        })
    }

    pub fn put_blob_bytes(
        &self,
        bytes: &[u8],
        expected: Option<&Digest>,
    ) -> Result<Digest, LabError> {
        self.put_blob(bytes, expected).map(|(digest, _)| digest)
    }

    /// A small blob (a manifest, a config), checked against its digest as
    /// it is read: a file changed on disk is refused.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, LabError> {
        use std::io::Read as _;
        // Manifests and configs are KiB; read no more than this of one.
        const LIMIT: u64 = 64 << 20;
        let path = self.blob_path(digest);
        let mut bytes = Vec::new();
        std::fs::File::open(&path)
            .and_then(|file| file.take(LIMIT + 1).read_to_end(&mut bytes))
            .map_err(|e| LabError::io("read", path.display(), e))?;
        if bytes.len() as u64 > LIMIT {
            return Err(image_error(
                format!("blob {digest} is larger than {LIMIT} bytes: not a manifest or a config"),
                "remove the image and pull, load or import it again",
            ));
        }
        match Digest::of(&bytes) == *digest {
            true => Ok(bytes),
            false => Err(image_error(
                format!("blob {} was changed on disk", path.display()),
                "remove the image and pull or load it again",
            )),
        }
    }

    pub fn read_config(&self, id: &Digest) -> Result<ImageConfig, LabError> {
        let bytes = self.read_blob(id)?;
        serde_json::from_slice(&bytes).map_err(|e| {
            image_error(
                format!("image config {id} is not valid: {e}"),
                "remove the image and pull or load it again",
            )
        })
    }

    /// Where a layer's files are, once unpacked.
    pub fn layer_dir(&self, diff_id: &Digest) -> PathBuf {
        self.root.join("layers").join(diff_id.hex())
    }

    pub fn has_layer(&self, diff_id: &Digest) -> bool {
        self.layer_dir(diff_id).is_dir()
    }

    // ANCHOR: unpack_layer
    /// Unpack one layer (a tar, gzip- or zstd-compressed or not) into a
    /// directory of its own, named by its diffID: the digest of the
    /// uncompressed tar, computed while it is unpacked and compared with
    /// the one the image's config names. Nothing gets the name until all of
    /// it is there and checked.
    pub fn unpack_layer(
        &self,
        compressed: impl Read,
        expected: Option<&Digest>,
        options: &ApplyOptions,
    ) -> Result<UnpackedLayer, LabError> {
        if let Some(existing) = self.existing_layer(expected) {
            return Ok(existing);
        }
        let mut compressed = compressed;
        let partial = self.unpack_partial(&mut compressed, expected, options)?;
        self.commit_layer(partial)
    }
    // ANCHOR_END: unpack_layer

    // ANCHOR: unpack_layer_blob
    /// Store a compressed layer blob and unpack it in one pass over its
    /// bytes (a registry's response body): every byte the decompressor
    /// reads is also written to a staging blob. The layer gets its name
    /// only once both digests are checked, the blob's (as the manifest
    /// names it) and the tar's (the config's diffID); a mismatch of either
    /// leaves nothing under either name.
    pub fn unpack_layer_blob(
        &self,
        compressed: impl Read,
        blob: &Digest,
        diff_id: &Digest,
        options: &ApplyOptions,
    ) -> Result<UnpackedLayer, LabError> {
        if let Some(existing) = self.existing_layer(Some(diff_id)) {
            return Ok(existing);
        }
        let staging = self.staging("blob");
        let file = std::fs::File::create(&staging)
            .map_err(|e| LabError::io("create", staging.display(), e))?;
        let mut tee = Tee {
            reader: compressed,
            copy: HashingWriter::new(std::io::BufWriter::with_capacity(1 << 20, file)),
        };
        let unpacked = self.unpack_partial(&mut tee, Some(diff_id), options);
        // The decompressor may stop before the end of the body (padding
        // after the last gzip member or zstd frame), or fail on damaged
        // bytes: the blob's digest covers all of it either way, and a
        // damaged blob is best reported by its digest.
        let drained = std::io::copy(&mut tee, &mut std::io::sink()).and_then(|_| tee.copy.flush());
        let (_, digest) = tee.copy.finish();
        let failed = match drained {
            Err(error) => Some(LabError::io("read", format!("blob {blob}"), error)),
            Ok(_) if digest != *blob => Some(image_error(
                format!("blob {blob} does not match its content: its bytes hash to {digest}"),
                "the source sent damaged or altered data; nothing was stored",
            )),
            Ok(_) => None,
        };
        let checked = match (failed, unpacked) {
            (None, Ok(partial)) => Ok(partial),
            (Some(error), Ok(partial)) => {
                let _ = remove_tree(&partial.dir);
                Err(error)
            }
            (failed, Err(error)) => Err(failed.unwrap_or(error)),
        };
        let partial = checked.inspect_err(|_| {
            let _ = std::fs::remove_file(&staging);
        })?;
        let path = self.blob_path(blob);
        if let Err(error) = std::fs::rename(&staging, &path) {
            let _ = std::fs::remove_file(&staging);
            let _ = remove_tree(&partial.dir);
            return Err(LabError::io("rename", path.display(), error));
        }
        self.commit_layer(partial)
    }
    // ANCHOR_END: unpack_layer_blob

    /// The layer `diff_id`, if the store has it already.
    fn existing_layer(&self, diff_id: Option<&Digest>) -> Option<UnpackedLayer> {
        let diff_id = diff_id.filter(|diff_id| self.has_layer(diff_id))?;
        Some(UnpackedLayer {
            diff_id: diff_id.clone(),
            size: 0,
            existed: true,
            applied: None,
        })
    }

    /// Unpack a layer into `layers/.partial-HEX-PID`, its diffID checked.
    fn unpack_partial(
        &self,
        compressed: &mut dyn Read,
        expected: Option<&Digest>,
        options: &ApplyOptions,
    ) -> Result<PartialLayer, LabError> {
        let partial = self.root.join("layers").join(format!(
            ".partial-{}-{}",
            expected.map_or("unknown", Digest::hex),
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&partial);
        std::fs::create_dir(&partial).map_err(|e| LabError::io("mkdir", partial.display(), e))?;
        let mut tar = Hashing::new(decompress(compressed)?);
        let applied = layer::apply(&mut tar, &partial, options).and_then(|applied| {
            // The tar's end-of-archive blocks, and any padding after them,
            // are part of what the diffID hashes.
            std::io::copy(&mut tar, &mut std::io::sink())
                .map_err(|e| LabError::io("read", "layer", e))?;
            Ok(applied)
        });
        let size = tar.bytes;
        let diff_id = tar.digest();
        let applied = match applied {
            Ok(applied) => applied,
            Err(error) => {
                let _ = remove_tree(&partial);
                return Err(error);
            }
        };
        if let Some(expected) = expected
            && *expected != diff_id
        {
            let _ = remove_tree(&partial);
            return Err(image_error(
                format!("layer {expected} does not match its content: its tar hashes to {diff_id}"),
                "the image's config and its layers disagree; nothing was stored",
            ));
        }
        Ok(PartialLayer {
            dir: partial,
            diff_id,
            size,
            applied,
        })
    }

    /// Give a checked layer its name.
    fn commit_layer(&self, partial: PartialLayer) -> Result<UnpackedLayer, LabError> {
        let PartialLayer {
            dir,
            diff_id,
            size,
            applied,
        } = partial;
        let target = self.layer_dir(&diff_id);
        match std::fs::rename(&dir, &target) {
            Ok(()) => Ok(UnpackedLayer {
                diff_id,
                size,
                existed: false,
                applied: Some(applied),
            }),
            // Another pull unpacked the same layer first: keep one copy.
            Err(error)
                if target.is_dir()
                    && matches!(error.raw_os_error(), Some(libc::ENOTEMPTY | libc::EEXIST)) =>
            {
                let _ = remove_tree(&dir);
                Ok(UnpackedLayer {
                    diff_id,
                    size,
                    existed: true,
                    applied: Some(applied),
                })
            }
            Err(error) => {
                let _ = remove_tree(&dir);
                Err(LabError::io("rename", target.display(), error))
            }
        }
    }

    fn image_path(&self, id: &Digest) -> PathBuf {
        self.root.join("images").join(format!("{}.json", id.hex()))
    }

    fn write_atomically(&self, path: &Path, bytes: &[u8]) -> Result<(), LabError> {
        let staging = self.staging("record");
        std::fs::write(&staging, bytes).map_err(|e| LabError::io("write", staging.display(), e))?;
        std::fs::rename(&staging, path).map_err(|e| LabError::io("rename", path.display(), e))
    }

    /// Add an image whose config and layers are all in the store, and give
    /// it these tags (taken from whatever image had them). The caller holds
    /// the store's lock.
    pub fn add_image(&self, record: &ImageRecord, tags: &[Reference]) -> Result<(), LabError> {
        for diff_id in &record.layers {
            if !self.has_layer(diff_id) {
                return Err(image_error(
                    format!(
                        "image {} names layer {diff_id}, which is not in the store",
                        record.id
                    ),
                    "pull or load the image again",
                ));
            }
        }
        let text = serde_json::to_vec_pretty(record).expect("a record serialises");
        self.write_atomically(&self.image_path(&record.id), &text)?;
        let mut all = self.tags();
        for tag in tags.iter().filter_map(Reference::tagged) {
            all.insert(tag, record.id.clone());
        }
        self.write_tags(&all)
    }

    /// "name:tag" -> image id.
    pub fn tags(&self) -> BTreeMap<String, Digest> {
        std::fs::read(self.root.join("tags.json"))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    fn write_tags(&self, tags: &BTreeMap<String, Digest>) -> Result<(), LabError> {
        let text = serde_json::to_vec_pretty(tags).expect("tags serialise");
        self.write_atomically(&self.root.join("tags.json"), &text)
    }

    pub fn image(&self, id: &Digest) -> Option<ImageRecord> {
        let bytes = std::fs::read(self.image_path(id)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Every image, newest first.
    pub fn images(&self) -> Vec<ImageRecord> {
        let mut images: Vec<ImageRecord> = std::fs::read_dir(self.root.join("images"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name();
                let hex = name.to_str()?.strip_suffix(".json")?;
                self.image(&Digest::from_hex(hex)?)
            })
            .collect();
        images.sort_by_key(|image| std::cmp::Reverse(image.added));
        images
    }

    // ANCHOR: find_image
    /// An image by what a user types: `name[:tag]`, a full or short id
    /// (`sha256:` optional), or `name@sha256:...` as pulled.
    pub fn find(&self, what: &str) -> Result<ImageRecord, LabError> {
        let missing = || {
            image_error(
                format!("no such image: {what}"),
                "see `images` for what the store holds; `pull` or `load` it first",
            )
        };
        if let Ok(reference) = Reference::parse(what) {
            if let Some(id) = reference.tagged().and_then(|tag| self.tags().remove(&tag)) {
                return self.image(&id).ok_or_else(missing);
            }
            if let Some(digest) = &reference.digest {
                let pinned = format!("{}@{digest}", reference.familiar_name());
                if let Some(image) = self
                    .images()
                    .into_iter()
                    .find(|image| image.repo_digests.contains(&pinned))
                {
                    return Ok(image);
                }
            }
        }
        let prefix = what.strip_prefix("sha256:").unwrap_or(what);
        if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(missing());
        }
        let mut matches = self
            .images()
            .into_iter()
            .filter(|image| image.id.hex().starts_with(prefix));
        match (matches.next(), matches.next()) {
            (Some(image), None) => Ok(image),
            (Some(_), Some(_)) => Err(image_error(
                format!("image id prefix {what} is ambiguous"),
                "give more digits",
            )),
            (None, _) => Err(missing()),
        }
    }
    // ANCHOR_END: find_image

    /// The tags that name this image.
    pub fn tags_of(&self, id: &Digest) -> Vec<String> {
        self.tags()
            .into_iter()
            .filter(|(_, of)| of == id)
            .map(|(tag, _)| tag)
            .collect()
    }

    /// Take a tag off its image; the image stays (untagged) unless the
    /// caller removes it.
    pub fn untag(&self, tag: &str) -> Result<(), LabError> {
        let mut tags = self.tags();
        tags.remove(tag);
        self.write_tags(&tags)
    }

    /// Forget an image: its record and tags. Its layers and blobs stay
    /// until `prune_unreferenced`, which keeps what another image shares.
    pub fn remove_image(&self, id: &Digest) -> Result<(), LabError> {
        let mut tags = self.tags();
        tags.retain(|_, of| of != id);
        self.write_tags(&tags)?;
        let path = self.image_path(id);
        std::fs::remove_file(&path).map_err(|e| LabError::io("unlink", path.display(), e))
    }

    // ANCHOR: prune
    /// Delete every layer and blob no image names, and whatever a killed
    /// writer left in tmp/ or half-unpacked. Layers shared by two images
    /// stay until both are gone. The caller holds the store's lock.
    pub fn prune_unreferenced(&self) -> Result<(u64, u64), LabError> {
        let images = self.images();
        let mut keep_layers = std::collections::BTreeSet::new();
        let mut keep_blobs = std::collections::BTreeSet::new();
        for image in &images {
            keep_layers.extend(image.layers.iter().map(|d| d.hex().to_string()));
            keep_blobs.extend(image.blobs().map(|d| d.hex().to_string()));
        }
        let (mut layers, mut blobs) = (0, 0);
        for entry in std::fs::read_dir(self.root.join("layers"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            if keep_layers.contains(&name) || is_partial_of_live_process(&name) {
                continue;
            }
            remove_tree(&entry.path())?;
            layers += 1;
        }
        for entry in std::fs::read_dir(self.root.join("blobs/sha256"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !keep_blobs.contains(&name) {
                let _ = std::fs::remove_file(entry.path());
                blobs += 1;
            }
        }
        for entry in std::fs::read_dir(self.root.join("tmp"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !is_partial_of_live_process(&name) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok((layers, blobs))
    }
    // ANCHOR_END: prune

    /// What writers that died left: layers half unpacked, blobs half
    /// written, and writable layers of containers that no longer exist
    /// (`containers` lists the ids that do). `lab clean` removes them.
    pub fn leftovers(&self, containers: &[String]) -> Vec<PathBuf> {
        let entries = |dir: &str| {
            std::fs::read_dir(self.root.join(dir))
                .into_iter()
                .flatten()
                .flatten()
                .map(|entry| {
                    (
                        entry.file_name().to_string_lossy().into_owned(),
                        entry.path(),
                    )
                })
                .collect::<Vec<_>>()
        };
        let mut found = Vec::new();
        for (name, path) in entries("layers") {
            if name.starts_with(".partial-") && !is_partial_of_live_process(&name) {
                found.push(path);
            }
        }
        for (name, path) in entries("tmp") {
            if !is_partial_of_live_process(&name) {
                found.push(path);
            }
        }
        for (name, path) in entries("containers") {
            if !containers.contains(&name) {
                found.push(path);
            }
        }
        found
    }

    /// A container's writable layer: `upper` (what it changed) and `work`
    /// (overlayfs's scratch space, on the same filesystem).
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.root.join("containers").join(id)
    }
}

/// `.partial-HEX-PID` or `blob-PID-N`: made by a process that still runs.
fn is_partial_of_live_process(name: &str) -> bool {
    let pid = match name.strip_prefix(".partial-") {
        Some(rest) => rest.rsplit('-').next(),
        None => name.split('-').nth(1),
    };
    match pid.and_then(|pid| pid.parse::<i32>().ok()) {
        Some(pid) => Path::new(&format!("/proc/{pid}")).exists(),
        None => false,
    }
}

/// The tar inside: gzip (1f 8b) and zstd (28 b5 2f fd) are known by their
/// first bytes, as containerd knows them, whatever the media type says.
pub fn decompress<'a>(reader: impl Read + 'a) -> Result<Box<dyn Read + 'a>, LabError> {
    let mut reader = BufReader::with_capacity(1 << 20, reader);
    let head = reader
        .fill_buf()
        .map_err(|e| LabError::io("read", "layer", e))?;
    Ok(match head {
        [0x1f, 0x8b, ..] => Box::new(flate2::bufread::MultiGzDecoder::new(reader)),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Box::new(
            zstd::stream::read::Decoder::with_buffer(reader)
                .map_err(|e| LabError::io("zstd", "layer", e))?,
        ),
        _ => Box::new(reader),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn temp_store() -> (tempdir::TempDir, ImageStore) {
        let dir = tempdir::TempDir::new("store");
        let store = ImageStore::at(&dir.0).unwrap();
        (dir, store)
    }

    /// A directory removed when dropped (the lab has no tempfile crate).
    pub(crate) mod tempdir {
        pub struct TempDir(pub std::path::PathBuf);
        impl TempDir {
            pub fn new(what: &str) -> TempDir {
                use std::sync::atomic::{AtomicU32, Ordering};
                static N: AtomicU32 = AtomicU32::new(0);
                let path = std::env::temp_dir().join(format!(
                    "container-lab-{what}-{}-{}",
                    std::process::id(),
                    N.fetch_add(1, Ordering::Relaxed)
                ));
                std::fs::create_dir_all(&path).unwrap();
                TempDir(path)
            }
        }
        impl Drop for TempDir {
            fn drop(&mut self) {
                let _ = super::remove_tree(&self.0);
            }
        }
    }

    #[test]
    fn a_blob_is_stored_under_its_digest_only_if_it_matches() {
        let (_dir, store) = temp_store();
        let digest = store
            .put_blob_bytes(b"hello", Some(&Digest::of(b"hello")))
            .unwrap();
        assert_eq!(std::fs::read(store.blob_path(&digest)).unwrap(), b"hello");
        let wrong = Digest::of(b"other");
        let error = store
            .put_blob_bytes(b"hello!", Some(&wrong))
            .unwrap_err()
            .to_string();
        assert!(error.contains("does not match"), "{error}");
        assert!(!store.has_blob(&wrong));
        assert!(!store.has_blob(&Digest::of(b"hello!")));
        assert_eq!(
            std::fs::read_dir(store.root.join("tmp")).unwrap().count(),
            0
        );
    }

    #[test]
    fn a_blob_changed_on_disk_is_refused_when_read() {
        let (_dir, store) = temp_store();
        let digest = store.put_blob_bytes(b"{}", None).unwrap();
        std::fs::write(store.blob_path(&digest), b"{ }").unwrap();
        assert!(store.read_blob(&digest).is_err());
    }

    #[test]
    fn gzip_zstd_and_plain_are_told_apart_by_their_first_bytes() {
        let data = b"a tar would be here".repeat(100);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        let zst = zstd::encode_all(&data[..], 1).unwrap();
        for input in [&data[..], &gz[..], &zst[..]] {
            let mut out = Vec::new();
            decompress(input).unwrap().read_to_end(&mut out).unwrap();
            assert_eq!(out, data);
        }
    }

    /// A gzip-compressed layer holding `etc/motd`, and its tar's digest.
    fn gzip_layer(text: &[u8]) -> (Vec<u8>, Digest) {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, "etc/motd", text).unwrap();
        let tar = builder.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        (gz.finish().unwrap(), Digest::of(&tar))
    }

    #[test]
    fn a_layer_blob_is_stored_and_unpacked_in_one_pass_when_both_digests_match() {
        let (_dir, store) = temp_store();
        let (gz, diff_id) = gzip_layer(b"hello\n");
        let options = ApplyOptions { privileged: false };
        let unpacked = store
            .unpack_layer_blob(&gz[..], &Digest::of(&gz), &diff_id, &options)
            .unwrap();
        assert!(!unpacked.existed);
        assert_eq!(
            std::fs::read(store.blob_path(&Digest::of(&gz))).unwrap(),
            gz
        );
        let motd = store.layer_dir(&diff_id).join("etc/motd");
        assert_eq!(std::fs::read(motd).unwrap(), b"hello\n");
        let again = store
            .unpack_layer_blob(&b""[..], &Digest::of(&gz), &diff_id, &options)
            .unwrap();
        assert!(again.existed, "a layer in the store is not read again");
    }

    #[test]
    fn a_layer_blob_that_unpacks_fine_but_is_not_the_blob_named_is_not_stored() {
        let (_dir, store) = temp_store();
        let (gz, diff_id) = gzip_layer(b"hello\n");
        // Another gzip header MTIME (RFC 1952 section 2.3): same tar,
        // other blob. Then bytes that no longer decompress: named by
        // their digest too.
        for at in [4, gz.len() / 2] {
            let mut altered = gz.clone();
            altered[at] ^= 0xff;
            let options = ApplyOptions { privileged: false };
            let error = store
                .unpack_layer_blob(&altered[..], &Digest::of(&gz), &diff_id, &options)
                .err()
                .unwrap()
                .to_string();
            assert!(error.contains("does not match"), "{error}");
            assert!(!store.has_layer(&diff_id));
            assert!(!store.has_blob(&Digest::of(&gz)));
            assert!(!store.has_blob(&Digest::of(&altered)));
            for dir in ["layers", "tmp"] {
                assert_eq!(std::fs::read_dir(store.root.join(dir)).unwrap().count(), 0);
            }
        }
    }

    fn record(id: &[u8], layers: Vec<Digest>, added: u64) -> ImageRecord {
        ImageRecord {
            id: Digest::of(id),
            layers,
            manifest: None,
            layer_blobs: vec![],
            repo_digests: vec![],
            size: 0,
            added,
        }
    }

    #[test]
    fn images_are_found_by_tag_id_and_prefix_and_tags_move() {
        let (_dir, store) = temp_store();
        let a = record(b"a", vec![], 1);
        let b = record(b"b", vec![], 2);
        let tag = Reference::parse("lab/base:v1").unwrap();
        store.add_image(&a, std::slice::from_ref(&tag)).unwrap();
        assert_eq!(store.find("lab/base:v1").unwrap().id, a.id);
        assert_eq!(store.find(&a.id.hex()[..8]).unwrap().id, a.id);
        assert_eq!(store.find(&a.id.to_string()).unwrap().id, a.id);
        store.add_image(&b, &[tag]).unwrap();
        assert_eq!(store.find("lab/base:v1").unwrap().id, b.id);
        assert!(store.tags_of(&a.id).is_empty());
        assert!(store.find("lab/other").is_err());
        assert_eq!(store.images().len(), 2);
        assert_eq!(store.images()[0].id, b.id, "newest first");
    }

    #[test]
    fn an_image_whose_layer_is_missing_is_refused() {
        let (_dir, store) = temp_store();
        let error = store
            .add_image(&record(b"a", vec![Digest::of(b"no such layer")], 1), &[])
            .unwrap_err();
        assert!(error.to_string().contains("not in the store"), "{error}");
    }

    #[test]
    fn prune_keeps_what_an_image_names_and_removes_the_rest() {
        let (_dir, store) = temp_store();
        let shared = Digest::of(b"shared");
        let alone = Digest::of(b"alone");
        for layer in [&shared, &alone] {
            std::fs::create_dir_all(store.layer_dir(layer).join("etc")).unwrap();
        }
        std::fs::create_dir_all(store.root.join("layers/.partial-x-999999999")).unwrap();
        let config = store.put_blob_bytes(b"config a", None).unwrap();
        let a = ImageRecord {
            id: config,
            ..record(b"", vec![shared.clone(), alone.clone()], 1)
        };
        let b = record(b"b", vec![shared.clone()], 2);
        store.add_image(&a, &[]).unwrap();
        store.add_image(&b, &[]).unwrap();
        store.remove_image(&a.id).unwrap();
        let (layers, blobs) = store.prune_unreferenced().unwrap();
        assert_eq!(
            (layers, blobs),
            (2, 1),
            "the lone layer, the half-unpacked one, a's config"
        );
        assert!(store.has_layer(&shared));
        assert!(!store.has_layer(&alone));
    }
}
