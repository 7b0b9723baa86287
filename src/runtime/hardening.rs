//! Hardening: what root inside may still ask of the kernel, cut to what
//! containers need, as Docker's defaults cut it between 2014 and 2016.
//!
//! Namespaces decide what a container sees, cgroups how much it uses; the
//! container's processes still make system calls into the host's one
//! kernel, as root of their user namespace. Four settings shrink that:
//! a short capability list (capabilities(7)), no_new_privs (prctl(2),
//! Linux 3.5: execve(2) never grants privilege again, setuid bits and file
//! capabilities included), a seccomp filter (seccomp(2), Linux 3.5: the
//! system calls themselves, by number and argument) and the masked paths
//! of /proc and /sys (`masks`). `--privileged` turns all four off.
//!
//! They are the container's settings, not one run's: the record keeps
//! them, and `exec` puts a joining process under the very same ones.

use crate::error::LabError;
use crate::narrator::{Narrator, Step};
use crate::runtime::caps::CapSet;
use crate::runtime::command;
use crate::runtime::seccomp::{Filter, Profile};
use serde::{Deserialize, Serialize};

/// What `--cap-add`, `--cap-drop`, `--security-opt` and `--privileged`
/// decided, as the container's record keeps it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Security {
    /// The bounding set, and root's own sets.
    pub capabilities: CapSet,
    pub no_new_privileges: bool,
    /// The profile itself, not its file's path: `exec` must get the
    /// filter `run` got, whatever became of the file since.
    pub seccomp: Option<Profile>,
    /// Docker's masked and read-only paths (`masks`).
    pub masked_paths: bool,
    pub privileged: bool,
}

impl Default for Security {
    /// Chapter 09's defaults: every protection on.
    fn default() -> Security {
        Security {
            capabilities: CapSet::container_default(),
            no_new_privileges: true,
            seccomp: Some(Profile::docker_default()),
            masked_paths: true,
            privileged: false,
        }
    }
}

impl Security {
    /// `--privileged`: every capability the kernel knows (over the
    /// container's user namespace only), no filter, no masks, setuid
    /// programs allowed to work.
    pub fn privileged() -> Security {
        Security {
            capabilities: CapSet::all_known(),
            no_new_privileges: false,
            seccomp: None,
            masked_paths: false,
            privileged: true,
        }
    }

    /// Compile the filter now, in the runtime, so that a profile that does
    /// not compile is an error before anything is started.
    pub fn prepare(&self) -> Result<Hardening, LabError> {
        let names = self.capabilities.names();
        let filter = self
            .seccomp
            .as_ref()
            .map(|profile| profile.compile(&names))
            .transpose()?;
        Ok(Hardening {
            security: self.clone(),
            filter,
        })
    }
}

/// The settings, with the filter compiled.
pub struct Hardening {
    pub security: Security,
    pub filter: Option<Filter>,
}

impl Hardening {
    // ANCHOR: lock_down
    /// The last steps before execve(2), in the child, in the container's
    /// root: cut the bounding set, set no_new_privs, become the command's
    /// user (or cut root's own capabilities), load the filter.
    ///
    /// Without no_new_privs only a process with CAP_SYS_ADMIN may load a
    /// filter (seccomp(2)), so then it is loaded before the capabilities
    /// go, and must allow the calls that follow (setgroups, setresuid,
    /// capset, execve); with no_new_privs it is loaded last, as runc does.
    pub fn lock_down(&self, narrator: &Narrator, user: Option<(u32, u32)>) -> Result<(), LabError> {
        let security = &self.security;
        security.capabilities.limit_bounding_set(narrator)?;
        if security.no_new_privileges {
            set_no_new_privs(narrator)?;
        } else {
            self.load_filter(narrator)?;
        }
        match user {
            Some((uid, gid)) => command::become_user(narrator, uid, gid)?,
            None => security.capabilities.become_own(narrator)?,
        }
        if security.no_new_privileges {
            self.load_filter(narrator)?;
        }
        Ok(())
    }
    // ANCHOR_END: lock_down

    fn load_filter(&self, narrator: &Narrator) -> Result<(), LabError> {
        match &self.filter {
            Some(filter) => filter.load(narrator),
            None => Ok(()),
        }
    }
}

// ANCHOR: no_new_privs
/// prctl(PR_SET_NO_NEW_PRIVS): from now on execve(2) grants nothing, not
/// to this process nor to its children: a setuid-root program runs with
/// the caller's ids, file capabilities are ignored (prctl(2), Linux 3.5).
/// It can never be unset.
pub fn set_no_new_privs(narrator: &Narrator) -> Result<(), LabError> {
    narrator.run(
        Step {
            syscall: "prctl",
            args: "PR_SET_NO_NEW_PRIVS, 1",
            why: "no program the container runs gains privilege: setuid bits and file capabilities are ignored from here on",
            man: "prctl(2)",
        },
        nix::sys::prctl::set_no_new_privs,
    )
}
// ANCHOR_END: no_new_privs
