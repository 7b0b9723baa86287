//! chroot(2): give a process a different `/`.
//!
//! Version 7 Unix (1979) has the call; it reached BSD through 32V, and
//! 4.1c BSD (around 1982) made `..` stop at a process's root (the history
//! page tells the rest). It changes one thing, the
//! directory where path resolution starts for absolute paths and where `..`
//! stops climbing, and nothing else: the process keeps its PIDs, hostname,
//! network, users and any directory it already had open.

use crate::error::LabError;
use crate::narrator::{Narrator, Step};
use nix::errno::Errno;
use nix::sys::stat::{Mode, stat};
use nix::unistd::{chdir, chroot, mkdir};
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

// ANCHOR: breakout
/// The classic escape from chroot(2), as root: leave the current root and
/// make the real `/` the root again, or say which step the kernel refused.
/// `say` narrates each step (lab-breakout prints it; the probe stays quiet).
pub fn break_out(say: impl Fn(&str)) -> Result<(), (&'static str, Errno)> {
    // 1. A directory inside our root to chroot into: here, or in /tmp when
    //    the root is read-only (any directory below / will do).
    let mut trapdoor = ".lab-breakout";
    for candidate in [".lab-breakout", "/tmp/.lab-breakout"] {
        trapdoor = candidate;
        match mkdir(candidate, Mode::from_bits_truncate(0o700)) {
            Ok(()) | Err(Errno::EEXIST) => break,
            Err(Errno::EROFS | Errno::EACCES) if candidate == ".lab-breakout" => continue,
            Err(errno) => return Err(("mkdir", errno)),
        }
    }
    say(&format!("mkdir({trapdoor:?})"));
    // 2. chroot into it *without* chdir: our working directory is now
    //    outside our root, where the kernel's `..` check never looks.
    let entered = chroot(trapdoor);
    // Whether that worked or not, remove the trapdoor (if we are in it, it
    // is our root but still a name in the old tree): leave nothing behind.
    let _ = std::fs::remove_dir(trapdoor);
    let step = match trapdoor {
        ".lab-breakout" => "chroot(\".lab-breakout\")",
        _ => "chroot(\"/tmp/.lab-breakout\")",
    };
    entered.map_err(|e| (step, e))?;
    say(&format!(
        "chroot({trapdoor:?}), no chdir: the working directory is now outside the root"
    ));
    // 3. Climb: `..` of the real `/` is `/` itself, so stop when `.` and
    //    `..` are the same directory.
    loop {
        let here = stat(".").map_err(|e| ("stat(\".\")", e))?;
        let parent = stat("..").map_err(|e| ("stat(\"..\")", e))?;
        if (here.st_dev, here.st_ino) == (parent.st_dev, parent.st_ino) {
            break;
        }
        chdir("..").map_err(|e| ("chdir(\"..\")", e))?;
    }
    say("chdir(\"..\") until \".\" is its own parent: that is the host's /");
    // 4. Make the real `/` our root again.
    chroot(".").map_err(|e| ("chroot(\".\")", e))?;
    chdir("/").map_err(|e| ("chdir(\"/\")", e))?;
    say("chroot(\".\"): the host's / is our root again");
    Ok(())
}
// ANCHOR_END: breakout
