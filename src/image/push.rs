//! push: an image of the store into a registry, by the OCI distribution
//! API (distribution-spec, "Push"), as `docker push` and `podman push` do.
//!
//! Blobs first, manifest last:
//!
//! 1. each layer, then the config: `HEAD /v2/<name>/blobs/<digest>`. A 200
//!    means the registry has it (pushed before, or by another image): it is
//!    not sent again. A 404: `POST /v2/<name>/blobs/uploads/` opens an
//!    upload, whose `Location` says where the bytes go; a blob up to
//!    CHUNKED_ABOVE goes in one `PUT <location>?digest=<digest>`
//!    (monolithic), a larger one in `PATCH`es of CHUNK bytes, each with its
//!    `Content-Range`, closed by a `PUT ?digest=` without a body. The
//!    registry hashes what it received and keeps it only under that digest.
//! 2. `PUT /v2/<name>/manifests/<tag>`: the registry refuses a manifest
//!    that names a blob it lacks (MANIFEST_BLOB_UNKNOWN), so the manifest
//!    goes last, and a puller never sees a tag whose blobs are missing.
//!
//! Layers go as the store keeps them: compressed if they came compressed
//! (pulled or loaded), the uncompressed tar if they were imported. Nothing
//! is compressed again, so a pulled image pushed elsewhere keeps its
//! manifest and its digest, and its blobs can be compared across
//! registries; an imported layer travels uncompressed, which the OCI
//! image spec allows (`application/vnd.oci.image.layer.v1.tar`) and
//! podman, skopeo and docker all pull.

use super::digest::Digest;
use super::export::{Exported, export};
use super::reference::Reference;
use super::registry::{Asked, Payload, Registry, origin, print_line, same_origin};
use super::store::ImageStore;
use super::verbs::PushArgs;
use crate::error::LabError;
use std::path::Path;

/// Blobs larger than this are sent in chunks (PATCH), smaller ones in one
/// PUT: both ways of the spec are used, and a chunk's failure costs a
/// chunk, not the whole blob.
pub const CHUNKED_ABOVE: u64 = 8 << 20;
/// The size of one PATCH.
pub const CHUNK: u64 = 8 << 20;

fn image_error(message: String, hint: impl Into<String>) -> LabError {
    LabError::Image {
        message,
        hint: hint.into(),
    }
}

/// The destination as written: `[docker://]HOST[:PORT]/PATH[:TAG]`, or
/// `http://...` to ask for plain HTTP, which only a loopback registry (or
/// `--tls-verify=false`) gets: refused here, before any connection.
pub fn destination(text: &str, tls_verify: bool) -> Result<Reference, LabError> {
    let (plain, rest) = match text.split_once("://") {
        Some(("http", rest)) => (true, rest),
        Some(("https" | "docker", rest)) => (false, rest),
        Some((scheme, _)) => {
            return Err(image_error(
                format!("push {text}: {scheme}:// is not a registry"),
                "write HOST[:PORT]/PATH[:TAG], optionally after docker://",
            ));
        }
        None => (false, text),
    };
    let reference = Reference::parse(rest).map_err(|message| {
        image_error(
            message,
            "write HOST[:PORT]/PATH[:TAG], as 127.0.0.1:5000/lab/x:v1",
        )
    })?;
    if reference.digest.is_some() {
        return Err(image_error(
            format!("push {text}: a destination names a tag, not a digest"),
            "the registry computes the digest of what is pushed; give a :TAG",
        ));
    }
    if plain && tls_verify && !reference.is_loopback() {
        return Err(image_error(
            format!(
                "push {text}: plain HTTP to {}, which is not a loopback address, is refused",
                reference.registry
            ),
            "anyone on the way could change the image: use https, or --tls-verify=false if you must",
        ));
    }
    Ok(reference)
}

/// `Location` as the registry sent it, resolved against the URL of the
/// request it answers (RFC 3986 section 5.2): distribution-spec lets it be
/// a whole URL or a path on the registry. A reference with a scheme is
/// whole; `//HOST...` takes the scheme; `/PATH` the origin; `?QUERY` the
/// path too; anything else is a path beside the request's last segment.
fn resolve(location: &str, url: &str) -> String {
    let has_scheme = location.split_once(':').is_some_and(|(scheme, _)| {
        scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    });
    if has_scheme {
        return location.to_string();
    }
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    if let Some(network_path) = location.strip_prefix("//") {
        return format!("{scheme}://{network_path}");
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path_and_query) = rest.split_at(authority_end);
    let path = path_and_query.split(['?', '#']).next().unwrap_or("");
    let origin = format!("{scheme}://{authority}");
    if location.starts_with('/') {
        return format!("{origin}{location}");
    }
    if location.starts_with('?') {
        return format!("{origin}{path}{location}");
    }
    let directory = &path[..path.rfind('/').map_or(0, |i| i + 1)];
    match directory.is_empty() {
        true => format!("{origin}/{location}"),
        false => format!("{origin}{directory}{location}"),
    }
}

/// `location` with `digest=` added to its query.
fn with_digest(location: &str, digest: &Digest) -> String {
    let separator = match location.contains('?') {
        true => '&',
        false => '?',
    };
    format!("{location}{separator}digest={digest}")
}

// ANCHOR: push
/// `push IMAGE [DESTINATION]`
pub fn push(store: &ImageStore, args: &PushArgs) -> Result<i32, LabError> {
    let target = args.destination.as_deref().unwrap_or(&args.image);
    let destination = destination(target, args.tls_verify)?;
    let record = store.find(&args.image)?;
    let exported = export(store, &record)?;
    let registry = Registry::for_push(&destination, args.tls_verify, args.explain);
    let say = |line: &str| {
        if !args.quiet {
            print_line(line);
        }
    };
    say(&format!(
        "The push refers to repository [{}/{}]",
        destination.registry, destination.repository
    ));
    // Layers bottom first, then the config: everything the manifest names.
    let mut sent = std::collections::BTreeSet::new();
    for layer in &exported.layers {
        let digest = &layer.descriptor.digest;
        if sent.insert(digest.clone()) {
            let uploaded = push_blob(&registry, digest, &layer.path, layer.descriptor.size)?;
            say(&format!(
                "{}: {}",
                digest.short(),
                match uploaded {
                    true => "Pushed",
                    false => "Layer already exists",
                }
            ));
        }
    }
    let uploaded = push_blob(
        &registry,
        &exported.config.digest,
        &exported.config_path,
        exported.config.size,
    )?;
    say(&format!(
        "config {}: {}",
        exported.config.digest.short(),
        match uploaded {
            true => "Pushed",
            false => "Already exists",
        }
    ));
    let tag = destination.tag.clone().unwrap_or_else(|| "latest".into());
    let digest = push_manifest(&registry, &exported, &tag)?;
    say(&format!(
        "{tag}: digest: {digest} size: {}",
        exported.manifest.len()
    ));
    if args.quiet {
        print_line(&digest.to_string());
    }
    remember(store, &exported, &destination, &digest)?;
    Ok(0)
}
// ANCHOR_END: push

// ANCHOR: push_blob
/// One blob, unless the registry has it: true if it was uploaded.
fn push_blob(
    registry: &Registry,
    digest: &Digest,
    path: &Path,
    size: u64,
) -> Result<bool, LabError> {
    let mut transcript = Vec::new();
    let result = upload(registry, digest, path, size, &mut transcript);
    registry.show(&transcript);
    result
}

fn upload(
    registry: &Registry,
    digest: &Digest,
    path: &Path,
    size: u64,
    transcript: &mut Vec<String>,
) -> Result<bool, LabError> {
    let url = format!("{}/blobs/{digest}", registry.base);
    let answer = registry.call(&url, Asked::BlobExists, &Payload::Empty, transcript)?;
    match answer.status().as_u16() {
        200 => return Ok(false),
        404 => {}
        _ => {
            registry.success(answer, &url, Asked::BlobExists)?;
        }
    }
    let start = format!("{}/blobs/uploads/", registry.base);
    let answer = registry.call(&start, Asked::StartUpload, &Payload::Empty, transcript)?;
    let answer = registry.success(answer, &start, Asked::StartUpload)?;
    let mut location = next_location(&answer, &start, registry)?;
    let body = match size > CHUNKED_ABOVE {
        true => {
            let mut offset = 0;
            while offset < size {
                let len = CHUNK.min(size - offset);
                let chunk = Payload::File { path, offset, len };
                let answer = registry.call(&location, Asked::UploadChunk, &chunk, transcript)?;
                let answer = registry.success(answer, &location, Asked::UploadChunk)?;
                location = next_location(&answer, &location, registry)?;
                offset += len;
            }
            Payload::Empty
        }
        false => Payload::File {
            path,
            offset: 0,
            len: size,
        },
    };
    let finish = with_digest(&location, digest);
    let answer = registry.call(&finish, Asked::FinishUpload, &body, transcript)?;
    let answer = registry.success(answer, &finish, Asked::FinishUpload)?;
    check_digest(&answer, digest, &finish)?;
    Ok(true)
}
// ANCHOR_END: push_blob

/// Where the upload goes on: each answer's `Location` (distribution-spec:
/// the client must use the last one it got), on the registry's origin
/// only. A Location elsewhere would send the layer, and with it the
/// token, to a host the user never named, over plain HTTP perhaps
/// (which only a loopback registry may use): it is refused.
fn next_location(
    answer: &ureq::http::Response<ureq::Body>,
    url: &str,
    registry: &Registry,
) -> Result<String, LabError> {
    let location = answer
        .headers()
        .get("location")
        .and_then(|value| value.to_str().ok())
        .ok_or_else(|| {
            image_error(
                format!(
                    "{url}: the registry answered {} without a Location",
                    answer.status()
                ),
                "the registry does not follow the distribution spec; ask whoever runs it",
            )
        })?;
    let resolved = resolve(location, url);
    if !same_origin(&resolved, &registry.base) {
        let registry_origin = match origin(&registry.base) {
            Some((scheme, host, port)) => format!("{scheme}://{host}:{port}"),
            None => registry.base.clone(),
        };
        return Err(image_error(
            format!(
                "{url}: the registry sent the upload to {location}, off its origin {registry_origin}: refused"
            ),
            "an upload goes to the registry's own scheme, host and port, nowhere else; ask whoever runs it",
        ));
    }
    Ok(resolved)
}

/// The registry's `Docker-Content-Digest`, when it sends one, is ours.
fn check_digest(
    answer: &ureq::http::Response<ureq::Body>,
    digest: &Digest,
    url: &str,
) -> Result<(), LabError> {
    let claimed = answer
        .headers()
        .get("docker-content-digest")
        .and_then(|value| value.to_str().ok());
    match claimed {
        Some(claimed) if claimed != digest.to_string() => Err(image_error(
            format!("{url}: the registry stored {claimed}, not {digest}"),
            "the bytes changed on the way; push again",
        )),
        _ => Ok(()),
    }
}

/// The manifest, last, under the tag; its digest.
fn push_manifest(registry: &Registry, exported: &Exported, tag: &str) -> Result<Digest, LabError> {
    let url = format!("{}/manifests/{tag}", registry.base);
    let payload = Payload::Bytes {
        bytes: &exported.manifest,
        content_type: &exported.manifest_type,
    };
    let mut transcript = Vec::new();
    let answer = registry.call(&url, Asked::PutManifest, &payload, &mut transcript);
    registry.show(&transcript);
    let answer = registry.success(answer?, &url, Asked::PutManifest)?;
    check_digest(&answer, &exported.manifest_digest, &url)?;
    Ok(exported.manifest_digest.clone())
}

/// The image's record gains `HOST/NAME@DIGEST` among its repo digests.
fn remember(
    store: &ImageStore,
    exported: &Exported,
    destination: &Reference,
    digest: &Digest,
) -> Result<(), LabError> {
    let repo_digest = format!("{}@{digest}", destination.familiar_name());
    let _lock = store.lock()?;
    let Some(mut record) = store.image(&exported.record.id) else {
        // Removed while it was pushed: nothing to remember it in.
        return Ok(());
    };
    if record.repo_digests.contains(&repo_digest) {
        return Ok(());
    }
    record.repo_digests.push(repo_digest);
    store.add_image(&record, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_is_refused_off_loopback_before_any_connection() {
        let refused = destination("http://192.0.2.1:5000/lab/x:v1", true)
            .unwrap_err()
            .to_string();
        assert!(refused.contains("plain HTTP"), "{refused}");
        assert!(destination("http://127.0.0.1:5000/lab/x:v1", true).is_ok());
        assert!(destination("http://192.0.2.1:5000/lab/x:v1", false).is_ok());
        let plain = destination("docker://127.0.0.1:5000/lab/x", true).unwrap();
        assert_eq!(plain.tag.as_deref(), Some("latest"));
        assert!(destination("ftp://x/y", true).is_err());
        let digest = format!("127.0.0.1:5000/lab/x@{}", Digest::of(b""));
        assert!(destination(&digest, true).is_err());
    }

    #[test]
    fn locations_are_resolved_against_the_request_and_take_the_digest() {
        let post = "http://127.0.0.1:5000/v2/lab/x/blobs/uploads/";
        let full = "http://127.0.0.1:5000/v2/lab/x/blobs/uploads/u";
        for (location, resolved) in [
            (
                "/v2/lab/x/blobs/uploads/u?_state=s",
                "http://127.0.0.1:5000/v2/lab/x/blobs/uploads/u?_state=s",
            ),
            (full, full),
            (
                "u?_state=s",
                "http://127.0.0.1:5000/v2/lab/x/blobs/uploads/u?_state=s",
            ),
            (
                "?_state=s",
                "http://127.0.0.1:5000/v2/lab/x/blobs/uploads/?_state=s",
            ),
            ("//192.0.2.2:45882/u", "http://192.0.2.2:45882/u"),
            ("HTTPS://r.example/u", "HTTPS://r.example/u"),
        ] {
            assert_eq!(resolve(location, post), resolved, "{location}");
        }
        assert_eq!(
            resolve("u", "http://127.0.0.1:5000"),
            "http://127.0.0.1:5000/u"
        );
        let digest = Digest::of(b"");
        assert_eq!(
            with_digest(full, &digest),
            format!("{full}?digest={digest}")
        );
        assert_eq!(
            with_digest("/u?_state=s", &digest),
            format!("/u?_state=s&digest={digest}")
        );
    }
}
