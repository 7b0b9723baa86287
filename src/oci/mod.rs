//! Chapter 10: the OCI runtime specification's side of the lab. A bundle
//! (a root filesystem and its `config.json`) is read here and turned into
//! the steps chapters 02-09 built; the state runc keeps between its calls
//! (`start`, `kill`, `delete`) lives here too.
//!
//! | file | what it does | introduced in |
//! |---|---|---|
//! | `config` | config.json read with oci-spec's types, checked, made a `Plan` | ch10 |
//! | `state` | the `--root` directory, one container each, and its status | ch10 |
//! | `fifo` | exec.fifo, the create/start split | ch10 |
//! | `mounts` | config.json's mounts and the /dev the runtime fills | ch10 |
//! | `process` | rlimits, user, the five capability sets, keyring, AppArmor | ch10 |
//! | `cgroup` | cgroupsPath, the budget and the device rules | ch10 |
//! | `device_filter` | cgroup v2's device rules: an eBPF program, compiled and attached | ch10 |
//! | `hooks` | the programs run at each moment of a container's life | ch10 |
//! | `log` | `--log` and `--log-format`, where engines read errors | ch10 |
//! | `verbs` | state, kill, delete, pause, resume, ps, list, spec, features | ch10 |
//! | `spec` | the default config.json: runc's shape, the lab's capabilities, masks and seccomp | ch10 |
//! | `bundle` | `lab bundle`: an image's layers flattened into rootfs/, its config into config.json | ch10 |
//!
//! May use: the runtime, the image side (`bundle` reads the image store)
//! and the shared plumbing. The runtime never uses this folder.

pub mod bundle;
pub mod cgroup;
pub mod config;
pub mod device_filter;
pub mod fifo;
pub mod hooks;
pub mod log;
pub mod mounts;
pub mod process;
pub mod spec;
pub mod state;
pub mod verbs;
