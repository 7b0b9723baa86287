//! ch10-oci, for real, as root: bundles run under it and under runc give
//! the same state JSON, exit codes and view from inside; the create/start
//! split, hooks and exec; bad bundles fail with one error each (on stderr
//! and as a JSON line in --log), exit 1, and leave nothing in --root.
//!
//! Each test has its own --root and bundle in a scratch directory; the
//! bundle's root filesystem is the lab's test rootfs, named by absolute
//! path and mounted read-only (root.readonly), so tests share it safely.

mod common;
use common::*;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Command, Output};

const CH: &str = "ch10-oci";

/// A bundle and a --root of the test's own; containers it made are
/// deleted (with --force) when it ends.
struct Oci {
    dir: Scratch,
    ids: std::sync::Mutex<Vec<(PathBuf, String)>>,
    calls: std::sync::atomic::AtomicU32,
}

impl Oci {
    fn new(test: &str) -> Option<Oci> {
        if !require_root(test) {
            return None;
        }
        let oci = Oci {
            dir: Scratch::new(&format!("oci-{test}")),
            ids: Default::default(),
            calls: Default::default(),
        };
        std::fs::create_dir_all(oci.bundle()).unwrap();
        let output = oci.ch10(&["spec", "--bundle", oci.bundle().to_str().unwrap()]);
        assert_eq!(code(&output), 0, "spec: {}", stderr(&output));
        oci.edit(|config| {
            config["root"] = json!({"path": rootfs(), "readonly": true});
            config["process"]["terminal"] = json!(false);
        });
        Some(oci)
    }

    fn bundle(&self) -> PathBuf {
        self.dir.join("bundle")
    }

    fn root(&self) -> PathBuf {
        self.dir.join("state")
    }

    /// Change the bundle's config.json.
    fn edit(&self, change: impl FnOnce(&mut Value)) {
        let path = self.bundle().join("config.json");
        let mut config: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        change(&mut config);
        std::fs::write(&path, serde_json::to_string_pretty(&config).unwrap()).unwrap();
    }

    fn args(&self, args: &[&str]) {
        self.edit(|config| config["process"]["args"] = json!(args));
    }

    fn id(&self, what: &str) -> String {
        let id = format!("t10-{}-{what}", std::process::id());
        self.ids.lock().unwrap().push((self.root(), id.clone()));
        id
    }

    fn ch10(&self, args: &[&str]) -> Output {
        let root = self.root();
        let mut words = vec!["--root", root.to_str().unwrap()];
        words.extend_from_slice(args);
        self.call(&bin(CH), &words)
    }

    /// `runtime --root ROOT ARGS` for another runtime (runc).
    fn other(&self, runtime: &str, args: &[&str]) -> Output {
        let root = self.dir.join(format!("state-{runtime}"));
        let mut words = vec!["--root", root.to_str().unwrap()];
        words.extend_from_slice(args);
        self.call(std::path::Path::new(runtime), &words)
    }

    /// Run `program` with `words`. The container's stdio are the
    /// runtime's (as under an engine's shim): files, not pipes, so that a
    /// `create` or `run -d` whose container lives on returns here without
    /// waiting for its end.
    fn call(&self, program: &std::path::Path, words: &[&str]) -> Output {
        let call = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let out = self.dir.join(format!("out-{call}"));
        let err = self.dir.join(format!("err-{call}"));
        let status = Command::new(program)
            .args(words)
            .env_remove("NO_COLOR")
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .status()
            .unwrap();
        Output {
            status,
            stdout: std::fs::read(&out).unwrap(),
            stderr: std::fs::read(&err).unwrap(),
        }
    }

    fn state(&self, id: &str) -> Value {
        let output = self.ch10(&["state", id]);
        assert_eq!(code(&output), 0, "state: {}", stderr(&output));
        serde_json::from_str(&stdout(&output)).unwrap()
    }
}

impl Drop for Oci {
    fn drop(&mut self) {
        for (root, id) in self.ids.lock().unwrap().iter() {
            let _ = run(
                CH,
                ["--root", root.to_str().unwrap(), "delete", "--force", id],
            );
        }
        let runc_root = self.dir.join("state-runc");
        for entry in std::fs::read_dir(&runc_root)
            .into_iter()
            .flatten()
            .flatten()
        {
            let _ = Command::new("runc")
                .arg("--root")
                .arg(&runc_root)
                .args(["delete", "--force"])
                .arg(entry.file_name())
                .output();
        }
    }
}

/// What a process sees inside, printed by the bundle's command: its
/// hostname, ids, capability sets, mount points (and types), /dev and
/// the exit code it chooses.
const LOOK_INSIDE: &str = "hostname; id; grep -E '^(Cap|NoNewPrivs|Seccomp:)' /proc/self/status; \
    grep -v ' /sys/fs/cgroup/' /proc/self/mountinfo | cut -d' ' -f5,9 | sort; ls /dev; \
    cat /proc/self/uid_map; ulimit -n; exit 7";

#[test]
fn the_same_bundle_runs_the_same_under_runc_and_ch10() {
    let Some(oci) = Oci::new("same_bundle") else {
        return;
    };
    require_tool("runc", "runc");
    oci.args(&["sh", "-c", LOOK_INSIDE]);
    let bundle = oci.bundle();
    let bundle = bundle.to_str().unwrap();
    let ours = oci.ch10(&["run", "--bundle", bundle, &oci.id("same")]);
    let theirs = oci.other("runc", &["run", "--bundle", bundle, "same"]);
    assert_eq!(code(&theirs), 7, "runc: {}", stderr(&theirs));
    assert_eq!(code(&ours), 7, "ch10: {}", stderr(&ours));
    assert_eq!(
        stdout(&ours),
        stdout(&theirs),
        "what the process sees differs"
    );
    assert!(stdout(&ours).contains("CapBnd"), "{}", stdout(&ours));
    let shown =
        "ch10-oci run --bundle /tmp/bundle same   # and: runc run --bundle /tmp/bundle same";
    snapshot!("ch10_same_bundle", transcript(shown, &ours, None));
}

#[test]
fn the_state_json_has_runc_s_shape_through_create_start_and_exit() {
    let Some(oci) = Oci::new("state_shape") else {
        return;
    };
    require_tool("runc", "runc");
    oci.args(&["sleep", "61"]);
    let bundle = oci.bundle();
    let bundle = bundle.to_str().unwrap();
    let id = oci.id("shape");
    let created = oci.ch10(&["create", "--bundle", bundle, &id]);
    assert_eq!(code(&created), 0, "{}", stderr(&created));
    let theirs = oci.other("runc", &["create", "--bundle", bundle, "shape"]);
    assert_eq!(code(&theirs), 0, "{}", stderr(&theirs));
    let ours = oci.state(&id);
    let theirs: Value =
        serde_json::from_str(&stdout(&oci.other("runc", &["state", "shape"]))).unwrap();
    assert_eq!(ours["status"], "created");
    assert_eq!(theirs["status"], "created");
    for key in ["ociVersion", "id", "status", "pid", "bundle"] {
        assert!(ours.get(key).is_some(), "ours lacks {key}: {ours}");
        assert!(theirs.get(key).is_some(), "runc's lacks {key}: {theirs}");
    }
    assert_eq!(ours["bundle"], theirs["bundle"]);
    // The process exists, set up, and waits: it is not running the command.
    let pid = ours["pid"].as_i64().unwrap();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(
        !String::from_utf8_lossy(&cmdline).contains("read line"),
        "already running the command"
    );
    assert_eq!(code(&oci.ch10(&["start", &id])), 0);
    assert_eq!(oci.state(&id)["status"], "running");
    let killed = oci.ch10(&["kill", &id, "9"]);
    assert_eq!(code(&killed), 0, "{}", stderr(&killed));
    for _ in 0..500 {
        if oci.state(&id)["status"] == "stopped" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let stopped = oci.state(&id);
    assert_eq!(stopped["status"], "stopped");
    assert!(
        stopped.get("pid").is_none() || stopped["pid"] == 0,
        "{stopped}"
    );
    assert_eq!(code(&oci.ch10(&["delete", &id])), 0);
    let gone = oci.ch10(&["state", &id]);
    assert_eq!(code(&gone), 1, "{}", stderr(&gone));
    assert!(
        stderr(&gone).contains("does not exist"),
        "{}",
        stderr(&gone)
    );
}

#[test]
fn delete_refuses_a_running_container_without_force_and_tolerates_an_unknown_one_with_it() {
    let Some(oci) = Oci::new("delete") else {
        return;
    };
    oci.args(&["sleep", "60"]);
    let id = oci.id("delete");
    let bundle = oci.bundle();
    let output = oci.ch10(&["run", "--detach", "--bundle", bundle.to_str().unwrap(), &id]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let refused = oci.ch10(&["delete", &id]);
    assert_clean_failure(&refused, 1, "it is running");
    let cgroups = cgroup_dirs_named(&id);
    assert!(
        !cgroups.is_empty(),
        "the container has no cgroup named after it"
    );
    assert_eq!(code(&oci.ch10(&["delete", "--force", &id])), 0);
    assert!(
        cgroups.iter().all(|dir| !dir.exists()),
        "cgroups left: {cgroups:?}"
    );
    assert_eq!(
        code(&oci.ch10(&["delete", "--force", &id])),
        0,
        "a second delete --force"
    );
    let left: Vec<String> = std::fs::read_dir(oci.root())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name != ".locks")
        .collect();
    assert!(left.is_empty(), "--root is not empty: {left:?}");
    let locks = std::fs::read_dir(oci.root().join(".locks"))
        .unwrap()
        .count();
    assert_eq!(locks, 0, "a lock file is left");
}

/// The container's cgroup directories, wherever the hierarchies are.
fn cgroup_dirs_named(id: &str) -> Vec<PathBuf> {
    std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
        .map(|hierarchy| hierarchy.path().join("container-lab-oci").join(id))
        .filter(|dir| dir.exists())
        .collect()
}

#[test]
fn hooks_run_at_their_moments_with_the_state_on_stdin() {
    let Some(oci) = Oci::new("hooks") else { return };
    let log = oci.dir.join("hooks.log");
    let hook = |name: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("read state; echo \"{name} $state\" >> {}", log.display())]});
    oci.edit(|config| {
        config["hooks"] = json!({
            "createRuntime": [hook("createRuntime")],
            "createContainer": [hook("createContainer")],
            "poststart": [hook("poststart")],
            "poststop": [hook("poststop")],
        });
    });
    oci.args(&["true"]);
    let id = oci.id("hooks");
    let bundle = oci.bundle();
    let output = oci.ch10(&["run", "--bundle", bundle.to_str().unwrap(), &id]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let lines: Vec<(String, Value)> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|line| {
            let (name, state) = line.split_once(' ').unwrap();
            (name.to_string(), serde_json::from_str(state).unwrap())
        })
        .collect();
    let names: Vec<&str> = lines.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["createRuntime", "createContainer", "poststart", "poststop"]
    );
    for (name, state) in &lines {
        assert_eq!(state["id"], id.as_str(), "{name}: {state}");
        assert_eq!(state["bundle"], bundle.to_str().unwrap(), "{name}: {state}");
    }
    assert_eq!(lines[0].1["status"], "creating");
    assert!(
        lines[0].1["pid"].as_i64().unwrap() > 1,
        "createRuntime gets the host's pid"
    );
    assert_eq!(lines[3].1["status"], "stopped");
}

#[test]
fn exec_runs_a_process_of_its_own_inside() {
    let Some(oci) = Oci::new("exec") else { return };
    oci.args(&["sleep", "60"]);
    let id = oci.id("exec");
    let bundle = oci.bundle();
    let output = oci.ch10(&["run", "--detach", "--bundle", bundle.to_str().unwrap(), &id]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let inside = oci.ch10(&[
        "exec",
        &id,
        "sh",
        "-c",
        "cat /proc/1/cmdline | tr '\\0' ' '; hostname; exit 5",
    ]);
    assert_eq!(code(&inside), 5, "{}", stderr(&inside));
    assert!(
        stdout(&inside).starts_with("sleep 60"),
        "{}",
        stdout(&inside)
    );
    // --process FILE --detach --pid-file, as containerd calls it.
    let process = oci.dir.join("process.json");
    std::fs::write(
        &process,
        json!({"args": ["sh", "-c", "sleep 30"], "cwd": "/", "user": {"uid": 0, "gid": 0},
               "env": ["PATH=/bin:/usr/bin"]})
        .to_string(),
    )
    .unwrap();
    let pid_file = oci.dir.join("exec.pid");
    let detached = oci.ch10(&[
        "exec",
        "--process",
        process.to_str().unwrap(),
        "--detach",
        "--pid-file",
        pid_file.to_str().unwrap(),
        &id,
    ]);
    assert_eq!(code(&detached), 0, "{}", stderr(&detached));
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let ps = oci.ch10(&["ps", "--format", "json", &id]);
    let pids: Vec<i32> = serde_json::from_str(&stdout(&ps)).unwrap();
    assert!(pids.contains(&pid), "{pid} not in {pids:?}");
    let missing = oci.ch10(&["exec", &id, "no-such-command"]);
    assert_eq!(code(&missing), 255, "{}", stderr(&missing));
    assert!(
        stderr(&missing).contains("no-such-command"),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn ps_shows_control_characters_of_a_command_line_as_question_marks() {
    let Some(oci) = Oci::new("ps-escape") else {
        return;
    };
    // $0 of the shell: an xterm title sequence, and a newline that would
    // forge a second row of ps's table.
    oci.args(&[
        "sh",
        "-c",
        "sleep 60; :",
        "\u{1b}]0;owned\u{7}\n    1  forged",
    ]);
    let id = oci.id("ps-escape");
    let bundle = oci.bundle();
    let run = oci.ch10(&["run", "-d", "--bundle", bundle.to_str().unwrap(), &id]);
    assert_eq!(code(&run), 0, "{}", stderr(&run));
    // `run -d` returns once the container is started, which may be just
    // before its process has exec'd the shell.
    let mut table = String::new();
    for _ in 0..50 {
        let ps = oci.ch10(&["ps", &id]);
        assert_eq!(code(&ps), 0, "{}", stderr(&ps));
        table = stdout(&ps);
        if table.contains("sleep 60") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        table.contains("sh -c sleep 60; : ?]0;owned??    1  forged"),
        "{table:?}"
    );
    assert!(
        !table.contains('\u{1b}') && !table.contains('\u{7}'),
        "{table:?}"
    );
    assert!(
        !table
            .lines()
            .any(|line| line.trim_start().starts_with("1  forged")),
        "{table:?}"
    );
}

#[test]
fn pause_and_resume_freeze_and_thaw_the_container() {
    let Some(oci) = Oci::new("pause") else { return };
    oci.args(&["sleep", "60"]);
    let id = oci.id("pause");
    let bundle = oci.bundle();
    assert_eq!(
        code(&oci.ch10(&["run", "-d", "--bundle", bundle.to_str().unwrap(), &id])),
        0
    );
    assert_eq!(code(&oci.ch10(&["pause", &id])), 0);
    assert_eq!(oci.state(&id)["status"], "paused");
    let pid = oci.state(&id)["pid"].as_i64().unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    assert!(stat.contains(") S") || stat.contains(") D"), "{stat}");
    assert_clean_failure(&oci.ch10(&["pause", &id]), 1, "paused, not running");
    assert_eq!(code(&oci.ch10(&["resume", &id])), 0);
    assert_eq!(oci.state(&id)["status"], "running");
}

/// A bundle that is wrong in one way: one clear error on stderr, the same
/// as a JSON line in --log, exit 1, nothing left in --root.
fn assert_refused(oci: &Oci, id: &str, error_contains: &str) {
    let log = oci.dir.join("log.json");
    let _ = std::fs::remove_file(&log);
    let bundle = oci.bundle();
    let output = oci.ch10(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "create",
        "--bundle",
        bundle.to_str().unwrap(),
        id,
    ]);
    assert_clean_failure(&output, 1, error_contains);
    let logged: Value =
        serde_json::from_str(std::fs::read_to_string(&log).unwrap().trim()).unwrap();
    assert_eq!(logged["level"], "error");
    assert!(
        logged["msg"].as_str().unwrap().contains(error_contains),
        "{logged}"
    );
    let left: Vec<String> = std::fs::read_dir(oci.root())
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(id))
        .collect();
    assert!(left.is_empty(), "left in --root: {left:?}");
}

#[test]
fn bad_bundles_are_refused_with_one_error_each() {
    let Some(oci) = Oci::new("bad_bundles") else {
        return;
    };
    let id = oci.id("bad");
    let config = oci.bundle().join("config.json");
    let good = std::fs::read_to_string(&config).unwrap();

    oci.edit(|c| c["linux"]["intelRdt"] = json!({"closID": "x"}));
    assert_refused(&oci, &id, "linux.intelRdt is not supported");

    std::fs::write(&config, &good).unwrap();
    oci.edit(|c| c["ociVersion"] = json!("2.0.0"));
    assert_refused(&oci, &id, "ociVersion \"2.0.0\"");

    std::fs::write(&config, &good).unwrap();
    oci.edit(|c| c["root"]["path"] = json!("/no/such/rootfs"));
    assert_refused(&oci, &id, "/no/such/rootfs not found");

    std::fs::write(&config, "{\"ociVersion\": \"1.0.2\",\n \"process\": [}").unwrap();
    assert_refused(&oci, &id, "line 2");

    std::fs::remove_file(&config).unwrap();
    assert_refused(&oci, &id, "config.json not found");

    // An ID in use: the first container stays, untouched.
    std::fs::write(&config, &good).unwrap();
    oci.args(&["sleep", "60"]);
    let bundle = oci.bundle();
    assert_eq!(
        code(&oci.ch10(&["create", "--bundle", bundle.to_str().unwrap(), &id])),
        0
    );
    let again = oci.ch10(&["create", "--bundle", bundle.to_str().unwrap(), &id]);
    assert_clean_failure(&again, 1, "already exists");
    assert_eq!(oci.state(&id)["status"], "created");
}

#[test]
fn a_terminal_needs_a_console_socket() {
    let Some(oci) = Oci::new("console") else {
        return;
    };
    oci.edit(|c| c["process"]["terminal"] = json!(true));
    let id = oci.id("console");
    let bundle = oci.bundle();
    let output = oci.ch10(&["create", "--bundle", bundle.to_str().unwrap(), &id]);
    assert_eq!(code(&output), 1, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("--console-socket is required"),
        "{}",
        stderr(&output)
    );
}

/// `"pid": 1234` as `"pid": <pid>`: the one value that changes.
fn hide_state_pid(text: &str) -> String {
    text.lines()
        .map(|line| match line.split_once("\"pid\": ") {
            Some((head, tail)) if tail.trim_end_matches(',').parse::<i64>().is_ok() => {
                let comma = if tail.ends_with(',') { "," } else { "" };
                format!("{head}\"pid\": <pid>{comma}")
            }
            _ => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// The book's session: a container's life, call by call, as an engine
/// makes them, and a bundle refused.
#[test]
fn a_lifecycle_session_for_the_book() {
    let Some(oci) = Oci::new("session") else {
        return;
    };
    oci.args(&["sleep", "1000"]);
    let bundle = oci.bundle();
    let bundle = bundle.to_str().unwrap();
    let id = "demo";
    oci.ids.lock().unwrap().push((oci.root(), id.to_string()));
    let mut session = String::new();
    let mut step = |args: &[&str]| {
        let output = oci.ch10(args);
        let shown = format!("ch10-oci {}", args.join(" "));
        session +=
            &hide_state_pid(&transcript(&shown, &output, None)).replace(bundle, "/tmp/bundle");
    };
    step(&["create", "--bundle", bundle, id]);
    step(&["state", id]);
    step(&["start", id]);
    step(&["state", id]);
    step(&["exec", id, "ps", "-o", "pid,args"]);
    step(&["delete", id]);
    step(&["kill", id, "KILL"]);
    for _ in 0..500 {
        if oci.state(id)["status"] == "stopped" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    step(&["state", id]);
    step(&["delete", id]);
    step(&["list"]);
    oci.edit(|c| c["linux"]["intelRdt"] = json!({"closID": "x"}));
    step(&["create", "--bundle", bundle, "other"]);
    snapshot!("ch10_session", session);
}

#[test]
fn help_teaches_runc_s_command_line() {
    let output = run(CH, ["--help"]);
    assert_eq!(code(&output), 0);
    for verb in [
        "create", "start", "state", "kill", "delete", "run", "exec", "features", "spec",
    ] {
        assert!(
            stdout(&output).contains(&format!("  {verb} ")),
            "{verb} missing"
        );
    }
    snapshot!("ch10_help", stdout(&output));
}

#[test]
fn features_say_what_the_runtime_reads() {
    let output = run(CH, ["features"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let features: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(features["ociVersionMax"], "1.0.2");
    let hooks = features["hooks"].as_array().unwrap();
    assert_eq!(hooks.len(), 6, "{hooks:?}");
    let options: Vec<&str> = features["mountOptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_str().unwrap())
        .collect();
    for option in ["ro", "nosuid", "rbind", "rslave"] {
        assert!(
            options.contains(&option),
            "{option} missing from {options:?}"
        );
    }
    assert_eq!(features["linux"]["cgroup"]["systemd"], false);
    assert!(
        features["linux"]["capabilities"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "CAP_SYS_ADMIN")
    );
}

/// cgroup v2's device rules, for real: the eBPF program attached to a
/// cgroup2 directory (this host's hybrid /sys/fs/cgroup/unified, or a v2
/// host's /sys/fs/cgroup) lets a process in it open /dev/null and not
/// /dev/zero.
#[test]
fn the_v2_device_filter_lets_only_listed_devices_open() {
    if !require_root("v2_device_filter") {
        return;
    }
    use container_lab::oci::config::DeviceRule;
    let mounts = container_lab::hostinfo::read_mountinfo().unwrap();
    let root = container_lab::hostinfo::cgroup2_mount(&mounts)
        .expect("a cgroup2 mount: every supported layout has one");
    let dir = root.join(format!("lab-device-filter-{}", std::process::id()));
    std::fs::create_dir(&dir).unwrap();
    struct Remove(PathBuf);
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir(&self.0);
        }
    }
    let _remove = Remove(dir.clone());
    let rule = |allow, kind, major, minor| DeviceRule {
        allow,
        kind,
        major,
        minor,
        access: "rwm".into(),
    };
    container_lab::oci::device_filter::attach(
        &dir,
        &[
            rule(false, 'a', None, None),
            rule(true, 'c', Some(1), Some(3)),
        ],
    )
    .unwrap();
    let script = format!(
        "echo $$ > {}/cgroup.procs; head -c 1 /dev/null && echo null-opens; head -c 1 /dev/zero > /dev/null 2>&1 || echo zero-refused",
        dir.display()
    );
    let output = Command::new("sh").args(["-c", &script]).output().unwrap();
    assert_eq!(
        stdout(&output),
        "null-opens\nzero-refused\n",
        "{}",
        stderr(&output)
    );
}

/// An image whose /dev is a symlink out of the root: the runtime's /dev
/// (a tmpfs, its nodes and links) lands inside the root, and nothing is
/// made where the link points on the host.
#[test]
fn a_dev_symlink_in_the_rootfs_cannot_lead_out() {
    let Some(oci) = Oci::new("dev_symlink") else {
        return;
    };
    let rootfs = oci.dir.join("rootfs");
    let outside = oci.dir.join("outside");
    for dir in ["proc", "sys", "tmp"] {
        std::fs::create_dir_all(rootfs.join(dir)).unwrap();
    }
    std::fs::create_dir_all(&outside).unwrap();
    // The same path inside the root exists too, so that the link resolves
    // there when followed in the root (and mounts go there).
    std::fs::create_dir_all(rootfs.join(outside.strip_prefix("/").unwrap())).unwrap();
    // As many `..` as it takes to reach / from anywhere, then the host path.
    let target = format!("{}{}", "/..".repeat(32), outside.display());
    std::os::unix::fs::symlink(&target, rootfs.join("dev")).unwrap();
    oci.edit(|config| config["root"] = json!({"path": rootfs, "readonly": true}));
    let id = oci.id("devlink");
    let bundle = oci.bundle();
    let output = oci.ch10(&["create", "--bundle", bundle.to_str().unwrap(), &id]);
    let made: Vec<String> = std::fs::read_dir(&outside)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        made.is_empty(),
        "made on the host through the link: {made:?} ({})",
        stderr(&output)
    );
}

/// While `created`, the container's process is still the runtime's code
/// with the runtime's descriptors: nothing in the container may look
/// into it (CVE-2019-5736's /proc/PID/exe, CVE-2024-21626's leaked fds).
#[test]
fn the_waiting_process_is_closed_to_the_container() {
    let Some(oci) = Oci::new("waiting") else {
        return;
    };
    oci.args(&["sleep", "60"]);
    let id = oci.id("waiting");
    let bundle = oci.bundle();
    let created = oci.ch10(&["create", "--bundle", bundle.to_str().unwrap(), &id]);
    assert_eq!(code(&created), 0, "{}", stderr(&created));
    let look = "for f in /proc/1/exe /proc/1/fd/0 /proc/1/cwd; do readlink $f >/dev/null 2>&1 && echo open $f; done; \
                cat /proc/1/environ >/dev/null 2>&1 && echo open environ; ls /proc/1/fd | wc -l";
    let inside = oci.ch10(&["exec", &id, "sh", "-c", look]);
    assert_eq!(code(&inside), 0, "{}", stderr(&inside));
    assert!(!stdout(&inside).contains("open"), "{}", stdout(&inside));
    // What it holds, seen from the host: stdio, its two pipes to `create`
    // (gone with it), exec.fifo O_PATH; no directory.
    let pid = oci.state(&id)["pid"].as_i64().unwrap();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
    {
        let target = std::fs::read_link(entry.path()).unwrap();
        let is_dir = std::fs::metadata(format!(
            "/proc/{pid}/fd/{}",
            entry.file_name().to_string_lossy()
        ))
        .is_ok_and(|m| m.is_dir());
        assert!(
            !is_dir,
            "the waiting process holds a directory: {}",
            target.display()
        );
    }
}

/// A config.json without device rules gets runc's short allow list, not
/// the parent cgroup's allow-all: /dev/kmsg (c 1:11) made with mknod
/// does not open.
#[test]
fn no_device_rules_means_only_the_standard_devices() {
    let Some(oci) = Oci::new("no_device_rules") else {
        return;
    };
    oci.edit(|config| {
        config["linux"].as_object_mut().unwrap().remove("resources");
        config["root"]["readonly"] = json!(false);
    });
    oci.args(&[
        "sh",
        "-c",
        "mknod /dev/k c 1 11 && (echo x > /dev/k) 2>/dev/null && echo opened; cat /dev/null && echo null-ok",
    ]);
    let id = oci.id("nodev");
    let bundle = oci.bundle();
    let output = oci.ch10(&["run", "--bundle", bundle.to_str().unwrap(), &id]);
    assert_eq!(stdout(&output), "null-ok\n", "{}", stderr(&output));
}
