//! save: images of the store as one archive file, for `podman load`,
//! `docker load` or `skopeo copy` to read, in one of two formats:
//!
//! - **docker-archive** (the default, as docker's and podman's): Docker's
//!   "combined image JSON + filesystem changeset" format. `manifest.json`
//!   lists each image as `{Config, RepoTags, Layers}`; the config is
//!   `HEX.json`; each layer is its *uncompressed* tar, `HEX.tar`, whose
//!   sha256 is the diffID the config names (the format has no place for a
//!   compressed layer's digest). `repositories` is the pre-1.10 index of
//!   tags, kept for old loaders.
//! - **oci-archive**: a tar of an OCI image layout (image-spec,
//!   image-layout.md): `oci-layout`, `index.json` naming one manifest per
//!   image and tag (the tag in the `org.opencontainers.image.ref.name`
//!   annotation), and every blob under `blobs/sha256/HEX`, layers as they
//!   are kept (gzip stays gzip).
//!
//! The archive is written under a temporary name beside FILE and renamed
//! to FILE only when complete: a failed save leaves nothing at FILE. The
//! temporary's name ends in random hex and it is created with
//! `O_CREAT|O_EXCL|O_NOFOLLOW`: whoever can write FILE's directory can
//! neither guess the name nor have a symlink there followed (root's save
//! into a shared directory must not truncate a file a symlink names).

use super::digest::{Digest, Hashing};
use super::export::{Exported, LayerBlob, export};
use super::reference::Reference;
use super::spec::{self, Descriptor, Index};
use super::store::{ImageRecord, ImageStore, decompress};
use super::verbs::{SaveArgs, SaveFormat};
use crate::error::LabError;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The annotation naming an image in an OCI layout (image-spec,
/// annotations.md), as podman and skopeo write it.
const REF_NAME: &str = "org.opencontainers.image.ref.name";

fn image_error(message: String, hint: &str) -> LabError {
    LabError::Image {
        message,
        hint: hint.into(),
    }
}

/// A file being written under a temporary name, removed if dropped before
/// `finish` renames it into place.
struct Partial {
    path: PathBuf,
    done: bool,
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// How many names `create_partial` tries before it gives up: a random
/// name is taken already only if someone planted it (or at 2^-64 odds).
const PARTIAL_TRIES: usize = 16;

/// A new file in `dir`, `.FILE.partial-SUFFIX`, with a name `suffix`
/// makes. `O_CREAT|O_EXCL` fails on anything already at the name (a
/// symlink too, dangling or not) instead of opening it; `O_NOFOLLOW`
/// says so twice. A name taken means another try with another suffix.
fn create_partial(
    dir: &Path,
    file_name: &str,
    mut suffix: impl FnMut() -> String,
) -> Result<(Partial, std::fs::File), LabError> {
    let mut tries = 0;
    loop {
        let path = dir.join(format!(".{file_name}.partial-{}", suffix()));
        let created = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path);
        tries += 1;
        match created {
            Ok(file) => return Ok((Partial { path, done: false }, file)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && tries < PARTIAL_TRIES => {}
            Err(e) => return Err(LabError::io("open", path.display(), e)),
        }
    }
}

/// One image to save, and the tags to give it in the archive.
struct Saved {
    exported: Exported,
    tags: Vec<String>,
}

// ANCHOR: save
/// `save -o FILE [--format docker-archive|oci-archive] IMAGE...`
pub fn save(store: &ImageStore, args: &SaveArgs) -> Result<i32, LabError> {
    let output = &args.output;
    // Every image and every layer blob is found before a byte is written.
    let mut images = Vec::new();
    for name in &args.images {
        let record = store.find(name)?;
        images.push(Saved {
            tags: tags_named(name, &record),
            exported: export(store, &record)?,
        });
    }
    let dir = match output.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(image_error(
            format!(
                "save {}: directory {} does not exist",
                output.display(),
                dir.display()
            ),
            "create the directory first, or name a file in one that exists",
        ));
    }
    if output.is_dir() {
        return Err(image_error(
            format!("save {}: is a directory", output.display()),
            "-o names the archive file to write",
        ));
    }
    let file_name = output.file_name().unwrap_or_default().to_string_lossy();
    let (mut partial, file) = create_partial(&dir, &file_name, || {
        crate::runtime::state::new_id()[..16].to_string()
    })?;
    let mut archive = Archive {
        builder: tar::Builder::new(std::io::BufWriter::with_capacity(1 << 20, file)),
        path: partial.path.clone(),
        written: BTreeSet::new(),
    };
    match args.format {
        SaveFormat::DockerArchive => write_docker_archive(&mut archive, &images)?,
        SaveFormat::OciArchive => write_oci_archive(&mut archive, &images)?,
    }
    let file = archive
        .builder
        .into_inner()
        .and_then(|buffered| buffered.into_inner().map_err(|e| e.into_error()))
        .map_err(|e| LabError::io("write", partial.path.display(), e))?;
    // On disk before it has its name: a crash leaves the old FILE or the
    // whole new one (rename(2) is atomic).
    file.sync_all()
        .map_err(|e| LabError::io("fsync", partial.path.display(), e))?;
    std::fs::rename(&partial.path, output)
        .map_err(|e| LabError::io("rename", output.display(), e))?;
    partial.done = true;
    Ok(0)
}
// ANCHOR_END: save

/// The tags an image is saved with: the one it was named by, as
/// `docker save NAME:TAG` does; none when it was named by its id.
fn tags_named(name: &str, record: &ImageRecord) -> Vec<String> {
    let by_id = {
        let hex = name.strip_prefix("sha256:").unwrap_or(name);
        !hex.is_empty() && record.id.hex().starts_with(hex)
    };
    match by_id {
        true => vec![],
        false => Reference::parse(name)
            .ok()
            .and_then(|reference| reference.tagged())
            .into_iter()
            .collect(),
    }
}

/// The archive being written, and the members written so far (a layer two
/// images share is written once).
struct Archive {
    builder: tar::Builder<std::io::BufWriter<std::fs::File>>,
    path: PathBuf,
    written: BTreeSet<String>,
}

impl Archive {
    fn header(size: u64, kind: tar::EntryType) -> tar::Header {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(kind);
        header.set_size(size);
        header.set_mode(match kind {
            tar::EntryType::Directory => 0o755,
            _ => 0o644,
        });
        header.set_mtime(0);
        header
    }

    fn failed(&self, e: std::io::Error) -> LabError {
        LabError::io("write", self.path.display(), e)
    }

    fn directory(&mut self, name: &str) -> Result<(), LabError> {
        let mut header = Archive::header(0, tar::EntryType::Directory);
        self.builder
            .append_data(&mut header, name, std::io::empty())
            .map_err(|e| self.failed(e))
    }

    fn bytes(&mut self, name: &str, bytes: &[u8]) -> Result<(), LabError> {
        if !self.written.insert(name.to_string()) {
            return Ok(());
        }
        let mut header = Archive::header(bytes.len() as u64, tar::EntryType::Regular);
        self.builder
            .append_data(&mut header, name, bytes)
            .map_err(|e| self.failed(e))
    }

    /// A blob of the store as it is, its digest checked as it is copied.
    fn blob(&mut self, name: &str, path: &Path, descriptor: &Descriptor) -> Result<(), LabError> {
        if !self.written.insert(name.to_string()) {
            return Ok(());
        }
        let file =
            std::fs::File::open(path).map_err(|e| LabError::io("open", path.display(), e))?;
        let mut header = Archive::header(descriptor.size, tar::EntryType::Regular);
        let mut reader = Hashing::new(file.take(descriptor.size));
        self.builder
            .append_data(&mut header, name, &mut reader)
            .map_err(|e| self.failed(e))?;
        check(path, reader, &descriptor.digest, descriptor.size)
    }

    // ANCHOR: uncompressed_layer
    /// A layer as its uncompressed tar. A tar header comes before its
    /// content and holds its size, which a compressed blob does not tell:
    /// a first pass counts (and checks the diffID), a second one copies.
    fn layer_tar(&mut self, name: &str, layer: &LayerBlob) -> Result<(), LabError> {
        if !self.written.insert(name.to_string()) {
            return Ok(());
        }
        let path = &layer.path;
        let open = || -> Result<Hashing<Box<dyn Read>>, LabError> {
            let file =
                std::fs::File::open(path).map_err(|e| LabError::io("open", path.display(), e))?;
            Ok(Hashing::new(decompress(file)?))
        };
        let size = match layer.descriptor.media_type.as_str() {
            spec::OCI_LAYER => layer.descriptor.size,
            _ => {
                let mut counting = open()?;
                std::io::copy(&mut counting, &mut std::io::sink())
                    .map_err(|e| LabError::io("read", path.display(), e))?;
                let size = counting.bytes;
                check(path, counting, &layer.diff_id, size)?;
                size
            }
        };
        let mut header = Archive::header(size, tar::EntryType::Regular);
        let mut reader = open()?;
        let mut limited = (&mut reader).take(size);
        self.builder
            .append_data(&mut header, name, &mut limited)
            .map_err(|e| self.failed(e))?;
        check(path, reader, &layer.diff_id, size)
    }
    // ANCHOR_END: uncompressed_layer
}

/// What was read is `size` bytes that hash to `expected`.
fn check<R>(path: &Path, read: Hashing<R>, expected: &Digest, size: u64) -> Result<(), LabError> {
    let bytes = read.bytes;
    let digest = read.digest();
    match bytes == size && digest == *expected {
        true => Ok(()),
        false => Err(image_error(
            format!(
                "{} should be {expected} ({size} bytes) but is {digest} ({bytes} bytes)",
                path.display()
            ),
            "the store was changed on disk: remove the image and pull or load it again",
        )),
    }
}

/// One image of a docker-archive's manifest.json.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DockerArchiveEntry {
    config: String,
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

// ANCHOR: docker_archive
fn write_docker_archive(archive: &mut Archive, images: &[Saved]) -> Result<(), LabError> {
    let mut entries = Vec::new();
    // name -> tag -> the top layer's id (the pre-1.10 `repositories`).
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for image in images {
        let exported = &image.exported;
        let mut layers = Vec::new();
        for layer in &exported.layers {
            let name = format!("{}.tar", layer.diff_id.hex());
            archive.layer_tar(&name, layer)?;
            layers.push(name);
        }
        let config = format!("{}.json", exported.record.id.hex());
        archive.blob(&config, &exported.config_path, &exported.config)?;
        for tag in &image.tags {
            if let (Some((name, tag)), Some(top)) = (tag.rsplit_once(':'), exported.layers.last()) {
                repositories
                    .entry(name.to_string())
                    .or_default()
                    .insert(tag.to_string(), top.diff_id.hex().to_string());
            }
        }
        entries.push(DockerArchiveEntry {
            config,
            repo_tags: (!image.tags.is_empty()).then(|| image.tags.clone()),
            layers,
        });
    }
    let manifest = serde_json::to_vec(&entries).expect("manifest.json serialises");
    archive.bytes("manifest.json", &manifest)?;
    if !repositories.is_empty() {
        let text = serde_json::to_vec(&repositories).expect("repositories serialises");
        archive.bytes("repositories", &text)?;
    }
    Ok(())
}
// ANCHOR_END: docker_archive

// ANCHOR: oci_archive
fn write_oci_archive(archive: &mut Archive, images: &[Saved]) -> Result<(), LabError> {
    archive.bytes("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    archive.directory("blobs/")?;
    archive.directory("blobs/sha256/")?;
    let mut manifests = Vec::new();
    for image in images {
        let exported = &image.exported;
        for layer in &exported.layers {
            let name = format!("blobs/sha256/{}", layer.descriptor.digest.hex());
            archive.blob(&name, &layer.path, &layer.descriptor)?;
        }
        let config = format!("blobs/sha256/{}", exported.config.digest.hex());
        archive.blob(&config, &exported.config_path, &exported.config)?;
        let manifest = format!("blobs/sha256/{}", exported.manifest_digest.hex());
        archive.bytes(&manifest, &exported.manifest)?;
        let descriptor = Descriptor {
            media_type: exported.manifest_type.clone(),
            digest: exported.manifest_digest.clone(),
            size: exported.manifest.len() as u64,
            platform: None,
            annotations: BTreeMap::new(),
        };
        manifests.extend(index_entries(&descriptor, &image.tags));
    }
    let index = Index {
        schema_version: 2,
        media_type: Some(spec::OCI_INDEX.into()),
        manifests,
        other: BTreeMap::new(),
    };
    let bytes = serde_json::to_vec(&index).expect("an index serialises");
    archive.bytes("index.json", &bytes)
}
// ANCHOR_END: oci_archive

/// index.json's entries for one manifest: one per tag, the tag in the
/// ref.name annotation; one without a name for an untagged image.
fn index_entries(manifest: &Descriptor, tags: &[String]) -> Vec<Descriptor> {
    if tags.is_empty() {
        return vec![manifest.clone()];
    }
    tags.iter()
        .map(|tag| {
            let mut named = manifest.clone();
            named.annotations.insert(REF_NAME.into(), tag.clone());
            named
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::image::store::tests::tempdir::TempDir;

    #[test]
    fn the_partial_file_is_never_opened_through_a_planted_symlink() {
        let temp = TempDir::new("symlink");
        let dir = &temp.0;
        let victim = dir.join("victim");
        std::fs::write(&victim, "precious").unwrap();
        // Planted at the first name tried: refused, and the next one made.
        std::os::unix::fs::symlink(&victim, dir.join(".x.tar.partial-a")).unwrap();
        let mut suffixes = ["a", "b"].into_iter();
        let (partial, _file) =
            create_partial(dir, "x.tar", || suffixes.next().unwrap().into()).unwrap();
        assert_eq!(partial.path, dir.join(".x.tar.partial-b"));
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert!(dir.join(".x.tar.partial-a").is_symlink());
        drop(partial);
        assert!(
            !dir.join(".x.tar.partial-b").exists(),
            "removed when dropped"
        );
        // A dangling symlink is not created through either.
        let dangling = dir.join("nowhere");
        std::os::unix::fs::symlink(&dangling, dir.join(".y.tar.partial-a")).unwrap();
        let refused = create_partial(dir, "y.tar", || "a".into());
        assert!(refused.is_err(), "a name taken every time is an error");
        assert!(!dangling.exists());
    }

    #[test]
    fn partial_names_are_random() {
        let temp = TempDir::new("random");
        let random = || crate::runtime::state::new_id()[..16].to_string();
        let (one, _) = create_partial(&temp.0, "x.tar", random).unwrap();
        let (two, _) = create_partial(&temp.0, "x.tar", random).unwrap();
        assert_ne!(one.path, two.path);
        let pid = format!("partial-{}", std::process::id());
        assert!(!one.path.to_string_lossy().ends_with(&pid));
    }

    #[test]
    fn an_image_is_saved_with_the_tag_it_was_named_by_and_none_by_id() {
        let record = ImageRecord {
            id: Digest::of(b"config"),
            layers: vec![],
            manifest: None,
            layer_blobs: vec![],
            repo_digests: vec![],
            size: 0,
            added: 0,
        };
        assert_eq!(tags_named("lab/x:v1", &record), ["lab/x:v1"]);
        assert_eq!(tags_named("lab/x", &record), ["lab/x:latest"]);
        assert_eq!(
            tags_named("127.0.0.1:5000/lab/x:v2", &record),
            ["127.0.0.1:5000/lab/x:v2"]
        );
        assert!(tags_named(&record.id.hex()[..12], &record).is_empty());
        assert!(tags_named(&record.id.to_string(), &record).is_empty());
    }

    #[test]
    fn the_index_names_each_tag_of_a_manifest_once() {
        let manifest = Descriptor {
            media_type: spec::OCI_MANIFEST.into(),
            digest: Digest::of(b"m"),
            size: 1,
            platform: None,
            annotations: BTreeMap::new(),
        };
        let entries = index_entries(&manifest, &["lab/x:v1".into(), "lab/x:v2".into()]);
        let names: Vec<&str> = entries
            .iter()
            .map(|e| e.annotations[REF_NAME].as_str())
            .collect();
        assert_eq!(names, ["lab/x:v1", "lab/x:v2"]);
        assert!(index_entries(&manifest, &[])[0].annotations.is_empty());
    }
}
