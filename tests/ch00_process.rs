//! ch00-process: a plain child shares everything with the host.

mod common;
use common::*;

#[test]
fn help_teaches_usage_and_exit_codes() {
    let output = run("ch00-process", ["--help"]);
    assert_eq!(code(&output), 0);
    snapshot!("ch00_help", stdout(&output));
}

#[test]
fn exit_code_propagates() {
    let output = run(
        "ch00-process",
        ["/bin/sh", "-c", "echo out; echo err >&2; exit 3"],
    );
    assert_eq!(code(&output), 3);
    assert_eq!(stdout(&output), "out\n");
    assert_eq!(stderr(&output), "err\n");
}

#[test]
fn killed_by_signal_is_128_plus_n() {
    let output = run("ch00-process", ["/bin/sh", "-c", "kill -KILL $$"]);
    assert_eq!(code(&output), 128 + 9);
}

#[test]
fn command_is_found_on_the_host_path() {
    let output = run("ch00-process", ["true"]);
    assert_eq!(code(&output), 0);
    let missing = run("ch00-process", ["no-such-command-anywhere"]);
    assert_clean_failure(&missing, 127, "command no-such-command-anywhere not found");
}

/// The child's namespaces, root directory and hostname are the host's:
/// compared with this test process's own, not with a hard-coded value.
#[test]
fn child_shares_the_hosts_namespaces_root_and_hostname() {
    let script = "for ns in mnt uts ipc pid net user cgroup; do readlink /proc/self/ns/$ns; done; \
                  stat -L -c %d:%i /; cat /proc/sys/kernel/hostname";
    let output = run("ch00-process", ["/bin/sh", "-c", script]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let mut expected = String::new();
    for ns in ["mnt", "uts", "ipc", "pid", "net", "user", "cgroup"] {
        let link = std::fs::read_link(format!("/proc/self/ns/{ns}")).unwrap();
        expected.push_str(&format!("{}\n", link.display()));
    }
    use std::os::unix::fs::MetadataExt;
    let root = std::fs::metadata("/").unwrap();
    expected.push_str(&format!("{}:{}\n", root.dev(), root.ino()));
    expected.push_str(&std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap());
    assert_eq!(stdout(&output), expected);
}

#[test]
fn explain_shows_each_step_and_what_is_shared() {
    let args = [
        "--explain",
        "/bin/sh",
        "-c",
        "id -un; kill -0 1 && echo 'I can signal PID 1'",
    ];
    if !require_root("explain_shows_each_step_and_what_is_shared") {
        return;
    }
    let output = run("ch00-process", args);
    assert_eq!(code(&output), 0);
    let err = stderr(&output);
    assert!(
        err.contains("namespaces shared with the host: mnt uts ipc pid net user cgroup"),
        "{err}"
    );
    assert!(err.contains("private: none"), "{err}");
    let shown = format!("ch00-process {}", container_lab::shell_words(&args));
    snapshot!("ch00_shares_host", transcript(&shown, &output, None));
}
