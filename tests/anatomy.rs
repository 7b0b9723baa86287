//! `lab anatomy`, for real, as root: it starts a chapter 09 container, reads
//! its layers from the host side and removes it. What it finds must be
//! what the book shows (book/src/generated/ch09-anatomy.json, drawn as
//! ch09-anatomy.svg), what chapter 09 claims, and nothing may be left.

mod common;
use common::*;
use container_lab::lab::anatomy::Anatomy;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// One real run of `lab anatomy --book DIR` for the whole file.
struct Run {
    /// The lab's pid, which names its container and image store.
    pid: u32,
    stderr: String,
    anatomy: Anatomy,
    svg: String,
}

fn run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| {
        let book = Scratch::new("anatomy-book");
        let child = Command::new(bin("lab"))
            .arg("anatomy")
            .arg("--rootfs")
            .arg(rootfs())
            .arg("--book")
            .arg(&*book)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start lab anatomy");
        let pid = child.id();
        let output = child.wait_with_output().unwrap();
        assert_eq!(code(&output), 0, "lab anatomy failed:\n{}", stderr(&output));
        let json = std::fs::read_to_string(book.join("ch09-anatomy.json")).unwrap();
        Run {
            pid,
            stderr: stderr(&output),
            anatomy: serde_json::from_str(&json).expect("ch09-anatomy.json is an Anatomy"),
            svg: std::fs::read_to_string(book.join("ch09-anatomy.svg")).unwrap(),
        }
    })
}

/// The facts of a real container today are the book's. The cgroup
/// directories are the host's layout (v1 hierarchies or one v2 directory):
/// on a host of the other layout only they may differ.
#[test]
fn the_books_anatomy_is_what_ch09_does_today() {
    if !require_root("the_books_anatomy_is_what_ch09_does_today") {
        return;
    }
    let run = run();
    assert_eq!(run.svg, run.anatomy.svg(), "--book drew another picture");
    let generated = Path::new(env!("CARGO_MANIFEST_DIR")).join("book/src/generated");
    let json = std::fs::read_to_string(generated.join("ch09-anatomy.json")).unwrap();
    let mut book: Anatomy = serde_json::from_str(&json).unwrap();
    if book.cgroups.version != run.anatomy.cgroups.version {
        book.cgroups.version = run.anatomy.cgroups.version;
        book.cgroups.dirs = run.anatomy.cgroups.dirs.clone();
    }
    assert_eq!(
        book, run.anatomy,
        "book/src/generated/ch09-anatomy.json is stale: run book/update-generated.sh"
    );
}

/// What chapters 02-09 say a chapter 09 container is, checked on the
/// facts themselves.
#[test]
fn a_ch09_container_is_what_the_chapters_built() {
    if !require_root("a_ch09_container_is_what_the_chapters_built") {
        return;
    }
    let anatomy = &run().anatomy;
    let new = anatomy.namespace_kinds(true);
    for kind in ["mnt", "uts", "ipc", "pid", "net", "user"] {
        assert!(new.contains(&kind), "{kind} namespace not new: {new:?}");
    }
    // No chapter makes a cgroup namespace (chapter 06's exercise), and the
    // clocks are the host's.
    assert_eq!(anatomy.namespace_kinds(false), ["cgroup", "time"]);

    let process = &anatomy.process;
    assert_eq!(process.command, ["/bin/sleep", "86400"]);
    assert_eq!(process.pid_inside, 2, "PID 1 is the lab's init");
    assert_eq!(process.uid_inside, 0);
    assert_ne!(process.uid_host, 0, "root inside is not the host's root");
    let map = &anatomy.user_namespace.uid_map;
    assert!(
        map.iter()
            .any(|r| r.inside == 0 && r.outside == process.uid_host)
    );
    assert_eq!((process.seccomp, process.no_new_privs), (2, true));
    let twelve = container_lab::runtime::caps::CapSet::container_default().names();
    assert_eq!(process.effective, twelve);
    assert_eq!(process.bounding, twelve);

    let rootfs = &anatomy.rootfs;
    assert_eq!(rootfs.fstype, "overlay");
    assert_eq!((rootfs.lower_layers, rootfs.upper), (1, true));
    assert!(rootfs.masked.iter().any(|p| p == "/sys/firmware"));
    assert!(rootfs.read_only.iter().any(|p| p == "/proc/sys"));
    assert!(rootfs.devices.iter().any(|p| p == "/dev/null"));
    let sys = rootfs.mounts.iter().find(|m| m.point == "/sys").unwrap();
    assert!(sys.read_only);

    let limits = &anatomy.cgroups.limits;
    assert_eq!(limits.memory_bytes, Some(64 << 20));
    assert_eq!(limits.pids, Some(64));
    assert_eq!(
        (limits.cpu_quota_us, limits.cpu_period_us),
        (Some(50_000), Some(100_000))
    );
    for dir in &anatomy.cgroups.dirs {
        assert_eq!(dir.path, "container-lab-<container>");
    }
}

/// The container and its image store are gone, and the run said so.
#[test]
fn nothing_is_left_behind() {
    if !require_root("nothing_is_left_behind") {
        return;
    }
    let run = run();
    let name = format!("anatomy-{}", run.pid);
    for said in [
        "importing the rootfs",
        &format!("started {name}"),
        &format!("removed {name}"),
    ] {
        assert!(run.stderr.contains(said), "no {said:?} in:\n{}", run.stderr);
    }
    let output = Command::new(bin("ch09-hardening"))
        .args(["ps", "-a"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        !stdout(&output).contains(&name),
        "{name} is still there:\n{}",
        stdout(&output)
    );
    let store = Path::new("/run/container-lab").join(&name);
    assert!(!store.exists(), "{} is still there", store.display());
}
