//! The `lab` driver: help, and the README's demo.

mod common;
use common::*;
use std::process::Command;

#[test]
fn help_lists_the_subcommands() {
    let output = run("lab", ["--help"]);
    assert_eq!(code(&output), 0);
    snapshot!("lab_help", stdout(&output));
}

/// The README's main command: ch00, ch01 and the breakout, narrated.
#[test]
fn demo_runs_every_chapter_and_the_breakout() {
    if !require_root("demo_runs_every_chapter_and_the_breakout") {
        return;
    }
    let output = Command::new(bin("lab"))
        .arg("demo")
        .env("CONTAINER_LAB_ROOTFS", rootfs())
        .output()
        .unwrap();
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let out = stdout(&output);
    let err = stderr(&output);
    // ch01 sees the rootfs; the marker is unreadable by path, then the
    // breakout prints it.
    assert!(out.contains("\nhost\n"), "{out}");
    assert!(
        err.contains("host-secret.txt: No such file or directory"),
        "{err}"
    );
    assert_eq!(
        out.matches("a file that lives on the host").count(),
        1,
        "{out}"
    );
    assert!(err.contains("lab-breakout: chroot(\".\")"), "{err}");
}

/// The cgroup layout doctor reports, checked against stat(1)'s own view
/// of the filesystem types (statfs(2) f_type), not against a fixed answer.
#[test]
fn doctor_reports_the_cgroup_layout_this_machine_has() {
    let fs_type = |path: &str| {
        let output = Command::new("stat")
            .args(["-f", "-c", "%T", path])
            .output()
            .unwrap();
        stdout(&output).trim().to_string()
    };
    let expected = match (
        fs_type("/sys/fs/cgroup").as_str(),
        fs_type("/sys/fs/cgroup/unified").as_str(),
    ) {
        ("cgroup2fs", _) => "unified",
        ("tmpfs", "cgroup2fs") => "hybrid",
        ("tmpfs", _) => "legacy",
        (other, _) => panic!("/sys/fs/cgroup is {other}: not a cgroup layout the lab knows"),
    };
    let output = run("lab", ["doctor"]);
    let report = stdout(&output);
    let line = report
        .lines()
        .find(|l| l.contains("cgroups"))
        .expect("a cgroups line");
    assert!(
        line.to_lowercase().contains(expected),
        "expected {expected}: {line}"
    );
    assert!(report.contains("checks:"), "{report}");
}

#[test]
fn doctor_without_root_fails_and_says_how_to_fix_it() {
    if !require_root("doctor_without_root_fails_and_says_how_to_fix_it") {
        return;
    }
    use std::os::unix::process::CommandExt;
    let output = Command::new(bin("lab"))
        .arg("doctor")
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    assert_eq!(code(&output), 1, "{}", stdout(&output));
    let report = stdout(&output);
    let root_line = report.lines().find(|l| l.contains("root ")).unwrap();
    assert!(root_line.starts_with("fail"), "{report}");
    assert!(
        report.contains("fix: run the chapters and lab through sudo"),
        "{report}"
    );
}
