//! `lab bench --quick` works and prints a well-formed report. Timings are
//! measured by the benchmark, never asserted by tests.

mod common;
use common::*;

#[test]
fn quick_bench_produces_a_well_formed_report() {
    if !require_root("quick_bench_produces_a_well_formed_report") {
        return;
    }
    let rootfs = rootfs().to_str().unwrap();
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
}
