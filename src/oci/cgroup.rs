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
const ALWAYS_ALLOWED: [&str; 11] = [
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c 5:0 rwm",
    "c 5:2 rwm",
    "c 136:* rwm",
    "c 10:200 rwm",
];

// ANCHOR: create
/// Make the container's cgroup and write its budget and device rules.
pub fn create(narrator: &Narrator, plan: &Plan, id: &str) -> Result<ContainerCgroup, LabError> {
    let path = plan
        .cgroups_path
        .clone()
        .unwrap_or_else(|| default_path(id));
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
    if !plan.device_rules.is_empty() {
        write_device_rules(narrator, &cgroup, &plan.device_rules)?;
    }
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
/// cgroup v1's device controller: the rules in order (a deny-all first,
/// as engines send, empties the allow list), then the always-allowed
/// ones. cgroup v2 has no such files: its device rules are an eBPF
/// program, which this runtime does not build, so there they are refused.
fn write_device_rules(
    narrator: &Narrator,
    cgroup: &ContainerCgroup,
    rules: &[DeviceRule],
) -> Result<(), LabError> {
    if cgroup.is_unified() {
        return Err(LabError::Refused {
            message: "linux.resources.devices on cgroup v2 needs a BPF_PROG_TYPE_CGROUP_DEVICE program, which this runtime does not build yet".into(),
            hint: "remove linux.resources.devices from config.json, or run on a cgroup v1 host".into(),
        });
    }
    let Some(dir) = cgroup.dir_of("devices") else {
        return Err(LabError::Refused {
            message: "linux.resources.devices: this host has no v1 devices controller".into(),
            hint: "run `lab doctor` to see the controllers this machine has".into(),
        });
    };
    let mut lines: Vec<(bool, String)> = rules.iter().map(|r| (r.allow, rule_line(r))).collect();
    lines.extend(ALWAYS_ALLOWED.iter().map(|line| (true, line.to_string())));
    for (allow, line) in lines {
        let file = dir.join(if allow {
            "devices.allow"
        } else {
            "devices.deny"
        });
        crate::runtime::cgroups::write(
            narrator,
            &file,
            &line,
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
