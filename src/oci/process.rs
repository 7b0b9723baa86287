//! config.json's `process`, applied in the container's first process (and
//! in each `exec`'d one) just before execve(2): resource limits, the
//! user, the five capability sets, the umask, an AppArmor profile.
//!
//! Chapter 09 had one capability list for every set; the specification
//! gives five (capabilities(7)): the bounding set caps what any program
//! may ever hold, permitted and effective are what this one holds,
//! inheritable and ambient what passes through execve(2) to a program run
//! as a user. The order is runc's: the bounding set is cut while
//! CAP_SETPCAP is held; PR_SET_KEEPCAPS keeps the permitted set across
//! setuid(2); then capset(2) and the ambient set.

use crate::error::LabError;
use crate::narrator::{Narrator, Step};
use crate::oci::config::{CapabilitySets, ProcessPlan};
use crate::runtime::caps;

// ANCHOR: rlimits
/// setrlimit(2) for each of config.json's `rlimits`, while the process is
/// still root with CAP_SYS_RESOURCE (raising a hard limit needs it).
pub fn set_rlimits(narrator: &Narrator, rlimits: &[(i32, u64, u64)]) -> Result<(), LabError> {
    for &(resource, soft, hard) in rlimits {
        let args = format!("{resource}, {{ soft {soft}, hard {hard} }}");
        narrator.run(
            Step {
                syscall: "setrlimit",
                args: &args,
                why: "config.json's limit for this resource; it holds for every process the container starts",
                man: "setrlimit(2)",
            },
            || {
                let limit = libc::rlimit {
                    rlim_cur: soft,
                    rlim_max: hard,
                };
                // SAFETY: setrlimit reads one rlimit struct.
                let result = unsafe { libc::setrlimit(resource as _, &limit) };
                nix::errno::Errno::result(result).map(drop)
            },
        )?;
    }
    Ok(())
}
// ANCHOR_END: rlimits

// ANCHOR: user_and_caps
/// Become `process`'s user and give it its capability sets, runc's way.
pub fn become_user_with_capabilities(
    narrator: &Narrator,
    process: &ProcessPlan,
) -> Result<(), LabError> {
    let sets = process.capabilities;
    sets.bounding.limit_bounding_set(narrator)?;
    let ids = format!(
        "{:?}; setresgid({gid}); setresuid({uid}), PR_SET_KEEPCAPS around it",
        process.additional_gids,
        gid = process.gid,
        uid = process.uid
    );
    narrator.run(
        Step {
            syscall: "setgroups",
            args: &ids,
            why: "the process's user and groups, as config.json gives them; KEEPCAPS keeps the permitted set across setuid so the sets below still apply",
            man: "setgroups(2)",
        },
        || {
            nix::sys::prctl::set_keepcaps(true)?;
            let groups: Vec<nix::unistd::Gid> = process
                .additional_gids
                .iter()
                .map(|g| nix::unistd::Gid::from_raw(*g))
                .collect();
            match nix::unistd::setgroups(&groups) {
                // A user namespace whose setgroups is denied (rootless)
                // can still run a process with no extra group.
                Err(nix::errno::Errno::EPERM) if groups.is_empty() => {}
                other => other?,
            }
            let gid = nix::unistd::Gid::from_raw(process.gid);
            nix::unistd::setresgid(gid, gid, gid)?;
            let uid = nix::unistd::Uid::from_raw(process.uid);
            nix::unistd::setresuid(uid, uid, uid)?;
            // A change of ids resets the dumpable flag to fs.suid_dumpable,
            // which a host may have set to 1: not dumpable until execve(2).
            nix::sys::prctl::set_dumpable(false)?;
            nix::sys::prctl::set_keepcaps(false)
        },
    )?;
    set_capabilities(narrator, sets)
}

/// capset(2) effective, permitted and inheritable; then raise each
/// ambient capability (it must be permitted and inheritable already).
fn set_capabilities(narrator: &Narrator, sets: CapabilitySets) -> Result<(), LabError> {
    let args = format!(
        "effective {}, permitted {}, inheritable {}; ambient {}",
        sets.effective.short_names(),
        sets.permitted.short_names(),
        sets.inheritable.short_names(),
        sets.ambient.short_names()
    );
    narrator.run(
        Step {
            syscall: "capset",
            args: &args,
            why: "the process holds exactly the capabilities config.json lists",
            man: "capset(2)",
        },
        || {
            let mut data = caps::get()?;
            for (word, data) in data.iter_mut().enumerate() {
                let bits = |set: caps::CapSet| (set.0 >> (32 * word)) as u32;
                data.effective = bits(sets.effective);
                data.permitted = bits(sets.permitted);
                data.inheritable = bits(sets.inheritable);
            }
            caps::set(&data)?;
            // The kernel raises an ambient capability only if it is both
            // permitted and inheritable (capabilities(7)); runc's own
            // default config.json lists ambient ones without inheritable,
            // and runc leaves those out, as this does (CapAmb stays 0).
            let raisable = sets.ambient.0 & sets.permitted.0 & sets.inheritable.0;
            for number in (0..64).filter(|n| raisable & (1 << n) != 0) {
                let raise = libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong;
                // SAFETY: PR_CAP_AMBIENT takes an operation and a number.
                let result = unsafe {
                    libc::prctl(libc::PR_CAP_AMBIENT, raise, number as libc::c_ulong, 0, 0)
                };
                nix::errno::Errno::result(result)?;
            }
            Ok(())
        },
    )
}
// ANCHOR_END: user_and_caps

/// umask(2), when config.json gives one.
pub fn set_umask(umask: Option<u32>) {
    if let Some(mask) = umask {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
    }
}

/// A session keyring of the container's own (keyrings(7)), as runc joins
/// one unless `--no-new-keyring`: keys the host's session holds stay out
/// of the container's reach. A kernel without keys (ENOSYS) has nothing to
/// hide.
pub fn join_new_session_keyring(narrator: &Narrator, id: &str) -> Result<(), LabError> {
    let name = std::ffi::CString::new(format!("_ses.{id}")).unwrap_or_default();
    let args = format!("KEYCTL_JOIN_SESSION_KEYRING, {name:?}");
    narrator.run(
        Step {
            syscall: "keyctl",
            args: &args,
            why: "a new session keyring: the runtime's session keys are not the container's",
            man: "keyrings(7)",
        },
        || {
            const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
            // SAFETY: keyctl(JOIN_SESSION_KEYRING) reads one C string.
            let result = unsafe {
                libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr())
            };
            match nix::errno::Errno::result(result) {
                Err(nix::errno::Errno::ENOSYS) => Ok(()),
                other => other.map(drop),
            }
        },
    )
}

/// Ask AppArmor to confine the program the next execve(2) runs with
/// `profile` (the kernel's attr/apparmor/exec interface, apparmor(7)).
pub fn set_apparmor_profile(narrator: &Narrator, profile: &str) -> Result<(), LabError> {
    let args = format!("/proc/self/attr/apparmor/exec, \"exec {profile}\"");
    narrator.run(
        Step {
            syscall: "write",
            args: &args,
            why: "the command starts confined by the AppArmor profile config.json names",
            man: "apparmor(7)",
        },
        || {
            let path = match std::path::Path::new("/proc/self/attr/apparmor/exec").exists() {
                true => "/proc/self/attr/apparmor/exec",
                false => "/proc/self/attr/exec",
            };
            std::fs::write(path, format!("exec {profile}")).map_err(|e| crate::error::errno_of(&e))
        },
    )
}
