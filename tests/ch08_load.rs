//! ch08-images' load and import, for real: archives made by buildah, a
//! directory with setuid files, hard links and foreign owners, compressed
//! tars, and hostile archives written byte by byte.
//!
//! Every test has a store of its own (CONTAINER_LAB_STORAGE, podman's
//! --root) in a scratch directory removed when the test ends, passed or
//! failed; buildah gets an isolated storage there too (--root, --runroot,
//! the vfs driver, which mounts nothing). Overlay mounts are made inside
//! `unshare -m`, so the host never sees them.

mod common;
use common::store::Store;
use common::*;
use serde_json::Value;
use std::ffi::OsStr;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// buildah with a storage of its own, under a scratch directory.
struct Buildah {
    dir: Scratch,
}

impl Buildah {
    fn new() -> Buildah {
        require_tool("buildah", "buildah");
        Buildah {
            dir: Scratch::new("buildah"),
        }
    }

    /// buildah on this storage only.
    fn command(&self) -> Command {
        let mut command = Command::new("buildah");
        command
            .arg("--root")
            .arg(self.dir.join("root"))
            .arg("--runroot")
            .arg(self.dir.join("runroot"))
            .args(["--storage-driver", "vfs"]);
        command
    }

    fn run<S: AsRef<OsStr>>(&self, args: impl IntoIterator<Item = S>) -> String {
        let args: Vec<S> = args.into_iter().collect();
        let shown: Vec<String> = args
            .iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .collect();
        let output = self.command().args(&args).output().expect("run buildah");
        assert!(
            output.status.success(),
            "buildah {} failed:\n{}",
            shown.join(" "),
            stderr(&output)
        );
        stdout(&output).trim().to_string()
    }
}

impl Drop for Buildah {
    fn drop(&mut self) {
        // Its working containers, then (with the Scratch) its storage.
        let _ = self.command().args(["rm", "--all"]).output();
    }
}

/// lab/test:v1, two layers, made from scratch without running anything in
/// it (buildah run needs an OCI runtime): layer 1 copies a static busybox
/// and some text files in; layer 2 is a diff of a mounted working
/// container where etc/deleteme was deleted, data/old replaced by a new
/// directory holding only `b`, and etc/added added.
fn build_test_image(buildah: &Buildah) {
    require_tool("busybox", "busybox-static");
    let context = buildah.dir.join("context");
    std::fs::create_dir_all(context.join("etc")).unwrap();
    std::fs::create_dir_all(context.join("data/old")).unwrap();
    let busybox = container_lab::hostinfo::find_in_path("busybox").unwrap();
    std::fs::copy(&busybox, context.join("busybox")).unwrap();
    std::fs::write(context.join("etc/greeting"), "hello\n").unwrap();
    std::fs::write(context.join("etc/deleteme"), "soon gone\n").unwrap();
    std::fs::write(context.join("data/old/a"), "old\n").unwrap();
    let context = context.to_str().unwrap();

    let base = buildah.run(["from", "scratch"]);
    buildah.run(["copy", &base, &format!("{context}/busybox"), "/bin/busybox"]);
    buildah.run(["copy", &base, &format!("{context}/etc"), "/etc"]);
    buildah.run(["copy", &base, &format!("{context}/data"), "/data"]);
    buildah.run(["commit", "-q", &base, "lab/base:v1"]);

    let top = buildah.run(["from", "lab/base:v1"]);
    let mounted = PathBuf::from(buildah.run(["mount", &top]));
    std::fs::remove_file(mounted.join("etc/deleteme")).unwrap();
    std::fs::remove_dir_all(mounted.join("data/old")).unwrap();
    std::fs::create_dir(mounted.join("data/old")).unwrap();
    std::fs::write(mounted.join("data/old/b"), "new\n").unwrap();
    std::fs::write(mounted.join("etc/added"), "added\n").unwrap();
    buildah.run(["umount", &top]);
    buildah.run([
        "config",
        "--cmd",
        "/bin/busybox sh",
        "--env",
        "GREETING=hello",
        "--workingdir",
        "/data",
        &top,
    ]);
    buildah.run(["commit", "-q", &top, "lab/test:v1"]);
}

/// Run a shell script in a mount namespace of its own (private
/// propagation, unshare(1)'s default), so its mounts never reach the host.
fn in_private_mount_namespace(script: &str) -> Output {
    Command::new("unshare")
        .args(["-m", "sh", "-ec", script])
        .output()
        .expect("run unshare")
}

/// The image's layers joined by overlayfs, read-only: what a container of
/// it would see. Returns `find` of the merged tree, and the files' content.
fn merged_view(store: &Store, image: &str) -> String {
    let lower: Vec<String> = store
        .layer_dirs_top_first(image)
        .iter()
        .map(|d| d.display().to_string())
        .collect();
    let target = store.dir.join("merged");
    std::fs::create_dir_all(&target).unwrap();
    let script = format!(
        "mount -t overlay overlay -o ro,lowerdir={} {}\ncd {}\nfind . | sort\ncat etc/greeting etc/added data/old/b",
        lower.join(":"),
        target.display(),
        target.display()
    );
    let output = in_private_mount_namespace(&script);
    assert!(
        output.status.success(),
        "the overlay mount of {image} failed:\n{}",
        stderr(&output)
    );
    stdout(&output)
}

fn check_loaded_test_image(store: &Store, format: &str) {
    let top = &store.layer_dirs_top_first("lab/test:v1")[0];
    let whiteout = std::fs::symlink_metadata(top.join("etc/deleteme"))
        .unwrap_or_else(|e| panic!("{format}: no whiteout for etc/deleteme in the top layer: {e}"));
    assert!(
        whiteout.file_type().is_char_device() && whiteout.rdev() == 0,
        "{format}: etc/deleteme in the top layer is not a 0/0 character device"
    );

    let merged = merged_view(store, "lab/test:v1");
    let listed: Vec<&str> = merged.lines().collect();
    for present in [
        "./bin/busybox",
        "./etc/greeting",
        "./etc/added",
        "./data/old/b",
    ] {
        assert!(
            listed.contains(&present),
            "{format}: {present} missing from\n{merged}"
        );
    }
    for absent in ["./etc/deleteme", "./data/old/a"] {
        assert!(
            !listed.contains(&absent),
            "{format}: {absent} still in\n{merged}"
        );
    }
    let in_old: Vec<&&str> = listed
        .iter()
        .filter(|l| l.starts_with("./data/old/"))
        .collect();
    assert_eq!(in_old, [&"./data/old/b"], "{format}: data/old was replaced");
    assert!(merged.ends_with("hello\nadded\nnew\n"), "{merged}");

    let config = &store.inspect("lab/test:v1")["Config"];
    assert_eq!(
        config["Cmd"],
        serde_json::json!(["/bin/busybox", "sh"]),
        "{format}"
    );
    assert!(
        config["Env"]
            .as_array()
            .unwrap()
            .contains(&Value::from("GREETING=hello")),
        "{format}: {config}"
    );
    assert_eq!(config["WorkingDir"], "/data", "{format}");
}

#[test]
fn load_reads_docker_and_oci_archives_that_buildah_wrote() {
    if !require_root("load_reads_docker_and_oci_archives_that_buildah_wrote") {
        return;
    }
    let buildah = Buildah::new();
    build_test_image(&buildah);
    for format in ["docker-archive", "oci-archive"] {
        let archive = buildah.dir.join(format!("{format}.tar"));
        buildah.run([
            "push".to_string(),
            "-q".into(),
            "lab/test:v1".into(),
            format!("{format}:{}:lab/test:v1", archive.display()),
        ]);
        let store = Store::new(format);
        let loaded = store.ok([OsStr::new("load"), OsStr::new("-i"), archive.as_os_str()]);
        assert!(
            loaded.lines().any(|l| l == "Loaded image: lab/test:v1"),
            "{format}: {loaded}"
        );
        check_loaded_test_image(&store, format);

        // The layers' blobs stay in the store as they came, each named by
        // its digest, so that the image can be saved or pushed unchanged.
        let record = store.root().join("images").join(format!(
            "{}.json",
            store.inspect("lab/test:v1")["Id"]
                .as_str()
                .unwrap()
                .trim_start_matches("sha256:")
        ));
        let record: Value = serde_json::from_slice(&std::fs::read(record).unwrap()).unwrap();
        let blobs = record["layer_blobs"].as_array().unwrap();
        assert_eq!(blobs.len(), 2, "{format}: {record}");
        for blob in blobs {
            let hex = blob["digest"]
                .as_str()
                .unwrap()
                .trim_start_matches("sha256:");
            let path = store.root().join("blobs/sha256").join(hex);
            let size = std::fs::metadata(&path)
                .unwrap_or_else(|e| panic!("{format}: layer blob {hex}: {e}"))
                .len();
            assert_eq!(Value::from(size), blob["size"], "{format}");
        }
        assert_eq!(
            record["manifest"].is_string(),
            format == "oci-archive",
            "{format}: {record}"
        );
        assert!(store.names_in("tmp").is_empty(), "{format}: staging left");
    }

    // The same archives as an OCI layout directory, and gzip-compressed.
    let layout = buildah.dir.join("oci-layout");
    std::fs::create_dir_all(&layout).unwrap();
    let unpacked = Command::new("tar")
        .arg("-C")
        .arg(&layout)
        .arg("-xf")
        .arg(buildah.dir.join("oci-archive.tar"))
        .status()
        .unwrap();
    assert!(unpacked.success(), "tar -xf oci-archive.tar");
    let compressed = Command::new("gzip")
        .arg("-k")
        .arg(buildah.dir.join("docker-archive.tar"))
        .status()
        .unwrap();
    assert!(compressed.success(), "gzip -k docker-archive.tar");
    for (format, input) in [
        ("oci-layout", layout),
        (
            "docker-archive.tar.gz",
            buildah.dir.join("docker-archive.tar.gz"),
        ),
    ] {
        let store = Store::new(format);
        store.ok([OsStr::new("load"), OsStr::new("-i"), input.as_os_str()]);
        check_loaded_test_image(&store, format);
    }
}

#[test]
fn load_refuses_an_archive_whose_layer_was_altered() {
    if !require_root("load_refuses_an_archive_whose_layer_was_altered") {
        return;
    }
    // A docker-archive whose layer is named by a digest its bytes do not
    // have: refused, and nothing is left in the store.
    let scratch = Scratch::new("altered");
    let layer = tar_of(&[(b"etc/hostname".as_slice(), Kind::File(b"x\n"))]);
    let wrong = "0".repeat(64);
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["sha256:{wrong}"]}}}}"#
    );
    let manifest =
        format!(r#"[{{"Config":"config.json","RepoTags":["lab/x:1"],"Layers":["{wrong}.tar"]}}]"#);
    let archive = tar_of(&[
        (format!("{wrong}.tar").as_bytes(), Kind::File(&layer)),
        (b"config.json", Kind::File(config.as_bytes())),
        (b"manifest.json", Kind::File(manifest.as_bytes())),
    ]);
    let path = scratch.join("altered.tar");
    std::fs::write(&path, archive).unwrap();
    let store = Store::new("altered");
    let output = store.run([OsStr::new("load"), OsStr::new("-i"), path.as_os_str()]);
    assert_clean_failure(&output, 1, "does not match");
    store.assert_empty("a refused load");

    // Not an archive at all: the known formats are named.
    std::fs::write(&path, "just some text\n").unwrap();
    let output = store.run([OsStr::new("load"), OsStr::new("-i"), path.as_os_str()]);
    assert_clean_failure(&output, 1, "not an archive of a known format");
    assert!(
        stderr(&output).contains("docker-archive"),
        "{}",
        stderr(&output)
    );
}

/// A small tree with what a root filesystem has and a naive copy loses.
fn make_tree(root: &Path) {
    use std::os::unix::fs::symlink;
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::create_dir_all(root.join("readonly")).unwrap();
    std::fs::write(root.join("bin/su"), "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(root.join("bin/su"), PermissionsExt::from_mode(0o4755)).unwrap();
    symlink("su", root.join("bin/su-link")).unwrap();
    symlink("/etc/passwd", root.join("bin/absolute-link")).unwrap();
    std::fs::write(root.join("bin/one"), "linked\n").unwrap();
    std::fs::hard_link(root.join("bin/one"), root.join("bin/two")).unwrap();
    std::fs::write(root.join("owned"), "by 1234\n").unwrap();
    std::os::unix::fs::chown(root.join("owned"), Some(1234), Some(1234)).unwrap();
    std::fs::write(root.join("readonly/inside"), "in a 0555 dir\n").unwrap();
    std::fs::set_permissions(root.join("readonly"), PermissionsExt::from_mode(0o555)).unwrap();
}

fn check_tree(layer: &Path, with_hard_link: bool) {
    let meta = |name: &str| {
        std::fs::symlink_metadata(layer.join(name))
            .unwrap_or_else(|e| panic!("{name} missing from the layer: {e}"))
    };
    assert_eq!(meta("bin/su").mode() & 0o7777, 0o4755, "setuid kept");
    assert_eq!(
        std::fs::read_link(layer.join("bin/su-link")).unwrap(),
        Path::new("su")
    );
    assert_eq!(
        std::fs::read_link(layer.join("bin/absolute-link")).unwrap(),
        Path::new("/etc/passwd")
    );
    assert_eq!((meta("owned").uid(), meta("owned").gid()), (1234, 1234));
    assert_eq!(meta("readonly").mode() & 0o7777, 0o555);
    assert_eq!(
        std::fs::read_to_string(layer.join("readonly/inside")).unwrap(),
        "in a 0555 dir\n"
    );
    if with_hard_link {
        assert_eq!(
            meta("bin/one").ino(),
            meta("bin/two").ino(),
            "hard link kept"
        );
    }
}

#[test]
fn import_keeps_owners_modes_links_of_a_directory() {
    if !require_root("import_keeps_owners_modes_links_of_a_directory") {
        return;
    }
    let scratch = Scratch::new("import-dir");
    let tree = scratch.join("tree");
    make_tree(&tree);
    let store = Store::new("import-dir");
    let id = store.ok([
        OsStr::new("import"),
        tree.as_os_str(),
        OsStr::new("lab/tree:1"),
        OsStr::new("-m"),
        OsStr::new("a test tree"),
        OsStr::new("--cmd"),
        OsStr::new("/bin/sh -c 'echo hi'"),
    ]);
    let inspected = store.inspect("lab/tree:1");
    assert_eq!(inspected["Id"].as_str().unwrap(), id.trim());
    assert_eq!(
        inspected["Config"]["Cmd"],
        serde_json::json!(["/bin/sh", "-c", "echo hi"])
    );
    let layers = store.layer_dirs_top_first("lab/tree:1");
    assert_eq!(layers.len(), 1);
    check_tree(&layers[0], true);
    let history = store.ok(["history", "--no-trunc", "lab/tree:1"]);
    assert!(history.contains("a test tree"), "{history}");
}

#[test]
fn import_reads_gzip_and_zstd_tars() {
    if !require_root("import_reads_gzip_and_zstd_tars") {
        return;
    }
    let scratch = Scratch::new("import-compressed");
    let tree = scratch.join("tree");
    make_tree(&tree);
    for (name, flag) in [("tree.tar.gz", "--gzip"), ("tree.tar.zst", "--zstd")] {
        let archive = scratch.join(name);
        let status = Command::new("tar")
            .arg("-C")
            .arg(&tree)
            .args([flag, "-cf"])
            .arg(&archive)
            .arg(".")
            .status()
            .unwrap();
        assert!(status.success(), "tar {flag} -cf {name}");
        let store = Store::new(name);
        store.ok([
            OsStr::new("import"),
            archive.as_os_str(),
            OsStr::new("lab/tree:1"),
        ]);
        check_tree(&store.layer_dirs_top_first("lab/tree:1")[0], true);
        // The blob kept is the file as it was, compressed.
        let hex = sha256_hex(&archive);
        assert!(
            store.names_in("blobs/sha256").contains(&hex),
            "{name}: its blob {hex} is not in the store"
        );
    }
}

fn sha256_hex(path: &Path) -> String {
    let output = Command::new("sha256sum").arg(path).output().unwrap();
    stdout(&output)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn import_of_the_labs_rootfs_keeps_owners_and_modes() {
    if !require_root("import_of_the_labs_rootfs_keeps_owners_and_modes") {
        return;
    }
    let rootfs = rootfs();
    let store = Store::new("import-rootfs");
    store.ok([
        OsStr::new("import"),
        rootfs.as_os_str(),
        OsStr::new("lab/rootfs:1"),
    ]);
    let layer = &store.layer_dirs_top_first("lab/rootfs:1")[0];
    // Every entry of the rootfs is in the layer, with its type, mode and owner.
    let mut pending = vec![PathBuf::new()];
    let mut checked = 0;
    while let Some(relative) = pending.pop() {
        for entry in std::fs::read_dir(rootfs.join(&relative)).unwrap().flatten() {
            let name = relative.join(entry.file_name());
            let original = std::fs::symlink_metadata(rootfs.join(&name)).unwrap();
            if original.file_type().is_socket() {
                continue;
            }
            let copy = std::fs::symlink_metadata(layer.join(&name))
                .unwrap_or_else(|e| panic!("{} missing from the layer: {e}", name.display()));
            assert_eq!(
                (copy.mode(), copy.uid(), copy.gid()),
                (original.mode(), original.uid(), original.gid()),
                "{}",
                name.display()
            );
            if original.is_file() {
                assert_eq!(copy.len(), original.len(), "{}", name.display());
            }
            if original.is_dir() {
                pending.push(name);
            }
            checked += 1;
        }
    }
    assert!(checked > 10, "the rootfs has only {checked} entries");
}

// ---- hostile archives, written byte by byte ----

enum Kind<'a> {
    File(&'a [u8]),
    Symlink(&'a [u8]),
    HardLink(&'a [u8]),
    /// A regular file whose header claims this many bytes (none follow).
    Claims(u64),
}

/// One ustar header, its fields set directly: the tar crate's set_path
/// refuses `..`, which is the point here. Layout as POSIX pax(1) "ustar
/// Interchange Format" gives it.
fn header(name: &[u8], kind: &Kind) -> [u8; 512] {
    let mut block = [0u8; 512];
    block[..name.len()].copy_from_slice(name);
    let octal = |field: &mut [u8], value: u64| {
        let text = format!("{value:0width$o}\0", width = field.len() - 1);
        field.copy_from_slice(text.as_bytes());
    };
    octal(&mut block[100..108], 0o644);
    octal(&mut block[108..116], 0);
    octal(&mut block[116..124], 0);
    let (size, typeflag, link): (u64, u8, &[u8]) = match kind {
        Kind::File(data) => (data.len() as u64, b'0', b""),
        Kind::Symlink(target) => (0, b'2', target),
        Kind::HardLink(target) => (0, b'1', target),
        Kind::Claims(size) => (*size, b'0', b""),
    };
    if size < 8u64.pow(11) {
        octal(&mut block[124..136], size);
    } else {
        // GNU's base-256 form for sizes the octal field cannot hold: the
        // first byte's high bit set, then the number big-endian.
        block[124] = 0x80;
        block[128..136].copy_from_slice(&size.to_be_bytes());
    }
    octal(&mut block[136..148], 0);
    block[156] = typeflag;
    block[157..157 + link.len()].copy_from_slice(link);
    block[257..263].copy_from_slice(b"ustar\0");
    block[263..265].copy_from_slice(b"00");
    // The checksum: the sum of the header's bytes with its own field
    // taken as eight spaces; six octal digits, NUL, space.
    block[148..156].copy_from_slice(b"        ");
    let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
    block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    block
}

/// The entries of a hand-written tar: name bytes and what each is.
type Entries<'a> = Vec<(&'a [u8], Kind<'a>)>;

fn tar_of(entries: &[(&[u8], Kind)]) -> Vec<u8> {
    let mut tar = Vec::new();
    for (name, kind) in entries {
        tar.extend_from_slice(&header(name, kind));
        if let Kind::File(data) = kind {
            tar.extend_from_slice(data);
            tar.resize(tar.len().div_ceil(512) * 512, 0);
        }
    }
    tar.extend_from_slice(&[0; 1024]);
    tar
}

#[test]
fn import_refuses_hostile_archives_and_leaves_nothing() {
    if !require_root("import_refuses_hostile_archives_and_leaves_nothing") {
        return;
    }
    let scratch = Scratch::new("hostile");
    let outside = scratch.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let absolute = format!("/tmp/container-lab-hostile-{}", std::process::id());
    let passwd_before = std::fs::symlink_metadata("/etc/passwd").unwrap();
    let link_to_outside = outside.display().to_string();
    let cases: Vec<(&str, Entries, &str)> = vec![
        (
            "dot-dot",
            vec![(b"../escape", Kind::File(b"x"))],
            "../escape",
        ),
        (
            "absolute",
            vec![(absolute.as_bytes(), Kind::File(b"x"))],
            &absolute,
        ),
        (
            "through-symlink",
            vec![
                (b"l", Kind::Symlink(link_to_outside.as_bytes())),
                (b"l/file", Kind::File(b"x")),
            ],
            "l/file",
        ),
        (
            "hard-link-absolute",
            vec![(b"h", Kind::HardLink(b"/etc/passwd"))],
            "\"h\"",
        ),
        (
            "hard-link-dot-dot",
            vec![(b"h", Kind::HardLink(b"../x"))],
            "\"h\"",
        ),
        (
            "whiteout-dot-dot",
            vec![(b"../.wh.x", Kind::File(b""))],
            "../.wh.x",
        ),
        (
            "whiteout-of-dot",
            vec![(b".wh..", Kind::File(b""))],
            ".wh..",
        ),
        (
            "absurd-size",
            vec![(b"huge", Kind::Claims(1 << 50))],
            "\"huge\"",
        ),
    ];
    for (case, entries, named) in cases {
        let path = scratch.join(format!("{case}.tar"));
        std::fs::write(&path, tar_of(&entries)).unwrap();
        let store = Store::new(&format!("hostile-{case}"));
        let output = store.run([OsStr::new("import"), path.as_os_str()]);
        assert_clean_failure(&output, 1, named);
        assert!(
            stderr(&output).contains("refused"),
            "{case}: {}",
            stderr(&output)
        );
        store.assert_empty(case);
        // Nothing outside the store either.
        let left: Vec<_> = std::fs::read_dir(&outside).unwrap().flatten().collect();
        assert!(left.is_empty(), "{case}: written outside: {left:?}");
        assert!(!Path::new(&absolute).exists(), "{case}: {absolute} written");
        assert!(
            !store.root().join("escape").exists() && !store.root().join("layers/escape").exists(),
            "{case}: ../escape written"
        );
        let passwd = std::fs::symlink_metadata("/etc/passwd").unwrap();
        assert_eq!(
            (passwd.ino(), passwd.nlink(), passwd.len()),
            (
                passwd_before.ino(),
                passwd_before.nlink(),
                passwd_before.len()
            ),
            "{case}: /etc/passwd changed"
        );
    }
}
