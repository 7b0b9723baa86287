//! ch02-jail: a root that can't be escaped, a hostname and a process tree
//! of its own, and a real PID 1 (FreeBSD jail, 2000).
//!
//! ch01 plus: a new PID namespace with an init that reaps orphans and
//! passes signals on, a new UTS namespace with its own hostname, a /proc
//! for the new process tree, every inherited descriptor closed, and
//! CAP_SYS_CHROOT dropped so root inside cannot chroot its way out.

use clap::Parser;
use container_lab::cli::{self, CommandArgs, JailArgs, NarrationArgs, RootfsArg};
use container_lab::error::LabError;
use container_lab::runtime::caps::{self, CAP_DAC_READ_SEARCH, CAP_SYS_ADMIN, CAP_SYS_CHROOT};
use container_lab::runtime::mounts::{self, HostProcMount};
use container_lab::runtime::process;
use container_lab::runtime::{chroot, command, fds, namespaces, terminal};
use nix::sched::CloneFlags;
use std::path::Path;

/// Run COMMAND in a jail: its own root, hostname and process tree.
#[derive(Parser, Debug)]
#[command(
    name = "ch02-jail",
    version,
    override_usage = "ch02-jail [OPTIONS] [ROOTFS [COMMAND [ARG]...]]",
    long_about = "Run COMMAND in a jail: chroot(2) done right, a PID namespace with a real init \
        as PID 1 and its own /proc, a UTS namespace with its own hostname.\n\n\
        Chapter 02 of container-lab (FreeBSD jail, 2000). The chroot breakout of chapter 01 \
        fails here: the working directory starts inside the root, no inherited descriptor \
        reaches the command, and CAP_SYS_CHROOT is gone from the bounding set. `ps` inside \
        lists only the container's processes.",
    after_help = "ROOTFS defaults to $CONTAINER_LAB_ROOTFS, else /var/lib/container-lab/rootfs \
        (build it with: sudo lab rootfs). COMMAND defaults to /bin/sh and is looked up inside \
        ROOTFS.\n\n\
        Examples:\n  \
        sudo ch02-jail --explain ./rootfs /bin/ps\n  \
        sudo ch02-jail --hostname web1 ./rootfs /bin/hostname\n  \
        sudo ch02-jail --no-init ./rootfs /bin/sh    (the PID 1 problem: try Ctrl-C)\n\n\
        Needs CAP_SYS_ADMIN and CAP_SYS_CHROOT (run as root). Ctrl-C, SIGTERM, SIGHUP and \
        SIGQUIT sent to the runtime reach the command through the init.\n\
        Exit status: the command's own; 125 if the runtime failed, 126 if COMMAND is not \
        executable, 127 if it was not found, 128+N if signal N killed it."
)]
struct Cli {
    #[command(flatten)]
    narration: NarrationArgs,

    #[command(flatten)]
    jail: JailArgs,

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
    caps::require(CAP_SYS_ADMIN, "unshare(2) and mount(2)")?;
    let rootfs = cli.rootfs.locate()?;
    // NEW in ch02: an environment of the container's own, not the runtime's.
    let environment = command::clean_environment(&cli.jail.hostname, &cli.jail.env)?;
    let command = command::resolve_with_environment(&rootfs, &cli.command.words(), environment)?;
    // ANCHOR: new_runtime
    // NEW in ch02: the next child is PID 1 of a process tree of its own.
    namespaces::unshare(&narrator, CloneFlags::CLONE_NEWPID)?;
    // NEW in ch02: the /proc we mount lands in the host's mount table
    // (there is no mount namespace yet): take it down whatever happens.
    let host_proc = HostProcMount::for_this_runtime(&rootfs)?;
    // NEW in ch02: a terminal of the container's own, when the runtime runs on one.
    let terminal = terminal::allocate(&narrator)?;
    // ANCHOR_END: new_runtime
    let child = process::spawn(&narrator, &command, |narrator| {
        // ANCHOR: new_child
        // NEW in ch02: a session of its own; the host's terminal stays out.
        terminal::enter_new_session(narrator, terminal.as_ref())?;
        // NEW in ch02: a hostname of its own.
        namespaces::unshare(narrator, CloneFlags::CLONE_NEWUTS)?;
        namespaces::set_hostname(narrator, &cli.jail.hostname)?;
        chroot::enter_root(narrator, &rootfs)?;
        // NEW in ch02: a /proc that shows only this process tree.
        mounts::mount_proc(narrator, Path::new("/proc"), host_proc.source())?;
        // NEW in ch02: close the doors chroot left open.
        fds::close_inherited(narrator)?;
        let why = "root inside can never call chroot(2) again, so it cannot climb out";
        caps::drop_from_bounding_set(narrator, CAP_SYS_CHROOT, why)?;
        // NEW in ch02: nor open a host file by its handle (shocker, 2014).
        let why = "root inside can never open a file by handle, from outside its root";
        caps::drop_from_bounding_set(narrator, CAP_DAC_READ_SEARCH, why)?;
        // NEW in ch02: a real PID 1 that reaps orphans and forwards signals.
        Ok(cli.jail.launch())
        // ANCHOR_END: new_child
    })?;
    // NEW in ch02: keys in, output out, until the container exits.
    if let Some(terminal) = terminal {
        terminal.relay(&narrator, child.pid)?;
    }
    process::wait(&narrator, child)
}
// ANCHOR_END: recipe
