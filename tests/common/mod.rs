//! Helpers shared by the integration tests: root checks, a rootfs built by
//! the tests themselves, running chapter binaries, and transcripts for the
//! book.
#![allow(dead_code)] // each test file uses its own subset

pub mod engines;
pub mod isolation;
pub mod netns;
pub mod registry;
pub mod store;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// Environment variable that lets a non-root `cargo test` skip the tests
/// that need root instead of failing them.
pub const SKIP_ROOT_ENV: &str = "CONTAINER_LAB_SKIP_ROOT_TESTS";

/// True when the test may go on. Not root: panic with the reason, unless
/// the user opted out with CONTAINER_LAB_SKIP_ROOT_TESTS=1 (then say so).
pub fn require_root(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    if std::env::var(SKIP_ROOT_ENV).as_deref() == Ok("1") {
        eprintln!("SKIPPED {test}: needs root ({SKIP_ROOT_ENV}=1 is set)");
        return false;
    }
    panic!(
        "{test} needs root: run `cargo test`, whose runner re-runs the tests through sudo, \
         or set {SKIP_ROOT_ENV}=1 to skip the root-only tests"
    );
}

/// A program only the tests use (nft to read back what the lab loaded,
/// busybox for the busybox rootfs, newuidmap, pasta): when it is missing,
/// install its Debian package as `cargo test` runs, saying so on stderr,
/// so the README's test command needs nothing installed by hand. The lab
/// itself never needs these: `lab tour` runs without any of them.
pub fn require_tool(program: &str, package: &str) {
    static APT: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let found = || container_lab::hostinfo::find_in_path(program).is_some();
    if found() {
        return;
    }
    let _one_at_a_time = APT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if found() {
        return;
    }
    assert!(
        nix::unistd::geteuid().is_root() && found_apt(),
        "{program} is not installed and cannot be installed here: apt-get install {package}"
    );
    eprintln!(
        "container-lab tests: {program} is missing; installing the test-only package {package} with apt-get"
    );
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends", package])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|status| status.success())
    };
    // A fresh machine may have no package lists yet.
    if !install() {
        let _ = Command::new("apt-get").args(["update", "-q"]).status();
        assert!(
            install(),
            "apt-get install {package} failed (for {program})"
        );
    }
    assert!(
        found(),
        "{package} is installed but {program} is not on PATH"
    );
}

fn found_apt() -> bool {
    container_lab::hostinfo::find_in_path("apt-get").is_some()
}

/// Path of a binary of this package.
pub fn bin(name: &str) -> PathBuf {
    let path = match name {
        "ch00-process" => env!("CARGO_BIN_EXE_ch00-process"),
        "ch01-chroot" => env!("CARGO_BIN_EXE_ch01-chroot"),
        "lab" => env!("CARGO_BIN_EXE_lab"),
        "ch02-jail" => env!("CARGO_BIN_EXE_ch02-jail"),
        "ch03-namespaces" => env!("CARGO_BIN_EXE_ch03-namespaces"),
        "ch04-net" => env!("CARGO_BIN_EXE_ch04-net"),
        "ch05-user" => env!("CARGO_BIN_EXE_ch05-user"),
        "ch06-cgroups" => env!("CARGO_BIN_EXE_ch06-cgroups"),
        "ch07-lifecycle" => env!("CARGO_BIN_EXE_ch07-lifecycle"),
        "ch08-images" => env!("CARGO_BIN_EXE_ch08-images"),
        "ch09-hardening" => env!("CARGO_BIN_EXE_ch09-hardening"),
        "ch10-oci" => env!("CARGO_BIN_EXE_ch10-oci"),
        "lab-breakout" => env!("CARGO_BIN_EXE_lab-breakout"),
        "lab-probe" => env!("CARGO_BIN_EXE_lab-probe"),
        other => panic!("unknown binary {other}"),
    };
    PathBuf::from(path)
}

/// Where tests that act as an unprivileged user keep what that user must
/// reach: /tmp/container-lab-tests, open to everyone. The checkout itself
/// may lie under a home directory of mode 0750 (Ubuntu's default) or 0700,
/// which such a user cannot enter, so neither its binaries nor cargo's
/// target directory are reachable from there.
pub fn public_dir() -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join("container-lab-tests");
    std::fs::create_dir_all(&dir).expect("create /tmp/container-lab-tests");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// `bin(name)`, linked into a directory every user can reach (see
/// [`public_dir`]), with its sibling binaries (`lab rootfs` copies
/// lab-probe from beside itself), and the rootfs scripts. Made once per
/// test process, by hard links when the checkout shares /tmp's filesystem;
/// those of test processes that ended are removed.
pub fn public_bin(name: &str) -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let base = public_dir();
        for entry in std::fs::read_dir(&base).into_iter().flatten().flatten() {
            let pid = entry
                .file_name()
                .to_string_lossy()
                .strip_prefix("bin-")
                .and_then(|p| p.parse::<u32>().ok());
            if pid.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        let dir = base.join(format!("bin-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("rootfs-scripts")).unwrap();
        let built = bin("lab");
        let targets = built.parent().unwrap();
        let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("rootfs-scripts");
        let binaries = BINARIES
            .iter()
            .map(|name| (targets.join(name), dir.join(name)));
        let script_files = std::fs::read_dir(&scripts).unwrap().flatten().map(|entry| {
            (
                entry.path(),
                dir.join("rootfs-scripts").join(entry.file_name()),
            )
        });
        for (from, to) in binaries.chain(script_files) {
            if std::fs::hard_link(&from, &to).is_err() {
                std::fs::copy(&from, &to)
                    .unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
            }
        }
        use std::os::unix::fs::PermissionsExt;
        for dir in [dir.clone(), dir.join("rootfs-scripts")] {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        // Gone when the test process exits (the harness calls exit(3)).
        extern "C" fn remove_public_bin() {
            let _ =
                std::fs::remove_dir_all(public_dir().join(format!("bin-{}", std::process::id())));
        }
        // SAFETY: registers a plain function, run once at exit.
        unsafe { libc::atexit(remove_public_bin) };
        dir
    });
    dir.join(name)
}

/// Every binary of this package, as cargo names them.
pub const BINARIES: [&str; 14] = [
    "ch00-process",
    "ch01-chroot",
    "ch02-jail",
    "ch03-namespaces",
    "ch04-net",
    "ch05-user",
    "ch06-cgroups",
    "ch07-lifecycle",
    "ch08-images",
    "ch09-hardening",
    "ch10-oci",
    "lab",
    "lab-breakout",
    "lab-probe",
];

/// A scratch directory under cargo's target tmp dir, removed when dropped
/// (also when the test fails).
pub struct Scratch(PathBuf);

impl Scratch {
    /// A scratch directory under [`public_dir`], for a test user's home.
    pub fn public(name: &str) -> Scratch {
        let dir = public_dir().join(format!(
            "{}-{}-{name}",
            env!("CARGO_CRATE_NAME"),
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }

    pub fn new(name: &str) -> Scratch {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(env!("CARGO_CRATE_NAME"))
            .join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }
}

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The host-tools rootfs, built once per test binary by `lab rootfs`.
pub fn rootfs() -> &'static Path {
    static ROOTFS: OnceLock<PathBuf> = OnceLock::new();
    ROOTFS.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(env!("CARGO_CRATE_NAME"))
            .join("rootfs");
        let output = Command::new(bin("lab"))
            .arg("rootfs")
            .arg(&dir)
            .output()
            .expect("run lab rootfs");
        assert!(
            output.status.success(),
            "lab rootfs {} failed:\n{}",
            dir.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        dir
    })
}

/// Run a binary of this package with `args`, without a terminal.
pub fn run<I, S>(name: &str, args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Command::new(bin(name))
        .args(args)
        .env_remove("NO_COLOR")
        .output()
        .unwrap_or_else(|error| panic!("cannot start {name}: {error}"))
}

/// Run `chapter ROOTFS ARGS...` on the test rootfs.
pub fn run_in(chapter: &str, args: &[&str]) -> Output {
    let rootfs = rootfs().to_str().unwrap();
    let words = host_safe_flags(chapter)
        .iter()
        .copied()
        .chain(std::iter::once(rootfs));
    run(chapter, words.chain(args.iter().copied()))
}

/// Flags a chapter needs so that a test run on the real host leaves its
/// network alone: from ch04 on, no bridge (the network tests make theirs in
/// throwaway namespaces).
pub fn host_safe_flags(chapter: &str) -> &'static [&'static str] {
    match chapter {
        "ch04-net" | "ch05-user" | "ch06-cgroups" => &["--net", "none"],
        _ => &[],
    }
}

/// Run `command` with `input` on its stdin, its output captured.
pub fn output_with_input(command: &mut Command, input: &[u8]) -> Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start {command:?}: {error}"));
    // A program that exits without reading its input closes the pipe
    // first: what it says about that is in its output.
    let _ = child.stdin.take().unwrap().write_all(input);
    child.wait_with_output().unwrap()
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn code(output: &Output) -> i32 {
    output.status.code().expect("exited, not killed")
}

/// A terminal-like transcript of one run for the book: the command line,
/// what it printed (stderr first: in every transcript we keep, all stderr
/// lines come before the command's output or after it ends), and the exit
/// status when it is not 0. `rootfs` is shown as `./rootfs` and pids as
/// `<pid>`, the only values that change from run to run.
pub fn transcript(shown_command: &str, output: &Output, rootfs: Option<&Path>) -> String {
    let mut text = format!("$ {shown_command}\n{}{}", stderr(output), stdout(output));
    if !output.status.success() {
        text.push_str(&format!("$ echo $?\n{}\n", code(output)));
    }
    if let Some(rootfs) = rootfs {
        text = text.replace(&rootfs.display().to_string(), "./rootfs");
    }
    hide_pids(&text)
}

/// Replace the pids narration shows (in `waitpid(1234, &status, 0)`,
/// ch02's `container-lab-proc-1234`, ch04's veth names and `netns 1234`).
fn hide_pids(text: &str) -> String {
    let mut text = text.to_string();
    for (prefix, terminator) in [
        ("waitpid(", ","),
        ("container-lab-proc-", "\""),
        ("labv", ""),
        ("labc", ""),
        ("container-lab-c", ""),
        ("ctr-", ""),
        ("remapped/run-", ""),
        ("container-lab/rootfs-", ""),
        ("\"/proc/", "/"),
        ("userns of ", ""),
        ("netns ", ""),
    ] {
        text = hide_digits_after(&text, prefix, terminator);
    }
    text
}

fn hide_digits_after(text: &str, prefix: &str, terminator: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(prefix) {
        let (head, tail) = rest.split_at(at + prefix.len());
        out.push_str(head);
        let digits = tail.chars().take_while(char::is_ascii_digit).count();
        if digits > 0 && tail[digits..].starts_with(terminator) {
            out.push_str("<pid>");
            rest = &tail[digits..];
        } else {
            rest = tail;
        }
    }
    out.push_str(rest);
    out
}

/// A test that needs root: it runs only when `require_root` lets it.
#[macro_export]
macro_rules! as_root {
    ($(#[$doc:meta])* $name:ident, $body:expr) => {
        $(#[$doc])*
        #[test]
        fn $name() {
            if require_root(stringify!($name)) {
                $body
            }
        }
    };
}

/// Compare `content` with the snapshot `tests/snapshots/NAME.snap`, which
/// the book includes from its fourth line on.
#[macro_export]
macro_rules! snapshot {
    ($name:expr, $content:expr) => {
        insta::with_settings!({prepend_module_to_snapshot => false, omit_expression => true}, {
            insta::assert_snapshot!($name, $content);
        })
    };
}

/// Assert the runtime failed the way DESIGN.md says: the expected exit code,
/// one error line and one hint line on stderr, nothing on stdout.
pub fn assert_clean_failure(output: &Output, expected_code: i32, error_contains: &str) {
    let err = stderr(output);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(code(output), expected_code, "stderr: {err}");
    assert_eq!(
        lines.len(),
        2,
        "want an error line and a hint line, got: {err}"
    );
    assert!(lines[0].contains(" error: "), "{err}");
    assert!(lines[0].contains(error_contains), "{err}");
    assert!(lines[1].contains(" hint: "), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(stdout(output), "", "stdout must stay clean");
}

/// Every directory named `container-lab-PID` in any cgroup hierarchy, a
/// few levels below its root (the runtime, or ch07's monitor, names the
/// container's cgroup after itself).
pub fn cgroup_dirs_of(pid: impl std::fmt::Display) -> Vec<PathBuf> {
    fn walk(dir: &Path, name: &str, depth: u32, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let path = entry.path();
            if entry.file_name().to_string_lossy() == name {
                found.push(path.clone());
            }
            if depth > 0 {
                walk(&path, name, depth - 1, found);
            }
        }
    }
    let mut found = Vec::new();
    walk(
        Path::new("/sys/fs/cgroup"),
        &format!("container-lab-{pid}"),
        5,
        &mut found,
    );
    found
}

/// What changes from run to run, masked: ids (64 hex digits, or the 12
/// `ps` shows) become `<id>`, durations as `ps` words them
/// ("Less than a second", "3 seconds", "About a minute") `<time>`.
pub fn mask(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find(|c: char| c.is_ascii_hexdigit()) {
        let (before, from) = rest.split_at(start);
        out.push_str(before);
        let run = from
            .find(|c: char| !(c.is_ascii_digit() || ('a'..='f').contains(&c)))
            .unwrap_or(from.len());
        let bounded = !before.ends_with(|c: char| c.is_ascii_alphanumeric())
            && !from[run..].starts_with(|c: char| c.is_ascii_alphanumeric());
        let end = run.max(1);
        match bounded && (run == 64 || run == 12) {
            true => out.push_str("<id>"),
            false => out.push_str(&from[..end]),
        }
        rest = &from[end..];
    }
    out.push_str(rest);
    let mut text = out;
    for phrase in ["Less than a second", "About a minute", "About an hour"] {
        text = text.replace(phrase, "<time>");
    }
    let units = ["second", "minute", "hour", "day", "week"];
    text.split_inclusive('\n')
        .map(|line| {
            let (line, end) = match line.strip_suffix('\n') {
                Some(line) => (line, "\n"),
                None => (line, ""),
            };
            let words: Vec<&str> = line.split(' ').collect();
            let mut kept = Vec::new();
            let mut i = 0;
            while i < words.len() {
                let number = !words[i].is_empty() && words[i].bytes().all(|b| b.is_ascii_digit());
                let unit = words
                    .get(i + 1)
                    .is_some_and(|w| units.contains(&w.trim_end_matches('s')));
                if number && unit {
                    kept.push("<time>");
                    i += 2;
                } else {
                    kept.push(words[i]);
                    i += 1;
                }
            }
            kept.join(" ") + end
        })
        .collect()
}

/// An unprivileged user made for one test, removed with its files when
/// dropped.
pub struct TestUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: Scratch,
}

impl TestUser {
    /// `tag` tells tests running at once apart (one letter).
    pub fn new(tag: &str) -> TestUser {
        let name = format!("labrl{tag}{}", std::process::id() % 100000);
        let _ = Command::new("userdel")
            .arg(&name)
            .stderr(Stdio::null())
            .status();
        let status = Command::new("useradd")
            .args(["--no-create-home", "--shell", "/bin/sh", &name])
            .status()
            .expect("useradd");
        assert!(status.success(), "useradd {name}");
        let id = |flag: &str| -> u32 {
            stdout(&Command::new("id").args([flag, &name]).output().unwrap())
                .trim()
                .parse()
                .unwrap()
        };
        let home = Scratch::public(&format!("rootless-{tag}"));
        let (uid, gid) = (id("-u"), id("-g"));
        nix::unistd::chown(
            &*home,
            Some(nix::unistd::Uid::from_raw(uid)),
            Some(nix::unistd::Gid::from_raw(gid)),
        )
        .unwrap();
        TestUser {
            name,
            uid,
            gid,
            home,
        }
    }

    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        use std::os::unix::process::CommandExt;
        let mut command = Command::new(program);
        command
            .uid(self.uid)
            .gid(self.gid)
            .env("USER", &self.name)
            .env("HOME", &*self.home);
        command
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        // The directory of pasta's pid files a rootless run makes (no
        // XDG_RUNTIME_DIR here: the user never logged in).
        let _ = std::fs::remove_dir_all(
            std::env::temp_dir().join(format!("container-lab-{}", self.uid)),
        );
        let _ = Command::new("userdel").arg(&self.name).status();
    }
}
