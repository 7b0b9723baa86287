//! pull: the OCI distribution API (v2), as Docker Hub and distribution
//! serve it.
//!
//! A pull is a handful of GETs (OCI distribution-spec, "Pull"):
//!
//! 1. `GET /v2/<name>/manifests/<tag or digest>`, whose Accept header names
//!    the formats we read. An index (Docker: manifest list) names one
//!    manifest per platform; the host's is fetched next, by its digest.
//! 2. `GET /v2/<name>/blobs/<digest>` of the config, which names each
//!    layer's diffID (the digest of its uncompressed tar).
//! 3. `GET /v2/<name>/blobs/<digest>` of each layer the store lacks, three
//!    at a time (dockerd's default `max-concurrent-downloads`); each body
//!    is stored and unpacked in the same single pass over its bytes.
//!
//! A 401 whose `WWW-Authenticate` says `Bearer realm=..,service=..,scope=..`
//! sends us to that token server for an anonymous token (Docker's "token
//! authentication specification"), and the request is made again with it.
//! Every byte is checked against a digest before it gets a name: the
//! manifest against the digest asked for (or the registry's
//! `Docker-Content-Digest`), the config and each layer blob against their
//! descriptors, each layer's tar against the config's diffID.

use super::digest::Digest;
use super::layer::ApplyOptions;
use super::reference::Reference;
use super::spec::{self, Descriptor, Document, Manifest, Platform};
use super::store::{ImageStore, UnpackedLayer};
use super::verbs::PullArgs;
use crate::error::{LabError, describe_errno, errno_of};
use colored::Colorize;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::io::{IsTerminal, Read, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// What a manifest request accepts, most specific first: the registry
/// answers with the index when there is one, so the platform is ours to
/// choose.
const MANIFEST_TYPES: [&str; 4] = [
    spec::OCI_INDEX,
    spec::DOCKER_MANIFEST_LIST,
    spec::OCI_MANIFEST,
    spec::DOCKER_MANIFEST,
];

/// dockerd's default `max-concurrent-downloads`.
const PARALLEL_DOWNLOADS: usize = 3;

/// distribution-spec: registries should accept manifests of up to 4 MiB;
/// a larger answer is not a manifest.
const MANIFEST_LIMIT: u64 = 4 << 20;
/// The largest config pull accepts (Docker Hub's are a few KiB).
const CONFIG_LIMIT: u64 = 4 << 20;

fn image_error(message: String, hint: impl Into<String>) -> LabError {
    LabError::Image {
        message,
        hint: hint.into(),
    }
}

// ANCHOR: pull
pub fn pull(store: &ImageStore, args: &PullArgs) -> Result<i32, LabError> {
    let reference = Reference::parse(&args.reference).map_err(|message| {
        image_error(
            message,
            "write NAME[:TAG], NAME@sha256:DIGEST or HOST[:PORT]/PATH[:TAG]",
        )
    })?;
    colored::control::set_override(
        std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    );
    let registry = Registry::new(&reference, args.tls_verify, args.explain);
    let progress = Progress::new(args.quiet);
    let resolved = registry.resolve()?;
    // After the manifest, as docker says it: a tag that does not exist
    // gets only the error.
    progress.say(&format!(
        "{}: Pulling from {}",
        reference.manifest_reference(),
        reference.repository
    ));
    if !store.has_blob(&resolved.digest) {
        store.put_blob_bytes(&resolved.bytes, Some(&resolved.digest))?;
    }
    let manifest = &resolved.manifest;
    let diff_ids = registry.config(store, &manifest.config)?;
    if diff_ids.len() != manifest.layers.len() {
        return Err(image_error(
            format!(
                "image {reference}: its manifest names {} layers and its config {} diffIDs",
                manifest.layers.len(),
                diff_ids.len()
            ),
            "the image is malformed; ask whoever pushed it",
        ));
    }
    registry.layers(store, &manifest.layers, &diff_ids, &progress)?;

    let up_to_date = add_pulled(store, &reference, &resolved)?;
    let name = match (&reference.digest, reference.tagged()) {
        (None, Some(tagged)) => tagged,
        _ => format!("{}@{}", reference.familiar_name(), resolved.top_digest),
    };
    progress.say(&format!("Digest: {}", resolved.top_digest));
    progress.say(&match up_to_date {
        true => format!("Status: Image is up to date for {name}"),
        false => format!("Status: Downloaded newer image for {name}"),
    });
    progress.say(&reference.to_string());
    if args.quiet {
        print_line(&manifest.config.digest.to_string());
    }
    Ok(0)
}
// ANCHOR_END: pull

/// Record the pulled image and tag it, unless the store has it under this
/// tag and repo digest already (then it is up to date: true). The lock is
/// taken only here: the downloads of two pulls overlap, and the first
/// rename of each layer wins.
fn add_pulled(
    store: &ImageStore,
    reference: &Reference,
    resolved: &Resolved,
) -> Result<bool, LabError> {
    let id = &resolved.manifest.config.digest;
    let repo_digest = format!("{}@{}", reference.familiar_name(), resolved.top_digest);
    // A reference with a digest pins content and names no tag (Docker
    // makes no tag for `pull name@sha256:...`).
    let tags = match reference.digest {
        Some(_) => vec![],
        None => vec![reference.clone()],
    };
    let _lock = store.lock()?;
    let previous = store.image(id);
    let tag_in_place = tags
        .iter()
        .filter_map(Reference::tagged)
        .all(|tag| store.tags().get(&tag) == Some(id));
    let known = previous
        .as_ref()
        .is_some_and(|image| image.repo_digests.contains(&repo_digest));
    if tag_in_place && known {
        return Ok(true);
    }
    let mut repo_digests = previous.map(|image| image.repo_digests).unwrap_or_default();
    if !repo_digests.contains(&repo_digest) {
        repo_digests.push(repo_digest);
    }
    let record = super::verbs::record_for(
        store,
        id,
        Some(resolved.digest.clone()),
        resolved.manifest.layers.clone(),
        repo_digests,
    )?;
    store.add_image(&record, &tags)?;
    Ok(false)
}

/// `http://` only for a registry on a loopback address (as dockerd treats
/// 127.0.0.0/8 as an insecure registry by default) or when the user turned
/// TLS verification off; `https://` otherwise.
pub fn api_base(reference: &Reference, tls_verify: bool) -> String {
    let scheme = match reference.is_loopback() || !tls_verify {
        true => "http",
        false => "https",
    };
    format!(
        "{scheme}://{}/v2/{}",
        reference.api_host(),
        reference.repository
    )
}

/// A URL's origin (RFC 6454 section 4): its scheme, host and port, the
/// scheme's default port when none is written. None for what is not an
/// absolute http or https URL.
pub(crate) fn origin(url: &str) -> Option<(String, String, u16)> {
    let uri: ureq::http::Uri = url.parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let host = uri.host().filter(|host| !host.is_empty())?;
    Some((
        scheme,
        host.to_ascii_lowercase(),
        uri.port_u16().unwrap_or(default_port),
    ))
}

/// Both URLs are of one origin (and are URLs).
pub(crate) fn same_origin(url: &str, other: &str) -> bool {
    origin(url).is_some_and(|one| origin(other) == Some(one))
}

/// A `WWW-Authenticate: Bearer ...` challenge (RFC 6750 section 3; Docker's
/// token authentication specification names the three parameters).
#[derive(Debug, PartialEq)]
pub struct BearerChallenge {
    pub realm: String,
    pub service: Option<String>,
    pub scope: Option<String>,
}

/// Parse `Bearer realm="https://auth.docker.io/token",service="...",scope="..."`.
/// Values may be quoted strings (with `\` escapes, and commas inside, as a
/// scope of two repositories has) or bare tokens (RFC 9110 section 11.2).
/// Another scheme (Basic) or no realm: None.
pub fn parse_bearer_challenge(header: &str) -> Option<BearerChallenge> {
    let header = header.trim_start();
    let (scheme, mut rest) = header.split_once(' ').unwrap_or((header, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut params = std::collections::BTreeMap::new();
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key.trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (value, remaining) = match after.strip_prefix('"') {
            Some(quoted) => {
                let mut value = String::new();
                let mut chars = quoted.char_indices();
                let mut end = quoted.len();
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => value.extend(chars.next().map(|(_, escaped)| escaped)),
                        '"' => {
                            end = i + 1;
                            break;
                        }
                        c => value.push(c),
                    }
                }
                (value, &quoted[end..])
            }
            None => {
                let end = after.find(',').unwrap_or(after.len());
                (after[..end].trim().to_string(), &after[end..])
            }
        };
        params.insert(key, value);
        rest = remaining;
    }
    Some(BearerChallenge {
        realm: params.remove("realm")?,
        service: params.remove("service"),
        scope: params.remove("scope"),
    })
}

/// The token server's URL for a challenge: its realm, with service and
/// scope as query parameters. A pull asks for the scope the challenge
/// names, or, when it names none (some registries send none for a first
/// request), `pull` on the repository. A push asks for `pull,push` from
/// the start, as docker does: its first 401 answers a HEAD, whose
/// challenge names `pull` alone, and a pull token would be refused at the
/// first upload.
pub fn token_url(challenge: &BearerChallenge, repository: &str, actions: &str) -> String {
    let own_scope = format!("repository:{repository}:{actions}");
    let scope = match (actions, challenge.scope.as_deref()) {
        ("pull", Some(named)) => named,
        _ => &own_scope,
    };
    let mut url = challenge.realm.clone();
    let mut separator = match url.contains('?') {
        true => '&',
        false => '?',
    };
    for (key, value) in [
        ("service", challenge.service.as_deref()),
        ("scope", Some(scope)),
    ] {
        if let Some(value) = value {
            url.push(separator);
            url.push_str(key);
            url.push('=');
            url.push_str(&percent_encode(value));
            separator = '&';
        }
    }
    url
}

/// RFC 3986 section 2: everything but the unreserved characters is
/// written as %XX.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// A registry's error body (distribution-spec, "Error Codes"):
/// `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}`,
/// as `MANIFEST_UNKNOWN: manifest unknown`. Anything else: None.
pub fn error_codes(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorCode>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorCode {
        code: String,
        #[serde(default)]
        message: String,
    }
    let parsed: Errors = serde_json::from_slice(body).ok()?;
    let codes: Vec<String> = parsed
        .errors
        .iter()
        .map(|error| match error.message.is_empty() {
            true => error.code.clone(),
            false => format!("{}: {}", error.code, error.message),
        })
        .collect();
    (!codes.is_empty()).then(|| codes.join("; "))
}

/// `linux/amd64`, `linux/arm64/v8`.
pub fn platform_name(platform: &Platform) -> String {
    let mut name = format!("{}/{}", platform.os, platform.architecture);
    if let Some(variant) = &platform.variant {
        name.push('/');
        name.push_str(variant);
    }
    name
}

/// What is asked of the registry, for `--explain` and for errors: pull's
/// GETs, and push's requests (push.rs).
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Asked {
    Manifest,
    Token,
    Config,
    Layer,
    /// HEAD of a blob: does the registry have it already?
    BlobExists,
    /// POST: open an upload session.
    StartUpload,
    /// PATCH: one chunk of an upload.
    UploadChunk,
    /// PUT `?digest=`: close the upload, the blob named by its digest.
    FinishUpload,
    /// PUT of the manifest, under a tag.
    PutManifest,
}

impl Asked {
    /// The HTTP method of each request (distribution-spec, "Endpoints").
    fn method(self) -> &'static str {
        match self {
            Asked::Manifest | Asked::Token | Asked::Config | Asked::Layer => "GET",
            Asked::BlobExists => "HEAD",
            Asked::StartUpload => "POST",
            Asked::UploadChunk => "PATCH",
            Asked::FinishUpload | Asked::PutManifest => "PUT",
        }
    }

    /// One line on why, for `--explain`.
    fn why(self) -> &'static str {
        match self {
            Asked::Manifest => {
                "a tag or digest's manifest, in a format Accept names (distribution-spec: pulling manifests)"
            }
            Asked::Token => {
                "an anonymous token for the scope the 401 named (Docker's token authentication spec)"
            }
            Asked::Config => {
                "the image's config: how to run it, and each layer's diffID (image-spec: config.md)"
            }
            Asked::Layer => {
                "a layer, stored and unpacked as it streams, both digests checked (distribution-spec: pulling blobs)"
            }
            Asked::BlobExists => {
                "does the registry have this blob already? 200: skip it, 404: upload it (distribution-spec: checking if content exists)"
            }
            Asked::StartUpload => {
                "open an upload session; the answer's Location is where the bytes go (distribution-spec: pushing blobs)"
            }
            Asked::UploadChunk => {
                "one chunk of the blob, at the offset Content-Range names (distribution-spec: pushing a blob in chunks)"
            }
            Asked::FinishUpload => {
                "close the upload: the registry hashes what it got and keeps it only if it is this digest (distribution-spec: pushing blobs)"
            }
            Asked::PutManifest => {
                "the manifest, last: the tag appears only once every blob it names is there (distribution-spec: pushing manifests)"
            }
        }
    }
}

/// The body of a request: none, bytes (a manifest), or a part of a file
/// (a blob, or one chunk of it), read from disk as it is sent. Each can be
/// sent again after a 401, which a streamed body could not.
pub(crate) enum Payload<'a> {
    Empty,
    Bytes {
        bytes: &'a [u8],
        content_type: &'a str,
    },
    File {
        path: &'a std::path::Path,
        offset: u64,
        len: u64,
    },
}

impl Payload<'_> {
    fn len(&self) -> u64 {
        match self {
            Payload::Empty => 0,
            Payload::Bytes { bytes, .. } => bytes.len() as u64,
            Payload::File { len, .. } => *len,
        }
    }
}

/// What `resolve` found: the manifest for this machine.
struct Resolved {
    /// The digest of what the reference named: the index, if it was one.
    /// This is the digest `docker pull` prints and RepoDigests record.
    top_digest: Digest,
    /// The manifest's own digest, and its bytes.
    digest: Digest,
    bytes: Vec<u8>,
    manifest: Manifest,
}

/// One registry's repository, and the token its server gave us.
pub(crate) struct Registry {
    agent: ureq::Agent,
    /// `http://127.0.0.1:5000/v2/lab/base`
    pub(crate) base: String,
    pub(crate) reference: Reference,
    token: Mutex<Option<String>>,
    explain: bool,
    /// What a token is asked for when a challenge names no scope: `pull`,
    /// or `pull,push` for a push.
    actions: &'static str,
}

impl Registry {
    pub(crate) fn new(reference: &Reference, tls_verify: bool, explain: bool) -> Registry {
        let agent = ureq::Agent::config_builder()
            // Statuses are answers to act on (401, 404), not errors.
            .http_status_as_error(false)
            // Blobs are digested as they came: no Content-Encoding may
            // change their bytes on the way.
            .accept_encoding("identity")
            .timeout_connect(Some(Duration::from_secs(30)))
            // A registry that accepts the connection and never answers
            // must not stall a pull for ever (a slow body is still fine).
            .timeout_recv_response(Some(Duration::from_secs(60)))
            .user_agent(concat!("container-lab/", env!("CARGO_PKG_VERSION")))
            // Redirects are followed (a registry may send a blob's GET or
            // HEAD to its storage, another host), never with our token:
            // `Never` drops Authorization on every redirect (`SameHost`
            // would keep it for another port of the same host). ureq
            // follows a 3xx only without a body: a POST, PUT or PATCH
            // answered 307 or 308 is not sent again, and 301, 302 or 303
            // turn it into a GET, so no layer follows a redirect.
            .redirect_auth_headers(ureq::config::RedirectAuthHeaders::Never)
            .build()
            .new_agent();
        Registry {
            agent,
            base: api_base(reference, tls_verify),
            reference: reference.clone(),
            token: Mutex::new(None),
            explain,
            actions: "pull",
        }
    }

    /// The same, for a push: tokens are asked for `pull,push`.
    pub(crate) fn for_push(reference: &Reference, tls_verify: bool, explain: bool) -> Registry {
        Registry {
            actions: "pull,push",
            ..Registry::new(reference, tls_verify, explain)
        }
    }

    /// The manifest for this machine: the one the reference names, or, if
    /// that is an index, the one it lists for `Platform::host()`.
    fn resolve(&self) -> Result<Resolved, LabError> {
        let reference = &self.reference;
        let asked = reference.manifest_reference();
        let (bytes, top_digest, media_type) = self.manifest(&asked, reference.digest.as_ref())?;
        let index = match self.parse(&bytes, media_type.as_deref())? {
            Document::Manifest(manifest) => {
                return Ok(Resolved {
                    digest: top_digest.clone(),
                    top_digest,
                    bytes,
                    manifest,
                });
            }
            Document::Index(index) => index,
        };
        let host = Platform::host();
        let Some(chosen) = index.for_platform(&host) else {
            let offered: Vec<String> = index
                .manifests
                .iter()
                .filter_map(|m| m.platform.as_ref().map(platform_name))
                .collect();
            return Err(image_error(
                format!(
                    "no manifest for {} in {reference}: it offers {}",
                    platform_name(&host),
                    match offered.is_empty() {
                        true => "no platform at all".to_string(),
                        false => offered.join(", "),
                    }
                ),
                "pull an image built for this machine, or run on one of those platforms",
            ));
        };
        let (bytes, digest, media_type) =
            self.manifest(&chosen.digest.to_string(), Some(&chosen.digest))?;
        match self.parse(&bytes, media_type.as_deref())? {
            Document::Manifest(manifest) => Ok(Resolved {
                top_digest,
                digest,
                bytes,
                manifest,
            }),
            Document::Index(_) => Err(image_error(
                format!("{reference}: the index names another index for this platform"),
                "nested indexes are not supported; pull the inner index by its digest",
            )),
        }
    }

    fn parse(&self, bytes: &[u8], media_type: Option<&str>) -> Result<Document, LabError> {
        Document::parse(bytes, media_type).map_err(|why| {
            image_error(
                format!("manifest of {}: {why}", self.reference),
                "the registry served something that is not an image",
            )
        })
    }

    /// One manifest's bytes, its digest (checked against the one asked for
    /// and the one the registry claims), and its Content-Type.
    fn manifest(
        &self,
        asked: &str,
        expected: Option<&Digest>,
    ) -> Result<(Vec<u8>, Digest, Option<String>), LabError> {
        let url = format!("{}/manifests/{asked}", self.base);
        let mut transcript = Vec::new();
        let response = self.get(&url, Asked::Manifest, &mut transcript);
        self.show(&transcript);
        let mut response = response?;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_string)
        };
        let media_type = header("content-type");
        let claimed = header("docker-content-digest").and_then(|text| Digest::parse(&text).ok());
        let bytes = response
            .body_mut()
            .with_config()
            .limit(MANIFEST_LIMIT)
            .read_to_vec()
            .map_err(|error| self.unreachable("GET", &url, error))?;
        let digest = Digest::of(&bytes);
        for claim in [expected, claimed.as_ref()].into_iter().flatten() {
            if *claim != digest {
                return Err(image_error(
                    format!(
                        "manifest {claim} of {} does not match its content: its bytes hash to {digest}",
                        self.reference
                    ),
                    "the registry sent damaged or altered data; nothing was stored",
                ));
            }
        }
        Ok((bytes, digest, media_type))
    }

    /// The config blob, fetched unless the store has it; its diffIDs.
    fn config(&self, store: &ImageStore, config: &Descriptor) -> Result<Vec<Digest>, LabError> {
        if ![spec::OCI_CONFIG, spec::DOCKER_CONFIG].contains(&config.media_type.as_str()) {
            return Err(image_error(
                format!(
                    "{} is not a container image: its config is {}",
                    self.reference, config.media_type
                ),
                "pull an image (an artifact such as a Helm chart cannot be run)",
            ));
        }
        // A config is a few KiB of JSON, read whole into memory: one the
        // manifest says is larger is refused before it is downloaded.
        if config.size > CONFIG_LIMIT {
            return Err(image_error(
                format!(
                    "{}: its config is {} bytes, more than the {CONFIG_LIMIT} an image config needs",
                    self.reference, config.size
                ),
                "the registry serves something that is not a container image; nothing was stored",
            ));
        }
        if !store.has_blob(&config.digest) {
            let url = format!("{}/blobs/{}", self.base, config.digest);
            let mut transcript = Vec::new();
            let response = self.get(&url, Asked::Config, &mut transcript);
            self.show(&transcript);
            let body = response?.into_body().into_reader().take(config.size);
            store.put_blob(body, Some(&config.digest))?;
        }
        // A config that is not one is not kept under its digest.
        store
            .read_config(&config.digest)
            .map(|parsed| parsed.rootfs.diff_ids)
            .inspect_err(|_| {
                let _ = std::fs::remove_file(store.blob_path(&config.digest));
            })
    }

    // ANCHOR: layers
    /// Every layer the store lacks, downloaded and unpacked by
    /// PARALLEL_DOWNLOADS threads; those it has are not downloaded.
    fn layers(
        &self,
        store: &ImageStore,
        blobs: &[Descriptor],
        diff_ids: &[Digest],
        progress: &Progress,
    ) -> Result<(), LabError> {
        let report = progress.layers(blobs);
        let mut wanted: Vec<usize> = Vec::new();
        for (index, diff_id) in diff_ids.iter().enumerate() {
            // A layer twice in one image (an empty layer, say) is fetched once.
            let first = diff_ids.iter().position(|d| d == diff_id) == Some(index);
            match first && !store.has_layer(diff_id) {
                true => wanted.push(index),
                false => report.finish(index, vec![], "Already exists"),
            }
        }
        let next = AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        let errors = Mutex::new(Vec::new());
        let options = ApplyOptions::for_this_user();
        std::thread::scope(|scope| {
            for _ in 0..PARALLEL_DOWNLOADS.min(wanted.len()) {
                scope.spawn(|| {
                    while !failed.load(Ordering::Relaxed) {
                        let Some(&index) = wanted.get(next.fetch_add(1, Ordering::Relaxed)) else {
                            break;
                        };
                        let mut transcript = Vec::new();
                        let bar = report.bar(index);
                        let blob = &blobs[index];
                        let pulled = self.pull_layer(
                            store,
                            blob,
                            &diff_ids[index],
                            &bar,
                            &options,
                            &mut transcript,
                        );
                        match pulled {
                            Ok(_) => report.finish(index, transcript, "Pull complete"),
                            Err(error) => {
                                failed.store(true, Ordering::Relaxed);
                                report.finish(index, transcript, "Failed");
                                errors.lock().unwrap().push((index, error));
                            }
                        }
                    }
                });
            }
        });
        let mut errors = errors.into_inner().unwrap();
        errors.sort_by_key(|(index, _)| *index);
        match errors.into_iter().next() {
            Some((_, error)) => Err(error),
            None => Ok(()),
        }
    }
    // ANCHOR_END: layers

    // ANCHOR: pull_layer
    /// One layer: its blob's body goes, in one pass, into the store's
    /// blobs and unpacked into its layers, both digests checked.
    fn pull_layer(
        &self,
        store: &ImageStore,
        blob: &Descriptor,
        diff_id: &Digest,
        bar: &ProgressBar,
        options: &ApplyOptions,
        transcript: &mut Vec<String>,
    ) -> Result<UnpackedLayer, LabError> {
        let url = format!("{}/blobs/{}", self.base, blob.digest);
        let response = self.get(&url, Asked::Layer, transcript)?;
        bar.set_length(blob.size);
        bar.set_message("Downloading");
        // No more than the descriptor's size is read: a registry that
        // sends more cannot fill the disk, and the digest decides.
        let body = response.into_body().into_reader().take(blob.size);
        store.unpack_layer_blob(bar.wrap_read(body), &blob.digest, diff_id, options)
    }
    // ANCHOR_END: pull_layer

    /// GET `url` with the token we hold; on a Bearer challenge, get a token
    /// and ask again. Anything but a 2xx becomes an error that says what
    /// was asked for. `transcript` gets each request, with `--explain`.
    fn get(
        &self,
        url: &str,
        asked: Asked,
        transcript: &mut Vec<String>,
    ) -> Result<ureq::http::Response<ureq::Body>, LabError> {
        let response = self.call(url, asked, &Payload::Empty, transcript)?;
        self.success(response, url, asked)
    }

    /// A request with the token we hold; on a Bearer challenge, get a token
    /// and ask again. Any status is returned: 404 answers a HEAD.
    pub(crate) fn call(
        &self,
        url: &str,
        asked: Asked,
        payload: &Payload,
        transcript: &mut Vec<String>,
    ) -> Result<ureq::http::Response<ureq::Body>, LabError> {
        let mut response = self.send(url, asked, payload, true, transcript)?;
        if response.status() == 401 {
            let challenge = response
                .headers()
                .get("www-authenticate")
                .and_then(|value| value.to_str().ok())
                .and_then(parse_bearer_challenge);
            if let Some(challenge) = challenge {
                self.fetch_token(&challenge, transcript)?;
                response = self.send(url, asked, payload, true, transcript)?;
            }
        }
        Ok(response)
    }

    /// A 2xx answer, or an error that says what was asked for, with the
    /// registry's error codes.
    pub(crate) fn success(
        &self,
        mut response: ureq::http::Response<ureq::Body>,
        url: &str,
        asked: Asked,
    ) -> Result<ureq::http::Response<ureq::Body>, LabError> {
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(response);
        }
        let body = response
            .body_mut()
            .with_config()
            .limit(64 << 10)
            .read_to_vec()
            .unwrap_or_default();
        let codes = error_codes(&body).unwrap_or_else(|| format!("HTTP {status}"));
        let what = match asked {
            Asked::Manifest => format!("manifest {url}"),
            Asked::Token => format!("token {url}"),
            Asked::Config | Asked::Layer | Asked::BlobExists => format!("blob {url}"),
            Asked::StartUpload | Asked::UploadChunk | Asked::FinishUpload => {
                format!("blob upload {} {url}", asked.method())
            }
            Asked::PutManifest => format!("manifest upload PUT {url}"),
        };
        let pushing = matches!(
            asked,
            Asked::StartUpload | Asked::UploadChunk | Asked::FinishUpload | Asked::PutManifest
        );
        Err(match (status, asked) {
            (404, Asked::Manifest) => image_error(
                format!(
                    "manifest unknown: {}/{}{} not found ({codes})",
                    self.reference.registry,
                    self.reference.repository,
                    match url.rsplit_once("/manifests/") {
                        Some((_, digest)) if digest.starts_with("sha256:") => format!("@{digest}"),
                        Some((_, tag)) => format!(":{tag}"),
                        None => String::new(),
                    }
                ),
                format!(
                    "check the name and tag: GET {}/tags/list lists the repository's tags",
                    self.base
                ),
            ),
            (_, _) if pushing && status != 401 && status != 403 => image_error(
                format!(
                    "{} refused {what}: HTTP {status} ({codes})",
                    self.reference.registry
                ),
                "the registry did not take what was sent; its log says why",
            ),
            (404, _) => image_error(
                format!("{what} not found ({codes})"),
                "the registry lost a blob its manifest names; ask whoever runs it",
            ),
            (401 | 403, _) => image_error(
                format!(
                    "unauthorized: {} refused {what} ({codes})",
                    self.reference.registry
                ),
                match pushing {
                    true => {
                        "the registry wants credentials to push: the lab pushes with anonymous tokens only, to a registry of your own"
                    }
                    false => {
                        "the repository may be private or misspelled: pull gets anonymous tokens only"
                    }
                },
            ),
            _ => image_error(
                format!(
                    "{} answered {status} to {what} ({codes})",
                    self.reference.registry
                ),
                "the registry failed; try again later",
            ),
        })
    }

    /// One request: the status is the caller's to judge.
    fn send(
        &self,
        url: &str,
        asked: Asked,
        payload: &Payload,
        with_token: bool,
        transcript: &mut Vec<String>,
    ) -> Result<ureq::http::Response<ureq::Body>, LabError> {
        let accept = MANIFEST_TYPES.join(", ");
        let mut request = ureq::http::Request::builder()
            .method(asked.method())
            .uri(url);
        let mut shown_headers = Vec::new();
        if let Asked::Manifest = asked {
            request = request.header("Accept", &accept);
            shown_headers.push(format!("Accept: {accept}"));
        }
        // The token is the registry's: a URL of another origin (a
        // Location the registry sent) never gets it.
        let token = self.token.lock().unwrap().clone();
        if let Some(token) = token.filter(|_| with_token && same_origin(url, &self.base)) {
            request = request.header("Authorization", &format!("Bearer {token}"));
        }
        // A body's length is always known: Content-Length, never chunked
        // transfer encoding (distribution-spec asks for it on every PUT
        // and PATCH that carries bytes).
        let length = payload.len();
        if matches!(asked.method(), "POST" | "PUT" | "PATCH") {
            request = request.header("Content-Length", length);
        }
        if let Payload::Bytes { content_type, .. } = payload {
            request = request.header("Content-Type", *content_type);
            shown_headers.push(format!("Content-Type: {content_type}"));
        }
        if let Payload::File { offset, len, .. } = payload {
            request = request.header("Content-Type", "application/octet-stream");
            if asked == Asked::UploadChunk {
                // distribution-spec: the inclusive range of this chunk.
                let range = format!("{offset}-{}", offset + len.saturating_sub(1));
                shown_headers.push(format!("Content-Range: {range}"));
                request = request.header("Content-Range", range);
            }
        }
        if length > 0 {
            shown_headers.push(format!("Content-Length: {length}"));
        }
        let method = asked.method();
        let response = match payload {
            Payload::Empty => self.run(method, url, request.body(())),
            Payload::Bytes { bytes, .. } => self.run(method, url, request.body(*bytes)),
            Payload::File { path, offset, len } => {
                use std::io::Seek;
                let mut file = std::fs::File::open(path)
                    .map_err(|e| LabError::io("open", path.display(), e))?;
                file.seek(std::io::SeekFrom::Start(*offset))
                    .map_err(|e| LabError::io("lseek", path.display(), e))?;
                let body = ureq::SendBody::from_owned_reader(file.take(*len));
                self.run(method, url, request.body(body))
            }
        };
        if self.explain {
            transcript.push(format!(
                "{} {} {}",
                "[registry]".bold().cyan(),
                asked.method().bold(),
                url
            ));
            for header in &shown_headers {
                transcript.push(format!("{:10} {}", "", header.dimmed()));
            }
            transcript.push(format!("{:10} {}", "", asked.why().italic()));
            let answer = match &response {
                Ok(response) => {
                    let status = response.status();
                    let mut answer = format!(
                        "{} {}",
                        status.as_str(),
                        status.canonical_reason().unwrap_or("")
                    );
                    // What the registry says it sent: the format it chose
                    // from Accept, and the digest it claims.
                    for name in [
                        "content-type",
                        "docker-content-digest",
                        "www-authenticate",
                        "location",
                        "range",
                    ] {
                        let shown = match name {
                            "www-authenticate" => true,
                            "content-type" => asked == Asked::Manifest,
                            "docker-content-digest" => {
                                matches!(asked, Asked::Manifest | Asked::PutManifest)
                            }
                            // Where the next chunk goes, and what the
                            // registry has of the upload so far.
                            _ => matches!(asked, Asked::StartUpload | Asked::UploadChunk),
                        };
                        if let Some(value) = response.headers().get(name).filter(|_| shown) {
                            let value = value.to_str().unwrap_or("(not text)");
                            answer.push_str(&format!("\n{:10}    {name}: {value}", ""));
                        }
                    }
                    answer
                }
                Err(error) => format!("no answer: {error}"),
            };
            transcript.push(format!("{:10} {} {}", "", "->".yellow(), answer.yellow()));
        }
        response
    }

    /// Send a request that was built, or say why it could not be (a
    /// Location the registry sent back that is not a URL).
    fn run(
        &self,
        method: &str,
        url: &str,
        request: Result<ureq::http::Request<impl ureq::AsSendBody>, ureq::http::Error>,
    ) -> Result<ureq::http::Response<ureq::Body>, LabError> {
        let request = request.map_err(|error| {
            image_error(
                format!("cannot make a request of {url}: {error}"),
                "the registry sent a location that is not a URL; ask whoever runs it",
            )
        })?;
        self.agent
            .run(request)
            .map_err(|error| self.unreachable(method, url, error))
    }

    /// Ask the token server of a challenge for an anonymous token.
    fn fetch_token(
        &self,
        challenge: &BearerChallenge,
        transcript: &mut Vec<String>,
    ) -> Result<(), LabError> {
        #[derive(serde::Deserialize)]
        struct TokenAnswer {
            token: Option<String>,
            access_token: Option<String>,
        }
        let url = token_url(challenge, &self.reference.repository, self.actions);
        let mut response = self.get_token_answer(&url, transcript)?;
        let body = response
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_vec()
            .map_err(|error| self.unreachable("GET", &url, error))?;
        let answer: TokenAnswer = serde_json::from_slice(&body).map_err(|error| {
            image_error(
                format!("token server {url} answered no token: {error}"),
                "the registry's token server failed; try again later",
            )
        })?;
        // Docker's spec: `token`, and `access_token` as OAuth 2 names it;
        // a server may send either or both.
        let token = answer.token.or(answer.access_token).ok_or_else(|| {
            image_error(
                format!("token server {url} answered no token"),
                "the registry's token server failed; try again later",
            )
        })?;
        *self.token.lock().unwrap() = Some(token);
        Ok(())
    }

    /// The token request itself: anonymous (no Authorization header), and
    /// a 401 from the token server is final.
    fn get_token_answer(
        &self,
        url: &str,
        transcript: &mut Vec<String>,
    ) -> Result<ureq::http::Response<ureq::Body>, LabError> {
        let response = self.send(url, Asked::Token, &Payload::Empty, false, transcript)?;
        match response.status().as_u16() {
            200..=299 => Ok(response),
            status => Err(image_error(
                format!(
                    "unauthorized: the token server {url} refused an anonymous token (HTTP {status})"
                ),
                "the repository may be private or misspelled: pull gets anonymous tokens only",
            )),
        }
    }

    /// A request that got no answer: the connection's error, with its
    /// errno when there is one.
    fn unreachable(&self, method: &str, url: &str, error: ureq::Error) -> LabError {
        let why = match &error {
            ureq::Error::Io(io) if io.raw_os_error().is_some() => describe_errno(errno_of(io)),
            other => other.to_string(),
        };
        let name_unknown = why.contains("lookup") || why.contains("resolve");
        let hint = match url.starts_with("https://") {
            _ if name_unknown => {
                "the registry's name does not resolve: check its spelling, and that this machine has DNS and a network"
            }
            true => {
                "check the registry's name and port, and that it serves HTTPS (--tls-verify=false for plain HTTP)"
            }
            false => "check the registry's name and port, and that a registry listens there",
        };
        image_error(
            format!(
                "cannot reach the registry {} ({method} {url}): {why}",
                self.reference.registry
            ),
            hint,
        )
    }

    /// Print a transcript of requests now (with `--explain`).
    pub(crate) fn show(&self, transcript: &[String]) {
        for line in transcript {
            crate::say!("{line}");
        }
    }
}

/// A line on stdout; a reader that went away (`| head`) is let go, as
/// `say!` does for stderr.
pub(crate) fn print_line(line: &str) {
    let _ = writeln!(std::io::stdout(), "{line}");
}

/// How the pull reports: nothing but the id (`-q`), progress bars on a
/// terminal, or one line per layer (docker's lines, in the manifest's
/// order, so a transcript reads the same each time).
enum Progress {
    Quiet,
    Lines,
    Bars(MultiProgress),
}

impl Progress {
    fn new(quiet: bool) -> Progress {
        match (quiet, std::io::stderr().is_terminal()) {
            (true, _) => Progress::Quiet,
            (false, true) => Progress::Bars(MultiProgress::new()),
            (false, false) => Progress::Lines,
        }
    }

    fn say(&self, line: &str) {
        match self {
            Progress::Quiet => {}
            Progress::Lines => print_line(line),
            Progress::Bars(bars) => bars.suspend(|| print_line(line)),
        }
    }

    /// The report of these layers: a bar each on a terminal.
    fn layers(&self, blobs: &[Descriptor]) -> LayerReport<'_> {
        let style = ProgressStyle::with_template(
            "{prefix}: {msg:<13} [{bar:30}] {binary_bytes}/{binary_total_bytes}",
        )
        .expect("a valid template")
        .progress_chars("=> ");
        let bars = blobs
            .iter()
            .map(|blob| match self {
                Progress::Bars(multi) => {
                    let bar = multi.add(ProgressBar::new(blob.size));
                    bar.set_style(style.clone());
                    bar.set_prefix(blob.digest.short().to_string());
                    bar.set_message("Waiting");
                    bar
                }
                _ => ProgressBar::hidden(),
            })
            .collect();
        LayerReport {
            progress: self,
            bars,
            prefixes: blobs.iter().map(|b| b.digest.short().to_string()).collect(),
            order: Mutex::new(InOrder {
                next: 0,
                finished: vec![None; blobs.len()],
            }),
        }
    }
}

struct LayerReport<'a> {
    progress: &'a Progress,
    bars: Vec<ProgressBar>,
    prefixes: Vec<String>,
    order: Mutex<InOrder>,
}

/// Layers finished out of order wait here until those before them are
/// reported.
struct InOrder {
    next: usize,
    finished: Vec<Option<(Vec<String>, &'static str)>>,
}

impl LayerReport<'_> {
    fn bar(&self, index: usize) -> ProgressBar {
        self.bars[index].clone()
    }

    /// Layer `index` is done: its requests (with `--explain`) and its
    /// status line are shown once every layer before it is.
    fn finish(&self, index: usize, transcript: Vec<String>, status: &'static str) {
        if let Progress::Bars(_) = self.progress {
            self.bars[index].set_style(
                ProgressStyle::with_template("{prefix}: {msg}").expect("a valid template"),
            );
            self.bars[index].finish_with_message(status);
        }
        let mut order = self.order.lock().unwrap();
        order.finished[index] = Some((transcript, status));
        loop {
            let next = order.next;
            let Some(Some((transcript, status))) = order.finished.get_mut(next).map(Option::take)
            else {
                break;
            };
            let line = format!("{}: {status}", self.prefixes[next]);
            let show = || {
                for request in &transcript {
                    crate::say!("{request}");
                }
                if let Progress::Lines = self.progress {
                    print_line(&line);
                }
            };
            match self.progress {
                Progress::Bars(multi) => multi.suspend(show),
                _ => show(),
            }
            order.next += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hubs_challenge_yields_realm_service_and_scope() {
        let header = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#;
        assert_eq!(
            parse_bearer_challenge(header),
            Some(BearerChallenge {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/busybox:pull".into()),
            })
        );
    }

    #[test]
    fn a_challenge_may_quote_commas_escape_quotes_and_leave_values_bare() {
        let header =
            r#"bearer  scope="repository:a:pull,push", realm=https://r.example/t , service="s\"x""#;
        let challenge = parse_bearer_challenge(header).unwrap();
        assert_eq!(challenge.realm, "https://r.example/t");
        assert_eq!(challenge.service.as_deref(), Some("s\"x"));
        assert_eq!(challenge.scope.as_deref(), Some("repository:a:pull,push"));
    }

    #[test]
    fn basic_auth_or_a_bearer_without_realm_is_no_bearer_challenge() {
        assert_eq!(parse_bearer_challenge(r#"Basic realm="registry""#), None);
        assert_eq!(parse_bearer_challenge(r#"Bearer service="x""#), None);
        assert_eq!(parse_bearer_challenge(""), None);
    }

    #[test]
    fn the_token_url_carries_service_and_scope_percent_encoded() {
        let challenge = BearerChallenge {
            realm: "https://auth.docker.io/token".into(),
            service: Some("registry.docker.io".into()),
            scope: Some("repository:library/busybox:pull".into()),
        };
        assert_eq!(
            token_url(&challenge, "library/busybox", "pull"),
            "https://auth.docker.io/token?service=registry.docker.io&scope=repository%3Alibrary%2Fbusybox%3Apull"
        );
        let bare = BearerChallenge {
            realm: "http://127.0.0.1:5001/auth?x=1".into(),
            service: None,
            scope: None,
        };
        assert_eq!(
            token_url(&bare, "lab/base", "pull"),
            "http://127.0.0.1:5001/auth?x=1&scope=repository%3Alab%2Fbase%3Apull"
        );
        let pull_only = BearerChallenge {
            scope: Some("repository:lab/base:pull".into()),
            ..bare
        };
        assert_eq!(
            token_url(&pull_only, "lab/base", "pull,push"),
            "http://127.0.0.1:5001/auth?x=1&scope=repository%3Alab%2Fbase%3Apull%2Cpush"
        );
    }

    #[test]
    fn plain_http_only_for_loopback_or_without_tls_verification() {
        let base = |text: &str, verify: bool| api_base(&Reference::parse(text).unwrap(), verify);
        assert_eq!(
            base("127.0.0.1:5000/lab/base:v1", true),
            "http://127.0.0.1:5000/v2/lab/base"
        );
        assert_eq!(base("localhost:5000/x", true), "http://localhost:5000/v2/x");
        assert_eq!(
            base("busybox", true),
            "https://registry-1.docker.io/v2/library/busybox"
        );
        assert_eq!(base("10.0.0.1:5000/x", true), "https://10.0.0.1:5000/v2/x");
        assert_eq!(base("10.0.0.1:5000/x", false), "http://10.0.0.1:5000/v2/x");
    }

    #[test]
    fn an_origin_is_scheme_host_and_port() {
        let base = "http://127.0.0.1:5000/v2/lab/x";
        assert!(same_origin(
            "http://127.0.0.1:5000/v2/y/blobs/uploads/u?s=1",
            base
        ));
        assert!(same_origin("HTTP://127.0.0.1:5000/elsewhere", base));
        assert!(same_origin(
            "https://r.example/v2/x",
            "https://R.EXAMPLE:443/v2/y"
        ));
        assert!(same_origin("http://r.example:80/a", "http://r.example/b"));
        for other in [
            "http://127.0.0.1:5001/v2/lab/x",
            "https://127.0.0.1:5000/v2/lab/x",
            "http://localhost:5000/v2/lab/x",
            "http://192.0.2.2:45882/v2/lab/x",
            "http://127.0.0.1:5000@192.0.2.2/v2/lab/x",
            "/v2/lab/x",
            "ftp://127.0.0.1:5000/v2/lab/x",
            "not a url",
        ] {
            assert!(!same_origin(other, base), "{other}");
        }
        assert_eq!(
            origin("http://[::1]:5000/v2/x"),
            Some(("http".into(), "[::1]".into(), 5000))
        );
    }

    #[test]
    fn a_registrys_error_body_becomes_its_codes() {
        let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"v9"}}]}"#;
        assert_eq!(
            error_codes(body).as_deref(),
            Some("MANIFEST_UNKNOWN: manifest unknown")
        );
        assert_eq!(error_codes(b"<html>404</html>"), None);
        assert_eq!(error_codes(br#"{"errors":[]}"#), None);
    }

    #[test]
    fn platforms_are_named_as_docker_names_them() {
        let arm = Platform {
            architecture: "arm64".into(),
            os: "linux".into(),
            variant: Some("v8".into()),
        };
        assert_eq!(platform_name(&arm), "linux/arm64/v8");
        let amd = Platform {
            variant: None,
            architecture: "amd64".into(),
            ..arm
        };
        assert_eq!(platform_name(&amd), "linux/amd64");
    }
}
