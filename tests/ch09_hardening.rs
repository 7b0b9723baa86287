//! ch09-hardening, for real, as root: the capability sets, no_new_privs,
//! the seccomp filter and the masked paths the kernel shows for a
//! container's processes (run and exec), each flag that turns one off,
//! and the errors of bad flags.
//!
//! Each test has an image store of its own (CONTAINER_LAB_STORAGE in a
//! scratch directory) with the test rootfs imported as `lab/base:v1`.
//! Containers are named `t9-PID-...` and removed when the test ends.

mod common;
use common::*;
use container_lab::runtime::caps::CapSet;
use std::process::{Command, Output, Stdio};

const CH: &str = "ch09-hardening";

struct Lab {
    dir: Scratch,
    names: std::sync::Mutex<Vec<String>>,
}

impl Lab {
    fn new(test: &str) -> Option<Lab> {
        if !require_root(test) {
            return None;
        }
        let lab = Lab {
            dir: Scratch::new(&format!("hardening-{test}")),
            names: Default::default(),
        };
        let output = lab.ch09(&["import", rootfs().to_str().unwrap(), "lab/base:v1"]);
        assert_eq!(code(&output), 0, "import: {}", stderr(&output));
        Some(lab)
    }

    fn name(&self, what: &str) -> String {
        let name = format!("t9-{}-{what}", std::process::id());
        self.names.lock().unwrap().push(name.clone());
        name
    }

    fn ch09(&self, args: &[&str]) -> Output {
        Command::new(bin(CH))
            .env("CONTAINER_LAB_STORAGE", &*self.dir)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .args(args)
            .output()
            .unwrap()
    }

    /// `run --rm FLAGS lab/base:v1 /bin/sh -c SCRIPT`, which must exit 0;
    /// its stdout.
    fn sh(&self, flags: &[&str], script: &str) -> String {
        let mut args = vec!["run", "--rm", "--net", "none"];
        args.extend(flags);
        args.extend(["lab/base:v1", "/bin/sh", "-c", script]);
        let output = self.ch09(&args);
        assert_eq!(
            code(&output),
            0,
            "run {flags:?} {script:?}: {}{}",
            stdout(&output),
            stderr(&output)
        );
        stdout(&output)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for name in self.names.lock().unwrap().iter() {
            let _ = self.ch09(&["rm", "-f", name]);
        }
    }
}

/// The `Key:\tVALUE` lines of /proc/self/status that chapter 09 sets.
#[derive(Debug, PartialEq)]
struct Status {
    effective: u64,
    permitted: u64,
    inheritable: u64,
    bounding: u64,
    ambient: u64,
    no_new_privs: bool,
    seccomp_mode: u32,
}

fn status(text: &str) -> Status {
    let field = |key: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} in:\n{text}"))
            .trim()
            .to_string()
    };
    let mask = |key: &str| u64::from_str_radix(&field(key), 16).unwrap();
    Status {
        effective: mask("CapEff:"),
        permitted: mask("CapPrm:"),
        inheritable: mask("CapInh:"),
        bounding: mask("CapBnd:"),
        ambient: mask("CapAmb:"),
        no_new_privs: field("NoNewPrivs:") == "1",
        seccomp_mode: field("Seccomp:").parse().unwrap(),
    }
}

/// The kernel's numbers for the names of chapter 09's list, from
/// capabilities(7), written out here rather than taken from the runtime.
const CHAPTER_09_LIST: [u32; 12] = [
    0,  // CHOWN
    1,  // DAC_OVERRIDE
    3,  // FOWNER
    4,  // FSETID
    5,  // KILL
    6,  // SETGID
    7,  // SETUID
    8,  // SETPCAP
    10, // NET_BIND_SERVICE
    27, // MKNOD
    29, // AUDIT_WRITE
    31, // SETFCAP
];

fn list_mask() -> u64 {
    CHAPTER_09_LIST.iter().map(|n| 1u64 << n).sum()
}

#[test]
fn a_container_keeps_twelve_capabilities_no_new_privs_and_a_filter_in_run_and_exec() {
    let Some(lab) = Lab::new("defaults") else {
        return;
    };
    let ran = status(&lab.sh(&[], "cat /proc/self/status"));
    let expected = Status {
        effective: list_mask(),
        permitted: list_mask(),
        inheritable: 0,
        bounding: list_mask(),
        ambient: 0,
        no_new_privs: true,
        seccomp_mode: 2,
    };
    assert_eq!(ran, expected);
    assert_eq!(CapSet::container_default().0, list_mask());
    // exec joins under the same settings.
    let name = lab.name("exec");
    let output = lab.ch09(&[
        "run",
        "-d",
        "--name",
        &name,
        "--net",
        "none",
        "lab/base:v1",
        "/bin/sleep",
        "60",
    ]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let output = lab.ch09(&["exec", &name, "/bin/cat", "/proc/self/status"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(status(&stdout(&output)), expected);
    // A user other than root keeps no capability; the bounding set stays.
    let user = status(&lab.sh(&["-u", "1000:1000"], "cat /proc/self/status"));
    assert_eq!(
        (user.effective, user.permitted, user.bounding),
        (0, 0, list_mask())
    );
}

#[test]
fn each_flag_turns_its_own_protection_off() {
    let Some(lab) = Lab::new("flags") else {
        return;
    };
    let read = |flags: &[&str]| status(&lab.sh(flags, "cat /proc/self/status"));
    let none = read(&["--cap-drop", "ALL"]);
    assert_eq!((none.effective, none.bounding), (0, 0));
    assert!(none.no_new_privs && none.seccomp_mode == 2);
    let raw = read(&["--cap-add", "net_raw", "--cap-drop", "KILL"]);
    assert_eq!(raw.bounding, (list_mask() | 1 << 13) & !(1 << 5));
    // Without no_new_privs the filter is still loaded (before the
    // capabilities go, by CAP_SYS_ADMIN).
    let nnp = read(&["--security-opt", "no-new-privileges=false"]);
    assert!(!nnp.no_new_privs && nnp.seccomp_mode == 2, "{nnp:?}");
    let unconfined = read(&["--security-opt", "seccomp=unconfined"]);
    assert!(unconfined.no_new_privs && unconfined.seccomp_mode == 0);
    let privileged = read(&["--privileged"]);
    assert!(!privileged.no_new_privs && privileged.seccomp_mode == 0);
    assert_eq!(privileged.bounding, CapSet::all_known().0);
    // The masks: /proc/keys has /dev/null over it by default only.
    let masked = "grep -c ' /proc/keys ' /proc/self/mountinfo || true";
    assert_eq!(lab.sh(&[], masked).trim(), "1");
    for flags in [
        &["--security-opt", "systempaths=unconfined"][..],
        &["--privileged"],
    ] {
        assert_eq!(lab.sh(flags, masked).trim(), "0", "{flags:?}");
    }
}

#[test]
fn root_inside_cannot_undo_the_masks() {
    let Some(lab) = Lab::new("masks") else {
        return;
    };
    let script = "cat /proc/keys | wc -c; \
        umount /proc/keys 2>/dev/null && echo unmounted; \
        mount -o remount,rw /proc/sys 2>/dev/null && echo remounted; \
        (echo 1 > /proc/sys/kernel/sysrq) 2>/dev/null && echo written; \
        grep ' /proc/sys ' /proc/self/mountinfo | cut -d' ' -f6";
    let out = lab.sh(&[], script);
    assert_eq!(out, "0\nro,nosuid,nodev,noexec,relatime\n");
}

#[test]
fn bad_security_flags_are_refused_before_anything_starts() {
    let Some(lab) = Lab::new("bad-flags") else {
        return;
    };
    let missing = lab.dir.join("no-such-profile.json");
    let missing = format!("seccomp={}", missing.display());
    for (flags, says) in [
        (
            vec!["--cap-add", "SYS_WIZARD"],
            "unknown capability \"SYS_WIZARD\"",
        ),
        (
            vec!["--security-opt", "seccomp"],
            "--security-opt \"seccomp\"",
        ),
        (
            vec!["--security-opt", "apparmor=docker-default"],
            "AppArmor",
        ),
        (
            vec!["--privileged", "--cap-add", "NET_ADMIN"],
            "--privileged turns every protection off",
        ),
        (
            vec!["--security-opt", missing.as_str()],
            "no-such-profile.json",
        ),
    ] {
        let mut args = vec!["run", "--rm", "--name"];
        let name = lab.name("bad");
        args.push(&name);
        args.extend(flags.iter().copied());
        args.extend(["lab/base:v1", "/bin/true"]);
        let output = lab.ch09(&args);
        assert_clean_failure(&output, 125, says);
        let ps = lab.ch09(&["ps", "-a", "-q", "--filter", &format!("name={name}")]);
        assert!(stdout(&ps).trim().is_empty(), "{flags:?} left a container");
    }
}
