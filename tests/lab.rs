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
