//! Real container engines driving the OCI runtime under test: podman,
//! which runs it through conmon, and containerd, which runs it through its
//! runc shim (io.containerd.runc.v2) and is driven here with `ctr`. Each
//! test gets an engine of its own: its storage, state, sockets and cgroups
//! under a directory of the test's, nothing shared with the host's podman
//! or containerd, and all of it removed when the guard drops, also when
//! the test panics.
//!
//! The runtime under test is chapter 10's `ch10-oci`, unless the
//! environment variable `LAB_TEST_OCI_RUNTIME` names another one (a path,
//! or a program on PATH). That is how the tests themselves are proven:
//! against runc, the runtime both engines were written for, they must all
//! pass.
//!
//! ```sh
//! LAB_TEST_OCI_RUNTIME=/usr/sbin/runc cargo test --test ch10_engines
//! ```
//!
//! A few things the engines put at fixed places, whatever they are told:
//! containerd's shims bind their sockets in /run/containerd/s; podman keeps
//! a cache of blob digests in /var/lib/containers/cache whatever its
//! `--root`; and podman runs the runtime with no `--root` (its
//! `--runtime-flag` would give one, but the cleanup conmon runs after the
//! container exits does not repeat it), so the runtime keeps podman's
//! containers in its default state directory (runc's is /run/runc). Those
//! that did not exist before the first engine of the test process started
//! are removed after the last one stops, directories only when they are
//! empty again.
//!
//! Every engine command runs with a time limit: an engine waiting on a
//! runtime that never answers fails its test instead of hanging it.

use super::{SKIP_ROOT_ENV, require_tool, rootfs, stderr, stdout};
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

/// The environment variable naming the OCI runtime to test instead of
/// ch10-oci.
pub const RUNTIME_ENV: &str = "LAB_TEST_OCI_RUNTIME";

/// The image every test runs, in both engines: the lab's test rootfs.
pub const TEST_IMAGE: &str = "localhost/lab/engines:latest";

/// How long one engine command may take (an image import or load
/// included) before the test gives up on it.
pub const COMMAND_LIMIT: Duration = Duration::from_secs(120);

/// The OCI runtime under test: `ch10-oci`, or the one `LAB_TEST_OCI_RUNTIME`
/// names. Always an absolute path: the engines run it from directories of
/// their own, and podman's cleanup runs it with no PATH at all.
pub fn oci_runtime() -> PathBuf {
    let Some(named) = std::env::var_os(RUNTIME_ENV).filter(|v| !v.is_empty()) else {
        return super::bin("ch10-oci");
    };
    let named = PathBuf::from(named);
    let found = if named.components().count() > 1 {
        std::path::absolute(&named).ok()
    } else {
        container_lab::hostinfo::find_in_path(&named.to_string_lossy())
    };
    match found {
        Some(path) if path.is_file() => path,
        _ => panic!(
            "{RUNTIME_ENV}={} names no runtime here: give the path of a runc-compatible binary",
            named.display()
        ),
    }
}

/// The directory this test process keeps its engines in: short, because
/// podman refuses a run root longer than 50 characters and a unix socket
/// path must fit in 108 bytes. Removed when the process exits; those of
/// test processes that no longer run (killed before they could clean up)
/// are removed when the next one starts.
pub fn work_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = std::env::temp_dir();
        for entry in std::fs::read_dir(&base).into_iter().flatten().flatten() {
            let pid = entry
                .file_name()
                .to_string_lossy()
                .strip_prefix("lab-eng-")
                .and_then(|pid| pid.parse::<u32>().ok());
            if pid.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
                detach_mounts_under(&entry.path());
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        let dir = base.join(format!("lab-eng-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the engines' work directory");
        // Gone when the test process exits (the harness calls exit(3)).
        extern "C" fn remove_work_dir() {
            let dir = std::env::temp_dir().join(format!("lab-eng-{}", std::process::id()));
            detach_mounts_under(&dir);
            let _ = std::fs::remove_dir_all(dir);
        }
        // SAFETY: registers a plain function, run once at exit.
        unsafe { libc::atexit(remove_work_dir) };
        dir
    })
}

/// A fresh directory `work_dir()/name`.
fn fresh_dir(name: &str) -> PathBuf {
    let dir = work_dir().join(name);
    detach_mounts_under(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}

/// The docker-archive of [`TEST_IMAGE`], made once per test process:
/// podman imports a tar of the test rootfs and saves it; podman loads the
/// archive back and `ctr image import` reads it too.
pub fn test_image_archive() -> &'static Path {
    static ARCHIVE: OnceLock<PathBuf> = OnceLock::new();
    ARCHIVE.get_or_init(|| {
        let dir = fresh_dir("image");
        let tar = dir.join("rootfs.tar");
        let made = Command::new("tar")
            .arg("-C")
            .arg(rootfs())
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .output()
            .expect("run tar");
        assert!(
            made.status.success(),
            "tar of the rootfs: {}",
            stderr(&made)
        );
        let archive = dir.join("engines.tar");
        {
            let podman = Podman::bare("image-build", Named::Itself);
            podman.ok(&[
                OsStr::new("import"),
                OsStr::new("--change"),
                OsStr::new("CMD=/bin/sh"),
                tar.as_os_str(),
                OsStr::new(TEST_IMAGE),
            ]);
            podman.ok(&[
                OsStr::new("save"),
                OsStr::new("--format"),
                OsStr::new("docker-archive"),
                OsStr::new("-o"),
                archive.as_os_str(),
                OsStr::new(TEST_IMAGE),
            ]);
        }
        let _ = std::fs::remove_file(&tar);
        archive
    })
}

// ---------------------------------------------------------------------
// Commands with a time limit, and terminals
// ---------------------------------------------------------------------

/// Run `command` with `input` on its stdin (or /dev/null), its output
/// captured, for at most `limit`; Err with what it printed when it did not
/// finish (it is then killed, by its pid). A daemon the command left
/// behind may hold its pipes open (conmon, a shim): once the command has
/// exited, its output is read for two more seconds at most.
pub fn try_output_within(
    command: &mut Command,
    input: Option<&[u8]>,
    limit: Duration,
) -> Result<Output, String> {
    use std::io::{Read, Write};
    let shown = format!("{command:?}");
    let mut child = command
        .stdin(match input {
            Some(_) => Stdio::piped(),
            None => Stdio::null(),
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {shown}: {e}"))?;
    let (sender, receiver) = mpsc::channel::<(usize, Option<Vec<u8>>)>();
    let streams: [Box<dyn Read + Send>; 2] = [
        Box::new(child.stdout.take().unwrap()),
        Box::new(child.stderr.take().unwrap()),
    ];
    for (index, mut stream) in streams.into_iter().enumerate() {
        let sender = sender.clone();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 8192];
            loop {
                let chunk = match stream.read(&mut buffer) {
                    Ok(0) | Err(_) => None,
                    Ok(n) => Some(buffer[..n].to_vec()),
                };
                let end = chunk.is_none();
                if sender.send((index, chunk)).is_err() || end {
                    break;
                }
            }
        });
    }
    drop(sender);
    if let (Some(bytes), Some(mut stdin)) = (input, child.stdin.take()) {
        // A command that exits without reading closes the pipe first.
        let _ = stdin.write_all(bytes);
    }
    let deadline = Instant::now() + limit;
    let mut captured = [Vec::new(), Vec::new()];
    let mut open = 2;
    let mut exited: Option<(ExitStatus, Instant)> = None;
    loop {
        if exited.is_none() {
            if let Some(status) = child.try_wait().map_err(|e| format!("wait {shown}: {e}"))? {
                exited = Some((status, Instant::now() + Duration::from_secs(2)));
            } else if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{shown} did not finish within {limit:?} (killed)\nstdout:\n{}\nstderr:\n{}",
                    String::from_utf8_lossy(&captured[0]),
                    String::from_utf8_lossy(&captured[1])
                ));
            }
        }
        if let Some((status, drain_until)) = exited
            && (open == 0 || Instant::now() > drain_until)
        {
            let [stdout, stderr] = captured;
            return Ok(Output {
                status,
                stdout,
                stderr,
            });
        }
        match receiver.recv_timeout(Duration::from_millis(20)) {
            Ok((index, Some(bytes))) => captured[index].extend(bytes),
            Ok((_, None)) => open -= 1,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => open = 0,
        }
    }
}

/// [`try_output_within`] that fails the test when the command hangs.
pub fn output_within(command: &mut Command, input: Option<&[u8]>, limit: Duration) -> Output {
    try_output_within(command, input, limit).unwrap_or_else(|error| panic!("{error}"))
}

/// Run `argv` on a terminal of its own: script(1) starts it on a new
/// pseudo-terminal and copies `input` to it as if typed (the engines' -t
/// needs a terminal on their stdin). Its output is what the terminal
/// showed: the echo of what was typed, then what the programs wrote, with
/// CR LF line ends.
pub fn in_terminal(argv: &[OsString], env: &[(&str, &OsStr)], input: &str) -> Output {
    require_tool("script", "bsdutils");
    let mut script = Command::new("script");
    script.args([
        OsStr::new("-qec"),
        OsStr::new(&shell_line(argv)),
        OsStr::new("/dev/null"),
    ]);
    for (key, value) in env {
        script.env(key, value);
    }
    output_within(&mut script, Some(input.as_bytes()), COMMAND_LIMIT)
}

/// `argv` as one sh(1) command line, each word single-quoted.
pub fn shell_line(argv: &[OsString]) -> String {
    argv.iter()
        .map(|word| format!("'{}'", word.to_string_lossy().replace('\'', r"'\''")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Poll `done` every 50 ms for at most `limit`; false when it never held.
pub fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn words<S: AsRef<OsStr>>(args: &[S]) -> Vec<OsString> {
    args.iter().map(|a| a.as_ref().to_os_string()).collect()
}

fn shown<S: AsRef<OsStr>>(args: &[S]) -> String {
    args.iter()
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

// ---------------------------------------------------------------------
// What the engines leave on the host: mounts, cgroups, processes, the
// directories at fixed places
// ---------------------------------------------------------------------

/// Detach every mount at or below `dir` (deepest first), as listed in
/// /proc/self/mountinfo: the rootfs overlays the engines mounted for
/// containers they could not remove.
pub fn detach_mounts_under(dir: &Path) {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut points: Vec<PathBuf> = mounts
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(unescape_mountinfo)
        .filter(|point| point.starts_with(dir))
        .collect();
    points.sort_by_key(|point| std::cmp::Reverse(point.as_os_str().len()));
    for point in points {
        let _ = nix::mount::umount2(&point, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// mountinfo writes space, tab, newline and backslash as octal escapes.
fn unescape_mountinfo(field: &str) -> PathBuf {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|digits| bytes[i] == b'\\' && digits.iter().all(|d| (b'0'..=b'7').contains(d)));
        match octal {
            Some(digits) => {
                out.push(digits.iter().fold(0u8, |n, d| n * 8 + (d - b'0')));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    PathBuf::from(OsStr::from_bytes(&out))
}

/// The mount points of every cgroup hierarchy, v1 and v2 (on this lab's
/// hybrid hosts, one per v1 controller and the v2 one at
/// /sys/fs/cgroup/unified).
fn cgroup_hierarchies() -> Vec<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let fstype = right.split(' ').next()?;
            let point = left.split(' ').nth(4)?;
            matches!(fstype, "cgroup" | "cgroup2").then(|| unescape_mountinfo(point))
        })
        .collect()
}

/// The cgroup `path` (relative to the hierarchies' roots, as an engine's
/// cgroup parent or namespace names it) in every hierarchy that has it.
fn cgroup_dirs(path: &str) -> Vec<PathBuf> {
    cgroup_hierarchies()
        .into_iter()
        .map(|root| root.join(path.trim_start_matches('/')))
        .filter(|dir| dir.is_dir())
        .collect()
}

/// Every process in the cgroup `path` or below it, in any hierarchy.
fn processes_in_cgroup(path: &str) -> Vec<i32> {
    fn walk(dir: &Path, found: &mut Vec<i32>) {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        found.extend(procs.lines().filter_map(|pid| pid.parse::<i32>().ok()));
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                walk(&entry.path(), found);
            }
        }
    }
    let mut found = Vec::new();
    for dir in cgroup_dirs(path) {
        walk(&dir, &mut found);
    }
    found.sort_unstable();
    found.dedup();
    found
}

/// Remove the cgroup `path` and the cgroups below it, in every hierarchy
/// (deepest first: a cgroup with children cannot go). A cgroup whose last
/// process just died stays busy for a moment, hence the retries.
fn remove_cgroup(path: &str) {
    fn remove_tree(dir: &Path) -> bool {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&entry.path());
            }
        }
        std::fs::remove_dir(dir).is_ok() || !dir.exists()
    }
    wait_until(Duration::from_secs(5), || {
        cgroup_dirs(path)
            .iter()
            // Each hierarchy tried, also after one that failed.
            .filter(|dir| !remove_tree(dir))
            .count()
            == 0
    });
}

/// Every process whose command line contains `needle`, besides this one.
fn processes_mentioning(needle: &OsStr) -> Vec<i32> {
    let own = std::process::id() as i32;
    let needle = needle.as_bytes();
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != own)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|line| line.windows(needle.len()).any(|w| w == needle))
        })
        .collect()
}

/// SIGKILL `pids` and all their descendants: an engine's monitors (conmon,
/// the shims) are subreapers, so a container's processes all descend from
/// the monitor that ran it.
fn kill_with_descendants(pids: &[i32]) {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let parent_of = |pid: i32| -> Option<i32> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name, in parentheses, may hold spaces: count from
        // after its closing parenthesis (state, then the parent's pid).
        let (_, after) = stat.rsplit_once(')')?;
        after.split_whitespace().nth(1)?.parse().ok()
    };
    let all: Vec<(i32, i32)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| Some((pid, parent_of(pid)?)))
        .collect();
    let mut doomed: Vec<i32> = pids.to_vec();
    let mut i = 0;
    while i < doomed.len() {
        let parent = doomed[i];
        for &(pid, ppid) in &all {
            if ppid == parent && !doomed.contains(&pid) {
                doomed.push(pid);
            }
        }
        i += 1;
    }
    let own = std::process::id() as i32;
    for pid in doomed.into_iter().filter(|&pid| pid != own && pid > 1) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
}

/// What the engines (or the runtime they run) make at fixed places
/// whatever their configuration, a file before the directories that hold
/// it: podman's blob-info cache (containers/image's default for root),
/// containerd's shim sockets and default fifo directory, runc's default
/// state directory (podman passes no `--root`).
const FIXED_PATHS: [&str; 7] = [
    "/var/lib/containers/cache/blob-info-cache-v1.boltdb",
    "/var/lib/containers/cache",
    "/var/lib/containers",
    "/run/containerd/s",
    "/run/containerd/fifo",
    "/run/containerd",
    "/run/runc",
];

/// Held by every engine guard: when the first of the process starts, notes
/// which of [`FIXED_PATHS`] are missing; when the last one stops, removes
/// those again, a directory only if it is empty (rmdir(2) leaves one in
/// use).
struct FixedDirs;

static LIVE_ENGINES: Mutex<(usize, Vec<&str>)> = Mutex::new((0, Vec::new()));

impl FixedDirs {
    fn enter() -> FixedDirs {
        let mut live = LIVE_ENGINES.lock().unwrap_or_else(|p| p.into_inner());
        if live.0 == 0 {
            live.1 = FIXED_PATHS
                .into_iter()
                .filter(|dir| !Path::new(dir).exists())
                .collect();
        }
        live.0 += 1;
        FixedDirs
    }
}

impl Drop for FixedDirs {
    fn drop(&mut self) {
        let mut live = LIVE_ENGINES.lock().unwrap_or_else(|p| p.into_inner());
        live.0 -= 1;
        if live.0 == 0 {
            for path in std::mem::take(&mut live.1) {
                let path = Path::new(path);
                let _ = match path.is_dir() {
                    true => std::fs::remove_dir(path),
                    false => std::fs::remove_file(path),
                };
            }
        }
    }
}

/// Engines are root-only programs here: say so, as the root tests do.
fn require_engine(program: &str, package: &str) {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the engines need root (or set {SKIP_ROOT_ENV}=1 to skip the root tests)"
    );
    require_tool(program, package);
}

// ---------------------------------------------------------------------
// podman
// ---------------------------------------------------------------------

/// Under which name podman runs the runtime. podman passes
/// `--log-format=json --log FILE` (and reads a failure from that file)
/// only to runtimes whose file name it knows (runc, crun, ...); any other
/// name gets neither, and podman reads the runtime's stderr instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Named {
    /// The runtime's own path.
    Itself,
    /// A symbolic link named `runc`, in the test's directory, to it.
    Runc,
}

/// podman with everything of its own under a directory of the test's:
/// storage (overlay), run root, tmpdir (exit files, the events log),
/// network configuration and hooks directories, and a cgroup parent for
/// its containers and their conmon monitors. Its events go to a file (no
/// journald here), cgroups are made by hand (cgroupfs: no systemd here),
/// containers run with no network (no netavark bridge or firewall rules
/// on the host). Its locks come from the shared memory segment every
/// podman of the host allocates from (/dev/shm/libpod_lock), and go back
/// to it with `rm`.
///
/// No private containers.conf (CONTAINERS_CONF): conmon runs podman's
/// cleanup (`podman container cleanup`, which deletes the container through
/// the runtime) with nearly no environment (not even PATH) and only the
/// global flags podman hands it, so the cleanup would read another
/// configuration than the run did. Everything is set by those flags.
///
/// Dropped: every container removed (`rm --all --force`), anything podman
/// could not stop killed, mounts below the directory detached, the cgroups
/// removed, the directory removed.
pub struct Podman {
    dir: PathBuf,
    runtime: PathBuf,
    cgroup_parent: String,
    console_sockets_before: Vec<PathBuf>,
    _fixed: FixedDirs,
}

impl Podman {
    /// A podman named `name` (a few letters: podman refuses a long run
    /// root) with [`TEST_IMAGE`] loaded.
    pub fn new(name: &str, named: Named) -> Podman {
        let archive = test_image_archive();
        let podman = Podman::bare(name, named);
        let loaded = podman.ok(&[OsStr::new("load"), OsStr::new("-i"), archive.as_os_str()]);
        assert!(loaded.contains(TEST_IMAGE), "podman load: {loaded}");
        podman
    }

    /// A podman with an empty storage.
    pub fn bare(name: &str, named: Named) -> Podman {
        require_engine("podman", "podman");
        require_engine("conmon", "conmon");
        let fixed = FixedDirs::enter();
        let dir = fresh_dir(&format!("pm-{name}"));
        for sub in ["tmp", "net", "hooks", "bin"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let runtime = match named {
            Named::Itself => oci_runtime(),
            Named::Runc => {
                let link = dir.join("bin/runc");
                std::os::unix::fs::symlink(oci_runtime(), &link).unwrap();
                link
            }
        };
        Podman {
            cgroup_parent: format!("/lab-eng-{}-{name}", std::process::id()),
            dir,
            runtime,
            console_sockets_before: console_sockets(),
            _fixed: fixed,
        }
    }

    /// The cgroup (relative to each hierarchy's root) its containers go
    /// below.
    pub fn cgroup_parent(&self) -> &str {
        &self.cgroup_parent
    }

    /// `podman` with the global flags that keep it to its directory, then
    /// `args`.
    pub fn argv<S: AsRef<OsStr>>(&self, args: &[S]) -> Vec<OsString> {
        let dir = |sub: &str| self.dir.join(sub).into_os_string();
        let mut argv: Vec<OsString> = vec!["podman".into()];
        argv.extend([
            "--root".into(),
            dir("storage"),
            "--runroot".into(),
            dir("run"),
            "--tmpdir".into(),
            dir("tmp"),
            "--storage-driver".into(),
            "overlay".into(),
            "--cgroup-manager".into(),
            "cgroupfs".into(),
            "--events-backend".into(),
            "file".into(),
            "--network-config-dir".into(),
            dir("net"),
            "--hooks-dir".into(),
            dir("hooks"),
            "--runtime".into(),
            self.runtime.clone().into_os_string(),
        ]);
        argv.extend(words(args));
        argv
    }

    /// The environment podman runs with besides the test's: its image
    /// copies go to its own tmpdir, not /var/tmp.
    pub fn env(&self) -> Vec<(&'static str, OsString)> {
        vec![("TMPDIR", self.dir.join("tmp").into_os_string())]
    }

    fn command<S: AsRef<OsStr>>(&self, args: &[S]) -> Command {
        let argv = self.argv(args);
        let mut command = Command::new(&argv[0]);
        command.args(&argv[1..]).envs(self.env());
        command
    }

    /// `podman ARGS`, within [`COMMAND_LIMIT`].
    pub fn output<S: AsRef<OsStr>>(&self, args: &[S]) -> Output {
        output_within(&mut self.command(args), None, COMMAND_LIMIT)
    }

    /// A podman command that must succeed; its stdout.
    pub fn ok<S: AsRef<OsStr>>(&self, args: &[S]) -> String {
        let output = self.output(args);
        assert!(
            output.status.success(),
            "podman {} failed ({}):\n{}{}",
            shown(args),
            output.status,
            stdout(&output),
            stderr(&output)
        );
        stdout(&output)
    }

    /// The flags every `podman run` here needs: no network, the test's
    /// cgroup parent, and ulimits this host allows (podman's defaults
    /// raise nofile and nproc past what the machine lets it set without
    /// CAP_SYS_RESOURCE).
    pub fn run_flags(&self) -> Vec<OsString> {
        words(&[
            "--network",
            "none",
            "--cgroup-parent",
            &self.cgroup_parent,
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
        ])
    }

    /// The arguments of `podman run FLAGS [run_flags] TEST_IMAGE COMMAND`.
    pub fn run_args(&self, flags: &[&str], command: &[&str]) -> Vec<OsString> {
        let mut args = words(&["run"]);
        args.extend(words(flags));
        args.extend(self.run_flags());
        args.push(TEST_IMAGE.into());
        args.extend(words(command));
        args
    }

    /// `podman run FLAGS TEST_IMAGE COMMAND`, without a terminal.
    pub fn run(&self, flags: &[&str], command: &[&str]) -> Output {
        self.output(&self.run_args(flags, command))
    }

    /// `podman run FLAGS TEST_IMAGE COMMAND` on a terminal of its own,
    /// `input` typed into it.
    pub fn run_in_terminal(&self, flags: &[&str], command: &[&str], input: &str) -> Output {
        let env = self.env();
        let env: Vec<(&str, &OsStr)> = env.iter().map(|(k, v)| (*k, v.as_os_str())).collect();
        in_terminal(&self.argv(&self.run_args(flags, command)), &env, input)
    }

    /// One field of `podman inspect` (a Go template such as
    /// `{{.State.Status}}`), trimmed.
    pub fn inspect(&self, container: &str, template: &str) -> String {
        self.ok(&["inspect", "--format", template, container])
            .trim()
            .to_string()
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let ids = try_output_within(
            &mut self.command(&["ps", "--all", "--quiet", "--no-trunc"]),
            None,
            COMMAND_LIMIT,
        )
        .map(|output| stdout(&output))
        .unwrap_or_default();
        let removed = try_output_within(
            &mut self.command(&["rm", "--all", "--force", "--time", "0"]),
            None,
            COMMAND_LIMIT,
        );
        // What podman could not stop (a runtime that failed `kill` or
        // `delete`): the conmon monitors, whose command line names this
        // directory, with the containers below them; whatever else is in
        // the test's cgroups.
        let mut stragglers = processes_mentioning(self.dir.as_os_str());
        stragglers.extend(processes_in_cgroup(&self.cgroup_parent));
        kill_with_descendants(&stragglers);
        if !removed.is_ok_and(|output| output.status.success()) {
            // The runtime may still hold their state in its default root.
            for id in ids.split_whitespace() {
                let _ = try_output_within(
                    Command::new(&self.runtime).args(["delete", "--force", id]),
                    None,
                    Duration::from_secs(30),
                );
            }
        }
        detach_mounts_under(&self.dir);
        remove_cgroup(&self.cgroup_parent);
        let _ = std::fs::remove_dir_all(&self.dir);
        // conmon binds a console socket for `run -t` in /tmp (podman does
        // not pass it TMPDIR) and leaves it there when the runtime fails
        // before it connects: those that appeared meanwhile and that no
        // process holds any more go.
        let bound = bound_unix_sockets();
        for socket in console_sockets() {
            if !self.console_sockets_before.contains(&socket) && !bound.contains(&socket) {
                let _ = std::fs::remove_file(socket);
            }
        }
    }
}

/// conmon's console sockets: /tmp/conmon-term.XXXXXX.
fn console_sockets() -> Vec<PathBuf> {
    std::fs::read_dir("/tmp")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| entry.file_name().as_bytes().starts_with(b"conmon-term."))
        .map(|entry| entry.path())
        .collect()
}

/// The paths of the unix sockets bound in this network namespace, from
/// /proc/net/unix (its last column).
fn bound_unix_sockets() -> Vec<PathBuf> {
    std::fs::read_to_string("/proc/net/unix")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|line| line.split_whitespace().nth(7))
        .map(PathBuf::from)
        .collect()
}

// ---------------------------------------------------------------------
// containerd
// ---------------------------------------------------------------------

/// The configuration file the tests give containerd, with `@DIR@` and
/// `@RUNTIME@` to fill in (the book quotes it).
pub const CONTAINERD_CONFIG: &str = include_str!("../fixtures/containerd/config.toml");

/// A containerd of the test's own: configuration, content, snapshots,
/// task state, sockets and log under a directory of the test's (see
/// tests/fixtures/containerd/config.toml), and a containerd namespace
/// named after the test, which is also the cgroup its containers go below
/// (`ctr run` puts a container in /NAMESPACE/ID). [`Containerd::ctr`]
/// talks to it; `ctr run` is given the runtime under test with
/// `--runc-binary`, a runtime state directory of the test's with
/// `--runc-root`, and a fifo directory of the test's with `--fifo-dir`.
///
/// Dropped: its tasks killed and deleted and its containers removed (with
/// their snapshots), containerd stopped, any shim or container process it
/// left killed, mounts below the directory detached, the cgroups and the
/// directory removed.
pub struct Containerd {
    dir: PathBuf,
    child: Child,
    namespace: String,
    _fixed: FixedDirs,
}

impl Containerd {
    /// Start a containerd named `name` and wait until it answers.
    pub fn start(name: &str) -> Containerd {
        require_engine("containerd", "containerd");
        require_engine("ctr", "containerd");
        require_engine("containerd-shim-runc-v2", "containerd");
        let fixed = FixedDirs::enter();
        let dir = fresh_dir(&format!("cd-{name}"));
        for sub in ["cni", "fifo", "runc", "tmp"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let config = CONTAINERD_CONFIG
            .replace("@DIR@", &dir.to_string_lossy())
            .replace("@RUNTIME@", &oci_runtime().to_string_lossy());
        std::fs::write(dir.join("config.toml"), config).unwrap();
        let log = std::fs::File::create(dir.join("containerd.log")).unwrap();
        // TMPDIR reaches the shims, which put a pty's socket
        // (/tmp/ptyNNN) and each exec's process.json there.
        let child = Command::new("containerd")
            .arg("--config")
            .arg(dir.join("config.toml"))
            .env("TMPDIR", dir.join("tmp"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start containerd");
        let mut containerd = Containerd {
            namespace: format!("lab-{}-{name}", std::process::id()),
            dir,
            child,
            _fixed: fixed,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = containerd.child.try_wait() {
                panic!(
                    "containerd exited ({status}) before it answered; its log:\n{}",
                    containerd.log()
                );
            }
            let version = containerd.quietly(&["--connect-timeout", "2s", "version"]);
            if version.is_some_and(|output| output.status.success()) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "containerd did not answer `ctr version` on {} within 30 s; its log:\n{}",
                containerd.socket().display(),
                containerd.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        containerd
    }

    /// Its gRPC socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("containerd.sock")
    }

    /// Its containerd namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// What containerd logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default()
    }

    /// The directory of a task's bundle, whose `rootfs` the shim mounted
    /// (visible from the host).
    pub fn bundle(&self, id: &str) -> PathBuf {
        self.dir
            .join("state/io.containerd.runtime.v2.task")
            .join(&self.namespace)
            .join(id)
    }

    /// Where the shim of task `id` binds its socket: a fixed directory,
    /// /run/containerd/s, and a name hashed from containerd's address, the
    /// namespace and the task (containerd's runtime/v2/shim
    /// SocketAddress). A shim removes it when it exits, not when killed.
    fn shim_socket(&self, id: &str) -> PathBuf {
        use sha2::{Digest, Sha256};
        let key = format!("{}/{}/{id}", self.socket().display(), self.namespace);
        PathBuf::from(format!("/run/containerd/s/{:x}", Sha256::digest(key)))
    }

    /// `ctr --address SOCKET --namespace NAMESPACE ARGS`.
    pub fn ctr_argv<S: AsRef<OsStr>>(&self, args: &[S]) -> Vec<OsString> {
        let mut argv = words(&["ctr", "--address"]);
        argv.push(self.socket().into_os_string());
        argv.extend(words(&["--namespace", &self.namespace]));
        argv.extend(words(args));
        argv
    }

    fn command<S: AsRef<OsStr>>(&self, args: &[S]) -> Command {
        let argv = self.ctr_argv(args);
        let mut command = Command::new(&argv[0]);
        command.args(&argv[1..]);
        command
    }

    /// `ctr ARGS` against this containerd, within [`COMMAND_LIMIT`].
    pub fn ctr<S: AsRef<OsStr>>(&self, args: &[S]) -> Output {
        output_within(&mut self.command(args), None, COMMAND_LIMIT)
    }

    /// A ctr command that must succeed; its stdout.
    pub fn ctr_ok<S: AsRef<OsStr>>(&self, args: &[S]) -> String {
        let output = self.ctr(args);
        assert!(
            output.status.success(),
            "ctr {} failed ({}):\n{}{}\ncontainerd's log:\n{}",
            shown(args),
            output.status,
            stdout(&output),
            stderr(&output),
            self.log()
        );
        stdout(&output)
    }

    /// The flags of `ctr run` that make the shim call the runtime under
    /// test (instead of runc) with a state directory of the test's, and
    /// keep the I/O fifos in the test's directory.
    pub fn runtime_flags(&self) -> Vec<OsString> {
        let mut flags = words(&["--runc-binary"]);
        flags.push(oci_runtime().into_os_string());
        flags.push("--runc-root".into());
        flags.push(self.dir.join("runc").into_os_string());
        flags.extend(self.fifo_flags());
        flags
    }

    /// `--fifo-dir DIR`, for `ctr run` and `ctr task exec`: ctr's default
    /// (/run/containerd/fifo) is shared with the host.
    pub fn fifo_flags(&self) -> Vec<OsString> {
        vec!["--fifo-dir".into(), self.dir.join("fifo").into_os_string()]
    }

    /// The arguments of `ctr run FLAGS [runtime_flags] TEST_IMAGE ID
    /// COMMAND`.
    pub fn run_args(&self, flags: &[&str], id: &str, command: &[&str]) -> Vec<OsString> {
        let mut args = words(&["run"]);
        args.extend(words(flags));
        args.extend(self.runtime_flags());
        args.extend(words(&[TEST_IMAGE, id]));
        args.extend(words(command));
        args
    }

    /// `ctr run FLAGS TEST_IMAGE ID COMMAND`, without a terminal.
    pub fn run(&self, flags: &[&str], id: &str, command: &[&str]) -> Output {
        self.ctr(&self.run_args(flags, id, command))
    }

    /// `ctr run FLAGS TEST_IMAGE ID COMMAND` on a terminal of its own,
    /// `input` typed into it.
    pub fn run_in_terminal(
        &self,
        flags: &[&str],
        id: &str,
        command: &[&str],
        input: &str,
    ) -> Output {
        in_terminal(
            &self.ctr_argv(&self.run_args(flags, id, command)),
            &[],
            input,
        )
    }

    /// `ctr image import` of [`TEST_IMAGE`]'s archive.
    pub fn import_test_image(&self) {
        let archive = test_image_archive();
        let imported = self.ctr_ok(&[
            OsStr::new("image"),
            OsStr::new("import"),
            archive.as_os_str(),
        ]);
        assert!(
            imported.contains(TEST_IMAGE),
            "ctr image import: {imported}"
        );
    }

    /// `ctr task ls`, as (id, pid, status) rows.
    pub fn tasks(&self) -> Vec<(String, u32, String)> {
        self.ctr_ok(&["task", "ls"])
            .lines()
            .skip(1)
            .filter_map(|line| {
                let mut fields = line.split_whitespace();
                let id = fields.next()?.to_string();
                let pid = fields.next()?.parse().ok()?;
                Some((id, pid, fields.next()?.to_string()))
            })
            .collect()
    }

    /// The status `ctr task ls` shows for task `id`, if it lists it.
    pub fn task_status(&self, id: &str) -> Option<String> {
        self.tasks()
            .into_iter()
            .find(|(task, _, _)| task == id)
            .map(|(_, _, status)| status)
    }

    fn quietly<S: AsRef<OsStr>>(&self, args: &[S]) -> Option<Output> {
        try_output_within(&mut self.command(args), None, Duration::from_secs(30)).ok()
    }

    fn listed(&self, what: &str) -> Vec<String> {
        self.quietly(&[what, "ls", "--quiet"])
            .map(|output| stdout(&output))
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            for task in self.listed("task") {
                let _ = self.quietly(&["task", "delete", "--force", &task]);
            }
            for container in self.listed("container") {
                let _ = self.quietly(&["container", "delete", &container]);
            }
        }
        // containerd ends on SIGTERM; a containerd that hangs, on SIGKILL.
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let stopped = wait_until(Duration::from_secs(10), || {
            !matches!(self.child.try_wait(), Ok(None))
        });
        if !stopped {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        // Shims outlive containerd: those of tasks it could not delete
        // name its socket on their command line.
        let mut stragglers = processes_mentioning(self.socket().as_os_str());
        stragglers.extend(processes_in_cgroup(&self.namespace));
        kill_with_descendants(&stragglers);
        // A task's bundle directory outlives a killed shim, so it names
        // every task whose shim socket or runtime state may be left.
        let bundles = self.bundle("");
        for entry in std::fs::read_dir(&bundles).into_iter().flatten().flatten() {
            let id = entry.file_name();
            let _ = std::fs::remove_file(self.shim_socket(&id.to_string_lossy()));
            let runtime_root = self.dir.join("runc").join(&self.namespace);
            let _ = try_output_within(
                Command::new(oci_runtime())
                    .arg("--root")
                    .arg(&runtime_root)
                    .args([OsStr::new("delete"), OsStr::new("--force"), &id]),
                None,
                Duration::from_secs(30),
            );
        }
        detach_mounts_under(&self.dir);
        remove_cgroup(&self.namespace);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
