//! Capabilities: the pieces root's power is split into (capabilities(7)).
//!
//! The runtime checks the one a chapter needs before it starts, so a user who
//! forgot sudo gets one clear sentence instead of an EPERM half-way through.

use crate::error::LabError;

/// CAP_SYS_CHROOT, needed for chroot(2).
pub const CAP_SYS_CHROOT: Capability = Capability {
    number: 18,
    name: "CAP_SYS_CHROOT",
};

/// CAP_SYS_ADMIN, needed for unshare(2) of most namespaces and mount(2).
pub const CAP_SYS_ADMIN: Capability = Capability {
    number: 21,
    name: "CAP_SYS_ADMIN",
};

#[derive(Clone, Copy, Debug)]
pub struct Capability {
    pub number: u32,
    pub name: &'static str,
}

/// Parse the `CapEff:` line of /proc/self/status (a hex bit mask).
pub fn effective_from_status(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("CapEff:"))?;
    u64::from_str_radix(line["CapEff:".len()..].trim(), 16).ok()
}

/// Fail unless this process holds `capability` in its effective set.
pub fn require(capability: Capability, needed_for: &'static str) -> Result<(), LabError> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    // If /proc cannot tell us, try anyway: the syscall will say.
    let effective = effective_from_status(&status).unwrap_or(u64::MAX);
    if effective & (1 << capability.number) != 0 {
        return Ok(());
    }
    Err(LabError::MissingCapability {
        capability: capability.name,
        needed_for,
        command_line: crate::command_line(),
    })
}

// ANCHOR: drop_chroot
/// Remove `capability` from the bounding set (prctl(2) PR_CAPBSET_DROP):
/// no program this process executes can ever hold it again, not even root's.
pub fn drop_from_bounding_set(
    narrator: &crate::narrator::Narrator,
    capability: Capability,
    why: &str,
) -> Result<(), LabError> {
    let args = format!("PR_CAPBSET_DROP, {}", capability.name);
    narrator.run(
        crate::narrator::Step {
            syscall: "prctl",
            args: &args,
            why,
            man: "prctl(2)",
        },
        || {
            // SAFETY: PR_CAPBSET_DROP takes the capability number only.
            let result = unsafe {
                libc::prctl(
                    libc::PR_CAPBSET_DROP,
                    capability.number as libc::c_ulong,
                    0,
                    0,
                    0,
                )
            };
            if result < 0 {
                Err(nix::errno::Errno::last())
            } else {
                Ok(())
            }
        },
    )
}
// ANCHOR_END: drop_chroot

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cap_eff() {
        let status = "Name:\tsh\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n";
        assert_eq!(effective_from_status(status), Some(0x1ff_ffff_ffff));
        assert_eq!(effective_from_status("Name:\tsh\n"), None);
    }

    #[test]
    fn unprivileged_mask_lacks_chroot() {
        let status = "CapEff:\t0000000000000000\n";
        let mask = effective_from_status(status).unwrap();
        assert_eq!(mask & (1 << CAP_SYS_CHROOT.number), 0);
    }
}
