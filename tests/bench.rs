//! `lab bench --quick` works and prints a well-formed report. Timings are
//! measured by the benchmark, never asserted by tests.

mod common;
use common::*;
use std::path::PathBuf;

#[test]
fn quick_bench_produces_a_well_formed_report() {
    if !require_root("quick_bench_produces_a_well_formed_report") {
        return;
    }
    let rootfs = rootfs().to_str().unwrap();
    let before = bench_containers();
    let cgroups_before = orphaned_lab_cgroups();
    let output = run("lab", ["bench", "--quick", "--json", "--rootfs", rootfs]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let report: container_lab::lab::bench::Report =
        serde_json::from_slice(&output.stdout).expect("JSON report");
    let names: Vec<&str> = report.timings.iter().map(|t| t.name.as_str()).collect();
    for chapter in [
        "ch00-process",
        "ch01-chroot",
        "ch02-jail",
        "ch03-namespaces",
        "ch04-net --net none",
        "ch04-net",
    ] {
        assert!(names.contains(&chapter), "{chapter} missing from {names:?}");
    }
    for timing in &report.timings {
        assert_eq!(timing.runs, 3, "{}", timing.name);
        assert!(
            timing.min_ms > 0.0
                && timing.min_ms <= timing.median_ms
                && timing.median_ms <= timing.p95_ms,
            "{timing:?}"
        );
    }
    let chapter_rss: Vec<i64> = report
        .timings
        .iter()
        .filter(|t| t.kind == "chapter")
        .map(|t| t.max_rss_kib)
        .collect();
    assert!(
        chapter_rss.iter().all(|kib| *kib > 0),
        "runtime RSS not taken: {chapter_rss:?}"
    );
    assert_eq!(report.throughput.len(), 2);
    assert_eq!(
        report.network.len(),
        1,
        "TCP through the bridge vs --net host"
    );
    assert_eq!(report.marginal_costs().len(), 8);

    // Chapter 07's lifecycle, beside runc and conmon where installed.
    let lifecycle = &report.lifecycle;
    let operations: Vec<&str> = lifecycle
        .rows
        .iter()
        .map(|r| r.operation.as_str())
        .collect();
    assert_eq!(
        operations,
        [
            "run -d, until it returns (running)",
            "exec /bin/true into a running container",
            "stop -t 10, its command ends on SIGTERM",
            "the monitor's PSS",
        ],
        "{lifecycle:?}"
    );
    for row in &lifecycle.rows {
        assert_eq!(row.runs, 3, "{row:?}");
        assert!(row.median > 0.0 && row.median <= row.p95, "{row:?}");
        assert_eq!(
            row.unit,
            if row.operation.contains("PSS") {
                "KiB"
            } else {
                "ms"
            }
        );
    }
    let installed = |tool: &str| container_lab::hostinfo::find_in_path(tool).is_some();
    for (row, peer) in lifecycle.rows.iter().zip([true, true, false]) {
        assert_eq!(
            row.peer_median.is_some(),
            peer && installed("runc"),
            "{row:?}"
        );
    }
    let pss = &lifecycle.rows[3];
    match installed("conmon") && installed("runc") {
        true => assert!(pss.peer_median.is_some_and(|kib| kib > 0.0), "{pss:?}"),
        false => assert!(
            pss.peer_median.is_none()
                && lifecycle
                    .notes
                    .iter()
                    .any(|n| n.starts_with("conmon: not measured")),
            "{lifecycle:?}"
        ),
    }
    // Chapter 08's images: load beside tar, pull beside skopeo when the
    // registry and skopeo are installed (and pull is built), run beside
    // ch07; each row with a peer holds issue 16's goal.
    let images = &report.images;
    let row = |prefix: &str| images.rows.iter().find(|r| r.operation.starts_with(prefix));
    let load = row("load -i").unwrap_or_else(|| panic!("no load row: {images:?}"));
    let run_row = row("run --rm").unwrap_or_else(|| panic!("no run row: {images:?}"));
    assert_eq!(load.unit, "MiB/s", "{load:?}");
    // A rate's p95 is its slow end: the lower rate.
    assert!(
        load.median > 0.0 && load.p95 > 0.0 && load.p95 <= load.median,
        "{load:?}"
    );
    assert_eq!(run_row.unit, "ms", "{run_row:?}");
    assert!(
        run_row.median > 0.0 && run_row.median <= run_row.p95,
        "{run_row:?}"
    );
    assert!(
        run_row.peer_median.is_some_and(|ms| ms > 0.0),
        "{run_row:?}"
    );
    assert_eq!(load.peer_median.is_some(), installed("tar"), "{load:?}");
    let pull_tools: Vec<&str> = ["docker-registry", "skopeo"]
        .into_iter()
        .filter(|tool| !installed(tool))
        .collect();
    let pull_note = images
        .notes
        .iter()
        .find(|n| n.starts_with("pull: not measured"));
    match row("pull") {
        Some(pull) => {
            assert!(pull_tools.is_empty() && pull_note.is_none(), "{images:?}");
            assert_eq!(pull.unit, "ms");
            assert!(pull.median > 0.0 && pull.median <= pull.p95, "{pull:?}");
            assert!(pull.peer_median.is_some_and(|ms| ms > 0.0), "{pull:?}");
        }
        None => {
            let note = pull_note.unwrap_or_else(|| panic!("no pull row, no note: {images:?}"));
            for tool in &pull_tools {
                assert!(note.contains(tool), "{note} does not name {tool}");
            }
        }
    }
    for row in &images.rows {
        assert_eq!(row.runs, 3, "{row:?}");
        // A row beside a peer has a goal; one without may have an
        // absolute goal (an unchanged rebuild under 200 ms) or none.
        if row.peer_median.is_some() {
            assert!(row.goal.is_some(), "{row:?}");
        }
    }

    // Chapter 09's hardening: getppid(2) per call in ch09 beside ch08
    // (with issue 18's goal) and unconfined, the same in the bench's own
    // children, personality(2) past the kernel's cache, and compile and
    // load of the default profile (the start-up goal on their sum).
    let hardening = &report.hardening;
    let operations: Vec<&str> = hardening
        .rows
        .iter()
        .map(|r| r.operation.as_str())
        .collect();
    // The compile row names the filter's size, which follows the profile.
    assert_eq!(operations.len(), 8, "{hardening:?}");
    assert_eq!(
        [&operations[..5], &operations[6..]].concat(),
        [
            "getppid(2) in ch09 (default seccomp filter)",
            "getppid(2) in ch09 --security-opt seccomp=unconfined",
            "getppid(2), default filter, bench's child",
            "getppid(2), one-instruction allow-all filter, bench's child",
            "personality(0xffffffff), default filter, bench's child",
            "load it: seccomp(2) x 2",
            "compile + load, what a container's start pays",
        ],
        "{hardening:?}"
    );
    assert!(
        operations[5].starts_with("compile the default profile ("),
        "{hardening:?}"
    );
    for row in &hardening.rows {
        assert_eq!(row.runs, 3, "{row:?}");
        assert!(row.median > 0.0 && row.median <= row.p95, "{row:?}");
        match row.unit.as_str() {
            "ns/call" => assert!(
                row.peer_median.is_some_and(|ns| ns > 0.0)
                    && row
                        .peer_p95
                        .is_some_and(|ns| ns >= row.peer_median.unwrap()),
                "{row:?}"
            ),
            "ms" => assert!(row.peer_median.is_none(), "{row:?}"),
            unit => panic!("unit {unit} in {row:?}"),
        }
    }
    let goals: Vec<(&str, &str)> = hardening
        .rows
        .iter()
        .filter_map(|row| Some((row.operation.as_str(), row.goal.as_ref()?.target.as_str())))
        .collect();
    assert_eq!(
        goals,
        [
            (
                "getppid(2) in ch09 (default seccomp filter)",
                "under 10% over ch08"
            ),
            (
                "compile + load, what a container's start pays",
                "under 0.5 ms"
            ),
        ],
        "{hardening:?}"
    );
    let compile = hardening.rows[5]
        .operation
        .trim_start_matches("compile the default profile (")
        .split_whitespace()
        .next()
        .and_then(|n| n.parse::<usize>().ok());
    assert!(compile.is_some_and(|n| n > 100), "{hardening:?}");
    for note in [
        "inside ch09, /proc/self/status says: Seccomp: 2 Seccomp_filters:",
        "control: ch09 with --security-opt seccomp=unconfined",
        "the kernel's action cache",
    ] {
        assert!(
            hardening.notes.iter().any(|n| n.starts_with(note)),
            "no note {note:?}: {hardening:?}"
        );
    }
    let markdown = report.markdown();
    assert!(
        markdown.contains("| chapter 09's hardening | `ch09-hardening` median (p95) | peer | peer median (p95) | goal |"),
        "{markdown}"
    );

    // Chapter 10: run, and create + start + wait + delete, beside runc on
    // one bundle; podman run --rm with each as its runtime; each row with
    // a peer holds issue 19's goal, a missing tool is a note.
    let oci = &report.oci;
    let podman = installed("podman") && installed("conmon");
    let operations: Vec<&str> = oci.rows.iter().map(|r| r.operation.as_str()).collect();
    let mut expected = vec![
        "run /bin/true, one bundle",
        "create + start + wait + delete",
    ];
    if podman {
        expected.push("podman run --rm IMAGE /bin/true");
    }
    assert_eq!(operations, expected, "{oci:?}");
    for (row, target) in oci.rows.iter().zip([
        "at least 5x runc's speed",
        "at least 5x runc's speed",
        "no slower than with runc",
    ]) {
        assert_eq!((row.runs, row.unit.as_str()), (3, "ms"), "{row:?}");
        assert!(row.median > 0.0 && row.median <= row.p95, "{row:?}");
        assert_eq!(row.peer_median.is_some(), installed("runc"), "{row:?}");
        assert_eq!(
            row.goal.as_ref().map(|goal| goal.target.as_str()),
            installed("runc").then_some(target),
            "{row:?}"
        );
    }
    let noted = |start: &str| oci.notes.iter().any(|n| n.starts_with(start));
    assert!(noted("both runtimes run one config.json"), "{oci:?}");
    assert_eq!(noted("runc: not measured"), !installed("runc"), "{oci:?}");
    assert_eq!(noted("podman run --rm: not measured"), !podman, "{oci:?}");

    // What the bench started, it removed.
    let after = bench_containers();
    let left: Vec<&String> = after.iter().filter(|n| !before.contains(n)).collect();
    assert!(
        left.is_empty(),
        "the bench left containers behind: {left:?}"
    );
    let left: Vec<PathBuf> = orphaned_lab_cgroups()
        .into_iter()
        .filter(|dir| !cgroups_before.contains(dir))
        .collect();
    assert!(left.is_empty(), "the bench left cgroups behind: {left:?}");
}

/// The cgroups at the top of each hierarchy named after a lab process
/// that no longer runs (`container-lab-PID`): the bench's own, for its
/// containers and podman's, is one while it runs.
fn orphaned_lab_cgroups() -> Vec<PathBuf> {
    let hierarchies = std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .chain([PathBuf::from("/sys/fs/cgroup")]);
    hierarchies
        .flat_map(|hierarchy| std::fs::read_dir(hierarchy).into_iter().flatten().flatten())
        .filter(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            name.strip_prefix("container-lab-")
                .and_then(|pid| pid.parse::<u32>().ok())
                .is_some_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists())
        })
        .map(|entry| entry.path())
        .collect()
}

/// The names of the lab's containers and runc's that a bench names
/// (`bench-PID-...`, `labbench-PID-...`), whatever their state.
fn bench_containers() -> Vec<String> {
    let lab = stdout(&run("ch07-lifecycle", ["ps", "-a"]));
    let runc = std::process::Command::new("runc")
        .arg("list")
        .output()
        .map(|o| stdout(&o))
        .unwrap_or_default();
    lab.lines()
        .chain(runc.lines())
        .flat_map(|line| line.split_whitespace())
        .filter(|word| word.starts_with("bench-") || word.starts_with("labbench-"))
        .map(String::from)
        .collect()
}
