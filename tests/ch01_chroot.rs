//! ch01-chroot: a different `/`, and the classic breakout that still works.

mod common;
use common::*;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// ch01 as the book shows it: `ch01-chroot ./rootfs ARGS...`.
fn shown(args: &[&str]) -> String {
    format!("ch01-chroot ./rootfs {}", container_lab::shell_words(args))
}

fn in_rootfs(args: &[&str]) -> std::process::Output {
    let rootfs = rootfs().to_str().unwrap();
    run(
        "ch01-chroot",
        std::iter::once(rootfs).chain(args.iter().copied()),
    )
}

/// A file on the host, outside the rootfs, holding a value the test made.
fn host_marker(name: &str) -> (Scratch, String, String) {
    let dir = Scratch::new(name);
    let path = dir.join("host-secret.txt");
    let token = format!("host secret {}-{}", std::process::id(), name);
    std::fs::write(&path, format!("{token}\n")).unwrap();
    (dir, path.display().to_string(), token)
}

#[test]
fn help_teaches_usage_defaults_and_exit_codes() {
    let output = run("ch01-chroot", ["--help"]);
    assert_eq!(code(&output), 0);
    snapshot!("ch01_help", stdout(&output));
}

#[test]
fn runs_the_command_and_returns_its_exit_code() {
    if !require_root("runs_the_command_and_returns_its_exit_code") {
        return;
    }
    let args = ["/bin/sh", "-c", "echo hi; exit 7"];
    let output = in_rootfs(&args);
    assert_eq!(code(&output), 7, "{}", stderr(&output));
    assert_eq!(stdout(&output), "hi\n");
    snapshot!(
        "ch01_hello",
        transcript(&shown(&args), &output, Some(rootfs()))
    );
}

#[test]
fn the_command_sees_the_rootfs_as_its_root() {
    if !require_root("the_command_sees_the_rootfs_as_its_root") {
        return;
    }
    let output = in_rootfs(&["/bin/cat", "/etc/container-lab-rootfs"]);
    assert_eq!(stdout(&output), "host\n", "{}", stderr(&output));
    // The working directory is the new root, not where the runtime stood.
    let output = in_rootfs(&["/bin/sh", "-c", "pwd; cd ..; pwd"]);
    assert_eq!(stdout(&output), "/\n/\n");
}

#[test]
fn explain_narrates_every_syscall() {
    if !require_root("explain_narrates_every_syscall") {
        return;
    }
    let args = ["--explain", rootfs().to_str().unwrap(), "/bin/true"];
    let output = run("ch01-chroot", args);
    assert_eq!(code(&output), 0);
    assert_eq!(stdout(&output), "", "narration must not touch stdout");
    let err = stderr(&output);
    for step in [
        "fork()",
        "chroot(",
        "chdir(\"/\")",
        "execve(\"/bin/true\"",
        "waitpid(",
    ] {
        assert!(err.contains(step), "missing {step} in:\n{err}");
    }
    assert!(err.contains("the command gets a / of its own"), "{err}");
    let shown = "ch01-chroot --explain ./rootfs /bin/true";
    snapshot!("ch01_explain", transcript(shown, &output, Some(rootfs())));
}

/// The documented leak: a host file is out of reach by its path, and
/// lab-breakout reaches it anyway.
#[test]
fn breakout_reaches_a_host_file() {
    if !require_root("breakout_reaches_a_host_file") {
        return;
    }
    let (_dir, marker, token) = host_marker("breakout");
    let direct = in_rootfs(&["/bin/cat", &marker]);
    assert_eq!(code(&direct), 1, "the marker must not be visible by path");
    assert!(!stdout(&direct).contains(&token));

    let args = ["/usr/local/bin/lab-breakout", "/bin/cat", &marker];
    let escaped = in_rootfs(&args);
    assert_eq!(code(&escaped), 0, "{}", stderr(&escaped));
    assert_eq!(
        stdout(&escaped),
        format!("{token}\n"),
        "LEAKS expected: {}",
        stderr(&escaped)
    );
    assert!(
        !rootfs().join(".lab-breakout").exists(),
        "the breakout must not leave its trapdoor behind"
    );
    let text = transcript(&shown(&args), &escaped, Some(rootfs()))
        .replace(&marker, "/tmp/host-secret.txt")
        .replace(&token, "a file that lives on the host, outside the rootfs");
    snapshot!("ch01_breakout", text);
}

#[test]
fn missing_rootfs_says_how_to_build_one() {
    if !require_root("missing_rootfs_says_how_to_build_one") {
        return;
    }
    let output = run("ch01-chroot", ["/nonexistent/rootfs", "/bin/true"]);
    assert_clean_failure(&output, 125, "rootfs /nonexistent/rootfs not found");
    assert!(
        stderr(&output).contains("lab rootfs /nonexistent/rootfs"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn default_rootfs_comes_from_the_environment() {
    if !require_root("default_rootfs_comes_from_the_environment") {
        return;
    }
    let output = Command::new(bin("ch01-chroot"))
        .env("CONTAINER_LAB_ROOTFS", "/nonexistent/from-env")
        .output()
        .unwrap();
    assert_clean_failure(&output, 125, "rootfs /nonexistent/from-env not found");
    let output = Command::new(bin("ch01-chroot"))
        .env("CONTAINER_LAB_ROOTFS", rootfs())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        code(&output),
        0,
        "default /bin/sh reading EOF exits 0: {}",
        stderr(&output)
    );
}

#[test]
fn rootfs_that_is_a_file_is_refused() {
    if !require_root("rootfs_that_is_a_file_is_refused") {
        return;
    }
    let dir = Scratch::new("not-a-dir");
    let file = dir.join("file");
    std::fs::write(&file, "").unwrap();
    let output = run("ch01-chroot", [file.to_str().unwrap()]);
    assert_clean_failure(&output, 125, "is not a directory");
}

#[test]
fn command_missing_in_rootfs_is_127() {
    if !require_root("command_missing_in_rootfs_is_127") {
        return;
    }
    let output = in_rootfs(&["/bin/no-such-program"]);
    assert_clean_failure(
        &output,
        127,
        "command /bin/no-such-program not found in rootfs",
    );
    // On the host's PATH but not in the rootfs: still not found.
    let output = in_rootfs(&["cargo"]);
    assert_clean_failure(&output, 127, "command cargo not found in rootfs");
}

#[test]
fn command_not_executable_is_126() {
    if !require_root("command_not_executable_is_126") {
        return;
    }
    let output = in_rootfs(&["/etc/passwd"]);
    assert_clean_failure(
        &output,
        126,
        "cannot execute /etc/passwd: permission denied (EACCES)",
    );
}

#[test]
fn script_with_missing_interpreter_is_127_with_a_hint() {
    if !require_root("script_with_missing_interpreter_is_127_with_a_hint") {
        return;
    }
    let script = rootfs().join("usr/local/bin/needs-python");
    std::fs::write(&script, "#!/usr/bin/no-such-interpreter\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let output = in_rootfs(&["/usr/local/bin/needs-python"]);
    std::fs::remove_file(&script).unwrap();
    assert_clean_failure(&output, 127, "no such file or directory (ENOENT)");
    assert!(stderr(&output).contains("interpreter or dynamic loader"));
}

#[test]
fn without_root_it_names_the_capability_and_sudo() {
    if !require_root("without_root_it_names_the_capability_and_sudo") {
        return;
    }
    let output = Command::new(public_bin("ch01-chroot"))
        .arg(rootfs())
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    assert_clean_failure(&output, 125, "chroot(2) needs CAP_SYS_CHROOT");
    assert!(
        stderr(&output).contains("sudo ch01-chroot "),
        "{}",
        stderr(&output)
    );
}

#[test]
fn usage_error_is_125() {
    let output = run("ch01-chroot", ["--no-such-flag"]);
    assert_clean_failure(&output, 125, "--no-such-flag");
}

#[test]
fn signal_kills_are_128_plus_n() {
    if !require_root("signal_kills_are_128_plus_n") {
        return;
    }
    let output = in_rootfs(&["/bin/sh", "-c", "kill -TERM $$"]);
    assert_eq!(code(&output), 143);
}

/// SIGTERM sent to the runtime is passed on to the command, and the runtime
/// reports the command's death by signal as 143.
#[test]
fn sigterm_to_the_runtime_reaches_the_command() {
    if require_root("sigterm_to_the_runtime_reaches_the_command") {
        common::isolation::signal_to_runtime_ends_container(
            "ch01-chroot",
            nix::sys::signal::Signal::SIGTERM,
        );
    }
}

#[test]
fn step_without_a_terminal_is_a_clear_error() {
    if !require_root("step_without_a_terminal_is_a_clear_error") {
        return;
    }
    let mut command = Command::new(bin("ch01-chroot"));
    command.args(["--step", rootfs().to_str().unwrap(), "/bin/true"]);
    // SAFETY: setsid(2) is async-signal-safe; it detaches from the terminal.
    unsafe {
        command.pre_exec(|| {
            nix::unistd::setsid()
                .map(drop)
                .map_err(std::io::Error::from)
        });
    }
    let output = command.output().unwrap();
    assert_clean_failure(&output, 125, "--step waits for Enter on /dev/tty");
}

/// Instructor mode on a real (pseudo-)terminal: each step up to execve
/// waits for Enter, and nothing runs before it is pressed. waitpid, taken
/// while the command runs, is announced but never waits: the next line
/// typed belongs to the command (a shell's first command must not be
/// swallowed by the runtime). script(1) gives the runtime a pty.
#[test]
fn step_waits_for_enter_before_each_step() {
    if !require_root("step_waits_for_enter_before_each_step") {
        return;
    }
    use std::io::{Read, Write};
    use std::sync::mpsc;
    use std::time::{Duration, Instant};
    let runtime = format!(
        "{} --step {} /bin/sh -c 'read line; echo ran-the-command with $line'",
        bin("ch01-chroot").display(),
        rootfs().display()
    );
    let mut script = Command::new("script")
        .args(["-q", "-e", "-c", &runtime, "/dev/null"])
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("script(1) from util-linux");
    let mut pty_out = script.stdout.take().unwrap();
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        while let Ok(n) = pty_out.read(&mut buffer) {
            if n == 0 || sender.send(buffer[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut seen = String::new();
    let collect_for = |duration: Duration, seen: &mut String| {
        let deadline = Instant::now() + duration;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            if let Ok(bytes) = receiver.recv_timeout(left) {
                seen.push_str(&String::from_utf8_lossy(&bytes));
            }
        }
    };
    let steps = ["fork()", "chroot(", "chdir(", "execve("];
    for (index, step) in steps.iter().enumerate() {
        let deadline = Instant::now() + Duration::from_secs(10);
        while seen.matches("press Enter").count() <= index {
            assert!(Instant::now() < deadline, "no prompt for {step}:\n{seen}");
            collect_for(Duration::from_millis(50), &mut seen);
        }
        assert!(
            seen.contains(step),
            "prompt before {step} without it:\n{seen}"
        );
        // Nothing moves while Enter is not pressed.
        collect_for(Duration::from_millis(200), &mut seen);
        assert_eq!(seen.matches("press Enter").count(), index + 1, "{seen}");
        if index < 3 {
            assert!(
                !seen.contains("ran-the-command\r\n"),
                "ran before execve:\n{seen}"
            );
        }
        script.stdin.as_mut().unwrap().write_all(b"\n").unwrap();
    }
    // The command now reads the terminal, and gets the first line typed.
    script
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"hello\n")
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !seen.contains("ran-the-command with hello") && Instant::now() < deadline {
        collect_for(Duration::from_millis(50), &mut seen);
    }
    if !seen.contains("ran-the-command with hello") {
        let _ = script.kill();
        panic!("the command never got the line typed after the last step:\n{seen}");
    }
    let status = script.wait().unwrap();
    collect_for(Duration::from_millis(200), &mut seen);
    assert!(status.success(), "{seen}");
    assert!(seen.contains("ran-the-command with hello"), "{seen}");
    assert!(seen.contains("waitpid("), "{seen}");
    assert_eq!(seen.matches("press Enter").count(), steps.len(), "{seen}");
}
