//! ch04-net: a network stack of its own, wired to the host by a veth pair
//! and a bridge, with NAT out and published ports in (OpenVZ 2005, Linux
//! network namespaces 2009, Docker's bridge 2013).
//!
//! ch03 plus: a network namespace; the runtime, from outside, plugs a veth
//! pair into a lab bridge and moves one end in as eth0; masquerade for the
//! bridge's subnet, DNAT for `-p`; /etc/hosts, /etc/hostname and
//! /etc/resolv.conf of the container's own.

use clap::Parser;
use container_lab::cli::{self, CommandArgs, JailArgs, NarrationArgs, NetArgs, RootfsArg};
use container_lab::error::LabError;
use container_lab::runtime::caps::{self, CAP_DAC_READ_SEARCH, CAP_SYS_ADMIN, CAP_SYS_CHROOT};
use container_lab::runtime::net::{BridgeRequest, ContainerNetwork, NetMode};
use container_lab::runtime::{command, fds, mounts, namespaces, net, process, terminal};
use nix::sched::CloneFlags;

/// Run COMMAND with a network of its own.
#[derive(Parser, Debug)]
#[command(
    name = "ch04-net",
    version,
    override_usage = "ch04-net [OPTIONS] [ROOTFS [COMMAND [ARG]...]]",
    long_about = "Run COMMAND in its own network namespace as well as its own mount, UTS, IPC and \
        PID namespaces. In bridge mode (the default) the runtime plugs it into a lab bridge with \
        a veth pair, gives it an address, NAT to the outside and the ports you publish with -p.\n\n\
        Chapter 04 of container-lab (OpenVZ 2005, network namespaces 2009, Docker's bridge 2013). \
        The bridge stays after the container exits, for the next one; `lab clean` removes it.",
    after_help = "ROOTFS defaults to $CONTAINER_LAB_ROOTFS, else /var/lib/container-lab/rootfs \
        (build it with: sudo lab rootfs). COMMAND defaults to /bin/sh.\n\n\
        Examples:\n  \
        sudo ch04-net --explain ./rootfs /bin/ip addr\n  \
        sudo ch04-net -p 8080:80 ./rootfs /usr/local/bin/lab-probe --serve 80\n  \
        sudo ch04-net --net none ./rootfs /bin/ip link\n\n\
        Needs CAP_SYS_ADMIN, CAP_SYS_CHROOT and CAP_NET_ADMIN (run as root), ip(8) and, for \
        bridge mode, nft(8).\n\
        Exit status: the command's own; 125 if the runtime failed, 126 if COMMAND is not \
        executable, 127 if it was not found, 128+N if signal N killed it."
)]
struct Cli {
    #[command(flatten)]
    narration: NarrationArgs,

    #[command(flatten)]
    jail: JailArgs,

    #[command(flatten)]
    net: NetArgs,

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
    cli.net.check()?;
    let rootfs = cli.rootfs.locate()?;
    let rootfs =
        container_lab::rootfs::require_mount_points(&rootfs, &["proc", "sys", "dev", "tmp"])?;
    let environment = command::clean_environment(&cli.jail.hostname, &cli.jail.env)?;
    let command = command::resolve_with_environment(&rootfs, &cli.command.words(), environment)?;
    // ANCHOR: new_runtime
    // NEW in ch04: an address, the host ports and the bridge, before fork.
    let network = match cli.net.mode {
        NetMode::Bridge => Some(ContainerNetwork::prepare(
            &narrator,
            &BridgeRequest {
                bridge: &cli.net.bridge,
                subnet: cli.net.subnet,
                ports: &cli.net.publish,
                hostname: &cli.jail.hostname,
            },
        )?),
        NetMode::None | NetMode::Host => None,
    };
    // ANCHOR_END: new_runtime
    namespaces::unshare(&narrator, CloneFlags::CLONE_NEWPID)?;
    let terminal = terminal::allocate(&narrator)?;
    let child = process::spawn_with_runtime_help(
        &narrator,
        &command,
        // NEW in ch04: the runtime wires the child's network from outside.
        |child, _| match &network {
            Some(network) => network.wire(&narrator, child),
            None => Ok(()),
        },
        |narrator, handshake| {
            terminal::enter_new_session(narrator, terminal.as_ref())?;
            let mut kinds =
                CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWIPC;
            // ANCHOR: new_child
            // NEW in ch04: a network stack of its own (unless --net host).
            if cli.net.mode != NetMode::Host {
                kinds |= CloneFlags::CLONE_NEWNET;
            }
            namespaces::unshare(narrator, kinds)?;
            namespaces::set_hostname(narrator, &cli.jail.hostname)?;
            match cli.net.mode {
                NetMode::Bridge => {
                    let why =
                        "wait while the runtime plugs this new network namespace into the bridge";
                    handshake.ask_runtime(narrator, "network", why)?;
                }
                NetMode::None => net::bring_up_loopback(narrator)?,
                NetMode::Host => {}
            }
            // ANCHOR_END: new_child
            mounts::make_all_private(narrator)?;
            mounts::bind_onto_itself(narrator, &rootfs)?;
            mounts::mount_kernel_filesystems(narrator, &rootfs)?;
            if let Some(network) = &network {
                // NEW in ch04: the container's own hosts, hostname, resolv.conf.
                mounts::bind_etc_files(narrator, &rootfs, &network.etc_files())?;
            }
            mounts::pivot_into(narrator, &rootfs)?;
            fds::close_inherited(narrator)?;
            let why = "root inside can never call chroot(2) again, so it cannot climb out";
            caps::drop_from_bounding_set(narrator, CAP_SYS_CHROOT, why)?;
            let why = "root inside can never open a file by handle, from outside its root";
            caps::drop_from_bounding_set(narrator, CAP_DAC_READ_SEARCH, why)?;
            Ok(cli.jail.launch())
        },
    )?;
    if let Some(terminal) = terminal {
        terminal.relay(&narrator, child.pid)?;
    }
    process::wait(&narrator, child)
}
// ANCHOR_END: recipe
