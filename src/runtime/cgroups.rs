//! Control groups: budgets for memory, CPU time and processes
//! (cgroups(7); Process Containers 2006, cgroups in Linux 2.6.24, 2008;
//! cgroup v2 stable in 4.5, 2016).
//!
//! Three layouts exist in the wild, and the lab runs on all three: cgroup
//! v2 alone (one tree at /sys/fs/cgroup), v1 alone (one tree per
//! controller), and hybrid (v1 trees for the controllers, plus a cgroup2
//! tree at /sys/fs/cgroup/unified that holds none of the ones we use). The
//! layout is read with statfs(2) and the v1 trees are found in
//! /proc/self/mountinfo, never assumed. Each container gets a cgroup under
//! the runtime's own (from /proc/self/cgroup), so a runtime started by a
//! service manager stays inside what it was given.

use crate::error::LabError;
use crate::hostinfo::{self, CgroupLayout, MountInfo};
use crate::narrator::{Narrator, Step};
use std::path::{Path, PathBuf};

/// `--memory`, `--cpus`, `--cpu-weight`, `--pids`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Limits {
    pub memory_bytes: Option<u64>,
    pub cpus: Option<f64>,
    /// 1..=10000, cgroup v2's scale (100 is the default share).
    pub cpu_weight: Option<u64>,
    pub pids: Option<u64>,
    /// Account (for --stats) even where no limit is set.
    pub account: bool,
    /// A cgroup that `pause` can freeze, even with no budget (ch07 on).
    pub freezable: bool,
}

impl Limits {
    pub fn is_empty(&self) -> bool {
        *self == Limits::default()
    }

    fn controllers(&self) -> Vec<&'static str> {
        let mut wanted = Vec::new();
        if self.memory_bytes.is_some() || self.account {
            wanted.push("memory");
        }
        if self.cpus.is_some() || self.cpu_weight.is_some() || self.account {
            wanted.push("cpu");
        }
        if self.pids.is_some() || self.account {
            wanted.push("pids");
        }
        wanted
    }
}

/// `64M`, `1G`, `512k` or plain bytes; binary units, as Docker reads them.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => text.split_at(at),
        None => (text, ""),
    };
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size: expected a number such as 64M"))?;
    let scale: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => return Err(format!("{text:?}: unknown unit {other:?} (use K, M or G)")),
    };
    let bytes = number
        .checked_mul(scale)
        .ok_or_else(|| format!("{text:?} is too large"))?;
    if bytes < (4 << 20) {
        return Err(format!(
            "{text:?} is too small: a container needs at least 4M"
        ));
    }
    Ok(bytes)
}

/// `--cpus 0.5`: a share of one CPU, at most the machine's CPUs.
pub fn parse_cpus(text: &str) -> Result<f64, String> {
    let cpus: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of CPUs, such as 0.5"))?;
    let available = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1) as f64;
    // NaN compares false with everything: refuse it with the rest.
    if cpus.is_nan() || cpus < 0.01 {
        return Err(format!("{text:?}: at least 0.01 CPU"));
    }
    if cpus > available {
        return Err(format!("{text:?}: this machine has only {available} CPUs"));
    }
    Ok(cpus)
}

/// The period quotas are measured against: 100 ms, the kernel's default.
const CPU_PERIOD_US: u64 = 100_000;

/// The runtime's own cgroup in each hierarchy, from /proc/self/cgroup
/// (`ID:CONTROLLERS:PATH`, `0::PATH` for v2).
pub fn own_cgroups(text: &str) -> Vec<(Vec<String>, String)> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            let names = controllers
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect();
            Some((names, path.to_string()))
        })
        .collect()
}

/// Where a container's cgroup goes for each controller it needs.
#[derive(Debug, PartialEq)]
pub enum Plan {
    /// cgroup v2: one directory, and the parent whose subtree_control must
    /// enable the controllers.
    Unified { parent: PathBuf, dir: PathBuf },
    /// cgroup v1 (or hybrid): one directory per controller's hierarchy.
    PerController(Vec<(&'static str, PathBuf)>),
}

/// Decide where the cgroup of container `name` goes, from the layout, the
/// mount table and the runtime's own cgroups. Pure, so every layout can be
/// tested against fixtures.
pub fn plan(
    layout: CgroupLayout,
    mounts: &[MountInfo],
    own: &[(Vec<String>, String)],
    wanted: &[&'static str],
    name: &str,
) -> Result<Plan, LabError> {
    let relative = |path: &str| path.trim_start_matches('/').to_string();
    match layout {
        CgroupLayout::Unified => {
            let root = hostinfo::cgroup2_mount(mounts)
                .ok_or_else(|| missing("cgroup2", "no cgroup2 mount in /proc/self/mountinfo"))?;
            let own_path = own
                .iter()
                .find(|(c, _)| c.is_empty())
                .map(|(_, p)| relative(p))
                .unwrap_or_default();
            let parent = root.join(own_path);
            Ok(Plan::Unified {
                dir: parent.join(name),
                parent,
            })
        }
        CgroupLayout::Legacy | CgroupLayout::Hybrid => {
            let trees = hostinfo::cgroup_v1_controllers(mounts);
            let mut dirs = Vec::new();
            for controller in wanted {
                let (_, mount) = trees.iter().find(|(c, _)| c == controller).ok_or_else(|| {
                    missing(controller, "no cgroup v1 hierarchy has this controller")
                })?;
                let own_path = own
                    .iter()
                    .find(|(c, _)| c.iter().any(|c| c == controller))
                    .map(|(_, p)| relative(p))
                    .unwrap_or_default();
                dirs.push((*controller, mount.join(own_path).join(name)));
            }
            // CPU time is accounted by cpuacct, its own v1 hierarchy unless
            // mounted together with cpu.
            let cpuacct = trees.iter().find(|(c, _)| c == "cpuacct");
            if let (true, Some((_, mount))) = (wanted.contains(&"cpu"), cpuacct) {
                let own_path = own
                    .iter()
                    .find(|(c, _)| c.iter().any(|c| c == "cpuacct"))
                    .map(|(_, p)| relative(p))
                    .unwrap_or_default();
                dirs.push(("cpuacct", mount.join(own_path).join(name)));
            }
            Ok(Plan::PerController(dirs))
        }
    }
}

fn missing(controller: &str, why: &str) -> LabError {
    LabError::Refused {
        message: format!("the {controller} controller is not available: {why}"),
        hint: "run `lab doctor` to see which controllers this machine has, and drop the flag that needs it".into(),
    }
}

/// The files to write for `limits`, per controller, in the plan's flavour.
pub fn limit_files(limits: &Limits, unified: bool) -> Vec<(&'static str, &'static str, String)> {
    let mut files = Vec::new();
    if let Some(bytes) = limits.memory_bytes {
        let file = if unified {
            "memory.max"
        } else {
            "memory.limit_in_bytes"
        };
        files.push(("memory", file, bytes.to_string()));
        // No swap beyond the limit, so the limit is a limit (v1 counts
        // memory and swap together in memsw; it must come after the limit).
        if unified {
            files.push(("memory", "memory.swap.max", "0".to_string()));
            // Nothing for TCP buffers: v2 charges socket memory to
            // memory.current with the rest, so memory.max covers it.
        } else {
            files.push(("memory", "memory.memsw.limit_in_bytes", bytes.to_string()));
            // v1 keeps TCP buffers on a counter of their own and charges a
            // socket to it only once this limit is set: without it, unread
            // TCP data is charged nowhere and the budget is bypassed.
            files.push(("memory", TCP_LIMIT_FILE, bytes.to_string()));
        }
    }
    if let Some(cpus) = limits.cpus {
        let quota = (cpus * CPU_PERIOD_US as f64).round() as u64;
        if unified {
            files.push(("cpu", "cpu.max", format!("{quota} {CPU_PERIOD_US}")));
        } else {
            files.push(("cpu", "cpu.cfs_period_us", CPU_PERIOD_US.to_string()));
            files.push(("cpu", "cpu.cfs_quota_us", quota.to_string()));
        }
    }
    if let Some(weight) = limits.cpu_weight {
        if unified {
            files.push(("cpu", "cpu.weight", weight.to_string()));
        } else {
            // v1 shares: 1024 is the default weight of 100.
            files.push((
                "cpu",
                "cpu.shares",
                (weight * 1024 / 100).max(2).to_string(),
            ));
        }
    }
    if let Some(pids) = limits.pids {
        files.push(("pids", "pids.max", pids.to_string()));
    }
    files
}

/// cgroup v1's limit on TCP buffer memory (Documentation/admin-guide/
/// cgroup-v1/memory.rst, "kmem.tcp"). The kernel ties a socket to its
/// cgroup when the socket is made, and only if the limit is set by then:
/// so it is written with the other limits, before the container joins.
pub const TCP_LIMIT_FILE: &str = "memory.kmem.tcp.limit_in_bytes";

/// What the runtime says when this kernel's v1 memory controller has no
/// TCP limit file, and so no way to count TCP buffers against the budget.
fn tcp_accounting_missing(path: &Path) -> String {
    format!(
        "warning: {} is missing: this kernel does not charge TCP buffers to a cgroup v1 \
         memory budget, so data queued in sockets is not held to --memory \
         (cgroup v2 charges it)",
        path.display()
    )
}

/// A container's cgroup(s): made before fork, joined by the child before it
/// execs anything, emptied and removed when dropped.
pub struct ContainerCgroup {
    plan: Plan,
    pub limits: Limits,
}

pub fn write(narrator: &Narrator, path: &Path, value: &str, why: &str) -> Result<(), LabError> {
    let args = format!("{:?}, {value:?}", path.display().to_string());
    narrator.run(
        Step {
            syscall: "write",
            args: &args,
            why,
            man: "cgroups(7)",
        },
        || std::fs::write(path, value).map_err(|e| crate::error::errno_of(&e)),
    )
}

/// A plan's directories: one, or one per v1 hierarchy.
fn plan_dirs(plan: &Plan) -> Vec<PathBuf> {
    match plan {
        Plan::Unified { dir, .. } => vec![dir.clone()],
        Plan::PerController(dirs) => dirs.iter().map(|(_, d)| d.clone()).collect(),
    }
}

/// Name prefix of the leaf a v2 runtime moves itself into.
pub const RUNTIME_LEAF_PREFIX: &str = "container-lab-runtime-";

/// cgroup v2 lets a cgroup enable controllers for its children only if it
/// has no processes of its own (cgroups(7), "no internal processes"). If
/// the runtime is alone in its cgroup (as under `systemd-run --scope`), it
/// moves itself into a leaf beside the container's; if others share it (a
/// login shell), moving them is not the runtime's business: say what to do.
fn step_aside(narrator: &Narrator, parent: &Path) -> Result<(), LabError> {
    let own = std::process::id().to_string();
    let procs = std::fs::read_to_string(parent.join("cgroup.procs")).unwrap_or_default();
    let others: Vec<&str> = procs
        .lines()
        .map(str::trim)
        .filter(|p| !p.is_empty() && *p != own)
        .collect();
    if !others.is_empty() {
        return Err(LabError::Refused {
        message: format!(
            "cgroup v2 will not give {} controllers for children while other processes ({}) are in it",
            parent.display(),
            others.join(" ")
        ),
        hint: "start the runtime in a cgroup of its own: sudo systemd-run --scope -p Delegate=yes ch06-cgroups ...".into(),
    });
    }
    let leaf = parent.join(format!("{RUNTIME_LEAF_PREFIX}{own}"));
    let args = format!("{:?}", leaf.display().to_string());
    narrator.run(
        Step {
            syscall: "mkdir",
            args: &args,
            why: "a leaf for the runtime itself, so its own cgroup has no process left",
            man: "cgroups(7)",
        },
        || std::fs::create_dir_all(&leaf).map_err(|e| crate::error::errno_of(&e)),
    )?;
    write(
        narrator,
        &leaf.join("cgroup.procs"),
        &own,
        "the runtime steps aside into its leaf",
    )
}

impl ContainerCgroup {
    // ANCHOR: create
    /// Make the container's cgroup under the runtime's own and write the
    /// limits, before anything runs in it.
    pub fn create(narrator: &Narrator, limits: &Limits) -> Result<ContainerCgroup, LabError> {
        let name = format!("container-lab-{}", std::process::id());
        ContainerCgroup::create_at(narrator, limits, &name, &[])
    }

    /// Chapter 10: make the cgroup at `path`, config.json's cgroupsPath
    /// (absolute: from each hierarchy's root, as engines give it;
    /// relative: under the runtime's own), in the hierarchies of `limits`
    /// and of `extra` (v1's `devices`, ...).
    pub fn create_at(
        narrator: &Narrator,
        limits: &Limits,
        path: &str,
        extra: &[&'static str],
    ) -> Result<ContainerCgroup, LabError> {
        let layout = hostinfo::detect_cgroup_layout().map_err(|e| LabError::Refused {
            message: format!("cannot tell this machine's cgroup layout: {e}"),
            hint: "run `lab doctor`".into(),
        })?;
        let mounts = hostinfo::read_mountinfo().unwrap_or_default();
        let own = match path.starts_with('/') {
            true => Vec::new(),
            false => own_cgroups(&std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default()),
        };
        let mut wanted = limits.controllers();
        // cgroup v2 freezes any cgroup (cgroup.freeze); v1 only those in
        // the freezer controller's own hierarchy.
        if limits.freezable {
            wanted.push("freezer");
        }
        if layout != CgroupLayout::Unified {
            for controller in extra {
                if !wanted.contains(controller) {
                    wanted.push(controller);
                }
            }
        }
        let plan = plan(layout, &mounts, &own, &wanted, path.trim_start_matches('/'))?;
        // A cgroup that already holds processes is someone else's: taken
        // over, `delete` would kill them with the container (and so would
        // this value's drop, were `make` to fail).
        for dir in plan_dirs(&plan) {
            if !processes(std::slice::from_ref(&dir)).is_empty() {
                return Err(LabError::Refused {
                    message: format!(
                        "the cgroup {} exists and has processes in it",
                        dir.display()
                    ),
                    hint: "name another cgroup (linux.cgroupsPath), or another container ID".into(),
                });
            }
        }
        let cgroup = ContainerCgroup {
            plan,
            limits: limits.clone(),
        };
        cgroup.make(narrator)?;
        Ok(cgroup)
    }
    // ANCHOR_END: create

    /// Keep the cgroup past this process (chapter 10's `create` exits and
    /// `delete` removes it): its directories, not removed on drop.
    pub fn into_dirs(self) -> Vec<PathBuf> {
        let cgroup = std::mem::ManuallyDrop::new(self);
        cgroup.dirs()
    }

    /// The directory of `controller`'s hierarchy (the one directory on v2).
    pub fn dir_of(&self, controller: &str) -> Option<PathBuf> {
        match &self.plan {
            Plan::Unified { dir, .. } => Some(dir.clone()),
            Plan::PerController(dirs) => dirs
                .iter()
                .find(|(c, _)| *c == controller)
                .map(|(_, d)| d.clone()),
        }
    }

    /// Whether this is a cgroup v2 directory.
    pub fn is_unified(&self) -> bool {
        matches!(self.plan, Plan::Unified { .. })
    }

    /// Create the directories and write the limits (the part that can be
    /// tested on a fixture tree).
    pub fn make(&self, narrator: &Narrator) -> Result<(), LabError> {
        let unified = matches!(self.plan, Plan::Unified { .. });
        if let Plan::Unified { parent, .. } = &self.plan {
            // A controller the parent does not offer cannot be enabled.
            let offered =
                std::fs::read_to_string(parent.join("cgroup.controllers")).unwrap_or_default();
            if let Some(absent) = self
                .limits
                .controllers()
                .into_iter()
                .find(|c| !offered.split_whitespace().any(|o| o == *c))
            {
                return Err(missing(
                    absent,
                    &format!("{} does not offer it", parent.display()),
                ));
            }
            let enable: Vec<String> = self
                .limits
                .controllers()
                .iter()
                .map(|c| format!("+{c}"))
                .collect();
            if !enable.is_empty() {
                let why = "let the controllers act on the parent's children (cgroup v2 enables them top-down)";
                let control = parent.join("cgroup.subtree_control");
                match write(narrator, &control, &enable.join(" "), why) {
                    // cgroup v2's "no internal processes" rule: a cgroup with
                    // processes of its own cannot hand controllers down.
                    Err(LabError::StepFailed {
                        errno: nix::errno::Errno::EBUSY,
                        ..
                    }) => {
                        step_aside(narrator, parent)?;
                        write(narrator, &control, &enable.join(" "), why)?;
                    }
                    other => other?,
                }
            }
        }
        for dir in self.dirs() {
            let args = format!("{:?}", dir.display().to_string());
            narrator.run(
                Step {
                    syscall: "mkdir",
                    args: &args,
                    why: "a cgroup of the container's own",
                    man: "cgroups(7)",
                },
                || std::fs::create_dir_all(&dir).map_err(|e| crate::error::errno_of(&e)),
            )?;
        }
        for (controller, file, value) in limit_files(&self.limits, unified) {
            let path = self.dir_for(controller).join(file);
            // The swap files exist only with swap accounting: without it
            // there is no swap to forbid.
            if (file == "memory.swap.max" || file == "memory.memsw.limit_in_bytes")
                && !path.exists()
            {
                continue;
            }
            let mut why = "the budget the kernel enforces for every process in the cgroup";
            if file == TCP_LIMIT_FILE {
                // Older kernels without kmem accounting have no such file:
                // the rest of the budget still holds, so say so and go on.
                if !path.exists() {
                    crate::say!(
                        "{}: {}",
                        crate::program_name(),
                        tcp_accounting_missing(&path)
                    );
                    continue;
                }
                why = "TCP buffers count against the budget only once this is set (cgroup v1)";
            }
            write(narrator, &path, &value, why)?;
        }
        Ok(())
    }

    /// The cgroup's directories: one, or one per v1 hierarchy.
    pub fn dirs(&self) -> Vec<PathBuf> {
        plan_dirs(&self.plan)
    }

    fn dir_for(&self, controller: &str) -> PathBuf {
        self.dir_of(controller).unwrap_or_default()
    }

    // ANCHOR: join
    /// From outside, while the child waits: move it into the cgroup. Its
    /// children inherit the cgroup, so nothing of the container ever runs
    /// outside its budget.
    pub fn add(&self, narrator: &Narrator, pid: nix::unistd::Pid) -> Result<(), LabError> {
        for dir in self.dirs() {
            write(
                narrator,
                &dir.join("cgroup.procs"),
                &pid.to_string(),
                "the child, and all it will start, is in the budget from now on",
            )?;
        }
        Ok(())
    }
    // ANCHOR_END: join

    fn read(&self, controller: &str, file: &str) -> Option<String> {
        std::fs::read_to_string(self.dir_for(controller).join(file)).ok()
    }

    /// Whether the kernel's OOM killer killed something in the cgroup.
    pub fn oom_killed(&self) -> bool {
        let key_count = |text: String, key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0)
        };
        match &self.plan {
            Plan::Unified { .. } => {
                self.read("memory", "memory.events")
                    .map(|t| key_count(t, "oom_kill "))
                    .unwrap_or(0)
                    > 0
            }
            Plan::PerController(_) => {
                self.read("memory", "memory.oom_control")
                    .map(|t| key_count(t, "oom_kill "))
                    .unwrap_or(0)
                    > 0
            }
        }
    }

    /// Peak memory, CPU time and processes, for `--stats`.
    pub fn stats(&self) -> String {
        let unified = matches!(self.plan, Plan::Unified { .. });
        let number = |controller: &str, file: &str| {
            self.read(controller, file)
                .and_then(|t| t.trim().parse::<u64>().ok())
        };
        let memory = if unified {
            number("memory", "memory.peak")
        } else {
            number("memory", "memory.max_usage_in_bytes")
        };
        let cpu_seconds = if unified {
            self.read("cpu", "cpu.stat")
                .and_then(|t| {
                    t.lines()
                        .find_map(|l| l.strip_prefix("usage_usec "))
                        .and_then(|v| v.trim().parse::<u64>().ok())
                })
                .map(|usec| usec as f64 / 1e6)
        } else {
            self.read("cpuacct", "cpuacct.usage")
                .and_then(|t| t.trim().parse::<u64>().ok())
                .map(|ns| ns as f64 / 1e9)
        };
        let pids = if unified {
            number("pids", "pids.peak")
        } else {
            number("pids", "pids.current")
        };
        let show = |value: Option<String>| value.unwrap_or_else(|| "n/a".into());
        format!(
            "stats: peak memory {}, CPU time {}, {} {}",
            show(memory.map(|b| format!("{:.1} MiB", b as f64 / (1 << 20) as f64))),
            show(cpu_seconds.map(|s| format!("{s:.2} s"))),
            if unified {
                "peak processes"
            } else {
                "processes at exit"
            },
            show(pids.map(|p| p.to_string())),
        )
    }
}

impl Drop for ContainerCgroup {
    fn drop(&mut self) {
        for dir in self.dirs() {
            let _ = empty_and_remove(&dir);
        }
    }
}

// ANCHOR: freeze
/// Freeze or thaw every process of the cgroup (`pause`, `unpause`): the
/// kernel stops scheduling them wherever they are, without a signal they
/// could notice or catch. cgroup v2 writes `cgroup.freeze`; v1 writes
/// `freezer.state` in the freezer hierarchy (LXC's lxc-freeze did this).
/// Returns once the kernel says the whole cgroup is frozen (or thawed). A
/// freeze that does not complete within a second is undone: a task the
/// kernel cannot catch (one waiting in the kernel, in D state) would
/// otherwise leave the others half frozen for good, as runc also undoes.
pub fn set_frozen(dirs: &[PathBuf], frozen: bool) -> Result<(), LabError> {
    let Some(freezer) = freezer_of(dirs) else {
        return Err(LabError::Container {
            message: "the container has no freezer cgroup".into(),
            hint: "it was started without root, or on a v1 host without the freezer controller (see `lab doctor`)".into(),
        });
    };
    let (file, value) = freezer.request(frozen);
    std::fs::write(&file, value).map_err(|e| LabError::io("write", file.display(), e))?;
    for _ in 0..500 {
        if freezer.state() == Some(frozen) {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    if frozen {
        let (file, thawed) = freezer.request(false);
        let _ = std::fs::write(file, thawed);
    }
    Err(LabError::Container {
        message: format!("{} did not become {value} within a second", file.display()),
        hint: match frozen {
            true => "a process waiting in the kernel (D state) cannot be frozen; the container was thawed again".into(),
            false => "try again".into(),
        },
    })
}

/// Whether a freeze was asked for and not undone: frozen, or on its way
/// (v1's FREEZING), so that `unpause`, `stop` and `rm` thaw it and `exec`
/// stays out.
pub fn is_frozen(dirs: &[PathBuf]) -> bool {
    freezer_of(dirs).is_some_and(|freezer| freezer.state() != Some(false))
}
// ANCHOR_END: freeze

impl Freezer<'_> {
    /// The file and the value that ask for `frozen`.
    fn request(&self, frozen: bool) -> (PathBuf, &'static str) {
        match (self, frozen) {
            (Freezer::V2(dir), true) => (dir.join("cgroup.freeze"), "1"),
            (Freezer::V2(dir), false) => (dir.join("cgroup.freeze"), "0"),
            (Freezer::V1(dir), true) => (dir.join("freezer.state"), "FROZEN"),
            (Freezer::V1(dir), false) => (dir.join("freezer.state"), "THAWED"),
        }
    }

    /// Some(true) frozen, Some(false) thawed, None on the way or unknown.
    /// v2 tells the end in cgroup.events ("frozen 1"), the request in
    /// cgroup.freeze; v1 passes through FREEZING.
    fn state(&self) -> Option<bool> {
        let read = |path: PathBuf| std::fs::read_to_string(path).ok();
        match self {
            Freezer::V2(dir) => {
                let asked = read(dir.join("cgroup.freeze"))?.trim() == "1";
                let done = read(dir.join("cgroup.events"))?
                    .lines()
                    .any(|l| l.trim() == "frozen 1");
                match (asked, done) {
                    (true, true) => Some(true),
                    (false, false) => Some(false),
                    _ => None,
                }
            }
            Freezer::V1(dir) => match read(dir.join("freezer.state"))?.trim() {
                "FROZEN" => Some(true),
                "THAWED" => Some(false),
                _ => None,
            },
        }
    }
}

enum Freezer<'a> {
    V2(&'a Path),
    V1(&'a Path),
}

fn freezer_of(dirs: &[PathBuf]) -> Option<Freezer<'_>> {
    dirs.iter().find_map(|dir| {
        if dir.join("cgroup.freeze").exists() {
            Some(Freezer::V2(dir))
        } else if dir.join("freezer.state").exists() {
            Some(Freezer::V1(dir))
        } else {
            None
        }
    })
}

/// The processes in the cgroup, as the host numbers them.
pub fn processes(dirs: &[PathBuf]) -> Vec<i32> {
    let mut pids: Vec<i32> = dirs
        .first()
        .and_then(|dir| std::fs::read_to_string(dir.join("cgroup.procs")).ok())
        .map(|procs| {
            procs
                .lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect()
        })
        .unwrap_or_default();
    pids.sort_unstable();
    pids
}

/// Kill what is left in the cgroup at `dir`, wait until it is empty (a
/// cgroup with processes cannot be removed), and remove it.
pub fn empty_and_remove(dir: &Path) -> std::io::Result<()> {
    for _ in 0..200 {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        let pids: Vec<i32> = procs
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        if pids.is_empty() {
            break;
        }
        for pid in pids {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    std::fs::remove_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_binary_units_and_refuse_nonsense() {
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert_eq!(parse_size("8388608"), Ok(8 << 20));
        for bad in ["64Q", "-1", "0", "", "M", "1K", "99999999999999999999G"] {
            assert!(parse_size(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn cpus_are_bounded_by_the_machine() {
        assert_eq!(parse_cpus("0.5"), Ok(0.5));
        assert!(parse_cpus("0").is_err());
        assert!(parse_cpus("-1").is_err());
        assert!(parse_cpus("nan").is_err());
        assert!(
            parse_cpus("100000")
                .unwrap_err()
                .contains("this machine has only")
        );
    }

    #[test]
    fn own_cgroups_come_from_proc_self_cgroup() {
        let text = "4:memory:/process_api/abc\n1:cpu,cpuacct:/\n0::/user.slice\n";
        let own = own_cgroups(text);
        assert_eq!(
            own[0],
            (vec!["memory".to_string()], "/process_api/abc".to_string())
        );
        assert_eq!(own[1].0, vec!["cpu".to_string(), "cpuacct".to_string()]);
        assert_eq!(own[2], (vec![], "/user.slice".to_string()));
    }

    #[test]
    fn limit_files_for_v1_and_v2() {
        let limits = Limits {
            memory_bytes: Some(64 << 20),
            cpus: Some(0.5),
            cpu_weight: Some(200),
            pids: Some(64),
            account: false,
            freezable: false,
        };
        let v2 = limit_files(&limits, true);
        assert!(v2.contains(&("memory", "memory.max", "67108864".into())));
        assert!(v2.contains(&("memory", "memory.swap.max", "0".into())));
        assert!(v2.contains(&("cpu", "cpu.max", "50000 100000".into())));
        assert!(v2.contains(&("cpu", "cpu.weight", "200".into())));
        assert!(v2.contains(&("pids", "pids.max", "64".into())));
        let v1 = limit_files(&limits, false);
        assert!(v1.contains(&("memory", "memory.limit_in_bytes", "67108864".into())));
        assert!(v1.contains(&("memory", "memory.memsw.limit_in_bytes", "67108864".into())));
        assert!(v1.contains(&("memory", TCP_LIMIT_FILE, "67108864".into())));
        assert!(!v2.iter().any(|(_, file, _)| file.contains("tcp")));
        assert!(v1.contains(&("cpu", "cpu.cfs_quota_us", "50000".into())));
        assert!(v1.contains(&("cpu", "cpu.shares", "2048".into())));
        assert!(v1.contains(&("pids", "pids.max", "64".into())));
    }

    fn mount(point: &str, fs_type: &str, super_options: &[&str]) -> MountInfo {
        let line = format!(
            "30 1 0:26 / {point} rw - {fs_type} cgroup {}",
            super_options.join(",")
        );
        hostinfo::parse_mountinfo_line(&line).unwrap()
    }

    #[test]
    fn hybrid_plan_uses_each_controllers_v1_tree_and_own_path() {
        let mounts = vec![
            mount("/sys/fs/cgroup/memory", "cgroup", &["rw", "memory"]),
            mount("/sys/fs/cgroup/pids", "cgroup", &["rw", "pids"]),
            mount("/sys/fs/cgroup/unified", "cgroup2", &["rw"]),
        ];
        let own = own_cgroups("4:memory:/process_api/abc\n8:pids:/\n0::/\n");
        let plan = plan(
            CgroupLayout::Hybrid,
            &mounts,
            &own,
            &["memory", "pids"],
            "c1",
        )
        .unwrap();
        assert_eq!(
            plan,
            Plan::PerController(vec![
                (
                    "memory",
                    PathBuf::from("/sys/fs/cgroup/memory/process_api/abc/c1")
                ),
                ("pids", PathBuf::from("/sys/fs/cgroup/pids/c1")),
            ])
        );
        let error = plan_error(CgroupLayout::Hybrid, &mounts, &own, &["cpu"]);
        assert!(
            error.contains("the cpu controller is not available"),
            "{error}"
        );
    }

    fn plan_error(
        layout: CgroupLayout,
        mounts: &[MountInfo],
        own: &[(Vec<String>, String)],
        wanted: &[&'static str],
    ) -> String {
        plan(layout, mounts, own, wanted, "c1")
            .unwrap_err()
            .to_string()
    }

    /// cgroup v2's no-internal-processes rule: alone in its cgroup, the
    /// runtime moves itself into a leaf; with company, it says what to do.
    #[test]
    fn v2_runtime_steps_aside_only_when_alone() {
        let narrator = Narrator::new(false, false).unwrap();
        let parent = std::env::temp_dir().join(format!("lab-cgroup-aside-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&parent);
        std::fs::create_dir_all(&parent).unwrap();
        std::fs::write(
            parent.join("cgroup.procs"),
            format!("{}\n4242\n", std::process::id()),
        )
        .unwrap();
        let error = step_aside(&narrator, &parent).unwrap_err().to_string();
        assert!(error.contains("other processes (4242)"), "{error}");
        std::fs::write(
            parent.join("cgroup.procs"),
            format!("{}\n", std::process::id()),
        )
        .unwrap();
        step_aside(&narrator, &parent).unwrap();
        let leaf = parent.join(format!("{RUNTIME_LEAF_PREFIX}{}", std::process::id()));
        assert_eq!(
            std::fs::read_to_string(leaf.join("cgroup.procs")).unwrap(),
            std::process::id().to_string()
        );
        std::fs::remove_dir_all(parent).unwrap();
    }

    /// The v2 path against a fixture tree in a temp dir: the parent's
    /// subtree_control is written first, then the cgroup's limit files.
    #[test]
    fn unified_cgroup_is_made_in_a_fixture_tree() {
        let root = std::env::temp_dir().join(format!("lab-cgroup-v2-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let parent = root.join("user.slice");
        std::fs::create_dir_all(&parent).unwrap();
        std::fs::write(parent.join("cgroup.subtree_control"), "").unwrap();
        std::fs::write(
            parent.join("cgroup.controllers"),
            "cpuset cpu io memory pids",
        )
        .unwrap();
        let mounts = vec![
            hostinfo::parse_mountinfo_line(&format!(
                "30 1 0:26 / {} rw - cgroup2 cgroup2 rw",
                root.display()
            ))
            .unwrap(),
        ];
        let own = own_cgroups("0::/user.slice\n");
        let limits = Limits {
            memory_bytes: Some(64 << 20),
            cpus: Some(0.5),
            cpu_weight: None,
            pids: Some(64),
            account: false,
            freezable: false,
        };
        let plan = plan(
            CgroupLayout::Unified,
            &mounts,
            &own,
            &limits.controllers(),
            "c1",
        )
        .unwrap();
        assert_eq!(
            plan,
            Plan::Unified {
                parent: parent.clone(),
                dir: parent.join("c1")
            }
        );
        // The kernel makes the interface files of a new cgroup; the fixture
        // has the one the runtime only writes when it exists.
        std::fs::create_dir_all(parent.join("c1")).unwrap();
        std::fs::write(parent.join("c1/memory.swap.max"), "max").unwrap();
        let narrator = Narrator::new(false, false).unwrap();
        let cgroup = ContainerCgroup {
            plan,
            limits: limits.clone(),
        };
        cgroup.make(&narrator).unwrap();
        let read = |file: &str| std::fs::read_to_string(parent.join(file)).unwrap();
        assert_eq!(read("cgroup.subtree_control"), "+memory +cpu +pids");
        assert_eq!(read("c1/memory.max"), "67108864");
        assert_eq!(read("c1/memory.swap.max"), "0");
        assert_eq!(read("c1/cpu.max"), "50000 100000");
        assert_eq!(read("c1/pids.max"), "64");
        std::mem::forget(cgroup); // its Drop would look for processes in a fixture
        // A controller the parent does not offer is refused before anything.
        std::fs::write(parent.join("cgroup.controllers"), "memory pids").unwrap();
        let plan = Plan::Unified {
            parent: parent.clone(),
            dir: parent.join("c2"),
        };
        let error = ContainerCgroup { plan, limits }
            .make(&narrator)
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("the cpu controller is not available"),
            "{error}"
        );
        assert!(!parent.join("c2").exists());
        std::fs::remove_dir_all(root).unwrap();
    }

    /// The v1 path against a fixture tree: one directory per controller's
    /// hierarchy, the memory limit, the swap limit and the TCP buffer
    /// limit written where the kernel made their files; a kernel without
    /// the TCP file gets a warning and the rest of the budget.
    #[test]
    fn v1_cgroup_is_made_in_a_fixture_tree_with_a_tcp_limit() {
        let root = std::env::temp_dir().join(format!("lab-cgroup-v1-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let (memory, pids) = (root.join("memory/c1"), root.join("pids/c1"));
        // The kernel makes the interface files of a new cgroup; the fixture
        // has the ones the runtime only writes when they exist.
        std::fs::create_dir_all(&memory).unwrap();
        std::fs::write(memory.join("memory.memsw.limit_in_bytes"), "").unwrap();
        std::fs::write(memory.join(TCP_LIMIT_FILE), "").unwrap();
        let limits = Limits {
            memory_bytes: Some(64 << 20),
            pids: Some(64),
            ..Limits::default()
        };
        let plan = Plan::PerController(vec![("memory", memory.clone()), ("pids", pids.clone())]);
        let narrator = Narrator::new(false, false).unwrap();
        let cgroup = ContainerCgroup {
            plan,
            limits: limits.clone(),
        };
        cgroup.make(&narrator).unwrap();
        std::mem::forget(cgroup); // its Drop would look for processes in a fixture
        let read = |path: PathBuf| std::fs::read_to_string(path).unwrap();
        assert_eq!(read(memory.join("memory.limit_in_bytes")), "67108864");
        assert_eq!(read(memory.join("memory.memsw.limit_in_bytes")), "67108864");
        assert_eq!(read(memory.join(TCP_LIMIT_FILE)), "67108864");
        assert_eq!(read(pids.join("pids.max")), "64");
        // Without the file (no kmem accounting), nothing is made up.
        let bare = root.join("memory/c2");
        std::fs::create_dir_all(&bare).unwrap();
        let plan = Plan::PerController(vec![("memory", bare.clone())]);
        let limits = Limits {
            memory_bytes: Some(64 << 20),
            ..Limits::default()
        };
        let cgroup = ContainerCgroup { plan, limits };
        cgroup.make(&narrator).unwrap();
        std::mem::forget(cgroup);
        assert_eq!(read(bare.join("memory.limit_in_bytes")), "67108864");
        assert!(!bare.join(TCP_LIMIT_FILE).exists());
        let warning = tcp_accounting_missing(&bare.join(TCP_LIMIT_FILE));
        assert!(
            warning.contains("memory/c2/memory.kmem.tcp.limit_in_bytes is missing"),
            "{warning}"
        );
        std::fs::remove_dir_all(root).unwrap();
    }
}
