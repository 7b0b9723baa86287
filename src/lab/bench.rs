//! `lab bench`: what each isolation feature costs, measured against the
//! tools that do the same job (unshare, chroot, bwrap, runc).
//!
//! Each subject is a command line that starts a container running
//! `/bin/true` and waits for its exit code. All subjects run `warmup`
//! rounds unmeasured, then `runs` rounds, one run of each per round; the table shows min, median and p95 wall
//! time and the peak resident set size wait4(2) reports. Like the tour, the
//! bench runs inside a stand-in host (its own network namespace), so the
//! network chapter's bridge never touches the machine's real network.

use crate::error::LabError;
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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
    pub kernel: String,
    pub cpus: usize,
}

fn words(parts: &[&str]) -> Vec<OsString> {
    parts.iter().map(OsString::from).collect()
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
/// `runc spec`, with no terminal, `/bin/true` as the process and the
/// rootfs by absolute path.
pub fn runc_bundle(rootfs: &Path, dir: &Path) -> Option<std::path::PathBuf> {
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
    config["process"]["args"] = serde_json::json!(["/bin/true"]);
    config["root"]["path"] = rootfs.to_string_lossy().into_owned().into();
    config["root"]["readonly"] = true.into();
    std::fs::write(&path, config.to_string()).ok()?;
    Some(dir.to_path_buf())
}

/// Run `argv` once and return its wall time; it must exit 0.
fn run_once(argv: &[OsString]) -> Result<Duration, LabError> {
    let line = || {
        argv.iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let started = Instant::now();
    let status = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| LabError::ToolFailed {
            command: line(),
            message: e.to_string(),
        })?;
    let elapsed = started.elapsed();
    if !status.success() {
        return Err(LabError::ToolFailed {
            command: line(),
            message: format!("did not exit 0 ({status})"),
        });
    }
    Ok(elapsed)
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

impl Report {
    fn median_of(&self, name: &str) -> Option<f64> {
        self.timings
            .iter()
            .find(|t| t.name == name)
            .map(|t| t.median_ms)
    }

    /// The plain-text table, the marginal costs and the throughput.
    pub fn render(&self) -> String {
        let mut out = format!(
            "{:<26} {:<8} {:>9} {:>9} {:>9} {:>9}  {}\n",
            "subject", "kind", "min ms", "median", "p95", "RSS KiB", "isolation"
        );
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
        for t in &self.network {
            out.push_str(&format!(
                "\n{}: --net host {:.1} ms, bridge and published port {:.1} ms ({:+.1}%)\n",
                t.workload, t.host_ms, t.container_ms, t.overhead_percent
            ));
        }
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
                xml_escape(&t.name),
                label_width + width + 4.0,
                y + 15.0,
                t.median_ms
            ));
        }
        svg.push_str("</svg>\n");
        svg
    }
}

fn rss_cell(kib: i64) -> String {
    if kib > 0 { kib.to_string() } else { "-".into() }
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
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

    #[test]
    fn percentiles_pick_from_sorted_runs() {
        let runs = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
        assert_eq!(percentile(&runs, 0.5), 6.0);
        assert_eq!(percentile(&runs, 0.95), 10.0);
        assert_eq!(percentile(&runs, 0.0), 1.0);
    }
}
