//! Capabilities: the pieces root's power is split into (capabilities(7)).
//!
//! The runtime checks the one a chapter needs before it starts, so a user who
//! forgot sudo gets one clear sentence instead of an EPERM half-way through.

use crate::error::LabError;
use crate::narrator::Narrator;

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

/// Make `data` this process's three capability sets, with capset(2).
pub fn set(data: &[CapData; 2]) -> nix::Result<()> {
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    // SAFETY: version 3 reads exactly two data structs, which we own.
    let result = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
    if result < 0 {
        Err(nix::errno::Errno::last())
    } else {
        Ok(())
    }
}

fn drop_inheritable(capability: Capability) -> nix::Result<()> {
    let mut data = get()?;
    let (word, bit) = ((capability.number / 32) as usize, capability.number % 32);
    data[word].inheritable &= !(1 << bit);
    set(&data)
}
// ANCHOR_END: drop_chroot

/// Empty this process's effective, permitted and inheritable sets
/// (capset(2)). For a process that never executes a program again, as the
/// container's init: its bounding set only limits what an execve(2) would
/// grant, so without this it would keep every capability the runtime had.
pub fn drop_all() -> nix::Result<()> {
    set(&[CapData::default(); 2])
}

// ANCHOR: capset
/// A set of capabilities, one bit per number, as the kernel keeps them
/// (`CapEff:` and friends in /proc/PID/status are such masks).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CapSet(pub u64);

/// Docker's default list (2014, unchanged in substance since): what most
/// programs that start as root need, and nothing that reaches past the
/// container's own files, processes and network. Chapter 09 keeps it but
/// for two: CAP_SYS_CHROOT, gone since chapter 02 (a chroot inside a
/// pivoted root is harmless, but a capability a chapter took away does not
/// come back by default; `--cap-add SYS_CHROOT` gives it to the sshd that
/// wants it), and CAP_NET_RAW, which writes any packet it likes onto the
/// container's link, ARP and forged sources included (issue 12: the
/// bridge's port guard stops those). A ping that uses ICMP sockets
/// (iputils') works without it: chapter 09 opens them to every group of
/// the container (`net::allow_ping_sockets`), as Docker does; busybox's
/// ping wants a raw socket, and `--cap-add NET_RAW`.
pub const DOCKER_DEFAULT: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

impl CapSet {
    /// Chapter 09's default: Docker's list without SYS_CHROOT and NET_RAW.
    pub fn container_default() -> CapSet {
        let mut set = CapSet::default();
        for name in DOCKER_DEFAULT {
            if name != "CAP_SYS_CHROOT" && name != "CAP_NET_RAW" {
                set.0 |= 1 << number_of(name).expect("the table names it");
            }
        }
        set
    }

    /// Every capability this kernel knows (PR_CAPBSET_READ answers EINVAL
    /// past the last one, prctl(2)): what `--privileged` keeps.
    pub fn all_known() -> CapSet {
        let mut set = CapSet::default();
        for number in 0..64 {
            // SAFETY: PR_CAPBSET_READ takes a capability number only.
            if unsafe { libc::prctl(libc::PR_CAPBSET_READ, number as libc::c_ulong, 0, 0, 0) } < 0 {
                break;
            }
            set.0 |= 1 << number;
        }
        set
    }

    pub fn contains(self, number: u32) -> bool {
        self.0 & (1 << number) != 0
    }

    /// The names, in number order (`CAP_CHOWN`, ...).
    pub fn names(self) -> Vec<&'static str> {
        (0..64)
            .filter(|&number| self.contains(number))
            .map(|number| numbered(number).name)
            .collect()
    }

    /// `--cap-add` and `--cap-drop` applied to `self` as docker run applies
    /// them: `--cap-drop ALL` starts from nothing, `--cap-add ALL` from
    /// everything; otherwise the drops first, then the adds, so a
    /// capability both added and dropped is kept (podman's drop would win).
    /// Names are taken with or without `CAP_`, in any case.
    pub fn adjusted(self, add: &[String], drop: &[String]) -> Result<CapSet, LabError> {
        let is_all = |name: &String| name.eq_ignore_ascii_case("ALL");
        let mut set = match (add.iter().any(is_all), drop.iter().any(is_all)) {
            (true, _) => CapSet::all_known(),
            (false, true) => CapSet::default(),
            (false, false) => self,
        };
        let bits = |names: &[String]| -> Result<u64, LabError> {
            let mut bits = 0u64;
            for name in names.iter().filter(|name| !is_all(name)) {
                bits |= 1 << parse_name(name)?;
            }
            Ok(bits)
        };
        let (added, dropped) = (bits(add)?, bits(drop)?);
        if add.iter().any(is_all) {
            set.0 &= !dropped;
        } else {
            set.0 = (set.0 & !dropped) | added;
        }
        Ok(set)
    }

    /// Cut the bounding set to this set and empty the ambient set: no
    /// program this process or its children execute can hold any other
    /// capability again, setuid-root or not (capabilities(7)). Needs
    /// CAP_SETPCAP, so it comes before the process gives its own away.
    pub fn limit_bounding_set(self, narrator: &Narrator) -> Result<(), LabError> {
        // Asked of the kernel once: this runs at every container's start.
        let known = CapSet::all_known();
        let dropped: Vec<u32> = (0..64)
            .filter(|&number| known.contains(number) && !self.contains(number))
            .collect();
        let args = format!(
            "PR_CAPBSET_DROP x{} (all but {}); PR_CAP_AMBIENT_CLEAR_ALL",
            dropped.len(),
            self.short_names()
        );
        narrator.run(
            crate::narrator::Step {
                syscall: "prctl",
                args: &args,
                why: "no program the container runs can ever hold a capability outside its list, not even a setuid-root one",
                man: "capabilities(7)",
            },
            || {
                for number in dropped {
                    // SAFETY: PR_CAPBSET_DROP takes a capability number only.
                    if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, number as libc::c_ulong, 0, 0, 0) } < 0 {
                        return Err(nix::errno::Errno::last());
                    }
                }
                let clear = libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong;
                // SAFETY: as above, no pointers.
                if unsafe { libc::prctl(libc::PR_CAP_AMBIENT, clear, 0, 0, 0) } < 0 {
                    return Err(nix::errno::Errno::last());
                }
                Ok(())
            },
        )
    }

    /// Make this set the process's own effective and permitted sets
    /// (capset(2)), for a command that runs as root, and empty its
    /// inheritable set: root gets its capabilities back at execve(2) from
    /// the bounding set anyway, and an inheritable set lets a program with
    /// file capabilities gain them even as a user (CVE-2022-24769, where
    /// Docker and runc had filled it with the default list).
    pub fn become_own(self, narrator: &Narrator) -> Result<(), LabError> {
        let args = format!(
            "effective = permitted = {}, inheritable = none",
            self.short_names()
        );
        narrator.run(
            crate::narrator::Step {
                syscall: "capset",
                args: &args,
                why: "root inside keeps only the capabilities on the container's list",
                man: "capset(2)",
            },
            || {
                let mut data = get()?;
                for (word, data) in data.iter_mut().enumerate() {
                    let mask = (self.0 >> (32 * word)) as u32;
                    data.permitted &= mask;
                    data.effective = data.permitted;
                    data.inheritable = 0;
                }
                set(&data)
            },
        )
    }

    /// `CHOWN,DAC_OVERRIDE,...` for narration, or `none`.
    pub fn short_names(self) -> String {
        let names: Vec<&str> = self
            .names()
            .into_iter()
            .map(|name| name.trim_start_matches("CAP_"))
            .collect();
        match names.is_empty() {
            true => "none".into(),
            false => names.join(","),
        }
    }
}
// ANCHOR_END: capset

/// A capability's number from its name (`NET_ADMIN`, `cap_net_admin`).
pub fn parse_name(name: &str) -> Result<u32, LabError> {
    let upper = name.to_ascii_uppercase();
    let full = match upper.starts_with("CAP_") {
        true => upper,
        false => format!("CAP_{upper}"),
    };
    number_of(&full).ok_or_else(|| LabError::Usage {
        message: format!(
            "unknown capability {name:?}: capabilities(7) lists them, e.g. NET_ADMIN, SYS_PTRACE, or ALL"
        ),
    })
}

fn number_of(full_name: &str) -> Option<u32> {
    NAMES.iter().position(|n| *n == full_name).map(|n| n as u32)
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
    fn cap_add_and_drop_work_as_docker_run_does() {
        let default = CapSet::container_default();
        assert_eq!(default.names().len(), 12);
        assert!(!default.contains(CAP_SYS_CHROOT.number));
        assert!(!default.contains(13), "NET_RAW is out");
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let only = default
            .adjusted(&strings(&["net_admin"]), &strings(&["ALL"]))
            .unwrap();
        assert_eq!(only.names(), vec!["CAP_NET_ADMIN"]);
        let more = default
            .adjusted(&strings(&["CAP_SYS_ADMIN"]), &strings(&["KILL"]))
            .unwrap();
        assert!(more.contains(CAP_SYS_ADMIN.number) && !more.contains(5));
        let all = default
            .adjusted(&strings(&["ALL"]), &strings(&["SYS_ADMIN"]))
            .unwrap();
        assert!(!all.contains(CAP_SYS_ADMIN.number) && all.contains(CAP_SYS_CHROOT.number));
        let error = default
            .adjusted(&strings(&["SYS_WIZARD"]), &[])
            .unwrap_err();
        assert!(error.to_string().contains("SYS_WIZARD"), "{error}");
    }

    #[test]
    fn unprivileged_mask_lacks_chroot() {
        let status = "CapEff:\t0000000000000000\n";
        let mask = effective_from_status(status).unwrap();
        assert_eq!(mask & (1 << CAP_SYS_CHROOT.number), 0);
    }
}
