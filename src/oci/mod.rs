//! Chapter 10: the OCI runtime specification's side of the lab. A bundle
//! (a root filesystem and its `config.json`) is read here and turned into
//! the steps chapters 02-09 built; the state runc keeps between its calls
//! (`start`, `kill`, `delete`) lives here too.
//!
//! - `config`: config.json read with oci-spec's types, checked, made a `Plan`
//! - `state`: the `--root` directory, one container each, and its status
//! - `fifo`: exec.fifo, the create/start split
//! - `mounts`: config.json's mounts and the /dev the runtime fills
//! - `process`: rlimits, user, the five capability sets, keyring, AppArmor
//! - `cgroup`: cgroupsPath and the v1 device rules
//! - `hooks`: the programs run at each moment of a container's life
//! - `log`: `--log` and `--log-format`, where engines read errors
//! - `verbs`: state, kill, delete, pause, resume, ps, list, spec, features

pub mod cgroup;
pub mod config;
pub mod fifo;
pub mod hooks;
pub mod log;
pub mod mounts;
pub mod process;
pub mod spec;
pub mod state;
pub mod verbs;
