//! The rootfs scripts: each builds a root filesystem ch01 can run, safely
//! and repeatably.

mod common;
use common::*;
use std::path::Path;
use std::process::{Command, Output};

fn script(name: &str, args: &[&Path]) -> Output {
    Command::new("bash")
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("rootfs-scripts")
                .join(name),
        )
        .args(args)
        .output()
        .unwrap()
}

fn listing(dir: &Path) -> Vec<String> {
    let output = Command::new("find")
        .arg(dir)
        .arg("-printf")
        .arg("%P %y %m\n")
        .output()
        .unwrap();
    let mut lines: Vec<String> = stdout(&output).lines().map(str::to_string).collect();
    lines.sort();
    lines
}

fn run_sh_in(rootfs: &Path) -> Output {
    run(
        "ch01-chroot",
        [
            rootfs.as_os_str(),
            "/bin/sh".as_ref(),
            "-c".as_ref(),
            "echo works in $(cat /etc/container-lab-rootfs)".as_ref(),
        ],
    )
}

#[test]
fn host_rootfs_builds_runs_and_is_idempotent() {
    if !require_root("host_rootfs_builds_runs_and_is_idempotent") {
        return;
    }
    let scratch = Scratch::new("host");
    let dir = scratch.join("rootfs");
    let first = script("host.sh", &[&dir]);
    assert!(first.status.success(), "{}", stderr(&first));
    let before = listing(&dir);
    let second = script("host.sh", &[&dir]);
    assert!(second.status.success(), "{}", stderr(&second));
    assert_eq!(
        before,
        listing(&dir),
        "a second run must leave the same tree"
    );
    // The dynamic loader came along, so the copied programs really run.
    let output = run_sh_in(&dir);
    assert_eq!(stdout(&output), "works in host\n", "{}", stderr(&output));
}

#[test]
fn busybox_rootfs_builds_and_runs() {
    if !require_root("busybox_rootfs_builds_and_runs") {
        return;
    }
    require_tool("busybox", "busybox-static");
    let scratch = Scratch::new("busybox");
    let dir = scratch.join("rootfs");
    let output = Command::new(bin("lab"))
        .args(["rootfs", "--variant", "busybox"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let output = run_sh_in(&dir);
    assert_eq!(stdout(&output), "works in busybox\n", "{}", stderr(&output));
    // lab-breakout came with its own libraries, though busybox has none.
    let output = run(
        "ch01-chroot",
        [
            dir.as_os_str(),
            "/usr/local/bin/lab-breakout".as_ref(),
            "/bin/true".as_ref(),
        ],
    );
    assert_eq!(code(&output), 0, "{}", stderr(&output));
}

#[test]
fn alpine_refuses_a_tarball_with_the_wrong_checksum() {
    let dir = Scratch::new("alpine");
    let tarball = dir.join("fake.tar.gz");
    std::fs::write(&tarball, "not alpine").unwrap();
    let output = Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("rootfs-scripts/alpine.sh"))
        .arg(dir.join("rootfs"))
        .env("ALPINE_TARBALL", &tarball)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("does not have the pinned SHA-256"),
        "{}",
        stderr(&output)
    );
    assert!(!dir.join("rootfs/bin").exists(), "nothing may be unpacked");
}

#[test]
fn scripts_refuse_bad_targets() {
    let output = script("host.sh", &[]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("usage: host.sh DIR"),
        "{}",
        stderr(&output)
    );
    let output = script("host.sh", &[Path::new("/")]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("refusing"), "{}", stderr(&output));
}

/// A rootfs with an absolute symlink must not make the scripts write into
/// the host through it.
#[test]
fn absolute_symlinks_in_a_rootfs_cannot_redirect_writes_to_the_host() {
    let dir = Scratch::new("symlink");
    let rootfs = dir.join("rootfs");
    let outside = dir.join("outside");
    std::fs::create_dir_all(rootfs.join("usr/local/bin")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, rootfs.join("lib")).unwrap();
    std::os::unix::fs::symlink(&outside, rootfs.join("lib64")).unwrap();
    let output = script("install-tools.sh", &[&rootfs, &bin("lab-breakout")]);
    assert!(!output.status.success(), "must refuse: {}", stdout(&output));
    assert!(
        stderr(&output).contains("outside the rootfs"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        0,
        "nothing written outside"
    );
}
