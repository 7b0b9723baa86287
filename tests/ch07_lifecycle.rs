//! ch07-lifecycle, for real: detached containers, their state and log, and
//! the verbs that act on them, exec among them.
//!
//! The state directory is the host's own (/run/container-lab/containers),
//! shared with whoever else runs containers on this machine: every test
//! names its containers `t7-PID-...`, looks only at those, and removes
//! them when it ends, passed or failed ([`Lab`]'s Drop). Containers on the
//! lab bridge run inside a throwaway network namespace that stands in for
//! the host (as in tests/ch04_net.rs); the others have `--net none`.

mod common;
use common::netns::Netns;
use common::*;
use serde_json::Value;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const CH: &str = "ch07-lifecycle";

/// Where root's containers keep their state, one directory per id.
const STATE: &str = "/run/container-lab/containers";

/// The containers one test makes, and where they run. Dropped (also when
/// the test fails), it removes each with `rm -f`.
struct Lab {
    names: std::sync::Mutex<Vec<String>>,
    /// With a stand-in host, containers get the lab bridge in it; without,
    /// `--net none`.
    host: Option<Netns>,
}

impl Lab {
    /// Containers with `--net none`.
    fn new() -> Lab {
        Lab {
            names: Default::default(),
            host: None,
        }
    }

    /// Containers on the lab bridge of a throwaway stand-in host.
    fn bridged(tag: &str) -> Lab {
        Lab {
            names: Default::default(),
            host: Some(Netns::new(tag)),
        }
    }

    /// A name no one else on this machine uses, removed when the test ends.
    fn name(&self, what: &str) -> String {
        let name = format!("t7-{}-{what}", std::process::id());
        self.names.lock().unwrap().push(name.clone());
        name
    }

    /// ch07-lifecycle, in the stand-in host if there is one; stdin
    /// /dev/null, output captured.
    fn command(&self) -> Command {
        let mut command = match &self.host {
            Some(host) => host.command(bin(CH)),
            None => Command::new(bin(CH)),
        };
        command
            .env_remove("NO_COLOR")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    fn verb<S: AsRef<OsStr>>(&self, args: impl IntoIterator<Item = S>) -> Output {
        self.command().args(args).output().unwrap()
    }

    fn spawn<S: AsRef<OsStr>>(&self, args: impl IntoIterator<Item = S>) -> Child {
        self.command().args(args).spawn().unwrap()
    }

    /// `run FLAGS ROOTFS COMMAND...`, with `--net none` without a stand-in.
    fn run_words(&self, flags: &[&str], command: &[&str]) -> Vec<String> {
        let mut words = vec!["run".to_string()];
        words.extend(flags.iter().map(|f| f.to_string()));
        if self.host.is_none() {
            words.extend(["--net".into(), "none".into()]);
        }
        words.push(rootfs().display().to_string());
        words.extend(command.iter().map(|w| w.to_string()));
        words
    }

    fn run(&self, flags: &[&str], command: &[&str]) -> Output {
        self.verb(self.run_words(flags, command))
    }

    /// `run -d --name NAME FLAGS ...`: its id, checked to be 64 hex digits.
    fn detach(&self, name: &str, flags: &[&str], command: &[&str]) -> String {
        let mut all = vec!["-d", "--name", name];
        all.extend_from_slice(flags);
        let output = self.run(&all, command);
        assert_eq!(code(&output), 0, "run -d {name}: {}", stderr(&output));
        let id = stdout(&output).trim_end().to_string();
        assert!(is_id(&id), "run -d prints the id: {:?}", stdout(&output));
        id
    }

    /// `inspect NAME`: its one document.
    fn inspect(&self, name: &str) -> Value {
        let output = self.verb(["inspect", name]);
        assert_eq!(code(&output), 0, "inspect {name}: {}", stderr(&output));
        let documents: Value = serde_json::from_str(&stdout(&output)).unwrap();
        documents[0].clone()
    }

    /// The row of `ps` (`ps -a` with `all`) for container `id`, if listed.
    fn ps_row(&self, all: bool, id: &str) -> Option<String> {
        let output = self.verb(if all { &["ps", "-a"][..] } else { &["ps"][..] });
        assert_eq!(code(&output), 0, "{}", stderr(&output));
        stdout(&output)
            .lines()
            .find(|line| line.starts_with(&id[..12]))
            .map(str::to_string)
    }

    /// What `logs NAME FLAGS` prints on stdout.
    fn logs(&self, name: &str, flags: &[&str]) -> String {
        let output = self.verb(["logs"].iter().chain(flags).chain([&name]));
        assert_eq!(code(&output), 0, "logs {name}: {}", stderr(&output));
        stdout(&output)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // One at a time: `rm -f a b` stops at the first it cannot remove.
        for name in self.names.lock().unwrap().iter() {
            let _ = self.verb(["rm", "-f", name]);
        }
    }
}

/// A process of the test's own (a stand-in for some other program), killed
/// and reaped when dropped.
struct Bystander(Child);

impl Bystander {
    fn start() -> Bystander {
        Bystander(Command::new("sleep").arg("60").spawn().unwrap())
    }
    fn pid(&self) -> i64 {
        i64::from(self.0.id())
    }
}

impl Drop for Bystander {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What a monitor this test SIGKILLed leaves outside the stand-in host
/// (its rootfs mount point, its cgroups: both named after it), removed
/// when dropped: `rm` and `lab clean` reclaim them when the test gets that
/// far, and this guard when it does not.
struct KilledMonitor(i64);

impl KilledMonitor {
    fn kill(pid: i64) -> KilledMonitor {
        sigkill(pid);
        KilledMonitor(pid)
    }
}

impl Drop for KilledMonitor {
    fn drop(&mut self) {
        if alive(self.0) {
            return; // the number went to another process: its names now
        }
        for dir in cgroup_dirs_of(self.0) {
            let _ = std::fs::remove_dir(dir);
        }
        let _ = std::fs::remove_dir(format!(
            "{}/rootfs-{}",
            container_lab::runtime::RUN_DIR,
            self.0
        ));
    }
}

fn is_id(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The fields of /proc/PID/stat after the command name (state first).
fn stat_fields(pid: i64) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// Whether `pid` is a process that runs (not gone, not a zombie).
fn alive(pid: i64) -> bool {
    stat_fields(pid).is_some_and(|fields| fields[0] != "Z")
}

/// Whether any process, a zombie too, has the number `pid`.
fn exists(pid: i64) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// When `pid` started, in clock ticks after boot (field 22 of its stat).
fn start_time(pid: i64) -> u64 {
    stat_fields(pid).unwrap()[19].parse().unwrap()
}

fn sigkill(pid: i64) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
}

/// Wait until `done`, at most `limit`; fail saying what did not happen.
fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Wait for `child` at most `limit`; kill it and fail if it takes longer.
fn finish_within(mut child: Child, limit: Duration, what: &str) -> Output {
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "{what} did not end within {limit:?}; it printed:\n{}{}",
                stdout(&output),
                stderr(&output)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// The state records (state.json) of every container named `name`.
fn records_named(name: &str) -> Vec<Value> {
    std::fs::read_dir(STATE)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| std::fs::read(entry.path().join("state.json")).ok())
        .filter_map(|text| serde_json::from_slice::<Value>(&text).ok())
        .filter(|record| record["name"] == name)
        .collect()
}

fn state_dir(id: &str) -> PathBuf {
    Path::new(STATE).join(id)
}

/// What the container whose monitor is `monitor` still holds on the host,
/// one line each: its cgroups, the mount point of its rootfs (and any mount
/// there), and in the stand-in host `host` its veth, nftables tables,
/// lease and port claims (all named after the monitor, see
/// src/runtime/net.rs host_veth_name and container_table_name).
fn held_by(monitor: i64, host: Option<&Netns>) -> Vec<String> {
    let mut held: Vec<String> = cgroup_dirs_of(monitor)
        .iter()
        .map(|dir| format!("cgroup {}", dir.display()))
        .collect();
    let mount_point = format!("{}/rootfs-{monitor}", container_lab::runtime::RUN_DIR);
    let copy = format!(
        "{}/run-{monitor}",
        container_lab::runtime::userns::REMAPPED_ROOT
    );
    for path in [&mount_point, &copy] {
        if Path::new(path).exists() {
            held.push(format!("directory {path}"));
        }
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    held.extend(
        mountinfo
            .lines()
            .filter(|line| line.split(' ').nth(4) == Some(&mount_point))
            .map(|line| format!("mount {line}")),
    );
    let Some(host) = host else {
        return held;
    };
    let veth = format!("labv{monitor}");
    held.extend(
        host.ip(&["-br", "link"])
            .lines()
            .filter_map(|line| line.split_whitespace().next())
            .filter(|link| link.split('@').next() == Some(&veth))
            .map(|link| format!("interface {link}")),
    );
    let table = format!("container-lab-c{monitor}");
    held.extend(
        host.nft(&["list", "tables"])
            .lines()
            .filter(|line| line.split_whitespace().last() == Some(&table))
            .map(str::to_string),
    );
    let bridge = host.lab_state().join("labbr0");
    for kind in ["leases", "ports"] {
        for entry in std::fs::read_dir(bridge.join(kind))
            .into_iter()
            .flatten()
            .flatten()
        {
            let owner = std::fs::read_to_string(entry.path()).unwrap_or_default();
            if owner.trim() == monitor.to_string() {
                held.push(format!("{kind} {}", entry.path().display()));
            }
        }
    }
    for entry in std::fs::read_dir(&bridge).into_iter().flatten().flatten() {
        if entry.file_name().to_string_lossy() == format!("ctr-{monitor}") {
            held.push(format!("network state {}", entry.path().display()));
        }
    }
    held
}

/// Wait until nothing of the container of `monitor` is left. A veth goes
/// when the kernel tears the container's network namespace down, in the
/// background and sometimes seconds later (see tests/ch04_net.rs); what is
/// really left stays for good, so a long deadline costs nothing.
fn assert_nothing_held(monitor: i64, host: Option<&Netns>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut held = held_by(monitor, host);
    while !held.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        held = held_by(monitor, host);
    }
    assert!(
        held.is_empty(),
        "left behind by the container of monitor {monitor}:\n{}",
        held.join("\n")
    );
}

#[test]
fn help_teaches_the_verbs() {
    let output = run(CH, ["--help"]);
    assert_eq!(code(&output), 0);
    snapshot!("ch07_help", stdout(&output));
}

#[test]
fn run_help_lists_the_lifecycle_flags_and_chapter_06s() {
    let output = run(CH, ["run", "--help"]);
    assert_eq!(code(&output), 0);
    snapshot!("ch07_run_help", stdout(&output));
}

as_root!(
    /// `run -d` prints the id and returns at once; the container goes on
    /// after the command is gone, even when the command was SIGKILLed.
    a_detached_container_outlives_its_command,
    {
        let lab = Lab::new();
        let name = lab.name("outlives");
        // (The words first: the first test to ask for the rootfs builds it.)
        let words = lab.run_words(&["-d", "--name", &name], &["/bin/sleep", "60"]);
        let started = Instant::now();
        let output = lab.verb(&words);
        let took = started.elapsed();
        assert_eq!(code(&output), 0, "{}", stderr(&output));
        assert_eq!(stderr(&output), "");
        let id = stdout(&output).trim_end().to_string();
        assert!(is_id(&id) && stdout(&output) == format!("{id}\n"), "{:?}", stdout(&output));
        assert!(took < Duration::from_secs(5), "run -d of a 60 s sleep took {took:?}");
        std::thread::sleep(Duration::from_secs(2));
        let info = lab.inspect(&name);
        assert_eq!(info["Id"], id.as_str());
        assert_eq!(info["State"]["Status"], "running", "{info:#}");
        let pid_one = info["State"]["Pid"].as_i64().unwrap();
        assert!(alive(pid_one), "PID 1 {pid_one} of {name} is gone 2 s after run -d");
        let row = lab.ps_row(false, &id).expect("in ps");
        assert!(row.contains(&name) && row.contains(" Up "), "{row}");
        // `top` lists its processes as the host numbers them.
        let top = lab.verb(["top", &name]);
        assert_eq!(code(&top), 0, "{}", stderr(&top));
        assert!(stdout(&top).starts_with("UID"), "{}", stdout(&top));
        assert!(stdout(&top).lines().any(|l| l.ends_with("sleep 60")), "{}", stdout(&top));
        assert!(stdout(&top).contains(&format!(" {pid_one} ")), "{}", stdout(&top));

        // The command SIGKILLed as soon as it printed the id.
        let name = lab.name("outlives-kill");
        let mut command = lab.command().args(lab.run_words(&["-d", "--name", &name], &["/bin/sleep", "60"])).spawn().unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(command.stdout.take().unwrap()), &mut line).unwrap();
        let _ = command.kill();
        let _ = command.wait();
        let id = line.trim_end().to_string();
        assert!(is_id(&id), "{line:?}");
        std::thread::sleep(Duration::from_secs(2));
        let info = lab.inspect(&name);
        assert_eq!(info["State"]["Status"], "running", "{info:#}");
        assert!(alive(info["State"]["Pid"].as_i64().unwrap()), "{info:#}");
        assert!(alive(info["MonitorPid"].as_i64().unwrap()), "{info:#}");
        assert!(lab.ps_row(false, &id).is_some_and(|row| row.contains(" Up ")));
    }
);

as_root!(
    /// The log keeps what the container wrote, in order, stdout and stderr
    /// apart; `logs -f` follows it until the container ends; `--tail` and
    /// `-t` as docker's.
    logs_keep_the_output_in_order,
    {
        let lab = Lab::new();
        let name = lab.name("logs");
        let script = "i=1; while [ $i -le 5 ]; do echo line$i; i=$((i+1)); done; echo oops >&2; sleep 1; echo done";
        lab.detach(&name, &[], &["/bin/sh", "-c", script]);
        let started = Instant::now();
        let follow = lab.spawn(["logs", "-f", &name]);
        let followed = finish_within(follow, Duration::from_secs(20), "logs -f of a container that ends after 1 s");
        assert_eq!(code(&followed), 0, "{}", stderr(&followed));
        let all = "line1\nline2\nline3\nline4\nline5\ndone\n";
        assert_eq!(stdout(&followed), all);
        assert_eq!(stderr(&followed), "oops\n");
        assert!(started.elapsed() >= Duration::from_millis(500), "logs -f returned before the container ended");
        assert_eq!(lab.inspect(&name)["State"]["Status"], "exited");

        assert_eq!(lab.logs(&name, &[]), all);
        // The last entries of the log, whichever stream they came from.
        let tail = lab.verb(["logs", "--tail", "3", &name]);
        assert_eq!((stdout(&tail).as_str(), stderr(&tail).as_str()), ("line5\ndone\n", "oops\n"));
        let tail = lab.verb(["logs", "--tail", "1", &name]);
        assert_eq!((stdout(&tail).as_str(), stderr(&tail).as_str()), ("done\n", ""));
        let stamped = lab.logs(&name, &["-t"]);
        let mut last = String::new();
        for (line, text) in stamped.lines().zip(all.lines()) {
            let (time, rest) = line.split_once(' ').unwrap_or_else(|| panic!("no timestamp: {line:?}"));
            assert_eq!(rest, text, "{stamped}");
            assert!(is_rfc3339(time), "not an RFC 3339 UTC time: {time:?}");
            assert!(time >= last.as_str(), "times go back: {stamped}");
            last = time.to_string();
        }
        assert_eq!(stamped.lines().count(), 6, "{stamped}");
    }
);

/// `2026-12-02T03:04:05.123456789Z`: RFC 3339 in UTC, as Docker prints.
fn is_rfc3339(time: &str) -> bool {
    let b = time.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        b.get(range)
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
    };
    b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && time.ends_with('Z')
        && (b.len() == 20 || b[19] == b'.' && digits(20..b.len() - 1))
}

as_root!(
    /// Attached, `run` passes the command's exit code through, its stdout
    /// on stdout and its stderr on stderr; the container stays in `ps -a`.
    an_attached_run_passes_the_exit_code_through,
    {
        let lab = Lab::new();
        let name = lab.name("code0");
        let output = lab.run(&["--name", &name], &["/bin/true"]);
        assert_eq!(code(&output), 0, "{}", stderr(&output));
        assert_eq!(stdout(&output), "");

        let name = lab.name("code3");
        let output = lab.run(&["--name", &name], &["/bin/sh", "-c", "echo out; echo err >&2; exit 3"]);
        assert_eq!(code(&output), 3, "{}", stderr(&output));
        assert_eq!(stdout(&output), "out\n");
        assert_eq!(stderr(&output), "err\n");
        let info = lab.inspect(&name);
        assert_eq!(info["State"]["Status"], "exited");
        assert_eq!(info["State"]["ExitCode"], 3);
        let id = info["Id"].as_str().unwrap();
        let row = lab.ps_row(true, id).expect("in ps -a");
        assert!(row.contains(" Exited (3) ") && row.ends_with(" ago"), "{row}");
        assert!(lab.ps_row(false, id).is_none(), "an exited container is not in ps");

        let name = lab.name("code127");
        let output = lab.run(&["--name", &name], &["/no/such/command"]);
        assert_eq!(code(&output), 127, "{}", stderr(&output));
        assert!(stderr(&output).contains("not found"), "{}", stderr(&output));

        // Killed from another command: 128 + 9.
        let name = lab.name("code137");
        let attached = lab.spawn(lab.run_words(&["--name", &name], &["/bin/sleep", "60"]));
        wait_until("the attached container runs", Duration::from_secs(20), || {
            records_named(&name).iter().any(|r| r["status"] == "running")
        });
        let kill = lab.verb(["kill", &name]);
        assert_eq!(code(&kill), 0, "{}", stderr(&kill));
        assert_eq!(stdout(&kill), format!("{name}\n"));
        let output = finish_within(attached, Duration::from_secs(20), "an attached run after kill");
        assert_eq!(code(&output), 137, "{}", stderr(&output));
        let info = lab.inspect(&name);
        assert_eq!(info["State"]["ExitCode"], 137);
        let row = lab.ps_row(true, info["Id"].as_str().unwrap()).unwrap();
        assert!(row.contains(" Exited (137) "), "{row}");
    }
);

as_root!(
    /// `--rm`: when the container ends its state goes too, attached or
    /// detached.
    rm_flag_leaves_nothing,
    {
        let lab = Lab::new();
        let name = lab.name("autorm");
        let attached = lab.spawn(lab.run_words(&["--rm", "--name", &name], &["/bin/sh", "-c", "sleep 1; echo bye"]));
        let mut id = String::new();
        wait_until("the --rm container runs", Duration::from_secs(20), || {
            let records = records_named(&name);
            id = records.first().map(|r| r["id"].as_str().unwrap().to_string()).unwrap_or_default();
            !id.is_empty()
        });
        assert!(state_dir(&id).exists());
        let output = finish_within(attached, Duration::from_secs(20), "an attached --rm run");
        assert_eq!(code(&output), 0, "{}", stderr(&output));
        assert_eq!(stdout(&output), "bye\n");
        assert!(!state_dir(&id).exists(), "state left: {}", state_dir(&id).display());
        assert!(lab.ps_row(true, &id).is_none());
        let inspect = lab.verb(["inspect", &name]);
        assert_clean_failure(&inspect, 1, &format!("no such container: {name}"));

        let name = lab.name("autorm-d");
        let id = lab.detach(&name, &["--rm"], &["/bin/sh", "-c", "sleep 0.5"]);
        wait_until("the state of a detached --rm container goes when it ends", Duration::from_secs(20), || {
            !state_dir(&id).exists()
        });
        assert!(lab.ps_row(true, &id).is_none());
    }
);

as_root!(
    /// `stop -t 2` on a container that ignores SIGTERM: SIGKILL after the
    /// grace period, exit 137. One that ends on SIGTERM ends at once with
    /// 143. Stopping a stopped container is fine.
    stop_kills_after_the_grace_period,
    {
        let lab = Lab::new();
        let name = lab.name("stubborn");
        let script = "trap '' TERM; echo ready; while :; do sleep 0.1; done";
        let id = lab.detach(&name, &[], &["/bin/sh", "-c", script]);
        // The trap is set once it says so.
        wait_until("the stubborn container is ready", Duration::from_secs(20), || lab.logs(&name, &[]) == "ready\n");
        let started = Instant::now();
        let stop = lab.verb(["stop", "-t", "2", &name]);
        let took = started.elapsed();
        assert_eq!(code(&stop), 0, "{}", stderr(&stop));
        assert_eq!(stdout(&stop), format!("{name}\n"));
        assert!(
            (Duration::from_millis(1800)..Duration::from_secs(5)).contains(&took),
            "stop -t 2 of a container that ignores SIGTERM took {took:?}"
        );
        let info = lab.inspect(&name);
        assert_eq!(info["State"]["Status"], "exited");
        assert_eq!(info["State"]["ExitCode"], 137);
        assert!(lab.ps_row(true, &id).unwrap().contains(" Exited (137) "));

        let name = lab.name("polite");
        let id = lab.detach(&name, &[], &["/bin/sleep", "60"]);
        let started = Instant::now();
        let stop = lab.verb(["stop", "-t", "10", &name]);
        let took = started.elapsed();
        assert_eq!(code(&stop), 0, "{}", stderr(&stop));
        assert!(took < Duration::from_secs(5), "stop of a container that ends on SIGTERM took {took:?}");
        assert_eq!(lab.inspect(&name)["State"]["ExitCode"], 143);
        assert!(lab.ps_row(true, &id).unwrap().contains(" Exited (143) "));

        let again = lab.verb(["stop", &name]);
        assert_eq!(code(&again), 0, "stopping a stopped container: {}", stderr(&again));
        assert_eq!(stdout(&again), format!("{name}\n"));
        assert_eq!(lab.inspect(&name)["State"]["ExitCode"], 143, "a second stop changes nothing");
    }
);

as_root!(
    /// `pause` freezes every process of the container: a counter does not
    /// advance while it is paused; `unpause` thaws it.
    pause_freezes_and_unpause_thaws,
    {
        let lab = Lab::new();
        let name = lab.name("counter");
        let id = lab.detach(&name, &[], &["/bin/sh", "-c", "i=0; while :; do echo $i; i=$((i+1)); sleep 0.1; done"]);
        let count = || lab.logs(&name, &[]).lines().count();
        wait_until("the counter counts", Duration::from_secs(20), || count() >= 3);
        let pause = lab.verb(["pause", &name]);
        assert_eq!(code(&pause), 0, "{}", stderr(&pause));
        assert_eq!(stdout(&pause), format!("{name}\n"));
        // What was already in the pipe reaches the log a moment later.
        std::thread::sleep(Duration::from_millis(300));
        let before = count();
        std::thread::sleep(Duration::from_secs(1));
        let after = count();
        assert_eq!(before, after, "the counter went on while paused");
        let row = lab.ps_row(false, &id).expect("a paused container is in ps");
        assert!(row.contains(" (Paused)"), "{row}");
        let info = lab.inspect(&name);
        assert_eq!(info["State"]["Status"], "paused");
        assert_eq!(info["State"]["Paused"], true);

        let unpause = lab.verb(["unpause", &name]);
        assert_eq!(code(&unpause), 0, "{}", stderr(&unpause));
        std::thread::sleep(Duration::from_secs(1));
        let thawed = count();
        assert!(thawed >= after + 3, "the counter did not go on after unpause: {after} then {thawed}");
        assert!(!lab.ps_row(false, &id).unwrap().contains("Paused"));
        assert_eq!(lab.inspect(&name)["State"]["Status"], "running");
    }
);

as_root!(
    /// `--restart on-failure:3`: a command that fails is started again
    /// exactly 3 times; one that succeeds never.
    restart_on_failure_restarts_exactly_n_times,
    {
        let lab = Lab::new();
        let name = lab.name("flaky");
        let id = lab.detach(&name, &["--restart", "on-failure:3"], &["/bin/sh", "-c", "echo try; exit 1"]);
        let settled = |name: &str, restarts: i64| {
            let info = lab.inspect(name);
            info["State"]["Status"] == "exited" && info["RestartCount"] == restarts
        };
        wait_until("3 restarts, then the end", Duration::from_secs(30), || settled(&name, 3));
        // Nothing more comes after the last restart.
        std::thread::sleep(Duration::from_secs(2));
        let info = lab.inspect(&name);
        assert_eq!(info["RestartCount"], 3, "{info:#}");
        assert_eq!(info["State"]["ExitCode"], 1);
        assert_eq!(lab.logs(&name, &[]), "try\n".repeat(4));
        assert!(lab.ps_row(true, &id).unwrap().contains(" Exited (1) "));

        let name = lab.name("fine");
        lab.detach(&name, &["--restart", "on-failure:3"], &["/bin/sh", "-c", "echo once"]);
        wait_until("the end", Duration::from_secs(20), || settled(&name, 0));
        std::thread::sleep(Duration::from_secs(2));
        let info = lab.inspect(&name);
        assert_eq!(info["RestartCount"], 0, "{info:#}");
        assert_eq!(info["State"]["ExitCode"], 0);
        assert_eq!(lab.logs(&name, &[]), "once\n");
    }
);

as_root!(
    /// Between two runs of `--restart` the container has not ended: its
    /// record never says "exited" while a restart is to come (`ps -a`,
    /// `rm` without -f, `wait` and `logs -f` all read it), so `wait`
    /// returns, and `logs -f` stops following, only after the last run.
    /// Four containers at once, and the records read as fast as they can
    /// be, as a record that is wrong only for a moment is not seen every
    /// time.
    wait_and_logs_f_last_through_the_restarts,
    {
        let lab = Lab::new();
        let names: Vec<String> = (0..4).map(|i| lab.name(&format!("waited{i}"))).collect();
        let ids: Vec<String> = names
            .iter()
            .map(|name| lab.detach(name, &["--restart", "on-failure:3"], &["/bin/sh", "-c", "echo try; exit 1"]))
            .collect();
        let waits: Vec<Child> = names.iter().map(|name| lab.spawn(["wait", name])).collect();
        let follows: Vec<Child> = names.iter().map(|name| lab.spawn(["logs", "-f", name])).collect();
        // Every record as it is written, until each has had its last run.
        let mut seen_ended_early: Vec<String> = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut settled = vec![false; ids.len()];
        while settled.contains(&false) && Instant::now() < deadline {
            for (at, id) in ids.iter().enumerate() {
                let Ok(text) = std::fs::read(state_dir(id).join("state.json")) else {
                    continue;
                };
                let Ok(record) = serde_json::from_slice::<Value>(&text) else {
                    continue;
                };
                let restarts = record["restart_count"].as_i64().unwrap_or(0);
                if record["status"] == "exited" {
                    if restarts < 3 {
                        seen_ended_early.push(format!("{}: exited after {restarts} restarts", names[at]));
                    }
                    settled[at] = restarts == 3;
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let mut problems = seen_ended_early;
        problems.sort();
        problems.dedup();
        for ((wait, follow), name) in waits.into_iter().zip(follows).zip(&names) {
            let waited = finish_within(wait, Duration::from_secs(30), "wait on a restarting container");
            let restarts = lab.inspect(name)["RestartCount"].clone();
            let followed = finish_within(follow, Duration::from_secs(30), "logs -f of a restarting container");
            if code(&waited) != 0 || stdout(&waited) != "1\n" {
                let said = format!("{}{}", stdout(&waited), stderr(&waited));
                problems.push(format!("{name}: wait exited {}: {}", code(&waited), said.trim_end()));
            } else if restarts != 3 {
                problems.push(format!("{name}: wait returned after {restarts} restarts"));
            }
            let lines = stdout(&followed).lines().count();
            if lines != 4 {
                problems.push(format!("{name}: logs -f showed {lines} of the 4 runs"));
            }
        }
        assert!(
            problems.is_empty(),
            "the container read as ended while a restart was to come:\n{}",
            problems.join("\n")
        );
    }
);

as_root!(
    /// 20 `run -d` at once, then 20 `rm -f` at once: 20 ids, names,
    /// addresses, monitors; afterwards nothing of any of them on the host.
    twenty_at_once_get_their_own_and_leave_nothing,
    {
        let lab = Lab::bridged("twenty");
        let host = lab.host.as_ref();
        let names: Vec<String> = (0..20).map(|i| lab.name(&format!("many{i}"))).collect();
        let runs: Vec<Child> = names
            .iter()
            .map(|name| lab.spawn(lab.run_words(&["-d", "--name", name], &["/bin/sleep", "60"])))
            .collect();
        let ids: Vec<String> = runs
            .into_iter()
            .map(|run| {
                let output = finish_within(run, Duration::from_secs(60), "one of 20 run -d");
                assert_eq!(code(&output), 0, "{}", stderr(&output));
                stdout(&output).trim_end().to_string()
            })
            .collect();
        let distinct = |values: &[String]| values.iter().collect::<std::collections::HashSet<_>>().len();
        assert!(ids.iter().all(|id| is_id(id)), "{ids:?}");
        assert_eq!(distinct(&ids), 20, "{ids:?}");
        let infos: Vec<Value> = names.iter().map(|name| lab.inspect(name)).collect();
        let field = |pick: &dyn Fn(&Value) -> String| infos.iter().map(pick).collect::<Vec<String>>();
        let listed_names = field(&|info| info["Name"].as_str().unwrap().to_string());
        assert_eq!(listed_names, names);
        let addresses = field(&|info| info["NetworkSettings"]["IPAddress"].as_str().unwrap().to_string());
        assert!(addresses.iter().all(|a| a.starts_with("10.88.0.")), "{addresses:?}");
        assert_eq!(distinct(&addresses), 20, "{addresses:?}");
        let monitors: Vec<i64> = infos.iter().map(|info| info["MonitorPid"].as_i64().unwrap()).collect();
        assert_eq!(distinct(&field(&|info| info["MonitorPid"].to_string())), 20, "{monitors:?}");
        for (info, monitor) in infos.iter().zip(&monitors) {
            assert_eq!(info["State"]["Status"], "running", "{info:#}");
            // What the checks below look for is there while it runs.
            let held = held_by(*monitor, host).join("\n");
            for thing in ["cgroup ", "interface labv", "table bridge container-lab-c", "leases "] {
                assert!(held.contains(thing), "no {thing}... for monitor {monitor}:\n{held}");
            }
        }

        let removals: Vec<Child> = names.iter().map(|name| lab.spawn(["rm", "-f", name])).collect();
        for (removal, name) in removals.into_iter().zip(&names) {
            let output = finish_within(removal, Duration::from_secs(60), "one of 20 rm -f");
            assert_eq!(code(&output), 0, "rm -f {name}: {}", stderr(&output));
            assert_eq!(stdout(&output), format!("{name}\n"));
        }
        let all = stdout(&lab.verb(["ps", "-a"]));
        for (id, monitor) in ids.iter().zip(&monitors) {
            assert!(!all.contains(&id[..12]), "{id} still listed:\n{all}");
            assert!(!state_dir(id).exists(), "state left: {id}");
            assert!(!alive(*monitor), "monitor {monitor} still runs");
        }
        for monitor in &monitors {
            assert_nothing_held(*monitor, host);
        }
    }
);

as_root!(
    /// A SIGKILLed monitor takes its container along; `ps -a` says it is
    /// dead, `rm` removes it, `lab clean` reclaims what it held.
    a_killed_monitor_leaves_a_dead_container_to_rm_and_clean,
    {
        let lab = Lab::bridged("deadmon");
        let host = lab.host.as_ref();
        let name = lab.name("deadmon");
        let id = lab.detach(&name, &[], &["/bin/sleep", "60"]);
        let info = lab.inspect(&name);
        let monitor = info["MonitorPid"].as_i64().unwrap();
        let top = stdout(&lab.verb(["top", &name]));
        let processes: Vec<i64> = top.lines().skip(1).map(|l| l.split_whitespace().nth(1).unwrap().parse().unwrap()).collect();
        assert!(processes.len() >= 2, "{top}");
        assert!(held_by(monitor, host).iter().any(|h| h.starts_with("interface")));

        let _killed = KilledMonitor::kill(monitor);
        wait_until("the container dies with its monitor", Duration::from_secs(20), || {
            processes.iter().all(|pid| !alive(*pid))
        });
        let row = lab.ps_row(true, &id).expect("in ps -a");
        assert!(row.contains(" Dead "), "{row}");
        assert!(lab.ps_row(false, &id).is_none(), "a dead container is not in ps");
        let info = lab.inspect(&name);
        assert_eq!(info["State"]["Status"], "dead", "{info:#}");
        assert_eq!(info["State"]["Dead"], true);
        assert_eq!(info["State"]["Running"], false);

        let rm = lab.verb(["rm", &name]);
        assert_eq!(code(&rm), 0, "{}", stderr(&rm));
        assert!(!state_dir(&id).exists());
        assert!(lab.ps_row(true, &id).is_none());

        // lab clean takes what a process that is gone made; a SIGKILLed
        // monitor may stay a zombie for a moment.
        wait_until("the killed monitor is reaped", Duration::from_secs(20), || !exists(monitor));
        let before = held_by(monitor, host);
        let clean = host.unwrap().command(bin("lab")).arg("clean").output().unwrap();
        let held = held_by(monitor, host);
        assert!(
            held.is_empty(),
            "lab clean left:\n{}\nof:\n{}\nit said:\n{}{}",
            held.join("\n"),
            before.join("\n"),
            stdout(&clean),
            stderr(&clean)
        );
        assert_nothing_held(monitor, host);
    }
);

as_root!(
    /// A pid in the state that now names another process is never
    /// signalled: the record keeps each process's start time, and a pid
    /// whose start time differs is someone else.
    a_reused_pid_is_never_signalled,
    {
        let lab = Lab::new();
        let name = lab.name("reused");
        let id = lab.detach(&name, &[], &["/bin/sleep", "60"]);
        let info = lab.inspect(&name);
        let monitor = info["MonitorPid"].as_i64().unwrap();
        let pid_one = info["State"]["Pid"].as_i64().unwrap();
        let _killed = KilledMonitor::kill(monitor);
        wait_until("the container dies with its monitor", Duration::from_secs(20), || !alive(pid_one));

        // The container's pid now names a process of ours (as if the kernel
        // had given the number to it), its start time still the old one's.
        let bystander = Bystander::start();
        let forge = |change: &dyn Fn(&mut Value)| {
            let path = state_dir(&id).join("state.json");
            let mut record: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            change(&mut record);
            let staging = state_dir(&id).join(".forged");
            std::fs::write(&staging, serde_json::to_vec_pretty(&record).unwrap()).unwrap();
            std::fs::rename(&staging, &path).unwrap();
        };
        forge(&|record| {
            assert_ne!(record["pid"]["start_time"], start_time(bystander.pid()));
            record["pid"]["pid"] = bystander.pid().into();
        });
        let stop = lab.verb(["stop", "-t", "1", &name]);
        assert_eq!(code(&stop), 0, "{}", stderr(&stop));
        assert!(alive(bystander.pid()), "stop signalled another process");
        let kill = lab.verb(["kill", &name]);
        assert_clean_failure(&kill, 1, "is not running");
        assert!(alive(bystander.pid()), "kill signalled another process");

        // Worse: its monitor's pid names a live process too, so the record
        // looks running.
        let stand_in = Bystander::start();
        forge(&|record| {
            record["monitor"]["pid"] = stand_in.pid().into();
            record["monitor"]["start_time"] = start_time(stand_in.pid()).into();
        });
        assert!(lab.ps_row(false, &id).is_some_and(|row| row.contains(" Up ")));
        let _ = lab.verb(["kill", "-s", "KILL", &name]);
        assert!(alive(bystander.pid()), "kill signalled another process");
        // stop waits for the monitor to record the end: it never will.
        let stop = lab.spawn(["stop", "-t", "1", &name]);
        std::thread::sleep(Duration::from_millis(2500));
        assert!(alive(bystander.pid()), "stop signalled another process");
        drop(stand_in);
        let stop = finish_within(stop, Duration::from_secs(20), "stop once the monitor is gone");
        assert_eq!(code(&stop), 0, "{}", stderr(&stop));
        assert!(alive(bystander.pid()), "stop signalled another process");

        let rm = lab.verb(["rm", "-f", &name]);
        assert_eq!(code(&rm), 0, "{}", stderr(&rm));
        assert!(alive(bystander.pid()), "rm -f signalled another process");
        assert!(!state_dir(&id).exists());
    }
);

as_root!(
    /// Bad input: one error line and one hint line, docker's exit codes (1
    /// from a verb, 125 from run and from usage errors), and nothing
    /// changed.
    bad_input_is_refused_and_changes_nothing,
    {
        let lab = Lab::new();
        let missing = lab.name("missing");
        for verb in ["stop", "kill", "pause", "unpause", "logs", "wait", "inspect", "top", "rm"] {
            let output = lab.verb([verb, &missing]);
            assert_clean_failure(&output, 1, &format!("no such container: {missing}"));
            assert!(stderr(&output).contains("ps -a"), "{verb}: {}", stderr(&output));
        }
        assert!(records_named(&missing).is_empty());

        let name = lab.name("taken");
        let id = lab.detach(&name, &[], &["/bin/sleep", "60"]);
        let pid_one = lab.inspect(&name)["State"]["Pid"].as_i64().unwrap();
        let untouched = || {
            let records = records_named(&name);
            records.len() == 1 && records[0]["id"] == id.as_str() && alive(pid_one)
        };

        let again = lab.run(&["--name", &name], &["/bin/true"]);
        assert_clean_failure(&again, 125, &format!("already in use by container {id}"));
        assert!(stderr(&again).contains("--name"), "{}", stderr(&again));
        let again = lab.run(&["-d", "--name", &name], &["/bin/true"]);
        assert_clean_failure(&again, 125, &id);
        assert!(untouched());

        let spaced = lab.run(&["--name", "a b"], &["/bin/true"]);
        assert_clean_failure(&spaced, 125, "invalid container name");
        assert!(records_named("a b").is_empty());

        let signal = lab.verb(["kill", "-s", "NOPE", &name]);
        assert_clean_failure(&signal, 125, "\"NOPE\" is not a signal");
        assert!(untouched());

        let negative = lab.verb(["stop", "-t", "-1", &name]);
        assert_clean_failure(&negative, 125, "0 or more");
        assert!(untouched());

        let rm = lab.verb(["rm", &name]);
        assert_clean_failure(&rm, 1, "it is running");
        assert!(stderr(&rm).contains("rm -f"), "{}", stderr(&rm));
        assert!(untouched());

        let removed = lab.name("rm-restart");
        let both = lab.run(&["--rm", "--restart", "on-failure", "--name", &removed], &["/bin/true"]);
        assert_clean_failure(&both, 125, "--rm and --restart conflict");
        let always = lab.run(&["--restart", "always", "--name", &removed], &["/bin/true"]);
        assert_clean_failure(&always, 125, "on-failure");
        assert!(records_named(&removed).is_empty());
    }
);

as_root!(
    /// A verb given several containers acts on each, as docker's do: one it
    /// cannot find is an error (exit 1, said on stderr), and the others are
    /// still stopped or removed.
    a_missing_name_does_not_spare_the_others,
    {
        let lab = Lab::new();
        let missing = lab.name("several-missing");
        let name = lab.name("several");
        let id = lab.detach(&name, &[], &["/bin/sleep", "60"]);
        let stop = lab.verb(["stop", "-t", "1", &missing, &name]);
        assert_eq!(code(&stop), 1, "{}", stderr(&stop));
        assert!(stderr(&stop).contains(&format!("no such container: {missing}")), "{}", stderr(&stop));
        assert_eq!(lab.inspect(&name)["State"]["Status"], "exited", "stop passed over {name}");
        let rm = lab.verb(["rm", "-f", &missing, &name]);
        assert_eq!(code(&rm), 1, "{}", stderr(&rm));
        assert!(!state_dir(&id).exists(), "rm -f passed over {name}");
    }
);

as_root!(
    /// A short session for the book: a detached container, ps, logs, stop,
    /// ps -a, rm. Ids and times are masked ([`mask`]); the container's
    /// unique name is shown as `web`; other people's containers on this
    /// machine are left out of ps.
    a_session_for_the_book,
    {
        let lab = Lab::bridged("session");
        let name = lab.name("web");
        let mut session = String::new();
        let run = lab.run(&["-d", "--name", &name], &["/bin/sh", "-c", "echo hello from web; exec sleep 1000"]);
        assert_eq!(code(&run), 0, "{}", stderr(&run));
        let id = stdout(&run).trim_end().to_string();
        session += &transcript(
            "ch07-lifecycle run -d --name web ./rootfs /bin/sh -c 'echo hello from web; exec sleep 1000'",
            &run,
            None,
        );
        wait_until("web says hello", Duration::from_secs(20), || lab.logs(&name, &[]) == "hello from web\n");
        let ps = |all: bool| {
            let output = lab.verb(if all { &["ps", "-a"][..] } else { &["ps"][..] });
            assert_eq!(code(&output), 0, "{}", stderr(&output));
            let shown = if all { "ch07-lifecycle ps -a" } else { "ch07-lifecycle ps" };
            format!("$ {shown}\n{}", ps_table(&stdout(&output), &id, &name))
        };
        let verb = |shown: &str, args: &[&str]| {
            let output = lab.verb(args);
            assert_eq!(code(&output), 0, "{shown}: {}", stderr(&output));
            transcript(shown, &output, None)
        };
        session += &ps(false);
        session += &verb("ch07-lifecycle logs web", &["logs", &name]);
        session += &verb("ch07-lifecycle stop web", &["stop", &name]);
        session += &ps(true);
        session += &verb("ch07-lifecycle rm web", &["rm", &name]);
        session += &ps(true);
        let session = mask(&session.replace(&name, "web"));
        snapshot!("ch07_session", session);
    }
);

/// `ps` output with only the header and container `id`'s row, its name
/// shown as `web`, ids and times masked, and the columns aligned again.
fn ps_table(text: &str, id: &str, name: &str) -> String {
    let rows: Vec<[String; 6]> = text
        .lines()
        .enumerate()
        .filter(|(at, line)| *at == 0 || line.starts_with(&id[..12]))
        .map(|(_, line)| {
            let mut cells = line
                .split("   ")
                .map(str::trim)
                .filter(|cell| !cell.is_empty())
                .map(|cell| mask(&cell.replace(name, "web")));
            std::array::from_fn(|_| cells.next().unwrap_or_default())
        })
        .collect();
    container_lab::runtime::lifecycle::align(&rows)
}

#[test]
fn masking_hides_ids_and_times_only() {
    let id = "0123456789abcdef".repeat(4);
    assert_eq!(mask(&format!("{id}\n")), "<id>\n");
    assert_eq!(
        mask("0123456789ab   web   Up 3 seconds\n"),
        "<id>   web   Up <time>\n"
    );
    assert_eq!(
        mask("Exited (143) Less than a second ago, 2 minutes ago, About a minute ago\n"),
        "Exited (143) <time> ago, <time> ago, <time> ago\n"
    );
    assert_eq!(
        mask("web-1 has 3 apples and dead beef\n"),
        "web-1 has 3 apples and dead beef\n"
    );
    assert_eq!(
        mask("x0123456789ab 0123456789abc\n"),
        "x0123456789ab 0123456789abc\n"
    );
    assert_eq!(mask("Up 2 seconds (Paused)"), "Up <time> (Paused)");
}

/// exec joins the container: its PID 1, hostname, mounts and network, not
/// the host's; the command's own exit code comes back.
#[test]
fn exec_sees_the_container_not_the_host() {
    if !require_root("exec") {
        return;
    }
    let lab = Lab::bridged("t7exec");
    let name = lab.name("exec");
    lab.detach(&name, &["--hostname", "inside"], &["/bin/sleep", "1000"]);
    let script = "hostname; tr '\\0' ' ' </proc/1/cmdline; echo; \
        grep -c . /proc/self/mountinfo; ls /sys/class/net | tr '\\n' ' '; echo; \
        id -u; ls -l /proc/self/fd/1; exit 7";
    let output = lab.verb(["exec", name.as_str(), "/bin/sh", "-c", script]);
    assert_eq!(code(&output), 7, "{}", stderr(&output));
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "inside", "the container's hostname: {text}");
    assert!(
        lines[1].contains("/bin/sleep 1000"),
        "PID 1 is the container's (its init runs the sleep): {text}"
    );
    let host_mounts = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .count();
    let inside_mounts: usize = lines[2].trim().parse().unwrap();
    assert!(
        inside_mounts < host_mounts,
        "the container's mount table ({inside_mounts}), not the host's ({host_mounts})"
    );
    let interfaces: Vec<&str> = lines[3].split_whitespace().collect();
    assert!(
        interfaces.contains(&"eth0") && interfaces.contains(&"lo") && interfaces.len() == 2,
        "the container's interfaces only: {interfaces:?}"
    );
    assert_eq!(lines[4], "0", "root inside: {text}");
    assert!(
        lines[5].contains("pipe:"),
        "stdout is a pipe the runtime holds: {text}"
    );
    let missing = lab.verb(["exec", name.as_str(), "/no/such/command"]);
    assert_eq!(code(&missing), 127, "{}", stderr(&missing));
    let unknown = lab.verb(["exec", "t7-no-such-container", "/bin/true"]);
    assert_eq!(code(&unknown), 1);
    assert!(
        stderr(&unknown).contains("no such container"),
        "{}",
        stderr(&unknown)
    );
}

/// exec -t gives the command a terminal of its own, and -i its stdin.
#[test]
fn exec_with_a_terminal_and_with_stdin() {
    if !require_root("exec -t") {
        return;
    }
    require_tool("script", "bsdutils");
    let lab = Lab::new();
    let name = lab.name("exectty");
    lab.detach(&name, &[], &["/bin/sleep", "1000"]);
    // script(1) runs exec on a pseudo-terminal of the test's own.
    let line = format!(
        "{} exec -t {name} /bin/sh -c 'test -t 1 && echo has-a-tty; exit 3'",
        bin(CH).display()
    );
    let output = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(code(&output), 3, "{}", stderr(&output));
    assert!(stdout(&output).contains("has-a-tty"), "{}", stdout(&output));
    // run -t too: a terminal from the container's own devpts (its name is
    // there, in its /dev/pts), and what it showed is in the log.
    let run = format!(
        "{} run -t --name {} --net none {} /bin/sh -c 'test -t 0 && test -t 1 && test -e \"$(readlink /proc/self/fd/0)\" && echo run-has-a-tty; exit 4'",
        bin(CH).display(),
        lab.name("runtty"),
        rootfs().display()
    );
    let output = Command::new("script")
        .args(["-qec", &run, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(code(&output), 4, "{}", stderr(&output));
    assert!(
        stdout(&output).contains("run-has-a-tty"),
        "{}",
        stdout(&output)
    );
    let logged = lab.logs(&format!("t7-{}-runtty", std::process::id()), &[]);
    assert!(logged.contains("run-has-a-tty"), "{logged}");
    let mut cat = lab
        .command()
        .args(["exec", "-i", name.as_str(), "/bin/cat"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    cat.stdin.take().unwrap().write_all(b"typed in\n").unwrap();
    let output = finish_within(cat, Duration::from_secs(10), "exec -i cat");
    assert_eq!(stdout(&output), "typed in\n");
}

/// exec into a paused container is refused, as docker refuses it: a
/// process that joined a frozen cgroup would freeze on the spot.
#[test]
fn exec_into_a_paused_container_is_refused() {
    if !require_root("exec paused") {
        return;
    }
    let lab = Lab::new();
    let name = lab.name("execpaused");
    lab.detach(&name, &[], &["/bin/sleep", "1000"]);
    assert_eq!(code(&lab.verb(["pause", name.as_str()])), 0);
    let started = Instant::now();
    let output = lab.verb(["exec", name.as_str(), "/bin/true"]);
    assert_eq!(code(&output), 1);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refused at once"
    );
    assert!(stderr(&output).contains("is paused"), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("unpause"),
        "a hint: {}",
        stderr(&output)
    );
    assert_eq!(code(&lab.verb(["unpause", name.as_str()])), 0);
    assert_eq!(code(&lab.verb(["exec", name.as_str(), "/bin/true"])), 0);
}
