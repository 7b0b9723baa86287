//! The verbs that act on a container from outside: `state`, `kill`,
//! `delete`, `pause`, `resume`, `ps`, `list`, and the two that need no
//! container, `spec` and `features`. Each is a short-lived process that
//! reads the container's directory under `--root`, does one thing, and
//! exits: an engine calls them one at a time.

use crate::error::LabError;
use crate::oci::config::OCI_VERSION;
use crate::oci::hooks;
use crate::oci::state::{Container, StateRoot, Status};
use crate::runtime::cgroups;
use crate::runtime::lifecycle::parse_signal;
use nix::sys::signal::Signal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct SpecArgs {
    /// Where to write config.json
    #[arg(short, long, default_value = ".", value_name = "DIR")]
    pub bundle: PathBuf,

    /// A config.json for a runtime without root: a user namespace mapping
    /// the caller's own ids to root
    #[arg(long)]
    pub rootless: bool,
}

#[derive(clap::Args, Debug)]
pub struct KillArgs {
    /// Send the signal to every process of the container, not only the first
    #[arg(short, long)]
    pub all: bool,

    /// The container's ID
    pub id: String,

    /// The signal: a name (TERM, SIGKILL) or a number
    #[arg(default_value = "TERM")]
    pub signal: String,
}

#[derive(clap::Args, Debug)]
pub struct DeleteArgs {
    /// Kill a running container first; an unknown ID is no error
    #[arg(short, long)]
    pub force: bool,

    /// The container's ID
    pub id: String,
}

#[derive(clap::Args, Debug)]
pub struct PsArgs {
    /// table, or json (a list of pids)
    #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,

    /// The container's ID
    pub id: String,
}

#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// table, or json
    #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,

    /// IDs only
    #[arg(short, long)]
    pub quiet: bool,
}

/// `state`: the specification's JSON, indented as runc prints it.
pub fn state(root: &StateRoot, id: &str) -> Result<i32, LabError> {
    let container = root.read(id)?;
    let status = root.status(&container);
    let text = serde_json::to_string_pretty(&container.state_json(status)).unwrap_or_default();
    println!("{text}");
    Ok(0)
}

// ANCHOR: kill
/// `kill`: one signal to the first process, or with --all to every
/// process of the cgroup. A stopped container cannot be signalled.
pub fn kill(root: &StateRoot, args: &KillArgs) -> Result<i32, LabError> {
    let signal = parse_signal(&args.signal).map_err(|message| LabError::Usage { message })?;
    let container = root.read(&args.id)?;
    if root.status(&container) == Status::Stopped {
        return Err(LabError::Container {
            message: format!("container {} is not running", args.id),
            hint: "`delete` it".into(),
        });
    }
    if args.all && !container.cgroups.is_empty() {
        for pid in cgroups::processes(&container.cgroups) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
        }
        // A frozen process takes no signal until thawed; SIGKILL must act.
        if signal == Signal::SIGKILL {
            let _ = cgroups::set_frozen(&container.cgroups, false);
        }
        return Ok(0);
    }
    container.process.send(signal)?;
    Ok(0)
}
// ANCHOR_END: kill

// ANCHOR: delete
/// `delete`: a stopped or created container is removed; a running one
/// only with --force, which kills it first. An unknown ID with --force is
/// no error (containerd deletes twice).
pub fn delete(root: &StateRoot, args: &DeleteArgs) -> Result<i32, LabError> {
    let _lock = root.lock(&args.id)?;
    let container = match root.read(&args.id) {
        Ok(container) => container,
        // A directory left by a create that died half-way, or a state
        // this runtime cannot read, goes too: there is no process to name.
        Err(_) if args.force => {
            root.forget(&args.id)?;
            return Ok(0);
        }
        Err(error) => return Err(error),
    };
    remove(root, &container, args.force)?;
    Ok(0)
}

/// Kill what is left (created, or running with `force`), remove the
/// cgroup, run the poststop hooks, forget the container.
pub fn remove(root: &StateRoot, container: &Container, force: bool) -> Result<(), LabError> {
    let status = root.status(container);
    if matches!(status, Status::Running | Status::Paused) && !force {
        return Err(LabError::Container {
            message: format!(
                "cannot delete container {}: it is {}",
                container.id,
                status.as_str()
            ),
            hint: "stop it first (`kill`), or `delete --force`".into(),
        });
    }
    if status != Status::Stopped {
        for pid in cgroups::processes(&container.cgroups) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
        }
        container.process.send(Signal::SIGKILL)?;
        let _ = cgroups::set_frozen(&container.cgroups, false);
        let deadline = Instant::now() + Duration::from_secs(10);
        while container.process.is_alive() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    for dir in &container.cgroups {
        if let Err(error) = cgroups::empty_and_remove(dir)
            && error.kind() != std::io::ErrorKind::NotFound
        {
            return Err(LabError::io("rmdir", dir.display(), error));
        }
    }
    let state = container.state_json(Status::Stopped).to_line();
    hooks::run_all_reporting("poststop", &container.poststop, &state);
    root.forget(&container.id)
}
// ANCHOR_END: delete

/// `pause` (freeze) and `resume` (thaw), through chapter 07's freezer.
pub fn pause(root: &StateRoot, id: &str, frozen: bool) -> Result<i32, LabError> {
    let _lock = root.lock(id)?;
    let container = root.read(id)?;
    let status = root.status(&container);
    let expected = if frozen {
        Status::Running
    } else {
        Status::Paused
    };
    if status != expected {
        return Err(LabError::Container {
            message: format!(
                "container {id} is {}, not {}",
                status.as_str(),
                expected.as_str()
            ),
            hint: match frozen {
                true => "only a running container can be paused".into(),
                false => "only a paused container can be resumed".into(),
            },
        });
    }
    cgroups::set_frozen(&container.cgroups, frozen)?;
    Ok(0)
}

/// `ps`: the container's processes, as the host numbers them.
pub fn ps(root: &StateRoot, args: &PsArgs) -> Result<i32, LabError> {
    let container = root.read(&args.id)?;
    let pids = match container.cgroups.is_empty() {
        true => vec![container.process.pid]
            .into_iter()
            .filter(|_| container.process.is_alive())
            .collect(),
        false => cgroups::processes(&container.cgroups),
    };
    if args.format == "json" {
        println!("{}", serde_json::to_string(&pids).unwrap_or_default());
        return Ok(0);
    }
    println!("{:>8}  CMD", "PID");
    for pid in pids {
        // Written by the container: control characters show as `?`.
        let command = crate::hostinfo::printable_command_line(pid);
        println!("{pid:>8}  {command}");
    }
    Ok(0)
}

/// `list`: every container under --root.
pub fn list(root: &StateRoot, args: &ListArgs) -> Result<i32, LabError> {
    let containers = root.list();
    if args.quiet {
        for container in &containers {
            println!("{}", container.id);
        }
        return Ok(0);
    }
    if args.format == "json" {
        let all: Vec<serde_json::Value> = containers
            .iter()
            .map(|c| {
                let status = root.status(c);
                serde_json::json!({
                    "ociVersion": OCI_VERSION,
                    "id": c.id,
                    "pid": if status == Status::Stopped { 0 } else { c.process.pid },
                    "status": status.as_str(),
                    "bundle": c.bundle,
                    "rootfs": c.rootfs,
                    "created": crate::runtime::state::rfc3339(c.created),
                    "annotations": c.annotations,
                })
            })
            .collect();
        println!("{}", serde_json::to_string(&all).unwrap_or_default());
        return Ok(0);
    }
    println!(
        "{:<20} {:>8} {:<8} {:<40} CREATED",
        "ID", "PID", "STATUS", "BUNDLE"
    );
    for container in &containers {
        let status = root.status(container);
        let pid = if status == Status::Stopped {
            0
        } else {
            container.process.pid
        };
        println!(
            "{:<20} {:>8} {:<8} {:<40} {}",
            container.id,
            pid,
            status.as_str(),
            container.bundle.display(),
            crate::runtime::state::rfc3339(container.created)
        );
    }
    Ok(0)
}

/// Write `pid` to `path` as runc does: into a file beside it, renamed
/// into place, so that a reader never sees it half written.
pub fn write_pid_file(path: &Path, pid: i32) -> Result<(), LabError> {
    let partial = path.with_file_name(format!(
        ".{}.partial",
        path.file_name().unwrap_or_default().to_string_lossy()
    ));
    std::fs::write(&partial, pid.to_string())
        .map_err(|e| LabError::io("write", partial.display(), e))?;
    std::fs::rename(&partial, path).map_err(|e| LabError::io("rename", path.display(), e))
}

// ANCHOR: features
/// `features`: what this runtime does, as the runtime specification's
/// features document (features.md) says it, from the same tables the
/// runtime acts on.
pub fn features() -> Result<i32, LabError> {
    let capabilities = crate::runtime::caps::CapSet::all_known().names();
    let document = serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": crate::oci::mounts::option_names(),
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"],
            "capabilities": capabilities,
            "cgroup": { "v1": true, "v2": true, "systemd": false, "systemdUser": false },
            "seccomp": {
                "enabled": true,
                "actions": crate::runtime::seccomp::action_names(),
                "operators": crate::runtime::seccomp::operator_names(),
                "archs": crate::runtime::seccomp::native_arch_names(),
            },
            "apparmor": { "enabled": crate::oci::config::apparmor_enabled() },
            "selinux": { "enabled": false },
        },
        "annotations": {
            "org.opencontainers.runc.checkpoint.enabled": "false",
            "io.github.container-lab.chapter": "10",
        },
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&document).unwrap_or_default()
    );
    Ok(0)
}
// ANCHOR_END: features

/// `spec`: a default config.json in the bundle directory; an existing one
/// is never overwritten.
pub fn spec(args: &SpecArgs) -> Result<i32, LabError> {
    let path = args.bundle.join("config.json");
    if path.exists() {
        return Err(LabError::Refused {
            message: format!("{} exists", path.display()),
            hint: "remove it first: `spec` never overwrites a config.json".into(),
        });
    }
    let spec = crate::oci::spec::default_spec(args.rootless)?;
    let text = crate::oci::spec::to_json(&spec)?;
    std::fs::write(&path, text).map_err(|e| LabError::io("write", path.display(), e))?;
    Ok(0)
}
