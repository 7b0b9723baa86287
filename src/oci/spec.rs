//! The default `config.json`: what `ch10-oci spec` writes into a bundle,
//! as `runc spec` does, and what `lab bundle` starts from.
//!
//! The shape is runc's (1.1): one shell on a terminal as root, in new
//! pid, network, ipc, uts and mount namespaces, on a read-only `rootfs`,
//! with /proc, a tmpfs /dev and its friends, a read-only /sys and cgroup
//! tree. The values are the lab's wherever the lab has decided them in an
//! earlier chapter, so a bundle run by runc holds what a chapter 09
//! container holds, but for the user namespace, which runc's default
//! (and podman's, and containerd's) leaves out and so does this one
//! (`--rootless` has one; the tour adds chapter 09's):
//!
//! - **capabilities**: chapter 09's default (Docker's list without
//!   CAP_NET_RAW and CAP_SYS_CHROOT, `caps::CapSet::container_default`),
//!   not runc's three (AUDIT_WRITE, KILL, NET_BIND_SERVICE): one list for
//!   the whole lab, and the one its scorecard measured;
//! - **masked and read-only paths**: chapter 09's lists (`masks.rs`);
//! - **seccomp**: chapter 09's built-in profile (Docker's default
//!   decisions), resolved for this machine as Docker's daemon resolves a
//!   profile before it hands it to runc (see [`oci_seccomp`]); runc's own
//!   default has none;
//! - **namespaces**: runc's five and a cgroup namespace, which the lab's
//!   chapters have given every container since chapter 06.
//!
//! Fields use oci-spec's typed builders, so what is written is what the
//! runtime spec's schema allows, and what a runtime reads back with the
//! same crate.

use crate::error::LabError;
use crate::oci::config::OCI_VERSION;
use crate::runtime::caps::CapSet;
use crate::runtime::command::DEFAULT_PATH;
use crate::runtime::masks;
use crate::runtime::seccomp::{GoArch, Profile, Scope, SyscallRule, Target};
use oci_spec::OciSpecError;
use oci_spec::runtime::{
    Arch, Capabilities, Capability, LinuxBuilder, LinuxCapabilitiesBuilder,
    LinuxDeviceCgroupBuilder, LinuxIdMappingBuilder, LinuxNamespaceBuilder, LinuxNamespaceType,
    LinuxResourcesBuilder, LinuxSeccomp, Mount, MountBuilder, PosixRlimitBuilder, PosixRlimitType,
    ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
};

/// The container's hostname, named for the chapter (runc's is `runc`).
pub const HOSTNAME: &str = "ch10";

/// Where the root filesystem is, relative to the bundle.
pub const ROOTFS_DIR: &str = "rootfs";

/// The environment of the default process: runc's, with the PATH every
/// chapter gives its containers.
pub fn default_env() -> Vec<String> {
    vec![format!("PATH={DEFAULT_PATH}"), "TERM=xterm".to_string()]
}

// ANCHOR: default_spec
/// The default config.json, as `runc spec` (or `runc spec --rootless`)
/// would write it with the lab's choices (see the module doc).
///
/// Rootless, the caller's own uid and gid stand for root in a user
/// namespace of the container's own, as runc does it, and so:
/// - no network namespace: runc leaves it out, since an unprivileged user
///   cannot plumb a link into a new one (chapter 05 asks pasta to; runc
///   asks nothing, and the container shares the host's network);
/// - /sys is a recursive bind of the host's: sysfs can be mounted only by
///   the owner of the network namespace, which a rootless container does
///   not have;
/// - /dev/pts has no `gid=5`: group 5 (tty) is not mapped in;
/// - no device cgroup: an unprivileged user cannot write one; the user
///   namespace keeps device nodes closed instead (a filesystem mounted in
///   it is `nodev`).
///
/// The cgroup mount stays in both: runc 1.1 keeps it rootless too, and
/// with the container's own cgroup namespace the kernel lets the user
/// namespace's root mount it (cgroup2 is mountable in a user namespace
/// since Linux 4.6).
pub fn default_spec(rootless: bool) -> Result<Spec, LabError> {
    let caller = rootless.then(|| {
        (
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        )
    });
    spec_mapping(caller)
}
// ANCHOR_END: default_spec

/// The default spec; with `Some((uid, gid))`, rootless, with those host
/// ids standing for root.
fn spec_mapping(rootless: Option<(u32, u32)>) -> Result<Spec, LabError> {
    let capability_names = CapSet::container_default().names();
    let capabilities = oci_capabilities(&capability_names)?;
    let process = built(
        "process",
        ProcessBuilder::default()
            .terminal(true)
            .user(built(
                "process.user",
                UserBuilder::default().uid(0u32).gid(0u32).build(),
            )?)
            .args(vec!["sh".to_string()])
            .env(default_env())
            .cwd("/")
            .capabilities(process_capabilities(capabilities)?)
            .rlimits(vec![built(
                "process.rlimits",
                PosixRlimitBuilder::default()
                    .typ(PosixRlimitType::RlimitNofile)
                    .hard(1024u64)
                    .soft(1024u64)
                    .build(),
            )?])
            .no_new_privileges(true)
            .build(),
    )?;
    let root = built(
        "root",
        RootBuilder::default()
            .path(ROOTFS_DIR)
            .readonly(true)
            .build(),
    )?;
    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces(rootless.is_some())?)
        .masked_paths(masks::MASKED.map(String::from).to_vec())
        .readonly_paths(masks::READ_ONLY.map(String::from).to_vec());
    match rootless {
        Some((uid, gid)) => {
            let root_is = |host_id: u32| {
                built(
                    "linux.uidMappings",
                    LinuxIdMappingBuilder::default()
                        .container_id(0u32)
                        .host_id(host_id)
                        .size(1u32)
                        .build(),
                )
            };
            linux = linux
                .uid_mappings(vec![root_is(uid)?])
                .gid_mappings(vec![root_is(gid)?]);
        }
        None => {
            // Chapter 09 keeps CAP_MKNOD (Docker's list), and /dev is a
            // tmpfs without `nodev`: without a user namespace, only the
            // device cgroup stops root inside from making /dev/sda and
            // reading the host's disk. runc allows the few devices every
            // container has (null, zero, tty, ...) on top of this rule.
            let deny_all_devices = built(
                "linux.resources.devices",
                LinuxDeviceCgroupBuilder::default()
                    .allow(false)
                    .access("rwm")
                    .build(),
            )?;
            linux = linux.resources(built(
                "linux.resources",
                LinuxResourcesBuilder::default()
                    .devices(vec![deny_all_devices])
                    .build(),
            )?);
        }
    }
    if let Some(seccomp) = lab_seccomp(&capability_names)? {
        linux = linux.seccomp(seccomp);
    }
    let mut linux = built("linux", linux.build())?;
    let mut spec = built(
        "config.json",
        SpecBuilder::default()
            .version(OCI_VERSION)
            .process(process)
            .root(root)
            .hostname(HOSTNAME)
            .mounts(mounts(rootless.is_some())?)
            .build(),
    )?;
    // oci-spec's builders start from the crate's own defaults (youki's),
    // not from nothing: an empty device list rootless, an empty map of
    // annotations. What the lab leaves out is cleared by hand.
    if rootless.is_some() {
        linux.set_resources(None);
    }
    spec.set_linux(Some(linux));
    spec.set_annotations(None);
    Ok(spec)
}

/// Bounding, effective and permitted: the list; inheritable and ambient
/// stay empty, as chapter 09 leaves them (a capability in the ambient set
/// would stay with a non-root user's program across execve).
fn process_capabilities(
    capabilities: Capabilities,
) -> Result<oci_spec::runtime::LinuxCapabilities, LabError> {
    let mut sets = built(
        "process.capabilities",
        LinuxCapabilitiesBuilder::default()
            .bounding(capabilities.clone())
            .effective(capabilities.clone())
            .permitted(capabilities)
            .build(),
    )?;
    // The builder starts from oci-spec's default, which holds runc's three
    // capabilities in these two sets as well.
    sets.set_inheritable(None);
    sets.set_ambient(None);
    Ok(sets)
}

/// `spec` as the text of a config.json: pretty, as runc writes it, and the
/// same text for the same spec (oci-spec keeps capabilities in a hash
/// set, whose order changes from one run to the next: they are sorted).
pub fn to_json(spec: &Spec) -> Result<String, LabError> {
    let mut json =
        serde_json::to_value(spec).map_err(|error| config_error("config.json", error))?;
    if let Some(sets) = json
        .pointer_mut("/process/capabilities")
        .and_then(|sets| sets.as_object_mut())
    {
        for set in sets.values_mut().filter_map(|set| set.as_array_mut()) {
            set.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
        }
    }
    let mut text =
        serde_json::to_string_pretty(&json).map_err(|error| config_error("config.json", error))?;
    text.push('\n');
    Ok(text)
}

/// oci-spec's builders refuse only fields that contradict each other (a
/// mount's uid maps without gid maps); the lab's own values never do, but
/// a refusal is still an error, never a panic.
fn built<T>(field: &str, result: Result<T, OciSpecError>) -> Result<T, LabError> {
    result.map_err(|error| config_error(field, error))
}

/// Capability names as the lab writes them (`CAP_CHOWN`) as oci-spec's
/// set, read the way a config.json's names are read.
fn oci_capabilities(names: &[&str]) -> Result<Capabilities, LabError> {
    names
        .iter()
        .map(|name| {
            serde_json::from_value::<Capability>(serde_json::Value::from(*name))
                .map_err(|error| config_error(&format!("capability {name}"), error))
        })
        .collect()
}

/// pid, network, ipc, uts, mount (runc's order) and cgroup; rootless, a
/// user namespace instead of the network one.
fn namespaces(rootless: bool) -> Result<Vec<oci_spec::runtime::LinuxNamespace>, LabError> {
    let mut kinds = vec![
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Network,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Cgroup,
    ];
    if rootless {
        kinds.retain(|kind| *kind != LinuxNamespaceType::Network);
        kinds.push(LinuxNamespaceType::User);
    }
    kinds
        .into_iter()
        .map(|kind| {
            built(
                "linux.namespaces",
                LinuxNamespaceBuilder::default().typ(kind).build(),
            )
        })
        .collect()
}

/// One mount, options as mount(8) spells them.
fn mount(destination: &str, kind: &str, source: &str, options: &[&str]) -> Result<Mount, LabError> {
    let mut builder = MountBuilder::default()
        .destination(destination)
        .typ(kind)
        .source(source);
    if !options.is_empty() {
        builder = builder.options(options.iter().map(|o| o.to_string()).collect::<Vec<_>>());
    }
    built(&format!("mounts {destination}"), builder.build())
}

/// The mounts of chapter 03's /proc, /dev and /sys, as runc lists them.
fn mounts(rootless: bool) -> Result<Vec<Mount>, LabError> {
    // gid=5 is the tty group, which owns every pty's node as on the host.
    let devpts: &[&str] = match rootless {
        false => &[
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620",
            "gid=5",
        ],
        true => &[
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620",
        ],
    };
    let sys = match rootless {
        false => mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        )?,
        true => mount(
            "/sys",
            "none",
            "/sys",
            &["rbind", "nosuid", "noexec", "nodev", "ro"],
        )?,
    };
    Ok(vec![
        mount("/proc", "proc", "proc", &[])?,
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        mount("/dev/pts", "devpts", "devpts", devpts)?,
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        )?,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
        sys,
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", "ro"],
        )?,
    ])
}

/// Chapter 09's built-in profile for a container holding `capabilities`
/// on this machine; none where the lab has no syscall table (it compiles
/// filters for x86_64 and aarch64 only, and a bundle elsewhere runs
/// without one, as chapter 09 could not filter there either).
fn lab_seccomp(capabilities: &[&str]) -> Result<Option<LinuxSeccomp>, LabError> {
    let Ok(target) = Target::here(capabilities) else {
        return Ok(None);
    };
    oci_seccomp(&Profile::docker_default(), &target).map(Some)
}

// ANCHOR: oci_seccomp
/// A Docker-format profile in the runtime spec's form, for `target`.
///
/// The two formats share their field names (Docker's is OCI's plus a
/// little); what OCI lacks is resolved here, as Docker's daemon resolves
/// it before runc sees a profile: a rule's `includes` and `excludes`
/// (capabilities held, architecture, kernel) decide whether it is in the
/// list at all, and Docker's `archMap` becomes the one native
/// architecture chapter 09 compiles (a call from another one meets the
/// runtime's bad-architecture action).
pub fn oci_seccomp(profile: &Profile, target: &Target<'_>) -> Result<LinuxSeccomp, LabError> {
    let native = match target.arch {
        GoArch::Amd64 => Arch::ScmpArchX86_64,
        GoArch::Arm64 => Arch::ScmpArchAarch64,
        other => {
            return Err(LabError::Refused {
                message: format!("seccomp: no native architecture for {other:?}"),
                hint: "the lab compiles filters for x86_64 and aarch64 only".into(),
            });
        }
    };
    let rules: Vec<SyscallRule> = profile
        .syscalls
        .iter()
        .filter(|rule| rule.applies_to(target))
        .map(|rule| SyscallRule {
            names: rule.all_names().map(String::from).collect(),
            name: None,
            comment: None,
            includes: Scope::default(),
            excludes: Scope::default(),
            ..rule.clone()
        })
        .collect();
    let resolved = Profile {
        architectures: Vec::new(),
        arch_map: Vec::new(),
        syscalls: rules,
        ..profile.clone()
    };
    let mut json = serde_json::to_value(&resolved).map_err(seccomp_error)?;
    json["architectures"] = serde_json::to_value([native]).map_err(seccomp_error)?;
    serde_json::from_value(json).map_err(seccomp_error)
}
// ANCHOR_END: oci_seccomp

fn seccomp_error(error: serde_json::Error) -> LabError {
    config_error("linux.seccomp", error)
}

/// A field of the lab's own making that oci-spec will not take.
fn config_error(field: &str, error: impl std::fmt::Display) -> LabError {
    LabError::Refused {
        message: format!("config.json: {field}: {error}"),
        hint: "this is a bug in the lab: please report it with the command line".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn names(set: &Option<Capabilities>) -> BTreeSet<String> {
        set.iter()
            .flatten()
            .map(|cap| {
                serde_json::to_value(cap)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    }

    fn round_trip(spec: &Spec) -> Spec {
        serde_json::from_str(&to_json(spec).unwrap()).unwrap()
    }

    #[test]
    fn the_default_spec_is_json_that_oci_spec_reads_back() {
        let spec = default_spec(false).unwrap();
        assert_eq!(round_trip(&spec), spec);
        assert_eq!(
            to_json(&spec).unwrap(),
            to_json(&round_trip(&spec)).unwrap()
        );
        let json = serde_json::to_value(&spec).unwrap();
        assert_eq!(json["ociVersion"], "1.0.2");
        assert_eq!(json["process"]["args"], serde_json::json!(["sh"]));
        assert_eq!(json["process"]["terminal"], true);
        assert_eq!(json["process"]["noNewPrivileges"], true);
        assert_eq!(json["process"]["rlimits"][0]["type"], "RLIMIT_NOFILE");
        assert_eq!(
            json["root"],
            serde_json::json!({"path": "rootfs", "readonly": true})
        );
        assert_eq!(json["hostname"], "ch10");
        assert!(json["annotations"].is_null());
        let destinations: Vec<&str> = json["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|mount| mount["destination"].as_str().unwrap())
            .collect();
        assert_eq!(
            destinations,
            [
                "/proc",
                "/dev",
                "/dev/pts",
                "/dev/shm",
                "/dev/mqueue",
                "/sys",
                "/sys/fs/cgroup"
            ]
        );
        let namespaces: Vec<&str> = json["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|ns| ns["type"].as_str().unwrap())
            .collect();
        assert_eq!(
            namespaces,
            ["pid", "network", "ipc", "uts", "mount", "cgroup"]
        );
    }

    #[test]
    fn capabilities_and_masked_paths_are_the_labs_own_lists() {
        let spec = default_spec(false).unwrap();
        let caps = spec
            .process()
            .as_ref()
            .unwrap()
            .capabilities()
            .as_ref()
            .unwrap();
        let lab: BTreeSet<String> = CapSet::container_default()
            .names()
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(lab.len(), 12);
        assert_eq!(names(caps.bounding()), lab);
        assert_eq!(names(caps.effective()), lab);
        assert_eq!(names(caps.permitted()), lab);
        assert!(!lab.contains("CAP_NET_RAW") && !lab.contains("CAP_SYS_CHROOT"));
        assert!(caps.inheritable().is_none() && caps.ambient().is_none());
        let linux = spec.linux().as_ref().unwrap();
        assert_eq!(
            linux.masked_paths().as_deref(),
            Some(&masks::MASKED.map(String::from)[..])
        );
        assert_eq!(
            linux.readonly_paths().as_deref(),
            Some(&masks::READ_ONLY.map(String::from)[..])
        );
    }

    #[test]
    fn rootless_maps_the_caller_to_root_and_drops_what_it_cannot_have() {
        let rootful = serde_json::to_value(spec_mapping(None).unwrap()).unwrap();
        let rootless = spec_mapping(Some((1000, 1001))).unwrap();
        assert_eq!(round_trip(&rootless), rootless);
        let rootless = serde_json::to_value(rootless).unwrap();
        assert_eq!(
            rootless["linux"]["uidMappings"],
            serde_json::json!([{"containerID": 0, "hostID": 1000, "size": 1}])
        );
        assert_eq!(
            rootless["linux"]["gidMappings"],
            serde_json::json!([{"containerID": 0, "hostID": 1001, "size": 1}])
        );
        assert!(rootful["linux"]["uidMappings"].is_null());
        let types = |spec: &serde_json::Value| -> Vec<String> {
            spec["linux"]["namespaces"]
                .as_array()
                .unwrap()
                .iter()
                .map(|ns| ns["type"].as_str().unwrap().to_string())
                .collect()
        };
        assert!(types(&rootful).contains(&"network".to_string()));
        assert!(!types(&rootless).contains(&"network".to_string()));
        assert!(types(&rootless).contains(&"user".to_string()));
        let mount = |spec: &serde_json::Value, destination: &str| {
            spec["mounts"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["destination"] == destination)
                .cloned()
                .unwrap()
        };
        assert_eq!(mount(&rootful, "/sys")["type"], "sysfs");
        assert_eq!(mount(&rootless, "/sys")["type"], "none");
        assert_eq!(mount(&rootless, "/sys")["source"], "/sys");
        assert!(
            mount(&rootless, "/sys")["options"]
                .as_array()
                .unwrap()
                .contains(&"rbind".into())
        );
        assert!(
            mount(&rootful, "/dev/pts")["options"]
                .as_array()
                .unwrap()
                .contains(&"gid=5".into())
        );
        assert!(
            !mount(&rootless, "/dev/pts")["options"]
                .as_array()
                .unwrap()
                .contains(&"gid=5".into())
        );
        assert_eq!(
            rootful["linux"]["resources"]["devices"],
            serde_json::json!([{"allow": false, "access": "rwm"}])
        );
        assert!(rootless["linux"]["resources"].is_null());
    }

    #[test]
    fn the_seccomp_profile_is_resolved_for_the_containers_capabilities() {
        let capabilities = CapSet::container_default().names();
        let target = Target {
            capabilities: &capabilities,
            kernel: (6, 1),
            arch: GoArch::Amd64,
        };
        let seccomp = oci_seccomp(&Profile::docker_default(), &target).unwrap();
        let json = serde_json::to_value(&seccomp).unwrap();
        assert_eq!(json["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(json["defaultErrnoRet"], libc::EPERM);
        assert_eq!(
            json["architectures"],
            serde_json::json!(["SCMP_ARCH_X86_64"])
        );
        let allowed = |name: &str| {
            seccomp.syscalls().iter().flatten().any(|rule| {
                rule.names().iter().any(|n| n == name)
                    && rule.action() == oci_spec::runtime::LinuxSeccompAction::ScmpActAllow
            })
        };
        assert!(allowed("read") && allowed("ptrace") && allowed("arch_prctl"));
        // Guarded by capabilities the container does not hold: not listed.
        assert!(!allowed("mount") && !allowed("chroot") && !allowed("reboot"));
        // clone without namespace flags: allowed with its argument checked.
        let clone = seccomp
            .syscalls()
            .iter()
            .flatten()
            .find(|rule| rule.names() == &["clone".to_string()])
            .unwrap();
        assert!(clone.args().as_ref().is_some_and(|args| args.len() == 1));
        // The same profile for a container given CAP_SYS_ADMIN allows mount.
        let mut admin = capabilities.clone();
        admin.push("CAP_SYS_ADMIN");
        let target = Target {
            capabilities: &admin,
            ..target
        };
        let seccomp = oci_seccomp(&Profile::docker_default(), &target).unwrap();
        assert!(
            seccomp
                .syscalls()
                .iter()
                .flatten()
                .any(|rule| rule.names().iter().any(|n| n == "mount"))
        );
    }

    #[test]
    fn the_seccomp_profile_reads_back_as_a_lab_profile() {
        // What a runtime of the lab will do with it: Docker's format is
        // OCI's plus a little, so the profile parser reads it as is.
        let spec = default_spec(false).unwrap();
        let Some(seccomp) = spec.linux().as_ref().unwrap().seccomp() else {
            return; // an architecture without a syscall table: none written
        };
        let json = serde_json::to_string(seccomp).unwrap();
        let profile = Profile::from_json(&json).unwrap();
        assert!(
            profile
                .compile(&CapSet::container_default().names())
                .is_ok()
        );
    }
}
