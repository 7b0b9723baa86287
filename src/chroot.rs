//! chroot(2): give a process a different `/`.
//!
//! Version 7 Unix (1979) added the call so a build could run against a
//! different tree; Bill Joy added it to BSD in 1982. It changes one thing, the
//! directory where path resolution starts for absolute paths and where `..`
//! stops climbing, and nothing else: the process keeps its PIDs, hostname,
//! network, users and any directory it already had open.

use crate::error::LabError;
use crate::narrator::{Narrator, Step};
use nix::unistd::{chdir, chroot};
use std::path::Path;

// ANCHOR: enter_root
/// Make `rootfs` the calling process's `/` and stand in it.
pub fn enter_root(narrator: &Narrator, rootfs: &Path) -> Result<(), LabError> {
    let shown = format!("{:?}", rootfs.display().to_string());
    narrator.run(
        Step {
            syscall: "chroot",
            args: &shown,
            why: "make the rootfs the process's /: absolute paths and .. now stop there",
            man: "chroot(2)",
        },
        || chroot(rootfs),
    )?;
    // chroot(2) does not move the working directory: without this chdir the
    // process would still stand in the host's tree, outside its new root.
    narrator.run(
        Step {
            syscall: "chdir",
            args: "\"/\"",
            why: "step inside the new root; chroot leaves the working directory where it was",
            man: "chdir(2)",
        },
        || chdir("/"),
    )
}
// ANCHOR_END: enter_root
