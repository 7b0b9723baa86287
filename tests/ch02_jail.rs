//! ch02-jail: chroot done right, a hostname and a process tree of its own,
//! a real PID 1.

mod common;

use common::*;

/// ch02 has no mount namespace: every jail's /proc is mounted at the same
/// place in the host's mount table, so two jails on one rootfs would see
/// each other's /proc (the book shows this leak; ch03 closes it). The tests
/// share one rootfs, so they take turns.
static ONE_JAIL_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

macro_rules! as_root {
    ($(#[$doc:meta])* $name:ident, $body:expr) => {
        $(#[$doc])*
        #[test]
        fn $name() {
            if require_root(stringify!($name)) {
                let _turn = ONE_JAIL_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
                $body
            }
        }
    };
}

const CH: &str = "ch02-jail";

#[test]
fn help_teaches_usage_and_new_flags() {
    let output = run(CH, ["--help"]);
    assert_eq!(code(&output), 0);
    snapshot!("ch02_help", stdout(&output));
}

// The checks every chapter from 02 on must pass.
jail_suite!(CH);
as_root!(
    unread_keys_do_not_hang_the_runtime,
    common::isolation::unread_keys_do_not_hang_the_runtime(CH)
);

as_root!(exit_code_propagates_through_the_init, {
    let output = run_in(CH, &["/bin/sh", "-c", "echo hi; exit 7"]);
    assert_eq!((code(&output), stdout(&output).as_str()), (7, "hi\n"));
    let output = run_in(CH, &["/bin/sh", "-c", "kill -KILL $$"]);
    assert_eq!(code(&output), 137);
    let output = run_in(CH, &["/bin/no-such-program"]);
    assert_clean_failure(&output, 127, "not found in rootfs");
});

as_root!(
    /// The /proc ch02 mounts sits in the host's mount table while the
    /// container runs (no mount namespace yet) and is gone after it, also
    /// when the command fails to start.
    proc_mount_leaves_with_the_container,
    {
        let ours = |pid: u32| format!("{}{pid}", container_lab::runtime::mounts::HOST_PROC_SOURCE_PREFIX);
        let still_mounted = |source: &str| !container_lab::runtime::mounts::mount_points_with_source(source).is_empty();
        let runtime = std::process::Command::new(bin(CH))
            .args([rootfs().to_str().unwrap(), "/bin/cat", "/proc/self/mountinfo"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let source = ours(runtime.id());
        let output = runtime.wait_with_output().unwrap();
        assert!(stdout(&output).contains(&source), "the host's table, seen inside, shows our /proc");
        assert!(!still_mounted(&source), "{source} left on the host");
        let runtime = std::process::Command::new(bin(CH))
            .args([rootfs().to_str().unwrap(), "/etc/passwd"])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let source = ours(runtime.id());
        assert_eq!(runtime.wait_with_output().unwrap().status.code(), Some(126));
        assert!(!still_mounted(&source), "{source} left on the host after a failed start");
    }
);

as_root!(explain_narrates_the_new_steps, {
    let rootfs = rootfs().to_str().unwrap();
    let output = run(CH, ["--explain", "--hostname", "jail", rootfs, "/bin/true"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let err = stderr(&output);
    assert!(err.contains("private: uts pid"), "{err}");
    let shown = "ch02-jail --explain --hostname jail ./rootfs /bin/true";
    snapshot!(
        "ch02_explain",
        transcript(shown, &output, Some(common::rootfs()))
    );
});

as_root!(
    /// For the book: the jail's own hostname and process tree.
    transcript_of_a_jail,
    {
        let rootfs = rootfs().to_str().unwrap();
        let script = "hostname; ps -e -o pid,ppid,comm";
        let output = run(CH, ["--hostname", "web1", rootfs, "/bin/sh", "-c", script]);
        assert_eq!(code(&output), 0, "{}", stderr(&output));
        let shown = format!("ch02-jail --hostname web1 ./rootfs /bin/sh -c '{script}'");
        snapshot!("ch02_ps", transcript(&shown, &output, Some(common::rootfs())));
        let output = run_in(CH, &["/usr/local/bin/lab-breakout", "/bin/sh"]);
        let shown = "ch02-jail ./rootfs /usr/local/bin/lab-breakout /bin/sh";
        snapshot!("ch02_breakout", transcript(shown, &output, Some(common::rootfs())));
    }
);
