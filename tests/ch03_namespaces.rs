//! ch03-namespaces: a private mount table, pivot_root, a minimal /dev,
//! and private IPC.

mod common;

use common::*;
use nix::sys::signal::Signal;
use std::process::{Command, Stdio};

const CH: &str = "ch03-namespaces";

#[test]
fn help_teaches_usage_and_new_flags() {
    let output = run(CH, ["--help"]);
    assert_eq!(code(&output), 0);
    snapshot!("ch03_help", stdout(&output));
}

// The checks every chapter from 02 on must pass.
jail_suite!(CH);
mount_namespace_suite!(CH);

as_root!(
    /// The container sees its own minimal /dev, a read-only /sys and an
    /// in-memory /tmp, and no mount of the host's.
    sees_its_own_filesystems,
    {
        let output = run_in(CH, &["/bin/sh", "-c", "ls /dev; stat -f -c %T /tmp; touch /sys/x"]);
        let out = stdout(&output);
        let listing: Vec<&str> = out.lines().collect();
        assert_eq!(
            listing,
            [
                "fd", "full", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin", "stdout", "tty", "urandom",
                "zero", "tmpfs"
            ],
            "{}",
            stderr(&output)
        );
        assert!(stderr(&output).contains("Read-only file system"), "{}", stderr(&output));
        let output = run_in(CH, &["/bin/cat", "/proc/self/mountinfo"]);
        let points: Vec<String> = container_lab::hostinfo::parse_mountinfo(&stdout(&output))
            .into_iter()
            .map(|m| m.mount_point.display().to_string())
            .collect();
        assert_eq!(points, ["/", "/proc", "/sys", "/tmp", "/dev", "/dev/pts", "/dev/shm"]);
    }
);

as_root!(
    /// A SysV segment on the host: visible from ch01, invisible from ch03.
    host_ipc_is_invisible,
    {
        let key = 0x1ab0_0000 + (std::process::id() as i32 & 0xffff);
        // SAFETY: create and later remove a small segment of our own.
        let id = unsafe { libc::shmget(key, 4096, libc::IPC_CREAT | libc::IPC_EXCL | 0o600) };
        assert!(id >= 0, "shmget: {}", std::io::Error::last_os_error());
        let bait = format!("{{\"shm_key\": {key}}}");
        let probe = ["/usr/local/bin/lab-probe", "--only", "ipc.sysv-shm", "--bait", bait.as_str()];
        let from_ch01 = run_in("ch01-chroot", &probe);
        let from_ch03 = run_in(CH, &probe);
        // SAFETY: removing the segment we created.
        unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) };
        assert!(stdout(&from_ch01).contains("LEAKS"), "sanity: {}", stdout(&from_ch01));
        assert!(stdout(&from_ch03).contains("ISOLATED"), "{}", stdout(&from_ch03));
    }
);

as_root!(
    /// Nothing is created or changed in the rootfs on disk.
    rootfs_is_not_modified,
    {
        let scratch = Scratch::new("ch03-untouched");
        let dir = scratch.join("rootfs");
        let built = run("lab", ["rootfs".as_ref(), dir.as_os_str()]);
        assert_eq!(code(&built), 0, "{}", stderr(&built));
        let listing = || {
            let output = Command::new("find").arg(&dir).args(["-printf", "%P %y %m %s %T@\n"]).output().unwrap();
            stdout(&output)
        };
        let before = listing();
        let output = run(CH, [dir.as_os_str(), "/bin/sh".as_ref(), "-c".as_ref(), "echo x > /tmp/file; ls /dev >/dev/null".as_ref()]);
        assert_eq!(code(&output), 0, "{}", stderr(&output));
        assert_eq!(before, listing());
    }
);

as_root!(
    /// A rootfs without a directory to mount on is refused before anything
    /// happens, with a hint.
    missing_mount_point_is_a_clear_error,
    {
        let scratch = Scratch::new("ch03-no-sys");
        let dir = scratch.join("rootfs");
        std::fs::create_dir_all(dir.join("proc")).unwrap();
        let output = run(CH, [dir.as_os_str()]);
        assert_clean_failure(&output, 125, "has no /sys directory to mount on");
    }
);

as_root!(
    /// 50 runs: plain, failing at exec after every mount, failing early,
    /// and killed by SIGTERM and SIGKILL. The host's mount table is exactly
    /// what it was, and no container process is left running.
    fifty_runs_leave_the_mount_table_as_it_was,
    {
        let before = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let rootfs = rootfs().to_str().unwrap();
        for round in 0..10 {
            assert_eq!(code(&run_in(CH, &["/bin/true"])), 0);
            assert_eq!(code(&run_in(CH, &["/etc/passwd"])), 126);
            let too_long = "h".repeat(100);
            assert_eq!(code(&run(CH, ["--hostname", too_long.as_str(), rootfs, "/bin/true"])), 125);
            for signal in [Signal::SIGTERM, Signal::SIGKILL] {
                let mut runtime = Command::new(bin(CH))
                    .args([rootfs, "/bin/sh", "-c", "echo ready; exec sleep 30"])
                    .stdout(Stdio::piped())
                    .spawn()
                    .unwrap();
                let mut line = String::new();
                std::io::BufRead::read_line(&mut std::io::BufReader::new(runtime.stdout.take().unwrap()), &mut line)
                    .unwrap();
                assert_eq!(line, "ready\n", "round {round}");
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(runtime.id() as i32), signal).unwrap();
                runtime.wait().unwrap();
            }
        }
        // A SIGKILLed runtime takes its container with it (PR_SET_PDEATHSIG):
        // give the kernel a moment to tear the namespaces down.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::fs::read_to_string("/proc/self/mountinfo").unwrap() != before
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert_eq!(std::fs::read_to_string("/proc/self/mountinfo").unwrap(), before);
        let sleepers = Command::new("pgrep").args(["-f", "^sleep 30$"]).output().unwrap();
        assert_eq!(stdout(&sleepers), "", "container processes left running");
    }
);

as_root!(explain_narrates_the_new_steps, {
    let rootfs = rootfs().to_str().unwrap();
    let output = run(CH, ["--explain", rootfs, "/bin/true"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let err = stderr(&output);
    assert!(err.contains("private: mnt uts ipc pid"), "{err}");
    snapshot!(
        "ch03_explain",
        transcript(
            "ch03-namespaces --explain ./rootfs /bin/true",
            &output,
            Some(common::rootfs())
        )
    );
});

as_root!(
    /// For the book: what a ch03 container's filesystem looks like.
    transcript_of_the_mounts,
    {
        let script = "ls /dev; cut -d' ' -f5 /proc/self/mountinfo";
        let output = run_in(CH, &["/bin/sh", "-c", script]);
        assert_eq!(code(&output), 0, "{}", stderr(&output));
        let shown = format!("ch03-namespaces ./rootfs /bin/sh -c \"{script}\"");
        snapshot!("ch03_mounts", transcript(&shown, &output, Some(common::rootfs())));
    }
);
