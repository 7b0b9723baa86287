//! ch08-images pull, for real: a real registry (Debian's docker-registry,
//! distribution 2.8) on 127.0.0.1, filled by a real client (skopeo) with
//! images this file writes by hand as OCI image layouts, pulled into a
//! store of each test's own (CONTAINER_LAB_STORAGE). Every test starts its
//! own registry, since distribution shares blobs between repositories and
//! one test damages them. Nothing here talks to any address but 127.0.0.1.

mod common;
use common::registry::{Registry, TokenServer, free_port, noise};
use common::*;
use container_lab::image::digest::Digest;
use container_lab::image::spec::{self, Platform};
use container_lab::image::store::STORAGE_ENV;
use serde_json::{Value, json};
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

const CH: &str = "ch08-images";

/// A layer as pushed: its blob (compressed), the blob's media type, and
/// the digest of its tar (the diffID a config names).
struct Layer {
    blob: Vec<u8>,
    media_type: &'static str,
    diff_id: Digest,
}

/// A layer of these files (a path ending in `/` is a directory), gzip- or
/// zstd-compressed.
fn layer(files: &[(&str, &[u8])], zstd: bool) -> Layer {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, content) in files {
        let mut header = tar::Header::new_ustar();
        let (kind, mode) = match path.ends_with('/') {
            true => (tar::EntryType::Directory, 0o755),
            false => (tar::EntryType::Regular, 0o644),
        };
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_size(content.len() as u64);
        header.set_mtime(0);
        header.set_cksum();
        builder.append_data(&mut header, path, *content).unwrap();
    }
    let tar = builder.into_inner().unwrap();
    let (blob, media_type) = match zstd {
        true => (zstd::encode_all(&tar[..], 3).unwrap(), spec::OCI_LAYER_ZSTD),
        false => {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(&tar).unwrap();
            (gz.finish().unwrap(), spec::OCI_LAYER_GZIP)
        }
    };
    Layer {
        blob,
        media_type,
        diff_id: Digest::of(&tar),
    }
}

/// An image written into a layout: what the tests check the store against.
struct Image {
    manifest: Digest,
    config: Digest,
    layers: Vec<Layer>,
    /// The manifest's descriptor, with its platform.
    descriptor: Value,
}

impl Image {
    fn blobs(&self) -> Vec<Digest> {
        self.layers.iter().map(|l| Digest::of(&l.blob)).collect()
    }

    fn diff_ids(&self) -> Vec<Digest> {
        self.layers.iter().map(|l| l.diff_id.clone()).collect()
    }
}

/// An OCI image layout (image-spec, image-layout.md): `oci-layout`,
/// `blobs/sha256/HEX`, and `index.json` naming what is in it.
struct Layout {
    dir: Scratch,
}

impl Layout {
    fn new(name: &str) -> Layout {
        let dir = Scratch::new(&format!("layout-{name}"));
        std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        Layout { dir }
    }

    fn blob(&self, bytes: &[u8]) -> Digest {
        let digest = Digest::of(bytes);
        std::fs::write(self.dir.join("blobs/sha256").join(digest.hex()), bytes).unwrap();
        digest
    }

    fn descriptor(&self, media_type: &str, bytes: &[u8]) -> Value {
        json!({"mediaType": media_type, "digest": self.blob(bytes), "size": bytes.len()})
    }

    /// An image for `architecture` (linux) of these layers.
    fn image(&self, architecture: &str, layers: Vec<Layer>) -> Image {
        let config = serde_json::to_vec(&json!({
            "architecture": architecture,
            "os": "linux",
            "config": {"Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| &l.diff_id).collect::<Vec<_>>()},
            "history": layers.iter().map(|_| json!({"created_by": "tests/ch08_pull.rs"})).collect::<Vec<_>>(),
        }))
        .unwrap();
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": spec::OCI_MANIFEST,
            "config": self.descriptor(spec::OCI_CONFIG, &config),
            "layers": layers.iter().map(|l| self.descriptor(l.media_type, &l.blob)).collect::<Vec<_>>(),
        }))
        .unwrap();
        let mut descriptor = self.descriptor(spec::OCI_MANIFEST, &manifest);
        descriptor["platform"] = json!({"architecture": architecture, "os": "linux"});
        Image {
            manifest: Digest::of(&manifest),
            config: Digest::of(&config),
            layers,
            descriptor,
        }
    }

    /// An index of these images; its digest.
    fn index(&self, images: &[&Image]) -> (Digest, Value) {
        let index = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": spec::OCI_INDEX,
            "manifests": images.iter().map(|i| &i.descriptor).collect::<Vec<_>>(),
        }))
        .unwrap();
        (Digest::of(&index), self.descriptor(spec::OCI_INDEX, &index))
    }

    /// index.json: each descriptor under its `org.opencontainers.image.ref.name`.
    fn name(&self, named: &[(&str, &Value)]) {
        let manifests: Vec<Value> = named
            .iter()
            .map(|(name, descriptor)| {
                let mut descriptor = (*descriptor).clone();
                descriptor.as_object_mut().unwrap().remove("platform");
                descriptor["annotations"] = json!({"org.opencontainers.image.ref.name": name});
                descriptor
            })
            .collect();
        let index = json!({"schemaVersion": 2, "manifests": manifests});
        std::fs::write(self.dir.join("index.json"), index.to_string()).unwrap();
    }
}

/// The three-layer image most tests pull: gzip, zstd, gzip.
fn base_image(layout: &Layout) -> Image {
    let layers = vec![
        layer(
            &[("etc/", b""), ("etc/lab-release", b"container-lab base\n")],
            false,
        ),
        layer(&[("srv/", b""), ("srv/zstd.txt", b"a zstd layer\n")], true),
        layer(
            &[("srv/", b""), ("srv/noise.bin", &noise(1 << 20, 8))],
            false,
        ),
    ];
    layout.image(&Platform::host().architecture, layers)
}

/// A registry of its own for one test, holding [`base_image`] as
/// `lab/base:v1`.
struct BaseInRegistry {
    registry: Registry,
    image: Image,
    /// `127.0.0.1:PORT/lab/base:v1`
    name: String,
    _layout: Layout,
}

fn base_in_registry(test: &str) -> BaseInRegistry {
    base_in(Registry::start(test), test)
}

fn base_in(registry: Registry, test: &str) -> BaseInRegistry {
    let layout = Layout::new(test);
    let image = base_image(&layout);
    layout.name(&[("v1", &image.descriptor)]);
    registry.push(&layout.dir, "v1", "lab/base:v1", &[]);
    BaseInRegistry {
        name: format!("{}/lab/base:v1", registry.host()),
        registry,
        image,
        _layout: layout,
    }
}

/// What pulling `lab/base:v1` prints, as docker prints it: the layers'
/// status, the digest, the image's status, its name.
fn pull_lines(name: &str, image: &Image, layers: &str, status: &str) -> String {
    let mut lines = String::from("v1: Pulling from lab/base\n");
    for blob in image.blobs() {
        lines.push_str(&format!("{}: {layers}\n", blob.short()));
    }
    lines
        + &format!(
            "Digest: {}\nStatus: {status} for {name}\n{name}\n",
            image.manifest
        )
}

/// `ch08-images ARGS...` with the store at `store`.
fn lab(store: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(bin(CH));
    command
        .args(args)
        .env(STORAGE_ENV, store)
        .env_remove("NO_COLOR")
        .stdin(Stdio::null());
    command
}

fn pull(store: &Path, args: &[&str]) -> Output {
    let mut words = vec!["pull"];
    words.extend(args);
    lab(store, &words).output().expect("run ch08-images pull")
}

fn assert_success(output: &Output) {
    assert_eq!(
        code(output),
        0,
        "stdout: {}\nstderr: {}",
        stdout(output),
        stderr(output)
    );
}

fn record(store: &Path, id: &Digest) -> Value {
    let path = store.join("images").join(format!("{}.json", id.hex()));
    serde_json::from_slice(
        &std::fs::read(&path).unwrap_or_else(|e| panic!("no image record {}: {e}", path.display())),
    )
    .unwrap()
}

fn tags(store: &Path) -> Value {
    std::fs::read(store.join("tags.json"))
        .map(|bytes| serde_json::from_slice(&bytes).unwrap())
        .unwrap_or(json!({}))
}

/// The names in a directory of the store, sorted.
fn names(store: &Path, dir: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(store.join(dir))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A file of a layer, as unpacked in the store.
fn layer_file(store: &Path, layer: &Layer, path: &str) -> Vec<u8> {
    let file = store.join("layers").join(layer.diff_id.hex()).join(path);
    std::fs::read(&file).unwrap_or_else(|e| panic!("read {}: {e}", file.display()))
}

fn hexes(digests: &[Digest]) -> Vec<String> {
    let mut hexes: Vec<String> = digests.iter().map(|d| d.hex().to_string()).collect();
    hexes.sort();
    hexes
}

as_root!(
    /// By tag: docker's lines, every layer in the store under its diffID
    /// with its files, the blobs under their digests, a record and a tag.
    /// A second pull downloads no blob (the registry's own access log
    /// says so) and says the image is up to date.
    a_pull_by_tag_stores_each_layer_checked_and_a_second_pull_downloads_nothing,
    {
        let BaseInRegistry {
            registry,
            image,
            name,
            ..
        } = base_in_registry("by-tag");
        let store = Scratch::new("store-by-tag");

        let first = pull(&store, &[&name]);
        assert_success(&first);
        assert_eq!(
            stdout(&first),
            pull_lines(&name, &image, "Pull complete", "Downloaded newer image")
        );
        let blobs = image.blobs();
        assert_eq!(names(&store, "layers"), hexes(&image.diff_ids()));
        assert_eq!(
            layer_file(&store, &image.layers[0], "etc/lab-release"),
            b"container-lab base\n"
        );
        assert_eq!(
            layer_file(&store, &image.layers[1], "srv/zstd.txt"),
            b"a zstd layer\n",
            "the zstd layer is unpacked"
        );
        let mut stored = blobs.clone();
        stored.extend([image.manifest.clone(), image.config.clone()]);
        assert_eq!(names(&store, "blobs/sha256"), hexes(&stored));
        assert_eq!(names(&store, "tmp"), Vec::<String>::new());
        let record = record(&store, &image.config);
        assert_eq!(record["layers"], json!(image.diff_ids()));
        assert_eq!(record["manifest"], json!(image.manifest));
        assert_eq!(
            record["repo_digests"],
            json!([format!("{}/lab/base@{}", registry.host(), image.manifest)])
        );
        let layer_blobs: Vec<Digest> = record["layer_blobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| serde_json::from_value(d["digest"].clone()).unwrap())
            .collect();
        assert_eq!(layer_blobs, blobs);
        assert_eq!(tags(&store)[&name], json!(image.config));
        assert_eq!(registry.gets("/blobs/"), 4, "the config and three layers");

        let second = pull(&store, &[&name]);
        assert_success(&second);
        assert_eq!(
            stdout(&second),
            pull_lines(&name, &image, "Already exists", "Image is up to date")
        );
        assert_eq!(registry.gets("/blobs/"), 4, "the second pull downloaded a blob");
        assert_eq!(registry.gets("/manifests/v1"), 2);

        let unknown = pull(&store, &[&format!("{}/lab/base:v9", registry.host())]);
        assert_clean_failure(&unknown, 1, "manifest unknown");
    }
);

as_root!(
    /// By digest: the manifest is checked against the digest asked for,
    /// no tag is made, `-q` prints only the id, and `--explain` shows each
    /// request with what it accepts and the registry's answer.
    a_pull_by_digest_makes_no_tag_and_explain_shows_each_request,
    {
        let BaseInRegistry {
            registry, image, ..
        } = base_in_registry("by-digest");
        let store = Scratch::new("store-by-digest");
        let pinned = format!("{}/lab/base@{}", registry.host(), image.manifest);

        let output = pull(&store, &["-q", "--explain", &pinned]);
        assert_success(&output);
        assert_eq!(stdout(&output), format!("{}\n", image.config));
        let explained = stderr(&output);
        let base = format!("http://{}/v2/lab/base", registry.host());
        for request in [
            format!("[registry] GET {base}/manifests/{}\n", image.manifest),
            format!("Accept: {}, ", spec::OCI_INDEX),
            format!("[registry] GET {base}/blobs/{}\n", image.config),
            format!("[registry] GET {base}/blobs/{}\n", image.blobs()[2]),
            "-> 200 OK\n".to_string(),
        ] {
            assert!(explained.contains(&request), "{request} in:\n{explained}");
        }
        assert_eq!(tags(&store), json!({}), "a digest makes no tag");
        assert_eq!(record(&store, &image.config)["repo_digests"], json!([pinned]));

        let absent = format!("{}/lab/base@{}", registry.host(), Digest::of(b"absent"));
        assert_clean_failure(&pull(&store, &[&absent]), 1, "manifest unknown");
    }
);

as_root!(
    /// A blob changed in the registry's storage is refused by its digest,
    /// and nothing is stored under that digest, nor its layer: once with
    /// bytes that still decompress to the right tar (another gzip MTIME),
    /// once with bytes that no longer decompress.
    a_blob_damaged_in_the_registry_is_refused_by_digest_and_not_stored,
    {
        let BaseInRegistry {
            registry,
            image,
            name,
            ..
        } = base_in_registry("damaged");
        for (damaged, at) in [(0, 4), (1, image.layers[1].blob.len() / 2)] {
            let store = Scratch::new(&format!("store-damaged-{damaged}"));
            let blob = &image.blobs()[damaged];
            let data = registry.blob_data(blob);
            let mut bytes = image.layers[damaged].blob.clone();
            bytes[at] ^= 0xff;
            std::fs::write(&data, &bytes).unwrap();

            let output = pull(&store, &[&name]);
            assert_eq!(code(&output), 1, "stderr: {}", stderr(&output));
            let error = stderr(&output);
            assert!(
                error.contains(&format!("blob {blob} does not match its content")),
                "{error}"
            );
            assert!(!store.join("blobs/sha256").join(blob.hex()).exists());
            let diff_id = image.layers[damaged].diff_id.hex();
            assert!(!names(&store, "layers").iter().any(|n| n.contains(diff_id)));
            assert_eq!(names(&store, "tmp"), Vec::<String>::new());
            assert_eq!(names(&store, "images"), Vec::<String>::new());
            assert_eq!(tags(&store), json!({}));
            std::fs::write(&data, &image.layers[damaged].blob).unwrap();
        }
    }
);

as_root!(
    /// Two pulls of one image at once: both succeed, and the store ends
    /// with one copy of each layer and nothing half-written.
    two_concurrent_pulls_of_one_image_leave_one_copy_of_each_layer,
    {
        let registry = Registry::start("concurrent");
        let layout = Layout::new("concurrent");
        let layers = (0..4)
            .map(|n| {
                let path = format!("srv/noise{n}.bin");
                layer(&[("srv/", b""), (&path, &noise(4 << 20, n))], n % 2 == 1)
            })
            .collect();
        let image = layout.image(&Platform::host().architecture, layers);
        layout.name(&[("v1", &image.descriptor)]);
        registry.push(&layout.dir, "v1", "lab/big:v1", &[]);
        let store = Scratch::new("store-concurrent");
        let name = format!("{}/lab/big:v1", registry.host());
        let pulls: Vec<Child> = (0..2)
            .map(|_| {
                lab(&store, &["pull", &name])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in pulls {
            assert_success(&child.wait_with_output().unwrap());
        }
        assert_eq!(names(&store, "layers"), hexes(&image.diff_ids()));
        assert_eq!(names(&store, "tmp"), Vec::<String>::new());
        assert_eq!(tags(&store)[&name], json!(image.config));
        assert_eq!(
            layer_file(&store, &image.layers[3], "srv/noise3.bin"),
            noise(4 << 20, 3)
        );
    }
);

/// The platforms an index offers in the tests: the host's and arm64 (or
/// amd64 on an arm64 host).
fn other_architecture() -> &'static str {
    match Platform::host().architecture.as_str() {
        "amd64" => "arm64",
        _ => "amd64",
    }
}

as_root!(
    /// A two-platform index (pushed with `skopeo copy --all`) gives the
    /// host's image; the index's digest is the one printed and recorded.
    /// An index with no manifest for this machine is refused, naming what
    /// it offers.
    the_platform_of_a_two_platform_index_is_the_hosts,
    {
        let registry = Registry::start("platforms");
        let layout = Layout::new("platforms");
        let host = Platform::host().architecture;
        let image_for = |architecture: &str| {
            let release = format!("built for {architecture}\n");
            let files: [(&str, &[u8]); 2] = [("etc/", b""), ("etc/arch", release.as_bytes())];
            layout.image(architecture, vec![layer(&files, false)])
        };
        let ours = image_for(&host);
        let theirs = image_for(other_architecture());
        let (index, index_descriptor) = layout.index(&[&theirs, &ours]);
        let foreign_a = image_for("s390x");
        let foreign_b = image_for("riscv64");
        let (_, foreign_descriptor) = layout.index(&[&foreign_a, &foreign_b]);
        layout.name(&[("multi", &index_descriptor), ("foreign", &foreign_descriptor)]);
        registry.push(&layout.dir, "multi", "lab/multi:v1", &["--all"]);
        registry.push(&layout.dir, "foreign", "lab/foreign:v1", &["--all"]);
        let store = Scratch::new("store-platforms");

        let output = pull(&store, &[&format!("{}/lab/multi:v1", registry.host())]);
        assert_success(&output);
        assert!(stdout(&output).contains(&format!("Digest: {index}\n")), "{}", stdout(&output));
        let record = record(&store, &ours.config);
        assert_eq!(record["manifest"], json!(ours.manifest));
        assert_eq!(
            record["repo_digests"],
            json!([format!("{}/lab/multi@{index}", registry.host())])
        );
        assert_eq!(
            layer_file(&store, &ours.layers[0], "etc/arch"),
            format!("built for {host}\n").as_bytes()
        );
        assert_eq!(names(&store, "images"), vec![format!("{}.json", ours.config.hex())]);

        let foreign = pull(&store, &[&format!("{}/lab/foreign:v1", registry.host())]);
        assert_clean_failure(
            &foreign,
            1,
            &format!("no manifest for linux/{host}"),
        );
        assert!(
            stderr(&foreign).contains("it offers linux/s390x, linux/riscv64"),
            "{}",
            stderr(&foreign)
        );
    }
);

as_root!(
    /// Nothing listens on the port: one error line naming the registry and
    /// the errno, a hint, exit 1.
    a_registry_nobody_listens_on_is_a_clear_error,
    {
        let store = Scratch::new("store-unreachable");
        let output = pull(&store, &[&format!("127.0.0.1:{}/lab/base:v1", free_port())]);
        assert_clean_failure(&output, 1, "cannot reach the registry 127.0.0.1:");
        assert!(stderr(&output).contains("connection refused (ECONNREFUSED)"), "{}", stderr(&output));
    }
);

as_root!(
    /// A registry that wants a bearer token, as Docker Hub does: the 401's
    /// challenge sends pull to the token server with the service and the
    /// scope it names, and the requests go again with the token. A
    /// repository the token does not cover is refused as unauthorized.
    a_registry_that_wants_a_token_gets_one_from_its_token_server,
    {
        let token_dir = Scratch::new("token-server");
        let tokens = TokenServer::start(&token_dir);
        let registry =
            Registry::start_with("token", |_| tokens.registry_config(&token_dir));
        let BaseInRegistry { name, image, registry, .. } = base_in(registry, "token");
        let store = Scratch::new("store-token");

        let output = pull(&store, &["--explain", &name]);
        assert_success(&output);
        assert_eq!(tags(&store)[&name], json!(image.config));
        let explained = stderr(&output);
        for step in [
            "-> 401 Unauthorized".to_string(),
            format!("www-authenticate: Bearer realm=\"http://127.0.0.1:{}/token\"", tokens.port),
            format!(
                "[registry] GET http://127.0.0.1:{}/token?service=lab-registry&scope=repository%3Alab%2Fbase%3Apull\n",
                tokens.port
            ),
        ] {
            assert!(explained.contains(&step), "{step} in:\n{explained}");
        }
        let ours = tokens.ours();
        assert_eq!(ours.len(), 1, "one token for the whole pull: {ours:?}");
        assert!(
            ours[0].starts_with("GET /token?service=lab-registry&scope=repository%3Alab%2Fbase%3Apull "),
            "{ours:?}"
        );

        let other = format!("{}/lab/other:v1", registry.host());
        assert_clean_failure(&pull(&store, &[&other]), 1, "unauthorized");
    }
);

as_root!(
    /// An image pushed as Docker's schema 2 (skopeo converts it): the
    /// registry serves the Docker media types, and pull reads them alike.
    a_docker_schema_2_image_is_pulled_as_an_oci_one_is,
    {
        let registry = Registry::start("schema2");
        let layout = Layout::new("schema2");
        let gzip_only = vec![
            layer(&[("etc/", b""), ("etc/lab-release", b"schema 2\n")], false),
            layer(&[("srv/", b""), ("srv/two", b"2\n")], false),
        ];
        let image = layout.image(&Platform::host().architecture, gzip_only);
        layout.name(&[("v1", &image.descriptor)]);
        registry.push(&layout.dir, "v1", "lab/docker:v1", &["--format", "v2s2"]);
        let store = Scratch::new("store-schema2");
        let name = format!("{}/lab/docker:v1", registry.host());

        let output = pull(&store, &["--explain", &name]);
        assert_success(&output);
        assert!(
            stderr(&output).contains(&format!("content-type: {}\n", spec::DOCKER_MANIFEST)),
            "{}",
            stderr(&output)
        );
        let printed = stdout(&output);
        let manifest = printed
            .lines()
            .find_map(|line| line.strip_prefix("Digest: "))
            .unwrap_or_else(|| panic!("no Digest line in {printed}"));
        let record = store.join("images").read_dir().unwrap().next().unwrap().unwrap().path();
        let record: Value = serde_json::from_slice(&std::fs::read(record).unwrap()).unwrap();
        assert_eq!(record["layers"], json!(image.diff_ids()));
        assert_eq!(record["repo_digests"], json!([format!("{}/lab/docker@{manifest}", registry.host())]));
        for blob in record["layer_blobs"].as_array().unwrap() {
            assert_eq!(blob["mediaType"], spec::DOCKER_LAYER_GZIP);
        }
        assert_eq!(
            layer_file(&store, &image.layers[0], "etc/lab-release"),
            b"schema 2\n"
        );
    }
);

as_root!(
    /// For the book: one pull of a one-layer image, with `--explain`, so
    /// that every request the distribution API needs is shown in order
    /// (one layer: no downloads interleave). The port is shown as 5000,
    /// digests as `<id>`.
    a_pull_explained_for_the_book,
    {
        let registry = Registry::start("book");
        let layout = Layout::new("book");
        let release = layer(&[("etc/", b""), ("etc/lab-release", b"container-lab hello\n")], false);
        let image = layout.image(&Platform::host().architecture, vec![release]);
        layout.name(&[("v1", &image.descriptor)]);
        registry.push(&layout.dir, "v1", "lab/hello:v1", &[]);
        let store = Scratch::new("store-book");
        let name = format!("{}/lab/hello:v1", registry.host());
        let output = pull(&store, &["--explain", &name]);
        assert_success(&output);
        let text = transcript(&format!("ch08-images pull --explain {name}"), &output, None);
        let text = mask(&text.replace(&registry.host(), "127.0.0.1:5000"));
        snapshot!("ch08_pull_explain", text);
    }
);
