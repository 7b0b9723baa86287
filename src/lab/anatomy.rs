//! `lab anatomy`: what a chapter 09 container is made of, read from the
//! host side of a real one.
//!
//! The lab starts a container the way a reader of chapter 09 would (the
//! rootfs imported as an image, `ch09-hardening run -d` with budgets and no
//! network), then reads what the kernel says about its command's process in
//! /proc: which namespaces are new, the user namespace's id maps, the
//! mount table of its root, its capabilities, seccomp mode and
//! no_new_privs, and, in the cgroup files, its budgets. The container and
//! its image store are removed again however the reading ends.
//!
//! [`Anatomy`] keeps only facts that are the same from one run to the next
//! on one machine (no host PIDs, inodes, random names or scratch paths), so the
//! book's picture (`diagram`) can be checked against a fresh run.

pub mod diagram;

use crate::error::LabError;
use crate::hostinfo::{self, MountInfo};
use crate::runtime::caps::{self, CapSet};
use crate::runtime::userns::IdMap;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The chapter whose container is read.
pub const CHAPTER: &str = "ch09-hardening";

/// `run`'s flags: the budgets chapter 06 taught, and no network, so that
/// nothing touches the host's interfaces.
pub const RUN_FLAGS: [&str; 8] = [
    "--memory", "64M", "--pids", "64", "--cpus", "0.5", "--net", "none",
];

/// The container's command: one that waits, to be looked at.
pub const COMMAND: [&str; 2] = ["/bin/sleep", "86400"];

/// What stands for the container's own name or id in a path.
pub const PLACEHOLDER: &str = "<container>";

/// What a chapter 09 container is made of, as the host sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anatomy {
    /// How it was started (`ch09-hardening run -d ... IMAGE /bin/sleep 86400`).
    pub started_with: String,
    pub process: Process,
    pub rootfs: RootFs,
    /// Every namespace kind this kernel has, in the order it gained them.
    pub namespaces: Vec<Namespace>,
    pub user_namespace: IdMaps,
    pub cgroups: Cgroups,
}

/// The container's command, from /proc/PID/status and cmdline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    pub command: Vec<String>,
    /// Its PID in the container's PID namespace (the last of `NSpid:`):
    /// 2 under the lab's init, which is PID 1.
    pub pid_inside: u32,
    /// Its uid and gid in the container, and the host's ids they stand for.
    pub uid_inside: u32,
    pub uid_host: u32,
    pub gid_inside: u32,
    pub gid_host: u32,
    /// `CapEff:` and `CapBnd:`, by name (`CAP_CHOWN`, ...).
    pub effective: Vec<String>,
    pub bounding: Vec<String>,
    /// `Seccomp:`: 0 none, 1 strict, 2 filter.
    pub seccomp: u32,
    /// `NoNewPrivs:`.
    pub no_new_privs: bool,
}

/// The container's mount table, from /proc/PID/mountinfo.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    /// The filesystem at `/` (`overlay`).
    pub fstype: String,
    /// For overlay: how many read-only layers (`lowerdir=`), and whether a
    /// writable one (`upperdir=`) lies on top.
    pub lower_layers: usize,
    pub upper: bool,
    /// The other mounts, but for the three kinds counted below.
    pub mounts: Vec<MountFact>,
    /// Paths of /proc and /sys hidden under /dev/null or an empty tmpfs.
    pub masked: Vec<String>,
    /// Paths of /proc and /sys mounted again read-only.
    pub read_only: Vec<String>,
    /// Device nodes bound into /dev from the host (`/dev/null`, ...).
    pub devices: Vec<String>,
}

/// One mount: where, what, and whether it may be written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountFact {
    pub point: String,
    pub fstype: String,
    pub read_only: bool,
}

/// One namespace kind: the container's own, or the host's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Namespace {
    /// Its name in /proc/PID/ns (`mnt`, `pid`, ...).
    pub kind: String,
    pub new: bool,
}

/// The user namespace's maps, as the host reads them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMaps {
    pub uid_map: Vec<IdMap>,
    pub gid_map: Vec<IdMap>,
}

/// The container's cgroups and the budgets written in them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cgroups {
    /// 1 or 2.
    pub version: u8,
    pub dirs: Vec<CgroupDir>,
    pub limits: Limits,
}

/// One of the container's cgroup directories.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupDir {
    /// Where its hierarchy is mounted (`/sys/fs/cgroup/memory`).
    pub hierarchy: String,
    /// The hierarchy's controllers (v1), or its cgroup.controllers (v2).
    pub controllers: Vec<String>,
    /// Its path below the cgroup the runtime ran in, the container's name
    /// replaced by [`PLACEHOLDER`] (`container-lab-<container>`).
    pub path: String,
}

/// The budgets, as the cgroup files hold them; `None` for no limit.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// memory.max (v2) or memory.limit_in_bytes (v1).
    pub memory_bytes: Option<u64>,
    /// pids.max.
    pub pids: Option<u64>,
    /// cpu.max (v2) or cpu.cfs_quota_us and cpu.cfs_period_us (v1).
    pub cpu_quota_us: Option<u64>,
    pub cpu_period_us: Option<u64>,
}

// ---------------------------------------------------------------------------
// The container

/// A chapter 09 container of the lab's, in an image store of its own: `rm
/// -f` and the store removed when dropped, on error and panic too.
struct Specimen {
    binary: PathBuf,
    store: PathBuf,
    name: String,
    removed: bool,
}

impl Specimen {
    fn ch09(&self) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .env(crate::image::store::STORAGE_ENV, &self.store)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        command
    }

    /// Run `ch09-hardening ARGS`; its stdout, or what it said on failure.
    fn output(&self, args: &[&str]) -> Result<String, LabError> {
        let output = self
            .ch09()
            .args(args)
            .output()
            .map_err(|e| LabError::io("execve", self.binary.display(), e))?;
        match output.status.success() {
            true => Ok(String::from_utf8_lossy(&output.stdout).into_owned()),
            false => Err(LabError::ToolFailed {
                command: format!("{CHAPTER} {}", crate::shell_words(args)),
                message: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            }),
        }
    }

    /// The container and its store, gone.
    fn remove(&mut self) -> Result<(), String> {
        self.removed = true;
        let _ = self
            .ch09()
            .args(["rm", "-f", &self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        std::fs::remove_dir_all(&self.store)
            .or_else(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Ok(()),
                _ => Err(e),
            })
            .map_err(|e| format!("{}: {e}", self.store.display()))
    }
}

/// What a killed `lab anatomy` left: its container, still running, and its
/// image store, `RUN_DIR/anatomy-PID`, both named after the dead run.
/// `lab clean` removes them here, the way the run would have.
pub fn remove_leftover(store: &Path) -> Result<(), String> {
    Specimen {
        binary: crate::rootfs::sibling(CHAPTER),
        store: store.to_path_buf(),
        name: store
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned(),
        removed: false,
    }
    .remove()
}

impl Drop for Specimen {
    fn drop(&mut self) {
        if !self.removed {
            let _ = self.remove();
        }
    }
}

/// What `inspect` says about a container that `anatomy` needs.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Inspected {
    id: String,
    monitor_pid: i32,
    cgroup_paths: Vec<PathBuf>,
    state: InspectedState,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InspectedState {
    pid: i32,
}

fn stopped() -> Result<(), LabError> {
    match crate::program::interrupted() {
        true => Err(LabError::Refused {
            message: "interrupted by a signal".into(),
            hint: "the container and its image store were removed".into(),
        }),
        false => Ok(()),
    }
}

/// Start a chapter 09 container from `rootfs`, read it, remove it.
/// `progress` hears what is being done, a line at a time.
pub fn dissect(rootfs: &Path, progress: impl Fn(&str)) -> Result<Anatomy, LabError> {
    let _interruptible = crate::program::Interruptible::install();
    let pid = std::process::id();
    let mut specimen = Specimen {
        binary: crate::rootfs::sibling(CHAPTER),
        store: Path::new(crate::runtime::RUN_DIR).join(format!("anatomy-{pid}")),
        name: format!("anatomy-{pid}"),
        removed: false,
    };
    let image = format!("lab/anatomy:{pid}");
    progress(&format!(
        "importing the rootfs {} as an image into {} ...",
        rootfs.display(),
        specimen.store.display()
    ));
    let rootfs_text = rootfs.display().to_string();
    specimen.output(&["import", &rootfs_text, &image])?;
    stopped()?;
    let mut run = vec!["run", "-d", "--name", &specimen.name];
    run.extend(RUN_FLAGS);
    run.push(&image);
    run.extend(COMMAND);
    specimen.output(&run)?;
    let started_with = format!(
        "{CHAPTER} run -d {} IMAGE {}",
        RUN_FLAGS.join(" "),
        COMMAND.join(" ")
    );
    progress(&format!("started {} ({started_with})", specimen.name));
    let inspected: Vec<Inspected> =
        serde_json::from_str(&specimen.output(&["inspect", &specimen.name])?).map_err(|e| {
            LabError::ToolFailed {
                command: format!("{CHAPTER} inspect {}", specimen.name),
                message: format!("unexpected output: {e}"),
            }
        })?;
    let container = inspected.first().ok_or_else(|| LabError::ToolFailed {
        command: format!("{CHAPTER} inspect {}", specimen.name),
        message: "no container in its output".into(),
    })?;
    let command_pid = wait_for_command(container.state.pid)?;
    stopped()?;
    progress(&format!(
        "reading /proc/{command_pid} ({}) and {} cgroup directories from the host side ...",
        COMMAND.join(" "),
        container.cgroup_paths.len()
    ));
    let names = [
        container.id.clone(),
        specimen.name.clone(),
        container.monitor_pid.to_string(),
    ];
    let anatomy = read(command_pid, &container.cgroup_paths, &names, started_with);
    specimen.remove().map_err(|message| LabError::Container {
        message: format!("could not remove the image store: {message}"),
        hint: "remove it by hand".into(),
    })?;
    progress(&format!(
        "removed {} and its image store {}",
        specimen.name,
        specimen.store.display()
    ));
    anatomy
}

/// The host PID of the container's command: `init`'s child once it has
/// exec'd [`COMMAND`] (the lab's init forks it, and `run -d` may return
/// before the exec), or `init` itself if it is the command.
fn wait_for_command(init: i32) -> Result<i32, LabError> {
    let wanted: Vec<String> = COMMAND.iter().map(|s| s.to_string()).collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut candidates = vec![init];
        candidates.extend(children(init));
        if let Some(pid) = candidates
            .into_iter()
            .find(|pid| hostinfo::command_line(*pid) == wanted)
        {
            return Ok(pid);
        }
        if Instant::now() > deadline {
            return Err(LabError::Container {
                message: format!(
                    "the container's init (host pid {init}) did not start {} within 10 s",
                    COMMAND.join(" ")
                ),
                hint: format!("run `{CHAPTER} run --rm ... /bin/sleep 1` by hand to see why"),
            });
        }
        stopped()?;
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The children of every thread of `pid` (/proc/PID/task/TID/children).
fn children(pid: i32) -> Vec<i32> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"));
    tasks
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|text| {
            text.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Reading it

fn read_proc(pid: i32, file: &str) -> Result<String, LabError> {
    let path = format!("/proc/{pid}/{file}");
    std::fs::read_to_string(&path).map_err(|e| LabError::io("read", path, e))
}

/// Read the anatomy of process `pid` and of its cgroup directories,
/// `names` (the container's id, name, monitor pid) replaced in paths.
fn read(
    pid: i32,
    cgroup_dirs: &[PathBuf],
    names: &[String],
    started_with: String,
) -> Result<Anatomy, LabError> {
    let uid_map = IdMap::parse_proc_map(&read_proc(pid, "uid_map")?);
    let gid_map = IdMap::parse_proc_map(&read_proc(pid, "gid_map")?);
    let status = read_proc(pid, "status")?;
    let process = process_from_status(&status, hostinfo::command_line(pid), &uid_map, &gid_map)
        .ok_or_else(|| LabError::Container {
            message: format!("/proc/{pid}/status lacks a field lab anatomy reads"),
            hint: "a kernel older than 4.1 has no NSpid: line".into(),
        })?;
    let mounts = hostinfo::parse_mountinfo(&read_proc(pid, "mountinfo")?);
    let namespaces = crate::runtime::sharing::NAMESPACE_KINDS
        .iter()
        .filter_map(|kind| {
            let theirs = std::fs::read_link(format!("/proc/{pid}/ns/{kind}")).ok()?;
            let ours = std::fs::read_link(format!("/proc/self/ns/{kind}")).ok()?;
            Some(Namespace {
                kind: kind.to_string(),
                new: theirs != ours,
            })
        })
        .collect();
    let host_mounts = hostinfo::read_mountinfo().map_err(|e| LabError::Container {
        message: e.to_string(),
        hint: "lab anatomy reads the host's mount table to find the cgroup hierarchies".into(),
    })?;
    let own =
        crate::runtime::cgroups::own_cgroups(&read_proc(std::process::id() as i32, "cgroup")?);
    Ok(Anatomy {
        started_with,
        process,
        rootfs: root_filesystem(&mounts),
        namespaces,
        user_namespace: IdMaps { uid_map, gid_map },
        cgroups: cgroups(cgroup_dirs, &host_mounts, &own, names),
    })
}

/// The process's facts from its status file (proc_pid_status(5)).
pub fn process_from_status(
    status: &str,
    command: Vec<String>,
    uid_map: &[IdMap],
    gid_map: &[IdMap],
) -> Option<Process> {
    let field = |key: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
            .map(str::split_whitespace)
    };
    // Uid: and Gid: hold real, effective, saved and filesystem ids.
    let uid_host: u32 = field("Uid")?.nth(1)?.parse().ok()?;
    let gid_host: u32 = field("Gid")?.nth(1)?.parse().ok()?;
    let names = |mask: u64| -> Vec<String> {
        CapSet(mask)
            .names()
            .into_iter()
            .map(str::to_string)
            .collect()
    };
    Some(Process {
        command,
        pid_inside: field("NSpid")?.last()?.parse().ok()?,
        uid_inside: uid_map
            .iter()
            .find_map(|range| range.to_container(uid_host))?,
        uid_host,
        gid_inside: gid_map
            .iter()
            .find_map(|range| range.to_container(gid_host))?,
        gid_host,
        effective: names(caps::effective_from_status(status)?),
        bounding: names(caps::bounding_from_status(status)?),
        seccomp: field("Seccomp")?.next()?.parse().ok()?,
        no_new_privs: field("NoNewPrivs")?.next()? == "1",
    })
}

/// Whether `path` lies strictly below `dir`.
fn below(path: &Path, dir: &str) -> bool {
    path != Path::new(dir) && path.starts_with(dir)
}

/// The container's mount table, as the reader of chapters 03-09 would
/// name its parts: the overlay at `/`, the masks and read-only remounts
/// of chapter 09, the device nodes of chapter 03, and the rest.
pub fn root_filesystem(mounts: &[MountInfo]) -> RootFs {
    let root = mounts.iter().rfind(|m| m.mount_point == Path::new("/"));
    let option_values = |key: &str| -> Vec<String> {
        root.into_iter()
            .flat_map(|m| &m.super_options)
            .filter_map(|o| o.strip_prefix(key).map(str::to_string))
            .collect()
    };
    // `lowerdir=a:b:c` (a colon in a name is escaped as `\:`), and from
    // Linux 6.8 one `lowerdir+=` per layer given one at a time.
    let lower_layers = option_values("lowerdir=")
        .iter()
        .map(|list| list.replace("\\:", "").split(':').count())
        .sum::<usize>()
        + option_values("lowerdir+=").len();
    let mut rootfs = RootFs {
        fstype: root.map(|m| m.fs_type.clone()).unwrap_or_default(),
        lower_layers,
        upper: !option_values("upperdir=").is_empty(),
        mounts: Vec::new(),
        masked: Vec::new(),
        read_only: Vec::new(),
        devices: Vec::new(),
    };
    for mount in mounts.iter().filter(|m| m.mount_point != Path::new("/")) {
        let point = mount.mount_point.display().to_string();
        let read_only = mount.options.iter().any(|o| o == "ro");
        let system = below(&mount.mount_point, "/proc") || below(&mount.mount_point, "/sys");
        // A mask is /dev/null bound over a file, or an empty read-only
        // tmpfs over a directory: either way nothing to read.
        let mask = mount.root.ends_with("null") || (mount.fs_type == "tmpfs" && read_only);
        if system && mask {
            rootfs.masked.push(point);
        } else if system && read_only {
            rootfs.read_only.push(point);
        } else if below(&mount.mount_point, "/dev") && mount.root != Path::new("/") {
            rootfs.devices.push(point);
        } else {
            rootfs.mounts.push(MountFact {
                point,
                fstype: mount.fs_type.clone(),
                read_only,
            });
        }
    }
    rootfs
}

/// The container's cgroup directories, each named by its hierarchy and
/// its path below the runtime's own cgroup there (`own`, from
/// /proc/self/cgroup), `names` replaced; and the budgets in them.
pub fn cgroups(
    dirs: &[PathBuf],
    host_mounts: &[MountInfo],
    own: &[(Vec<String>, String)],
    names: &[String],
) -> Cgroups {
    let v1 = hostinfo::cgroup_v1_controllers(host_mounts);
    let mut version = 1;
    let mut found = Vec::new();
    for dir in dirs {
        // The deepest cgroup mount that holds the directory.
        let Some(mount) = host_mounts
            .iter()
            .filter(|m| m.fs_type == "cgroup" || m.fs_type == "cgroup2")
            .filter(|m| dir.starts_with(&m.mount_point))
            .max_by_key(|m| m.mount_point.components().count())
        else {
            continue;
        };
        let controllers: Vec<String> = match mount.fs_type.as_str() {
            "cgroup2" => {
                version = 2;
                hostinfo::cgroup2_controllers(dir).unwrap_or_default()
            }
            _ => v1
                .iter()
                .filter(|(_, point)| *point == mount.mount_point)
                .map(|(name, _)| name.clone())
                .collect(),
        };
        let own_path = own
            .iter()
            .find(|(own_controllers, _)| match mount.fs_type.as_str() {
                "cgroup2" => own_controllers.is_empty(),
                _ => own_controllers.iter().any(|c| controllers.contains(c)),
            })
            .map(|(_, path)| path.trim_start_matches('/'))
            .unwrap_or_default();
        let below_mount = dir.strip_prefix(&mount.mount_point).unwrap_or(dir);
        let below_own = below_mount.strip_prefix(own_path).unwrap_or(below_mount);
        found.push(CgroupDir {
            hierarchy: mount.mount_point.display().to_string(),
            controllers,
            path: anonymised(&below_own.display().to_string(), names),
        });
    }
    Cgroups {
        version,
        dirs: found,
        limits: read_limits(dirs),
    }
}

/// `path` with each of `names` replaced by [`PLACEHOLDER`] where it is a
/// whole word (`container-lab-1234` for pid 1234, not `12345`).
fn anonymised(path: &str, names: &[String]) -> String {
    let is_name = |word: &str| names.iter().any(|n| n == word);
    path.split('/')
        .map(|component| match is_name(component) {
            true => PLACEHOLDER.to_string(),
            false => component
                .split('-')
                .map(|word| if is_name(word) { PLACEHOLDER } else { word })
                .collect::<Vec<_>>()
                .join("-"),
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The budgets in the cgroup files of `dirs`, whichever version: v2's
/// memory.max, pids.max and cpu.max, or v1's memory.limit_in_bytes,
/// pids.max and cpu.cfs_quota_us with cpu.cfs_period_us.
pub fn read_limits(dirs: &[PathBuf]) -> Limits {
    let file = |name: &str| {
        dirs.iter()
            .find_map(|dir| std::fs::read_to_string(dir.join(name)).ok())
            .map(|text| text.trim().to_string())
    };
    // "max" (v2), -1 (v1's quota) or v1's "unlimited" memory (the largest
    // page-aligned number, near 2^63) all mean no limit.
    let number = |text: &str| text.parse::<u64>().ok().filter(|n| *n < 1 << 62);
    let mut limits = Limits {
        memory_bytes: file("memory.max")
            .or_else(|| file("memory.limit_in_bytes"))
            .and_then(|t| number(&t)),
        pids: file("pids.max").and_then(|t| number(&t)),
        ..Limits::default()
    };
    if let Some(max) = file("cpu.max") {
        let mut words = max.split_whitespace();
        limits.cpu_quota_us = words.next().and_then(number);
        limits.cpu_period_us = words.next().and_then(number);
    } else {
        limits.cpu_quota_us = file("cpu.cfs_quota_us").and_then(|t| number(&t));
        limits.cpu_period_us = file("cpu.cfs_period_us").and_then(|t| number(&t));
    }
    limits
}

// ---------------------------------------------------------------------------
// Saying it

/// `64 MiB`, `1.5 GiB`, `512 KiB` or bytes.
pub fn size(bytes: u64) -> String {
    let units = [(1u64 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    match units.iter().find(|(scale, _)| bytes >= *scale) {
        Some((scale, unit)) if bytes.is_multiple_of(*scale) => format!("{} {unit}", bytes / scale),
        Some((scale, unit)) => format!("{:.1} {unit}", bytes as f64 / *scale as f64),
        None => format!("{bytes} bytes"),
    }
}

/// A capability's name without `CAP_`.
pub fn short(capability: &str) -> &str {
    capability.trim_start_matches("CAP_")
}

impl Limits {
    /// One phrase a budget: `memory 64 MiB`, `pids 64`, `cpu 50000/100000
    /// µs (0.5 CPU)`; `no limit` for each that is not set.
    pub fn phrases(&self) -> Vec<String> {
        let memory = match self.memory_bytes {
            Some(bytes) => format!("memory {}", size(bytes)),
            None => "memory: no limit".into(),
        };
        let pids = match self.pids {
            Some(pids) => format!("pids {pids}"),
            None => "pids: no limit".into(),
        };
        let cpu = match (self.cpu_quota_us, self.cpu_period_us) {
            (Some(quota), Some(period)) if period > 0 => format!(
                "cpu {quota}/{period} µs ({} CPU)",
                (quota as f64 / period as f64 * 100.0).round() / 100.0
            ),
            _ => "cpu: no limit".into(),
        };
        vec![memory, pids, cpu]
    }
}

impl Anatomy {
    /// The kinds that are the container's own, and those it shares.
    pub fn namespace_kinds(&self, new: bool) -> Vec<&str> {
        self.namespaces
            .iter()
            .filter(|n| n.new == new)
            .map(|n| n.kind.as_str())
            .collect()
    }

    /// The facts as text, a layer a paragraph, top to bottom.
    pub fn render(&self) -> String {
        let p = &self.process;
        let r = &self.rootfs;
        let list = |items: &[String]| match items.is_empty() {
            true => "none".to_string(),
            false => items.join(" "),
        };
        let short_names =
            |names: &[String]| names.iter().map(|n| short(n)).collect::<Vec<_>>().join(" ");
        let mut out = format!("{}\n\n", self.started_with);
        out += &format!(
            "process     {} (pid {} inside)\n\
             \x20           uid {} inside = uid {} on the host, gid {} = gid {}\n\
             \x20           {} effective capabilities: {}\n\
             \x20           {} in the bounding set\n\
             \x20           seccomp mode {}, no_new_privs {}\n\n",
            p.command.join(" "),
            p.pid_inside,
            p.uid_inside,
            p.uid_host,
            p.gid_inside,
            p.gid_host,
            p.effective.len(),
            short_names(&p.effective),
            p.bounding.len(),
            p.seccomp,
            u8::from(p.no_new_privs),
        );
        let mounts: Vec<String> = r
            .mounts
            .iter()
            .map(|m| {
                let mode = if m.read_only { "ro" } else { "rw" };
                format!("{} ({} {mode})", m.point, m.fstype)
            })
            .collect();
        out += &format!(
            "rootfs      {} at /: {}{}\n\
             \x20           mounts: {}\n\
             \x20           {} masked: {}\n\
             \x20           {} read-only: {}\n\
             \x20           {} devices bound from the host: {}\n\n",
            r.fstype,
            diagram::plural(r.lower_layers, "lower layer", "lower layers"),
            if r.upper { " and an upper one" } else { "" },
            mounts.join(", "),
            r.masked.len(),
            list(&r.masked),
            r.read_only.len(),
            list(&r.read_only),
            r.devices.len(),
            list(&r.devices),
        );
        let map = |ranges: &[IdMap]| {
            ranges
                .iter()
                .map(IdMap::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        out += &format!(
            "namespaces  new: {}; the host's: {}\n\
             \x20           uid_map {}; gid_map {}\n\n",
            self.namespace_kinds(true).join(" "),
            self.namespace_kinds(false).join(" "),
            map(&self.user_namespace.uid_map),
            map(&self.user_namespace.gid_map),
        );
        out += &format!(
            "cgroup      v{}, below the runtime's own cgroup:",
            self.cgroups.version
        );
        for dir in &self.cgroups.dirs {
            out += &format!(
                "\n            {} ({}): .../{}",
                dir.hierarchy,
                dir.controllers.join(","),
                dir.path
            );
        }
        out += &format!(
            "\n            {}\n\nkernel      the host's own, shared by every container\n",
            self.cgroups.limits.phrases().join(", ")
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
45 73 0:40 / / rw,nodev,relatime - overlay overlay rw,lowerdir=0,upperdir=/s/containers/ab/upper,workdir=/s/containers/ab/work,uuid=on
46 45 0:43 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
48 45 0:44 / /sys ro,nosuid,nodev,noexec,relatime - sysfs sysfs ro
49 45 0:45 / /tmp rw,nosuid,nodev,relatime - tmpfs tmpfs rw
50 45 0:46 / /dev rw,nosuid,noexec,relatime - tmpfs tmpfs rw,size=64k,mode=755
51 50 0:6 /null /dev/null rw,relatime - devtmpfs devtmpfs rw
52 50 0:6 /zero /dev/zero rw,relatime - devtmpfs devtmpfs rw
57 50 0:47 / /dev/pts rw,nosuid,noexec,relatime - devpts devpts rw,mode=620,ptmxmode=666
59 46 0:49 / /proc/acpi ro,nosuid,nodev,noexec,relatime - tmpfs tmpfs ro,size=0k
60 46 0:6 /null /proc/keys rw,relatime - devtmpfs devtmpfs rw
63 48 0:50 / /sys/firmware ro,nosuid,nodev,noexec,relatime - tmpfs tmpfs ro,size=0k
67 46 0:43 /sys /proc/sys ro,nosuid,nodev,noexec,relatime - proc proc rw
";

    #[test]
    fn the_mount_table_is_sorted_into_the_chapters_parts() {
        let rootfs = root_filesystem(&hostinfo::parse_mountinfo(MOUNTINFO));
        assert_eq!(rootfs.fstype, "overlay");
        assert_eq!((rootfs.lower_layers, rootfs.upper), (1, true));
        assert_eq!(rootfs.masked, ["/proc/acpi", "/proc/keys", "/sys/firmware"]);
        assert_eq!(rootfs.read_only, ["/proc/sys"]);
        assert_eq!(rootfs.devices, ["/dev/null", "/dev/zero"]);
        let points: Vec<(&str, &str, bool)> = rootfs
            .mounts
            .iter()
            .map(|m| (m.point.as_str(), m.fstype.as_str(), m.read_only))
            .collect();
        assert_eq!(
            points,
            [
                ("/proc", "proc", false),
                ("/sys", "sysfs", true),
                ("/tmp", "tmpfs", false),
                ("/dev", "tmpfs", false),
                ("/dev/pts", "devpts", false),
            ]
        );
    }

    #[test]
    fn overlay_layers_are_counted_in_both_spellings() {
        let line = |options: &str| {
            let text = format!("1 0 0:1 / / rw - overlay overlay rw,{options}");
            root_filesystem(&hostinfo::parse_mountinfo(&text))
        };
        assert_eq!(
            line("lowerdir=0:1:2,upperdir=/u,workdir=/w").lower_layers,
            3
        );
        assert_eq!(line("lowerdir=/a\\:b:/c").lower_layers, 2);
        let appended = line("lowerdir+=/a,lowerdir+=/b");
        assert_eq!((appended.lower_layers, appended.upper), (2, false));
    }

    #[test]
    fn status_gives_ids_both_sides_capabilities_and_the_locks() {
        let status = "Name:\tsleep\nNSpid:\t19082\t2\nUid:\t1879048192\t1879048192\t1879048192\t1879048192\n\
                      Gid:\t1879048192\t1879048192\t1879048192\t1879048192\nCapEff:\t0000000000000003\n\
                      CapBnd:\t00000000000000ff\nNoNewPrivs:\t1\nSeccomp:\t2\nSeccomp_filters:\t2\n";
        let map = IdMap::parse_proc_map("         0 1879048192      65536\n");
        assert_eq!(
            map,
            [IdMap {
                inside: 0,
                outside: 1879048192,
                count: 65536
            }]
        );
        let process = process_from_status(status, vec!["/bin/sleep".into()], &map, &map).unwrap();
        assert_eq!(process.pid_inside, 2);
        assert_eq!((process.uid_inside, process.uid_host), (0, 1879048192));
        assert_eq!(process.effective, ["CAP_CHOWN", "CAP_DAC_OVERRIDE"]);
        assert_eq!(process.bounding.len(), 8);
        assert_eq!((process.seccomp, process.no_new_privs), (2, true));
        // A host uid outside every range has no id inside.
        assert!(process_from_status(status, Vec::new(), &[], &map).is_none());
    }

    fn fixture(name: &str, files: &[(&str, &str)]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("lab-anatomy-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (file, text) in files {
            std::fs::write(dir.join(file), text).unwrap();
        }
        dir
    }

    #[test]
    fn v2_budgets_are_read_from_one_directory() {
        let dir = fixture(
            "v2",
            &[
                ("memory.max", "67108864\n"),
                ("pids.max", "64\n"),
                ("cpu.max", "50000 100000\n"),
            ],
        );
        let limits = read_limits(std::slice::from_ref(&dir));
        assert_eq!(
            limits,
            Limits {
                memory_bytes: Some(64 << 20),
                pids: Some(64),
                cpu_quota_us: Some(50_000),
                cpu_period_us: Some(100_000),
            }
        );
        assert_eq!(
            limits.phrases(),
            ["memory 64 MiB", "pids 64", "cpu 50000/100000 µs (0.5 CPU)"]
        );
        std::fs::write(dir.join("memory.max"), "max\n").unwrap();
        std::fs::write(dir.join("cpu.max"), "max 100000\n").unwrap();
        let unlimited = read_limits(std::slice::from_ref(&dir));
        assert_eq!(unlimited.memory_bytes, None);
        assert_eq!(unlimited.cpu_quota_us, None);
        assert_eq!(unlimited.phrases()[2], "cpu: no limit");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn v1_budgets_are_read_from_each_hierarchy() {
        let memory = fixture("v1-memory", &[("memory.limit_in_bytes", "67108864\n")]);
        let cpu = fixture(
            "v1-cpu",
            &[
                ("cpu.cfs_quota_us", "-1\n"),
                ("cpu.cfs_period_us", "100000\n"),
            ],
        );
        let pids = fixture("v1-pids", &[("pids.max", "max\n")]);
        let limits = read_limits(&[memory.clone(), cpu.clone(), pids.clone()]);
        assert_eq!(
            limits,
            Limits {
                memory_bytes: Some(64 << 20),
                pids: None,
                cpu_quota_us: None,
                cpu_period_us: Some(100_000),
            }
        );
        std::fs::write(
            memory.join("memory.limit_in_bytes"),
            "9223372036854771712\n",
        )
        .unwrap();
        assert_eq!(
            read_limits(std::slice::from_ref(&memory)).memory_bytes,
            None
        );
        for dir in [memory, cpu, pids] {
            std::fs::remove_dir_all(dir).unwrap();
        }
    }

    fn mount(point: &str, fs_type: &str, super_options: &[&str]) -> MountInfo {
        let options = super_options.join(",");
        hostinfo::parse_mountinfo_line(&format!(
            "30 1 0:30 / {point} rw - {fs_type} {fs_type} {options}"
        ))
        .unwrap()
    }

    #[test]
    fn cgroup_dirs_are_named_below_the_runtimes_own_without_the_containers_name() {
        let host = [
            mount("/sys/fs/cgroup", "tmpfs", &["ro"]),
            mount("/sys/fs/cgroup/memory", "cgroup", &["rw", "memory"]),
            mount(
                "/sys/fs/cgroup/cpu,cpuacct",
                "cgroup",
                &["rw", "cpu", "cpuacct"],
            ),
            mount("/sys/fs/cgroup/unified", "cgroup2", &["rw"]),
        ];
        let own = crate::runtime::cgroups::own_cgroups(
            "4:memory:/user.slice/s-1\n2:cpu,cpuacct:/\n0::/\n",
        );
        let names = [
            "abc".to_string(),
            "anatomy-7".to_string(),
            "1234".to_string(),
        ];
        let dirs = [
            PathBuf::from("/sys/fs/cgroup/memory/user.slice/s-1/container-lab-1234"),
            PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/container-lab-1234"),
        ];
        let cgroups = cgroups(&dirs, &host, &own, &names);
        assert_eq!(cgroups.version, 1);
        let found: Vec<(&str, String, &str)> = cgroups
            .dirs
            .iter()
            .map(|d| {
                (
                    d.hierarchy.as_str(),
                    d.controllers.join(","),
                    d.path.as_str(),
                )
            })
            .collect();
        assert_eq!(
            found,
            [
                (
                    "/sys/fs/cgroup/memory",
                    "memory".into(),
                    "container-lab-<container>"
                ),
                (
                    "/sys/fs/cgroup/cpu,cpuacct",
                    "cpu,cpuacct".into(),
                    "container-lab-<container>"
                ),
            ]
        );
        assert_eq!(
            anonymised("x-12345/abc/anatomy-7", &names),
            "x-12345/<container>/<container>"
        );
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(size(64 << 20), "64 MiB");
        assert_eq!(size(3 << 29), "1.5 GiB");
        assert_eq!(size(100), "100 bytes");
    }
}
