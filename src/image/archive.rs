//! load and import: images from archives and directories, no registry.
//!
//! `load` takes what `docker save`, `podman save`, `buildah push` and
//! `skopeo copy` write:
//!
//! - a docker-archive: a tar with `manifest.json` (a list of
//!   `{Config, RepoTags, Layers}`, each a member's name), the config JSON
//!   and one uncompressed tar per layer (docker's image spec, "combined
//!   image JSON + filesystem changeset format");
//! - an oci-archive: a tar of an OCI image layout (image-layout.md of the
//!   OCI image spec): `oci-layout`, `index.json` (which may name an index
//!   in turn), and every blob under `blobs/sha256/HEX`;
//! - an OCI image layout as a directory.
//!
//! Any of the archives may be gzip- or zstd-compressed as a whole. The
//! archive is read once, front to back, as a stream: its order is the
//! writer's (manifest.json often comes last), so each member is judged by
//! its first bytes. A layer is unpacked while it is read, and the same
//! bytes go to its blob in the store, so nothing is written twice; JSON
//! documents are kept in memory until the manifest says what they are.
//! Only then are the layers' diffIDs compared with the config's. Member
//! names are only keys here: nothing in the outer archive becomes a path
//! on the host (a layer's entries go through `layer.rs`).
//!
//! `import` makes a one-layer image of a tar file or a directory, as
//! `docker import` does, with a config of our own.

use super::digest::Digest;
use super::export::oci_layer_type as layer_media_type;
use super::layer::ApplyOptions;
use super::reference::Reference;
use super::spec::{
    Descriptor, Document, History, ImageConfig, Index, Manifest, OCI_LAYER, Platform, RootFs,
    RunConfig,
};
use super::store::{ImageRecord, ImageStore, Tee};
use super::verbs::{ImportArgs, LoadArgs, record_for};
use crate::error::LabError;
use crate::runtime::state::remove_tree;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// A JSON document larger than this is refused: real manifests and
/// configs are kilobytes, and each is held in memory.
const DOCUMENT_LIMIT: u64 = 64 << 20;

/// The OCI image spec's annotation for an image's name in a layout
/// (annotations.md): a full reference, or (as the spec allows) a tag.
const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// containerd's (and Docker 25's) annotation for the full name.
const CONTAINERD_NAME: &str = "io.containerd.image.name";

/// PATH as Docker gives a container whose image sets none
/// (daemon/oci_linux.go's default).
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

const KNOWN_FORMATS: &str = "load reads a docker-archive (docker save, podman save), an oci-archive, or an OCI image layout directory, each tar optionally gzip- or zstd-compressed";

fn not_known(input: &Path) -> LabError {
    image_error(
        format!(
            "{} is not an archive of a known format: it has neither manifest.json (docker-archive) nor index.json (OCI layout)",
            input.display()
        ),
        KNOWN_FORMATS,
    )
}

fn image_error(message: impl Into<String>, hint: &str) -> LabError {
    LabError::Image {
        message: message.into(),
        hint: hint.into(),
    }
}

/// What one member of an archive held.
enum Member {
    /// A document (manifest, config, index, `repositories`, ...), kept in
    /// memory; also any small file that was not recognised as a tar.
    Document(Vec<u8>),
    /// A layer, unpacked into the store and kept as a blob.
    Layer(KeptLayer),
}

/// A layer in the store: unpacked under its diffID, its blob as it came.
#[derive(Clone)]
pub(super) struct KeptLayer {
    pub diff_id: Digest,
    pub blob: Descriptor,
}

/// What one load or import added to the store, so that what no image ends
/// up naming (an unreferenced blob, everything after a failure) is removed.
#[derive(Default)]
pub(super) struct Added {
    layers: BTreeSet<Digest>,
    blobs: BTreeSet<Digest>,
}

impl Added {
    /// Remove what was added but is named by none of `kept`.
    pub(super) fn remove_unused(&self, store: &ImageStore, kept: &[ImageRecord]) {
        let layers: BTreeSet<&Digest> = kept.iter().flat_map(|r| &r.layers).collect();
        let blobs: BTreeSet<&Digest> = kept.iter().flat_map(ImageRecord::blobs).collect();
        for layer in self.layers.iter().filter(|l| !layers.contains(l)) {
            let _ = remove_tree(&store.layer_dir(layer));
        }
        for blob in self.blobs.iter().filter(|b| !blobs.contains(b)) {
            let _ = std::fs::remove_file(store.blob_path(blob));
        }
    }

    pub(super) fn put_document(
        &mut self,
        store: &ImageStore,
        bytes: &[u8],
    ) -> Result<Digest, LabError> {
        let digest = Digest::of(bytes);
        if !store.has_blob(&digest) {
            store.put_blob_bytes(bytes, Some(&digest))?;
            self.blobs.insert(digest.clone());
        }
        Ok(digest)
    }
}

/// Up to `n` first bytes of a stream (fewer if it is shorter).
fn first_bytes(reader: &mut impl Read, n: u64) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(n as usize);
    reader.take(n).read_to_end(&mut head)?;
    Ok(head)
}

/// A tar (POSIX ustar or GNU: "ustar" at offset 257 of the first header),
/// an empty tar (a zero block), or a compressed stream that holds one.
fn looks_like_layer(head: &[u8]) -> bool {
    let ustar = head.get(257..262) == Some(b"ustar");
    let empty_tar = head.len() >= 512 && head[..512].iter().all(|&b| b == 0);
    ustar || empty_tar || layer_media_type(head) != OCI_LAYER
}

// ANCHOR: unpack_and_keep
/// Unpack a layer and keep its bytes as a blob, in one pass: each buffer
/// read from `layer` is written to the blob's staging file (hashed there)
/// and given to the unpacker (hashed after decompression: the diffID).
/// `expected_blob` is the digest the blob's name or descriptor promises.
pub(super) fn unpack_and_keep(
    store: &ImageStore,
    layer: impl Read,
    expected_blob: Option<&Digest>,
    added: &mut Added,
) -> Result<KeptLayer, LabError> {
    let mut layer = layer;
    let head = first_bytes(&mut layer, 512).map_err(|e| LabError::io("read", "layer", e))?;
    let media_type = layer_media_type(&head);
    // An uncompressed blob is its own tar: its digest is the diffID the
    // unpacker computes, so its bytes are hashed once, not twice.
    let compressed = media_type != OCI_LAYER;
    let mut tee = Tee {
        reader: std::io::Cursor::new(head).chain(layer),
        copy: store.blob_writer(compressed)?,
    };
    let unpacked = store.unpack_layer(&mut tee, None, &ApplyOptions::for_this_user())?;
    if !unpacked.existed {
        added.layers.insert(unpacked.diff_id.clone());
    }
    // What the decompressor left unread (a compressed stream's trailer,
    // padding) is still part of the blob; an uncompressed one was read to
    // its end by the unpacker.
    let trailing = std::io::copy(&mut tee, &mut std::io::sink())
        .map_err(|e| LabError::io("read", "layer", e))?;
    let blob_digest = match compressed {
        true => expected_blob.cloned(),
        false => Some(unpacked.diff_id.clone()),
    };
    let existed = blob_digest.as_ref().is_some_and(|d| store.has_blob(d));
    let (digest, size) = match compressed {
        true => tee.copy.commit(expected_blob)?,
        false => {
            let diff_id = &unpacked.diff_id;
            if let Some(expected) = expected_blob.filter(|e| *e != diff_id) {
                return Err(image_error(
                    format!(
                        "blob {expected} does not match its content: its bytes hash to {diff_id}"
                    ),
                    "the archive was damaged or altered; nothing was loaded",
                ));
            }
            assert_eq!(
                trailing, 0,
                "the unpacker reads an uncompressed layer to its end"
            );
            tee.copy.commit_as(diff_id)?
        }
    };
    if !existed {
        added.blobs.insert(digest.clone());
    }
    Ok(KeptLayer {
        diff_id: unpacked.diff_id,
        blob: Descriptor {
            media_type: media_type.into(),
            digest,
            size,
            platform: None,
            annotations: BTreeMap::new(),
        },
    })
}
// ANCHOR_END: unpack_and_keep

/// The members of an archive, as they were read.
struct Members<'a> {
    store: &'a ImageStore,
    by_name: BTreeMap<String, Member>,
    /// Symlinks and hard links of the archive (docker save links a layer
    /// shared by two images): name -> the member it names.
    aliases: BTreeMap<String, String>,
    added: Added,
    quiet: bool,
}

/// `./a//b` -> `a/b`: a member's name as manifests spell it.
fn normalise(name: &str) -> String {
    name.split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .collect::<Vec<_>>()
        .join("/")
}

/// The digest a member's name promises: `blobs/sha256/HEX` in an OCI
/// layout; `HEX.json` (a config) and `HEX.tar` (an uncompressed layer) in
/// a docker-archive.
fn digest_in_name(name: &str) -> Option<Digest> {
    if let Some(hex) = name.strip_prefix("blobs/sha256/") {
        return Digest::from_hex(hex);
    }
    let file = name.rsplit('/').next()?;
    let hex = file
        .strip_suffix(".json")
        .or_else(|| file.strip_suffix(".tar"))?;
    Digest::from_hex(hex)
}

impl<'a> Members<'a> {
    fn new(store: &'a ImageStore, quiet: bool) -> Members<'a> {
        Members {
            store,
            by_name: BTreeMap::new(),
            aliases: BTreeMap::new(),
            added: Added::default(),
            quiet,
        }
    }

    /// Read one member: a layer is unpacked and stored as it streams by,
    /// anything else is kept in memory; either is checked against the
    /// digest its name promises.
    fn add(&mut self, name: &str, mut reader: impl Read) -> Result<(), LabError> {
        let name = normalise(name);
        let promised = digest_in_name(&name);
        let head = first_bytes(&mut reader, 512).map_err(|e| LabError::io("read", &name, e))?;
        let reader = std::io::Cursor::new(head.clone()).chain(reader);
        let member = match looks_like_layer(&head) {
            true => {
                let layer = unpack_and_keep(self.store, reader, promised.as_ref(), &mut self.added)
                    .map_err(|e| in_member(&name, e))?;
                if !self.quiet {
                    eprintln!(
                        "Loading layer {} ({})",
                        layer.diff_id.short(),
                        super::manage::human_size(layer.blob.size)
                    );
                }
                Member::Layer(layer)
            }
            false => {
                let mut bytes = Vec::new();
                reader
                    .take(DOCUMENT_LIMIT + 1)
                    .read_to_end(&mut bytes)
                    .map_err(|e| LabError::io("read", &name, e))?;
                if bytes.len() as u64 > DOCUMENT_LIMIT {
                    return Err(image_error(
                        format!(
                            "archive member {name} is neither a layer (a tar) nor a document of at most {DOCUMENT_LIMIT} bytes"
                        ),
                        KNOWN_FORMATS,
                    ));
                }
                if let Some(promised) = &promised
                    && Digest::of(&bytes) != *promised
                {
                    return Err(image_error(
                        format!(
                            "archive member {name} does not match its name: its bytes hash to {}",
                            Digest::of(&bytes)
                        ),
                        "the archive was damaged or altered; nothing was loaded",
                    ));
                }
                Member::Document(bytes)
            }
        };
        self.by_name.insert(name, member);
        Ok(())
    }

    /// A symlink or hard link member: `target` is relative to the link's
    /// directory for a symlink, to the archive's root for a hard link.
    fn alias(&mut self, name: &str, target: &str, symbolic: bool) {
        let name = normalise(name);
        let base = match (symbolic, name.rsplit_once('/')) {
            (true, Some((dir, _))) => format!("{dir}/"),
            _ => String::new(),
        };
        let mut parts: Vec<&str> = Vec::new();
        let joined = format!("{base}{target}");
        for part in joined.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    parts.pop();
                }
                part => parts.push(part),
            }
        }
        self.aliases.insert(name, parts.join("/"));
    }

    fn get(&self, name: &str) -> Result<&Member, LabError> {
        let mut name = normalise(name);
        for _ in 0..16 {
            match self.aliases.get(&name) {
                Some(target) => name = target.clone(),
                None => break,
            }
        }
        self.by_name.get(&name).ok_or_else(|| {
            image_error(
                format!("archive member {name} is missing"),
                "the archive is incomplete: save or copy the image again",
            )
        })
    }

    fn document(&self, name: &str) -> Result<&[u8], LabError> {
        match self.get(name)? {
            Member::Document(bytes) => Ok(bytes),
            Member::Layer(_) => Err(image_error(
                format!("archive member {name} is a layer where a JSON document was expected"),
                KNOWN_FORMATS,
            )),
        }
    }

    /// A layer member; one that did not look like a tar when read (an old
    /// tar without the ustar magic) is unpacked from memory now.
    fn layer(&mut self, name: &str) -> Result<KeptLayer, LabError> {
        let bytes = match self.get(name)? {
            Member::Layer(layer) => return Ok(layer.clone()),
            Member::Document(bytes) => bytes.clone(),
        };
        let layer = unpack_and_keep(
            self.store,
            &bytes[..],
            digest_in_name(name).as_ref(),
            &mut self.added,
        )
        .map_err(|e| in_member(name, e))?;
        self.by_name
            .insert(normalise(name), Member::Layer(layer.clone()));
        Ok(layer)
    }

    /// A blob of an OCI layout, checked against its descriptor's size (its
    /// digest was checked against its name when read).
    fn blob_member(&self, descriptor: &Descriptor) -> Result<String, LabError> {
        let name = format!("blobs/sha256/{}", descriptor.digest.hex());
        let size = match self.get(&name)? {
            Member::Document(bytes) => bytes.len() as u64,
            Member::Layer(layer) => layer.blob.size,
        };
        match size == descriptor.size {
            true => Ok(name),
            false => Err(image_error(
                format!(
                    "blob {} is {size} bytes, its descriptor says {}",
                    descriptor.digest, descriptor.size
                ),
                "the archive was damaged or altered; nothing was loaded",
            )),
        }
    }
}

/// An error met inside a member, with the member's name in front.
fn in_member(name: &str, error: LabError) -> LabError {
    match error {
        LabError::Image { message, hint } => LabError::Image {
            message: format!("archive member {name}: {message}"),
            hint,
        },
        other => other,
    }
}

/// One image found in an archive, before it is added.
struct Found {
    config: Vec<u8>,
    manifest: Option<Digest>,
    layers: Vec<KeptLayer>,
    /// The manifest's descriptors when there is one (kept as they came).
    layer_blobs: Option<Vec<Descriptor>>,
    tags: Vec<Reference>,
}

/// An entry of a docker-archive's manifest.json.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerArchiveEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

pub(super) fn parse_tag(text: &str) -> Result<Reference, LabError> {
    Reference::parse(text).map_err(|e| {
        image_error(
            e,
            "a name is lowercase letters, digits, '.', '_', '-' and '/', then an optional :tag",
        )
    })
}

fn parse_config(bytes: &[u8], what: &str) -> Result<ImageConfig, LabError> {
    serde_json::from_slice(bytes).map_err(|e| {
        image_error(
            format!("{what} is not a valid image config: {e}"),
            KNOWN_FORMATS,
        )
    })
}

fn docker_archive_images(members: &mut Members) -> Result<Vec<Found>, LabError> {
    let entries: Vec<DockerArchiveEntry> =
        serde_json::from_slice(members.document("manifest.json")?).map_err(|e| {
            image_error(
                format!("manifest.json is not a docker-archive manifest: {e}"),
                KNOWN_FORMATS,
            )
        })?;
    let mut found = Vec::new();
    for entry in entries {
        let config = members.document(&entry.config)?.to_vec();
        let layers = entry
            .layers
            .iter()
            .map(|name| members.layer(name))
            .collect::<Result<Vec<_>, _>>()?;
        let tags = entry
            .repo_tags
            .unwrap_or_default()
            .iter()
            .map(|tag| parse_tag(tag))
            .collect::<Result<_, _>>()?;
        found.push(Found {
            config,
            manifest: None,
            layers,
            layer_blobs: None,
            tags,
        });
    }
    Ok(found)
}

/// The name an index gives a manifest: containerd's full name, else the
/// OCI ref.name when it is a full reference (the spec lets it be a bare
/// tag such as `v1`, which names no repository: such an image is loaded
/// untagged).
fn names_in(descriptor: &Descriptor) -> Result<Vec<Reference>, LabError> {
    if let Some(name) = descriptor.annotations.get(CONTAINERD_NAME) {
        return Ok(vec![parse_tag(name)?]);
    }
    match descriptor.annotations.get(REF_NAME) {
        Some(name) if name.contains(['/', ':', '@']) => Ok(vec![parse_tag(name)?]),
        _ => Ok(vec![]),
    }
}

/// The images an OCI index names, following nested indexes (an image for
/// several platforms: this machine's is taken).
fn oci_images(
    members: &mut Members,
    index: &Index,
    inherited: &[Reference],
    depth: u32,
    found: &mut Vec<Found>,
) -> Result<(), LabError> {
    if depth > 8 {
        return Err(image_error(
            "index.json nests indexes more than 8 deep",
            KNOWN_FORMATS,
        ));
    }
    let host = Platform::host();
    let with_platform = index.manifests.iter().any(|m| m.platform.is_some());
    let chosen: Vec<&Descriptor> = match with_platform {
        true => index.for_platform(&host).into_iter().collect(),
        false => index.manifests.iter().collect(),
    };
    if chosen.is_empty() && with_platform {
        return Err(image_error(
            format!(
                "the archive holds no image for {}/{}",
                host.os, host.architecture
            ),
            "save the image for this machine's platform",
        ));
    }
    for descriptor in chosen {
        let mut tags = names_in(descriptor)?;
        if tags.is_empty() {
            tags = inherited.to_vec();
        }
        let name = members.blob_member(descriptor)?;
        let bytes = members.document(&name)?.to_vec();
        match Document::parse(&bytes, Some(&descriptor.media_type))
            .map_err(|e| image_error(format!("{name}: {e}"), KNOWN_FORMATS))?
        {
            Document::Index(nested) => oci_images(members, &nested, &tags, depth + 1, found)?,
            Document::Manifest(manifest) => {
                found.push(oci_image(members, &manifest, &descriptor.digest, tags)?)
            }
        }
    }
    Ok(())
}

fn oci_image(
    members: &mut Members,
    manifest: &Manifest,
    digest: &Digest,
    tags: Vec<Reference>,
) -> Result<Found, LabError> {
    let config = members
        .document(&members.blob_member(&manifest.config)?)?
        .to_vec();
    let mut layers = Vec::new();
    for descriptor in &manifest.layers {
        let name = members.blob_member(descriptor)?;
        layers.push(members.layer(&name)?);
    }
    let manifest_bytes = members
        .document(&format!("blobs/sha256/{}", digest.hex()))?
        .to_vec();
    members.added.put_document(members.store, &manifest_bytes)?;
    Ok(Found {
        config,
        manifest: Some(digest.clone()),
        layers,
        layer_blobs: Some(manifest.layers.clone()),
        tags,
    })
}

/// Add one image whose layers are unpacked: its config stored, the
/// layers' diffIDs compared with the config's, the record written.
fn add_found(store: &ImageStore, found: Found, added: &mut Added) -> Result<ImageRecord, LabError> {
    let config = parse_config(&found.config, "the image's config")?;
    let id = added.put_document(store, &found.config)?;
    let unpacked: Vec<&Digest> = found.layers.iter().map(|l| &l.diff_id).collect();
    let named: Vec<&Digest> = config.rootfs.diff_ids.iter().collect();
    if unpacked != named {
        return Err(image_error(
            format!(
                "image {id}: its layers' tars hash to [{}], its config names [{}]",
                join_digests(&unpacked),
                join_digests(&named)
            ),
            "the image's config and its layers disagree: the archive was damaged or altered; nothing was loaded",
        ));
    }
    let layer_blobs = found
        .layer_blobs
        .unwrap_or_else(|| found.layers.iter().map(|l| l.blob.clone()).collect());
    let record = record_for(store, &id, found.manifest, layer_blobs, vec![])?;
    store.add_image(&record, &found.tags)?;
    Ok(record)
}

fn join_digests(digests: &[&Digest]) -> String {
    digests
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Read every member of a tar archive (compressed or not).
fn read_archive(members: &mut Members, path: &Path) -> Result<(), LabError> {
    let file = std::fs::File::open(path).map_err(|e| LabError::io("open", path.display(), e))?;
    let mut stream = super::store::decompress(file)?;
    let head =
        first_bytes(&mut stream, 512).map_err(|e| LabError::io("read", path.display(), e))?;
    if head.get(257..262) != Some(b"ustar") {
        return Err(image_error(
            format!("{} is not an archive of a known format", path.display()),
            KNOWN_FORMATS,
        ));
    }
    let mut archive = tar::Archive::new(std::io::Cursor::new(head).chain(stream));
    let damaged = |e: std::io::Error| {
        image_error(
            format!("archive {} is damaged: {e}", path.display()),
            "the file is truncated or not a tar archive; nothing was loaded",
        )
    };
    for entry in archive.entries().map_err(damaged)? {
        let entry = entry.map_err(damaged)?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let kind = entry.header().entry_type();
        match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous => members.add(&name, entry)?,
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| String::from_utf8_lossy(&t).into_owned())
                    .unwrap_or_default();
                members.alias(&name, &target, kind == tar::EntryType::Symlink);
            }
            _ => {}
        }
    }
    Ok(())
}

/// Read every file of an OCI layout directory, as the members of an
/// archive (symlinks are not followed). Any other directory is refused
/// before a file of it is read.
fn read_directory(members: &mut Members, root: &Path) -> Result<(), LabError> {
    if !["index.json", "manifest.json"]
        .iter()
        .any(|name| root.join(name).is_file())
    {
        return Err(not_known(root));
    }
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        let dir = root.join(&relative);
        let entries =
            std::fs::read_dir(&dir).map_err(|e| LabError::io("opendir", dir.display(), e))?;
        for entry in entries {
            let entry = entry.map_err(|e| LabError::io("readdir", dir.display(), e))?;
            let name = relative.join(entry.file_name());
            let kind = entry
                .file_type()
                .map_err(|e| LabError::io("stat", entry.path().display(), e))?;
            if kind.is_dir() {
                pending.push(name);
            } else if kind.is_file() {
                let path = entry.path();
                let file = std::fs::File::open(&path)
                    .map_err(|e| LabError::io("open", path.display(), e))?;
                members.add(&name.to_string_lossy(), file)?;
            }
        }
    }
    Ok(())
}

// ANCHOR: load
/// `load -i FILE`: every image of a docker-archive, an oci-archive or an
/// OCI layout directory.
pub fn load(store: &ImageStore, args: &LoadArgs) -> Result<i32, LabError> {
    let input = &args.input;
    let metadata = std::fs::metadata(input).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => image_error(
            format!("load {}: no such file or directory", input.display()),
            "give an archive made by docker save, podman save or skopeo copy (docker-archive, oci-archive) or an OCI layout directory",
        ),
        _ => LabError::io("stat", input.display(), e),
    })?;
    let _lock = store.lock()?;
    let mut members = Members::new(store, args.quiet);
    let mut loaded = Vec::new();
    let result = (|| {
        match metadata.is_dir() {
            true => read_directory(&mut members, input)?,
            false => read_archive(&mut members, input)?,
        }
        let found = if members.by_name.contains_key("manifest.json") {
            docker_archive_images(&mut members)?
        } else if members.by_name.contains_key("index.json") {
            let bytes = members.document("index.json")?.to_vec();
            let index: Index = serde_json::from_slice(&bytes).map_err(|e| {
                image_error(
                    format!("index.json is not an OCI index: {e}"),
                    KNOWN_FORMATS,
                )
            })?;
            let mut found = Vec::new();
            oci_images(&mut members, &index, &[], 0, &mut found)?;
            found
        } else {
            return Err(not_known(input));
        };
        for image in found {
            let tags: Vec<String> = image.tags.iter().filter_map(Reference::tagged).collect();
            let record = add_found(store, image, &mut members.added)?;
            match tags.is_empty() {
                true => println!("Loaded image ID: {}", record.id),
                false => tags.iter().for_each(|tag| println!("Loaded image: {tag}")),
            }
            loaded.push(record);
        }
        Ok(())
    })();
    // Layers and blobs that no loaded image names (all of them after a
    // failure) leave the store again.
    members.added.remove_unused(store, &loaded);
    result.map(|()| 0)
}
// ANCHOR_END: load

// ANCHOR: import
/// `import FILE|DIR [REPOSITORY[:TAG]]`: a one-layer image of a root
/// filesystem, with a config of our own.
pub fn import(store: &ImageStore, args: &ImportArgs) -> Result<i32, LabError> {
    let source = &args.source;
    let tags = args
        .reference
        .as_deref()
        .map(parse_tag)
        .transpose()?
        .into_iter()
        .collect::<Vec<_>>();
    let cmd = args.cmd.as_deref().map(split_words).transpose()?;
    let metadata = std::fs::metadata(source).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => image_error(
            format!("import {}: no such file or directory", source.display()),
            "give a tar file or a directory; `sudo lab rootfs DIR` builds a root filesystem to import",
        ),
        _ => LabError::io("stat", source.display(), e),
    })?;
    let _lock = store.lock()?;
    let mut added = Added::default();
    let mut kept = Vec::new();
    let result = (|| {
        let layer = match metadata.is_dir() {
            true => import_directory(store, source, &mut added)?,
            false => {
                let file = std::fs::File::open(source)
                    .map_err(|e| LabError::io("open", source.display(), e))?;
                unpack_and_keep(store, file, None, &mut added)?
            }
        };
        let created = crate::runtime::state::rfc3339(crate::runtime::state::now());
        let platform = Platform::host();
        let mut other = BTreeMap::new();
        if let Some(variant) = platform.variant {
            other.insert("variant".into(), variant.into());
        }
        let config = ImageConfig {
            created: Some(created.clone()),
            author: None,
            architecture: platform.architecture,
            os: platform.os,
            config: Some(RunConfig {
                env: Some(vec![DEFAULT_PATH.into()]),
                cmd,
                ..RunConfig::default()
            }),
            rootfs: RootFs {
                kind: "layers".into(),
                diff_ids: vec![layer.diff_id.clone()],
            },
            history: vec![History {
                created: Some(created),
                created_by: Some(format!("import {}", source.display())),
                comment: args.message.clone(),
                empty_layer: false,
            }],
            other,
        };
        let bytes = serde_json::to_vec(&config).expect("a config serialises");
        let id = added.put_document(store, &bytes)?;
        let record = record_for(store, &id, None, vec![layer.blob], vec![])?;
        store.add_image(&record, &tags)?;
        println!("{id}");
        kept.push(record);
        Ok(0)
    })();
    added.remove_unused(store, &kept);
    result
}
// ANCHOR_END: import

/// `--cmd '/bin/sh -c "echo hi"'` -> words, as sh(1) splits them: blanks
/// separate, single quotes keep everything, double quotes and backslashes
/// keep what they quote. No expansion of any kind.
pub fn split_words(text: &str) -> Result<Vec<String>, LabError> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = text.chars();
    let unterminated = || {
        image_error(
            format!("--cmd {text:?} has an unterminated quote or a trailing backslash"),
            "quote it as you would in sh",
        )
    };
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => words.extend(word.take()),
            '\'' => loop {
                let word = word.get_or_insert_default();
                match chars.next().ok_or_else(unterminated)? {
                    '\'' => break,
                    c => word.push(c),
                }
            },
            '"' => loop {
                let word = word.get_or_insert_default();
                match chars.next().ok_or_else(unterminated)? {
                    '"' => break,
                    '\\' => match chars.next().ok_or_else(unterminated)? {
                        c @ ('"' | '\\' | '$' | '`') => word.push(c),
                        c => {
                            word.push('\\');
                            word.push(c);
                        }
                    },
                    c => word.push(c),
                }
            },
            '\\' => word
                .get_or_insert_default()
                .push(chars.next().ok_or_else(unterminated)?),
            c => word.get_or_insert_default().push(c),
        }
    }
    words.extend(word);
    Ok(words)
}

// ANCHOR: import_directory
/// A directory as a layer: a thread writes it as a tar into a pipe, which
/// is unpacked (and kept as the blob) as it is read, as `tar -c | tar -x`.
fn import_directory(
    store: &ImageStore,
    dir: &Path,
    added: &mut Added,
) -> Result<KeptLayer, LabError> {
    let (reader, writer) = std::io::pipe().map_err(|e| LabError::io("pipe", "import", e))?;
    let root = dir.to_path_buf();
    let writing = std::thread::spawn(move || {
        let mut builder = tar::Builder::new(std::io::BufWriter::with_capacity(1 << 20, writer));
        write_tree(&mut builder, &root).and_then(|()| builder.into_inner()?.flush())
    });
    let unpacked = unpack_and_keep(store, reader, None, added);
    let written = writing.join().expect("the tar writer does not panic");
    // The writer's failure first: a tree that could not be read all the
    // way ends the tar early, which the unpacker may take as complete.
    match (written, unpacked) {
        (Err(error), _) => Err(image_error(
            format!("import {}: {error}", dir.display()),
            "every file of the directory must be readable by whoever imports it",
        )),
        (Ok(()), unpacked) => unpacked,
    }
}
// ANCHOR_END: import_directory

/// Every entry under `root`, sorted by name (the same tree gives the same
/// tar, so the same diffID), with its owner, mode and mtime; symlinks
/// stored, not followed; a file with several links stored once, then as
/// hard links to its first name; device nodes and FIFOs kept; sockets
/// left out, as GNU tar leaves them out.
fn write_tree<W: Write>(builder: &mut tar::Builder<W>, root: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut first_names: BTreeMap<(u64, u64), PathBuf> = BTreeMap::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        let dir = root.join(&relative);
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .and_then(|entries| entries.map(|e| e.map(|e| e.file_name())).collect())
            .map_err(|e| annotate(e, &dir))?;
        names.sort();
        // Reversed onto the stack, so that subdirectories come out in order.
        let mut subdirs = Vec::new();
        for name in names {
            let name = relative.join(name);
            let path = root.join(&name);
            let meta = std::fs::symlink_metadata(&path).map_err(|e| annotate(e, &path))?;
            let kind = meta.file_type();
            let mut header = tar::Header::new_gnu();
            header.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
            // The permission bits with setuid, setgid and sticky; the file
            // type is the header's typeflag.
            header.set_mode(meta.mode() & 0o7777);
            if kind.is_dir() {
                builder.append_data(&mut header, &name, std::io::empty())?;
                subdirs.push(name);
            } else if kind.is_symlink() {
                let target = std::fs::read_link(&path).map_err(|e| annotate(e, &path))?;
                builder.append_link(&mut header, &name, target)?;
            } else if kind.is_file()
                && meta.nlink() > 1
                && first_names.contains_key(&(meta.dev(), meta.ino()))
            {
                header.set_entry_type(tar::EntryType::Link);
                header.set_size(0);
                let first = &first_names[&(meta.dev(), meta.ino())];
                builder.append_link(&mut header, &name, first)?;
            } else if kind.is_file() {
                if meta.nlink() > 1 {
                    first_names.insert((meta.dev(), meta.ino()), name.clone());
                }
                let file = std::fs::File::open(&path).map_err(|e| annotate(e, &path))?;
                let exact = ExactSize {
                    inner: file.take(meta.len()),
                    left: meta.len(),
                    path: &path,
                };
                builder.append_data(&mut header, &name, exact)?;
            } else if kind.is_char_device() || kind.is_block_device() || kind.is_fifo() {
                let device = meta.rdev();
                header.set_device_major(nix::sys::stat::major(device) as u32)?;
                header.set_device_minor(nix::sys::stat::minor(device) as u32)?;
                header.set_size(0);
                builder.append_data(&mut header, &name, std::io::empty())?;
            }
        }
        pending.extend(subdirs.into_iter().rev());
    }
    builder.finish()
}

fn annotate(error: std::io::Error, path: &Path) -> std::io::Error {
    std::io::Error::new(error.kind(), format!("{}: {error}", path.display()))
}

/// A file's content, exactly as long as its header says: a file that
/// shrinks while it is read would otherwise shift every later entry.
pub(super) struct ExactSize<'a, R> {
    pub inner: R,
    pub left: u64,
    pub path: &'a Path,
}

impl<R: Read> Read for ExactSize<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && self.left > 0 && !buf.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("{} shrank while it was read", self.path.display()),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmd_is_split_into_words_as_sh_would() {
        assert_eq!(
            split_words(r#"/bin/sh -c "echo 'hi there'" a\ b ''"#).unwrap(),
            ["/bin/sh", "-c", "echo 'hi there'", "a b", ""]
        );
        assert_eq!(split_words("  ls   -l ").unwrap(), ["ls", "-l"]);
        assert!(split_words("echo 'oops").is_err());
    }

    #[test]
    fn member_names_promise_digests_only_where_the_formats_say_so() {
        let hex = "a".repeat(64);
        for name in [
            format!("blobs/sha256/{hex}"),
            format!("{hex}.json"),
            format!("{hex}.tar"),
        ] {
            assert_eq!(
                digest_in_name(&normalise(&format!("./{name}")))
                    .unwrap()
                    .hex(),
                hex
            );
        }
        assert!(digest_in_name(&format!("{hex}/layer.tar")).is_none());
        assert!(digest_in_name("manifest.json").is_none());
        assert!(digest_in_name("blobs/sha256/../../etc/passwd").is_none());
    }

    #[test]
    fn layers_are_told_from_documents_by_their_first_bytes() {
        let mut tar = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(2);
        tar.append_data(&mut header, "{a", &b"hi"[..]).unwrap();
        let tar = tar.into_inner().unwrap();
        assert!(
            looks_like_layer(&tar),
            "a tar whose first name starts with {{"
        );
        assert!(looks_like_layer(&[0; 1024]), "an empty tar");
        assert!(looks_like_layer(&[0x1f, 0x8b, 8, 0]));
        assert!(!looks_like_layer(br#"{"schemaVersion": 2}"#));
        assert!(!looks_like_layer(b"1.0"));
    }
}
