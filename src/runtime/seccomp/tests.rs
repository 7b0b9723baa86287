//! What the compiled filters do, checked by running them (bpf.rs's
//! interpreter, and once the kernel itself), never by comparing bytes.

use super::*;

/// The capabilities Docker gives a container by default (the brief's list).
const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

const FIXTURE: &str = include_str!("../../../tests/fixtures/seccomp/docker-default.json");

const EPERM: SeccompAction = SeccompAction::Errno(libc::EPERM as u32);

fn target<'a>(capabilities: &'a [&'a str]) -> Target<'a> {
    Target {
        capabilities,
        kernel: (6, 18),
        arch: NATIVE.as_ref().expect("x86_64 or aarch64").go,
    }
}

fn number(name: &str) -> i64 {
    syscall_number(name).unwrap_or_else(|| panic!("{name} is not a call here"))
}

fn decide(filter: &Filter, name: &str, args: [u64; 6]) -> SeccompAction {
    filter.decide_native(number(name), args)
}

fn compile(json: &str, capabilities: &[&str]) -> Filter {
    Profile::from_json(json)
        .expect("profile parses")
        .compile_for(&target(capabilities))
        .expect("profile compiles")
}

// ---------------------------------------------------------------------------
// The syscall table

#[test]
fn seccomp_table_agrees_with_libc() {
    let known = [
        ("read", libc::SYS_read),
        ("write", libc::SYS_write),
        ("openat", libc::SYS_openat),
        ("close", libc::SYS_close),
        ("mmap", libc::SYS_mmap),
        ("munmap", libc::SYS_munmap),
        ("execve", libc::SYS_execve),
        ("exit_group", libc::SYS_exit_group),
        ("clone", libc::SYS_clone),
        ("clone3", libc::SYS_clone3),
        ("unshare", libc::SYS_unshare),
        ("setns", libc::SYS_setns),
        ("mount", libc::SYS_mount),
        ("umount2", libc::SYS_umount2),
        ("pivot_root", libc::SYS_pivot_root),
        ("keyctl", libc::SYS_keyctl),
        ("add_key", libc::SYS_add_key),
        ("request_key", libc::SYS_request_key),
        ("bpf", libc::SYS_bpf),
        ("perf_event_open", libc::SYS_perf_event_open),
        ("userfaultfd", libc::SYS_userfaultfd),
        ("open_by_handle_at", libc::SYS_open_by_handle_at),
        ("kexec_load", libc::SYS_kexec_load),
        ("finit_module", libc::SYS_finit_module),
        ("delete_module", libc::SYS_delete_module),
        ("reboot", libc::SYS_reboot),
        ("ptrace", libc::SYS_ptrace),
        ("personality", libc::SYS_personality),
        ("socket", libc::SYS_socket),
        ("getppid", libc::SYS_getppid),
        ("seccomp", libc::SYS_seccomp),
        ("newfstatat", libc::SYS_newfstatat),
        ("statx", libc::SYS_statx),
        ("pidfd_open", libc::SYS_pidfd_open),
        ("io_uring_setup", libc::SYS_io_uring_setup),
        ("landlock_create_ruleset", libc::SYS_landlock_create_ruleset),
        ("mseal", libc::SYS_mseal),
        ("fcntl", libc::SYS_fcntl),
    ];
    for (name, expected) in known {
        assert_eq!(syscall_number(name), Some(expected), "{name}");
        assert_eq!(syscall_name(expected), Some(name), "{expected}");
    }
    #[cfg(target_arch = "x86_64")]
    for (name, expected) in [
        ("open", libc::SYS_open),
        ("fork", libc::SYS_fork),
        ("arch_prctl", libc::SYS_arch_prctl),
        ("iopl", libc::SYS_iopl),
        ("fchmodat2", libc::SYS_fchmodat2),
        ("renameat", libc::SYS_renameat),
    ] {
        assert_eq!(syscall_number(name), Some(expected), "{name}");
    }
    assert_eq!(syscall_number("chown32"), None, "a 32-bit call");
}

#[test]
fn seccomp_every_built_in_name_is_a_call_of_a_compiled_architecture() {
    for rule in Profile::docker_default().syscalls {
        for name in rule.all_names() {
            let known = |table: &[(&str, i64)]| table.iter().any(|(known, _)| *known == name);
            assert!(
                known(syscall_table::X86_64) || known(syscall_table::AARCH64),
                "{name} is neither an x86_64 nor an aarch64 call"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// The built-in default

#[test]
fn seccomp_built_in_refuses_the_famous_calls_and_allows_ordinary_ones() {
    let filter = Profile::docker_default()
        .compile_for(&target(DEFAULT_CAPS))
        .expect("compiles");
    for refused in [
        "keyctl",
        "add_key",
        "request_key",
        "unshare",
        "setns",
        "mount",
        "umount2",
        "pivot_root",
        "bpf",
        "perf_event_open",
        "userfaultfd",
        "open_by_handle_at",
        "kexec_load",
        "kexec_file_load",
        "init_module",
        "finit_module",
        "delete_module",
        "reboot",
        "swapon",
        "swapoff",
        "acct",
        "io_uring_setup",
        "chroot",
    ] {
        assert_eq!(decide(&filter, refused, [0; 6]), EPERM, "{refused}");
    }
    for allowed in [
        "read",
        "write",
        "openat",
        "getppid",
        "execve",
        "exit_group",
        "mmap",
        "futex",
        "ptrace",
        "seccomp",
        "prctl",
        "wait4",
    ] {
        assert_eq!(
            decide(&filter, allowed, [0; 6]),
            SeccompAction::Allow,
            "{allowed}"
        );
    }
    // A number no kernel has: the default action.
    assert_eq!(filter.decide_native(1000, [0; 6]), EPERM);
}

#[test]
fn seccomp_built_in_allows_clone_without_namespace_flags_only() {
    let filter = Profile::docker_default()
        .compile_for(&target(DEFAULT_CAPS))
        .expect("compiles");
    let fork_like = libc::SIGCHLD as u64;
    let thread_like = (libc::CLONE_VM
        | libc::CLONE_FS
        | libc::CLONE_FILES
        | libc::CLONE_SIGHAND
        | libc::CLONE_THREAD
        | libc::CLONE_SYSVSEM
        | libc::CLONE_SETTLS
        | libc::CLONE_PARENT_SETTID
        | libc::CLONE_CHILD_CLEARTID) as u64;
    assert_eq!(
        decide(&filter, "clone", [fork_like, 0, 0, 0, 0, 0]),
        SeccompAction::Allow
    );
    assert_eq!(
        decide(&filter, "clone", [thread_like, 0, 0, 0, 0, 0]),
        SeccompAction::Allow
    );
    for namespace in [
        libc::CLONE_NEWUSER,
        libc::CLONE_NEWNS,
        libc::CLONE_NEWPID,
        libc::CLONE_NEWNET,
        libc::CLONE_NEWUTS,
        libc::CLONE_NEWIPC,
        libc::CLONE_NEWCGROUP,
    ] {
        let flags = namespace as u64 | fork_like;
        assert_eq!(
            decide(&filter, "clone", [flags, 0, 0, 0, 0, 0]),
            EPERM,
            "{flags:#x}"
        );
    }
    assert_eq!(
        decide(&filter, "clone3", [0; 6]),
        SeccompAction::Errno(libc::ENOSYS as u32)
    );
}

#[test]
fn seccomp_built_in_socket_and_personality_by_argument() {
    let filter = Profile::docker_default()
        .compile_for(&target(DEFAULT_CAPS))
        .expect("compiles");
    let socket = |family: i32| decide(&filter, "socket", [family as u64, 1, 0, 0, 0, 0]);
    assert_eq!(socket(libc::AF_INET), SeccompAction::Allow);
    assert_eq!(socket(libc::AF_UNIX), SeccompAction::Allow);
    assert_eq!(socket(libc::AF_VSOCK), EPERM);
    let personality = |value: u64| decide(&filter, "personality", [value, 0, 0, 0, 0, 0]);
    for safe in [0, 8, 0x20000, 0x20008, 0xffff_ffff] {
        assert_eq!(personality(safe), SeccompAction::Allow, "{safe:#x}");
    }
    // ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC: they weaken the layout.
    assert_eq!(personality(0x0040000), EPERM);
    assert_eq!(personality(0x0400000), EPERM);
}

#[test]
fn seccomp_capabilities_bring_calls_back() {
    let mut with_admin = DEFAULT_CAPS.to_vec();
    with_admin.push("CAP_SYS_ADMIN");
    let filter = Profile::docker_default()
        .compile_for(&target(&with_admin))
        .expect("compiles");
    assert_eq!(decide(&filter, "mount", [0; 6]), SeccompAction::Allow);
    assert_eq!(decide(&filter, "unshare", [0; 6]), SeccompAction::Allow);
    let new_user = (libc::CLONE_NEWUSER | libc::SIGCHLD) as u64;
    assert_eq!(
        decide(&filter, "clone", [new_user, 0, 0, 0, 0, 0]),
        SeccompAction::Allow
    );
    assert_eq!(decide(&filter, "clone3", [0; 6]), SeccompAction::Allow);
    // CAP_SYS_ADMIN is not every capability.
    assert_eq!(decide(&filter, "keyctl", [0; 6]), EPERM);
    assert_eq!(decide(&filter, "reboot", [0; 6]), EPERM);

    let with_boot = [DEFAULT_CAPS, &["CAP_SYS_BOOT"]].concat();
    let filter = Profile::docker_default()
        .compile_for(&target(&with_boot))
        .expect("compiles");
    assert_eq!(decide(&filter, "reboot", [0; 6]), SeccompAction::Allow);
}

#[test]
fn seccomp_min_kernel_decides_on_the_running_kernel() {
    let old_kernel = Target {
        kernel: (4, 4),
        ..target(DEFAULT_CAPS)
    };
    let filter = Profile::docker_default()
        .compile_for(&old_kernel)
        .expect("compiles");
    assert_eq!(decide(&filter, "ptrace", [0; 6]), EPERM);
}

#[test]
fn seccomp_other_architectures_are_killed() {
    let filter = Profile::docker_default()
        .compile_for(&target(DEFAULT_CAPS))
        .expect("compiles");
    // int 0x80 on x86_64: getppid is 64 on i386.
    let i386 = Call {
        nr: 64,
        arch: bpf::AUDIT_ARCH_I386,
        instruction_pointer: 0,
        args: [0; 6],
    };
    assert_eq!(filter.decide(&i386), SeccompAction::KillProcess);
    #[cfg(target_arch = "x86_64")]
    {
        // x32's getppid: x86_64's number with bit 30 set.
        let x32 = Call::native(number("getppid") | 0x4000_0000, [0; 6]);
        assert_eq!(filter.decide(&x32), SeccompAction::KillProcess);
    }
}

#[test]
fn seccomp_built_in_round_trips_through_json() {
    let built_in = Profile::docker_default();
    let again = Profile::from_json(&built_in.to_json()).expect("its own JSON parses");
    assert_eq!(again, built_in);
}

#[test]
fn seccomp_built_in_size() {
    let filter = Profile::docker_default()
        .compile_for(&target(DEFAULT_CAPS))
        .expect("compiles");
    // A base filter (default EPERM) and the clone3 filter (ENOSYS).
    assert_eq!(filter.programs(), 2, "{:?}", filter.describe());
    println!("built-in: {:?}", filter.describe());
    assert!(filter.instructions() < 2 * MAX_INSTRUCTIONS);
    assert!(filter.skipped().len() <= 12, "{:?}", filter.skipped());
}

// ---------------------------------------------------------------------------
// How several actions combine

#[test]
fn seccomp_each_rule_gets_its_action_and_the_rest_the_default() {
    let filter = compile(
        r#"{
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["keyctl"], "action": "SCMP_ACT_KILL_PROCESS"},
                {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5},
                {"names": ["getpid", "getuid"], "action": "SCMP_ACT_LOG"},
                {"names": ["getgid"], "action": "SCMP_ACT_TRAP"},
                {"names": ["gettid"], "action": "SCMP_ACT_KILL"}
            ]
        }"#,
        &[],
    );
    // No base filter (default ALLOW): one per action.
    assert_eq!(filter.programs(), 5);
    assert_eq!(
        decide(&filter, "keyctl", [0; 6]),
        SeccompAction::KillProcess
    );
    // ERRNO is stricter than LOG.
    assert_eq!(decide(&filter, "getpid", [0; 6]), SeccompAction::Errno(5));
    assert_eq!(decide(&filter, "getuid", [0; 6]), SeccompAction::Log);
    assert_eq!(decide(&filter, "getgid", [0; 6]), SeccompAction::Trap);
    assert_eq!(decide(&filter, "gettid", [0; 6]), SeccompAction::KillThread);
    assert_eq!(decide(&filter, "read", [0; 6]), SeccompAction::Allow);
}

#[test]
fn seccomp_errno_falls_back_to_default_errno_then_eperm() {
    let filter = compile(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
            "syscalls": [{"names": ["read", "seccomp"], "action": "SCMP_ACT_ALLOW"},
                         {"names": ["write"], "action": "SCMP_ACT_ERRNO"}]}"#,
        &[],
    );
    assert_eq!(decide(&filter, "write", [0; 6]), SeccompAction::Errno(38));
    assert_eq!(decide(&filter, "getpid", [0; 6]), SeccompAction::Errno(38));
    assert_eq!(decide(&filter, "read", [0; 6]), SeccompAction::Allow);
    let filter = compile(r#"{"defaultAction": "SCMP_ACT_ERRNO"}"#, &[]);
    assert_eq!(decide(&filter, "read", [0; 6]), EPERM);
}

#[test]
fn seccomp_conditions_in_a_rule_all_hold_and_rules_are_alternatives() {
    let filter = compile(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["seccomp"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["kill"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 10, "op": "SCMP_CMP_GE"},
                      {"index": 0, "value": 20, "op": "SCMP_CMP_LT"}]},
            {"names": ["kill"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 1, "value": 9, "op": "SCMP_CMP_EQ"}]}
        ]}"#,
        &[],
    );
    let kill = |pid: u64, signal: u64| decide(&filter, "kill", [pid, signal, 0, 0, 0, 0]);
    assert_eq!(kill(10, 15), SeccompAction::Allow);
    assert_eq!(kill(19, 15), SeccompAction::Allow);
    assert_eq!(kill(20, 15), EPERM);
    assert_eq!(kill(9, 15), EPERM);
    assert_eq!(kill(1, 9), SeccompAction::Allow);
}

/// An argument and whether the comparison should hold for it.
type Probe = (u64, bool);

#[test]
fn seccomp_every_comparison_on_64_bit_values() {
    let big = 0x1_0000_0005u64;
    let cases: &[(&str, u64, &[Probe])] = &[
        (
            "SCMP_CMP_NE",
            big,
            &[(big, false), (5, true), (big + 1, true)],
        ),
        (
            "SCMP_CMP_LT",
            big,
            &[(big - 1, true), (5, true), (big, false), (u64::MAX, false)],
        ),
        (
            "SCMP_CMP_LE",
            big,
            &[
                (big, true),
                (5, true),
                (big + 1, false),
                (0x2_0000_0000, false),
            ],
        ),
        (
            "SCMP_CMP_EQ",
            big,
            &[(big, true), (5, false), (0x1_0000_0000, false)],
        ),
        (
            "SCMP_CMP_GE",
            big,
            &[
                (big, true),
                (u64::MAX, true),
                (5, false),
                (0x1_0000_0004, false),
            ],
        ),
        (
            "SCMP_CMP_GT",
            big,
            &[
                (big + 1, true),
                (0x2_0000_0000, true),
                (big, false),
                (6, false),
            ],
        ),
    ];
    for (op, value, probes) in cases {
        let filter = compile(
            &format!(
                r#"{{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
                    {{"names": ["seccomp"], "action": "SCMP_ACT_ALLOW"}},
                    {{"names": ["lseek"], "action": "SCMP_ACT_ALLOW",
                      "args": [{{"index": 1, "value": {value}, "op": "{op}"}}]}}]}}"#
            ),
            &[],
        );
        for &(arg, allowed) in *probes {
            let expected = if allowed { SeccompAction::Allow } else { EPERM };
            assert_eq!(
                decide(&filter, "lseek", [0, arg, 0, 0, 0, 0]),
                expected,
                "{arg:#x} {op} {value:#x}"
            );
        }
    }
}

#[test]
fn seccomp_masked_eq_is_libseccomps() {
    // (arg & value) == valueTwo
    let filter = compile(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["seccomp"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["mmap"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 2, "value": 6, "valueTwo": 2, "op": "SCMP_CMP_MASKED_EQ"}]}]}"#,
        &[],
    );
    let mmap = |protection: u64| decide(&filter, "mmap", [0, 4096, protection, 0, 0, 0]);
    assert_eq!(mmap(libc::PROT_WRITE as u64), SeccompAction::Allow);
    assert_eq!(
        mmap((libc::PROT_WRITE | libc::PROT_READ) as u64),
        SeccompAction::Allow
    );
    assert_eq!(mmap((libc::PROT_WRITE | libc::PROT_EXEC) as u64), EPERM);
    assert_eq!(mmap(0), EPERM);
}

#[test]
fn seccomp_a_profile_that_denies_seccomp_itself_loads_that_program_last() {
    let filter = compile(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["seccomp"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["keyctl"], "action": "SCMP_ACT_KILL_PROCESS"}]}"#,
        &[],
    );
    let loading = Filter::loading_call(0);
    let first = &filter.programs[..1];
    assert_eq!(filter.decide_among(first, &loading), SeccompAction::Allow);
    assert_eq!(filter.decide(&loading), EPERM);
}

#[test]
fn seccomp_unknown_names_are_skipped_and_counted() {
    let filter = compile(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["seccomp", "chown32", "no_such_call", "read"], "action": "SCMP_ACT_ALLOW"},
            {"name": "write", "action": "SCMP_ACT_ALLOW"}]}"#,
        &[],
    );
    assert_eq!(filter.skipped(), ["chown32", "no_such_call"]);
    assert_eq!(decide(&filter, "read", [0; 6]), SeccompAction::Allow);
    assert_eq!(decide(&filter, "write", [0; 6]), SeccompAction::Allow);
}

// ---------------------------------------------------------------------------
// Reading profiles

fn parse_error(json: &str) -> String {
    Profile::from_json(json).expect_err("should be refused")
}

#[test]
fn seccomp_a_bad_action_names_line_column_and_field() {
    let json = "{\n  \"defaultAction\": \"SCMP_ACT_ERRNO\",\n  \"syscalls\": [\n    {\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\"},\n    {\"names\": [\"write\"], \"action\": \"SCMP_ACT_ALOW\"}\n  ]\n}";
    let message = parse_error(json);
    assert!(
        message.starts_with(
            "line 5 column 51: syscalls[1].action: unknown variant `SCMP_ACT_ALOW`, expected one of `SCMP_ACT_ALLOW`"
        ),
        "{message}"
    );
}

#[test]
fn seccomp_bad_profiles_are_refused_with_the_field() {
    let cases = [
        (r#"{"syscalls": []}"#, "missing field `defaultAction`"),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#,
            "syscalls[0].args[0].index: argument index 6 is out of range",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQUAL"}]}]}"#,
            "syscalls[0].args[0].op: unknown variant `SCMP_CMP_EQUAL`",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_65"]}"#,
            "architectures[0]: unknown variant `SCMP_ARCH_X86_65`",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd65"]}}]}"#,
            "syscalls[0].includes.arches[0]: unknown variant `amd65`",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_NOTIFY"}"#,
            "defaultAction: SCMP_ACT_NOTIFY needs a seccomp agent",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "flags": ["SECCOMP_FILTER_FLAG_NEW_LISTENER"]}"#,
            "flags[0]: unknown variant `SECCOMP_FILTER_FLAG_NEW_LISTENER`",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "four"}}]}"#,
            "syscalls[0].includes.minKernel: kernel version \"four\" is not major.minor",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["clone"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "valueTwo": 3, "op": "SCMP_CMP_MASKED_EQ"}]}]}"#,
            "syscalls[0].args[0]: valueTwo 0x3 has bits outside the mask 0x1",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "listenerPath": "/run/agent.sock"}"#,
            "listenerPath: this runtime has no seccomp agent",
        ),
    ];
    for (json, expected) in cases {
        let message = parse_error(json);
        assert!(
            message.contains(expected),
            "{json}\n  gave: {message}\n  want: {expected}"
        );
    }
}

#[test]
fn seccomp_unknown_fields_are_ignored_and_nulls_are_empty() {
    let profile = Profile::from_json(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "whatDockerAddsNext": 1,
            "archMap": [{"architecture": "SCMP_ARCH_RISCV64", "subArchitectures": null}],
            "syscalls": null}"#,
    )
    .expect("parses");
    assert!(profile.syscalls.is_empty());
    assert!(profile.arch_map[0].sub_architectures.is_empty());
}

#[test]
fn seccomp_from_file_names_the_file() {
    let dir = std::env::temp_dir().join(format!("lab-seccomp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("p.json");
    std::fs::write(&path, "{\"defaultAction\": \"SCMP_ACT_ALOW\"}").expect("write");
    let error = Profile::from_file(&path).expect_err("refused");
    assert_eq!(error.exit_code(), crate::error::EXIT_RUNTIME_FAILURE);
    let message = error.to_string();
    assert!(
        message.starts_with(&format!(
            "seccomp profile {}, line 1 column 34: defaultAction: unknown variant",
            path.display()
        )),
        "{message}"
    );
    let missing = Profile::from_file(&dir.join("absent.json")).expect_err("refused");
    assert!(missing.to_string().contains("(ENOENT)"), "{missing}");
    std::fs::remove_dir_all(&dir).expect("clean up");
}

// ---------------------------------------------------------------------------
// The fixture in Docker's format behaves as the built-in

/// Calls whose arguments the profiles look at, with arguments worth trying.
fn interesting_calls() -> Vec<(&'static str, [u64; 6])> {
    let mut calls = Vec::new();
    let sigchld = libc::SIGCHLD as u64;
    for flags in [
        sigchld,
        0x003d_0f00, // what glibc's pthread_create passes
        libc::CLONE_NEWUSER as u64 | sigchld,
        libc::CLONE_NEWNS as u64,
        libc::CLONE_NEWNET as u64 | libc::CLONE_NEWPID as u64,
        libc::CLONE_NEWCGROUP as u64,
        libc::CLONE_NEWTIME as u64, // not among Docker's flags: allowed
        u64::MAX,
    ] {
        calls.push(("clone", [flags, 0, 0, 0, 0, 0]));
    }
    for family in [
        libc::AF_UNIX,
        libc::AF_INET,
        libc::AF_INET6,
        libc::AF_NETLINK,
        libc::AF_VSOCK,
        libc::AF_PACKET,
    ] {
        calls.push(("socket", [family as u64, 1, 0, 0, 0, 0]));
    }
    for persona in [0, 8, 0x20000, 0x20008, 0xffff_ffff, 0x40000, 0x1_0000_0000] {
        calls.push(("personality", [persona, 0, 0, 0, 0, 0]));
    }
    calls
}

fn assert_fixture_matches_built_in(capabilities: &[&str]) {
    let fixture = compile(FIXTURE, capabilities);
    let built_in = Profile::docker_default()
        .compile_for(&target(capabilities))
        .expect("compiles");
    for nr in 0..=460 {
        for args in [[0; 6], [u64::MAX; 6]] {
            assert_eq!(
                fixture.decide_native(nr, args),
                built_in.decide_native(nr, args),
                "call {nr} ({:?}) with {capabilities:?}",
                syscall_name(nr)
            );
        }
    }
    for (name, args) in interesting_calls() {
        assert_eq!(
            decide(&fixture, name, args),
            decide(&built_in, name, args),
            "{name}{args:x?} with {capabilities:?}"
        );
    }
}

#[test]
fn seccomp_fixture_behaves_as_the_built_in() {
    assert_fixture_matches_built_in(DEFAULT_CAPS);
    let with_admin = [DEFAULT_CAPS, &["CAP_SYS_ADMIN"]].concat();
    assert_fixture_matches_built_in(&with_admin);
    let with_more = [
        DEFAULT_CAPS,
        &[
            "CAP_SYS_PTRACE",
            "CAP_SYS_BOOT",
            "CAP_DAC_READ_SEARCH",
            "CAP_SYS_TIME",
        ],
    ]
    .concat();
    assert_fixture_matches_built_in(&with_more);

    let fixture = compile(FIXTURE, DEFAULT_CAPS);
    assert_eq!(decide(&fixture, "mount", [0; 6]), EPERM);
    let fixture = compile(FIXTURE, &with_admin);
    assert_eq!(decide(&fixture, "mount", [0; 6]), SeccompAction::Allow);
}

// ---------------------------------------------------------------------------
// The kernel agrees

#[test]
fn seccomp_the_kernel_refuses_what_the_built_in_refuses() {
    let filter = Profile::docker_default()
        .compile_for(&target(DEFAULT_CAPS))
        .expect("compiles");
    // Everything allocated before fork: the child of a threaded process
    // makes raw system calls only, then _exit.
    // SAFETY: the child touches no lock and no allocator.
    match unsafe { nix::unistd::fork() }.expect("fork") {
        nix::unistd::ForkResult::Child => {
            let errno = || nix::errno::Errno::last_raw();
            let mut code = 0;
            // SAFETY: raw system calls with constant arguments.
            unsafe {
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                    libc::_exit(100);
                }
                if filter.install().is_err() {
                    libc::_exit(101);
                }
                const KEYCTL_GET_KEYRING_ID: libc::c_long = 0;
                const KEY_SPEC_SESSION_KEYRING: libc::c_long = -3;
                let keyctl = libc::syscall(
                    libc::SYS_keyctl,
                    KEYCTL_GET_KEYRING_ID,
                    KEY_SPEC_SESSION_KEYRING,
                    0,
                );
                if keyctl == -1 && errno() == libc::EPERM {
                    code |= 1;
                }
                if libc::syscall(libc::SYS_getppid) > 0 {
                    code |= 2;
                }
                if libc::syscall(libc::SYS_unshare, libc::CLONE_NEWUSER) == -1
                    && errno() == libc::EPERM
                {
                    code |= 4;
                }
                if libc::syscall(libc::SYS_clone3, 0, 0) == -1 && errno() == libc::ENOSYS {
                    code |= 8;
                }
                libc::_exit(code);
            }
        }
        nix::unistd::ForkResult::Parent { child } => {
            let status = nix::sys::wait::waitpid(child, None).expect("waitpid");
            assert_eq!(
                status,
                nix::sys::wait::WaitStatus::Exited(child, 15),
                "1 keyctl EPERM, 2 getppid works, 4 unshare EPERM, 8 clone3 ENOSYS"
            );
        }
    }
}

/// The kernel reads socket's family as an int: the upper 32 bits of the
/// register must not get AF_VSOCK past the rule (the attack review's
/// finding), in the built-in profile and in Docker's format alike.
#[test]
fn an_int_argument_is_compared_on_its_low_32_bits() {
    let builtin = Profile::docker_default()
        .compile_for(&target(DEFAULT_CAPS))
        .unwrap();
    let fixture = compile(FIXTURE, DEFAULT_CAPS);
    for filter in [&builtin, &fixture] {
        for family in [40u64, 40 | 1 << 32, 40 | 0xffff_ffff_0000_0000] {
            assert_eq!(
                decide(filter, "socket", [family, 1, 0, 0, 0, 0]),
                EPERM,
                "{family:#x}"
            );
        }
        assert_eq!(
            decide(filter, "socket", [2, 1, 0, 0, 0, 0]),
            SeccompAction::Allow
        );
        assert_eq!(
            decide(filter, "socket", [2 | 1 << 32, 1, 0, 0, 0, 0]),
            SeccompAction::Allow,
            "the kernel makes an AF_INET socket of it: nothing to refuse"
        );
    }
}
