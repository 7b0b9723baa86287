//! Hooks: programs config.json names, run at fixed moments of a
//! container's life with its state (the JSON `state` prints) on stdin.
//! Engines use them to do what the runtime does not: set up networking in
//! the container's namespace, register it with a service, clean up after
//! it (the runtime specification, "POSIX-platform Hooks").
//!
//! `createRuntime` (and the deprecated `prestart`) run in the runtime's
//! namespaces once the container's exist; `createContainer` in the
//! container's namespaces before pivot_root(2); `startContainer` inside,
//! just before the process is executed; `poststart` after `start`;
//! `poststop` after `delete`. A hook that fails before the process runs
//! fails the operation; after, it is reported and the operation goes on.

use crate::error::LabError;
use crate::oci::config::Hook;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

/// Run each of `hooks` in turn with `state` (JSON) on stdin; `phase`
/// names them in errors (`createRuntime`, ...).
pub fn run_all(phase: &str, hooks: &[Hook], state: &str) -> Result<(), LabError> {
    for hook in hooks {
        run(phase, hook, state)?;
    }
    Ok(())
}

/// After the process runs (`poststart`, `poststop`) a failed hook does not
/// undo anything: say so on stderr and go on.
pub fn run_all_reporting(phase: &str, hooks: &[Hook], state: &str) {
    for hook in hooks {
        if let Err(error) = run(phase, hook, state) {
            crate::say!("{}: warning: {error}", crate::program_name());
        }
    }
}

fn failed(phase: &str, hook: &Hook, what: String) -> LabError {
    LabError::ToolFailed {
        command: format!("{phase} hook {}", hook.path.display()),
        message: what,
    }
}

// ANCHOR: hooks
fn run(phase: &str, hook: &Hook, state: &str) -> Result<(), LabError> {
    let mut command = std::process::Command::new(&hook.path);
    // args[0] is the hook's argv[0], as execve(2) takes it.
    if let Some((first, rest)) = hook.args.split_first() {
        command.arg0(first).args(rest);
    }
    command.env_clear();
    for setting in &hook.env {
        if let Some((key, value)) = setting.split_once('=') {
            command.env(key, value);
        }
    }
    command.stdin(std::process::Stdio::piped());
    let mut child = command
        .spawn()
        .map_err(|e| failed(phase, hook, format!("cannot start it: {e}")))?;
    // A hook that never reads its stdin must not block us: the state is
    // small (a pipe holds 64 KiB), and a write error (it exited without
    // reading) is no error of the hook's.
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(state.as_bytes());
    }
    let deadline = hook
        .timeout
        .filter(|t| *t > 0)
        .map(|t| Instant::now() + Duration::from_secs(t as u64));
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => {
                return Err(failed(phase, hook, format!("it ended with {status}")));
            }
            Ok(None) => {}
            Err(e) => return Err(failed(phase, hook, format!("cannot wait for it: {e}"))),
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(failed(
                phase,
                hook,
                format!(
                    "it took longer than its timeout, {} s, and was killed",
                    hook.timeout.unwrap_or(0)
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
// ANCHOR_END: hooks

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(args: &[&str], timeout: Option<i64>) -> Hook {
        Hook {
            path: "/bin/sh".into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            env: vec!["GREETING=hello".into()],
            timeout,
        }
    }

    #[test]
    fn a_hook_reads_the_state_and_its_own_environment() {
        let out = std::env::temp_dir().join(format!("lab-hook-{}", std::process::id()));
        let script = format!("read line; echo \"$GREETING $line\" > {}", out.display());
        run_all(
            "createRuntime",
            &[hook(&["sh", "-c", &script], None)],
            "{\"id\":\"x\"}\n",
        )
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "hello {\"id\":\"x\"}\n"
        );
        std::fs::remove_file(out).unwrap();
    }

    #[test]
    fn a_failing_or_slow_hook_is_an_error_naming_it() {
        let message = run_all("prestart", &[hook(&["sh", "-c", "exit 3"], None)], "")
            .err()
            .unwrap()
            .to_string();
        assert!(message.contains("prestart hook /bin/sh"), "{message}");
        assert!(message.contains("3"), "{message}");
        let message = run_all("poststart", &[hook(&["sh", "-c", "sleep 5"], Some(1))], "")
            .err()
            .unwrap()
            .to_string();
        assert!(message.contains("timeout"), "{message}");
    }
}
