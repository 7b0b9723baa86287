//! The built-in profile: the decisions of Docker's default seccomp profile,
//! written here as data (the calls and conditions are facts about what
//! Docker allows; the text is ours). It is the same `Profile` a JSON file
//! parses into, so one compile path serves both, and `Profile::to_json`
//! prints it for whoever wants to start a profile of their own from it.
//!
//! The shape: refuse everything with EPERM, then allow what ordinary
//! programs use. What is left out is left out on purpose; the famous ones:
//!
//! - **keyctl, add_key, request_key**: the kernel keyrings are not
//!   namespaced, so a container could read or fill keys of the host's users;
//!   and keyrings have had their bugs (CVE-2016-0728, a reference-count
//!   overflow in keyctl(KEYCTL_JOIN_SESSION_KEYRING) that gave root).
//! - **unshare, setns, and clone with a CLONE_NEW\* flag**: a new user
//!   namespace hands an unprivileged process "root" over fresh namespaces,
//!   and with it kernel code (netfilter, mounts of many filesystems) that
//!   otherwise only real root reaches: the road to most container-escape
//!   kernel bugs of the last decade. clone is allowed without those flags;
//!   clone3 passes its flags in memory, where a filter cannot look, so it
//!   returns ENOSYS and libc falls back to clone.
//! - **mount, umount2, pivot_root**, and the new mount API: a container's
//!   mounts are the runtime's business; CAP_SYS_ADMIN brings them back.
//! - **open_by_handle_at**: with it, the 2014 "shocker" exploit walked from
//!   a Docker container into the host's filesystem by guessing inode
//!   handles; it needs CAP_DAC_READ_SEARCH, and so does this rule.
//! - **bpf, perf_event_open, userfaultfd**: large kernel attack surface
//!   (the BPF verifier, perf's counters, userfaultfd as the classic way to
//!   stall the kernel mid-copy in a race exploit).
//! - **io_uring_setup, io_uring_enter, io_uring_register**: Docker allowed
//!   them until late 2023 and then took them out: io_uring has been the
//!   source of a large share of recent kernel exploits.
//! - **kexec_load, kexec_file_load, init_module, finit_module,
//!   delete_module, reboot, swapon, swapoff, acct, iopl, ioperm**: they act
//!   on the whole machine; each comes back with the capability it needs.
//! - **ptrace**: Docker allows it from kernel 4.8 on, where the kernel runs
//!   the filter again after a tracer changed the call (before 4.8 a tracer
//!   could rewrite a checked call into a forbidden one). This kernel is newer,
//!   and strace and gdb inside a container are worth having: allowed.
//! - **personality**: only the values programs use (PER_LINUX, PER_LINUX32,
//!   UNAME26 and the query 0xffffffff), not the ones that change the address
//!   space layout (ADDR_NO_RANDOMIZE and friends).
//! - **socket** is allowed for every family but AF_VSOCK, whose sockets are
//!   not namespaced and reach the hypervisor or the host.
//!
//! TIOCSTI (push characters into a terminal's input) is an ioctl, and Docker
//! does not filter ioctl's arguments; this runtime closes that hole another
//! way: from ch02 on, the container gets a session and a terminal of its own,
//! so it cannot push input into the terminal of the person running it.

use super::profile::{
    Action, Arch, ArchMapEntry, ArgCondition, ArgIndex, CompareOp, GoArch, Profile, Scope,
    SyscallRule,
};

/// What ordinary programs need: files, memory, processes, signals, time,
/// sockets (but see `socket` below), System V and POSIX IPC.
#[rustfmt::skip]
const ALWAYS: &[&str] = &[
    "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "cachestat",
    "capget", "capset", "chdir", "chmod", "chown", "clock_adjtime", "clock_getres",
    "clock_gettime", "clock_nanosleep", "close", "close_range", "connect",
    "copy_file_range", "creat", "dup", "dup2", "dup3", "epoll_create", "epoll_create1",
    "epoll_ctl", "epoll_ctl_old", "epoll_pwait", "epoll_pwait2", "epoll_wait",
    "epoll_wait_old", "eventfd", "eventfd2", "execve", "execveat", "exit", "exit_group",
    "faccessat", "faccessat2", "fadvise64", "fallocate", "fanotify_mark", "fchdir",
    "fchmod", "fchmodat", "fchmodat2", "fchown", "fchownat", "fcntl", "fdatasync",
    "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr", "fsetxattr", "fstat",
    "fstatfs", "fsync", "ftruncate", "futex", "futex_requeue", "futex_wait", "futex_waitv",
    "futex_wake", "futimesat", "getcpu", "getcwd", "getdents", "getdents64", "getegid",
    "geteuid", "getgid", "getgroups", "getitimer", "getpeername", "getpgid", "getpgrp",
    "getpid", "getppid", "getpriority", "getrandom", "getresgid", "getresuid", "getrlimit",
    "get_robust_list", "getrusage", "getsid", "getsockname", "getsockopt",
    "get_thread_area", "gettid", "gettimeofday", "getuid", "getxattr", "inotify_add_watch",
    "inotify_init", "inotify_init1", "inotify_rm_watch", "io_cancel", "ioctl", "io_destroy",
    "io_getevents", "io_pgetevents", "ioprio_get", "ioprio_set", "io_setup", "io_submit",
    "kill", "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self",
    "lchown", "lgetxattr", "link", "linkat", "listen", "listxattr", "llistxattr",
    "lremovexattr", "lseek", "lsetxattr", "lstat", "madvise", "map_shadow_stack",
    "membarrier", "memfd_create", "memfd_secret", "mincore", "mkdir", "mkdirat", "mknod",
    "mknodat", "mlock", "mlock2", "mlockall", "mmap", "mprotect", "mq_getsetattr",
    "mq_notify", "mq_open", "mq_timedreceive", "mq_timedsend", "mq_unlink", "mremap",
    "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock", "munlockall", "munmap",
    "name_to_handle_at", "nanosleep", "newfstatat", "open", "openat", "openat2", "pause",
    "pidfd_open", "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc", "pkey_free",
    "pkey_mprotect", "poll", "ppoll", "prctl", "pread64", "preadv", "preadv2", "prlimit64",
    "process_mrelease", "pselect6", "pwrite64", "pwritev", "pwritev2", "read", "readahead",
    "readlink", "readlinkat", "readv", "recvfrom", "recvmmsg", "recvmsg",
    "remap_file_pages", "removexattr", "rename", "renameat", "renameat2", "restart_syscall",
    "rmdir", "rseq", "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo",
    "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "rt_tgsigqueueinfo",
    "sched_getaffinity", "sched_getattr", "sched_getparam", "sched_get_priority_max",
    "sched_get_priority_min", "sched_getscheduler", "sched_rr_get_interval",
    "sched_setaffinity", "sched_setattr", "sched_setparam", "sched_setscheduler",
    "sched_yield", "seccomp", "select", "semctl", "semget", "semop", "semtimedop",
    "sendfile", "sendmmsg", "sendmsg", "sendto", "setfsgid", "setfsuid", "setgid",
    "setgroups", "setitimer", "setpgid", "setpriority", "setregid", "setresgid",
    "setresuid", "setreuid", "setrlimit", "set_robust_list", "setsid", "setsockopt",
    "set_thread_area", "set_tid_address", "setuid", "setxattr", "shmat", "shmctl", "shmdt",
    "shmget", "shutdown", "sigaltstack", "signalfd", "signalfd4", "socketpair", "splice",
    "stat", "statfs", "statx", "symlink", "symlinkat", "sync", "sync_file_range", "syncfs",
    "sysinfo", "tee", "tgkill", "time", "timer_create", "timer_delete", "timer_getoverrun",
    "timer_gettime", "timer_settime", "timerfd_create", "timerfd_gettime",
    "timerfd_settime", "times", "tkill", "truncate", "umask", "uname", "unlink", "unlinkat",
    "utime", "utimensat", "utimes", "vfork", "vmsplice", "wait4", "waitid", "write",
    "writev",
];

/// CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC |
/// CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET (linux/sched.h): the flags
/// that make new namespaces.
pub const CLONE_NAMESPACE_FLAGS: u64 = 0x7E02_0000;

/// AF_VSOCK (linux/socket.h).
const AF_VSOCK: u64 = 40;

/// personality(2) values programs use: PER_LINUX, PER_LINUX32, UNAME26,
/// UNAME26 | PER_LINUX32, and 0xffffffff, which only asks for the current one.
const SAFE_PERSONALITIES: &[u64] = &[0x0, 0x8, 0x2_0000, 0x2_0008, 0xffff_ffff];

/// The calls CAP_SYS_ADMIN brings back, as Docker's daemon does when a
/// container is given it: namespaces, mounts, the names of the machine.
#[rustfmt::skip]
const WITH_SYS_ADMIN: &[&str] = &[
    "bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick",
    "lookup_dcookie", "mount", "mount_setattr", "move_mount", "open_tree",
    "perf_event_open", "quotactl", "quotactl_fd", "setdomainname", "sethostname", "setns",
    "syslog", "umount2", "unshare",
];

/// Other calls that come back with the capability that guards them anyway.
const WITH_CAPABILITY: &[(&str, &[&str])] = &[
    ("CAP_DAC_READ_SEARCH", &["open_by_handle_at"]),
    ("CAP_SYS_BOOT", &["reboot"]),
    ("CAP_SYS_CHROOT", &["chroot"]),
    (
        "CAP_SYS_MODULE",
        &["delete_module", "init_module", "finit_module"],
    ),
    ("CAP_SYS_PACCT", &["acct"]),
    (
        "CAP_SYS_PTRACE",
        &[
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
            "ptrace",
        ],
    ),
    ("CAP_SYS_RAWIO", &["iopl", "ioperm"]),
    ("CAP_SYS_TIME", &["settimeofday", "clock_settime"]),
    ("CAP_SYS_TTY_CONFIG", &["vhangup"]),
    (
        "CAP_SYS_NICE",
        &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
    ),
    ("CAP_SYSLOG", &["syslog"]),
    ("CAP_BPF", &["bpf"]),
    ("CAP_PERFMON", &["perf_event_open"]),
];

fn rule(names: &[&str], action: Action) -> SyscallRule {
    SyscallRule {
        names: names.iter().map(|name| name.to_string()).collect(),
        name: None,
        action,
        errno_ret: None,
        args: Vec::new(),
        comment: None,
        includes: Scope::default(),
        excludes: Scope::default(),
    }
}

fn arg(index: u8, op: CompareOp, value: u64, value_two: u64) -> ArgCondition {
    ArgCondition {
        index: ArgIndex(index),
        value,
        value_two,
        op,
    }
}

fn caps(names: &[&str]) -> Scope {
    Scope {
        caps: names.iter().map(|name| name.to_string()).collect(),
        ..Scope::default()
    }
}

fn arches(names: &[GoArch]) -> Scope {
    Scope {
        arches: names.to_vec(),
        ..Scope::default()
    }
}

impl Profile {
    /// Docker's default profile, as this lab writes it (see the module doc).
    pub fn docker_default() -> Profile {
        let mut syscalls = vec![rule(ALWAYS, Action::Allow)];

        // Before 4.8 a tracer could change a call after the filter had
        // passed it; since then the kernel checks again.
        let mut tracing = rule(
            &["process_vm_readv", "process_vm_writev", "ptrace"],
            Action::Allow,
        );
        tracing.includes.min_kernel = Some("4.8".into());
        syscalls.push(tracing);

        let mut socket = rule(&["socket"], Action::Allow);
        socket.args = vec![arg(0, CompareOp::NotEqual, AF_VSOCK, 0)];
        socket.comment = Some("AF_VSOCK sockets are not namespaced".into());
        syscalls.push(socket);

        // One rule per value: conditions in one rule must all hold.
        for &value in SAFE_PERSONALITIES {
            let mut personality = rule(&["personality"], Action::Allow);
            personality.args = vec![arg(0, CompareOp::Equal, value, 0)];
            syscalls.push(personality);
        }

        let mut x86_only = rule(&["arch_prctl", "modify_ldt"], Action::Allow);
        x86_only.includes = arches(&[GoArch::Amd64]);
        syscalls.push(x86_only);

        // ANCHOR: by_capability
        let mut sys_admin = rule(WITH_SYS_ADMIN, Action::Allow);
        sys_admin.includes = caps(&["CAP_SYS_ADMIN"]);
        syscalls.push(sys_admin);

        // clone's flags are its first argument on x86_64 and aarch64 (s390
        // swaps the first two, which this lab does not compile for).
        let mut clone = rule(&["clone"], Action::Allow);
        clone.args = vec![arg(0, CompareOp::MaskedEqual, CLONE_NAMESPACE_FLAGS, 0)];
        clone.comment = Some("threads and processes, but no new namespaces".into());
        clone.excludes = caps(&["CAP_SYS_ADMIN"]);
        syscalls.push(clone);

        let mut clone3 = rule(&["clone3"], Action::Errno);
        clone3.errno_ret = Some(libc::ENOSYS as u32);
        clone3.comment = Some(
            "its flags are in memory, out of a filter's reach: ENOSYS makes libc use clone".into(),
        );
        clone3.excludes = caps(&["CAP_SYS_ADMIN"]);
        syscalls.push(clone3);

        for (capability, names) in WITH_CAPABILITY {
            let mut guarded = rule(names, Action::Allow);
            guarded.includes = caps(&[capability]);
            syscalls.push(guarded);
        }
        // ANCHOR_END: by_capability

        Profile {
            default_action: Action::Errno,
            default_errno_ret: Some(libc::EPERM as u32),
            architectures: Vec::new(),
            // Only the native architecture is compiled: no sub-architectures.
            arch_map: vec![
                ArchMapEntry {
                    architecture: Arch::X86_64,
                    sub_architectures: Vec::new(),
                },
                ArchMapEntry {
                    architecture: Arch::Aarch64,
                    sub_architectures: Vec::new(),
                },
            ],
            flags: Vec::new(),
            listener_path: None,
            listener_metadata: None,
            syscalls,
        }
    }
}
