//! ch08-images save and push, for real: what the lab writes must load and
//! run in real tools. Archives go to `podman load` and `skopeo inspect`;
//! pushes go to a real registry (Debian's docker-registry on 127.0.0.1),
//! read back by `skopeo inspect` and `podman pull`, then run by podman.
//!
//! Every test has a store of its own (CONTAINER_LAB_STORAGE) and podman a
//! storage of its own (--root, --runroot, --tmpdir, the vfs driver) in
//! scratch directories removed when the test ends, passed or failed;
//! registries are killed then too. Images are a static busybox and a few
//! files, so a test moves megabytes, not the whole lab rootfs.

mod common;
use common::registry::{FakeServer, Registry, TokenServer, noise};
use common::store::Store;
use common::*;
use container_lab::image::digest::Digest;
use serde_json::Value;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// What every test image's command prints.
const MOTD: &str = "shipped by container-lab\n";

/// A root filesystem: a static busybox as /bin/sh and /bin/cat,
/// /etc/motd, and, when `noise` is not 0, that many bytes in /srv.
fn make_tree(root: &Path, noise_bytes: usize) {
    require_tool("busybox", "busybox-static");
    let busybox = container_lab::hostinfo::find_in_path("busybox").unwrap();
    for dir in ["bin", "etc", "srv", "tmp"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    std::fs::copy(&busybox, root.join("bin/busybox")).unwrap();
    for applet in ["sh", "cat", "echo"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    std::fs::write(root.join("etc/motd"), MOTD).unwrap();
    if noise_bytes > 0 {
        std::fs::write(root.join("srv/noise.bin"), noise(noise_bytes, 17)).unwrap();
    }
}

/// Two images in `store`: `lab/big:v1`, imported from a directory (its
/// blob is its uncompressed tar, over 8 MiB: pushed in chunks), and
/// `lab/small:v1`, imported from a .tar.gz (its blob is gzip, pushed in
/// one PUT). Both print MOTD.
fn two_images(store: &Store, scratch: &Path) {
    let big = scratch.join("big");
    make_tree(&big, 9 << 20);
    let small = scratch.join("small");
    make_tree(&small, 0);
    let gz = scratch.join("small.tar.gz");
    let status = Command::new("tar")
        .arg("-C")
        .arg(&small)
        .arg("-czf")
        .arg(&gz)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success(), "tar -czf {}", gz.display());
    for (source, name) in [(&big, "lab/big:v1"), (&gz, "lab/small:v1")] {
        store.ok([
            OsStr::new("import"),
            source.as_os_str(),
            OsStr::new(name),
            OsStr::new("--cmd"),
            OsStr::new("/bin/cat /etc/motd"),
        ]);
    }
}

/// The image record's diffIDs and layer blob digests.
fn layers_of(store: &Store, image: &str) -> (Vec<String>, Vec<String>) {
    let inspected = store.inspect(image);
    let id = inspected["Id"].as_str().unwrap().to_string();
    let hex = id.strip_prefix("sha256:").unwrap_or(&id);
    let path = store.root().join(format!("images/{hex}.json"));
    let record: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let strings = |value: &Value, field: Option<&str>| -> Vec<String> {
        value
            .as_array()
            .unwrap()
            .iter()
            .map(|v| match field {
                Some(field) => v[field].as_str().unwrap().to_string(),
                None => v.as_str().unwrap().to_string(),
            })
            .collect()
    };
    (
        strings(&record["layers"], None),
        strings(&record["layer_blobs"], Some("digest")),
    )
}

/// podman with a storage of its own under a scratch directory: the vfs
/// driver (plain directories, no overlay mounts), its own runroot and
/// tmpdir, no network for its containers. Its containers are removed,
/// whatever it left mounted is detached, and the directory removed when
/// dropped. The directory is under /tmp, not cargo's target directory:
/// podman refuses a runroot longer than 50 characters.
struct Podman {
    dir: PathBuf,
}

impl Podman {
    fn new(test: &str) -> Podman {
        require_tool("podman", "podman");
        // Debian's podman brings crun, which refuses a host with cgroup v1
        // controllers beside a cgroup2 mount (this lab's test machine):
        // runc runs there.
        require_tool("runc", "runc");
        let dir = std::env::temp_dir().join(format!("lab-podman-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Podman { dir }
    }

    fn command(&self) -> Command {
        let mut command = Command::new("podman");
        command
            .args(["--runtime", "runc"])
            .arg("--root")
            .arg(self.dir.join("root"))
            .arg("--runroot")
            .arg(self.dir.join("run"))
            .arg("--tmpdir")
            .arg(self.dir.join("tmp"))
            .args(["--storage-driver", "vfs", "--events-backend", "none"]);
        command
    }

    fn output<S: AsRef<OsStr>>(&self, args: &[S]) -> Output {
        self.command().args(args).output().expect("run podman")
    }

    /// A podman command that must succeed; its stdout.
    fn ok<S: AsRef<OsStr>>(&self, args: &[S]) -> String {
        let output = self.output(args);
        let shown: Vec<String> = args
            .iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .collect();
        assert!(
            output.status.success(),
            "podman {} failed ({}):\n{}",
            shown.join(" "),
            code(&output),
            stderr(&output)
        );
        stdout(&output)
    }

    /// `podman run --rm IMAGE`: what it printed. The ulimits are this
    /// host's (podman's defaults exceed what the test's limits allow).
    fn run(&self, image: &str) -> String {
        self.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
            image,
        ])
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.output(&["rm", "--all", "--force", "--time", "0"]);
        // Anything still mounted below the scratch directory (a container
        // podman could not remove) is detached, so the directory can go.
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut points: Vec<&str> = mounts
            .lines()
            .filter_map(|line| line.split(' ').nth(4))
            .filter(|point| Path::new(point).starts_with(&self.dir))
            .collect();
        points.sort_by_key(|point| std::cmp::Reverse(point.len()));
        for point in points {
            let _ = nix::mount::umount2(point, nix::mount::MntFlags::MNT_DETACH);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `skopeo inspect [--config] WHAT`, as JSON.
fn skopeo_inspect(args: &[&str]) -> Value {
    require_tool("skopeo", "skopeo");
    let output = Command::new("skopeo")
        .arg("inspect")
        .args(args)
        .output()
        .expect("run skopeo");
    assert!(
        output.status.success(),
        "skopeo inspect {args:?} failed: {}",
        stderr(&output)
    );
    serde_json::from_slice(&output.stdout).expect("skopeo prints JSON")
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// The directory holds these names and nothing else (no partial archive).
fn assert_only(dir: &Path, expected: &[&str]) {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, expected, "in {}", dir.display());
}

as_root!(
    /// docker-archive and oci-archive of two images (a plain layer and a
    /// gzip one): skopeo reads each, its layers are the lab's; podman
    /// loads each and runs both images; the lab loads them back to the
    /// same ids.
    save_writes_archives_that_podman_loads_and_runs,
    {
        let scratch = Scratch::new("save");
        let store = Store::new("save");
        two_images(&store, &scratch);
        let (big_diffs, big_blobs) = layers_of(&store, "lab/big:v1");
        let (small_diffs, small_blobs) = layers_of(&store, "lab/small:v1");
        assert_eq!(big_diffs, big_blobs, "a directory's blob is its tar");
        assert_ne!(small_diffs, small_blobs, "a .tar.gz is kept as gzip");
        let out = scratch.join("out");
        std::fs::create_dir(&out).unwrap();
        for format in ["docker-archive", "oci-archive"] {
            let file = out.join(format!("{format}.tar"));
            let said = store.ok([
                OsStr::new("save"),
                OsStr::new("--format"),
                OsStr::new(format),
                OsStr::new("-o"),
                file.as_os_str(),
                OsStr::new("lab/big:v1"),
                OsStr::new("lab/small:v1"),
            ]);
            assert_eq!(said, "", "save prints nothing");
            let at = |name: &str| format!("{format}:{}:{name}", file.display());
            // docker-archive layers are uncompressed: the manifest's layer
            // digests are the diffIDs. oci-archive keeps the blobs.
            for (name, diffs, blobs) in [
                ("lab/big:v1", &big_diffs, &big_blobs),
                ("lab/small:v1", &small_diffs, &small_blobs),
            ] {
                let inspected = skopeo_inspect(&[&at(name)]);
                let want = match format {
                    "docker-archive" => diffs,
                    _ => blobs,
                };
                assert_eq!(&strings(&inspected["Layers"]), want, "{format} {name}");
                let config = skopeo_inspect(&["--config", &at(name)]);
                assert_eq!(
                    &strings(&config["rootfs"]["diff_ids"]),
                    diffs,
                    "{format} {name}"
                );
            }
            // podman loads every image of a docker-archive, but only an
            // oci-archive of one image (as `podman save` writes only
            // those): one archive per image then.
            let podman = Podman::new(&format[..3]);
            for name in ["lab/big:v1", "lab/small:v1"] {
                let single = out.join(format!("single-{format}.tar"));
                let input = match format {
                    "docker-archive" => &file,
                    _ => {
                        store.ok([
                            OsStr::new("save"),
                            OsStr::new("--format=oci-archive"),
                            OsStr::new("-o"),
                            single.as_os_str(),
                            OsStr::new(name),
                        ]);
                        &single
                    }
                };
                let loaded = podman.ok(&[OsStr::new("load"), OsStr::new("-i"), input.as_os_str()]);
                assert!(loaded.contains(name), "podman load: {loaded}");
                assert_eq!(podman.run(name), MOTD, "podman run {name} ({format})");
                let _ = std::fs::remove_file(&single);
            }
            // And the lab's own load: the same images, by id.
            let again = Store::new(&format!("save-{format}"));
            again.ok([OsStr::new("load"), OsStr::new("-i"), file.as_os_str()]);
            for name in ["lab/big:v1", "lab/small:v1"] {
                assert_eq!(again.inspect(name)["Id"], store.inspect(name)["Id"]);
            }
        }
        assert_only(&out, &["docker-archive.tar", "oci-archive.tar"]);
    }
);

/// The one line of what `push` printed that names a blob (`HEX12: ...`).
fn push_lines(output: &str) -> Vec<&str> {
    output
        .lines()
        .filter(|l| !l.starts_with("The push refers") && !l.contains(": digest: "))
        .collect()
}

as_root!(
    /// push: a chunked layer and a monolithic one, the manifest last;
    /// skopeo inspects it and podman pulls and runs it; a second push
    /// sends no blob; the repo digest is recorded.
    push_uploads_what_the_registry_lacks_and_podman_pulls_it,
    {
        let scratch = Scratch::new("push");
        let store = Store::new("push");
        two_images(&store, &scratch);
        let registry = Registry::start("push");
        let host = registry.host();
        let big = format!("{host}/lab/big:v1");
        let output = store.run(["push", "--explain", "lab/big:v1", &big]);
        assert_eq!(code(&output), 0, "{}", stderr(&output));
        let said = stdout(&output);
        let (big_diffs, _) = layers_of(&store, "lab/big:v1");
        let big_id = store.inspect("lab/big:v1")["Id"]
            .as_str()
            .unwrap()
            .to_string();
        let config = Digest::parse(&big_id).unwrap();
        let layer = Digest::parse(&big_diffs[0]).unwrap();
        assert_eq!(
            push_lines(&said),
            [
                format!("{}: Pushed", layer.short()),
                format!("config {}: Pushed", config.short())
            ],
            "{said}"
        );
        assert!(
            said.starts_with(&format!("The push refers to repository [{host}/lab/big]\n")),
            "{said}"
        );
        let digest = said
            .lines()
            .find_map(|l| l.strip_prefix("v1: digest: "))
            .and_then(|rest| rest.split(' ').next())
            .unwrap_or_else(|| panic!("no digest line: {said}"))
            .to_string();
        // The layer (9 MiB of noise and busybox) went in two PATCHes,
        // closed by a PUT; the config in one PUT; the manifest last.
        assert_eq!(registry.requests("PATCH", "/v2/lab/big/blobs/uploads/"), 2);
        assert_eq!(registry.requests("PUT", "/v2/lab/big/blobs/uploads/"), 2);
        assert_eq!(registry.requests("PUT", "/v2/lab/big/manifests/v1"), 1);
        let explained = stderr(&output);
        let last_put = explained.rfind("PUT ").unwrap();
        assert!(
            explained[last_put..].contains("/manifests/v1"),
            "the manifest goes last:\n{explained}"
        );
        // skopeo sees what was pushed.
        let inspected = skopeo_inspect(&["--tls-verify=false", &format!("docker://{big}")]);
        assert_eq!(inspected["Digest"], digest);
        assert_eq!(strings(&inspected["Layers"]), big_diffs);
        // The repo digest is in the record.
        let record = store.inspect("lab/big:v1");
        assert!(
            record.to_string().contains(&format!("{host}/lab/big@{digest}")),
            "{record}"
        );

        // A second push uploads nothing: HEADs only, then the manifest.
        let posts = registry.requests("POST", "/blobs/uploads/");
        let again = store.run(["push", "--explain", "lab/big:v1", &big]);
        assert_eq!(code(&again), 0, "{}", stderr(&again));
        assert_eq!(
            push_lines(&stdout(&again)),
            [
                format!("{}: Layer already exists", layer.short()),
                format!("config {}: Already exists", config.short())
            ]
        );
        assert!(!stderr(&again).contains("POST "), "{}", stderr(&again));
        assert_eq!(registry.requests("POST", "/blobs/uploads/"), posts);
        assert_eq!(registry.requests("PATCH", "/blobs/uploads/"), 2);

        // The gzip image, by one argument (its own name is the
        // destination): one monolithic PUT, no PATCH.
        let small = format!("{host}/lab/small:v1");
        let small_tree = scratch.join("small.tar.gz");
        store.ok([
            OsStr::new("import"),
            small_tree.as_os_str(),
            OsStr::new(&small),
            OsStr::new("--cmd"),
            OsStr::new("/bin/cat /etc/motd"),
        ]);
        store.ok(["push", "-q", &small]);
        assert_eq!(registry.requests("PATCH", "/v2/lab/small/"), 0);
        assert_eq!(registry.requests("PUT", "/v2/lab/small/blobs/uploads/"), 2);

        // podman pulls both and runs them.
        let podman = Podman::new("push");
        for name in [&big, &small] {
            podman.ok(&["pull", "-q", "--tls-verify=false", name]);
            assert_eq!(podman.run(name), MOTD, "podman run {name}");
        }
    }
);

as_root!(
    /// A layer pulled as "Already exists" has no blob of its own in the
    /// store: save and push take the layer's tar (or another image's
    /// blob) instead.
    a_layer_pulled_as_already_exists_is_saved_and_pushed_all_the_same,
    {
        let scratch = Scratch::new("existing");
        let store = Store::new("existing");
        two_images(&store, &scratch);
        let registry = Registry::start("existing");
        let host = registry.host();
        // The registry gets lab/big compressed by skopeo: a gzip blob the
        // store has never seen, of a layer the store has.
        let archive = scratch.join("big.tar");
        store.ok([
            OsStr::new("save"),
            OsStr::new("--format"),
            OsStr::new("oci-archive"),
            OsStr::new("-o"),
            archive.as_os_str(),
            OsStr::new("lab/big:v1"),
        ]);
        let copied = Command::new("skopeo")
            .args(["--insecure-policy", "copy", "--quiet", "--dest-tls-verify=false"])
            .args(["--dest-compress-format", "gzip", "--dest-compress"])
            .arg(format!("oci-archive:{}:lab/big:v1", archive.display()))
            .arg(format!("docker://{host}/lab/gz:v1"))
            .output()
            .unwrap();
        assert!(copied.status.success(), "skopeo copy: {}", stderr(&copied));
        let pulled = store.ok(["pull", &format!("{host}/lab/gz:v1")]);
        assert!(pulled.contains("Already exists"), "{pulled}");
        let name = format!("{host}/lab/gz:v1");
        let (diffs, blobs) = layers_of(&store, &name);
        assert!(
            !store.names_in("blobs/sha256").contains(&blobs[0][7..].to_string()),
            "the pulled image's own blob is not in the store"
        );
        let file = scratch.join("gz.tar");
        store.ok([
            OsStr::new("save"),
            OsStr::new("-o"),
            file.as_os_str(),
            OsStr::new(&name),
        ]);
        let inspected = skopeo_inspect(&[&format!("docker-archive:{}", file.display())]);
        assert_eq!(strings(&inspected["Layers"]), diffs);
        let again = format!("{host}/lab/again:v1");
        store.ok(["push", &name, &again]);
        let inspected = skopeo_inspect(&["--tls-verify=false", &format!("docker://{again}")]);
        assert_eq!(strings(&inspected["Layers"]), diffs, "the tar went instead");
    }
);

as_root!(
    /// A registry that wants a bearer token: the push's 401 sends it to
    /// the token server for `pull,push` on the repository, and the
    /// uploads go again with the token. A repository the token does not
    /// cover is refused as unauthorized, and nothing is tagged there.
    push_gets_a_push_token_from_the_registrys_token_server,
    {
        let scratch = Scratch::new("token");
        let store = Store::new("token");
        two_images(&store, &scratch);
        let token_dir = Scratch::new("token-server");
        let tokens = TokenServer::start(&token_dir);
        let registry = Registry::start_with("token", |_| tokens.registry_config(&token_dir));
        let host = registry.host();
        // The token grants lab/base only (see TokenServer).
        let base = format!("{host}/lab/base:v1");
        store.ok(["push", "lab/small:v1", &base]);
        let ours = tokens.ours();
        assert!(!ours.is_empty(), "no token asked for");
        assert!(
            ours.iter().all(|r| r.starts_with(
                "GET /token?service=lab-registry&scope=repository%3Alab%2Fbase%3Apull%2Cpush "
            )),
            "{ours:?}"
        );
        assert_eq!(registry.requests("PUT", "/v2/lab/base/manifests/v1"), 1);
        let refused = store.run(["push", "lab/small:v1", &format!("{host}/lab/other:v1")]);
        assert_eq!(code(&refused), 1, "{}", stderr(&refused));
        assert!(stderr(&refused).contains("unauthorized"), "{}", stderr(&refused));
        assert_eq!(registry.requests("PUT", "/v2/lab/other/"), 0);
    }
);

as_root!(
    /// Bad input: one error line each, exit 1, nothing written.
    save_and_push_refuse_bad_input_and_leave_nothing,
    {
        let scratch = Scratch::new("bad");
        let store = Store::new("bad");
        two_images(&store, &scratch);
        let out = scratch.join("out");
        std::fs::create_dir(&out).unwrap();
        let file = out.join("x.tar");
        let save = |file: &Path, image: &str| {
            store.run([
                OsStr::new("save"),
                OsStr::new("-o"),
                file.as_os_str(),
                OsStr::new(image),
            ])
        };
        // An unknown image, alone or after a known one.
        assert_clean_failure(&save(&file, "lab/nope:v1"), 1, "no such image: lab/nope:v1");
        let both = store.run([
            OsStr::new("save"),
            OsStr::new("-o"),
            file.as_os_str(),
            OsStr::new("lab/small:v1"),
            OsStr::new("lab/nope:v1"),
        ]);
        assert_clean_failure(&both, 1, "no such image: lab/nope:v1");
        // A directory that does not exist.
        let nowhere = scratch.join("no/such/dir/x.tar");
        assert_clean_failure(&save(&nowhere, "lab/small:v1"), 1, "does not exist");
        // A layer whose blob is gone: named, and nothing is left behind.
        let (diffs, blobs) = layers_of(&store, "lab/small:v1");
        std::fs::remove_file(store.root().join("blobs/sha256").join(&blobs[0][7..])).unwrap();
        assert_clean_failure(&save(&file, "lab/small:v1"), 1, &diffs[0]);
        // A blob changed on disk: found while the archive is written, and
        // the partial archive is removed.
        let big_blob = store.root().join("blobs/sha256").join(&layers_of(&store, "lab/big:v1").1[0][7..]);
        let mut bytes = std::fs::read(&big_blob).unwrap();
        let last = bytes.len() - 2000;
        bytes[last] ^= 0xff;
        std::fs::write(&big_blob, bytes).unwrap();
        assert_clean_failure(&save(&file, "lab/big:v1"), 1, "should be");
        assert_only(&out, &[]);

        // Plain HTTP off loopback is refused before any connection: run in
        // a network namespace of its own, where nothing can be reached
        // anyway, it fails on the rule, not on the network, and at once.
        let started = Instant::now();
        let refused = Command::new("unshare")
            .args(["--net", "--"])
            .arg(bin("ch08-images"))
            .args(["push", "lab/small:v1", "http://192.0.2.1:5000/lab/small:v1"])
            .env("CONTAINER_LAB_STORAGE", store.root())
            .output()
            .unwrap();
        assert_clean_failure(&refused, 1, "plain HTTP to 192.0.2.1:5000");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_clean_failure(
            &store.run(["push", "lab/nope:v1", "127.0.0.1:1/lab/nope:v1"]),
            1,
            "no such image: lab/nope:v1",
        );
    }
);

as_root!(
    /// The book's push session: an imported image pushed to the test's
    /// registry, then pushed again (every blob already there). The port
    /// is shown as 5000, the tree as ./tree.
    a_push_session_for_the_book,
    {
        let scratch = Scratch::new("session");
        let store = Store::new("session");
        let tree = scratch.join("tree");
        make_tree(&tree, 0);
        let registry = Registry::start("session");
        let host = registry.host();
        let step = |shown: &str, args: &[&OsStr]| {
            let output = store.run(args);
            assert_eq!(code(&output), 0, "{shown}: {}", stderr(&output));
            transcript(shown, &output, None)
        };
        let mut session = step(
            "ch08-images import ./tree lab/motd:v1 --cmd '/bin/cat /etc/motd'",
            &[
                OsStr::new("import"),
                tree.as_os_str(),
                OsStr::new("lab/motd:v1"),
                OsStr::new("--cmd"),
                OsStr::new("/bin/cat /etc/motd"),
            ],
        );
        let destination = format!("{host}/lab/motd:v1");
        let push = [
            OsStr::new("push"),
            OsStr::new("lab/motd:v1"),
            OsStr::new(&destination),
        ];
        let shown = "ch08-images push lab/motd:v1 127.0.0.1:5000/lab/motd:v1";
        session += &step(shown, &push);
        assert!(session.contains(": Pushed"), "{session}");
        session += &step(shown, &push);
        assert!(session.contains(": Layer already exists"), "{session}");
        // The manifest's size depends on the layer's, which holds this
        // host's busybox.
        let session = mask(&session.replace(&host, "127.0.0.1:5000"));
        let session: String = session
            .lines()
            .map(|line| match line.split_once(" size: ") {
                Some((head, _)) => format!("{head} size: <size>\n"),
                None => format!("{line}\n"),
            })
            .collect();
        snapshot!("ch08_push", session);
    }
);

as_root!(
    /// Root's save into a directory others can write: symlinks planted
    /// at the names a temporary could have (`.FILE.partial-PID` for the
    /// next thousands of PIDs, and one partial name of each kind) are
    /// not followed, the file they name is untouched, and the archive is
    /// written all the same.
    save_follows_no_symlink_planted_beside_the_archive,
    {
        let scratch = Scratch::new("planted");
        let store = Store::new("planted");
        two_images(&store, &scratch);
        let out = scratch.join("shared");
        std::fs::create_dir(&out).unwrap();
        let victim = scratch.join("victim");
        std::fs::write(&victim, "root's own\n").unwrap();
        let last: u32 = std::fs::read_to_string("/proc/sys/kernel/ns_last_pid")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let mut planted = vec![];
        for pid in (last + 1..last + 4096).chain([0, 1]) {
            let name = format!(".x.tar.partial-{pid}");
            std::os::unix::fs::symlink(&victim, out.join(&name)).unwrap();
            planted.push(name);
        }
        let file = out.join("x.tar");
        store.ok([
            OsStr::new("save"),
            OsStr::new("-o"),
            file.as_os_str(),
            OsStr::new("lab/small:v1"),
        ]);
        assert!(
            std::fs::read(&victim).unwrap() == b"root's own\n",
            "a planted symlink was followed: the file it names was overwritten"
        );
        let inspected = skopeo_inspect(&[&format!("docker-archive:{}", file.display())]);
        assert_eq!(strings(&inspected["Layers"]), layers_of(&store, "lab/small:v1").0);
        planted.push("x.tar".into());
        planted.sort();
        let expected: Vec<&str> = planted.iter().map(String::as_str).collect();
        assert_only(&out, &expected);
    }
);

as_root!(
    /// A registry (a fake one on 127.0.0.1) that sends the upload to
    /// another origin (another loopback port here, in place of a remote
    /// host) is refused before a byte goes there; and a blob's HEAD
    /// redirected to yet another port (a registry's storage) is followed
    /// without the registry's token.
    push_sends_nothing_and_no_token_off_the_registrys_origin,
    {
        let scratch = Scratch::new("foreign");
        let store = Store::new("foreign");
        two_images(&store, &scratch);
        let refuse = |_: &str| "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n".to_string();
        let foreign = FakeServer::start(refuse);
        let storage =
            FakeServer::start(|_| "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".into());
        let body = r#"{"token":"lab-fake-token"}"#;
        let tokens = FakeServer::start(move |_| {
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
        });
        let (foreign_port, storage_port, token_port) = (foreign.port, storage.port, tokens.port);
        let registry = FakeServer::start(move |head| {
            let first = head.lines().next().unwrap_or("");
            let with_token = head.to_ascii_lowercase().contains("authorization: bearer lab-fake-token");
            let answer = |status: &str, location: String| {
                format!("HTTP/1.1 {status}\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n")
            };
            match () {
                _ if !with_token => format!(
                    "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"http://127.0.0.1:{token_port}/token\",service=\"fake\"\r\nContent-Length: 0\r\n\r\n"
                ),
                _ if first.starts_with("HEAD /v2/lab/x/blobs/") => answer(
                    "307 Temporary Redirect",
                    format!("http://127.0.0.1:{storage_port}/storage/blob"),
                ),
                _ if first.starts_with("POST /v2/lab/x/blobs/uploads/") => answer(
                    "202 Accepted",
                    format!("http://127.0.0.1:{foreign_port}/v2/lab/x/blobs/uploads/u"),
                ),
                _ => refuse(head),
            }
        });
        let pushed = store.run([
            "push",
            "-q",
            "lab/small:v1",
            &format!("127.0.0.1:{}/lab/x:v1", registry.port),
        ]);
        assert_clean_failure(&pushed, 1, "off its origin");
        assert!(
            stderr(&pushed).contains(&format!("127.0.0.1:{foreign_port}")),
            "{}",
            stderr(&pushed)
        );
        assert_eq!(foreign.all(), Vec::<String>::new(), "the foreign port was reached");
        // The token was in use: the HEAD went with it, and its redirect
        // without it.
        let heads = registry.ours();
        assert!(
            heads.iter().any(|h| h.starts_with("HEAD ") && h.contains("lab-fake-token")),
            "{heads:?}"
        );
        let redirected = storage.ours();
        assert!(
            redirected.iter().any(|h| h.starts_with("HEAD /storage/blob ")),
            "{redirected:?}"
        );
        assert!(
            redirected.iter().all(|h| !h.to_ascii_lowercase().contains("authorization")),
            "the token went to another origin: {redirected:?}"
        );
    }
);

/// A container of the lab's, removed when dropped, passed or failed.
struct Container<'a> {
    store: &'a Store,
    name: String,
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        let _ = self.store.run(["rm", "-f", self.name.as_str()]);
    }
}

as_root!(
    /// Issue 17's round trip: a container writes a file and deletes one,
    /// `commit` makes an image of it, `save` writes it, podman loads and
    /// runs it: the file is there, and the deleted one is gone in podman
    /// too (podman read the whiteout the commit wrote).
    a_committed_image_runs_in_podman_with_its_deletions,
    {
        let scratch = Scratch::new("round-trip");
        let store = Store::new("round-trip");
        let tree = scratch.join("tree");
        make_tree(&tree, 0);
        // What `run` mounts its kernel filesystems on.
        for dir in ["proc", "sys", "dev"] {
            std::fs::create_dir_all(tree.join(dir)).unwrap();
        }
        store.ok([
            OsStr::new("import"),
            tree.as_os_str(),
            OsStr::new("lab/rt-base:v1"),
        ]);
        let container = Container {
            store: &store,
            name: format!("t8s-{}-round-trip", std::process::id()),
        };
        store.ok([
            "run",
            "--net",
            "none",
            "--name",
            &container.name,
            "lab/rt-base:v1",
            "/bin/sh",
            "-c",
            "echo written by the container > /etc/greeting; /bin/busybox rm /etc/motd",
        ]);
        let check = r#"CMD ["/bin/sh", "-c", "cat /etc/greeting; test -e /etc/motd && echo motd is back || echo motd is gone"]"#;
        store.ok(["commit", "-c", check, &container.name, "lab/rt:v1"]);
        let archive = scratch.join("rt.tar");
        store.ok([
            OsStr::new("save"),
            OsStr::new("-o"),
            archive.as_os_str(),
            OsStr::new("lab/rt:v1"),
        ]);
        let podman = Podman::new("round-trip");
        podman.ok(&[OsStr::new("load"), OsStr::new("-i"), archive.as_os_str()]);
        assert_eq!(
            podman.run("localhost/lab/rt:v1"),
            "written by the container\nmotd is gone\n"
        );
        drop(container);
    }
);
