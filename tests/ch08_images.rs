//! ch08-images, for real: containers whose root is an image's layers
//! stacked by overlayfs under a writable layer of their own.
//!
//! Each test has an image store of its own (CONTAINER_LAB_STORAGE, a
//! scratch directory) and builds its images there through the lab's own
//! store (layer tars made here, unpacked by `ImageStore::unpack_layer`),
//! so these tests need neither a registry nor `load`. Containers are named
//! `t8-PID-...` and removed when the test ends, passed or failed.

mod common;
use common::*;
use container_lab::image::digest::Digest;
use container_lab::image::layer::ApplyOptions;
use container_lab::image::reference::Reference;
use container_lab::image::spec::{ImageConfig, RootFs, RunConfig};
use container_lab::image::store::{ImageRecord, ImageStore};
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const CH: &str = "ch08-images";

/// One test's image store and containers, removed when dropped.
struct Images {
    dir: Scratch,
    store: ImageStore,
    names: std::sync::Mutex<Vec<String>>,
}

impl Images {
    fn new(test: &str) -> Option<Images> {
        if !require_root(test) {
            return None;
        }
        let dir = Scratch::new(&format!("store-{test}"));
        let store = ImageStore::at(&dir).unwrap();
        Some(Images {
            dir,
            store,
            names: Default::default(),
        })
    }

    fn name(&self, what: &str) -> String {
        let name = format!("t8-{}-{what}", std::process::id());
        self.names.lock().unwrap().push(name.clone());
        name
    }

    fn command(&self) -> Command {
        let mut command = Command::new(bin(CH));
        command
            .env("CONTAINER_LAB_STORAGE", &*self.dir)
            .stdin(Stdio::null());
        command
    }

    fn ch08(&self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap()
    }

    /// One step of a session for the book: `args` run, shown as `shown`,
    /// which must succeed.
    fn step(&self, shown: &str, args: &[&str]) -> String {
        let output = self.ch08(args);
        assert_eq!(code(&output), 0, "{shown}: {}", stderr(&output));
        transcript(shown, &output, None)
    }

    /// A session step: `run --net none --name NAME lab/base:v1 /bin/sh -c
    /// SCRIPT`, shown with the container named `web`.
    fn shell_step(&self, name: &str, script: &str) -> String {
        self.step(
            &format!("ch08-images run --net none --name web lab/base:v1 /bin/sh -c '{script}'"),
            &[
                "run",
                "--net",
                "none",
                "--name",
                name,
                "lab/base:v1",
                "/bin/sh",
                "-c",
                script,
            ],
        )
    }

    /// `run --net none ARGS...`, attached.
    fn run(&self, args: &[&str]) -> Output {
        let mut words = vec!["run", "--net", "none"];
        words.extend_from_slice(args);
        self.ch08(&words)
    }

    /// An image of these layer tars (bottom first) and this config, tagged.
    fn image(&self, tag: &str, layers: &[Vec<u8>], config: RunConfig) -> ImageRecord {
        let options = ApplyOptions { privileged: true };
        let diff_ids: Vec<Digest> = layers
            .iter()
            .map(|tar| {
                self.store
                    .unpack_layer(&tar[..], None, &options)
                    .unwrap()
                    .diff_id
            })
            .collect();
        let config = ImageConfig {
            created: Some("2026-12-01T00:00:00Z".into()),
            architecture: "amd64".into(),
            os: "linux".into(),
            config: Some(config),
            rootfs: RootFs {
                kind: "layers".into(),
                diff_ids: diff_ids.clone(),
            },
            ..ImageConfig::default()
        };
        let bytes = serde_json::to_vec(&config).unwrap();
        let id = self.store.put_blob_bytes(&bytes, None).unwrap();
        let record = ImageRecord {
            id,
            layers: diff_ids,
            manifest: None,
            layer_blobs: vec![],
            repo_digests: vec![],
            size: 0,
            added: 1,
        };
        self.store
            .add_image(&record, &[Reference::parse(tag).unwrap()])
            .unwrap();
        record
    }
}

impl Drop for Images {
    fn drop(&mut self) {
        for name in self.names.lock().unwrap().iter() {
            let _ = self.command().args(["rm", "-f", name]).output();
        }
    }
}

/// The lab's rootfs as one layer tar, as `docker export | docker import`
/// would make it.
fn base_layer() -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    builder.mode(tar::HeaderMode::Complete);
    builder.append_dir_all(".", rootfs()).unwrap();
    builder.into_inner().unwrap()
}

/// A layer tar of (path, content) files, (path, "") entries ending in `/`
/// being directories; names may be whiteouts.
fn layer(entries: &[(&str, &str)], owner: u64) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, content) in entries {
        let mut header = tar::Header::new_ustar();
        header.set_uid(owner);
        header.set_gid(owner);
        header.set_mtime(1_700_000_000);
        if path.ends_with('/') {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o755);
            header.set_size(0);
            builder
                .append_data(&mut header, path, std::io::empty())
                .unwrap();
        } else {
            header.set_mode(0o644);
            header.set_size(content.len() as u64);
            builder
                .append_data(&mut header, path, content.as_bytes())
                .unwrap();
        }
    }
    builder.into_inner().unwrap()
}

fn shell(script: &str) -> RunConfig {
    RunConfig {
        cmd: Some(vec!["/bin/sh".into(), "-c".into(), script.into()]),
        ..RunConfig::default()
    }
}

/// Every file under `dir`: its content's digest, mode and owner, keyed by
/// path. Two snapshots are equal only if nothing in the tree changed.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (String, u32, u32, u32)> {
    let mut found = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).unwrap().flatten() {
            let meta = entry.path().symlink_metadata().unwrap();
            let content = match meta.is_file() {
                true => Digest::of(&std::fs::read(entry.path()).unwrap()).to_string(),
                false => String::new(),
            };
            if meta.is_dir() {
                pending.push(entry.path());
            }
            let key = entry.path().strip_prefix(dir).unwrap().to_path_buf();
            found.insert(key, (content, meta.mode(), meta.uid(), meta.gid()));
        }
    }
    found
}

#[test]
fn run_follows_the_images_config_env_cmd_workdir_and_user() {
    let Some(lab) = Images::new("config") else {
        return;
    };
    let mut config = shell("echo \"$GREETING from $(pwd) as $(id -u):$(id -g)\"");
    config.env = Some(vec![
        "PATH=/usr/local/bin:/usr/bin:/bin".into(),
        "GREETING=hello".into(),
    ]);
    config.working_dir = Some("/tmp".into());
    config.user = Some("1000:1001".into());
    lab.image("lab/config:v1", &[base_layer()], config);
    let output = lab.run(&["--rm", "lab/config:v1"]);
    assert_eq!(
        stdout(&output),
        "hello from /tmp as 1000:1001\n",
        "{}",
        stderr(&output)
    );
    // -e, -w, --user and a COMMAND win over the image's.
    let output = lab.run(&[
        "--rm",
        "-e",
        "GREETING=bye",
        "-w",
        "/",
        "--user",
        "0",
        "lab/config:v1",
        "/bin/sh",
        "-c",
        "echo $GREETING $(pwd) $(id -u)",
    ]);
    assert_eq!(stdout(&output), "bye / 0\n", "{}", stderr(&output));
}

#[test]
fn an_image_missing_from_the_store_is_a_runtime_failure_with_a_hint() {
    let Some(lab) = Images::new("missing") else {
        return;
    };
    let output = lab.run(&["--rm", "lab/nothing:here"]);
    assert_clean_failure(&output, 125, "unable to find image lab/nothing:here");
    assert!(
        stderr(&output).contains("pull, load or import"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn writes_land_in_the_containers_upper_layer_and_the_image_stays_as_it_was() {
    let Some(lab) = Images::new("cow") else {
        return;
    };
    let top = layer(
        &[
            ("etc/motd", "from the image\n"),
            ("srv/", ""),
            ("srv/data", "kept\n"),
        ],
        0,
    );
    let image = lab.image("lab/cow:v1", &[base_layer(), top], shell("true"));
    let before: Vec<_> = image
        .layers
        .iter()
        .map(|l| snapshot(&lab.store.layer_dir(l)))
        .collect();
    let name = lab.name("cow");
    let script = "echo changed > /etc/motd && rm /srv/data && rm -r /home && mkdir /new && echo x > /new/file && cat /etc/motd";
    let output = lab.run(&["--name", &name, "lab/cow:v1", "/bin/sh", "-c", script]);
    assert_eq!(stdout(&output), "changed\n", "{}", stderr(&output));
    let after: Vec<_> = image
        .layers
        .iter()
        .map(|l| snapshot(&lab.store.layer_dir(l)))
        .collect();
    assert!(
        before == after,
        "an image layer changed under a container's writes"
    );
    // What changed is in the upper layer: the new file, the copied-up
    // one, and whiteouts (character devices 0/0) for the deletions.
    let record = container_record(&lab, &name);
    let upper = PathBuf::from(record["Layer"].as_str().unwrap()).join("upper");
    assert_eq!(
        std::fs::read_to_string(upper.join("etc/motd")).unwrap(),
        "changed\n"
    );
    for deleted in ["srv/data", "home"] {
        let meta = upper.join(deleted).symlink_metadata().unwrap();
        assert!(
            std::os::unix::fs::FileTypeExt::is_char_device(&meta.file_type()) && meta.rdev() == 0,
            "{deleted} is no whiteout"
        );
    }
    let diff = stdout(&lab.ch08(&["diff", &name]));
    for line in [
        "C /etc/motd",
        "D /srv/data",
        "D /home",
        "A /new",
        "A /new/file",
    ] {
        assert!(
            diff.lines().any(|l| l == line),
            "diff lacks {line:?}:\n{diff}"
        );
    }
    // A second container of the image sees the image, not the first one's changes.
    let output = lab.run(&[
        "--rm",
        "lab/cow:v1",
        "/bin/sh",
        "-c",
        "cat /etc/motd /srv/data; ls -d /home",
    ]);
    assert_eq!(
        stdout(&output),
        "from the image\nkept\n/home\n",
        "{}",
        stderr(&output)
    );
    // rm takes the writable layer with it.
    assert_eq!(code(&lab.ch08(&["rm", &name])), 0);
    assert!(
        !upper.exists(),
        "{} outlived its container",
        upper.display()
    );
}

/// The container's JSON record, as `inspect` prints it.
fn container_record(lab: &Images, name: &str) -> serde_json::Value {
    let output = lab.ch08(&["inspect", name]);
    let all: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", stderr(&output)));
    all[0].clone()
}

#[test]
fn the_layers_appear_owned_by_the_containers_ids_and_stay_the_hosts_on_disk() {
    let Some(lab) = Images::new("owners") else {
        return;
    };
    let top = layer(&[("srv/", ""), ("srv/mine", "x")], 1234);
    let image = lab.image("lab/owners:v1", &[base_layer(), top], shell("true"));
    let name = lab.name("owners");
    let output = lab.run(&[
        "--name",
        &name,
        "lab/owners:v1",
        "/bin/sh",
        "-c",
        "stat -c '%u %n' /etc/passwd /srv/mine; touch /etc/new; stat -c '%u' /etc/new",
    ]);
    assert_eq!(
        stdout(&output),
        "0 /etc/passwd\n1234 /srv/mine\n0\n",
        "{}",
        stderr(&output)
    );
    // On disk the layer keeps the image's own ids; the upper layer holds
    // the container root's host uid (ch05's range), not 0.
    let top_dir = lab.store.layer_dir(&image.layers[1]);
    assert_eq!(
        std::fs::metadata(top_dir.join("srv/mine")).unwrap().uid(),
        1234
    );
    let record = container_record(&lab, &name);
    let upper = PathBuf::from(record["Layer"].as_str().unwrap()).join("upper");
    let host_uid = std::fs::metadata(upper.join("etc/new")).unwrap().uid();
    assert!(
        host_uid >= 65536,
        "the container's root wrote as host uid {host_uid}"
    );
}

#[test]
fn later_layers_delete_files_and_hide_directories_with_whiteouts() {
    let Some(lab) = Images::new("whiteouts") else {
        return;
    };
    let middle = layer(
        &[
            ("srv/", ""),
            ("srv/gone", "1"),
            ("srv/kept", "2"),
            ("opt/", ""),
            ("opt/old", "3"),
        ],
        0,
    );
    let top = layer(
        &[
            ("srv/.wh.gone", ""),
            ("opt/.wh..wh..opq", ""),
            ("opt/new", "4"),
        ],
        0,
    );
    lab.image(
        "lab/wh:v1",
        &[base_layer(), middle, top],
        shell("ls /srv /opt"),
    );
    let output = lab.run(&["--rm", "lab/wh:v1"]);
    assert_eq!(
        stdout(&output),
        "/opt:\nnew\n\n/srv:\nkept\n",
        "{}",
        stderr(&output)
    );
}

#[test]
fn images_that_share_a_layer_store_it_once_and_rmi_keeps_what_the_other_uses() {
    let Some(lab) = Images::new("shared") else {
        return;
    };
    let base = base_layer();
    let a = lab.image(
        "lab/a:v1",
        &[base.clone(), layer(&[("a", "a")], 0)],
        shell("cat /a"),
    );
    let b = lab.image(
        "lab/b:v1",
        &[base, layer(&[("b", "b")], 0)],
        shell("cat /b"),
    );
    assert_eq!(a.layers[0], b.layers[0], "same tar, same diffID");
    let layers: Vec<_> = std::fs::read_dir(lab.dir.join("layers"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(layers.len(), 3, "one base and two tops: {layers:?}");
    // rmi refuses while a container (even an exited one) uses the image.
    let name = lab.name("user-of-a");
    assert_eq!(code(&lab.run(&["--name", &name, "lab/a:v1"])), 0);
    assert_clean_failure(&lab.ch08(&["rmi", "lab/a:v1"]), 1, "is in use by container");
    assert_eq!(code(&lab.ch08(&["rm", &name])), 0);
    let output = lab.ch08(&["rmi", "lab/a:v1"]);
    assert!(
        stdout(&output).contains(&format!("Deleted: {}", a.id)),
        "{}{}",
        stdout(&output),
        stderr(&output)
    );
    assert!(
        lab.store.has_layer(&b.layers[0]),
        "the shared base went with a"
    );
    assert!(!lab.store.has_layer(&a.layers[1]), "a's own layer stayed");
    let output = lab.run(&["--rm", "lab/b:v1"]);
    assert_eq!(stdout(&output), "b", "{}", stderr(&output));
}

#[test]
fn run_rm_leaves_no_layer_mount_or_mount_point_behind() {
    let Some(lab) = Images::new("leftovers") else {
        return;
    };
    lab.image("lab/left:v1", &[base_layer()], shell("true"));
    let overlays = || {
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter(|l| l.contains(" overlay "))
            .count()
    };
    let before = overlays();
    assert_eq!(code(&lab.run(&["--rm", "lab/left:v1"])), 0);
    assert_eq!(
        overlays(),
        before,
        "an overlay is left in the host's mount table"
    );
    assert_eq!(
        std::fs::read_dir(lab.dir.join("containers"))
            .unwrap()
            .count(),
        0,
        "a writable layer outlived --rm"
    );
    let points: Vec<_> = std::fs::read_dir("/run/container-lab")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("layers-") || n.starts_with("rootfs-"))
        .filter(|n| {
            n.rsplit('-')
                .next()
                .and_then(|p| p.parse::<i32>().ok())
                .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
        })
        .collect();
    assert!(points.is_empty(), "mount points of ended runs: {points:?}");
}

#[test]
fn lab_clean_takes_the_writable_layer_of_a_container_whose_monitor_was_killed() {
    let Some(lab) = Images::new("clean") else {
        return;
    };
    lab.image("lab/clean:v1", &[base_layer()], shell("sleep 60"));
    let name = lab.name("clean");
    let output = lab.run(&["-d", "--name", &name, "lab/clean:v1"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let record = container_record(&lab, &name);
    let layer = PathBuf::from(record["Layer"].as_str().unwrap());
    let monitor = record["MonitorPid"].as_i64().unwrap() as i32;
    assert!(layer.join("upper").is_dir());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(monitor),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let dead = (0..200).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        stdout(&lab.ch08(&["ps", "-a"]))
            .lines()
            .any(|l| l.contains(&name) && l.contains("Dead"))
    });
    assert!(dead, "the container did not die with its monitor");
    // A SIGKILLed monitor may stay a zombie for a moment; lab clean takes
    // only what processes that are gone made.
    let reaped = (0..200).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        !Path::new(&format!("/proc/{monitor}")).exists()
    });
    assert!(reaped, "the killed monitor {monitor} was not reaped");
    let clean = run("lab", ["clean"]);
    assert_eq!(code(&clean), 0, "{}{}", stdout(&clean), stderr(&clean));
    assert!(
        !layer.exists(),
        "lab clean left {}:\n{}",
        layer.display(),
        stdout(&clean)
    );
    let points = Path::new(container_lab::runtime::RUN_DIR).join(format!("layers-{monitor}"));
    assert!(!points.exists(), "lab clean left {}", points.display());
}

#[test]
fn help_teaches_the_image_verbs() {
    let output = run(CH, ["--help"]);
    assert_eq!(code(&output), 0);
    snapshot!("ch08_help", stdout(&output));
}

#[test]
fn run_help_takes_an_image_and_every_flag_of_chapter_07() {
    let output = run(CH, ["run", "--help"]);
    assert_eq!(code(&output), 0);
    snapshot!("ch08_run_help", stdout(&output));
}

/// A short session for the book: import the lab's rootfs, list it, run a
/// container that changes files, `diff` it, show that the image did not
/// change, remove both. Ids, times and sizes (which depend on the host's
/// tools in the rootfs) are masked; the container's unique name is `web`.
#[test]
fn a_session_for_the_book() {
    let Some(lab) = Images::new("session") else {
        return;
    };
    let name = lab.name("web");
    let rootfs = rootfs().to_str().unwrap();
    let mut session = String::new();
    let step = |shown: &str, args: &[&str]| lab.step(shown, args);
    session += &step(
        "ch08-images import ./rootfs lab/base:v1",
        &["import", rootfs, "lab/base:v1"],
    );
    session += &step(
        "ch08-images import ./rootfs lab/copy:v1",
        &["import", rootfs, "lab/copy:v1"],
    );
    session += &step("ch08-images images", &["images"]);
    // Two images, one layer: the same tar has the same diffID.
    let layers: Vec<String> = std::fs::read_dir(lab.dir.join("layers"))
        .unwrap()
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(layers.len(), 1, "{layers:?}");
    session += &format!(
        "$ ls /var/lib/container-lab/storage/layers\n{}\n",
        layers.join("\n")
    );
    let script = "echo web > /etc/hostname; rm /etc/hosts; mkdir /data; echo 42 > /data/answer; cat /etc/hostname";
    session += &lab.shell_step(&name, script);
    session += &step("ch08-images diff web", &["diff", &name]);
    let look = "wc -c < /etc/hostname; ls /etc/hosts; test -e /data || echo no /data";
    session += &step(
        &format!("ch08-images run --rm --net none lab/base:v1 /bin/sh -c '{look}'"),
        &[
            "run",
            "--rm",
            "--net",
            "none",
            "lab/base:v1",
            "/bin/sh",
            "-c",
            look,
        ],
    );
    session += &step("ch08-images rm web", &["rm", &name]);
    session += &step(
        "ch08-images history --no-trunc lab/base:v1",
        &["history", "--no-trunc", "lab/base:v1"],
    );
    session += &step("ch08-images rmi lab/base:v1", &["rmi", "lab/base:v1"]);
    session += &step("ch08-images rmi lab/copy:v1", &["rmi", "lab/copy:v1"]);
    let session = mask_sizes(&mask(
        &session.replace(&name, "web").replace(rootfs, "./rootfs"),
    ));
    let session = one_gap_between_columns(&session);
    snapshot!("ch08_session", session);
}

/// Sizes as `images` and `history` print them (`18.0MB`, `512B`) become
/// `<size>`: they depend on the host tools the rootfs holds.
/// Columns are as wide as their widest value, which masking changed (and
/// the rootfs's path, which depends on where the checkout is): one gap of
/// three spaces between columns, whatever the machine.
fn one_gap_between_columns(text: &str) -> String {
    text.lines()
        .map(|line| {
            let cells: Vec<&str> = line
                .split("  ")
                .map(str::trim)
                .filter(|cell| !cell.is_empty())
                .collect();
            cells.join("   ") + "\n"
        })
        .collect()
}

fn mask_sizes(text: &str) -> String {
    text.split_inclusive('\n')
        .map(|line| {
            line.split_inclusive(' ')
                .map(|word| {
                    let bare = word.trim_end();
                    let number = bare.trim_end_matches(['B', 'k', 'M', 'G']);
                    let sized =
                        bare.ends_with('B') && !number.is_empty() && number.parse::<f64>().is_ok();
                    match sized {
                        true => word.replacen(bare, "<size>", 1),
                        false => word.to_string(),
                    }
                })
                .collect::<String>()
        })
        .collect()
}

/// A docker-archive (`docker save`'s format) of these layer tars, bottom
/// first, tagged `tag`: what `load` reads.
fn docker_archive(tag: &str, layers: &[Vec<u8>], config: RunConfig) -> Vec<u8> {
    let diff_ids: Vec<Digest> = layers.iter().map(|tar| Digest::of(tar)).collect();
    let config = ImageConfig {
        created: Some("2026-12-01T00:00:00Z".into()),
        architecture: "amd64".into(),
        os: "linux".into(),
        config: Some(config),
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids,
        },
        ..ImageConfig::default()
    };
    let config = serde_json::to_vec(&config).unwrap();
    let names: Vec<String> = (0..layers.len())
        .map(|n| format!("{n}/layer.tar"))
        .collect();
    let manifest =
        serde_json::json!([{ "Config": "config.json", "RepoTags": [tag], "Layers": names }]);
    let mut builder = tar::Builder::new(Vec::new());
    let mut add = |name: &str, bytes: &[u8]| {
        let mut header = tar::Header::new_ustar();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        builder.append_data(&mut header, name, bytes).unwrap();
    };
    for (name, tar) in names.iter().zip(layers) {
        add(name, tar);
    }
    add("config.json", &config);
    add("manifest.json", manifest.to_string().as_bytes());
    builder.into_inner().unwrap()
}

/// Without root: the user's own store (under $HOME), layers unpacked as
/// the user's files, the stack mounted by the root of the container's
/// user namespace with `userxattr`; whiteouts still delete, writes still
/// land in the container's own layer.
#[test]
fn rootless_runs_a_layered_image_from_the_users_own_store() {
    if !require_root("rootless_runs_a_layered_image_from_the_users_own_store") {
        return;
    }
    require_tool("newuidmap", "uidmap");
    let user = TestUser::new("i");
    let middle = layer(
        &[
            ("srv/", ""),
            ("srv/gone", "1"),
            ("srv/kept", "2"),
            ("opt/", ""),
            ("opt/old", "3"),
        ],
        0,
    );
    let top = layer(
        &[
            ("srv/.wh.gone", ""),
            ("opt/.wh..wh..opq", ""),
            ("opt/new", "4"),
        ],
        0,
    );
    let archive = user.home.join("image.tar");
    std::fs::write(
        &archive,
        docker_archive(
            "lab/rootless:v1",
            &[base_layer(), middle, top],
            shell("ls /srv /opt; id -u; echo x > /srv/mine"),
        ),
    )
    .unwrap();
    let runtime_dir = user.home.join("run");
    std::fs::create_dir_all(&runtime_dir).unwrap();
    nix::unistd::chown(&runtime_dir, Some(user.uid.into()), Some(user.gid.into())).unwrap();
    let ch08 = |args: &[&str]| {
        user.command(public_bin(CH))
            .env("XDG_RUNTIME_DIR", &runtime_dir)
            .env_remove("CONTAINER_LAB_STORAGE")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let loaded = ch08(&["load", "-i", archive.to_str().unwrap()]);
    assert_eq!(code(&loaded), 0, "{}", stderr(&loaded));
    let store = user.home.join(".local/share/container-lab");
    assert!(
        store.join("layers").is_dir(),
        "no store under the user's home"
    );
    let name = format!("t8-{}-rootless", std::process::id());
    let output = ch08(&["run", "--net", "none", "--name", &name, "lab/rootless:v1"]);
    assert_eq!(
        stdout(&output),
        "/opt:\nnew\n\n/srv:\nkept\n0\n",
        "{}",
        stderr(&output)
    );
    let upper = store.join("containers");
    let written: Vec<_> = std::fs::read_dir(&upper)
        .unwrap()
        .flatten()
        .map(|e| e.path().join("upper/srv/mine"))
        .collect();
    assert_eq!(written.len(), 1, "{written:?}");
    assert_eq!(
        std::fs::metadata(&written[0]).unwrap().uid(),
        user.uid,
        "the container's root is the user"
    );
    // commit without root: the user's files are the container's root's,
    // and overlayfs' user.overlay.* bookkeeping becomes whiteouts.
    let committed = ch08(&["commit", &name, "lab/rootless:two"]);
    assert_eq!(code(&committed), 0, "{}", stderr(&committed));
    let second = format!("{name}-2");
    let changed = ch08(&[
        "run",
        "--net",
        "none",
        "--name",
        &second,
        "lab/rootless:two",
        "/bin/sh",
        "-c",
        "rm /srv/kept; rm -rf /opt; mkdir /opt; echo 5 > /opt/five",
    ]);
    assert_eq!(code(&changed), 0, "{}", stderr(&changed));
    let committed = ch08(&["commit", &second, "lab/rootless:three"]);
    assert_eq!(code(&committed), 0, "{}", stderr(&committed));
    let output = ch08(&[
        "run",
        "--rm",
        "--net",
        "none",
        "lab/rootless:three",
        "/bin/sh",
        "-c",
        "ls /srv /opt; stat -c %u /srv/mine",
    ]);
    assert_eq!(
        stdout(&output),
        "/opt:\nfive\n\n/srv:\nmine\n0\n",
        "{}",
        stderr(&output)
    );
    assert_eq!(code(&ch08(&["rm", &second])), 0);
    let removed = ch08(&["rm", &name]);
    assert_eq!(code(&removed), 0, "{}", stderr(&removed));
    assert!(!written[0].exists(), "rm left the writable layer");
}

/// A layer of one special file: `kind` Char (with its device numbers) or
/// Fifo, at `path`.
fn special_layer(path: &str, kind: tar::EntryType, major: u32, minor: u32) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(kind);
    header.set_mode(0o644);
    header.set_size(0);
    header.set_device_major(major).unwrap();
    header.set_device_minor(minor).unwrap();
    builder
        .append_data(&mut header, path, std::io::empty())
        .unwrap();
    builder.into_inner().unwrap()
}

/// The attack review's first finding: an image whose /etc/passwd is
/// /dev/zero (or a FIFO) and whose User is a name made `run`, as the
/// host's root, read the device without end (gigabytes of memory) or hang
/// on the FIFO. Only a regular file is read, and at most 1 MiB of it.
#[test]
fn an_image_whose_passwd_is_a_device_or_a_fifo_is_refused_not_read() {
    let Some(lab) = Images::new("passwd-node") else {
        return;
    };
    let mut config = shell("true");
    config.user = Some("bob".into());
    let zero = special_layer("etc/passwd", tar::EntryType::Char, 1, 5);
    let fifo = special_layer("etc/passwd", tar::EntryType::Fifo, 0, 0);
    lab.image("lab/zero:v1", &[base_layer(), zero], config.clone());
    lab.image("lab/fifo:v1", &[base_layer(), fifo], config);
    for image in ["lab/zero:v1", "lab/fifo:v1"] {
        let started = std::time::Instant::now();
        let mut child = lab
            .command()
            .args(["run", "--rm", "--net", "none", image])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let ended = (0..300).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(100));
            child.try_wait().unwrap().is_some()
        });
        if !ended {
            let _ = child.kill();
        }
        let output = child.wait_with_output().unwrap();
        assert!(
            ended,
            "{image}: run still reading its /etc/passwd after {:?}",
            started.elapsed()
        );
        assert_clean_failure(&output, 125, "no user \"bob\"");
    }
}

/// The attack review's second finding: a tar whose first header declares
/// a 3 GiB GNU long name made the tar crate allocate it. The header is
/// refused before a byte of the name is read.
#[test]
fn a_huge_long_name_record_is_refused_before_it_is_buffered() {
    let Some(lab) = Images::new("longname") else {
        return;
    };
    let mut header = [0u8; 512];
    header[..13].copy_from_slice(b"././@LongLink");
    header[100..107].copy_from_slice(b"0000644");
    header[124..135].copy_from_slice(format!("{:011o}", 3u64 << 30).as_bytes());
    header[156] = b'L';
    header[257..263].copy_from_slice(b"ustar ");
    header[148..156].copy_from_slice(b"        ");
    let sum: u32 = header.iter().map(|&b| b as u32).sum();
    header[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    let archive = lab.dir.join("longname.tar");
    std::fs::write(&archive, header).unwrap();
    let output = lab.ch08(&["import", archive.to_str().unwrap(), "lab/longname:v1"]);
    assert_clean_failure(&output, 1, "extended header (type L)");
    let partial: Vec<_> = std::fs::read_dir(lab.dir.join("layers"))
        .unwrap()
        .flatten()
        .collect();
    assert!(partial.is_empty(), "{partial:?}");
}

/// The entries of a layer tar: (kind, path, uid, gid, mode, content or
/// link target), in the tar's order.
fn tar_entries(tar: &[u8]) -> Vec<(char, String, u64, u64, u32, String)> {
    let mut archive = tar::Archive::new(tar);
    archive
        .entries()
        .unwrap()
        .map(|entry| {
            let mut entry = entry.unwrap();
            let header = entry.header().clone();
            let kind = match header.entry_type() {
                tar::EntryType::Directory => 'd',
                tar::EntryType::Symlink => 'l',
                tar::EntryType::Link => 'h',
                tar::EntryType::Regular => 'f',
                other => panic!("unexpected entry type {other:?}"),
            };
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            let path = path.trim_end_matches('/').to_string();
            let mut content = String::new();
            match kind {
                'l' | 'h' => {
                    content = entry
                        .link_name()
                        .unwrap()
                        .unwrap()
                        .to_string_lossy()
                        .into_owned()
                }
                _ => {
                    std::io::Read::read_to_string(&mut entry, &mut content).unwrap();
                }
            }
            let (uid, gid) = (header.uid().unwrap(), header.gid().unwrap());
            (kind, path, uid, gid, header.mode().unwrap(), content)
        })
        .collect()
}

/// The image record `ID` of the lab's store, as `image inspect` shows it.
fn image_record(lab: &Images, image: &str) -> serde_json::Value {
    let output = lab.ch08(&["image", "inspect", image]);
    let all: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", stderr(&output)));
    all[0].clone()
}

#[test]
fn commit_stores_exactly_what_the_container_changed_as_one_diff_layer() {
    let Some(lab) = Images::new("commit") else {
        return;
    };
    let base = lab.image(
        "lab/commit-base:v1",
        &[
            base_layer(),
            layer(
                &[
                    ("data/", ""),
                    ("data/a", "A"),
                    ("data/b", "B"),
                    ("etc/gone", "x"),
                    ("keep", "k"),
                ],
                0,
            ),
        ],
        shell("true"),
    );
    let name = lab.name("commit");
    let script = "echo new > /added; echo more >> /keep; rm /etc/gone; \
        rm -rf /data; mkdir /data; echo c > /data/c; \
        mkdir -p /deep/er; echo d > /deep/er/d; chown 1000:1001 /deep/er/d; chmod 4750 /deep/er/d; \
        ln -s /keep /link; ln /added /added2";
    let output = lab.run(&[
        "--name",
        &name,
        "lab/commit-base:v1",
        "/bin/sh",
        "-c",
        script,
    ]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let output = lab.ch08(&["commit", "-m", "by the test", &name, "lab/committed:v1"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let id = stdout(&output).trim().to_string();
    assert!(id.starts_with("sha256:"), "{id}");

    // The new image stacks every layer of the old one, and one more.
    let record = image_record(&lab, "lab/committed:v1");
    let layers: Vec<String> = serde_json::from_value(record["RootFS"]["Layers"].clone()).unwrap();
    let parent: Vec<String> = base.layers.iter().map(ToString::to_string).collect();
    assert_eq!(layers.len(), parent.len() + 1, "{record:#}");
    assert_eq!(layers[..parent.len()], parent[..]);

    // Its tar holds the changes, and only them: the deletion as a
    // whiteout, the replaced directory as opaque, ids as the container's.
    let diff_id = Digest::parse(layers.last().unwrap()).unwrap();
    let blob = lab.dir.join("blobs/sha256").join(diff_id.hex());
    let tar = std::fs::read(&blob).unwrap();
    let mut entries = tar_entries(&tar);
    entries.sort_by(|a, b| a.1.cmp(&b.1));
    let shown: Vec<String> = entries
        .iter()
        .map(|(kind, path, uid, gid, mode, content)| {
            format!("{kind} {path} {uid}:{gid} {mode:o} {content:?}")
        })
        .collect();
    let expected = [
        "f added 0:0 644 \"new\\n\"",
        "h added2 0:0 644 \"added\"",
        "d data 0:0 755 \"\"",
        "f data/.wh..wh..opq 0:0 600 \"\"",
        "f data/c 0:0 644 \"c\\n\"",
        "d deep 0:0 755 \"\"",
        "d deep/er 0:0 755 \"\"",
        "f deep/er/d 1000:1001 4750 \"d\\n\"",
        "d etc 0:0 755 \"\"",
        "f etc/.wh.gone 0:0 600 \"\"",
        "f keep 0:0 644 \"kmore\\n\"",
        "l link 0:0 777 \"/keep\"",
    ];
    assert_eq!(shown, expected, "the layer's entries");
    // Far smaller than the base it sits on.
    let base_blob_size = base_layer().len();
    assert!(
        tar.len() * 100 < base_blob_size,
        "the diff layer is {} bytes, the base {base_blob_size}",
        tar.len()
    );

    // A container of the new image sees the changed tree.
    let check = "cat /added /keep /data/c /deep/er/d; ls /data; test -e /etc/gone && echo GONE-IS-BACK; \
        stat -c '%u:%g %a' /deep/er/d; readlink /link";
    let output = lab.run(&["--rm", "lab/committed:v1", "/bin/sh", "-c", check]);
    assert_eq!(
        stdout(&output),
        "new\nkmore\nc\nd\nc\n1000:1001 4750\n/keep\n",
        "{}",
        stderr(&output)
    );
    // The history says who made the layer.
    let output = lab.ch08(&["history", "--no-trunc", "lab/committed:v1"]);
    assert!(
        stdout(&output).contains("by the test"),
        "{}",
        stdout(&output)
    );
    assert!(
        stdout(&output).contains("echo new > /added"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn commit_freezes_a_running_container_and_leaves_a_paused_one_paused() {
    let Some(lab) = Images::new("commit-pause") else {
        return;
    };
    lab.image("lab/pause-base:v1", &[base_layer()], shell("true"));
    let name = lab.name("pause");
    let output = lab.run(&[
        "-d",
        "--name",
        &name,
        "lab/pause-base:v1",
        "/bin/sh",
        "-c",
        "echo started > /state; while :; do sleep 0.1; done",
    ]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let status = |lab: &Images| container_record(lab, &name)["State"]["Status"].clone();
    for _ in 0..50 {
        if lab.dir.join("containers").exists() && status(&lab) == "running" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // Running: frozen while its layer is read, running again after.
    let output = lab.ch08(&["commit", &name, "lab/paused:one"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(status(&lab), "running");
    // Paused: committed as it is, and still paused after.
    assert_eq!(code(&lab.ch08(&["pause", &name])), 0);
    let output = lab.ch08(&["commit", &name, "lab/paused:two"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(status(&lab), "paused");
    assert_eq!(code(&lab.ch08(&["unpause", &name])), 0);
    let output = lab.run(&["--rm", "lab/paused:two", "cat", "/state"]);
    assert_eq!(stdout(&output), "started\n", "{}", stderr(&output));
}

#[test]
fn commit_of_an_unknown_container_or_to_a_bad_name_writes_nothing() {
    let Some(lab) = Images::new("commit-bad") else {
        return;
    };
    lab.image("lab/bad-base:v1", &[base_layer()], shell("true"));
    let name = lab.name("bad");
    let output = lab.run(&[
        "--name",
        &name,
        "lab/bad-base:v1",
        "/bin/sh",
        "-c",
        "echo x > /x",
    ]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let before = snapshot(&lab.dir);
    let output = lab.ch08(&["commit", "t8-no-such-container", "lab/x:v1"]);
    assert_clean_failure(&output, 1, "t8-no-such-container");
    let output = lab.ch08(&["commit", &name, "Lab/Bad:Tag!"]);
    assert_clean_failure(&output, 1, "Lab/Bad:Tag!");
    assert_eq!(
        snapshot(&lab.dir),
        before,
        "a refused commit changed the store"
    );
    // A name the image format reserves for deletions would delete `keep`
    // in the image: refused, naming the file.
    let reserved = lab.name("reserved");
    let output = lab.run(&[
        "--name",
        &reserved,
        "lab/bad-base:v1",
        "/bin/sh",
        "-c",
        "echo x > /.wh.keep",
    ]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let before = snapshot(&lab.dir);
    let output = lab.ch08(&["commit", &reserved, "lab/reserved:v1"]);
    assert_clean_failure(&output, 1, ".wh.keep");
    let after = snapshot(&lab.dir);
    let changed: Vec<&PathBuf> = after
        .keys()
        .chain(before.keys())
        // The store's lock file is made on its first use, and kept.
        .filter(|path| path.as_os_str() != "lock" && before.get(*path) != after.get(*path))
        .collect();
    assert!(changed.is_empty(), "a refused commit changed {changed:?}");
}

#[test]
fn a_commit_session_for_the_book() {
    let Some(lab) = Images::new("commit-session") else {
        return;
    };
    let name = lab.name("web");
    let rootfs = rootfs().to_str().unwrap();
    let mut session = String::new();
    let step = |shown: &str, args: &[&str]| lab.step(shown, args);
    session += &step(
        "ch08-images import ./rootfs lab/base:v1",
        &["import", rootfs, "lab/base:v1"],
    );
    let script = "echo web > /etc/hostname; rm /etc/nsswitch.conf; rm -rf /home; mkdir /home; echo hi > /home/greeting";
    session += &lab.shell_step(&name, script);
    session += &step("ch08-images diff web", &["diff", &name]);
    let change = r#"CMD ["cat", "/home/greeting"]"#;
    session += &step(
        &format!("ch08-images commit -m 'a greeting' -c '{change}' web lab/greeting:v1"),
        &[
            "commit",
            "-m",
            "a greeting",
            "-c",
            change,
            &name,
            "lab/greeting:v1",
        ],
    );
    session += &step(
        "ch08-images run --rm --net none lab/greeting:v1",
        &["run", "--rm", "--net", "none", "lab/greeting:v1"],
    );
    session += &step(
        "ch08-images history --no-trunc lab/greeting:v1",
        &["history", "--no-trunc", "lab/greeting:v1"],
    );
    // The new layer's tar, as the store keeps it: named by its diffID.
    let record = image_record(&lab, "lab/greeting:v1");
    let layers: Vec<String> = serde_json::from_value(record["RootFS"]["Layers"].clone()).unwrap();
    let top = Digest::parse(layers.last().unwrap()).unwrap();
    let blob = lab.dir.join("blobs/sha256").join(top.hex());
    let listing = Command::new("tar")
        .args(["--numeric-owner", "-tvf", blob.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(code(&listing), 0, "{}", stderr(&listing));
    // The date and time of each entry vary from run to run.
    let entries: String = stdout(&listing)
        .lines()
        .map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let (kept, name) = (&words[..3], &words[5..]);
            format!("{} <date> {}\n", kept.join(" "), name.join(" "))
        })
        .collect();
    session += &format!(
        "$ tar --numeric-owner -tvf /var/lib/container-lab/storage/blobs/sha256/{}\n{entries}",
        top.hex()
    );
    session += &step("ch08-images rm web", &["rm", &name]);
    let session = mask(&session.replace(&name, "web").replace(rootfs, "./rootfs"));
    let session = one_gap_between_columns(&session);
    snapshot!("ch08_commit", mask_sizes(&session));
}
