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

use container_lab::runtime::chroot::break_out;
use nix::unistd::execv;
use std::ffi::CString;

fn main() {
    let mut argv: Vec<CString> = std::env::args()
        .skip(1)
        .map(|arg| CString::new(arg).expect("arguments come from the kernel without NUL"))
        .collect();
    if argv.is_empty() {
        argv.push(c"/bin/sh".to_owned());
    }
    match break_out(say) {
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

fn say(line: &str) {
    eprintln!("lab-breakout: {line}");
}
