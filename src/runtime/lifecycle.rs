//! The verbs that act on containers which already exist: `ps`, `stop`,
//! `kill`, `pause`, `unpause`, `logs`, `wait`, `inspect`, `top`, `rm`.
//! They are the same in every chapter from ch07 on, so they live here once
//! and the chapters only dispatch to them (`run` and `exec` are the
//! chapters' own: how a container is built changes from chapter to chapter).
//!
//! None of them trusts the state alone: a record that says "running" is
//! checked against the monitor's and PID 1's start times, so `ps` tells the
//! truth after a monitor was SIGKILLed, and a pid the kernel has since
//! given to another process is never signalled.

use crate::error::LabError;
use crate::runtime::cgroups;
use crate::runtime::logfile::{LogReader, render};
use crate::runtime::state::{Record, Status, Store, human_duration, now, rfc3339};
use nix::sys::signal::Signal;
use std::io::Write;
use std::time::{Duration, Instant};

/// What a container is doing, as the host sees it now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Observed {
    /// Its state exists; it is being built.
    Created,
    Running,
    /// Running, in a frozen cgroup.
    Paused,
    /// Between two runs of `--restart`.
    Restarting,
    Exited,
    /// Its monitor was killed, and the container with it (the monitor is
    /// its parent, and the container dies with its parent): nothing
    /// recorded how it ended. `rm` or `lab clean` reclaim what it held.
    Dead,
}

impl Observed {
    pub fn is_running(self) -> bool {
        matches!(
            self,
            Observed::Running | Observed::Paused | Observed::Restarting
        )
    }

    fn word(self) -> &'static str {
        match self {
            Observed::Created => "created",
            Observed::Running => "running",
            Observed::Paused => "paused",
            Observed::Restarting => "restarting",
            Observed::Exited => "exited",
            Observed::Dead => "dead",
        }
    }
}

// ANCHOR: observe
/// The record, checked against the processes it names.
pub fn observe(record: &Record) -> Observed {
    let monitor_alive = record.monitor.is_some_and(|m| m.is_alive());
    match record.status {
        Status::Exited => Observed::Exited,
        Status::Created if record.monitor.is_none() => Observed::Created,
        _ if !monitor_alive => Observed::Dead,
        Status::Restarting => Observed::Restarting,
        Status::Created => Observed::Created,
        Status::Running if cgroups::is_frozen(&record.cgroups) => Observed::Paused,
        Status::Running => Observed::Running,
    }
}
// ANCHOR_END: observe

/// `observe`, sure of a `Dead`: a monitor that recorded the end and exited
/// just after the record was read looks dead with the old record, so the
/// record is read again before a container is called dead.
fn observe_settled(store: &Store, record: Record) -> (Record, Observed) {
    match observe(&record) {
        Observed::Dead => match store.read(&record.id) {
            Some(again) => {
                let observed = observe(&again);
                (again, observed)
            }
            None => (record, Observed::Dead),
        },
        observed => (record, observed),
    }
}

/// `STATUS` as `docker ps` prints it.
pub fn status_line(record: &Record, observed: Observed) -> String {
    let ago =
        |time: Option<u64>| human_duration(now().saturating_sub(time.unwrap_or(0)) / 1_000_000_000);
    match observed {
        Observed::Created => "Created".into(),
        Observed::Running => format!("Up {}", ago(record.started_at)),
        Observed::Paused => format!("Up {} (Paused)", ago(record.started_at)),
        Observed::Restarting => format!(
            "Restarting ({}) {} ago",
            record.exit_code.unwrap_or(0),
            ago(record.finished_at)
        ),
        Observed::Exited => format!(
            "Exited ({}) {} ago",
            record.exit_code.unwrap_or(0),
            ago(record.finished_at)
        ),
        Observed::Dead => "Dead (its monitor was killed)".into(),
    }
}

/// `PORTS` as `docker ps` prints it.
fn ports_line(record: &Record) -> String {
    record
        .network
        .ports
        .iter()
        .map(|mapping| match mapping.split_once(':') {
            Some((host, container)) => format!("0.0.0.0:{host}->{container}"),
            None => mapping.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `COMMAND` as `docker ps` prints it: quoted, cut at 20 characters.
fn command_line(record: &Record) -> String {
    let line = crate::program::shell_words(&record.command);
    let cut: String = line.chars().take(19).collect();
    match line.chars().count() > 20 {
        true => format!("\"{cut}…\""),
        false => format!("\"{line}\""),
    }
}

// ANCHOR: ps
/// `ps [-a] [-q]`: running containers (all with `-a`), newest first.
pub fn ps(store: &Store, all: bool, quiet: bool) -> Result<i32, LabError> {
    let mut rows = vec![[
        "CONTAINER ID".to_string(),
        "NAME".into(),
        "COMMAND".into(),
        "CREATED".into(),
        "STATUS".into(),
        "PORTS".into(),
    ]];
    let mut records = store.list();
    records.reverse();
    for record in records {
        let (record, observed) = observe_settled(store, record);
        if !all && !observed.is_running() {
            continue;
        }
        if quiet {
            println!("{}", &record.id[..12]);
            continue;
        }
        let created = now().saturating_sub(record.created) / 1_000_000_000;
        rows.push([
            record.id[..12].to_string(),
            record.name.clone(),
            command_line(&record),
            format!("{} ago", human_duration(created)),
            status_line(&record, observed),
            ports_line(&record),
        ]);
    }
    if !quiet {
        print!("{}", align(&rows));
    }
    Ok(0)
}
// ANCHOR_END: ps

/// Columns padded to their widest cell, three spaces apart, as docker's.
pub fn align<const N: usize>(rows: &[[String; N]]) -> String {
    let width = |column: usize| {
        rows.iter()
            .map(|row| row[column].chars().count())
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..N).map(width).collect();
    let mut text = String::new();
    for row in rows {
        let mut line = String::new();
        for (column, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if column + 1 < N {
                let pad = widths[column] - cell.chars().count() + 3;
                line.push_str(&" ".repeat(pad));
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

/// Do `act` for each container named, as docker's verbs do: one that fails
/// (no such container, not running) is reported and the others still get
/// their turn; the last failure is the verb's error (exit 1).
pub fn each(
    names: &[String],
    mut act: impl FnMut(&str) -> Result<(), LabError>,
) -> Result<i32, LabError> {
    let mut failed = None;
    for name in names {
        if let Err(error) = act(name)
            && let Some(earlier) = failed.replace(error)
        {
            crate::program::print_error(&earlier);
        }
    }
    failed.map_or(Ok(0), Err)
}

/// A signal as users write it: `KILL`, `SIGKILL`, `kill` or `9`.
pub fn parse_signal(text: &str) -> Result<Signal, String> {
    let signal = match text.parse::<i32>() {
        Ok(number) => Signal::try_from(number).ok(),
        Err(_) => {
            let upper = text.to_ascii_uppercase();
            let name = match upper.starts_with("SIG") {
                true => upper,
                false => format!("SIG{upper}"),
            };
            name.parse::<Signal>().ok()
        }
    };
    signal.ok_or_else(|| format!("{text:?} is not a signal (`kill -l` lists them)"))
}

// ANCHOR: signal
/// Send `signal` to the container's PID 1 (`ProcessRef::send`: through a
/// pidfd checked to name that very process): if the pid was reused since
/// the record was written, nothing is sent.
fn signal_pid_one(record: &Record, signal: Signal) -> Result<bool, LabError> {
    match record.pid {
        Some(process) => process.send(signal),
        None => Ok(false),
    }
}
// ANCHOR_END: signal

/// Wait until the monitor has recorded the container's end (and released
/// what it held), or the container is gone; the record last seen.
fn wait_for_end(store: &Store, id: &str, limit: Option<Duration>) -> Option<Record> {
    let started = Instant::now();
    loop {
        let (record, observed) = observe_settled(store, store.read(id)?);
        if matches!(observed, Observed::Exited | Observed::Dead) {
            return Some(record);
        }
        if limit.is_some_and(|limit| started.elapsed() > limit) {
            return Some(record);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether the process named in the record is still there.
fn pid_one_alive(record: &Record) -> bool {
    record.pid.is_some_and(|pid| pid.is_alive())
}

/// A frozen process takes no signal, not even SIGKILL, until it is thawed:
/// stopping or killing a paused (or half-frozen) container thaws it once
/// the signal is pending, so that the signal is the first thing it meets
/// (as Docker does).
fn thaw_if_paused(record: &Record) {
    if cgroups::is_frozen(&record.cgroups) {
        let _ = cgroups::set_frozen(&record.cgroups, false);
    }
}

// ANCHOR: stop
/// `stop [-t SECONDS]`: SIGTERM to PID 1, SIGKILL after the grace period,
/// then wait until the monitor has recorded the end. No restart follows.
/// A container that is not running is already stopped: not an error.
pub fn stop(store: &Store, names: &[String], seconds: u64) -> Result<i32, LabError> {
    each(names, |name| {
        let record = store.find(name)?;
        let observed = observe(&record);
        if observed.is_running() {
            let Some(record) = store.update(&record.id, |r| r.stop_requested = true)? else {
                return Ok(());
            };
            if signal_pid_one(&record, Signal::SIGTERM)? {
                thaw_if_paused(&record);
                let deadline = Instant::now() + Duration::from_secs(seconds);
                while pid_one_alive(&record) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(10));
                }
                if pid_one_alive(&record) {
                    signal_pid_one(&record, Signal::SIGKILL)?;
                }
            }
            wait_for_end(store, &record.id, None);
        }
        println!("{name}");
        Ok(())
    })
}
// ANCHOR_END: stop

/// `kill [-s SIGNAL]`: one signal to PID 1 (SIGKILL by default). A signal
/// that ends the container ends it for good: no restart follows.
pub fn kill(store: &Store, names: &[String], signal: Signal) -> Result<i32, LabError> {
    let not_running = |name: &str| LabError::Container {
        message: format!("cannot kill container {name}: it is not running"),
        hint: "see its state with `ps -a`".into(),
    };
    each(names, |name| {
        let record = store.find(name)?;
        if !observe(&record).is_running() {
            return Err(not_running(name));
        }
        let record = store
            .update(&record.id, |r| r.stop_requested = true)?
            .unwrap_or(record);
        if !signal_pid_one(&record, signal)? {
            return Err(not_running(name));
        }
        thaw_if_paused(&record);
        println!("{name}");
        Ok(())
    })
}

/// `pause` / `unpause`: freeze or thaw the container's cgroup.
pub fn pause(store: &Store, names: &[String], frozen: bool) -> Result<i32, LabError> {
    each(names, |name| {
        let record = store.find(name)?;
        let observed = observe(&record);
        let (wanted_before, verb) = match frozen {
            true => (Observed::Running, "pause"),
            false => (Observed::Paused, "unpause"),
        };
        if observed != wanted_before {
            return Err(LabError::Container {
                message: format!("cannot {verb} container {name}: it is {}", observed.word()),
                hint: format!("{verb} acts on a {} container", wanted_before.word()),
            });
        }
        cgroups::set_frozen(&record.cgroups, frozen)?;
        println!("{name}");
        Ok(())
    })
}

/// The options of `logs`.
pub struct LogOptions {
    pub follow: bool,
    pub timestamps: bool,
    pub tail: Option<usize>,
}

// ANCHOR: logs
/// `logs [-f] [-t] [--tail N]`: what the container wrote, stdout entries on
/// stdout and stderr entries on stderr; with -f, then what it writes, until
/// it ends.
pub fn logs(store: &Store, name: &str, options: &LogOptions) -> Result<i32, LabError> {
    let record = store.find(name)?;
    let path = store.log_path(&record.id);
    let mut reader = LogReader::open(&path);
    let mut first = reader.read_new();
    if let Some(tail) = options.tail {
        first.drain(..first.len().saturating_sub(tail));
    }
    show(&first, options.timestamps);
    if !options.follow {
        return Ok(0);
    }
    loop {
        let ended = store
            .read(&record.id)
            .is_none_or(|now| !observe(&now).is_running() && observe(&now) != Observed::Created);
        show(&reader.read_new(), options.timestamps);
        if ended {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(0)
}
// ANCHOR_END: logs

fn show(entries: &[crate::runtime::logfile::Entry], timestamps: bool) {
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
    for entry in entries {
        let text = render(entry, timestamps);
        let _ = match entry.stream.as_str() {
            "stderr" => err.write_all(text.as_bytes()),
            _ => out.write_all(text.as_bytes()),
        };
    }
    let _ = out.flush();
}

/// `wait`: block until each container ends; print its exit code.
pub fn wait(store: &Store, names: &[String]) -> Result<i32, LabError> {
    each(names, |name| {
        let record = store.find(name)?;
        let ended = wait_for_end(store, &record.id, None);
        match ended {
            Some(record) if observe(&record) == Observed::Exited => {
                println!("{}", record.exit_code.unwrap_or(0));
                Ok(())
            }
            Some(_) => Err(LabError::Container {
                message: format!("container {name} died with its monitor: no exit code was recorded"),
                hint: "remove it with `rm`; `lab clean` reclaims what it held".into(),
            }),
            None => Err(LabError::Container {
                message: format!("container {name} was removed before it ended"),
                hint: "with --rm the state goes with the container; use `run` without -d to get the code".into(),
            }),
        }
    })
}

// ANCHOR: rm
/// `rm [-f]`: remove stopped containers; with -f, kill running ones first
/// and wait until their monitor has released what they held.
pub fn rm(store: &Store, names: &[String], force: bool) -> Result<i32, LabError> {
    each(names, |name| {
        let record = store.find(name)?;
        let observed = observe(&record);
        if observed.is_running() || observed == Observed::Created && record.monitor.is_some() {
            if !force {
                return Err(LabError::Container {
                    message: format!("cannot remove container {name}: it is {}", observed.word()),
                    hint: format!("stop it first (stop {name}), or use rm -f"),
                });
            }
            let record = store
                .update(&record.id, |r| r.stop_requested = true)?
                .unwrap_or_else(|| record.clone());
            signal_pid_one(&record, Signal::SIGKILL)?;
            thaw_if_paused(&record);
            wait_for_end(store, &record.id, None);
            // Once it has recorded the end, the monitor may still be
            // removing an --rm container's state: let it finish.
            if let Some(monitor) = record.monitor {
                while monitor.is_alive() {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
        let record = store.read(&record.id).unwrap_or(record);
        if observe(&record) == Observed::Dead {
            // Its monitor never cleaned up: the cgroup is reclaimed here;
            // the network and mounts (named for the dead monitor) by
            // `lab clean`, or when the next container takes the address.
            for dir in &record.cgroups {
                let _ = cgroups::empty_and_remove(dir);
            }
        }
        store.remove(&record.id)?;
        println!("{name}");
        Ok(())
    })
}
// ANCHOR_END: rm

/// `inspect`: the record as JSON, shaped like docker's.
pub fn inspect(store: &Store, names: &[String]) -> Result<i32, LabError> {
    let mut documents = Vec::new();
    for name in names {
        let record = store.find(name)?;
        documents.push(inspect_document(store, &record));
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&documents).expect("json serialises")
    );
    Ok(0)
}

fn inspect_document(store: &Store, record: &Record) -> serde_json::Value {
    let observed = observe(record);
    let time = |t: Option<u64>| {
        t.map(rfc3339)
            .unwrap_or_else(|| "0001-01-01T00:00:00Z".into())
    };
    serde_json::json!({
        "Id": record.id,
        "Name": record.name,
        "Created": rfc3339(record.created),
        "Path": record.command.first(),
        "Args": record.command.get(1..).unwrap_or_default(),
        "State": {
            "Status": observed.word(),
            "Running": observed.is_running(),
            "Paused": observed == Observed::Paused,
            "Restarting": observed == Observed::Restarting,
            "OOMKilled": record.oom_killed,
            "Dead": observed == Observed::Dead,
            "Pid": record.pid.filter(|_| observed.is_running()).map_or(0, |p| p.pid),
            "ExitCode": record.exit_code.unwrap_or(0),
            "StartedAt": time(record.started_at),
            "FinishedAt": time(record.finished_at),
        },
        "MonitorPid": record.monitor.map_or(0, |m| m.pid),
        "RestartCount": record.restart_count,
        "HostConfig": {
            "RestartPolicy": format!("{:?}", record.restart),
            "AutoRemove": record.auto_remove,
        },
        "Rootfs": record.rootfs,
        "Image": record.image,
        "Layer": record.layer,
        "Mounts": record.mounts,
        "Config": { "Hostname": record.hostname, "Cmd": record.command },
        "CgroupPaths": record.cgroups,
        "NetworkSettings": {
            "Mode": record.network.mode,
            "IPAddress": record.network.address.clone().unwrap_or_default(),
            "Ports": record.network.ports,
        },
        "LogPath": store.log_path(&record.id),
    })
}

// ANCHOR: top
/// `top`: the container's processes as the host sees them: host uid and
/// pid, parent, CPU time, command line, read from /proc.
pub fn top(store: &Store, name: &str) -> Result<i32, LabError> {
    let record = store.find(name)?;
    if !observe(&record).is_running() {
        return Err(LabError::Container {
            message: format!("container {name} is not running"),
            hint: "top lists the processes of a running container".into(),
        });
    }
    let mut rows = vec![[
        "UID".to_string(),
        "PID".into(),
        "PPID".into(),
        "TIME".into(),
        "CMD".into(),
    ]];
    let pids = match record.cgroups.is_empty() {
        false => cgroups::processes(&record.cgroups),
        true => record.pid.map(|p| vec![p.pid]).unwrap_or_default(),
    };
    // SAFETY: sysconf(_SC_CLK_TCK) only reads a constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    for pid in pids {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let uid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().next())
            .unwrap_or("?")
            .to_string();
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let number = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let seconds = (number(11) + number(12)) / ticks;
        // Written by the container: control characters show as `?`.
        let command = crate::hostinfo::printable_command_line(pid);
        rows.push([
            uid,
            pid.to_string(),
            number(1).to_string(),
            format!(
                "{:02}:{:02}:{:02}",
                seconds / 3600,
                seconds / 60 % 60,
                seconds % 60
            ),
            command,
        ]);
    }
    print!("{}", align(&rows));
    Ok(0)
}
// ANCHOR_END: top

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_are_read_as_users_write_them() {
        for text in ["KILL", "SIGKILL", "kill", "9"] {
            assert_eq!(parse_signal(text), Ok(Signal::SIGKILL), "{text}");
        }
        assert_eq!(parse_signal("term"), Ok(Signal::SIGTERM));
        assert!(parse_signal("SIGNOPE").unwrap_err().contains("kill -l"));
        assert!(parse_signal("99").is_err());
    }

    #[test]
    fn columns_line_up_like_dockers() {
        let rows = [
            ["A".to_string(), "long cell".into(), "x".into()],
            ["wide one".to_string(), "b".into(), "".into()],
        ];
        assert_eq!(align(&rows), "A          long cell   x\nwide one   b\n");
    }
}
