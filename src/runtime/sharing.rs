//! What a process shares with the host: the same namespaces, the same `/`.
//!
//! Two processes are in the same namespace exactly when their
//! `/proc/PID/ns/KIND` links name the same inode (namespaces(7)). The
//! runtime records its own view before it forks; the child compares its view
//! with it just before exec, so `--explain` can say what the command is
//! about to share with the host.

use nix::fcntl::{OFlag, open, readlinkat};
use nix::sys::stat::{Mode, stat};
use std::os::fd::OwnedFd;

/// The namespace kinds the lab knows, in the order the kernel gained them.
pub const NAMESPACE_KINDS: [&str; 8] =
    ["mnt", "uts", "ipc", "pid", "net", "user", "cgroup", "time"];

/// Identity of a process's namespaces and root directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct View {
    /// `(kind, "mnt:[4026531841]")` for each kind the kernel has.
    namespaces: Vec<(&'static str, String)>,
    /// Device and inode of `/`.
    root: (u64, u64),
}

/// A handle on the host's /proc opened before the child changes its root,
/// so its namespaces can still be read after chroot. `self` is looked up
/// at each reading, so a process forked later (ch05's PID 1) reads its own.
/// Close-on-exec, and dropped before launch: the command never sees it.
pub struct Probe {
    proc: Option<OwnedFd>,
}

impl Probe {
    pub fn open() -> Probe {
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        Probe {
            proc: open("/proc", flags, Mode::empty()).ok(),
        }
    }

    /// This process's view now. Kinds the kernel lacks (or a missing /proc)
    /// are left out rather than guessed.
    pub fn view(&self) -> View {
        let namespaces = match &self.proc {
            Some(proc) => NAMESPACE_KINDS
                .iter()
                .filter_map(|kind| {
                    let link = readlinkat(proc, format!("self/ns/{kind}").as_str()).ok()?;
                    Some((*kind, link.to_string_lossy().into_owned()))
                })
                .collect(),
            None => Vec::new(),
        };
        let root = stat("/").map(|st| (st.st_dev, st.st_ino)).unwrap_or((0, 0));
        View { namespaces, root }
    }
}

impl View {
    /// One line for the narrator: what `self` shares with `host` and what it
    /// has of its own.
    pub fn compare(&self, host: &View) -> String {
        let mut shared = Vec::new();
        let mut private = Vec::new();
        for (kind, link) in &self.namespaces {
            match host.namespaces.iter().find(|(k, _)| k == kind) {
                Some((_, host_link)) if host_link == link => shared.push(*kind),
                _ => private.push(*kind),
            }
        }
        let root = if self.root == host.root {
            "the host's /"
        } else {
            "a / of its own"
        };
        let list = |kinds: &[&str]| {
            if kinds.is_empty() {
                "none".to_string()
            } else {
                kinds.join(" ")
            }
        };
        format!(
            "the command gets {root}; namespaces shared with the host: {}; private: {}",
            list(&shared),
            list(&private)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(links: &[(&'static str, &str)], root: (u64, u64)) -> View {
        View {
            namespaces: links.iter().map(|(k, l)| (*k, l.to_string())).collect(),
            root,
        }
    }

    #[test]
    fn same_view_shares_everything() {
        let host = view(&[("mnt", "mnt:[1]"), ("uts", "uts:[2]")], (1, 2));
        assert_eq!(
            host.compare(&host),
            "the command gets the host's /; namespaces shared with the host: mnt uts; private: none"
        );
    }

    #[test]
    fn different_inode_is_private() {
        let host = view(&[("mnt", "mnt:[1]"), ("uts", "uts:[2]")], (1, 2));
        let child = view(&[("mnt", "mnt:[9]"), ("uts", "uts:[2]")], (1, 7));
        assert_eq!(
            child.compare(&host),
            "the command gets a / of its own; namespaces shared with the host: uts; private: mnt"
        );
    }

    #[test]
    fn reads_own_namespaces() {
        let own = Probe::open().view();
        assert!(
            own.namespaces
                .iter()
                .any(|(k, l)| *k == "mnt" && l.starts_with("mnt:["))
        );
    }
}
