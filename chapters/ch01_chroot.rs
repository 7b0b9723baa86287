//! ch01-chroot: the 1979 container, a process with a different `/`.
//!
//! ch00 plus chroot(2) and chdir("/") in the child before exec, as
//! chroot(1) does. Only the path-based view of the filesystem changes; the
//! book's chapter 01 shows the classic breakout that still works.

use clap::Parser;
use container_lab::cli::{self, CommandArgs, NarrationArgs, RootfsArg};
use container_lab::error::LabError;
use container_lab::runtime::caps::{self, CAP_SYS_CHROOT};
use container_lab::runtime::process::{self, Launch};
use container_lab::runtime::{chroot, command};

/// Run COMMAND with ROOTFS as its root directory, like chroot(1).
#[derive(Parser, Debug)]
#[command(
    name = "ch01-chroot",
    version,
    override_usage = "ch01-chroot [OPTIONS] [ROOTFS [COMMAND [ARG]...]]",
    long_about = "Run COMMAND with ROOTFS as its root directory: fork(2), chroot(2), chdir(\"/\"), \
        execve(2), waitpid(2).\n\n\
        Chapter 01 of container-lab (Version 7 Unix, 1979). The command sees only the files \
        under ROOTFS, but shares the host's processes, hostname, users, network and devices, \
        and root can climb out: run /usr/local/bin/lab-breakout inside to see it.",
    after_help = "ROOTFS defaults to $CONTAINER_LAB_ROOTFS, else /var/lib/container-lab/rootfs \
        (build it with: sudo lab rootfs). COMMAND defaults to /bin/sh and is looked up inside \
        ROOTFS.\n\n\
        Examples:\n  \
        sudo ch01-chroot --explain /var/lib/container-lab/rootfs /bin/sh -c 'ls /'\n  \
        sudo ch01-chroot --step ./rootfs\n  \
        sudo ch01-chroot ./rootfs /usr/local/bin/lab-breakout /bin/sh\n\n\
        Needs CAP_SYS_CHROOT (run as root).\n\
        Exit status: the command's own; 125 if the runtime failed, 126 if COMMAND is not \
        executable, 127 if it was not found, 128+N if signal N killed it."
)]
struct Cli {
    #[command(flatten)]
    narration: NarrationArgs,

    #[command(flatten)]
    rootfs: RootfsArg,

    #[command(flatten)]
    command: CommandArgs,
}

fn main() {
    let cli: Cli = cli::parse();
    container_lab::run(|| recipe(&cli))
}

// ANCHOR: recipe
fn recipe(cli: &Cli) -> Result<i32, LabError> {
    let narrator = cli.narration.narrator()?;
    caps::require(CAP_SYS_CHROOT, "chroot(2)")?;
    let rootfs = cli.rootfs.locate()?;
    // The command must exist inside the new root, not on the host.
    let command = command::resolve(&rootfs, &cli.command.words())?;
    let child = process::spawn(&narrator, &command, |narrator| {
        // ANCHOR: new
        // NEW in ch01: the child gets its own `/` before it execs.
        chroot::enter_root(narrator, &rootfs)?;
        // ANCHOR_END: new
        Ok(Launch::Exec)
    })?;
    process::wait(&narrator, child)
}
// ANCHOR_END: recipe
