//! ch10-oci driven by real engines, as root: podman runs it through conmon
//! (under its own name, and through a link named `runc`, which podman
//! treats differently), containerd through its runc shim, driven by `ctr`.
//! Each test has an engine of its own (tests/common/engines.rs), removed
//! with everything it made when the test ends, passed or failed.
//!
//! `LAB_TEST_OCI_RUNTIME=/usr/sbin/runc cargo test --test ch10_engines`
//! runs the same tests against runc, which must pass them all: that is
//! what proves the tests, before ch10-oci can.

mod common;
use common::engines::{Containerd, Named, Podman, oci_runtime, wait_until};
use common::*;
use std::time::{Duration, Instant};

/// A container that says it started, then counts: one line (and, in
/// /tmp/beat, the count) every 0.1 s, so the test sees whether it runs
/// or is frozen; SIGTERM makes it say so and exit 42 (its PID 1 would
/// ignore SIGTERM without the trap).
const COUNTER: &str = "echo started; trap 'echo got-term; exit 42' TERM; \
     i=0; while true; do i=$((i+1)); echo tick $i; echo $i > /tmp/beat; sleep 0.1; done";

/// What a shell on a terminal is typed in the -t tests: `tty-is-` glued
/// to the terminal's name only when the command runs (its echo shows
/// `$(...)`), then an exit code the engine must pass on.
const TYPED: &str = "test -t 0 && test -t 1 && echo tty-is-$(readlink /proc/self/fd/0)\nexit 5\n";

/// True when `count` (a count a container keeps raising) stays the same
/// for half a second: the container is frozen.
fn stands_still(mut count: impl FnMut() -> usize) -> bool {
    let before = count();
    std::thread::sleep(Duration::from_millis(500));
    count() == before
}

/// Process `pid` is in the cgroup `path` (as the OCI config's
/// linux.cgroupsPath names it), in some hierarchy: /proc/PID/cgroup has a
/// line `N:CONTROLLERS:PATH`.
fn assert_in_cgroup(pid: u32, path: &str) {
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(
        cgroups
            .lines()
            .any(|line| line.splitn(3, ':').nth(2) == Some(path)),
        "process {pid} is not in cgroup {path}:\n{cgroups}"
    );
}

/// The same test, under both of the names podman may know the runtime by.
fn podman_runs_a_command(named: Named) {
    let podman = Podman::new(&format!("run{named:?}").to_lowercase(), named);
    let hello = podman.run(&["--rm"], &["echo", "hello"]);
    assert_eq!(code(&hello), 0, "podman run: {}", stderr(&hello));
    assert_eq!(stdout(&hello), "hello\n");
    // The container's own exit code is podman's.
    let three = podman.run(&["--rm"], &["sh", "-c", "echo to-stderr >&2; exit 3"]);
    assert_eq!(code(&three), 3, "{}", stderr(&three));
    assert!(stderr(&three).contains("to-stderr"), "{}", stderr(&three));
    // podman tells a missing command (127) from one it may not run (126)
    // by the words of the runtime's error, which it reads from the --log
    // file when it calls the runtime runc, from its stderr otherwise.
    let missing = podman.run(&["--rm"], &["/no/such/command"]);
    assert_eq!(code(&missing), 127, "{}", stderr(&missing));
    let not_executable = podman.run(&["--rm"], &["/etc/hostname"]);
    assert_eq!(code(&not_executable), 126, "{}", stderr(&not_executable));
    // --rm removed all of them.
    assert_eq!(podman.ok(&["ps", "--all", "--quiet"]), "");
}

as_root!(
    /// `podman run --rm IMAGE echo hello` with the runtime under its own
    /// name: it prints hello; exit codes pass through, 127 and 126 for a
    /// command that is missing or not executable.
    podman_runs_the_runtime_under_its_own_name,
    podman_runs_a_command(Named::Itself)
);

as_root!(
    /// The same through a link named `runc`: podman then passes
    /// `--log-format=json --log FILE` and reads errors from that file.
    podman_runs_the_runtime_named_runc,
    podman_runs_a_command(Named::Runc)
);

as_root!(
    /// A detached container (through the `runc` link, so every call also
    /// carries the log flags): `exec` joins its namespaces and passes its
    /// exit code, `pause` freezes it and `unpause` thaws it, `stop -t 2`
    /// sends SIGTERM (which it traps) and, to one that ignores it, SIGKILL
    /// after 2 s; `logs` has what it printed; `rm` removes it.
    podman_detached_container_lifecycle,
    {
        let podman = Podman::new("life", Named::Runc);
        let id = podman.ok(&podman.run_args(&["-d", "--name", "counter"], &["sh", "-c", COUNTER]));
        assert_eq!(id.trim().len(), 64, "run -d prints the container's id: {id}");
        let logs = || podman.ok(&["logs", "counter"]);
        assert!(
            wait_until(Duration::from_secs(20), || logs().contains("tick 2")),
            "no ticks in the logs: {}",
            logs()
        );
        assert_eq!(podman.inspect("counter", "{{.State.Status}}"), "running");
        let pid: u32 = podman.inspect("counter", "{{.State.Pid}}").parse().unwrap();
        assert!(pid > 1, "State.Pid {pid}");

        // In the cgroup podman asked for (linux.cgroupsPath).
        let cgroup = format!("{}/libpod-{}", podman.cgroup_parent(), id.trim());
        assert_in_cgroup(pid, &cgroup);

        // exec: its output, its exit code, and the container's pid
        // namespace (the one of the container's PID 1, seen from the host).
        let exec = podman.output(&["exec", "counter", "sh", "-c", "echo in-exec; exit 7"]);
        assert_eq!(code(&exec), 7, "{}", stderr(&exec));
        assert_eq!(stdout(&exec), "in-exec\n");
        let container_pidns = podman.ok(&["exec", "counter", "readlink", "/proc/self/ns/pid"]);
        let init_pidns = std::fs::read_link(format!("/proc/{pid}/ns/pid")).unwrap();
        assert_eq!(container_pidns.trim(), init_pidns.to_string_lossy());
        let host_pidns = std::fs::read_link("/proc/self/ns/pid").unwrap();
        assert_ne!(init_pidns, host_pidns, "the container shares the host's pid namespace");

        // pause: frozen (no new ticks) and said so; unpause: counting again.
        let ticks = || logs().matches("tick ").count();
        podman.ok(&["pause", "counter"]);
        assert_eq!(podman.inspect("counter", "{{.State.Status}}"), "paused");
        assert!(stands_still(ticks), "ticks went on while paused");
        podman.ok(&["unpause", "counter"]);
        assert_eq!(podman.inspect("counter", "{{.State.Status}}"), "running");
        assert!(!stands_still(ticks), "no ticks after unpause");

        // stop: SIGTERM reaches the trap long before the 2 s are up.
        let started = Instant::now();
        podman.ok(&["stop", "-t", "2", "counter"]);
        let took = started.elapsed();
        assert!(took < Duration::from_secs(2), "stop took {took:?}: SIGTERM did not arrive");
        assert_eq!(
            podman.inspect("counter", "{{.State.Status}} {{.State.ExitCode}}"),
            "exited 42"
        );
        let logged = logs();
        assert!(logged.starts_with("started\ntick 1\n"), "{logged}");
        assert!(logged.ends_with("got-term\n"), "{logged}");

        // A PID 1 without a handler ignores SIGTERM: stop waits its 2 s,
        // then kills it (137 = 128 + SIGKILL).
        podman.ok(&podman.run_args(
            &["-d", "--name", "stubborn"],
            &["sh", "-c", "echo up; while true; do sleep 0.1; done"],
        ));
        assert!(wait_until(Duration::from_secs(20), || podman
            .ok(&["logs", "stubborn"])
            .contains("up")));
        let started = Instant::now();
        let stop = podman.output(&["stop", "-t", "2", "stubborn"]);
        assert_eq!(code(&stop), 0, "{}", stderr(&stop));
        assert!(started.elapsed() >= Duration::from_secs(2));
        assert_eq!(
            podman.inspect("stubborn", "{{.State.Status}} {{.State.ExitCode}}"),
            "exited 137"
        );

        // rm: gone, and so is its cgroup.
        podman.ok(&["rm", "counter", "stubborn"]);
        assert_eq!(podman.ok(&["ps", "--all", "--quiet"]), "");
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    }
);

as_root!(
    /// `podman run -it`: the command gets a terminal of its own (the
    /// container's /dev/pts/0) and reads what is typed into podman's.
    podman_run_it_gets_a_terminal,
    {
        let podman = Podman::new("tty", Named::Itself);
        let output = podman.run_in_terminal(&["--rm", "-it"], &["sh"], TYPED);
        let shown = stdout(&output);
        assert_eq!(code(&output), 5, "{shown}{}", stderr(&output));
        assert!(shown.contains("tty-is-/dev/pts/0"), "{shown}");
    }
);

as_root!(
    /// `ctr image import`, then `ctr run --rm --runc-binary RUNTIME`: the
    /// command's output, its exit code, and the runtime's error for a
    /// missing command (the shim reads it from the runtime's --log file).
    containerd_runs_a_command,
    {
        let containerd = Containerd::start("run");
        containerd.import_test_image();
        let hello = containerd.run(&["--rm"], "hello", &["echo", "hello"]);
        assert_eq!(code(&hello), 0, "{}\n{}", stderr(&hello), containerd.log());
        assert_eq!(stdout(&hello), "hello\n");
        let three = containerd.run(&["--rm"], "three", &["sh", "-c", "exit 3"]);
        assert_eq!(code(&three), 3, "{}", stderr(&three));
        let missing = containerd.run(&["--rm"], "missing", &["/no/such/command"]);
        assert_ne!(code(&missing), 0);
        assert!(
            stderr(&missing).contains("/no/such/command"),
            "the runtime's error does not name the command: {}",
            stderr(&missing)
        );
        // Nothing left: --rm deleted the tasks and the containers, also
        // the one whose task never started.
        assert!(containerd.tasks().is_empty());
        assert_eq!(containerd.ctr_ok(&["container", "ls", "--quiet"]), "");
    }
);

as_root!(
    /// A detached task: `ctr task exec` runs in it and passes its exit
    /// code, `ctr task ps` lists its processes, `pause` freezes it
    /// (PAUSED, no progress) and `resume` thaws it (RUNNING), `kill`
    /// sends SIGTERM, which it traps and exits 42: STOPPED, then gone.
    containerd_detached_task_lifecycle,
    {
        let containerd = Containerd::start("task");
        containerd.import_test_image();
        containerd.ctr_ok(&containerd.run_args(&["-d"], "counter", &["sh", "-c", COUNTER]));
        let beat_file = containerd.bundle("counter").join("rootfs/tmp/beat");
        let beat = || {
            std::fs::read_to_string(&beat_file)
                .ok()
                .and_then(|count| count.trim().parse::<usize>().ok())
                .unwrap_or(0)
        };
        assert!(
            wait_until(Duration::from_secs(20), || beat() >= 2),
            "the task does not count: {}",
            containerd.log()
        );
        let (_, pid, status) = containerd
            .tasks()
            .into_iter()
            .find(|(id, _, _)| id == "counter")
            .expect("ctr task ls lists the task");
        assert_eq!(status, "RUNNING");
        // In the cgroup ctr asked for: /NAMESPACE/ID.
        assert_in_cgroup(pid, &format!("/{}/counter", containerd.namespace()));

        // exec: output, exit code, and the task's pid namespace.
        let mut exec_args = vec!["task".into(), "exec".into()];
        exec_args.extend(containerd.fifo_flags());
        exec_args.extend(["--exec-id".into(), "probe".into(), "counter".into()]);
        let exec_in = |command: &[&str]| {
            let mut args = exec_args.clone();
            args.extend(command.iter().map(Into::into));
            containerd.ctr(&args)
        };
        let exec = exec_in(&["sh", "-c", "echo in-exec; exit 7"]);
        assert_eq!(code(&exec), 7, "{}", stderr(&exec));
        assert_eq!(stdout(&exec), "in-exec\n");
        let pidns = exec_in(&["readlink", "/proc/self/ns/pid"]);
        let init_pidns = std::fs::read_link(format!("/proc/{pid}/ns/pid")).unwrap();
        assert_eq!(stdout(&pidns).trim(), init_pidns.to_string_lossy());

        // ps: the task's PID 1 among its processes, all of them pids.
        let listed = containerd.ctr_ok(&["task", "ps", "counter"]);
        let pids: Vec<u32> = listed
            .lines()
            .skip(1)
            .map(|line| line.split_whitespace().next().unwrap().parse().unwrap())
            .collect();
        assert!(pids.contains(&pid), "task ps: {listed}");

        // pause, resume.
        containerd.ctr_ok(&["task", "pause", "counter"]);
        assert_eq!(containerd.task_status("counter").as_deref(), Some("PAUSED"));
        assert!(stands_still(beat), "the count went on while paused");
        containerd.ctr_ok(&["task", "resume", "counter"]);
        assert_eq!(containerd.task_status("counter").as_deref(), Some("RUNNING"));
        assert!(!stands_still(beat), "the count stands still after resume");

        // kill (SIGTERM): it exits through its trap.
        containerd.ctr_ok(&["task", "kill", "counter"]);
        assert!(
            wait_until(Duration::from_secs(10), || {
                containerd.task_status("counter").as_deref() == Some("STOPPED")
            }),
            "the task did not stop: {:?}",
            containerd.tasks()
        );
        let deleted = containerd.ctr(&["task", "delete", "counter"]);
        assert_eq!(code(&deleted), 0, "{}", stderr(&deleted));
        // ctr warns of a non-zero exit code: the trap's.
        assert!(stderr(&deleted).contains("exit code 42"), "{}", stderr(&deleted));
        assert_eq!(containerd.task_status("counter"), None);
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
        containerd.ctr_ok(&["container", "delete", "counter"]);
    }
);

as_root!(
    /// `ctr run -t`: the command gets a terminal (the container's
    /// /dev/pts/0) and reads what is typed into ctr's.
    containerd_run_t_gets_a_terminal,
    {
        let containerd = Containerd::start("tty");
        containerd.import_test_image();
        let output = containerd.run_in_terminal(&["--rm", "-t"], "tty", &["sh"], TYPED);
        let shown = stdout(&output);
        assert_eq!(code(&output), 5, "{shown}{}", stderr(&output));
        assert!(shown.contains("tty-is-/dev/pts/0"), "{shown}");
    }
);

as_root!(
    /// The configuration the book quotes: containerd's CRI plugin loads it
    /// and registers the `lab` runtime handler (what a Kubernetes
    /// RuntimeClass names) with the runtime under test as its binary. No
    /// pod is run through it: that takes a CRI client (crictl), which
    /// Debian does not ship; `ctr run --runc-binary` above makes the shim
    /// call the runtime the same way.
    containerd_registers_the_lab_runtime_handler,
    {
        let containerd = Containerd::start("cri");
        let plugins = containerd.ctr_ok(&["plugins", "ls"]);
        let cri = plugins
            .lines()
            .find(|line| line.split_whitespace().nth(1) == Some("cri"))
            .unwrap_or_else(|| panic!("no cri plugin: {plugins}"));
        assert_eq!(cri.split_whitespace().last(), Some("ok"), "the CRI plugin did not load: {cri}\n{}", containerd.log());
        let log = containerd.log();
        let started = log
            .lines()
            .find(|line| line.contains("Start cri plugin with config"))
            .unwrap_or_else(|| panic!("the CRI plugin logged no configuration:\n{log}"));
        assert!(started.contains("lab:{Type:io.containerd.runc.v2"), "{started}");
        let binary = format!("BinaryName:{}", oci_runtime().display());
        assert!(started.contains(&binary), "{binary} not in: {started}");
    }
);
