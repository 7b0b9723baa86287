//! `lab bench`: what each isolation feature costs, measured against the
//! tools that do the same job (unshare, chroot, bwrap, runc).
//!
//! Each subject is a command line that starts a container running
//! `/bin/true` and waits for its exit code. All subjects run `warmup`
//! rounds unmeasured, then `runs` rounds, one run of each per round; the table shows min, median and p95 wall
//! time and the peak resident set size wait4(2) reports. Like the tour, the
//! bench runs inside a stand-in host (its own network namespace), so the
//! network chapter's bridge never touches the machine's real network.
//!
//! Chapter 07's containers outlive their command, so its verbs are timed
//! too ([`lifecycle`]): `run -d` until it returns, `exec` into a running
//! container, `stop` of one whose command ends on SIGTERM, and its
//! monitor's memory, beside `runc run -d`, `runc exec` and conmon.
//!
//! Chapter 08's image verbs ([`images`]): `load` of a five-layer archive
//! the bench makes, beside GNU `tar -x` of its layers; `pull` from a
//! registry on 127.0.0.1, beside `skopeo copy`; `run --rm` of the image,
//! beside chapter 07 on the plain rootfs.
//!
//! Chapter 09's hardening ([`hardening`]): what its seccomp filter costs a
//! system call (getppid(2) in ch09 beside ch08, and in the bench's own
//! children under no filter, a one-instruction one and the default), and
//! what compiling and loading the filter costs a start.
//!
//! Chapter 10's OCI runtime ([`oci`]): `run` of one bundle beside
//! `runc run`, `create` + `start` + wait + `delete` (what engines call)
//! beside runc's, and `podman run --rm` with each as podman's runtime.

mod hardening;
mod images;
mod oci;

pub use hardening::{HardeningBenchPlan, hardening};
pub use images::{ImageBenchPlan, images};
pub use oci::{OciBenchPlan, oci};

use crate::error::LabError;
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A part of the bench, for `lab bench --only`: one table of the report
/// (the start-up table with what each step adds, a chapter's rows, the
/// workloads inside ch03, TCP into ch04).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Section {
    /// Every chapter and peer starting /bin/true.
    Startup,
    /// Chapter 07's run -d, exec, stop and its monitor.
    Lifecycle,
    /// Chapter 08's load, pull, commit, build and run of an image.
    Images,
    /// Chapter 09's seccomp filter.
    Hardening,
    /// Chapter 10 beside runc, alone and under podman.
    Oci,
    /// A CPU-bound and a syscall-heavy loop inside ch03 and on the host.
    Workloads,
    /// TCP into ch04 through the bridge, and with --net host.
    Network,
}

/// Whether `section` is run when `--only` names `only` (none: all).
pub fn selected(only: &[Section], section: Section) -> bool {
    only.is_empty() || only.contains(&section)
}

/// One thing to time.
#[derive(Clone, Debug)]
pub struct Subject {
    pub name: String,
    /// `chapter` (ours), `peer` (another tool) or `baseline`.
    pub kind: &'static str,
    pub what: &'static str,
    pub argv: Vec<OsString>,
}

impl Subject {
    /// The same container running `/bin/sleep 0.3` instead of `/bin/true`,
    /// so its runtime can be looked at while it runs (None for runc, whose
    /// command is in its bundle).
    fn sleeper(&self) -> Option<Vec<OsString>> {
        let (last, rest) = self.argv.split_last()?;
        (last == "/bin/true" && !rest.is_empty()).then(|| {
            let mut argv = rest.to_vec();
            argv.extend(words(&["/bin/sleep", "0.3"]));
            argv
        })
    }
}

/// What the runs of one subject measured.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Timing {
    pub name: String,
    pub kind: String,
    pub what: String,
    pub runs: usize,
    pub min_ms: f64,
    pub median_ms: f64,
    pub p95_ms: f64,
    /// Peak RSS of the runtime's own process (VmHWM in /proc/PID/status,
    /// read while its container runs), in KiB; 0 where it cannot be taken.
    pub max_rss_kib: i64,
}

/// Inside a container vs on the host: the same workload, timed.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Throughput {
    pub workload: String,
    pub host_ms: f64,
    pub container_ms: f64,
    /// container / host - 1, in percent (positive: slower inside).
    pub overhead_percent: f64,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Report {
    pub timings: Vec<Timing>,
    /// TCP into a container: through the bridge and a published port
    /// (`container_ms`) against --net host (`host_ms`).
    #[serde(default)]
    pub network: Vec<Throughput>,
    /// Peers that are not installed, by name.
    pub skipped: Vec<String>,
    pub throughput: Vec<Throughput>,
    /// Chapter 07's verbs and its monitor, beside runc's and conmon's.
    #[serde(default)]
    pub lifecycle: Comparison,
    /// Chapter 08's image verbs, beside GNU tar, skopeo and chapter 07.
    #[serde(default)]
    pub images: Comparison,
    /// Chapter 09's seccomp filter: its cost per call, beside ch08, and
    /// its compile and load.
    #[serde(default)]
    pub hardening: Comparison,
    /// Chapter 10's runtime beside runc on one bundle, and under podman.
    #[serde(default)]
    pub oci: Comparison,
    pub kernel: String,
    pub cpus: usize,
}

/// Our operations measured beside a peer's: one row per operation, ours
/// and the peer's side by side (chapter 07's lifecycle, chapter 08's
/// images).
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct Comparison {
    pub rows: Vec<ComparedRow>,
    /// What the rows cannot say: a peer with no such operation, one not
    /// installed or not measured, and why.
    pub notes: Vec<String>,
}

/// One operation of ours, and the peer's beside it.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct ComparedRow {
    pub operation: String,
    /// `ms` (wall time), `KiB` (memory) or `MiB/s` (throughput).
    pub unit: String,
    /// Measured samples behind `median` and `p95`.
    pub runs: usize,
    /// For a rate (`MiB/s`), the rate of the median run and of the p95
    /// run: `p95` is the slow end, as it is for a time.
    pub median: f64,
    pub p95: f64,
    /// The peer's command, or why there is none.
    pub peer: String,
    /// None when the peer has no such operation or was not measured.
    pub peer_median: Option<f64>,
    pub peer_p95: Option<f64>,
    /// The performance goal this row is held to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goal: Option<Goal>,
}

/// A performance goal (issue 16's for chapter 08), and how the medians
/// measured against it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Goal {
    /// What is asked, e.g. `at least 0.9x tar's rate`.
    pub target: String,
    /// What was measured, in the goal's terms, e.g. `0.93x`.
    pub measured: String,
    pub met: bool,
}

fn words(parts: &[&str]) -> Vec<OsString> {
    parts.iter().map(OsString::from).collect()
}

/// `program` and `args`, as a command line to run.
fn argv(program: &Path, args: &[&str]) -> Vec<OsString> {
    let mut argv = vec![program.as_os_str().to_owned()];
    argv.extend(words(args));
    argv
}

/// `row` with the goal `goal` makes of it.
fn with_goal(
    row: Option<ComparedRow>,
    goal: fn(&ComparedRow) -> Option<Goal>,
) -> Option<ComparedRow> {
    row.map(|mut row| {
        row.goal = goal(&row);
        row
    })
}

/// Our chapters, then the peers that are installed, each with the
/// isolation it provides.
pub fn subjects(rootfs: &Path, runc_bundle: Option<&Path>) -> (Vec<Subject>, Vec<String>) {
    let root = rootfs.to_string_lossy().into_owned();
    let sibling = |name: &str| crate::rootfs::sibling(name).to_string_lossy().into_owned();
    let chapter = |name: &str, what: &'static str, args: &[&str]| {
        let mut argv = words(&[&sibling(name)]);
        argv.extend(words(args));
        Subject {
            name: name.to_string(),
            kind: "chapter",
            what,
            argv,
        }
    };
    let mut list = vec![
        Subject {
            name: "/bin/true".into(),
            kind: "baseline",
            what: "fork, exec, wait: no runtime at all",
            argv: words(&["/bin/true"]),
        },
        chapter("ch00-process", "fork/exec/wait", &["/bin/true"]),
        chapter("ch01-chroot", "+ chroot", &[&root, "/bin/true"]),
        chapter(
            "ch02-jail",
            "+ PID/UTS ns, init, /proc",
            &[&root, "/bin/true"],
        ),
        chapter(
            "ch03-namespaces",
            "+ mount/IPC ns, pivot_root, /dev",
            &[&root, "/bin/true"],
        ),
        Subject {
            name: "ch04-net --net none".into(),
            ..chapter(
                "ch04-net",
                "+ network ns",
                &["--net", "none", &root, "/bin/true"],
            )
        },
        chapter("ch04-net", "+ veth, bridge, NAT", &[&root, "/bin/true"]),
        Subject {
            name: "ch05-user --net none".into(),
            ..chapter(
                "ch05-user",
                "+ user ns, idmapped rootfs",
                &["--net", "none", &root, "/bin/true"],
            )
        },
        Subject {
            name: "ch06-cgroups --net none".into(),
            ..chapter(
                "ch06-cgroups",
                "+ cgroup budgets (memory, CPU, pids)",
                &[
                    "--net",
                    "none",
                    "--memory",
                    "64M",
                    "--cpus",
                    "1",
                    "--pids",
                    "64",
                    &root,
                    "/bin/true",
                ],
            )
        },
        Subject {
            name: "ch04-net --net host".into(),
            ..chapter(
                "ch04-net",
                "ch04 sharing the host's network",
                &["--net", "host", &root, "/bin/true"],
            )
        },
    ];
    list.retain(|s| s.kind != "chapter" || Path::new(&s.argv[0]).is_file());
    let mut skipped = Vec::new();
    let mut peer = |tool: &str, name: &str, what: &'static str, argv: Vec<OsString>| {
        if crate::hostinfo::find_in_path(tool).is_some() {
            list.push(Subject {
                name: name.into(),
                kind: "peer",
                what,
                argv,
            });
        } else {
            skipped.push(format!("{name} ({tool} not installed)"));
        }
    };
    peer(
        "chroot",
        "chroot(1)",
        "chroot, like ch01",
        words(&["chroot", &root, "/bin/true"]),
    );
    peer(
        "unshare",
        "unshare -mpfui + chroot",
        "mount/PID/UTS/IPC ns, like ch03",
        words(&["unshare", "-mpfui", "chroot", &root, "/bin/true"]),
    );
    peer(
        "unshare",
        "unshare -mpfuin + chroot",
        "+ network ns, like ch04 --net none",
        words(&["unshare", "-mpfuin", "chroot", &root, "/bin/true"]),
    );
    peer(
        "bwrap",
        "bwrap --unshare-all",
        "all namespaces, /proc, /dev",
        words(&[
            "bwrap",
            "--unshare-all",
            "--bind",
            &root,
            "/",
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "/bin/true",
        ]),
    );
    match runc_bundle {
        Some(bundle) => peer(
            "runc",
            "runc run",
            "the OCI reference runtime",
            words(&[
                "runc",
                "run",
                "--bundle",
                &bundle.to_string_lossy(),
                "labbench",
            ]),
        ),
        None => skipped.push("runc run (runc not installed)".into()),
    }
    (list, skipped)
}

/// An OCI bundle for `runc run` around `rootfs`: config.json from
/// `runc spec`, with no terminal, `args` as the process (`/bin/true` for
/// the start-up table) and the rootfs by absolute path.
pub fn runc_bundle(rootfs: &Path, dir: &Path, args: &[&str]) -> Option<std::path::PathBuf> {
    crate::hostinfo::find_in_path("runc")?;
    std::fs::create_dir_all(dir).ok()?;
    let spec = Command::new("runc")
        .args(["spec", "--bundle"])
        .arg(dir)
        .status()
        .ok()?;
    if !spec.success() {
        return None;
    }
    let path = dir.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).ok()?).ok()?;
    config["process"]["terminal"] = false.into();
    config["process"]["args"] = serde_json::json!(args);
    config["root"]["path"] = rootfs.to_string_lossy().into_owned().into();
    config["root"]["readonly"] = true.into();
    std::fs::write(&path, config.to_string()).ok()?;
    Some(dir.to_path_buf())
}

/// Run `argv` once and return its wall time; it must exit 0.
fn run_once(argv: &[OsString]) -> Result<Duration, LabError> {
    run_once_with(argv, &[])
}

/// [`run_once`] with `env` added to the environment (an image store of
/// the bench's own).
fn run_once_with(argv: &[OsString], env: &[(&str, &Path)]) -> Result<Duration, LabError> {
    run_logged(argv, env, None)
}

/// [`run_once_with`], its stderr into the file `log` (made anew) when
/// given: a failure then quotes what it said. A file, not a pipe: a
/// container that outlives the command (an OCI runtime's `create`) holds
/// its stderr open, and the end of a pipe would not come before its own.
fn run_logged(
    argv: &[OsString],
    env: &[(&str, &Path)],
    log: Option<&Path>,
) -> Result<Duration, LabError> {
    let line = || {
        argv.iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let stderr = match log {
        Some(path) => std::fs::File::create(path)
            .map_err(|e| LabError::io("create", path.display(), e))?
            .into(),
        None => Stdio::null(),
    };
    let started = Instant::now();
    let status = Command::new(&argv[0])
        .args(&argv[1..])
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .status()
        .map_err(|e| LabError::ToolFailed {
            command: line(),
            message: e.to_string(),
        })?;
    let elapsed = started.elapsed();
    if !status.success() {
        let said = log
            .and_then(|path| std::fs::read_to_string(path).ok())
            .map(|text| last_lines(&text, 5))
            .filter(|text| !text.is_empty())
            .map_or(String::new(), |text| format!(": {text}"));
        return Err(LabError::ToolFailed {
            command: line(),
            message: format!("did not exit 0 ({status}){said}"),
        });
    }
    Ok(elapsed)
}

/// The last `count` lines of `text` that say something, on one line.
fn last_lines(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect();
    lines[lines.len().saturating_sub(count)..].join(" / ")
}

/// The runtime's own peak RSS: its VmHWM while the container sleeps. (Not
/// wait4(2)'s ru_maxrss: that counts the memory a child had before exec,
/// which is its parent's, here `lab` itself.)
fn runtime_peak_rss(argv: &[OsString]) -> i64 {
    let Ok(mut child) = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    else {
        return 0;
    };
    std::thread::sleep(Duration::from_millis(150));
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
    let _ = child.wait();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn percentile(sorted: &[f64], fraction: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// Time every subject, in rounds: each round runs every subject once, so
/// a slow moment of the machine (another process, a frequency change)
/// touches all subjects alike instead of whichever ran then. `progress` is
/// told each round.
pub fn measure_all(
    subjects: &[Subject],
    warmup: usize,
    runs: usize,
    progress: impl Fn(usize),
) -> Result<Vec<Timing>, LabError> {
    for _ in 0..warmup {
        for subject in subjects {
            run_once(&subject.argv)?;
        }
    }
    let mut times = vec![Vec::with_capacity(runs); subjects.len()];
    for round in 0..runs {
        progress(round);
        for (subject, times) in subjects.iter().zip(&mut times) {
            times.push(run_once(&subject.argv)?.as_secs_f64() * 1000.0);
        }
    }
    subjects
        .iter()
        .zip(times)
        .map(|(subject, mut times)| {
            let max_rss = match (subject.kind, subject.sleeper()) {
                ("baseline", _) | (_, None) => 0,
                (_, Some(sleeper)) => (0..3)
                    .map(|_| runtime_peak_rss(&sleeper))
                    .max()
                    .unwrap_or(0),
            };
            times.sort_by(|a, b| a.total_cmp(b));
            Ok(Timing {
                name: subject.name.clone(),
                kind: subject.kind.into(),
                what: subject.what.into(),
                runs,
                min_ms: times[0],
                median_ms: percentile(&times, 0.5),
                p95_ms: percentile(&times, 0.95),
                max_rss_kib: max_rss,
            })
        })
        .collect()
}

/// The same workload on the host and inside ch03 (best of `repeat`).
pub fn throughput(
    rootfs: &Path,
    iterations: u64,
    syscalls: u64,
    repeat: usize,
) -> Result<Vec<Throughput>, LabError> {
    let probe = crate::rootfs::sibling("lab-probe")
        .to_string_lossy()
        .into_owned();
    let chapter = crate::rootfs::sibling("ch03-namespaces")
        .to_string_lossy()
        .into_owned();
    let root = rootfs.to_string_lossy().into_owned();
    let mut results = Vec::new();
    for (workload, flag, count) in [
        ("CPU-bound loop", "--burn-cpu", iterations),
        ("getppid(2) loop", "--burn-syscalls", syscalls),
    ] {
        let count = count.to_string();
        let host = vec![probe.as_str(), flag, &count];
        let inside = vec![
            chapter.as_str(),
            &root,
            "/usr/local/bin/lab-probe",
            flag,
            &count,
        ];
        let once = |argv: &[&str]| -> Result<f64, LabError> {
            let output = Command::new(argv[0])
                .args(&argv[1..])
                .output()
                .map_err(|e| LabError::ToolFailed {
                    command: argv.join(" "),
                    message: e.to_string(),
                })?;
            let nanos: f64 = String::from_utf8_lossy(&output.stdout)
                .trim()
                .parse()
                .map_err(|_| LabError::ToolFailed {
                    command: argv.join(" "),
                    message: format!(
                        "printed no timing: {}",
                        String::from_utf8_lossy(&output.stderr).trim()
                    ),
                })?;
            Ok(nanos / 1e6)
        };
        // Alternate host and container runs, so that a change in the
        // machine's load or clock speed touches both alike; keep the best.
        let (mut host_ms, mut container_ms) = (f64::MAX, f64::MAX);
        for _ in 0..repeat {
            host_ms = host_ms.min(once(&host)?);
            container_ms = container_ms.min(once(&inside)?);
        }
        results.push(Throughput {
            workload: workload.into(),
            host_ms,
            container_ms,
            overhead_percent: (container_ms / host_ms - 1.0) * 100.0,
        });
    }
    Ok(results)
}

/// Send `mib` MiB over TCP from the host into a ch04 container, through a
/// published port and the bridge, and into one sharing the host's network;
/// best of `repeat` for each. The receiving end is `lab-probe --sink`.
pub fn network_throughput(
    rootfs: &Path,
    mib: usize,
    repeat: usize,
) -> Result<Vec<Throughput>, LabError> {
    use std::io::{BufRead, Write};
    let chapter = crate::rootfs::sibling("ch04-net");
    let send = |flags: &[&str], port: u16| -> Result<f64, LabError> {
        let sink_port = if flags.contains(&"host") { port } else { 9000 };
        let mut receiver = Command::new(&chapter)
            .args(flags)
            .arg(rootfs)
            .args(["/usr/local/bin/lab-probe", "--sink", &sink_port.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| LabError::ToolFailed {
                command: "ch04-net".into(),
                message: e.to_string(),
            })?;
        let mut ready = String::new();
        let mut lines = std::io::BufReader::new(receiver.stdout.take().expect("piped"));
        let _ = lines.read_line(&mut ready);
        let failed = |message: String| LabError::ToolFailed {
            command: format!("ch04-net {}", flags.join(" ")),
            message,
        };
        if !ready.starts_with("listening") {
            let _ = receiver.kill();
            return Err(failed("the sink did not start".into()));
        }
        let chunk = vec![0u8; 1 << 20];
        let started = Instant::now();
        let mut stream =
            std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| failed(e.to_string()))?;
        for _ in 0..mib {
            stream
                .write_all(&chunk)
                .map_err(|e| failed(e.to_string()))?;
        }
        drop(stream);
        let mut done = String::new();
        let _ = lines.read_line(&mut done);
        let elapsed = started.elapsed().as_secs_f64() * 1000.0;
        let _ = receiver.wait();
        if done.trim() != format!("received {} bytes", mib << 20) {
            return Err(failed(format!("the sink said {:?}", done.trim())));
        }
        Ok(elapsed)
    };
    let (mut bridge, mut host) = (f64::MAX, f64::MAX);
    for _ in 0..repeat {
        bridge = bridge.min(send(&["-p", "19090:9000"], 19090)?);
        host = host.min(send(&["--net", "host"], 19091)?);
    }
    Ok(vec![Throughput {
        workload: format!("TCP, {mib} MiB in"),
        host_ms: host,
        container_ms: bridge,
        overhead_percent: (bridge / host - 1.0) * 100.0,
    }])
}

/// Run `argv` once, untimed, for what it does (start or remove a
/// container); it must exit 0.
fn run_untimed(argv: &[OsString]) -> Result<(), LabError> {
    run_once(argv).map(drop)
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// A process's proportional set size in KiB: its private pages, plus each
/// page it shares divided by the number of processes sharing it
/// (`Pss:` in /proc/PID/smaps_rollup, proc(5)).
fn pss_kib(pid: i32) -> Option<f64> {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    rollup_kib(&rollup, "Pss:")
}

/// One `Field:   N kB` line of smaps_rollup, in KiB.
fn rollup_kib(rollup: &str, field: &str) -> Option<f64> {
    rollup
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Median and 95th percentile of some samples; None when there are none.
fn summary(mut samples: Vec<f64>) -> Option<(f64, f64)> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    Some((percentile(&samples, 0.5), percentile(&samples, 0.95)))
}

/// A chapter's binary, beside this one; None when it is not built, and a
/// note saying so and what was therefore `not_measured`.
fn built_chapter(name: &str, not_measured: &str, notes: &mut Vec<String>) -> Option<PathBuf> {
    let path = crate::rootfs::sibling(name);
    if !path.is_file() {
        notes.push(format!("{name} is not built: {not_measured}"));
        return None;
    }
    Some(path)
}

/// A row of times (or sizes) in `unit`: ours and the peer's summarised;
/// None when ours has no samples.
fn compared_row(
    operation: &str,
    unit: &str,
    ours: Vec<f64>,
    peer: String,
    theirs: Vec<f64>,
) -> Option<ComparedRow> {
    let runs = ours.len();
    let (median, p95) = summary(ours)?;
    let theirs = summary(theirs);
    Some(ComparedRow {
        operation: operation.into(),
        unit: unit.into(),
        runs,
        median,
        p95,
        peer,
        peer_median: theirs.map(|(median, _)| median),
        peer_p95: theirs.map(|(_, p95)| p95),
        goal: None,
    })
}

/// `ch07-lifecycle inspect NAME`: the container's document.
fn inspect(chapter: &Path, name: &str) -> Result<serde_json::Value, LabError> {
    let failed = |message: String| LabError::ToolFailed {
        command: format!("{} inspect {name}", chapter.display()),
        message,
    };
    let output = Command::new(chapter)
        .args(["inspect", name])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| failed(e.to_string()))?;
    if !output.status.success() {
        return Err(failed(
            String::from_utf8_lossy(&output.stderr).trim().to_string(),
        ));
    }
    let mut documents: serde_json::Value =
        serde_json::from_slice(&output.stdout).map_err(|e| failed(e.to_string()))?;
    Ok(documents[0].take())
}

/// The containers the lifecycle bench started, removed when it is done,
/// however it ends: ours with `rm -f`, runc's with `runc delete -f`
/// (which ends conmon too, once its container is gone).
struct Started {
    chapter: std::path::PathBuf,
    names: Vec<String>,
    runc_ids: Vec<String>,
    conmon: Option<i32>,
}

impl Drop for Started {
    fn drop(&mut self) {
        let quietly = |program: &Path, args: &[&str]| {
            let _ = Command::new(program)
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        };
        for name in &self.names {
            quietly(&self.chapter, &["rm", "-f", name]);
        }
        for id in &self.runc_ids {
            quietly(Path::new("runc"), &["delete", "-f", id]);
        }
        // conmon writes the exit code into its directory as it ends: let it
        // finish before that directory is removed.
        if let Some(pid) = self.conmon {
            let deadline = Instant::now() + Duration::from_secs(2);
            while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// Start runc's container `id` under conmon, as podman does (conmon runs
/// `runc create`, then `runc start`), in `dir`; conmon's pid.
fn start_under_conmon(
    conmon: &Path,
    runc: &Path,
    rootfs: &Path,
    dir: &Path,
    id: &str,
) -> Result<i32, String> {
    let bundle = runc_bundle(rootfs, &dir.join("bundle"), &["/bin/sleep", "86400"])
        .ok_or("runc spec made no bundle")?;
    for sub in ["exit", "sockets"] {
        std::fs::create_dir_all(dir.join(sub)).map_err(|e| format!("mkdir: {e}"))?;
    }
    let (container_pidfile, conmon_pidfile) = (dir.join("container.pid"), dir.join("conmon.pid"));
    let status = Command::new(conmon)
        .args([
            "--api-version",
            "1",
            "--cid",
            id,
            "--cuuid",
            id,
            "--name",
            id,
        ])
        .arg("--runtime")
        .arg(runc)
        .arg("--bundle")
        .arg(&bundle)
        .arg("--exit-dir")
        .arg(dir.join("exit"))
        .arg("--socket-dir-path")
        .arg(dir.join("sockets"))
        .arg("--log-path")
        .arg(dir.join("container.log"))
        .arg("--container-pidfile")
        .arg(&container_pidfile)
        .arg("--conmon-pidfile")
        .arg(&conmon_pidfile)
        .args(["--log-level", "error"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run conmon: {e}"))?;
    if !status.success() {
        return Err(format!("conmon did not start ({status})"));
    }
    // conmon returns once it has forked; `runc create` may still be at
    // work. Its pid file says when the container is created.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(&container_pidfile).map_or(true, |pid| pid.trim().is_empty()) {
        if Instant::now() > deadline {
            return Err("runc create under conmon did not finish in 10 s".into());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let started = Command::new(runc)
        .args(["start", id])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run runc start: {e}"))?;
    if !started.success() {
        return Err(format!("runc start {id} failed ({started})"));
    }
    std::fs::read_to_string(&conmon_pidfile)
        .ok()
        .and_then(|pid| pid.trim().parse().ok())
        .ok_or_else(|| "conmon wrote no pid file".into())
}

/// Chapter 07's lifecycle, timed in rounds as [`measure_all`] times
/// start-ups: `warmup` unmeasured rounds, then `runs`, each round one of
/// everything, so that a slow moment of the machine touches all alike.
/// A round samples the memory of two long-running containers' monitors
/// (ours, and conmon when it is installed), times `exec /bin/true` into
/// them (ours, and `runc exec`), then `run -d` of a new container (ours,
/// and `runc run -d`) and `stop` of ours, whose `/bin/sleep` the
/// container's init passes SIGTERM to; the new containers are removed,
/// untimed. Bundles and conmon's files go in `work`; `progress` is told
/// each measured round.
pub fn lifecycle(
    rootfs: &Path,
    work: &Path,
    warmup: usize,
    runs: usize,
    progress: impl Fn(usize),
) -> Result<Comparison, LabError> {
    let mut lifecycle = Comparison::default();
    let Some(chapter) = built_chapter(
        "ch07-lifecycle",
        "its lifecycle was not measured",
        &mut lifecycle.notes,
    ) else {
        return Ok(lifecycle);
    };
    let ch07 = |args: &[&str]| {
        let mut argv = vec![chapter.clone().into_os_string()];
        argv.extend(words(args));
        argv
    };
    let root = rootfs.to_string_lossy().into_owned();
    let tag = std::process::id();
    // The container exec joins and whose monitor is sampled, and the one
    // each round starts and stops; runc's likewise.
    let (resident, fresh) = (format!("bench-{tag}-exec"), format!("bench-{tag}-run"));
    let (runc_resident, runc_fresh) = (
        format!("labbench-{tag}-exec"),
        format!("labbench-{tag}-run"),
    );
    let conmon_id = format!("labbench-{tag}-conmon");
    let mut started = Started {
        chapter: chapter.clone(),
        names: vec![resident.clone(), fresh.clone()],
        runc_ids: Vec::new(),
        conmon: None,
    };
    let detached = |name: &str, seconds: &str| {
        ch07(&[
            "run",
            "-d",
            "--net",
            "none",
            "--name",
            name,
            &root,
            "/bin/sleep",
            seconds,
        ])
    };
    run_untimed(&detached(&resident, "86400"))?;
    let monitor = inspect(&chapter, &resident)?["MonitorPid"]
        .as_i64()
        .filter(|pid| *pid > 0)
        .ok_or_else(|| LabError::ToolFailed {
            command: format!("ch07-lifecycle inspect {resident}"),
            message: "no MonitorPid".into(),
        })? as i32;

    let runc = crate::hostinfo::find_in_path("runc");
    let bundle = runc
        .as_ref()
        .and_then(|_| runc_bundle(rootfs, &work.join("sleep"), &["/bin/sleep", "86400"]));
    let runc_detached = |bundle: &Path, id: &str| {
        words(&[
            "runc",
            "run",
            "-d",
            "--bundle",
            &bundle.to_string_lossy(),
            id,
        ])
    };
    if let Some(bundle) = &bundle {
        started.runc_ids.push(runc_resident.clone());
        run_untimed(&runc_detached(bundle, &runc_resident))?;
        started.runc_ids.push(runc_fresh.clone());
        lifecycle.notes.extend([
            "runc has no monitor of its own: once `runc run -d` returns, the \
             container's parent is init; podman puts conmon there"
                .to_string(),
            "runc has no stop: `runc kill` sends the signal and returns, and waiting \
             for the end is its caller's job (conmon's, containerd's shim's)"
                .to_string(),
        ]);
    } else {
        lifecycle
            .notes
            .push("runc is not installed: no peer for run -d and exec".into());
    }
    let conmon = match (&runc, crate::hostinfo::find_in_path("conmon")) {
        (_, None) => Err("not installed".to_string()),
        (None, Some(_)) => Err("it needs runc, which is not installed".to_string()),
        (Some(runc), Some(conmon)) => {
            started.runc_ids.push(conmon_id.clone());
            start_under_conmon(&conmon, runc, rootfs, &work.join("conmon"), &conmon_id)
        }
    };
    match conmon {
        Ok(pid) => started.conmon = Some(pid),
        Err(why) => lifecycle
            .notes
            .push(format!("conmon: not measured ({why})")),
    }

    let (mut run_d, mut runc_run_d, mut exec, mut runc_exec, mut stop) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut pss, mut conmon_pss) = (Vec::new(), Vec::new());
    for round in 0..warmup + runs {
        let measured = round >= warmup;
        // The monitors first, while no other container of the bench runs:
        // PSS divides a shared page among the processes mapping it.
        if measured {
            progress(round - warmup);
            pss.push(pss_kib(monitor).ok_or_else(|| LabError::ToolFailed {
                command: format!("read /proc/{monitor}/smaps_rollup"),
                message: format!("the monitor of {resident} is gone"),
            })?);
            if let Some(kib) = started.conmon.and_then(pss_kib) {
                conmon_pss.push(kib);
            }
        }
        let ms = millis(run_once(&ch07(&["exec", &resident, "/bin/true"]))?);
        if measured {
            exec.push(ms);
        }
        if bundle.is_some() {
            let ms = millis(run_once(&words(&[
                "runc",
                "exec",
                &runc_resident,
                "/bin/true",
            ]))?);
            if measured {
                runc_exec.push(ms);
            }
        }
        let ms = millis(run_once(&detached(&fresh, "1000"))?);
        if measured {
            run_d.push(ms);
        }
        if let Some(bundle) = &bundle {
            let ms = millis(run_once(&runc_detached(bundle, &runc_fresh))?);
            if measured {
                runc_run_d.push(ms);
            }
        }
        let ms = millis(run_once(&ch07(&["stop", "-t", "10", &fresh]))?);
        if measured {
            stop.push(ms);
        }
        // It ended by SIGTERM (128 + 15), not by the SIGKILL after the
        // grace period: the time is that of a stop that was obeyed.
        let code = inspect(&chapter, &fresh)?["State"]["ExitCode"].as_i64();
        if code != Some(143) {
            return Err(LabError::ToolFailed {
                command: format!("ch07-lifecycle stop -t 10 {fresh}"),
                message: format!(
                    "the container ended with {code:?}, not 143: its command did not end on SIGTERM"
                ),
            });
        }
        run_untimed(&ch07(&["rm", "-f", &fresh]))?;
        if bundle.is_some() {
            run_untimed(&words(&["runc", "delete", "-f", &runc_fresh]))?;
        }
    }
    if started.conmon.is_some() && conmon_pss.is_empty() {
        lifecycle
            .notes
            .push("conmon: not measured (it ended before it was sampled)".into());
    }
    drop(started);

    let conmon_peer = match conmon_pss.is_empty() {
        true => "conmon: not measured",
        false => "conmon",
    };
    let runc_peer = |command: &str| match bundle {
        Some(_) => command.to_string(),
        None => format!("{command} (runc not installed)"),
    };
    let row = compared_row;
    lifecycle.rows = [
        row(
            "run -d, until it returns (running)",
            "ms",
            run_d,
            runc_peer("runc run -d"),
            runc_run_d,
        ),
        row(
            "exec /bin/true into a running container",
            "ms",
            exec,
            runc_peer("runc exec"),
            runc_exec,
        ),
        row(
            "stop -t 10, its command ends on SIGTERM",
            "ms",
            stop,
            "runc: no stop".into(),
            Vec::new(),
        ),
        row(
            "the monitor's PSS",
            "KiB",
            pss,
            conmon_peer.into(),
            conmon_pss,
        ),
    ]
    .into_iter()
    .flatten()
    .collect();
    Ok(lifecycle)
}

impl Report {
    fn median_of(&self, name: &str) -> Option<f64> {
        self.timings
            .iter()
            .find(|t| t.name == name)
            .map(|t| t.median_ms)
    }

    /// The start-up table, the peers skipped and what each step adds.
    fn render_startup_into(&self, out: &mut String) {
        out.push_str(&format!(
            "{:<26} {:<8} {:>9} {:>9} {:>9} {:>9}  {}\n",
            "subject", "kind", "min ms", "median", "p95", "RSS KiB", "isolation"
        ));
        for t in &self.timings {
            out.push_str(&format!(
                "{:<26} {:<8} {:>9.2} {:>9.2} {:>9.2} {:>9}  {}\n",
                t.name,
                t.kind,
                t.min_ms,
                t.median_ms,
                t.p95_ms,
                rss_cell(t.max_rss_kib),
                t.what
            ));
        }
        for skipped in &self.skipped {
            out.push_str(&format!("skipped: {skipped}\n"));
        }
        out.push_str("\nwhat each step adds (difference of medians):\n");
        for (cost, ms) in self.marginal_costs() {
            out.push_str(&format!("  {cost:<48} {ms:>+8.2} ms\n"));
        }
    }

    /// The plain-text table, the marginal costs and the throughput.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // A bench run `--only` for other sections timed no start-up.
        if !self.timings.is_empty() {
            self.render_startup_into(&mut out);
        }
        for t in &self.network {
            out.push_str(&format!(
                "\n{}: --net host {:.1} ms, bridge and published port {:.1} ms ({:+.1}%)\n",
                t.workload, t.host_ms, t.container_ms, t.overhead_percent
            ));
        }
        self.lifecycle
            .render_into(&mut out, "chapter 07's lifecycle", "ch07-lifecycle");
        self.images
            .render_into(&mut out, "chapter 08's images", "ch08-images");
        self.hardening
            .render_into(&mut out, "chapter 09's hardening", "ch09-hardening");
        self.oci
            .render_into(&mut out, "chapter 10's OCI runtime", "ch10-oci");
        if !self.throughput.is_empty() {
            out.push_str("\ninside ch03 vs on the host (best run):\n");
            for t in &self.throughput {
                out.push_str(&format!(
                    "  {:<18} host {:>9.2} ms  container {:>9.2} ms  {:>+6.2}%\n",
                    t.workload, t.host_ms, t.container_ms, t.overhead_percent
                ));
            }
        }
        out
    }

    /// Consecutive chapters' medians, subtracted: the price of each idea.
    pub fn marginal_costs(&self) -> Vec<(String, f64)> {
        let steps = [
            (
                "/bin/true",
                "ch00-process",
                "the runtime itself (fork/exec/wait around it)",
            ),
            ("ch00-process", "ch01-chroot", "chroot"),
            (
                "ch01-chroot",
                "ch02-jail",
                "PID/UTS namespaces, init, /proc, fds, caps",
            ),
            (
                "ch02-jail",
                "ch03-namespaces",
                "mount/IPC namespaces, pivot_root, /dev, /sys",
            ),
            (
                "ch03-namespaces",
                "ch04-net --net none",
                "a network namespace",
            ),
            (
                "ch04-net --net none",
                "ch04-net",
                "veth, bridge, port guard (over netlink)",
            ),
            (
                "ch04-net --net none",
                "ch05-user --net none",
                "a user namespace and an idmapped rootfs",
            ),
            (
                "ch05-user --net none",
                "ch06-cgroups --net none",
                "a cgroup with budgets, made and removed",
            ),
        ];
        steps
            .iter()
            .filter_map(|(before, after, cost)| {
                Some((
                    cost.to_string(),
                    self.median_of(after)? - self.median_of(before)?,
                ))
            })
            .collect()
    }

    /// The table as Markdown, for the book.
    pub fn markdown(&self) -> String {
        let mut out = String::from(
            "| subject | kind | isolation | min ms | median ms | p95 ms | runtime peak RSS KiB |\n|---|---|---|---:|---:|---:|---:|\n",
        );
        for t in &self.timings {
            out.push_str(&format!(
                "| `{}` | {} | {} | {:.2} | {:.2} | {:.2} | {} |\n",
                t.name,
                t.kind,
                t.what,
                t.min_ms,
                t.median_ms,
                t.p95_ms,
                rss_cell(t.max_rss_kib)
            ));
        }
        out.push_str("\n| what each step adds | median difference |\n|---|---:|\n");
        for (cost, ms) in self.marginal_costs() {
            out.push_str(&format!("| {cost} | {ms:+.2} ms |\n"));
        }
        if !self.network.is_empty() {
            out.push_str(
                "\n| into a ch04 container | `--net host` | bridge and published port | overhead |\n|---|---:|---:|---:|\n",
            );
            for t in &self.network {
                out.push_str(&format!(
                    "| {} | {:.1} ms | {:.1} ms | {:+.1}% |\n",
                    t.workload, t.host_ms, t.container_ms, t.overhead_percent
                ));
            }
        }
        self.lifecycle
            .markdown_into(&mut out, "chapter 07's lifecycle", "ch07-lifecycle");
        self.images
            .markdown_into(&mut out, "chapter 08's images", "ch08-images");
        self.hardening
            .markdown_into(&mut out, "chapter 09's hardening", "ch09-hardening");
        self.oci
            .markdown_into(&mut out, "chapter 10's OCI runtime", "ch10-oci");
        if !self.throughput.is_empty() {
            out.push_str(
                "\n| workload | on the host | inside ch03 | overhead |\n|---|---:|---:|---:|\n",
            );
            for t in &self.throughput {
                out.push_str(&format!(
                    "| {} | {:.2} ms | {:.2} ms | {:+.2}% |\n",
                    t.workload, t.host_ms, t.container_ms, t.overhead_percent
                ));
            }
        }
        out.push_str(&format!(
            "\nMeasured on Linux {} with {} CPUs; {}.\n",
            self.kernel,
            self.cpus,
            if self.skipped.is_empty() {
                "no peer skipped".to_string()
            } else {
                format!("skipped: {}", self.skipped.join(", "))
            }
        ));
        out
    }

    /// A horizontal bar chart of the medians: the chapters' staircase, the
    /// peers beside it.
    pub fn svg(&self) -> String {
        let (bar_height, gap, label_width, chart_width) = (22.0, 6.0, 230.0, 420.0);
        let longest = self
            .timings
            .iter()
            .map(|t| t.median_ms)
            .fold(0.0f64, f64::max)
            .max(0.001);
        let height = (self.timings.len() as f64) * (bar_height + gap) + 40.0;
        let mut svg = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n\
             <text x=\"4\" y=\"16\" font-weight=\"bold\">median time to run /bin/true in a container (ms)</text>\n",
            label_width + chart_width + 80.0
        );
        for (row, t) in self.timings.iter().enumerate() {
            let y = 28.0 + row as f64 * (bar_height + gap);
            let width = (t.median_ms / longest * chart_width).max(1.0);
            let color = match t.kind.as_str() {
                "chapter" => "#2e7d32",
                "peer" => "#1565c0",
                _ => "#9e9e9e",
            };
            svg.push_str(&format!(
                "<text x=\"4\" y=\"{:.1}\">{}</text>\n<rect x=\"{label_width}\" y=\"{y:.1}\" width=\"{width:.1}\" height=\"{bar_height}\" fill=\"{color}\"/>\n<text x=\"{:.1}\" y=\"{:.1}\">{:.2}</text>\n",
                y + 15.0,
                super::svg::escape(&t.name),
                label_width + width + 4.0,
                y + 15.0,
                t.median_ms
            ));
        }
        svg.push_str("</svg>\n");
        svg
    }
}

impl Comparison {
    fn is_empty(&self) -> bool {
        self.rows.is_empty() && self.notes.is_empty()
    }

    fn has_goals(&self) -> bool {
        self.rows.iter().any(|row| row.goal.is_some())
    }

    /// The plain-text table under `title`, `ours` naming our binary.
    fn render_into(&self, out: &mut String, title: &str, ours: &str) {
        if self.is_empty() {
            return;
        }
        out.push_str(&format!(
            "\n{title}, median (p95):\n  {:<41} {:>20}  {:<32} {:>20}\n",
            "operation", ours, "peer", ""
        ));
        for row in &self.rows {
            out.push_str(&format!(
                "  {:<41} {:>20}  {:<32} {:>20}\n",
                row.operation,
                compared_cell(Some(row.median), Some(row.p95), &row.unit),
                row.peer,
                compared_cell(row.peer_median, row.peer_p95, &row.unit),
            ));
            if let Some(goal) = &row.goal {
                out.push_str(&format!("    goal: {}\n", goal_cell(goal)));
            }
        }
        for note in &self.notes {
            out.push_str(&format!("  note: {note}\n"));
        }
    }

    /// The Markdown table under `title`, with a goal column when a row
    /// has a goal.
    fn markdown_into(&self, out: &mut String, title: &str, ours: &str) {
        if self.is_empty() {
            return;
        }
        let goals = self.has_goals();
        out.push_str(&format!(
            "\n| {title} | `{ours}` median (p95) | peer | peer median (p95) |{}\n|---|---:|---|---:|{}\n",
            if goals { " goal |" } else { "" },
            if goals { "---|" } else { "" },
        ));
        for row in &self.rows {
            let goal = match (goals, &row.goal) {
                (false, _) => String::new(),
                (true, Some(goal)) => format!(" {} |", goal_cell(goal)),
                (true, None) => " - |".into(),
            };
            out.push_str(&format!(
                "| {} | {} | {} | {} |{goal}\n",
                row.operation,
                compared_cell(Some(row.median), Some(row.p95), &row.unit),
                row.peer,
                compared_cell(row.peer_median, row.peer_p95, &row.unit),
            ));
        }
        if !self.notes.is_empty() {
            out.push('\n');
        }
        for note in &self.notes {
            out.push_str(&format!("- {note}\n"));
        }
    }
}

/// `at least 0.9x tar's rate: 0.93x, met`.
fn goal_cell(goal: &Goal) -> String {
    format!(
        "{}: {}, {}",
        goal.target,
        goal.measured,
        if goal.met { "met" } else { "missed" }
    )
}

/// A measurement: milliseconds with two decimals, KiB whole, MiB/s with
/// one decimal; `-` where there is none.
fn compared_cell(median: Option<f64>, p95: Option<f64>, unit: &str) -> String {
    match (median, p95, unit) {
        (Some(median), Some(p95), "KiB") => format!("{median:.0} KiB ({p95:.0})"),
        (Some(median), Some(p95), "MiB/s") => format!("{median:.1} MiB/s ({p95:.1})"),
        (Some(median), Some(p95), _) => format!("{median:.2} {unit} ({p95:.2})"),
        _ => "-".into(),
    }
}

fn rss_cell(kib: i64) -> String {
    if kib > 0 { kib.to_string() } else { "-".into() }
}

/// A directory removed when dropped, whatever happens in between (the
/// image and hardening benches' stores and peers' copies).
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = crate::runtime::state::remove_tree(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing(name: &str, median: f64) -> Timing {
        Timing {
            name: name.into(),
            kind: "chapter".into(),
            what: String::new(),
            runs: 1,
            min_ms: median,
            median_ms: median,
            p95_ms: median,
            max_rss_kib: 1,
        }
    }

    /// A report of one chapter's start-up and these comparisons.
    fn report_of(lifecycle: Comparison, images: Comparison) -> Report {
        Report {
            timings: vec![timing("ch00-process", 0.75)],
            network: vec![],
            skipped: vec![],
            throughput: vec![],
            lifecycle,
            images,
            hardening: Comparison::default(),
            oci: Comparison::default(),
            kernel: "6.0".into(),
            cpus: 2,
        }
    }

    fn assert_has_lines(text: &str, lines: &[&str]) {
        for line in lines {
            assert!(text.lines().any(|l| l == *line), "{line:?} not in\n{text}");
        }
    }

    #[test]
    fn marginal_costs_subtract_consecutive_medians() {
        let report = Report {
            timings: vec![
                timing("/bin/true", 0.5),
                timing("ch00-process", 0.75),
                timing("ch01-chroot", 1.0),
            ],
            network: vec![Throughput {
                workload: "TCP, 8 MiB in".into(),
                host_ms: 10.0,
                container_ms: 15.0,
                overhead_percent: 50.0,
            }],
            skipped: vec![],
            throughput: vec![],
            lifecycle: Comparison::default(),
            images: Comparison::default(),
            hardening: Comparison::default(),
            oci: Comparison::default(),
            kernel: "6.0".into(),
            cpus: 2,
        };
        assert!(
            report
                .markdown()
                .contains("| TCP, 8 MiB in | 10.0 ms | 15.0 ms | +50.0% |")
        );
        let costs = report.marginal_costs();
        assert_eq!(
            costs,
            vec![
                (
                    "the runtime itself (fork/exec/wait around it)".to_string(),
                    0.25
                ),
                ("chroot".to_string(), 0.25)
            ]
        );
        assert!(report.svg().starts_with("<svg"));
        assert!(report.markdown().contains("| `ch01-chroot` |"));
    }

    fn lifecycle_row(operation: &str, unit: &str, peer: &str, theirs: Option<f64>) -> ComparedRow {
        ComparedRow {
            operation: operation.into(),
            unit: unit.into(),
            runs: 3,
            median: if unit == "KiB" { 1142.0 } else { 25.5 },
            p95: if unit == "KiB" { 1150.4 } else { 30.25 },
            peer: peer.into(),
            peer_median: theirs,
            peer_p95: theirs.map(|median| median + 1.0),
            goal: None,
        }
    }

    #[test]
    fn the_lifecycle_table_sets_each_operation_beside_its_peer() {
        let report = report_of(
            Comparison {
                rows: vec![
                    lifecycle_row(
                        "exec /bin/true into a running container",
                        "ms",
                        "runc exec",
                        Some(15.0),
                    ),
                    lifecycle_row(
                        "stop -t 10, its command ends on SIGTERM",
                        "ms",
                        "runc: no stop",
                        None,
                    ),
                    lifecycle_row("the monitor's PSS", "KiB", "conmon: not measured", None),
                ],
                notes: vec!["conmon: not measured (not installed)".into()],
            },
            Comparison::default(),
        );
        assert_has_lines(
            &report.markdown(),
            &[
                "| chapter 07's lifecycle | `ch07-lifecycle` median (p95) | peer | peer median (p95) |",
                "| exec /bin/true into a running container | 25.50 ms (30.25) | runc exec | 15.00 ms (16.00) |",
                "| stop -t 10, its command ends on SIGTERM | 25.50 ms (30.25) | runc: no stop | - |",
                "| the monitor's PSS | 1142 KiB (1150) | conmon: not measured | - |",
                "- conmon: not measured (not installed)",
            ],
        );
        let text = report.render();
        assert!(
            text.contains("chapter 07's lifecycle, median (p95):"),
            "{text}"
        );
        let exec = text
            .lines()
            .find(|l| l.trim_start().starts_with("exec /bin/true"))
            .expect("the exec row");
        assert!(
            exec.contains("25.50 ms (30.25)")
                && exec.contains("runc exec")
                && exec.contains("15.00 ms (16.00)"),
            "{exec}"
        );
        assert!(
            text.contains("  note: conmon: not measured (not installed)\n"),
            "{text}"
        );
    }

    #[test]
    fn the_image_table_has_a_goal_column() {
        let mut load = lifecycle_row(
            "load -i, 5-layer docker-archive",
            "MiB/s",
            "tar",
            Some(300.0),
        );
        load.goal = Some(Goal {
            target: "at least 0.9x tar's rate".into(),
            measured: "0.09x".into(),
            met: false,
        });
        let report = report_of(
            Comparison::default(),
            Comparison {
                rows: vec![load],
                notes: vec!["pull: not measured (skopeo not installed)".into()],
            },
        );
        assert_has_lines(
            &report.markdown(),
            &[
                "| chapter 08's images | `ch08-images` median (p95) | peer | peer median (p95) | goal |",
                "| load -i, 5-layer docker-archive | 25.5 MiB/s (30.2) | tar | 300.0 MiB/s (301.0) | at least 0.9x tar's rate: 0.09x, missed |",
                "- pull: not measured (skopeo not installed)",
            ],
        );
        let text = report.render();
        assert!(
            text.contains("    goal: at least 0.9x tar's rate: 0.09x, missed\n"),
            "{text}"
        );
    }

    #[test]
    fn no_lifecycle_table_without_chapter_07() {
        let report = report_of(Comparison::default(), Comparison::default());
        assert!(!report.markdown().contains("lifecycle"));
        assert!(!report.render().contains("lifecycle"));
        // A report written before chapter 07 existed still reads.
        let mut json = serde_json::to_value(&report).unwrap();
        json.as_object_mut().unwrap().remove("lifecycle");
        let read: Report = serde_json::from_value(json).unwrap();
        assert!(read.lifecycle.rows.is_empty() && read.lifecycle.notes.is_empty());
    }

    #[test]
    fn a_report_of_chapter_10_alone_has_its_table_and_no_start_up() {
        let mut report = report_of(Comparison::default(), Comparison::default());
        report.timings.clear();
        let mut run = lifecycle_row("run /bin/true, one bundle", "ms", "runc run", Some(51.0));
        run.goal = Some(Goal {
            target: "at least 5x runc's speed".into(),
            measured: "2.00x".into(),
            met: false,
        });
        report.oci = Comparison {
            rows: vec![run],
            notes: vec!["podman run --rm: not measured (podman not installed)".into()],
        };
        let text = report.render();
        assert!(!text.contains("subject"), "{text}");
        assert!(!text.contains("what each step adds"), "{text}");
        assert!(
            text.starts_with("\nchapter 10's OCI runtime, median (p95):\n"),
            "{text}"
        );
        assert!(
            text.contains("    goal: at least 5x runc's speed: 2.00x, missed\n"),
            "{text}"
        );
        assert_has_lines(
            &report.markdown(),
            &[
                "| chapter 10's OCI runtime | `ch10-oci` median (p95) | peer | peer median (p95) | goal |",
                "| run /bin/true, one bundle | 25.50 ms (30.25) | runc run | 51.00 ms (52.00) | at least 5x runc's speed: 2.00x, missed |",
                "- podman run --rm: not measured (podman not installed)",
            ],
        );
    }

    #[test]
    fn pss_is_read_from_smaps_rollup() {
        let rollup = "55d0c0a4e000-7ffd3c5f1000 ---p 00000000 00:00 0                          [rollup]\n\
                      Rss:                3500 kB\n\
                      Pss:                1142 kB\n\
                      Pss_Dirty:           956 kB\n";
        assert_eq!(rollup_kib(rollup, "Pss:"), Some(1142.0));
        assert_eq!(rollup_kib(rollup, "Rss:"), Some(3500.0));
        assert_eq!(rollup_kib(rollup, "Swap:"), None);
        assert!(pss_kib(std::process::id() as i32).is_some_and(|kib| kib > 0.0));
    }

    #[test]
    fn summaries_give_median_and_p95_or_nothing() {
        assert_eq!(summary(vec![3.0, 1.0, 2.0]), Some((2.0, 3.0)));
        assert_eq!(summary(Vec::new()), None);
    }

    #[test]
    fn only_the_sections_named_run_and_all_when_none_is() {
        assert!(selected(&[], Section::Oci));
        assert!(selected(&[Section::Oci, Section::Images], Section::Oci));
        assert!(!selected(&[Section::Oci], Section::Startup));
    }

    #[test]
    fn a_failure_quotes_the_last_lines_said() {
        assert_eq!(last_lines("a\n\nb\nc\n  \n", 2), "b / c");
        assert_eq!(last_lines("only\n", 5), "only");
        assert_eq!(last_lines("", 5), "");
    }

    #[test]
    fn percentiles_pick_from_sorted_runs() {
        let runs = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
        assert_eq!(percentile(&runs, 0.5), 6.0);
        assert_eq!(percentile(&runs, 0.95), 10.0);
        assert_eq!(percentile(&runs, 0.0), 1.0);
    }
}
