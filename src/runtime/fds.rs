//! File descriptors the runtime inherited must not reach the container.
//!
//! Whoever started the runtime may have left descriptors open: a directory
//! outside the rootfs (fchdir(2) to it walks out of any chroot without
//! privilege), a socket, a log file. The runtime marks every descriptor
//! from 3 up close-on-exec, so the kernel closes them all as the command
//! starts, and its own pipes keep working until then.
//!
//! close_range(2) does it in one call: Linux 5.9 closes a range, 5.11 can
//! mark one close-on-exec instead. On older kernels (Debian 11 has 5.10)
//! the runtime walks the descriptors it has, one fcntl(2) or close(2) each.

use crate::error::LabError;
use crate::narrator::{Narrator, Step};
use nix::errno::Errno;
use std::os::fd::RawFd;

// ANCHOR: close_inherited
/// close_range(2) with CLOSE_RANGE_CLOEXEC over 3..=~0.
pub fn close_inherited(narrator: &Narrator) -> Result<(), LabError> {
    narrator.run(
        Step {
            syscall: "close_range",
            args: "3, ~0U, CLOSE_RANGE_CLOEXEC",
            why: "nothing the runtime inherited (a directory outside the root, a socket) reaches the command",
            man: "close_range(2)",
        },
        || match close_range(libc::CLOSE_RANGE_CLOEXEC) {
            // Before 5.11 the flag is unknown (EINVAL); before 5.9, the call.
            Err(Errno::EINVAL | Errno::ENOSYS) => mark_close_on_exec_one_by_one(),
            other => other,
        },
    )
}
// ANCHOR_END: close_inherited

/// Close every descriptor from 3 up, for a process that never executes a
/// program again (the init, a waiting parent), where close-on-exec would
/// never act.
pub fn close_all_above_stdio() {
    if let Err(Errno::EINVAL | Errno::ENOSYS) = close_range(0) {
        // SAFETY: closing our own descriptors; none is used afterwards.
        let _ = for_each_descriptor_above_stdio(|fd| {
            unsafe { libc::close(fd) };
            Ok(())
        });
    }
}

/// Close every descriptor from 3 up but those in `keep`: for a process
/// that lives on without executing anything (ch07's monitor), where
/// close-on-exec never acts and whatever its caller left open (a pipe a
/// test harness waits on, a directory outside the root) would stay open
/// for the container's whole life.
pub fn close_all_above_stdio_except(keep: &[RawFd]) {
    let _ = for_each_descriptor_above_stdio(|fd| {
        if !keep.contains(&fd) {
            // SAFETY: closing our own descriptor, which nothing uses again.
            unsafe { libc::close(fd) };
        }
        Ok(())
    });
}

/// CLOSE_RANGE_CLOEXEC's work before Linux 5.11: fcntl(2) on each one.
fn mark_close_on_exec_one_by_one() -> nix::Result<()> {
    for_each_descriptor_above_stdio(|fd| {
        nix::fcntl::fcntl(
            // SAFETY: borrowed for the call; the fd stays open.
            unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) },
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        )
        .map(drop)
    })
}

fn close_range(flags: libc::c_uint) -> nix::Result<()> {
    // SAFETY: close_range only closes or flags this process's descriptors.
    let result = unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, flags) };
    Errno::result(result).map(drop)
}

/// Apply `action` to every open descriptor from 3 up: those /proc/self/fd
/// lists, or, without a /proc, every number below the open-files limit.
fn for_each_descriptor_above_stdio(
    mut action: impl FnMut(RawFd) -> nix::Result<()>,
) -> nix::Result<()> {
    // Collected first: the directory's own descriptor is closed by then.
    let listed: Option<Vec<RawFd>> = std::fs::read_dir("/proc/self/fd").ok().map(|entries| {
        entries
            .flatten()
            .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
            .collect()
    });
    let candidates = listed.unwrap_or_else(|| {
        let limit = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
            .map_or(1024, |(soft, _)| soft.min(1 << 20));
        (3..limit as RawFd).collect()
    });
    for fd in candidates.into_iter().filter(|fd| *fd > 2) {
        match action(fd) {
            Ok(()) | Err(Errno::EBADF) => {}
            Err(errno) => return Err(errno),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    /// The walk that stands in for CLOSE_RANGE_CLOEXEC on kernels before
    /// 5.11 marks a descriptor a parent left without close-on-exec.
    #[test]
    fn the_walk_marks_what_a_parent_left_open() {
        let file = std::fs::File::open("/dev/null").unwrap();
        // SAFETY: dup(2) of a descriptor we own; closed below.
        let plain = unsafe { libc::dup(file.as_raw_fd()) };
        assert!(plain > 2);
        let flags = |fd| unsafe { libc::fcntl(fd, libc::F_GETFD) };
        assert_eq!(flags(plain) & libc::FD_CLOEXEC, 0);
        mark_close_on_exec_one_by_one().unwrap();
        assert_eq!(flags(plain) & libc::FD_CLOEXEC, libc::FD_CLOEXEC);
        unsafe { libc::close(plain) };
    }
}
