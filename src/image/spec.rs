//! The documents an image is made of, as the OCI image spec (and Docker's
//! schema 2, which it grew from) defines them: an index (or manifest list)
//! names one manifest per platform; a manifest names a config and the
//! layers; the config holds what to run and the layers' uncompressed
//! digests (diffIDs). Only the fields the lab reads are typed; the rest are
//! kept as they came, so a document written back is the one that was read.

use super::digest::Digest;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// A pointer to a blob: what it is, its digest, its size.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Descriptor {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// This machine, in Go's names (GOARCH), which images use.
    pub fn host() -> Platform {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            other => other,
        };
        let variant = (architecture == "arm64").then(|| "v8".to_string());
        Platform {
            architecture: architecture.into(),
            os: "linux".into(),
            variant,
        }
    }

    /// A platform an index offers that this machine runs: same OS and
    /// architecture; a variant, if the index names one, must match ours
    /// (arm64's v8 is also written without a variant).
    pub fn runs(&self, offered: &Platform) -> bool {
        self.os == offered.os
            && self.architecture == offered.architecture
            && (offered.variant.is_none() || offered.variant == self.variant)
    }
}

/// An OCI index or a Docker manifest list: one manifest per platform.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Index {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// An image manifest (OCI, or Docker schema 2): a config and layers.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// What a document is, from its mediaType field (or, when it has none, as
/// some OCI documents do, from its shape).
pub enum Document {
    Index(Index),
    Manifest(Manifest),
}

impl Document {
    pub fn parse(bytes: &[u8], media_type: Option<&str>) -> Result<Document, String> {
        #[derive(Deserialize)]
        struct Probe {
            #[serde(rename = "mediaType")]
            media_type: Option<String>,
            #[serde(rename = "schemaVersion")]
            schema_version: Option<u32>,
            manifests: Option<serde_json::Value>,
        }
        let probe: Probe =
            serde_json::from_slice(bytes).map_err(|e| format!("not a JSON document: {e}"))?;
        if probe.schema_version == Some(1) {
            return Err("a Docker schema 1 manifest (deprecated since 2017); the registry must serve schema 2 or OCI".into());
        }
        let kind = probe.media_type.or(media_type.map(str::to_string));
        let is_index = match kind.as_deref() {
            Some(OCI_INDEX | DOCKER_MANIFEST_LIST) => true,
            Some(OCI_MANIFEST | DOCKER_MANIFEST) => false,
            _ => probe.manifests.is_some(),
        };
        match is_index {
            true => serde_json::from_slice(bytes).map(Document::Index),
            false => serde_json::from_slice(bytes).map(Document::Manifest),
        }
        .map_err(|e| format!("not a valid image index or manifest: {e}"))
    }
}

impl Index {
    /// The manifest for this machine.
    pub fn for_platform(&self, platform: &Platform) -> Option<&Descriptor> {
        self.manifests.iter().find(|m| {
            m.platform
                .as_ref()
                .is_some_and(|offered| platform.runs(offered))
        })
    }
}

/// An image's config: how to run it, and its layers' diffIDs.
#[derive(Clone, Debug, Serialize, Deserialize, Default)]
pub struct ImageConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<RunConfig>,
    pub rootfs: RootFs,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// The part of an image's config that says how to run it. Names as in the
/// JSON (capitalised, as Docker's Go structs wrote them).
#[derive(Clone, Debug, Serialize, Deserialize, Default, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct RunConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

#[derive(Clone, Debug, Serialize, Deserialize, Default)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    pub diff_ids: Vec<Digest>,
}

#[derive(Clone, Debug, Serialize, Deserialize, Default)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

impl RunConfig {
    /// The command a container of this image runs: Entrypoint followed by
    /// Cmd, the user's COMMAND replacing Cmd (docker run's rule).
    pub fn command(&self, given: &[String]) -> Vec<String> {
        let mut words = self.entrypoint.clone().unwrap_or_default();
        match given.is_empty() {
            true => words.extend(self.cmd.clone().unwrap_or_default()),
            false => words.extend(given.iter().cloned()),
        }
        words
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_yields_this_machines_manifest() {
        let amd = "a".repeat(64);
        let arm = "b".repeat(64);
        let json = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST_LIST}","manifests":[
            {{"mediaType":"{DOCKER_MANIFEST}","digest":"sha256:{arm}","size":1,"platform":{{"architecture":"arm64","os":"linux","variant":"v8"}}}},
            {{"mediaType":"{DOCKER_MANIFEST}","digest":"sha256:{amd}","size":2,"platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#
        );
        let Ok(Document::Index(index)) = Document::parse(json.as_bytes(), None) else {
            panic!("not an index")
        };
        let amd64 = Platform {
            architecture: "amd64".into(),
            os: "linux".into(),
            variant: None,
        };
        assert_eq!(index.for_platform(&amd64).unwrap().digest.hex(), amd);
        let arm64 = Platform {
            architecture: "arm64".into(),
            os: "linux".into(),
            variant: Some("v8".into()),
        };
        assert_eq!(index.for_platform(&arm64).unwrap().digest.hex(), arm);
        let s390 = Platform {
            architecture: "s390x".into(),
            os: "linux".into(),
            variant: None,
        };
        assert!(index.for_platform(&s390).is_none());
    }

    #[test]
    fn a_manifest_without_media_type_is_known_by_its_shape_and_round_trips() {
        let c = "c".repeat(64);
        let l = "d".repeat(64);
        let json = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"{OCI_CONFIG}","digest":"sha256:{c}","size":3}},"layers":[{{"mediaType":"{OCI_LAYER_GZIP}","digest":"sha256:{l}","size":4}}],"annotations":{{"x":"y"}}}}"#
        );
        let Ok(Document::Manifest(manifest)) = Document::parse(json.as_bytes(), None) else {
            panic!("not a manifest")
        };
        assert_eq!(manifest.layers[0].digest.hex(), l);
        let back = serde_json::to_value(&manifest).unwrap();
        assert_eq!(
            back,
            serde_json::from_str::<serde_json::Value>(&json).unwrap()
        );
    }

    #[test]
    fn schema_1_is_refused_by_name() {
        let error = Document::parse(br#"{"schemaVersion":1,"name":"x"}"#, None)
            .err()
            .unwrap();
        assert!(error.contains("schema 1"), "{error}");
    }

    #[test]
    fn the_command_is_entrypoint_then_cmd_or_what_the_user_gave() {
        let config = RunConfig {
            entrypoint: Some(vec!["/bin/echo".into(), "hi".into()]),
            cmd: Some(vec!["there".into()]),
            ..RunConfig::default()
        };
        assert_eq!(config.command(&[]), ["/bin/echo", "hi", "there"]);
        assert_eq!(config.command(&["you".into()]), ["/bin/echo", "hi", "you"]);
        let plain = RunConfig {
            cmd: Some(vec!["/bin/sh".into()]),
            ..RunConfig::default()
        };
        assert_eq!(plain.command(&["ls".into()]), ["ls"]);
    }
}
