//! A bundle's `config.json`, read with the `oci-spec` crate's types (the
//! runtime specification's own schema, as youki reads it) and turned into
//! a `Plan`: plain values the rest of chapter 10 acts on, every field
//! checked once, here, at `create`.
//!
//! The specification lets a runtime leave out what it does not support,
//! but not pretend: a field this runtime cannot honour (an AppArmor
//! profile on a host without AppArmor, block I/O limits, Intel RDT, a time
//! namespace, ...) is refused by its name, before anything is made.

use crate::error::LabError;
use crate::runtime::caps::{self, CapSet};
use crate::runtime::cgroups::Limits;
use crate::runtime::seccomp::Profile;
use crate::runtime::userns::IdMap;
use nix::mount::MsFlags;
use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The versions of the runtime specification this runtime reads: any 1.x.
pub const OCI_VERSION_MAJOR: u64 = 1;

/// The version this runtime reports in `state` and `features`, and writes
/// in `spec`: the release runc 1.1 implements (it writes `1.0.2-dev`).
pub const OCI_VERSION: &str = "1.0.2";

/// A bundle: its directory, and what its config.json asks for.
pub struct Bundle {
    pub dir: PathBuf,
    pub plan: Plan,
}

/// What the container is to be, from config.json.
#[derive(Clone, Debug)]
pub struct Plan {
    /// `root.path`, made absolute against the bundle.
    pub rootfs: PathBuf,
    pub readonly_root: bool,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    pub process: ProcessPlan,
    pub mounts: Vec<MountPlan>,
    pub namespaces: Vec<NamespacePlan>,
    pub uid_maps: Vec<IdMap>,
    pub gid_maps: Vec<IdMap>,
    pub devices: Vec<DeviceNode>,
    pub device_rules: Vec<DeviceRule>,
    pub limits: Limits,
    pub cgroups_path: Option<String>,
    pub masked_paths: Vec<String>,
    pub readonly_paths: Vec<String>,
    pub seccomp: Option<Profile>,
    pub sysctl: Vec<(String, String)>,
    pub rootfs_propagation: Option<String>,
    pub hooks: Hooks,
    pub annotations: BTreeMap<String, String>,
}

/// `process`: what runs, as whom, with what (also `exec --process`).
#[derive(Clone, Debug, Default)]
pub struct ProcessPlan {
    pub terminal: bool,
    pub console_size: Option<(u16, u16)>,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: PathBuf,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub umask: Option<u32>,
    pub capabilities: CapabilitySets,
    /// (resource, soft, hard), setrlimit(2)'s numbering.
    pub rlimits: Vec<(i32, u64, u64)>,
    pub no_new_privileges: bool,
    pub oom_score_adj: Option<i32>,
    pub apparmor_profile: Option<String>,
}

/// The five capability sets of capabilities(7), as config.json gives them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CapabilitySets {
    pub bounding: CapSet,
    pub effective: CapSet,
    pub permitted: CapSet,
    pub inheritable: CapSet,
    pub ambient: CapSet,
}

/// One entry of `mounts`.
#[derive(Clone, Debug, PartialEq)]
pub struct MountPlan {
    pub destination: PathBuf,
    pub kind: String,
    pub source: Option<PathBuf>,
    pub options: Vec<String>,
}

/// A namespace to make (no path) or to join (the path of one).
#[derive(Clone, Debug, PartialEq)]
pub struct NamespacePlan {
    pub kind: NamespaceKind,
    pub path: Option<PathBuf>,
}

/// The kinds this runtime makes or joins (the time namespace it refuses).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NamespaceKind {
    User,
    Mount,
    Pid,
    Network,
    Ipc,
    Uts,
    Cgroup,
}

/// `linux.devices`: a node to make in the container's /dev.
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceNode {
    pub path: PathBuf,
    /// 'c', 'b', 'u' or 'p'.
    pub kind: char,
    pub major: i64,
    pub minor: i64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// `linux.resources.devices`: one rule of the device cgroup.
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceRule {
    pub allow: bool,
    /// 'a', 'c' or 'b'.
    pub kind: char,
    pub major: Option<i64>,
    pub minor: Option<i64>,
    pub access: String,
}

/// `hooks`, by the moment they run at.
#[derive(Clone, Debug, Default)]
pub struct Hooks {
    pub prestart: Vec<Hook>,
    pub create_runtime: Vec<Hook>,
    pub create_container: Vec<Hook>,
    pub start_container: Vec<Hook>,
    pub poststart: Vec<Hook>,
    pub poststop: Vec<Hook>,
}

/// One hook: a program, its argv and environment, and how long it may take.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Hook {
    pub path: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub timeout: Option<i64>,
}

fn invalid(message: String) -> LabError {
    LabError::Refused {
        message,
        hint: "fix config.json (the runtime specification: https://github.com/opencontainers/runtime-spec/blob/main/config.md)".into(),
    }
}

fn unsupported(field: &str, why: &str) -> LabError {
    LabError::Refused {
        message: format!("config.json: {field} is not supported by this runtime: {why}"),
        hint: format!("remove {field} from config.json, or run this bundle with runc"),
    }
}

// ANCHOR: load
impl Bundle {
    /// Read `dir/config.json`: parse it into the specification's types (an
    /// error names the line, column and field), check its version, refuse
    /// what this runtime cannot do, and make the plan.
    pub fn load(dir: &Path) -> Result<Bundle, LabError> {
        let dir = std::path::absolute(dir).map_err(|e| LabError::io("getcwd", dir.display(), e))?;
        let path = dir.join("config.json");
        let text = std::fs::read_to_string(&path).map_err(|error| match error.kind() {
            std::io::ErrorKind::NotFound => LabError::Refused {
                message: format!("{} not found: {} is not a bundle", path.display(), dir.display()),
                hint: "a bundle is a directory with config.json and a root filesystem: `ch10-oci spec` writes a config.json, `lab bundle IMAGE DIR` makes a whole bundle".into(),
            },
            _ => LabError::io("open", path.display(), error),
        })?;
        let spec =
            parse(&text).map_err(|message| invalid(format!("{}: {message}", path.display())))?;
        let plan = Plan::from_spec(&spec, &dir)?;
        Ok(Bundle { dir, plan })
    }
}
// ANCHOR_END: load

/// config.json's text as the specification's types; the error names where.
pub fn parse(text: &str) -> Result<Spec, String> {
    let mut reader = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut reader).map_err(|error| {
        let inner = error.inner();
        format!(
            "line {} column {}: {}: {}",
            inner.line(),
            inner.column(),
            error.path(),
            inner
        )
    })
}

/// A `process` object alone, as `exec --process FILE` gives it.
pub fn parse_process(text: &str) -> Result<ProcessPlan, LabError> {
    let mut reader = serde_json::Deserializer::from_str(text);
    let process: Process = serde_path_to_error::deserialize(&mut reader)
        .map_err(|error| invalid(format!("process: {}: {}", error.path(), error.inner())))?;
    ProcessPlan::from_oci(&process)
}

/// `major.minor.patch[-extra]`: only 1.x is read.
fn check_version(version: &str) -> Result<(), LabError> {
    let major = version
        .split('.')
        .next()
        .and_then(|m| m.parse::<u64>().ok());
    match major {
        Some(OCI_VERSION_MAJOR) => Ok(()),
        _ => Err(invalid(format!(
            "config.json: ociVersion {version:?}: this runtime reads version {OCI_VERSION_MAJOR}.x of the runtime specification"
        ))),
    }
}

fn names(set: &Option<oci_spec::runtime::Capabilities>) -> Result<CapSet, LabError> {
    let mut bits = CapSet::default();
    for capability in set.iter().flatten() {
        let name = serde_json::to_value(capability)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        bits.0 |= 1 << caps::parse_name(&name)?;
    }
    Ok(bits)
}

fn maps(mappings: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>) -> Vec<IdMap> {
    mappings
        .iter()
        .flatten()
        .map(|m| IdMap {
            inside: m.container_id(),
            outside: m.host_id(),
            count: m.size(),
        })
        .collect()
}

fn hooks_of(hooks: &Option<Vec<oci_spec::runtime::Hook>>) -> Vec<Hook> {
    hooks
        .iter()
        .flatten()
        .map(|hook| Hook {
            path: hook.path().clone(),
            args: hook.args().clone().unwrap_or_default(),
            env: hook.env().clone().unwrap_or_default(),
            timeout: hook.timeout(),
        })
        .collect()
}

impl ProcessPlan {
    /// The `process` object, checked.
    pub fn from_oci(process: &Process) -> Result<ProcessPlan, LabError> {
        if process
            .selinux_label()
            .as_ref()
            .is_some_and(|l| !l.is_empty())
        {
            return Err(unsupported(
                "process.selinuxLabel",
                "this runtime has no SELinux support",
            ));
        }
        if process.io_priority().is_some() {
            return Err(unsupported("process.ioPriority", "not implemented"));
        }
        if process.scheduler().is_some() {
            return Err(unsupported("process.scheduler", "not implemented"));
        }
        if process.exec_cpu_affinity().is_some() {
            return Err(unsupported("process.execCPUAffinity", "not implemented"));
        }
        if process.command_line().is_some() {
            return Err(unsupported("process.commandLine", "it is for Windows"));
        }
        let apparmor_profile = process.apparmor_profile().clone().filter(|p| !p.is_empty());
        if apparmor_profile.is_some() && !apparmor_enabled() {
            return Err(unsupported(
                "process.apparmorProfile",
                "AppArmor is not enabled on this host (/sys/module/apparmor/parameters/enabled)",
            ));
        }
        let args = process.args().clone().unwrap_or_default();
        if args.is_empty() {
            return Err(invalid(
                "config.json: process.args is empty: there is nothing to run".into(),
            ));
        }
        let cwd = process.cwd().clone();
        if !cwd.is_absolute() {
            return Err(invalid(format!(
                "config.json: process.cwd {:?} must be an absolute path",
                cwd.display()
            )));
        }
        let capabilities = match process.capabilities() {
            Some(sets) => CapabilitySets {
                bounding: names(sets.bounding())?,
                effective: names(sets.effective())?,
                permitted: names(sets.permitted())?,
                inheritable: names(sets.inheritable())?,
                ambient: names(sets.ambient())?,
            },
            None => CapabilitySets::default(),
        };
        let mut rlimits = Vec::new();
        for limit in process.rlimits().iter().flatten() {
            let name = serde_json::to_value(limit.typ())
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let resource = rlimit_number(&name).ok_or_else(|| {
                unsupported(&format!("process.rlimits {name}"), "unknown resource")
            })?;
            rlimits.push((resource, limit.soft(), limit.hard()));
        }
        let user = process.user();
        Ok(ProcessPlan {
            terminal: process.terminal().unwrap_or(false),
            console_size: process
                .console_size()
                .as_ref()
                .map(|b| (b.height() as u16, b.width() as u16)),
            args,
            env: process.env().clone().unwrap_or_default(),
            cwd,
            uid: user.uid(),
            gid: user.gid(),
            additional_gids: user.additional_gids().clone().unwrap_or_default(),
            umask: user.umask(),
            capabilities,
            rlimits,
            no_new_privileges: process.no_new_privileges().unwrap_or(false),
            oom_score_adj: process.oom_score_adj(),
            apparmor_profile,
        })
    }
}

/// AppArmor's own switch (the kernel parameter apparmor.enabled).
pub fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|v| v.trim() == "Y")
}

/// setrlimit(2)'s number for `RLIMIT_NAME`.
fn rlimit_number(name: &str) -> Option<i32> {
    let table: [(&str, u32); 16] = [
        ("RLIMIT_CPU", libc::RLIMIT_CPU),
        ("RLIMIT_FSIZE", libc::RLIMIT_FSIZE),
        ("RLIMIT_DATA", libc::RLIMIT_DATA),
        ("RLIMIT_STACK", libc::RLIMIT_STACK),
        ("RLIMIT_CORE", libc::RLIMIT_CORE),
        ("RLIMIT_RSS", libc::RLIMIT_RSS),
        ("RLIMIT_NPROC", libc::RLIMIT_NPROC),
        ("RLIMIT_NOFILE", libc::RLIMIT_NOFILE),
        ("RLIMIT_MEMLOCK", libc::RLIMIT_MEMLOCK),
        ("RLIMIT_AS", libc::RLIMIT_AS),
        ("RLIMIT_LOCKS", libc::RLIMIT_LOCKS),
        ("RLIMIT_SIGPENDING", libc::RLIMIT_SIGPENDING),
        ("RLIMIT_MSGQUEUE", libc::RLIMIT_MSGQUEUE),
        ("RLIMIT_NICE", libc::RLIMIT_NICE),
        ("RLIMIT_RTPRIO", libc::RLIMIT_RTPRIO),
        ("RLIMIT_RTTIME", libc::RLIMIT_RTTIME),
    ];
    table
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, number)| *number as i32)
}

// ANCHOR: refuse
/// The fields of `linux` (and the other platforms) this runtime refuses
/// when they are set: each one named, so the user knows what to remove.
fn refuse_unsupported(spec: &Spec) -> Result<(), LabError> {
    if spec.solaris().is_some() || spec.windows().is_some() || spec.vm().is_some() {
        return Err(unsupported("solaris/windows/vm", "this is a Linux runtime"));
    }
    if spec.zos().is_some() {
        return Err(unsupported("zos", "this is a Linux runtime"));
    }
    for mount in spec.mounts().iter().flatten() {
        if mount.uid_mappings().is_some() || mount.gid_mappings().is_some() {
            return Err(unsupported(
                "mounts[].uidMappings",
                "idmapped mounts of config.json are not implemented (chapter 05's are the runtime's own)",
            ));
        }
    }
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    let checks: [(&str, bool); 7] = [
        ("linux.netDevices", linux.net_devices().is_some()),
        ("linux.intelRdt", linux.intel_rdt().is_some()),
        ("linux.memoryPolicy", linux.memory_policy().is_some()),
        ("linux.personality", linux.personality().is_some()),
        ("linux.timeOffsets", linux.time_offsets().is_some()),
        (
            "linux.mountLabel",
            linux.mount_label().as_ref().is_some_and(|l| !l.is_empty()),
        ),
        (
            "linux.seccomp.listenerPath",
            linux
                .seccomp()
                .as_ref()
                .is_some_and(|s| s.listener_path().is_some()),
        ),
    ];
    if let Some((field, _)) = checks.iter().find(|(_, set)| *set) {
        return Err(unsupported(field, "not implemented"));
    }
    if let Some(resources) = linux.resources() {
        let checks: [(&str, bool); 5] = [
            ("linux.resources.blockIO", resources.block_io().is_some()),
            (
                "linux.resources.hugepageLimits",
                resources
                    .hugepage_limits()
                    .as_ref()
                    .is_some_and(|l| !l.is_empty()),
            ),
            ("linux.resources.network", resources.network().is_some()),
            ("linux.resources.rdma", resources.rdma().is_some()),
            (
                "linux.resources.unified",
                resources.unified().as_ref().is_some_and(|u| !u.is_empty()),
            ),
        ];
        if let Some((field, _)) = checks.iter().find(|(_, set)| *set) {
            return Err(unsupported(field, "not implemented"));
        }
        if let Some(memory) = resources.memory() {
            let checks: [(&str, bool); 6] = [
                (
                    "linux.resources.memory.reservation",
                    memory.reservation().is_some(),
                ),
                ("linux.resources.memory.kernel", memory.kernel().is_some()),
                (
                    "linux.resources.memory.kernelTCP",
                    memory.kernel_tcp().is_some(),
                ),
                (
                    "linux.resources.memory.swappiness",
                    memory.swappiness().is_some(),
                ),
                (
                    "linux.resources.memory.disableOOMKiller",
                    memory.disable_oom_killer() == Some(true),
                ),
                (
                    "linux.resources.memory.checkBeforeUpdate",
                    memory.check_before_update() == Some(true),
                ),
            ];
            if let Some((field, _)) = checks.iter().find(|(_, set)| *set) {
                return Err(unsupported(field, "not implemented"));
            }
        }
        if let Some(cpu) = resources.cpu() {
            let checks: [(&str, bool); 6] = [
                (
                    "linux.resources.cpu.cpus",
                    cpu.cpus().as_ref().is_some_and(|c| !c.is_empty()),
                ),
                (
                    "linux.resources.cpu.mems",
                    cpu.mems().as_ref().is_some_and(|m| !m.is_empty()),
                ),
                (
                    "linux.resources.cpu.realtimeRuntime",
                    cpu.realtime_runtime().is_some(),
                ),
                (
                    "linux.resources.cpu.realtimePeriod",
                    cpu.realtime_period().is_some(),
                ),
                ("linux.resources.cpu.idle", cpu.idle().is_some()),
                ("linux.resources.cpu.burst", cpu.burst().is_some()),
            ];
            if let Some((field, _)) = checks.iter().find(|(_, set)| *set) {
                return Err(unsupported(field, "not implemented"));
            }
        }
    }
    Ok(())
}
// ANCHOR_END: refuse

impl Plan {
    /// Check `spec` and make the plan; `bundle` is where relative paths start.
    pub fn from_spec(spec: &Spec, bundle: &Path) -> Result<Plan, LabError> {
        check_version(spec.version())?;
        refuse_unsupported(spec)?;
        let root = spec
            .root()
            .as_ref()
            .ok_or_else(|| invalid("config.json: root is missing: no root filesystem".into()))?;
        let rootfs = bundle.join(root.path());
        if !rootfs.is_dir() {
            return Err(LabError::RootfsMissing {
                path: rootfs,
                hint: "root.path in config.json names the root filesystem, relative to the bundle: make it (`lab bundle IMAGE DIR` fills one)".into(),
            });
        }
        let process = spec
            .process()
            .as_ref()
            .ok_or_else(|| invalid("config.json: process is missing: nothing to run".into()))?;
        let process = ProcessPlan::from_oci(process)?;
        let mounts = spec
            .mounts()
            .iter()
            .flatten()
            .map(|mount| MountPlan {
                destination: mount.destination().clone(),
                kind: mount.typ().clone().unwrap_or_else(|| "none".into()),
                source: mount.source().clone(),
                options: mount.options().clone().unwrap_or_default(),
            })
            .collect::<Vec<_>>();
        for mount in &mounts {
            if !mount.destination.is_absolute() {
                return Err(invalid(format!(
                    "config.json: mount destination {:?} must be an absolute path",
                    mount.destination.display()
                )));
            }
        }
        let hooks = spec.hooks().clone().unwrap_or_default();
        let hooks = Hooks {
            prestart: hooks_of(hooks.prestart()),
            create_runtime: hooks_of(hooks.create_runtime()),
            create_container: hooks_of(hooks.create_container()),
            start_container: hooks_of(hooks.start_container()),
            poststart: hooks_of(hooks.poststart()),
            poststop: hooks_of(hooks.poststop()),
        };
        let mut plan = Plan {
            rootfs,
            readonly_root: root.readonly().unwrap_or(false),
            hostname: spec.hostname().clone(),
            domainname: spec.domainname().clone(),
            process,
            mounts,
            namespaces: Vec::new(),
            uid_maps: Vec::new(),
            gid_maps: Vec::new(),
            devices: Vec::new(),
            device_rules: Vec::new(),
            limits: Limits::default(),
            cgroups_path: None,
            masked_paths: Vec::new(),
            readonly_paths: Vec::new(),
            seccomp: None,
            sysctl: Vec::new(),
            rootfs_propagation: None,
            hooks,
            annotations: spec
                .annotations()
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect(),
        };
        if let Some(linux) = spec.linux() {
            plan.read_linux(linux)?;
        }
        if plan.hostname.is_some() && !plan.has_new(NamespaceKind::Uts) {
            return Err(invalid(
                "config.json: hostname is set but the container has no UTS namespace of its own"
                    .into(),
            ));
        }
        Ok(plan)
    }

    fn read_linux(&mut self, linux: &oci_spec::runtime::Linux) -> Result<(), LabError> {
        for namespace in linux.namespaces().iter().flatten() {
            let kind = match namespace.typ() {
                LinuxNamespaceType::User => NamespaceKind::User,
                LinuxNamespaceType::Mount => NamespaceKind::Mount,
                LinuxNamespaceType::Pid => NamespaceKind::Pid,
                LinuxNamespaceType::Network => NamespaceKind::Network,
                LinuxNamespaceType::Ipc => NamespaceKind::Ipc,
                LinuxNamespaceType::Uts => NamespaceKind::Uts,
                LinuxNamespaceType::Cgroup => NamespaceKind::Cgroup,
                LinuxNamespaceType::Time => {
                    return Err(unsupported(
                        "linux.namespaces time",
                        "time namespaces are not implemented",
                    ));
                }
            };
            if self.namespaces.iter().any(|n| n.kind == kind) {
                return Err(invalid(format!(
                    "config.json: linux.namespaces lists {kind:?} twice"
                )));
            }
            self.namespaces.push(NamespacePlan {
                kind,
                path: namespace.path().clone(),
            });
        }
        if !self
            .namespaces
            .iter()
            .any(|n| n.kind == NamespaceKind::Mount)
        {
            return Err(unsupported(
                "linux.namespaces without mount",
                "the root filesystem is put in place in a mount namespace of the container's own",
            ));
        }
        self.uid_maps = maps(linux.uid_mappings());
        self.gid_maps = maps(linux.gid_mappings());
        let new_user = self.has_new(NamespaceKind::User);
        if new_user && (self.uid_maps.is_empty() || self.gid_maps.is_empty()) {
            return Err(invalid(
                "config.json: a new user namespace needs linux.uidMappings and linux.gidMappings"
                    .into(),
            ));
        }
        let mapped = !(self.uid_maps.is_empty() && self.gid_maps.is_empty());
        if mapped && !self.has(NamespaceKind::User) {
            return Err(invalid(
                "config.json: linux.uidMappings without a user namespace".into(),
            ));
        }
        for device in linux.devices().iter().flatten() {
            let kind = serde_json::to_value(device.typ())
                .ok()
                .and_then(|v| v.as_str().and_then(|s| s.chars().next()))
                .unwrap_or('c');
            self.devices.push(DeviceNode {
                path: device.path().clone(),
                kind,
                major: device.major(),
                minor: device.minor(),
                mode: device.file_mode().unwrap_or(0o666),
                uid: device.uid().unwrap_or(0),
                gid: device.gid().unwrap_or(0),
            });
        }
        if let Some(resources) = linux.resources() {
            for rule in resources.devices().iter().flatten() {
                let kind = rule
                    .typ()
                    .and_then(|t| serde_json::to_value(t).ok())
                    .and_then(|v| v.as_str().and_then(|s| s.chars().next()))
                    .unwrap_or('a');
                self.device_rules.push(DeviceRule {
                    allow: rule.allow(),
                    kind,
                    major: rule.major(),
                    minor: rule.minor(),
                    access: rule.access().clone().unwrap_or_else(|| "rwm".into()),
                });
            }
            self.limits = limits_of(resources)?;
        }
        self.cgroups_path = linux
            .cgroups_path()
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned());
        self.masked_paths = linux.masked_paths().clone().unwrap_or_default();
        self.readonly_paths = linux.readonly_paths().clone().unwrap_or_default();
        if let Some(seccomp) = linux.seccomp() {
            let value = serde_json::to_value(seccomp)
                .map_err(|e| invalid(format!("config.json: linux.seccomp: {e}")))?;
            let profile: Profile = serde_json::from_value(value)
                .map_err(|e| invalid(format!("config.json: linux.seccomp: {e}")))?;
            self.seccomp = Some(profile);
        }
        let mut sysctl: Vec<(String, String)> = linux
            .sysctl()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        sysctl.sort();
        for (key, _) in &sysctl {
            check_sysctl(key, self)?;
        }
        self.sysctl = sysctl;
        self.rootfs_propagation = linux.rootfs_propagation().clone();
        if let Some(propagation) = &self.rootfs_propagation
            && propagation_flag(propagation).is_none()
        {
            return Err(invalid(format!(
                "config.json: linux.rootfsPropagation {propagation:?} is not one of shared, slave, private, unbindable (r-prefixed too)"
            )));
        }
        Ok(())
    }

    /// Whether the container gets a new namespace of `kind` (not one
    /// joined by path, not the host's).
    pub fn has_new(&self, kind: NamespaceKind) -> bool {
        self.namespaces
            .iter()
            .any(|n| n.kind == kind && n.path.is_none())
    }

    /// Whether the container has a namespace of `kind` apart from the
    /// runtime's, new or joined.
    pub fn has(&self, kind: NamespaceKind) -> bool {
        self.namespaces.iter().any(|n| n.kind == kind)
    }
}

/// A propagation option's flag (`rslave` is MS_SLAVE|MS_REC).
pub fn propagation_flag(name: &str) -> Option<MsFlags> {
    let (recursive, base) = match name.strip_prefix('r') {
        Some(rest) if ["shared", "slave", "private", "unbindable"].contains(&rest) => (true, rest),
        _ => (false, name),
    };
    let flag = match base {
        "shared" => MsFlags::MS_SHARED,
        "slave" => MsFlags::MS_SLAVE,
        "private" => MsFlags::MS_PRIVATE,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        _ => return None,
    };
    Some(match recursive {
        true => flag | MsFlags::MS_REC,
        false => flag,
    })
}

/// `linux.resources` memory, cpu and pids as chapter 06's budget.
fn limits_of(resources: &oci_spec::runtime::LinuxResources) -> Result<Limits, LabError> {
    let mut limits = Limits {
        freezable: true,
        ..Limits::default()
    };
    if let Some(memory) = resources.memory() {
        // -1 (or nothing) means no limit, as in the specification.
        limits.memory_bytes = memory.limit().filter(|l| *l > 0).map(|l| l as u64);
        if let (Some(swap), Some(limit)) = (memory.swap().filter(|s| *s > 0), memory.limit())
            && swap != limit
        {
            return Err(unsupported(
                "linux.resources.memory.swap",
                "chapter 06 allows no swap beyond the limit (swap must equal limit, or be unset)",
            ));
        }
    }
    if let Some(cpu) = resources.cpu() {
        if let Some(quota) = cpu.quota().filter(|q| *q > 0) {
            let period = cpu.period().unwrap_or(100_000).max(1);
            limits.cpus = Some(quota as f64 / period as f64);
        }
        // v1's shares (1024 = default) as v2's weight (100 = default).
        if let Some(shares) = cpu.shares().filter(|s| *s > 0) {
            limits.cpu_weight = Some((shares * 100 / 1024).clamp(1, 10_000));
        }
    }
    if let Some(pids) = resources.pids()
        && pids.limit() > 0
    {
        limits.pids = Some(pids.limit() as u64);
    }
    Ok(limits)
}

/// sysctls a container may set: those the kernel keeps per namespace
/// (the IPC namespace's kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*;
/// the network namespace's net.*; the UTS namespace's names), as runc's
/// validator allows.
fn check_sysctl(key: &str, plan: &Plan) -> Result<(), LabError> {
    let ipc = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let allowed = if ipc.contains(&key) || key.starts_with("fs.mqueue.") {
        plan.has(NamespaceKind::Ipc)
    } else if key.starts_with("net.") {
        plan.has(NamespaceKind::Network)
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        plan.has(NamespaceKind::Uts)
    } else {
        false
    };
    match allowed {
        true => Ok(()),
        false => Err(unsupported(
            &format!("linux.sysctl {key}"),
            "only sysctls the kernel keeps per namespace, for a namespace the container has of its own, may be set",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"{
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs"},
        "process": {"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
        "linux": {"namespaces": [{"type": "mount"}, {"type": "pid"}]}
    }"#;

    fn bundle_with(config: &str) -> (tempdir::Dir, Result<Bundle, LabError>) {
        let dir = tempdir::Dir::new();
        std::fs::create_dir(dir.0.join("rootfs")).unwrap();
        std::fs::write(dir.0.join("config.json"), config).unwrap();
        let loaded = Bundle::load(&dir.0);
        (dir, loaded)
    }

    mod tempdir {
        pub struct Dir(pub std::path::PathBuf);
        impl Dir {
            pub fn new() -> Dir {
                use std::sync::atomic::{AtomicU32, Ordering};
                static NEXT: AtomicU32 = AtomicU32::new(0);
                let path = std::env::temp_dir().join(format!(
                    "lab-oci-config-{}-{}",
                    std::process::id(),
                    NEXT.fetch_add(1, Ordering::SeqCst)
                ));
                std::fs::create_dir_all(&path).unwrap();
                Dir(path)
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    #[test]
    fn a_minimal_bundle_loads() {
        let (_dir, bundle) = bundle_with(MINIMAL);
        let plan = bundle.unwrap().plan;
        assert_eq!(plan.process.args, ["sh"]);
        assert!(plan.has_new(NamespaceKind::Pid));
        assert!(!plan.has(NamespaceKind::Network));
    }

    #[test]
    fn bad_json_names_line_and_column() {
        let (_dir, bundle) = bundle_with("{\"ociVersion\": \"1.0.2\",\n \"root\": 7}");
        let message = bundle.err().unwrap().to_string();
        assert!(message.contains("line 2"), "{message}");
        assert!(message.contains("root"), "{message}");
    }

    #[test]
    fn another_major_version_is_refused() {
        let (_dir, bundle) = bundle_with(&MINIMAL.replace("1.0.2", "2.0.0"));
        let message = bundle.err().unwrap().to_string();
        assert!(message.contains("ociVersion \"2.0.0\""), "{message}");
    }

    #[test]
    fn unsupported_fields_are_refused_by_name() {
        let config = MINIMAL.replace(
            r#""linux": {"#,
            r#""linux": {"intelRdt": {"closID": "x"}, "#,
        );
        let (_dir, bundle) = bundle_with(&config);
        let message = bundle.err().unwrap().to_string();
        assert!(message.contains("linux.intelRdt"), "{message}");
        let config = MINIMAL.replace(
            r#""linux": {"#,
            r#""linux": {"resources": {"blockIO": {"weight": 10}}, "#,
        );
        let (_dir, bundle) = bundle_with(&config);
        let message = bundle.err().unwrap().to_string();
        assert!(message.contains("linux.resources.blockIO"), "{message}");
    }

    #[test]
    fn a_missing_rootfs_and_a_missing_config_say_so() {
        let dir = tempdir::Dir::new();
        let message = Bundle::load(&dir.0).err().unwrap().to_string();
        assert!(message.contains("config.json not found"), "{message}");
        std::fs::write(dir.0.join("config.json"), MINIMAL).unwrap();
        let message = Bundle::load(&dir.0).err().unwrap().to_string();
        assert!(message.contains("rootfs"), "{message}");
    }

    #[test]
    fn host_sysctls_are_refused_and_namespaced_ones_taken() {
        let config = MINIMAL.replace(
            r#""linux": {"#,
            r#""linux": {"sysctl": {"kernel.panic": "1"}, "#,
        );
        let (_dir, bundle) = bundle_with(&config);
        assert!(bundle.err().unwrap().to_string().contains("kernel.panic"));
        let config = MINIMAL
            .replace(
                r#""linux": {"#,
                r#""linux": {"sysctl": {"net.ipv4.ip_forward": "0"}, "#,
            )
            .replace(
                r#"{"type": "pid"}"#,
                r#"{"type": "pid"}, {"type": "network"}"#,
            );
        let (_dir, bundle) = bundle_with(&config);
        assert_eq!(
            bundle.unwrap().plan.sysctl,
            [("net.ipv4.ip_forward".to_string(), "0".to_string())]
        );
    }

    #[test]
    fn resources_become_chapter_06_limits() {
        let config = MINIMAL.replace(
            r#""linux": {"#,
            r#""linux": {"resources": {"memory": {"limit": 67108864}, "cpu": {"quota": 50000, "period": 100000, "shares": 512}, "pids": {"limit": 64}}, "#,
        );
        let (_dir, bundle) = bundle_with(&config);
        let limits = bundle.unwrap().plan.limits;
        assert_eq!(limits.memory_bytes, Some(64 << 20));
        assert_eq!(limits.cpus, Some(0.5));
        assert_eq!(limits.cpu_weight, Some(50));
        assert_eq!(limits.pids, Some(64));
    }
}
