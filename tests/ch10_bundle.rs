//! `lab bundle`, for real: an image of the lab's store becomes an OCI
//! bundle, and runc, which knows nothing of the lab, runs it.
//!
//! Each test has an image store of its own (CONTAINER_LAB_STORAGE, a
//! scratch directory) and a state directory of its own for runc
//! (`runc --root`), so it neither sees nor touches anyone else's images
//! or containers; containers are deleted when the test ends, passed or
//! failed.

mod common;
use common::store::Store;
use common::*;
use container_lab::image::digest::Digest;
use container_lab::image::layer::ApplyOptions;
use container_lab::image::reference::Reference;
use container_lab::image::spec::{ImageConfig, RootFs, RunConfig};
use container_lab::image::store::{ImageRecord, ImageStore};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// True when the test may go on: root, and runc installed.
fn ready(test: &str) -> bool {
    if !require_root(test) {
        return false;
    }
    require_tool("runc", "runc");
    true
}

/// `lab bundle ARGS...` with the test's image store.
fn lab_bundle(store: &Store, args: &[&str]) -> Output {
    Command::new(bin("lab"))
        .arg("bundle")
        .args(args)
        .env("CONTAINER_LAB_STORAGE", store.root())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// runc with a state directory of the test's own (`runc --root`); the
/// containers it ran are deleted when dropped.
struct Runc {
    root: PathBuf,
    containers: Vec<String>,
}

impl Runc {
    fn new(root: PathBuf) -> Runc {
        Runc {
            root,
            containers: Vec::new(),
        }
    }

    /// `runc run --bundle DIR ID`, without a terminal: the container's
    /// output, and runc's exit code, which is the container's.
    fn run(&mut self, bundle: &Path) -> Output {
        let id = format!("t10-{}-{}", std::process::id(), self.containers.len());
        self.containers.push(id.clone());
        Command::new("runc")
            .arg("--root")
            .arg(&self.root)
            .arg("run")
            .arg("--bundle")
            .arg(bundle)
            .arg(&id)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

impl Drop for Runc {
    fn drop(&mut self) {
        for id in &self.containers {
            let _ = Command::new("runc")
                .arg("--root")
                .arg(&self.root)
                .args(["delete", "--force", id])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// A layer tar: (path, content) files; names may be whiteouts.
fn layer(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, content) in entries {
        let mut header = tar::Header::new_ustar();
        header.set_mode(0o644);
        header.set_mtime(1_700_000_000);
        header.set_size(content.len() as u64);
        builder
            .append_data(&mut header, path, content.as_bytes())
            .unwrap();
    }
    builder.into_inner().unwrap()
}

/// A second image on `base`: one more layer, and a config of its own.
fn derived_image(store: &ImageStore, base: &str, tag: &str, top: &[u8], run: RunConfig) {
    let base = store.find(base).unwrap();
    let options = ApplyOptions { privileged: true };
    let top = store.unpack_layer(top, None, &options).unwrap().diff_id;
    let mut layers = base.layers.clone();
    layers.push(top);
    let config = ImageConfig {
        architecture: "amd64".into(),
        os: "linux".into(),
        config: Some(run),
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids: layers.clone(),
        },
        ..ImageConfig::default()
    };
    let bytes = serde_json::to_vec(&config).unwrap();
    let id: Digest = store.put_blob_bytes(&bytes, None).unwrap();
    let record = ImageRecord {
        id,
        layers,
        manifest: None,
        layer_blobs: vec![],
        repo_digests: vec![],
        size: 0,
        added: 1,
    };
    store
        .add_image(&record, &[Reference::parse(tag).unwrap()])
        .unwrap();
}

#[test]
fn runc_runs_a_bundle_made_from_an_image_and_its_exit_code_comes_through() {
    if !ready("runc_runs_a_bundle") {
        return;
    }
    let store = Store::new("runc_runs_a_bundle");
    store.ok(["import", rootfs().to_str().unwrap(), "lab/base:v1"]);
    // On top: a file added, one of the base's deleted, and a config that
    // says what to run, as whom, where, with what environment.
    derived_image(
        &ImageStore::at(&store.root()).unwrap(),
        "lab/base:v1",
        "lab/derived:v1",
        &layer(&[
            ("etc/motd", "made by lab bundle\n"),
            ("etc/.wh.container-lab-rootfs", ""),
        ]),
        RunConfig {
            entrypoint: Some(vec!["/bin/sh".into(), "-c".into()]),
            cmd: Some(vec![
                "echo \"$GREETING\"; id -u; id -g; pwd; hostname; cat motd; \
                 test -e container-lab-rootfs && echo still there || echo deleted; exit 7"
                    .into(),
            ]),
            env: Some(vec!["GREETING=hello from the image".into()]),
            working_dir: Some("/etc".into()),
            user: Some("nobody".into()),
            ..RunConfig::default()
        },
    );

    let bundle = store.dir.join("bundle");
    let made = lab_bundle(&store, &["lab/derived:v1", bundle.to_str().unwrap()]);
    assert_eq!(code(&made), 0, "lab bundle: {}", stderr(&made));
    assert!(stderr(&made).contains("runc run -b"), "{}", stderr(&made));
    assert!(bundle.join("rootfs/bin/sh").exists());
    assert!(!bundle.join("rootfs/etc/container-lab-rootfs").exists());

    let mut runc = Runc::new(store.dir.join("runc"));
    let ran = runc.run(&bundle);
    assert_eq!(
        stdout(&ran),
        "hello from the image\n65534\n65534\n/etc\nch10\nmade by lab bundle\ndeleted\n",
        "runc's stderr: {}",
        stderr(&ran)
    );
    assert_eq!(code(&ran), 7, "runc's stderr: {}", stderr(&ran));

    // The same DIR again: refused, and what is there is left as it was.
    let config = std::fs::read(bundle.join("config.json")).unwrap();
    let again = lab_bundle(&store, &["lab/derived:v1", bundle.to_str().unwrap()]);
    assert_clean_failure(&again, 125, "is not empty");
    assert_eq!(std::fs::read(bundle.join("config.json")).unwrap(), config);
    assert!(bundle.join("rootfs/etc/motd").exists());
}

#[test]
fn a_bundle_that_cannot_be_made_leaves_nothing_behind() {
    if !ready("bundle_leaves_nothing") {
        return;
    }
    let store = Store::new("bundle_leaves_nothing");
    store.ok(["import", rootfs().to_str().unwrap(), "lab/nocmd:v1"]);
    let bundle = store.dir.join("never");
    let bundle_arg = bundle.to_str().unwrap();
    // No such image, an image with nothing to run: refused before
    // anything is made.
    let made = lab_bundle(&store, &["lab/nosuch:v1", bundle_arg]);
    assert_clean_failure(&made, 1, "no such image");
    assert!(!bundle.exists());
    let made = lab_bundle(&store, &["lab/nocmd:v1", bundle_arg]);
    assert_clean_failure(&made, 125, "neither Entrypoint nor Cmd");
    assert!(!bundle.exists());
    // A user the image's /etc/passwd does not name is found out only
    // once the rootfs is copied: the half-made bundle is removed,
    // directory and all, and an empty directory of the user's is emptied
    // again but kept.
    derived_image(
        &ImageStore::at(&store.root()).unwrap(),
        "lab/nocmd:v1",
        "lab/nosuchuser:v1",
        &layer(&[("etc/motd", "never seen\n")]),
        RunConfig {
            cmd: Some(vec!["id".into()]),
            user: Some("nosuchuser".into()),
            ..RunConfig::default()
        },
    );
    let made = lab_bundle(&store, &["lab/nosuchuser:v1", bundle_arg]);
    assert_clean_failure(&made, 125, "nosuchuser");
    assert!(!bundle.exists());
    std::fs::create_dir(&bundle).unwrap();
    let made = lab_bundle(&store, &["lab/nosuchuser:v1", bundle_arg]);
    assert_clean_failure(&made, 125, "nosuchuser");
    assert_eq!(std::fs::read_dir(&bundle).unwrap().count(), 0);
}

#[test]
fn a_rootless_bundle_runs_under_runc_as_an_ordinary_user() {
    if !ready("rootless_bundle") {
        return;
    }
    let user = TestUser::new("b");
    // The rootfs as a tar the user can read (the lab's own has a 0700
    // /root), imported into the user's own store.
    let tar_path = user.home.join("rootfs.tar");
    let mut tar = tar::Builder::new(std::fs::File::create(&tar_path).unwrap());
    tar.follow_symlinks(false);
    tar.append_dir_all(".", rootfs()).unwrap();
    tar.into_inner().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&tar_path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let as_user = |program: PathBuf, args: &[&std::ffi::OsStr]| {
        user.command(program)
            .args(args)
            .env("CONTAINER_LAB_STORAGE", user.home.join("store"))
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let script = "id -u; read inside outside count < /proc/self/uid_map; echo $outside; exit 5";
    let imported = as_user(
        public_bin("ch08-images"),
        &[
            "import".as_ref(),
            tar_path.as_os_str(),
            "lab/base:v1".as_ref(),
            "--cmd".as_ref(),
            format!("/bin/sh -c '{script}'").as_ref(),
        ],
    );
    assert_eq!(code(&imported), 0, "import: {}", stderr(&imported));
    let bundle = user.home.join("bundle");
    let made = as_user(
        public_bin("lab"),
        &[
            "bundle".as_ref(),
            "--rootless".as_ref(),
            "lab/base:v1".as_ref(),
            bundle.as_os_str(),
        ],
    );
    assert_eq!(code(&made), 0, "lab bundle --rootless: {}", stderr(&made));
    // Root inside, the user outside: the user namespace of config.json.
    let ran = as_user(
        PathBuf::from("runc"),
        &[
            "--root".as_ref(),
            user.home.join("runc").as_os_str(),
            "run".as_ref(),
            "--bundle".as_ref(),
            bundle.as_os_str(),
            format!("t10-{}-rootless", std::process::id()).as_ref(),
        ],
    );
    assert_eq!(
        stdout(&ran),
        format!("0\n{}\n", user.uid),
        "runc's stderr: {}",
        stderr(&ran)
    );
    assert_eq!(code(&ran), 5, "runc's stderr: {}", stderr(&ran));
}
