//! The create/start split, as runc makes it: `create` leaves the
//! container's process fully set up, blocked in open(2) of a FIFO for
//! writing; `start` opens the FIFO for reading, which lets that open
//! return, reads the one byte the process writes, and removes the FIFO.
//! The process then executes the command. An open(2) of a FIFO blocks
//! until the other end is opened too (fifo(7)): no polling, no signal,
//! and `start` costs a few system calls.

use crate::error::LabError;
use crate::narrator::{Narrator, Step};
use crate::runtime::state::ProcessRef;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::Path;

/// mkfifo(3) the FIFO, writable by any user: the process that opens it
/// may already be the container's user (with no capability left), and only
/// the directory's descriptor leads to it.
pub fn make(path: &Path) -> Result<(), LabError> {
    nix::unistd::mkfifo(path, Mode::from_bits_truncate(0o622)).map_err(|errno| {
        LabError::StepFailed {
            syscall: "mkfifo",
            target: path.display().to_string(),
            errno,
        }
    })?;
    // mkfifo(3) applies the umask.
    nix::sys::stat::fchmodat(
        nix::fcntl::AT_FDCWD,
        path,
        Mode::from_bits_truncate(0o622),
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )
    .map_err(|errno| LabError::StepFailed {
        syscall: "chmod",
        target: path.display().to_string(),
        errno,
    })
}

/// In `create`, before the fork: the FIFO itself, O_PATH (a handle that
/// can be reopened, not read or written, and leads nowhere else), for the
/// container's process to inherit. It is all that process holds of the
/// state directory: a directory, even O_PATH, would be a way out to the
/// host's `/` for anything that reached it (CVE-2024-21626 leaked one).
pub fn open_path(path: &Path) -> Result<OwnedFd, LabError> {
    nix::fcntl::open(path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty()).map_err(|errno| {
        LabError::StepFailed {
            syscall: "open",
            target: format!("{}, O_PATH", path.display()),
            errno,
        }
    })
}

// ANCHOR: wait_for_start
/// In the container's process, setup done: reopen the FIFO for writing
/// through /proc/self/fd (the container's own /proc by now), which blocks
/// until `start` opens it for reading, and write one byte.
pub fn wait_for_start(narrator: &Narrator, handle: BorrowedFd<'_>) -> Result<(), LabError> {
    let reopen = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&handle));
    let args = format!("{reopen:?} (exec.fifo), O_WRONLY|O_CLOEXEC");
    let fifo = narrator.run_unpaused(
        Step {
            syscall: "open",
            args: &args,
            why: "wait here, set up, until `start` opens the other end",
            man: "fifo(7)",
        },
        || loop {
            match nix::fcntl::open(
                reopen.as_str(),
                OFlag::O_WRONLY | OFlag::O_CLOEXEC,
                Mode::empty(),
            ) {
                Err(nix::errno::Errno::EINTR) => continue,
                other => return other,
            }
        },
    )?;
    narrator.run(
        Step {
            syscall: "write",
            args: "exec.fifo, \"0\"",
            why: "tell `start` the process is about to execute the command",
            man: "fifo(7)",
        },
        || nix::unistd::write(&fifo, b"0").map(drop),
    )
}
// ANCHOR_END: wait_for_start

// ANCHOR: start
/// In `start`: open the FIFO for reading (without blocking, so that a
/// process that died is noticed), wait for the byte, remove the FIFO.
pub fn release(path: &Path, process: ProcessRef) -> Result<(), LabError> {
    let fifo = nix::fcntl::open(
        path,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|errno| LabError::StepFailed {
        syscall: "open",
        target: path.display().to_string(),
        errno,
    })?;
    let mut byte = [0u8; 1];
    loop {
        match nix::unistd::read(&fifo, &mut byte) {
            Ok(1) => break,
            // No writer yet (it is being woken), or nothing written yet.
            Ok(_) | Err(nix::errno::Errno::EAGAIN) => {
                if !process.is_alive() {
                    return Err(LabError::Container {
                        message: "the container's process exited before start".into(),
                        hint: "`delete` it; its stderr (the engine's log) says why".into(),
                    });
                }
                let mut fds = [nix::poll::PollFd::new(
                    std::os::fd::AsFd::as_fd(&fifo),
                    nix::poll::PollFlags::POLLIN,
                )];
                let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(10u16));
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(errno) => {
                return Err(LabError::StepFailed {
                    syscall: "read",
                    target: path.display().to_string(),
                    errno,
                });
            }
        }
    }
    // Gone, the FIFO no longer says `created`: from here on `state` says
    // running (the process is on its way to execve(2)).
    std::fs::remove_file(path).map_err(|e| LabError::io("unlink", path.display(), e))
}
// ANCHOR_END: start
