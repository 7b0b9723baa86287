//! The runtime: everything a chapter calls to build its container, one file
//! per mechanism. A student looking for "how does the runtime do X" needs
//! only this folder.
//!
//! | file | what it does | introduced in |
//! |---|---|---|
//! | `process` | spawn the container's process, wait for it | ch00 |
//! | `fork` | fork with the signal proxy, exec, exit codes | ch00 |
//! | `sync` | the pipes between runtime and child | ch00 (ch04: requests) |
//! | `command` | find COMMAND inside the root, as the container will | ch00 |
//! | `sharing` | which namespaces the child still shares (`--explain`) | ch00 |
//! | `chroot` | chroot(2), and the classic breakout | ch01 |
//! | `caps` | capabilities: check what a chapter needs, drop the rest | ch01 |
//! | `namespaces` | unshare(2), setns(2), the PID namespace's fork | ch02 |
//! | `init` | PID 1: reap orphans, pass signals on | ch02 |
//! | `terminal` | a session and a pseudo-terminal of the container's own | ch02 |
//! | `fds` | close inherited descriptors before exec | ch02 |
//! | `mounts` | /proc, /sys, /dev, /tmp; pivot_root(2) | ch02 (ch03: the mount namespace) |
//! | `net` | veth, bridge, NAT, published ports | ch04 |
//! | `netlink` | links, addresses, routes through rtnetlink, without ip(8) | ch04 |
//! | `nftables` | the port guard through nf_tables netlink, without nft(8) | ch04 |
//! | `userns` | uid/gid maps, idmapped and chowned roots | ch05 |
//! | `mountspec` | what -v and --tmpfs say, parsed and checked; kept in records | ch08 |
//! | `overlay` | a root of read-only layers under a writable one (overlayfs) | ch08 |
//! | `volumes` | -v host binds and named volumes, --tmpfs; the volume verbs | ch08 |
//! | `usernet` | user-mode networking with pasta(1), no root needed | ch05 |
//! | `cgroups` | memory, CPU and pids budgets on v1, v2 and hybrid | ch06 |
//! | `state` | one directory per container: records, locks, ids, names | ch07 |
//! | `monitor` | the container's parent for its whole life: log, end, restart, cleanup | ch07 |
//! | `stdio` | the container's stdio as pipes the runtime holds | ch07 |
//! | `logfile` | the log, one JSON line per line of output, kept to two files | ch07 |
//! | `lifecycle` | ps, stop, kill, pause, logs, wait, inspect, top, rm | ch07 |
//! | `exec` | join a running container: setns(2) into its namespaces, its cgroup | ch07 |
//! | `hardening` | capabilities, no_new_privs and seccomp, the last steps before execve | ch09 |
//! | `masks` | Docker's masked and read-only paths of /proc and /sys | ch09 |
//! | `seccomp` | a syscall filter: Docker's JSON profiles compiled to BPF, loaded last | ch09 |
//! | `seccomp/profile` | Docker's JSON profile format; includes/excludes resolved | ch09 |
//! | `seccomp/docker_default` | the built-in profile: Docker's default decisions as data | ch09 |
//! | `seccomp/syscall_table` | syscall numbers of x86_64 and aarch64, from the kernel headers | ch09 |
//! | `seccomp/bpf` | a classic-BPF interpreter: what a compiled filter does to a call | ch09 |
//! | `seccomp/tests` | the filters run, by the interpreter and once by the kernel | ch09 |
//!
//! May use: the shared plumbing at the top of the crate (`error`,
//! `narrator`, `program`, `hostinfo`). Never `crate::lab` or `crate::cli`:
//! the runtime does not know it is being measured, nor how flags are spelled.
//! Inside the folder, dependencies point one way: `process` uses `fork`,
//! `sync`, `init` and `namespaces`; `init` and `namespaces` use `fork`;
//! `exec` uses the same pieces as `process`, to join instead of create.

pub mod caps;
pub mod cgroups;
pub mod chroot;
pub mod command;
pub mod exec;
pub mod fds;
pub mod fork;
pub mod hardening;
pub mod init;
pub mod lifecycle;
pub mod logfile;
pub mod masks;
pub mod monitor;
pub mod mounts;
pub mod mountspec;
pub mod namespaces;
pub mod net;
pub mod netlink;
pub mod nftables;
pub mod overlay;
pub mod process;
pub mod seccomp;
pub mod sharing;
pub mod state;
pub mod stdio;
pub mod sync;
pub mod terminal;
pub mod usernet;
pub mod userns;
pub mod volumes;

/// The runtime's own directory for state that lives as long as the host is
/// up (tmpfs, so a reboot clears it, as runc's /run/runc): network leases
/// and port claims today, one folder per container from ch07 on. `lab clean`
/// reclaims what a killed runtime left here.
pub const RUN_DIR: &str = "/run/container-lab";
