//! Checks that hold for every chapter from the one that introduced them
//! on, written once and called from each chapter's test file with the
//! chapter's binary.

use super::*;

/// One test per check below, named after it, for `$chapter`.
#[macro_export]
macro_rules! jail_suite {
    ($chapter:expr) => {
        as_root!(breakout_fails, common::isolation::breakout_fails($chapter));
        as_root!(
            cannot_chroot_again,
            common::isolation::cannot_chroot_again($chapter)
        );
        as_root!(
            inherited_fds_are_closed,
            common::isolation::inherited_fds_are_closed($chapter)
        );
        as_root!(
            working_directory_is_inside,
            common::isolation::working_directory_is_inside($chapter)
        );
        as_root!(
            ps_sees_only_its_own_processes,
            common::isolation::ps_sees_only_its_own_processes($chapter)
        );
        as_root!(
            orphans_are_reaped,
            common::isolation::orphans_are_reaped($chapter)
        );
        as_root!(
            sigterm_ends_the_container_with_143,
            common::isolation::signal_to_runtime_ends_container(
                $chapter,
                nix::sys::signal::Signal::SIGTERM
            )
        );
        as_root!(
            sigint_ends_the_container_with_130,
            common::isolation::signal_to_runtime_ends_container(
                $chapter,
                nix::sys::signal::Signal::SIGINT
            )
        );
        as_root!(
            hostname_is_private,
            common::isolation::hostname_is_private($chapter)
        );
        as_root!(
            no_init_makes_the_command_pid_1,
            common::isolation::no_init_makes_the_command_pid_1($chapter)
        );
        as_root!(
            a_shell_gets_a_terminal_of_its_own,
            common::isolation::a_shell_gets_a_terminal_of_its_own($chapter)
        );
        as_root!(
            the_init_holds_no_capabilities,
            common::isolation::the_init_holds_no_capabilities($chapter)
        );
        as_root!(
            the_environment_is_the_containers_own,
            common::isolation::the_environment_is_the_containers_own($chapter)
        );
    };
}

/// The container starts from PATH, HOME, HOSTNAME and what `-e` adds; a
/// variable of the runtime's reaches neither the command nor, through
/// /proc/1/environ, the init that stayed behind from the runtime.
pub fn the_environment_is_the_containers_own(chapter: &str) {
    // In a user namespace PID 1 may be unreadable (not dumpable): as good.
    let script = "env | sort; echo ---; cat /proc/1/environ 2>/dev/null | tr '\\0' '\\n'";
    let output = Command::new(bin(chapter))
        .args(host_safe_flags(chapter))
        .args([
            "-e",
            "GREETING=hello",
            "-e",
            "LAB_PASSED_ON",
            "-e",
            "LAB_NOT_SET",
        ])
        .args(["--hostname", "envtest"])
        .arg(rootfs())
        .args(["/bin/sh", "-c", script])
        .env("LAB_PASSED_ON", "from-the-runtime")
        .env("LAB_RUNTIME_SECRET", "must-not-reach")
        .env_remove("LAB_NOT_SET")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let text = stdout(&output);
    let (command_env, init_env) = text.split_once("---\n").unwrap();
    // sh adds PWD, SHLVL and `_` of its own; everything else is ours.
    let ours: Vec<&str> = command_env
        .lines()
        .filter(|line| {
            !["PWD=", "SHLVL=", "_="]
                .iter()
                .any(|own| line.starts_with(own))
        })
        .collect();
    let path = format!("PATH={}", container_lab::runtime::command::DEFAULT_PATH);
    assert_eq!(
        ours,
        [
            "GREETING=hello",
            "HOME=/root",
            "HOSTNAME=envtest",
            "LAB_PASSED_ON=from-the-runtime",
            path.as_str()
        ],
        "{chapter}: the command's environment"
    );
    assert!(
        !init_env.contains('='),
        "{chapter}: /proc/1/environ still holds {init_env:?}"
    );
}
/// The checks that hold from chapter 03 on (a mount of the rootfs of its
/// own, `nodev`).
#[macro_export]
macro_rules! mount_namespace_suite {
    ($chapter:expr) => {
        as_root!(
            rootfs_device_nodes_stay_shut,
            common::isolation::rootfs_device_nodes_stay_shut($chapter)
        );
    };
}

/// The checks that hold from chapter 05 on (flags the kernel locked).
#[macro_export]
macro_rules! user_namespace_suite {
    ($chapter:expr) => {
        as_root!(
            rootfs_flags_are_locked,
            common::isolation::rootfs_flags_are_locked($chapter, &[])
        );
        as_root!(
            rootfs_flags_are_locked_on_the_chowned_copy,
            common::isolation::rootfs_flags_are_locked($chapter, &["--chown-copy"])
        );
    };
}

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The ch01 breakout program is blocked, and the host file stays out of reach.
pub fn breakout_fails(chapter: &str) {
    let marker_dir = Scratch::new(&format!("{chapter}-breakout"));
    let marker = marker_dir.join("host-secret.txt");
    std::fs::write(&marker, "host secret\n").unwrap();
    let marker = marker.to_str().unwrap();
    let output = run_in(
        chapter,
        &["/usr/local/bin/lab-breakout", "/bin/cat", marker],
    );
    assert_eq!(
        code(&output),
        1,
        "the breakout must fail: {}",
        stderr(&output)
    );
    assert!(!stdout(&output).contains("host secret"));
    assert!(
        stderr(&output).contains(".lab-breakout\") failed: operation not permitted (EPERM)"),
        "{}",
        stderr(&output)
    );
    assert!(
        !rootfs().join(".lab-breakout").exists(),
        "trapdoor left behind"
    );
}

/// CAP_SYS_CHROOT is gone from the command's bounding set (bit 18 of CapBnd).
pub fn cannot_chroot_again(chapter: &str) {
    let output = run_in(chapter, &["/bin/grep", "^CapBnd:", "/proc/self/status"]);
    let mask = container_lab::runtime::caps::effective_from_status(
        &stdout(&output).replace("CapBnd:", "CapEff:"),
    )
    .unwrap_or_else(|| panic!("no CapBnd line: {}", stdout(&output)));
    assert_eq!(
        mask & (1 << 18),
        0,
        "CAP_SYS_CHROOT still in the bounding set: {mask:x}"
    );
    assert_ne!(
        mask & (1 << 21),
        0,
        "only CAP_SYS_CHROOT should be gone (until ch09)"
    );
}

/// A directory fd the runtime inherited does not reach the command: only
/// 0, 1, 2 (and the fd ls itself opens) are listed.
pub fn inherited_fds_are_closed(chapter: &str) {
    use std::os::unix::process::CommandExt;
    let host_dir = nix::fcntl::open(
        "/",
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY,
        nix::sys::stat::Mode::empty(),
    )
    .unwrap();
    let leaked = std::os::fd::AsRawFd::as_raw_fd(&host_dir);
    let mut command = Command::new(bin(chapter));
    command.args(host_safe_flags(chapter));
    command.args([rootfs().to_str().unwrap(), "/bin/ls", "/proc/self/fd"]);
    // SAFETY: pre_exec only clears FD_CLOEXEC on an fd we own, as a
    // careless caller of the runtime would leave it.
    unsafe {
        command.pre_exec(move || {
            nix::fcntl::fcntl(
                std::os::fd::BorrowedFd::borrow_raw(leaked),
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
            )
            .map(drop)
            .map_err(std::io::Error::from)
        });
    }
    let output = command.output().unwrap();
    let fds: Vec<String> = stdout(&output)
        .lines()
        .map(|l| l.trim().to_string())
        .collect();
    // 0, 1, 2, and 3: the directory ls opens to list /proc/self/fd.
    assert_eq!(
        fds,
        ["0", "1", "2", "3"],
        "fd {leaked} (the host's /) must not reach the command"
    );
    drop(host_dir);
}

/// The working directory starts at the new root and `..` stays there.
pub fn working_directory_is_inside(chapter: &str) {
    let output = run_in(chapter, &["/bin/sh", "-c", "pwd; cd ..; pwd"]);
    assert_eq!(stdout(&output), "/\n/\n", "{}", stderr(&output));
}

/// `ps` lists the init (PID 1), the command and ps itself: nothing of the host.
pub fn ps_sees_only_its_own_processes(chapter: &str) {
    let output = run_in(chapter, &["/bin/sh", "-c", "ps -e -o pid=,comm="]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let rows: Vec<(u32, String)> = stdout(&output)
        .lines()
        .map(|line| {
            let mut words = line.split_whitespace();
            (
                words.next().unwrap().parse().unwrap(),
                words.next().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(rows.len(), 3, "init, sh and ps only: {rows:?}");
    assert_eq!(rows[0].0, 1, "{rows:?}");
    assert_eq!(
        rows[0].1,
        chapter.chars().take(15).collect::<String>(),
        "PID 1 is the init: {rows:?}"
    );
    assert!(rows.iter().any(|(_, comm)| comm == "sh"), "{rows:?}");
    assert!(rows.iter().any(|(_, comm)| comm == "ps"), "{rows:?}");
}

/// Orphans are re-parented to the init, which reaps them: while the
/// orphan runs its parent is PID 1, and after it exits no zombie (state Z)
/// is left in the container.
pub fn orphans_are_reaped(chapter: &str) {
    // lab-probe leaves a child behind and exits at once; the orphan exits
    // 0.5 s later. (Not `(sleep 0.5 &)`: a shell opens /dev/null for a
    // background job, and ch02 has no /dev yet.)
    let script = "/usr/local/bin/lab-probe --orphan 500; ps -e -o ppid=,comm=; sleep 1.5; ps -e -o stat=,comm=";
    let output = run_in(chapter, &["/bin/sh", "-c", script]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let listing = stdout(&output);
    let adopted = listing.lines().any(|l| {
        let words: Vec<&str> = l.split_whitespace().collect();
        words == ["1", "lab-probe"]
    });
    assert!(adopted, "no orphan adopted by PID 1:\n{listing}");
    let zombies: Vec<&str> = listing
        .lines()
        .filter(|l| l.trim_start().starts_with('Z'))
        .collect();
    assert!(zombies.is_empty(), "zombies left: {zombies:?}\n{listing}");
}

/// A signal sent to the runtime ends the container; the runtime returns 128+N.
pub fn signal_to_runtime_ends_container(chapter: &str, signal: nix::sys::signal::Signal) {
    let mut runtime = Command::new(bin(chapter))
        .args(host_safe_flags(chapter))
        .args([
            rootfs().to_str().unwrap(),
            "/bin/sh",
            "-c",
            "echo ready; exec sleep 60",
        ])
        // No terminal on any of fds 0-2, whether or not `cargo test` runs
        // on one: with one, the runtime would give the container a
        // terminal of its own and relay it, another path than in CI.
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(runtime.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "ready\n");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(runtime.id() as i32), signal).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = runtime.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = runtime.kill();
            panic!("{chapter} did not end within 20 s of {signal}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        status.code(),
        Some(128 + signal as i32),
        "{chapter} after {signal}"
    );
}

/// The hostname is set inside and the host's does not change.
pub fn hostname_is_private(chapter: &str) {
    let before = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let rootfs = rootfs().to_str().unwrap();
    let script = "hostname; hostname renamed; hostname";
    let args = ["--hostname", "inside", rootfs, "/bin/sh", "-c", script];
    let output = run(chapter, host_safe_flags(chapter).iter().chain(args.iter()));
    assert_eq!(stdout(&output), "inside\nrenamed\n", "{}", stderr(&output));
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap(),
        before
    );
}

/// Without the init, the command is PID 1 itself.
pub fn no_init_makes_the_command_pid_1(chapter: &str) {
    let rootfs = rootfs().to_str().unwrap();
    let args = ["--no-init", rootfs, "/bin/sh", "-c", "echo $$"];
    let output = run(chapter, host_safe_flags(chapter).iter().chain(args.iter()));
    assert_eq!(stdout(&output), "1\n", "{}", stderr(&output));
}

/// A device node shipped in the rootfs does not open (the rootfs is mounted
/// `nodev`), while the container's own /dev/null does. The node is the
/// harmless c 1 3, removed whatever happens.
pub fn rootfs_device_nodes_stay_shut(chapter: &str) {
    struct Node(std::path::PathBuf);
    impl Drop for Node {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let name = format!(".nodev-test-{}-{chapter}", std::process::id());
    let node = Node(rootfs().join(&name));
    nix::sys::stat::mknod(
        &node.0,
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        nix::sys::stat::makedev(1, 3),
    )
    .unwrap();
    let script =
        format!("echo x > /dev/null && echo dev-null-ok; echo x > /{name} && echo node-opened");
    let output = run_in(chapter, &["/bin/sh", "-c", &script]);
    assert_eq!(
        stdout(&output),
        "dev-null-ok\n",
        "{chapter}: {}",
        stderr(&output)
    );
    assert!(
        stderr(&output).contains("Permission denied"),
        "{chapter}: {}",
        stderr(&output)
    );
}

/// On a terminal (script(1) makes one), the container's shell gets a
/// terminal of its own as its controlling terminal: no complaint about the
/// terminal's process group, its exit code passed through. (That the
/// host's terminal is out of reach is the scorecard's `tty.inject`.)
pub fn a_shell_gets_a_terminal_of_its_own(chapter: &str) {
    let mut script = on_a_terminal(chapter, &["/bin/sh", "-i"]);
    let mut input = script.stdin.take().unwrap();
    // Typed after the shell is up, as a user would.
    std::thread::sleep(Duration::from_millis(1500));
    std::io::Write::write_all(&mut input, b"test -t 0 && echo stdin-is-a-terminal; test $(cut -d' ' -f7 /proc/self/stat) != 0 && echo with-a-controlling-terminal; exit 3\n").unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    drop(input);
    let output = script.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned() + &stderr(&output);
    assert!(
        text.contains("stdin-is-a-terminal\r\n"),
        "{chapter}: {text}"
    );
    // tty_nr in proc(5): the shell's own terminal is its controlling one.
    assert!(
        text.contains("with-a-controlling-terminal\r\n"),
        "{chapter}: {text}"
    );
    assert!(!text.contains("process group"), "{chapter}: {text}");
    assert_eq!(code(&output), 3, "{chapter}: {text}");
}

/// Root inside a user namespace cannot take `nodev` (nor, on the idmapped
/// rootfs, `ro`) off its rootfs: the kernel locked those flags when it
/// copied the mount into the container's namespace. `extra` selects the
/// rootfs (`--chown-copy`, or nothing for the idmapped one).
pub fn rootfs_flags_are_locked(chapter: &str, extra: &[&str]) {
    let rootfs = rootfs().to_str().unwrap();
    // The copy is the container's own and writable: only `dev` is tried there.
    let script = match extra.is_empty() {
        true => {
            "for opts in remount,bind,dev remount,bind,rw; do \
            mount -o $opts / 2>/dev/null && echo \"$opts: allowed\"; done; \
            grep -E '^[0-9]+ [0-9]+ [^ ]+ [^ ]+ / ' /proc/self/mountinfo | cut -d' ' -f6"
        }
        false => {
            "mount -o remount,bind,dev / 2>/dev/null && echo 'remount,bind,dev: allowed'; \
            grep -E '^[0-9]+ [0-9]+ [^ ]+ [^ ]+ / ' /proc/self/mountinfo | cut -d' ' -f6"
        }
    };
    let args: Vec<&str> = host_safe_flags(chapter)
        .iter()
        .copied()
        .chain(extra.iter().copied())
        .chain([rootfs, "/bin/sh", "-c", script])
        .collect();
    let output = run(chapter, &args);
    let text = stdout(&output);
    assert_eq!(code(&output), 0, "{chapter} {extra:?}: {}", stderr(&output));
    assert!(!text.contains("allowed"), "{chapter} {extra:?}: {text}");
    assert!(text.contains("nodev"), "{chapter} {extra:?}: {text}");
    if extra.is_empty() {
        assert!(
            text.starts_with("ro,"),
            "{chapter}: the idmapped rootfs: {text}"
        );
    }
}

/// The init never executes a program, so the bounding set the command gets
/// never reaches it: it drops every capability itself, or root inside could
/// ptrace it and use what the command was denied (CAP_DAC_READ_SEARCH's
/// open_by_handle_at, CAP_SYS_CHROOT's chroot breakout).
pub fn the_init_holds_no_capabilities(chapter: &str) {
    let output = run_in(
        chapter,
        &[
            "/bin/sh",
            "-c",
            "grep -E '^Cap(Prm|Eff|Inh)' /proc/1/status",
        ],
    );
    assert_eq!(code(&output), 0, "{chapter}: {}", stderr(&output));
    let text = stdout(&output);
    for line in text.lines() {
        assert!(
            line.ends_with("0000000000000000"),
            "{chapter}: PID 1 {line}"
        );
    }
    assert_eq!(text.lines().count(), 3, "{chapter}: {text}");
}

/// Keys the container never reads fill its terminal; the runtime keeps
/// them and still ends when the container does (a blocking write into the
/// full terminal once hung it for good, the user's terminal left raw).
pub fn unread_keys_do_not_hang_the_runtime(chapter: &str) {
    let mut script = on_a_terminal(chapter, &["/bin/sh", "-c", "'sleep 2; echo done'"]);
    let mut input = script.stdin.take().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let _ = std::io::Write::write_all(&mut input, &[b'a'; 40_000]);
    let started = Instant::now();
    loop {
        if let Some(status) = script.try_wait().unwrap() {
            assert_eq!(status.code(), Some(0), "{chapter}");
            break;
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = script.kill();
            let _ = script.wait();
            panic!("{chapter}: the runtime still runs 20 s after its container's 2 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(input);
}

/// `chapter ROOTFS COMMAND...` on a terminal of its own: script(1) makes
/// one and copies our piped stdin to it, as if typed.
fn on_a_terminal(chapter: &str, command: &[&str]) -> std::process::Child {
    let words: Vec<String> = std::iter::once(bin(chapter).display().to_string())
        .chain(host_safe_flags(chapter).iter().map(|s| s.to_string()))
        .chain(std::iter::once(rootfs().display().to_string()))
        .chain(command.iter().map(|s| s.to_string()))
        .collect();
    Command::new("script")
        .args([
            "--quiet",
            "--return",
            "--command",
            &words.join(" "),
            "/dev/null",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script(1) from bsdutils runs the chapter on a terminal")
}
