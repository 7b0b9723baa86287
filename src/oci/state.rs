//! What the runtime keeps between its calls: one directory per container
//! under `--root` (runc keeps /run/runc/ID), with `state.json` and, until
//! `start`, the `exec.fifo` the container's process waits on.
//!
//! The runtime is not a daemon: every call (`start`, `kill`, `state`,
//! `delete`) is a new process that reads this directory, looks at the
//! container's process and cgroup, and goes away. The status is worked out
//! each time, never stored: `created` while the FIFO exists, `running`
//! after, `paused` while the cgroup is frozen, `stopped` once the process
//! is gone.

use crate::error::LabError;
use crate::oci::config::{Hook, OCI_VERSION};
use crate::runtime::cgroups;
use crate::runtime::state::{Lock, ProcessRef, lock_file};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where containers' state lives unless `--root` says otherwise.
pub const DEFAULT_ROOT: &str = "/run/container-lab/oci";

/// The FIFO `create` leaves the container waiting on.
pub const EXEC_FIFO: &str = "exec.fifo";

/// One container, as `create` recorded it.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Container {
    pub id: String,
    /// The container's first process (PID 1 inside), as the host numbers it.
    pub process: ProcessRef,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// Nanoseconds since the epoch.
    pub created: u64,
    pub annotations: BTreeMap<String, String>,
    /// The cgroup directories (one, or one per v1 hierarchy).
    pub cgroups: Vec<PathBuf>,
    /// Run by `delete`, with the state on stdin.
    pub poststop: Vec<Hook>,
    /// Run by `start` once the process runs.
    pub poststart: Vec<Hook>,
    /// The seccomp profile `exec` puts its processes under too, as runc does.
    pub seccomp: Option<crate::runtime::seccomp::Profile>,
    /// Whether the container has a user namespace of its own.
    pub user_namespace: bool,
    /// Whether its process has a terminal (process.terminal).
    pub terminal: bool,
}

/// The runtime specification's statuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// The state the specification defines (`state` prints it; hooks read it
/// on stdin).
#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct StateJson<'a> {
    pub oci_version: &'static str,
    pub id: &'a str,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    pub bundle: &'a Path,
    pub annotations: &'a BTreeMap<String, String>,
}

/// The containers under one `--root`.
pub struct StateRoot {
    pub dir: PathBuf,
}

/// An ID that cannot leave the root, as runc checks: letters, digits and
/// `_+-.`, not `.` or `..`.
pub fn check_id(id: &str) -> Result<(), LabError> {
    let good = !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= 1024
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+-.".contains(c));
    match good {
        true => Ok(()),
        false => Err(LabError::Usage {
            message: format!("invalid container id {id:?}: use letters, digits and _ + - . only"),
        }),
    }
}

impl StateRoot {
    /// `--root DIR`, made (0700) if missing.
    pub fn open(dir: &Path) -> Result<StateRoot, LabError> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| LabError::io("mkdir", dir.display(), e))?;
        Ok(StateRoot {
            dir: dir.to_path_buf(),
        })
    }

    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// Make the container's directory; an ID in use is refused.
    pub fn claim(&self, id: &str) -> Result<PathBuf, LabError> {
        check_id(id)?;
        let dir = self.container_dir(id);
        match std::fs::create_dir(&dir) {
            Ok(()) => {
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o711));
                Ok(dir)
            }
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(LabError::Container {
                    message: format!("container {id} already exists"),
                    hint: "choose another ID, or `delete` that one first".into(),
                })
            }
            Err(error) => Err(LabError::io("mkdir", dir.display(), error)),
        }
    }

    /// The lock every verb that changes a container takes: flock(2) on
    /// `.locks/ID`, outside its directory so that `delete` can remove the
    /// directory while holding it, and in a directory of its own so that
    /// no container ID can name a lock file (IDs hold no `/`).
    pub fn lock(&self, id: &str) -> Result<Lock, LabError> {
        check_id(id)?;
        let locks = self.dir.join(".locks");
        std::fs::create_dir_all(&locks).map_err(|e| LabError::io("mkdir", locks.display(), e))?;
        lock_file(&locks.join(id))
    }

    pub fn write(&self, container: &Container) -> Result<(), LabError> {
        let dir = self.container_dir(&container.id);
        let path = dir.join("state.json");
        let partial = dir.join("state.json.partial");
        let text = serde_json::to_vec_pretty(container).map_err(|e| LabError::Container {
            message: format!("cannot write {}: {e}", path.display()),
            hint: String::new(),
        })?;
        std::fs::write(&partial, text).map_err(|e| LabError::io("write", partial.display(), e))?;
        std::fs::rename(&partial, &path).map_err(|e| LabError::io("rename", path.display(), e))
    }

    /// The container `id`, or the error runc gives for an unknown one.
    pub fn read(&self, id: &str) -> Result<Container, LabError> {
        check_id(id)?;
        let path = self.container_dir(id).join("state.json");
        let text = std::fs::read_to_string(&path).map_err(|error| match error.kind() {
            std::io::ErrorKind::NotFound => not_found(id),
            _ => LabError::io("open", path.display(), error),
        })?;
        serde_json::from_str(&text).map_err(|e| LabError::Container {
            message: format!("{}: {e}", path.display()),
            hint: "the state is damaged: `delete --force` it".into(),
        })
    }

    /// Every container here, by ID.
    pub fn list(&self) -> Vec<Container> {
        let mut all: Vec<Container> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| self.read(&entry.file_name().to_string_lossy()).ok())
            .collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    pub fn fifo(&self, id: &str) -> PathBuf {
        self.container_dir(id).join(EXEC_FIFO)
    }

    // ANCHOR: status
    /// The status now, from the process, the FIFO and the freezer.
    pub fn status(&self, container: &Container) -> Status {
        if !container.process.is_alive() {
            return Status::Stopped;
        }
        if cgroups::is_frozen(&container.cgroups) {
            return Status::Paused;
        }
        match self.fifo(&container.id).exists() {
            true => Status::Created,
            false => Status::Running,
        }
    }
    // ANCHOR_END: status

    /// Remove the container's directory (its state and FIFO).
    pub fn forget(&self, id: &str) -> Result<(), LabError> {
        let dir = self.container_dir(id);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(LabError::io("rmdir", dir.display(), error)),
        }?;
        let _ = std::fs::remove_file(self.dir.join(".locks").join(id));
        Ok(())
    }
}

impl Container {
    /// The specification's state, with `status`.
    pub fn state_json(&self, status: Status) -> StateJson<'_> {
        StateJson {
            oci_version: OCI_VERSION,
            id: &self.id,
            status: status.as_str(),
            pid: (status != Status::Stopped).then_some(self.process.pid),
            bundle: &self.bundle,
            annotations: &self.annotations,
        }
    }
}

impl StateJson<'_> {
    /// The document as hooks read it on stdin: one line of JSON.
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

pub fn not_found(id: &str) -> LabError {
    LabError::Container {
        message: format!("container {id} does not exist"),
        hint: "`list` shows the containers under this --root".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_could_leave_the_root_are_refused() {
        for bad in ["", ".", "..", "a/b", "../x", "a b", "é"] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
        for good in ["abc", "a-b_c.d+e", "0123456789abcdef"] {
            assert!(check_id(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn claim_refuses_an_id_in_use_and_forget_removes_it() {
        let dir = std::env::temp_dir().join(format!("lab-oci-state-{}", std::process::id()));
        let root = StateRoot::open(&dir).unwrap();
        root.claim("one").unwrap();
        let message = root.claim("one").err().unwrap().to_string();
        assert!(message.contains("already exists"), "{message}");
        root.forget("one").unwrap();
        assert!(!root.container_dir("one").exists());
        let message = root.read("one").err().unwrap().to_string();
        assert!(message.contains("does not exist"), "{message}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
