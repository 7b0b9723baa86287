//! An image of the store as blobs again, for `save` and `push`: its
//! config, one blob per layer, and a manifest that names them.
//!
//! The store keeps each layer unpacked (under its diffID) and, beside it,
//! the blob it came as. That blob is what goes out: its digest is known
//! and was checked when it came in, so nothing is compressed again, and an
//! image pulled, then saved or pushed, keeps the manifest (and so the
//! digest) it had. A layer pulled as "Already exists" has no blob of its
//! own: another image's blob of the same diffID stands in for it.

use super::digest::Digest;
use super::spec::{self, Descriptor, Document, Manifest};
use super::store::{ImageRecord, ImageStore};
use crate::error::LabError;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;

fn image_error(message: String, hint: &str) -> LabError {
    LabError::Image {
        message,
        hint: hint.into(),
    }
}

/// One layer as a blob of the store.
#[derive(Clone, Debug)]
pub struct LayerBlob {
    /// Its OCI media type (from its first bytes), digest and size.
    pub descriptor: Descriptor,
    pub path: PathBuf,
    /// The digest of its tar, uncompressed.
    pub diff_id: Digest,
}

/// An image as the blobs a registry or an archive holds.
pub struct Exported {
    pub record: ImageRecord,
    pub config: Descriptor,
    pub config_path: PathBuf,
    pub layers: Vec<LayerBlob>,
    /// The manifest's bytes (written here, or the one the image came
    /// with), its digest and media type.
    pub manifest: Vec<u8>,
    pub manifest_digest: Digest,
    pub manifest_type: String,
}

/// How a layer blob is compressed, from its first bytes (gzip: 1f 8b,
/// zstd: 28 b5 2f fd, as `store::decompress` tells them apart), as the OCI
/// image spec's media type (image-spec, media-types.md).
pub fn oci_layer_type(head: &[u8]) -> &'static str {
    match head {
        [0x1f, 0x8b, ..] => spec::OCI_LAYER_GZIP,
        [0x28, 0xb5, 0x2f, 0xfd, ..] => spec::OCI_LAYER_ZSTD,
        _ => spec::OCI_LAYER,
    }
}

/// The blob `digest` of the store, described: None if the store lacks it.
fn describe(store: &ImageStore, digest: &Digest) -> Result<Option<Descriptor>, LabError> {
    let path = store.blob_path(digest);
    let mut file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(LabError::io("open", path.display(), e)),
    };
    let size = file
        .metadata()
        .map_err(|e| LabError::io("stat", path.display(), e))?
        .len();
    let mut head = Vec::new();
    (&mut file)
        .take(4)
        .read_to_end(&mut head)
        .map_err(|e| LabError::io("read", path.display(), e))?;
    Ok(Some(Descriptor {
        media_type: oci_layer_type(&head).into(),
        digest: digest.clone(),
        size,
        platform: None,
        annotations: BTreeMap::new(),
    }))
}

// ANCHOR: layer_blob
/// Layer `index` of `record` as a blob, the first the store has of: the
/// blob the image came with; the layer's tar itself (named by its diffID,
/// as import keeps it); the blob another image keeps for the same diffID
/// (a pull that found the layer "Already exists" downloaded no blob).
pub fn layer_blob(
    store: &ImageStore,
    record: &ImageRecord,
    index: usize,
    others: &[ImageRecord],
) -> Result<LayerBlob, LabError> {
    let diff_id = &record.layers[index];
    let own = record.layer_blobs.get(index).map(|d| d.digest.clone());
    let shared = others.iter().flat_map(|other| {
        other
            .layers
            .iter()
            .zip(&other.layer_blobs)
            .filter(|(layer, _)| *layer == diff_id)
            .map(|(_, blob)| blob.digest.clone())
    });
    for candidate in own
        .into_iter()
        .chain(std::iter::once(diff_id.clone()))
        .chain(shared)
    {
        if let Some(descriptor) = describe(store, &candidate)? {
            return Ok(LayerBlob {
                path: store.blob_path(&candidate),
                descriptor,
                diff_id: diff_id.clone(),
            });
        }
    }
    Err(image_error(
        format!(
            "layer {diff_id} (layer {} of image {}) has no blob in the store: neither its own, nor its tar, nor another image's",
            index + 1,
            record.id.short()
        ),
        "pull or load the image again, so that its layer blobs are kept",
    ))
}
// ANCHOR_END: layer_blob

/// The manifest the image came with, if it still names exactly these
/// blobs: kept as it is, so a pulled image keeps its digest.
fn stored_manifest(
    store: &ImageStore,
    record: &ImageRecord,
    layers: &[LayerBlob],
) -> Option<(Vec<u8>, String)> {
    let digest = record.manifest.as_ref()?;
    let bytes = store.read_blob(digest).ok()?;
    let Ok(Document::Manifest(manifest)) = Document::parse(&bytes, None) else {
        return None;
    };
    let same_layers = manifest.layers.len() == layers.len()
        && manifest
            .layers
            .iter()
            .zip(layers)
            .all(|(named, kept)| named.digest == kept.descriptor.digest);
    let media_type = manifest
        .media_type
        .clone()
        .unwrap_or_else(|| spec::OCI_MANIFEST.into());
    (same_layers && manifest.config.digest == record.id).then_some((bytes, media_type))
}

// ANCHOR: oci_manifest
/// An OCI image manifest (image-spec, manifest.md) of a config and layer
/// blobs: schemaVersion 2, the config, the layers bottom first.
pub fn oci_manifest(config: &Descriptor, layers: &[LayerBlob]) -> Vec<u8> {
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(spec::OCI_MANIFEST.into()),
        config: config.clone(),
        layers: layers.iter().map(|l| l.descriptor.clone()).collect(),
        other: BTreeMap::new(),
    };
    serde_json::to_vec(&manifest).expect("a manifest serialises")
}
// ANCHOR_END: oci_manifest

/// The image as blobs: its layers (see [`layer_blob`]), its config, and
/// the manifest it came with, or one written for it.
pub fn export(store: &ImageStore, record: &ImageRecord) -> Result<Exported, LabError> {
    let others = store.images();
    let layers = (0..record.layers.len())
        .map(|index| layer_blob(store, record, index, &others))
        .collect::<Result<Vec<_>, _>>()?;
    let config_size = std::fs::metadata(store.blob_path(&record.id))
        .map_err(|e| LabError::io("stat", store.blob_path(&record.id).display(), e))?
        .len();
    let (manifest, manifest_type, config) = match stored_manifest(store, record, &layers) {
        Some((bytes, media_type)) => {
            let Ok(Document::Manifest(parsed)) = Document::parse(&bytes, None) else {
                unreachable!("stored_manifest parsed it")
            };
            (bytes, media_type, parsed.config)
        }
        None => {
            let config = Descriptor {
                media_type: spec::OCI_CONFIG.into(),
                digest: record.id.clone(),
                size: config_size,
                platform: None,
                annotations: BTreeMap::new(),
            };
            (
                oci_manifest(&config, &layers),
                spec::OCI_MANIFEST.into(),
                config,
            )
        }
    };
    Ok(Exported {
        record: record.clone(),
        manifest_digest: Digest::of(&manifest),
        manifest,
        manifest_type,
        config,
        config_path: store.blob_path(&record.id),
        layers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_store(name: &str) -> (PathBuf, ImageStore) {
        let dir = std::env::temp_dir().join(format!(
            "container-lab-export-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let store = ImageStore::at(&dir).unwrap();
        (dir, store)
    }

    fn record(layers: Vec<Digest>, layer_blobs: Vec<Descriptor>) -> ImageRecord {
        ImageRecord {
            id: Digest::of(b"config"),
            layers,
            manifest: None,
            layer_blobs,
            repo_digests: vec![],
            size: 0,
            added: 0,
        }
    }

    fn gzip_descriptor(digest: &Digest) -> Descriptor {
        Descriptor {
            media_type: spec::DOCKER_LAYER_GZIP.into(),
            digest: digest.clone(),
            size: 0,
            platform: None,
            annotations: BTreeMap::new(),
        }
    }

    #[test]
    fn a_layer_blob_is_its_own_then_its_tar_then_another_images() {
        let (dir, store) = temp_store("sources");
        let tar = vec![0u8; 1024];
        let diff_id = store.put_blob_bytes(&tar, None).unwrap();
        let gz = store
            .put_blob_bytes(&[0x1f, 0x8b, 8, 0, 1, 2], None)
            .unwrap();
        // Its own blob, gzip, typed by its bytes, not by the record.
        let own = record(vec![diff_id.clone()], vec![gzip_descriptor(&gz)]);
        let found = layer_blob(&store, &own, 0, &[]).unwrap();
        assert_eq!(found.descriptor.digest, gz);
        assert_eq!(found.descriptor.media_type, spec::OCI_LAYER_GZIP);
        assert_eq!(found.descriptor.size, 6);
        // Its blob is missing: the tar, named by the diffID.
        let missing = Digest::of(b"pulled as Already exists");
        let lacking = record(vec![diff_id.clone()], vec![gzip_descriptor(&missing)]);
        let found = layer_blob(&store, &lacking, 0, &[]).unwrap();
        assert_eq!(found.descriptor.digest, diff_id);
        assert_eq!(found.descriptor.media_type, spec::OCI_LAYER);
        // Neither: another image's blob of the same diffID.
        let other_diff = Digest::of(b"another tar");
        let lacking = record(vec![other_diff.clone()], vec![gzip_descriptor(&missing)]);
        let error = layer_blob(&store, &lacking, 0, &[])
            .unwrap_err()
            .to_string();
        assert!(error.contains(&other_diff.to_string()), "{error}");
        let sharer = record(vec![other_diff.clone()], vec![gzip_descriptor(&gz)]);
        let found = layer_blob(&store, &lacking, 0, &[sharer]).unwrap();
        assert_eq!(found.descriptor.digest, gz);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_written_manifest_is_oci_and_names_the_config_and_layers_in_order() {
        let config = Descriptor {
            media_type: spec::OCI_CONFIG.into(),
            digest: Digest::of(b"c"),
            size: 1,
            platform: None,
            annotations: BTreeMap::new(),
        };
        let layer = |bytes: &[u8], media_type: &str| LayerBlob {
            descriptor: Descriptor {
                media_type: media_type.into(),
                digest: Digest::of(bytes),
                size: bytes.len() as u64,
                platform: None,
                annotations: BTreeMap::new(),
            },
            path: PathBuf::new(),
            diff_id: Digest::of(bytes),
        };
        let layers = [
            layer(b"bottom", spec::OCI_LAYER),
            layer(b"top", spec::OCI_LAYER_GZIP),
        ];
        let bytes = oci_manifest(&config, &layers);
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(value["schemaVersion"], 2);
        assert_eq!(value["mediaType"], spec::OCI_MANIFEST);
        assert_eq!(value["config"]["digest"], Digest::of(b"c").to_string());
        assert_eq!(
            value["layers"][0]["digest"],
            Digest::of(b"bottom").to_string()
        );
        assert_eq!(value["layers"][1]["mediaType"], spec::OCI_LAYER_GZIP);
        assert_eq!(value["layers"][1]["size"], 3);
        assert!(matches!(
            Document::parse(&bytes, None),
            Ok(Document::Manifest(_))
        ));
    }
}
