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

/// CAP_DAC_READ_SEARCH: read any file whatever its mode, and, alone among
/// capabilities, open a file by its handle with open_by_handle_at(2),
/// from outside any root (the "shocker" escape, 2014).
pub const CAP_DAC_READ_SEARCH: Capability = Capability {
    number: 2,
    name: "CAP_DAC_READ_SEARCH",
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

/// Every capability's name, by number (<linux/capability.h>, up to
/// CAP_CHECKPOINT_RESTORE, Linux 5.9).
const NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Capability `number`, named when this table knows it.
pub fn numbered(number: u32) -> Capability {
    Capability {
        number,
        name: NAMES
            .get(number as usize)
            .copied()
            .unwrap_or("a capability newer than this table"),
    }
}

/// Parse the `CapEff:` line of /proc/self/status (a hex bit mask).
pub fn effective_from_status(status: &str) -> Option<u64> {
    mask_from_status(status, "CapEff:")
}

/// Parse the `CapBnd:` line of /proc/PID/status: the bounding set.
pub fn bounding_from_status(status: &str) -> Option<u64> {
    mask_from_status(status, "CapBnd:")
}

fn mask_from_status(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with(key))?;
    u64::from_str_radix(line[key.len()..].trim(), 16).ok()
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
        command_line: crate::program::command_line(),
    })
}

// ANCHOR: drop_chroot
/// Remove `capability` from the bounding set (prctl(2) PR_CAPBSET_DROP):
/// no program this process executes can ever hold it again, not even
/// root's. Root's capabilities after execve(2) come from the bounding set
/// and the inheritable set (capabilities(7)), so the capability leaves the
/// inheritable and ambient sets too.
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
            let number = capability.number as libc::c_ulong;
            // SAFETY: PR_CAPBSET_DROP and PR_CAP_AMBIENT_LOWER take a
            // capability number only.
            if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, number, 0, 0, 0) } < 0 {
                return Err(nix::errno::Errno::last());
            }
            unsafe {
                libc::prctl(
                    libc::PR_CAP_AMBIENT,
                    libc::PR_CAP_AMBIENT_LOWER as libc::c_ulong,
                    number,
                    0,
                    0,
                )
            };
            drop_inheritable(capability)
        },
    )
}

/// capget(2)/capset(2)'s header and data, as <linux/capability.h> lays
/// them out (version 3: two data structs for 64 capabilities).
#[repr(C)]
pub struct CapHeader {
    pub version: u32,
    pub pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct CapData {
    pub effective: u32,
    pub permitted: u32,
    pub inheritable: u32,
}

pub const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// This process's three capability sets, from capget(2).
pub fn get() -> nix::Result<[CapData; 2]> {
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: version 3 fills exactly two data structs.
    let result = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
    if result < 0 {
        Err(nix::errno::Errno::last())
    } else {
        Ok(data)
    }
}

fn drop_inheritable(capability: Capability) -> nix::Result<()> {
    let mut data = get()?;
    let (word, bit) = ((capability.number / 32) as usize, capability.number % 32);
    data[word].inheritable &= !(1 << bit);
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    // SAFETY: capset reads the header and two data structs we own.
    let result = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
    if result < 0 {
        Err(nix::errno::Errno::last())
    } else {
        Ok(())
    }
}
// ANCHOR_END: drop_chroot

/// Empty this process's effective, permitted and inheritable sets
/// (capset(2)). For a process that never executes a program again, as the
/// container's init: its bounding set only limits what an execve(2) would
/// grant, so without this it would keep every capability the runtime had.
pub fn drop_all() -> nix::Result<()> {
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let none = [CapData::default(); 2];
    // SAFETY: capset reads the header and two data structs we own.
    let result = unsafe { libc::syscall(libc::SYS_capset, &mut header, none.as_ptr()) };
    if result < 0 {
        Err(nix::errno::Errno::last())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cap_eff() {
        let status = "Name:\tsh\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n";
        assert_eq!(effective_from_status(status), Some(0x1ff_ffff_ffff));
        assert_eq!(effective_from_status("Name:\tsh\n"), None);
        let status = "CapBnd:\t000001fffffbfffb\n";
        assert_eq!(bounding_from_status(status), Some(0x1ff_fffb_fffb));
    }

    #[test]
    fn names_match_the_numbers() {
        for known in [CAP_SYS_CHROOT, CAP_DAC_READ_SEARCH, CAP_SYS_ADMIN] {
            assert_eq!(numbered(known.number).name, known.name);
        }
        assert_eq!(numbered(40).name, "CAP_CHECKPOINT_RESTORE");
    }

    #[test]
    fn unprivileged_mask_lacks_chroot() {
        let status = "CapEff:\t0000000000000000\n";
        let mask = effective_from_status(status).unwrap();
        assert_eq!(mask & (1 << CAP_SYS_CHROOT.number), 0);
    }
}
