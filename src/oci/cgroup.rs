//! config.json's `linux.cgroupsPath` and `linux.resources`: chapter 06's
//! cgroup, made where the engine says, with the device rules of the v1
//! devices controller.
//!
//! Engines name the cgroup (`/default/ID` from containerd,
//! `/libpod_parent/libpod-ID` from podman) so that they can find its
//! statistics; the runtime makes it, writes the budget, and leaves it to
//! `delete`. `systemd` paths (`slice:prefix:name`) are refused: this
//! runtime writes cgroupfs itself.

use crate::error::LabError;
use crate::narrator::Narrator;
use crate::oci::config::{DeviceRule, Plan};
use crate::runtime::cgroups::ContainerCgroup;

/// The cgroup of a container whose config.json names none.
pub fn default_path(id: &str) -> String {
    format!("/container-lab-oci/{id}")
}

/// Devices every container may use whatever config.json says, as runc
/// appends them: mknod of any node (opening is what is checked), the
/// standard six, the pty master and slaves, /dev/net/tun.
const ALWAYS_ALLOWED: [(char, Option<i64>, Option<i64>, &str); 11] = [
    ('c', None, None, "m"),
    ('b', None, None, "m"),
    ('c', Some(1), Some(3), "rwm"),
    ('c', Some(1), Some(5), "rwm"),
    ('c', Some(1), Some(7), "rwm"),
    ('c', Some(1), Some(8), "rwm"),
    ('c', Some(1), Some(9), "rwm"),
    ('c', Some(5), Some(0), "rwm"),
    ('c', Some(5), Some(2), "rwm"),
    ('c', Some(136), None, "rwm"),
    ('c', Some(10), Some(200), "rwm"),
];

// ANCHOR: create
/// Make the container's cgroup and write its budget and device rules.
pub fn create(narrator: &Narrator, plan: &Plan, id: &str) -> Result<ContainerCgroup, LabError> {
    let path = plan
        .cgroups_path
        .clone()
        .unwrap_or_else(|| default_path(id));
    if path.trim_matches('/').is_empty() || path.split('/').any(|part| part == "..") {
        return Err(LabError::Refused {
            message: format!("linux.cgroupsPath {path:?} names no cgroup of the container's own"),
            hint: "give a path below the hierarchy's root, without `..`".into(),
        });
    }
    if path.contains(':') {
        return Err(LabError::Refused {
            message: format!("linux.cgroupsPath {path:?} is a systemd path (slice:prefix:name)"),
            hint: "configure the engine for cgroupfs paths (podman --cgroup-manager=cgroupfs; containerd: SystemdCgroup = false)".into(),
        });
    }
    // memory, cpu and pids even without a budget: engines read the
    // container's usage there (`podman stats`, `ctr task metrics`).
    let mut limits = plan.limits.clone();
    limits.freezable = true;
    limits.account = true;
    let cgroup = ContainerCgroup::create_at(narrator, &limits, &path, &["devices"])?;
    // Every device is refused but those listed: a config.json with no
    // rules (runc's `spec` has one) gets the always-allowed ones only, as
    // runc gives it, never the parent's allow-all.
    let mut rules = vec![DeviceRule {
        allow: false,
        kind: 'a',
        major: None,
        minor: None,
        access: "rwm".into(),
    }];
    rules.extend(plan.device_rules.iter().cloned());
    write_device_rules(narrator, &cgroup, &rules)?;
    Ok(cgroup)
}
// ANCHOR_END: create

/// `type major:minor access`, as devices.allow and devices.deny read it.
pub fn rule_line(rule: &DeviceRule) -> String {
    let number = |n: Option<i64>| n.map_or("*".to_string(), |n| n.to_string());
    format!(
        "{} {}:{} {}",
        rule.kind,
        number(rule.major),
        number(rule.minor),
        rule.access
    )
}

// ANCHOR: devices
/// config.json's device rules, then the always-allowed ones: on cgroup v1
/// written to the devices controller's files in order (a deny-all first,
/// as engines send, empties the allow list); on cgroup v2, which has no
/// such files, compiled into an eBPF program (`device_filter`).
fn write_device_rules(
    narrator: &Narrator,
    cgroup: &ContainerCgroup,
    rules: &[DeviceRule],
) -> Result<(), LabError> {
    let mut all = rules.to_vec();
    all.extend(
        ALWAYS_ALLOWED
            .iter()
            .map(|&(kind, major, minor, access)| DeviceRule {
                allow: true,
                kind,
                major,
                minor,
                access: access.into(),
            }),
    );
    if cgroup.is_unified() {
        let dir = cgroup.dir_of("devices").unwrap_or_default();
        let args = format!(
            "BPF_PROG_LOAD BPF_PROG_TYPE_CGROUP_DEVICE ({} rules), BPF_PROG_ATTACH {:?}",
            all.len(),
            dir.display().to_string()
        );
        // The verifier's words, if it refuses, are worth more than errno.
        let mut refused = None;
        let attached = narrator.run(
            crate::narrator::Step {
                syscall: "bpf",
                args: &args,
                why: "cgroup v2 checks device access with an eBPF program: only the listed devices open",
                man: "bpf(2)",
            },
            || {
                crate::oci::device_filter::attach(&dir, &all).map_err(|error| {
                    refused = Some(error);
                    nix::errno::Errno::EINVAL
                })
            },
        );
        return match refused {
            Some(error) => Err(error),
            None => attached,
        };
    }
    let Some(dir) = cgroup.dir_of("devices") else {
        return Err(LabError::Refused {
            message: "linux.resources.devices: this host has no v1 devices controller".into(),
            hint: "run `lab doctor` to see the controllers this machine has".into(),
        });
    };
    for rule in &all {
        let file = dir.join(if rule.allow {
            "devices.allow"
        } else {
            "devices.deny"
        });
        crate::runtime::cgroups::write(
            narrator,
            &file,
            &rule_line(rule),
            "config.json's device rule: which device nodes the container may open",
        )?;
    }
    Ok(())
}
// ANCHOR_END: devices

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_read_as_the_kernel_reads_them() {
        let rule = DeviceRule {
            allow: false,
            kind: 'a',
            major: None,
            minor: None,
            access: "rwm".into(),
        };
        assert_eq!(rule_line(&rule), "a *:* rwm");
        let rule = DeviceRule {
            allow: true,
            kind: 'c',
            major: Some(10),
            minor: Some(229),
            access: "rw".into(),
        };
        assert_eq!(rule_line(&rule), "c 10:229 rw");
    }
}
