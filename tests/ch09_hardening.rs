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
/// Where the image has a setuid-root copy of the probe.
const SETUID_HELPER: &str = "/usr/local/bin/setuid-probe";

struct Lab {
    dir: Scratch,
    names: std::sync::Mutex<Vec<String>>,
}

impl Lab {
    /// A store with `lab/base:v1`: the test rootfs, and a setuid-root
    /// copy of the probe at SETUID_HELPER (user.setuid-gain's bait).
    fn new(test: &str) -> Option<Lab> {
        if !require_root(test) {
            return None;
        }
        let lab = Lab {
            dir: Scratch::new(&format!("hardening-{test}")),
            names: Default::default(),
        };
        let mut builder = tar::Builder::new(Vec::new());
        builder.follow_symlinks(false);
        builder.mode(tar::HeaderMode::Complete);
        builder.append_dir_all(".", rootfs()).unwrap();
        let probe = std::fs::read(bin("lab-probe")).unwrap();
        let mut header = tar::Header::new_gnu();
        header.set_size(probe.len() as u64);
        header.set_mode(0o4755);
        header.set_uid(0);
        header.set_gid(0);
        header.set_cksum();
        builder
            .append_data(&mut header, &SETUID_HELPER[1..], probe.as_slice())
            .unwrap();
        let tar = lab.dir.join("base.tar");
        std::fs::write(&tar, builder.into_inner().unwrap()).unwrap();
        let output = lab.ch09(&["import", tar.to_str().unwrap(), "lab/base:v1"]);
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
    // ICMP sockets for every group of the container, in its own network
    // namespace only.
    let range = "cat /proc/sys/net/ipv4/ping_group_range";
    assert_eq!(lab.sh(&[], range), "0\t65535\n");
    let host_range = || std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range").unwrap();
    let before = host_range();
    let output = lab.ch09(&["run", "--rm", "--net", "host", "lab/base:v1", "/bin/true"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(host_range(), before, "--net host changed the host's range");
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
        // Neither a FIFO that would block nor /dev/zero that would fill memory.
        (
            vec!["--security-opt", "seccomp=/dev/zero"],
            "not a regular file",
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

/// The probe's claims, run in a ch09 container with `flags`: the checks
/// it says LEAK. Without bait, the checks that need the host's side are
/// N/A alike in every run, and the resource checks, which need budgets,
/// are left out.
fn probe_leaks(lab: &Lab, flags: &[&str]) -> std::collections::BTreeSet<String> {
    let listed = run("lab-probe", ["--list"]);
    let mut args = vec!["run", "--rm", "--net", "none"];
    args.extend(flags);
    let bait = format!("{{\"setuid_helper\":\"{SETUID_HELPER}\"}}");
    args.extend([
        "lab/base:v1",
        "/usr/local/bin/lab-probe",
        "--json",
        "--bait",
        &bait,
    ]);
    let checks: Vec<String> = stdout(&listed)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|id| !id.starts_with("res."))
        .map(str::to_string)
        .collect();
    for check in &checks {
        args.extend(["--only", check]);
    }
    let output = lab.ch09(&args);
    // The probe exits 1 when something leaks.
    assert!(
        [0, 1].contains(&code(&output)),
        "probe {flags:?}: {}",
        stderr(&output)
    );
    let findings: Vec<container_lab::lab::scorecard::Finding> =
        serde_json::from_str(&stdout(&output)).expect("the probe's JSON");
    findings
        .into_iter()
        .filter(|f| f.verdict == container_lab::lab::scorecard::Verdict::Leaks)
        .map(|f| f.check)
        .collect()
}

/// Each protection, turned off alone, lets exactly the rows it guards
/// leak again: none is decorative, and where two guard a row (sys.unshare:
/// the filter and CAP_SYS_ADMIN) neither is relied on alone.
#[test]
fn each_protection_turned_off_alone_reopens_exactly_its_rows() {
    let Some(lab) = Lab::new("guards") else {
        return;
    };
    let default = probe_leaks(&lab, &[]);
    assert!(default.is_empty(), "ch09 leaks by default: {default:?}");
    let filtered = [
        "sys.keyctl",
        "sys.perf-event",
        "sys.unshare",
        "sys.userfaultfd",
    ];
    let cases: [(&[&str], &[&str]); 6] = [
        (&["--security-opt", "seccomp=unconfined"], &filtered),
        // Docker's rule: with CAP_SYS_ADMIN the filter allows unshare,
        // mount, setns, bpf and perf_event_open too.
        (
            &["--cap-add", "SYS_ADMIN"],
            &["sys.perf-event", "sys.unshare"],
        ),
        (&["--cap-add", "NET_RAW"], &["net.raw-socket"]),
        (
            &["--security-opt", "no-new-privileges=false"],
            &["user.setuid-gain"],
        ),
        // The masks are a second wall: behind the user namespace, whose
        // root the kernel does not let read the host's keys or kcore.
        (&["--security-opt", "systempaths=unconfined"], &[]),
        (
            &["--privileged"],
            &[
                "net.raw-socket",
                "sys.keyctl",
                "sys.perf-event",
                "sys.unshare",
                "sys.userfaultfd",
                "user.setuid-gain",
            ],
        ),
    ];
    for (flags, expected) in cases {
        let leaks = probe_leaks(&lab, flags);
        let expected: std::collections::BTreeSet<String> =
            expected.iter().map(|s| s.to_string()).collect();
        assert_eq!(leaks, expected, "with {flags:?}");
    }
}

/// A profile in Docker's own format (the fixture: archMap, includes and
/// excludes by capability, comments) behaves on the probe as the built-in
/// default does; a malformed one is refused with its line and field.
#[test]
fn a_docker_format_profile_works_as_the_built_in_and_a_bad_one_is_named() {
    let Some(lab) = Lab::new("profiles") else {
        return;
    };
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/seccomp/docker-default.json");
    let option = format!("seccomp={}", fixture.display());
    assert_eq!(
        probe_leaks(&lab, &["--security-opt", &option]),
        probe_leaks(&lab, &[])
    );
    let keyctl = "grep Seccomp: /proc/self/status";
    assert_eq!(
        lab.sh(&["--security-opt", &option], keyctl).trim(),
        "Seccomp:\t2"
    );
    let bad = lab.dir.join("bad.json");
    std::fs::write(
        &bad,
        "{\n  \"defaultAction\": \"SCMP_ACT_ERRNO\",\n  \"syscalls\": [\n    {\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALOW\"}\n  ]\n}\n",
    )
    .unwrap();
    let output = lab.ch09(&[
        "run",
        "--rm",
        "--security-opt",
        &format!("seccomp={}", bad.display()),
        "lab/base:v1",
        "/bin/true",
    ]);
    assert_clean_failure(&output, 125, "line 4");
    assert!(
        stderr(&output).contains("syscalls[0].action"),
        "{}",
        stderr(&output)
    );
}

/// What containers normally run still works under the filter: the shell
/// and the usual programs, exec, a terminal, the busybox rootfs's applets.
#[test]
fn ordinary_programs_still_work() {
    let Some(lab) = Lab::new("programs") else {
        return;
    };
    let script = "cd /tmp && echo hi > f && cp f g && mv g h && ls && cat h | tr a-z A-Z; \
        sort </etc/passwd | grep ^root | cut -d: -f1; ps -o comm= | grep -c '^ps$'; date +%Y >/dev/null; \
        (sleep 0.1 &) ; wait; chown 1000:1000 h && chmod 600 h && stat -c %u:%a h; \
        id -u; uname -s; df / >/dev/null && echo df-ok; sh -c 'exit 7'; echo rc=$?";
    let out = lab.sh(&[], script);
    assert_eq!(
        out, "f\nh\nHI\nroot\n1\n1000:600\n0\nLinux\ndf-ok\nrc=7\n",
        "{out}"
    );
    // A terminal: script(1) gives run -t a pty of the test's own.
    require_tool("script", "bsdutils");
    let line = format!(
        "env CONTAINER_LAB_STORAGE={} {} run --rm -t --net none lab/base:v1 /bin/sh -c 'test -t 0 && test -t 1 && echo has-a-tty; exit 4'",
        lab.dir.display(),
        bin(CH).display()
    );
    let output = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(code(&output), 4, "{}", stderr(&output));
    assert!(stdout(&output).contains("has-a-tty"), "{}", stdout(&output));
    // The busybox rootfs: its applets are one binary under many names.
    require_tool("busybox", "busybox-static");
    let busybox = lab.dir.join("busybox");
    let built = run(
        "lab",
        ["rootfs", "--variant", "busybox", busybox.to_str().unwrap()],
    );
    assert_eq!(code(&built), 0, "{}", stderr(&built));
    let output = lab.ch09(&["import", busybox.to_str().unwrap(), "lab/busybox:v1"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let output = lab.ch09(&[
        "run",
        "--rm",
        "--net",
        "none",
        "lab/busybox:v1",
        "/bin/sh",
        "-c",
        "echo a,b | awk -F, '{print $2}'; seq 3 | xargs echo; wget --help >/dev/null 2>&1; \
         find / -maxdepth 1 -name etc; nslookup 2>/dev/null; vi --help >/dev/null 2>&1; echo ok",
    ]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(stdout(&output), "b\n1 2 3\n/etc\nok\n");
}

/// The book's session: what the kernel shows for a default container,
/// for each flag that turns a protection off, and a profile that does not
/// parse.
#[test]
fn a_hardening_session_for_the_book() {
    let Some(lab) = Lab::new("session") else {
        return;
    };
    let status = "grep -E 'Cap(Prm|Eff|Bnd)|NoNewPrivs|Seccomp' /proc/self/status";
    let step = |shown: &str, args: &[&str]| {
        let output = lab.ch09(args);
        transcript(&format!("ch09-hardening {shown}"), &output, None)
    };
    let mut session = String::new();
    for flags in [
        &[][..],
        &["--cap-drop", "ALL"],
        &["--security-opt", "seccomp=unconfined"],
        &["--privileged"],
    ] {
        let mut args = vec!["run", "--rm", "--net", "none"];
        args.extend(flags);
        args.extend(["lab/base:v1", "/bin/sh", "-c", status]);
        let shown = format!("{} \"{status}\"", args[..args.len() - 1].join(" "));
        session += &step(&shown, &args);
    }
    let bad = lab.dir.join("bad.json");
    std::fs::write(
        &bad,
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALOW"}]}"#,
    )
    .unwrap();
    let option = format!("seccomp={}", bad.display());
    session += &step(
        "run --rm --security-opt seccomp=./bad.json lab/base:v1 /bin/true",
        &[
            "run",
            "--rm",
            "--security-opt",
            &option,
            "lab/base:v1",
            "/bin/true",
        ],
    );
    let session = session.replace(&bad.display().to_string(), "./bad.json");
    snapshot!("ch09_session", session);
}

#[test]
fn help_teaches_the_security_flags() {
    let output = run(CH, ["--help"]);
    assert_eq!(code(&output), 0);
    snapshot!("ch09_help", stdout(&output));
    let output = run(CH, ["run", "--help"]);
    assert_eq!(code(&output), 0);
    for flag in ["--cap-add", "--cap-drop", "--security-opt", "--privileged"] {
        assert!(stdout(&output).contains(flag), "{flag} missing");
    }
    snapshot!("ch09_run_help", stdout(&output));
}
