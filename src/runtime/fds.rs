//! File descriptors the runtime inherited must not reach the container.
//!
//! Whoever started the runtime may have left descriptors open: a directory
//! outside the rootfs (fchdir(2) to it walks out of any chroot without
//! privilege), a socket, a log file. The runtime marks every descriptor
//! from 3 up close-on-exec, so the kernel closes them all as the command
//! starts, and its own pipes keep working until then.

use crate::error::LabError;
use crate::narrator::{Narrator, Step};

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
        || {
            // SAFETY: close_range only changes flags on this process's fds.
            let result = unsafe {
                libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, libc::CLOSE_RANGE_CLOEXEC)
            };
            if result < 0 { Err(nix::errno::Errno::last()) } else { Ok(()) }
        },
    )
}
// ANCHOR_END: close_inherited
