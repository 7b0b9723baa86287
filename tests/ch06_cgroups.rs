//! ch06-cgroups, for real on this host's cgroup layout (v2 code paths are
//! unit-tested against fixture trees in src/runtime/cgroups.rs).

mod common;
use common::*;
use std::process::Command;

const CH: &str = "ch06-cgroups";

// The checks every chapter from 02 on must pass (without a bridge: see
// host_safe_flags).
jail_suite!(CH);
user_namespace_suite!(CH);
mount_namespace_suite!(CH);

/// Run ch06 with `flags` (no bridge) on the test rootfs, and return its
/// output and the runtime's pid (the cgroups it made carry it).
fn run_limited(flags: &[&str], command: &[&str]) -> (std::process::Output, u32) {
    let child = Command::new(bin(CH))
        .args(["--net", "none"])
        .args(flags)
        .arg(rootfs())
        .args(command)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    (child.wait_with_output().unwrap(), pid)
}

#[test]
fn help_teaches_the_budgets() {
    let output = run(CH, ["--help"]);
    assert_eq!(code(&output), 0);
    snapshot!("ch06_help", stdout(&output));
}

as_root!(
    /// A memory hog is killed by the kernel's OOM killer: exit 137 and one
    /// line that says so. Its cgroup is gone afterwards.
    memory_hog_is_oom_killed_with_137,
    {
        let (output, pid) = run_limited(&["--memory", "32M"], &["/usr/local/bin/lab-probe", "--hog", "256"]);
        assert_eq!(code(&output), 137, "{}", stderr(&output));
        assert_eq!(stderr(&output), "ch06-cgroups: killed: out of memory, limit 32 MiB\n");
        assert!(cgroup_dirs_of(pid).is_empty(), "cgroups left: {:?}", cgroup_dirs_of(pid));
        snapshot!(
            "ch06_oom",
            transcript("ch06-cgroups --memory 32M --net none ./rootfs /usr/local/bin/lab-probe --hog 256", &output, None)
        );
    }
);

as_root!(
    /// A fork bomb stops at the pids budget, and the host goes on.
    fork_bomb_is_held_at_the_pids_budget,
    {
        let (output, pid) = run_limited(&["--pids", "32"], &["/usr/local/bin/lab-probe", "--only", "res.pids"]);
        assert_eq!(code(&output), 0, "{}", stderr(&output));
        let out = stdout(&output);
        assert!(out.contains("ISOLATED") && out.contains("fork refused after"), "{out}");
        let started: u32 = out.split("after ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
        assert!(started < 32, "at most the budget: {out}");
        assert!(Command::new("true").status().unwrap().success(), "the host can still fork");
        assert!(cgroup_dirs_of(pid).is_empty());
    }
);

as_root!(
    /// A CPU burner under --cpus 0.5 gets about half a core: CPU time from
    /// the cgroup's own accounting against wall time, generous bounds.
    cpu_burner_gets_about_half_a_core,
    {
        let (output, pid) =
            run_limited(&["--cpus", "0.5", "--stats"], &["/usr/local/bin/lab-probe", "--burn-cpu", "400000000"]);
        assert_eq!(code(&output), 0, "{}", stderr(&output));
        // The burner times its own loop (stdout, in ns): the wall time the
        // quota applied to, without the container's start and end.
        let wall = stdout(&output).trim().parse::<f64>().unwrap() / 1e9;
        let err = stderr(&output);
        let cpu: f64 = err.split("CPU time ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
        let share = cpu / wall;
        assert!((0.3..=0.7).contains(&share), "got {share:.2} of a CPU ({cpu} s in {wall:.2} s): {err}");
        assert!(cgroup_dirs_of(pid).is_empty());
    }
);

as_root!(
    /// Bad budgets are refused before anything is made.
    bad_budgets_are_refused,
    {
        for (flags, message) in [
            (&["--memory", "64Q"][..], "unknown unit"),
            (&["--memory=-1"][..], "is not a size"),
            (&["--memory", "0"][..], "too small"),
            (&["--cpus", "100000"][..], "this machine has only"),
            (&["--pids", "0"][..], "0 is not in 1.."),
        ] {
            let (output, pid) = run_limited(flags, &["/bin/true"]);
            assert_clean_failure(&output, 125, message);
            assert!(cgroup_dirs_of(pid).is_empty());
        }
    }
);

as_root!(
    /// Budgets need root (or delegation): a rootless run with one is
    /// refused with what to do.
    budgets_rootless_are_refused_with_a_hint,
    {
        use std::os::unix::process::CommandExt;
        let output = Command::new(public_bin(CH))
            .args(["--net", "none", "--memory", "64M"])
            .arg(rootfs())
            .arg("/bin/true")
            .uid(65534)
            .gid(65534)
            .output()
            .unwrap();
        assert_clean_failure(&output, 125, "cgroup budgets need root");
    }
);
