//! A minimal init: what the container's PID 1 must do that ordinary
//! programs don't.
//!
//! In a new PID namespace the first process is PID 1, and PID 1 is special
//! (pid_namespaces(7)): orphaned processes are re-parented to it, so it must
//! reap them or they stay zombies forever; and the kernel delivers it only
//! the signals it has a handler for (SIGKILL and SIGSTOP from an ancestor
//! namespace excepted), so a shell or a server that never expected to be
//! PID 1 ignores the SIGTERM meant to stop it. This init does
//! the two jobs and nothing else, like tini or `docker run --init`: it runs
//! the command as its child, passes signals on, reaps everything, and exits
//! with the command's status.

use crate::narrator::{Narrator, Step};
use crate::runtime::command::Command;
use crate::runtime::fork::{exec_or_report, exit_code_of, fork_forwarding};
use crate::runtime::sync::report_and_exit;
use nix::errno::Errno;
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid};
use std::os::fd::OwnedFd;

// ANCHOR: init
/// Become the container's init: fork the command, then reap until it exits.
pub fn run(narrator: &Narrator, command: &Command, report: OwnedFd) -> ! {
    let step = Step {
        syscall: "fork",
        args: "",
        why: "this process stays as PID 1, the init, and keeps no descriptor open; the command becomes its child",
        man: "fork(2)",
    };
    match fork_forwarding(narrator, step) {
        Err(error) => report_and_exit(report, &error),
        Ok(ForkResult::Child) => {
            narrator.act_as("command");
            exec_or_report(narrator, command, report)
        }
        Ok(ForkResult::Parent { child }) => {
            // Only the command's exec may close the runtime's pipe now.
            drop(report);
            // PID 1 never execs, so close-on-exec never closes anything in
            // it: close every descriptor it holds above stdio, or any
            // process of the container could reach them through /proc/1/fd.
            // Not narrated: it runs while the command narrates its exec.
            crate::runtime::fds::close_all_above_stdio();
            if command.environment.is_some() {
                scrub_environment();
            }
            // PID 1 never executes a program, so the bounding set the
            // container gets never reaches it: it would keep every
            // capability of the runtime's, and root inside, with
            // CAP_SYS_PTRACE, could make it use them (open_by_handle_at,
            // chroot). Waiting and passing signals to its own children
            // need none. If this fails, the init must not run at all.
            if let Err(errno) = crate::runtime::caps::drop_all() {
                // Nobody reads the runtime's pipe any more: say it on the
                // container's stderr, where its log keeps it (a seccomp
                // profile that refuses capset(2) ends here).
                eprintln!(
                    "container init: capset (dropping its own capabilities): {}; a seccomp profile must allow capset",
                    crate::error::describe_errno(errno)
                );
                // SAFETY: _exit(2) is always safe to call.
                unsafe { libc::_exit(crate::error::EXIT_RUNTIME_FAILURE) };
            }
            narrator.act_as("init");
            let code = reap_until(narrator, child);
            std::process::exit(code)
        }
    }
}

/// PID 1 never execs, so it keeps the runtime's environment, and any
/// process of the container may read it in /proc/1/environ (proc(5)): the
/// command's clean environment would be for nothing. The kernel shows the
/// strings where execve(2) put them, so overwrite them there with NULs.
fn scrub_environment() {
    unsafe extern "C" {
        static environ: *const *const libc::c_char;
    }
    // SAFETY: `environ` is the NULL-terminated array execve(2) set up; each
    // string is writable stack memory of this process, and this process is
    // single-threaded here and reads no variable after this.
    unsafe {
        let mut entry = environ;
        while !entry.is_null() && !(*entry).is_null() {
            let setting = *entry as *mut libc::c_char;
            std::ptr::write_bytes(setting, 0, libc::strlen(setting));
            entry = entry.add(1);
        }
    }
}

/// Reap every child, the command and any orphan re-parented to PID 1,
/// until the command itself has exited; return its exit code.
fn reap_until(narrator: &Narrator, command: Pid) -> i32 {
    loop {
        match waitpid(None::<Pid>, None) {
            Ok(status) if status.pid() == Some(command) => return exit_code_of(narrator, status),
            Ok(_) => continue, // an orphan: reaped, no zombie left behind
            Err(Errno::EINTR) => continue,
            Err(_) => return crate::error::EXIT_RUNTIME_FAILURE,
        }
    }
}
// ANCHOR_END: init
