//! ch03-namespaces: a mount table and IPC objects of its own, and a root
//! swapped in with pivot_root (Linux namespaces, 2002-2008).
//!
//! ch02 plus: a mount namespace made private before anything is mounted,
//! pivot_root into the rootfs with the old root detached (the host's
//! filesystem is gone, not just hidden), a minimal /dev, /proc, read-only
//! /sys and an in-memory /tmp, and an IPC namespace. Everything it mounts
//! disappears with it.

use clap::Parser;
use container_lab::cli::{self, CommandArgs, JailArgs, NarrationArgs, RootfsArg};
use container_lab::error::LabError;
use container_lab::rootfs;
use container_lab::runtime::caps::{self, CAP_DAC_READ_SEARCH, CAP_SYS_ADMIN, CAP_SYS_CHROOT};
use container_lab::runtime::process;
use container_lab::runtime::{command, fds, mounts, namespaces, terminal};
use nix::sched::CloneFlags;

/// Run COMMAND with its own mount table, IPC objects, hostname and process tree.
#[derive(Parser, Debug)]
#[command(
    name = "ch03-namespaces",
    version,
    override_usage = "ch03-namespaces [OPTIONS] [ROOTFS [COMMAND [ARG]...]]",
    long_about = "Run COMMAND in mount, UTS, IPC and PID namespaces: pivot_root(2) into ROOTFS \
        with the host's root detached, a minimal /dev, its own /proc, a read-only /sys and a \
        tmpfs /tmp, all in a private mount namespace.\n\n\
        Chapter 03 of container-lab (Linux namespaces, 2002-2008). Nothing the container \
        mounts appears on the host, and everything it mounted is gone when it exits. The \
        rootfs itself is shared and writable: what the container writes there (outside the \
        tmpfs /tmp) stays on disk for the next container and for the host, though device \
        nodes in it no longer open (it is mounted nodev).",
    after_help = "ROOTFS defaults to $CONTAINER_LAB_ROOTFS, else /var/lib/container-lab/rootfs \
        (build it with: sudo lab rootfs). ROOTFS must have the directories proc, sys, dev and \
        tmp. COMMAND defaults to /bin/sh and is looked up inside ROOTFS.\n\n\
        Examples:\n  \
        sudo ch03-namespaces --explain ./rootfs /bin/sh -c 'ls /dev; cat /proc/self/mountinfo'\n  \
        sudo ch03-namespaces --hostname db ./rootfs\n\n\
        Needs CAP_SYS_ADMIN and CAP_SYS_CHROOT (run as root).\n\
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
    caps::require(CAP_SYS_CHROOT, "dropping CAP_SYS_CHROOT")?;
    caps::require(CAP_SYS_ADMIN, "unshare(2), mount(2) and pivot_root(2)")?;
    let rootfs = cli.rootfs.locate()?;
    let rootfs = rootfs::require_mount_points(&rootfs, &["proc", "sys", "dev", "tmp"])?;
    let environment = command::clean_environment(&cli.jail.hostname, &cli.jail.env)?;
    let command = command::resolve_with_environment(&rootfs, &cli.command.words(), environment)?;
    namespaces::unshare(&narrator, CloneFlags::CLONE_NEWPID)?;
    let terminal = terminal::allocate(&narrator)?;
    let child = process::spawn(&narrator, &command, |narrator| {
        terminal::enter_new_session(narrator, terminal.as_ref())?;
        // ANCHOR: new
        // NEW in ch03: a mount table and IPC objects of its own.
        let kinds = CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWIPC;
        namespaces::unshare(narrator, kinds)?;
        namespaces::set_hostname(narrator, &cli.jail.hostname)?;
        // NEW in ch03: private first, then mount: nothing reaches the host.
        mounts::make_all_private(narrator)?;
        mounts::bind_onto_itself(narrator, &rootfs)?;
        mounts::mount_kernel_filesystems(narrator, &rootfs)?;
        // CHANGED in ch03: pivot_root and detach the old root, instead of chroot.
        mounts::pivot_into(narrator, &rootfs)?;
        // ANCHOR_END: new
        fds::close_inherited(narrator)?;
        let why = "root inside can never call chroot(2) again, so it cannot climb out";
        caps::drop_from_bounding_set(narrator, CAP_SYS_CHROOT, why)?;
        let why = "root inside can never open a file by handle, from outside its root";
        caps::drop_from_bounding_set(narrator, CAP_DAC_READ_SEARCH, why)?;
        Ok(cli.jail.launch())
    })?;
    if let Some(terminal) = terminal {
        terminal.relay(&narrator, child.pid)?;
    }
    process::wait(&narrator, child)
}
// ANCHOR_END: recipe
