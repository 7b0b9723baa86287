//! ch05-user: root inside, an unprivileged user outside; and containers
//! without sudo (user namespaces, Linux 3.8, 2013; rootless containers).
//!
//! ch04 plus: the child first makes a user namespace, the runtime writes
//! its id maps from outside, and every other namespace is made inside it,
//! so the container's root holds its capabilities only over what the
//! container owns. As root, the container's ids map onto an unused range
//! and the rootfs is an idmapped mount that shows its files as theirs; as
//! an ordinary user, the container's root is that user, and no sudo is
//! needed at all.

use clap::Parser;
use container_lab::cli::{
    self, CommandArgs, JailArgs, NarrationArgs, NetArgs, RootfsArg, UsernsArgs,
};
use container_lab::error::LabError;
use container_lab::runtime::caps::{self, CAP_DAC_READ_SEARCH, CAP_SYS_ADMIN, CAP_SYS_CHROOT};
use container_lab::runtime::net::{BridgeRequest, ContainerNetwork, NetChoice, Network};
use container_lab::runtime::usernet::UserModeNetwork;
use container_lab::runtime::userns::{self, RemappedRootfs, RootfsMountPoint};
use container_lab::runtime::{command, fds, mounts, namespaces, net, process, terminal};
use nix::sched::CloneFlags;

/// Run COMMAND as root of its own user namespace: unprivileged on the host.
#[derive(Parser, Debug)]
#[command(
    name = "ch05-user",
    version,
    override_usage = "ch05-user [OPTIONS] [ROOTFS [COMMAND [ARG]...]]",
    long_about = "Run COMMAND in a user namespace of its own, with every other namespace made \
        inside it: root in the container is an unprivileged user on the host.\n\n\
        Chapter 05 of container-lab (user namespaces, Linux 3.8, 2013). Run as root, the \
        container's ids map onto 1879048192-1879113727, or the next 65536 ids that no line of \
        /etc/subuid or /etc/subgid gives to a user (--uid-map/--gid-map to change it), and the \
        rootfs is a read-only idmapped mount in which its files are theirs. Run as an ordinary user, no sudo is needed: the \
        container's root is you (and, with newuidmap(1) and /etc/subuid, a range besides).",
    after_help = "ROOTFS defaults to $CONTAINER_LAB_ROOTFS, else /var/lib/container-lab/rootfs. \
        A rootless run needs a rootfs you own (rootfs-scripts/host.sh DIR, as yourself); a bridge \
        takes root on the host, so its network comes from pasta(1) (package passt), or is \
        loopback only without it.\n\n\
        Examples:\n  \
        sudo ch05-user --explain ./rootfs /bin/sh -c 'id; cat /proc/self/uid_map'\n  \
        ch05-user ~/rootfs /bin/sh          (no sudo)\n  \
        sudo ch05-user --uid-map 0:1900000000:1000 --gid-map 0:1900000000:1000 ./rootfs\n\n\
        Exit status: the command's own; 125 if the runtime failed, 126 if COMMAND is not \
        executable, 127 if it was not found, 128+N if signal N killed it."
)]
struct Cli {
    #[command(flatten)]
    narration: NarrationArgs,

    #[command(flatten)]
    jail: JailArgs,

    #[command(flatten)]
    net: NetArgs<NetChoice>,

    #[command(flatten)]
    userns: UsernsArgs,

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
    // NEW in ch05: without root, the user namespace grants what is needed.
    let rootless = !nix::unistd::geteuid().is_root();
    if !rootless {
        caps::require(CAP_SYS_CHROOT, "dropping CAP_SYS_CHROOT")?;
        caps::require(CAP_SYS_ADMIN, "unshare(2), mount(2) and pivot_root(2)")?;
    }
    // NEW in ch05: --net auto: a bridge as root; without root, which cannot
    // make one, user-mode networking with pasta (loopback only without it).
    let net = cli.net.resolve(rootless)?;
    let rootfs = cli.rootfs.locate()?;
    let rootfs =
        container_lab::rootfs::require_mount_points(&rootfs, &["proc", "sys", "dev", "tmp"])?;
    let environment = command::clean_environment(&cli.jail.hostname, &cli.jail.env)?;
    let command = command::resolve_with_environment(&rootfs, &cli.command.words(), environment)?;
    // ANCHOR: new_runtime
    let (uids, gids) = cli.userns.maps()?;
    // NEW in ch05: as root, the rootfs is seen through the id maps: an
    // idmapped mount, or with --chown-copy a copy the container's ids own.
    let idmapped = !rootless && !cli.userns.chown_copy;
    let remapped = match !rootless && cli.userns.chown_copy {
        true => Some(RemappedRootfs::prepare(&narrator, &rootfs, &uids, &gids)?),
        false => None,
    };
    // The idmapped rootfs goes on a mount point the container's root can
    // reach by path, wherever the rootfs itself lies.
    let mount_point = idmapped.then(RootfsMountPoint::make).transpose()?;
    let root = match (&remapped, &mount_point) {
        (Some(copy), _) => copy.path.clone(),
        (None, Some(mount_point)) => mount_point.path.clone(),
        (None, None) => rootfs.clone(),
    };
    // ANCHOR_END: new_runtime
    let network = match net {
        Network::Bridge => Some(ContainerNetwork::prepare(
            &narrator,
            &BridgeRequest {
                bridge: &cli.net.bridge,
                subnet: cli.net.subnet,
                ports: &cli.net.publish,
                hostname: &cli.jail.hostname,
            },
        )?),
        Network::None | Network::Host | Network::Pasta => None,
    };
    let mut usernet: Option<UserModeNetwork> = None;
    let terminal = terminal::allocate(&narrator)?;
    let child = process::spawn_with_runtime_help(
        &narrator,
        &command,
        |child, what| match (what, &network) {
            // NEW in ch05: the runtime writes the id maps from outside, and
            // puts the idmapped rootfs in place.
            ("id maps", _) => {
                userns::write_maps(&narrator, child, &uids, &gids)?;
                if idmapped {
                    let tree = userns::idmapped_rootfs(&narrator, &rootfs, child)?;
                    userns::attach_rootfs(&narrator, child, tree, &root)?;
                }
                Ok(())
            }
            ("network", Some(network)) => network.wire(&narrator, child),
            // NEW in ch05: rootless networking: pasta, started on the child's namespace.
            ("network", None) if net == Network::Pasta => {
                usernet = Some(UserModeNetwork::attach(&narrator, child, &cli.net.publish)?);
                Ok(())
            }
            _ => Ok(()),
        },
        |narrator, handshake| {
            // ANCHOR: new_child
            // NEW in ch05: as root, the rootfs is put in place in a mount namespace
            // of the host's root; the container's own, made inside the user
            // namespace, is a copy of it whose flags (ro, nodev) the kernel locks.
            if !rootless {
                namespaces::unshare(narrator, CloneFlags::CLONE_NEWNS)?;
                mounts::make_all_private(narrator)?;
                if !idmapped {
                    mounts::bind_onto_itself(narrator, &root)?;
                }
            }
            // NEW in ch05: the user namespace first, so it owns all the others.
            namespaces::unshare(narrator, CloneFlags::CLONE_NEWUSER)?;
            let why = "wait while the runtime, outside, writes which host ids this namespace's ids stand for";
            handshake.ask_runtime(narrator, "id maps", why)?;
            userns::become_root(narrator)?;
            // ANCHOR_END: new_child
            let mut kinds =
                CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWIPC;
            if net != Network::Host {
                kinds |= CloneFlags::CLONE_NEWNET;
            }
            namespaces::unshare(narrator, kinds)?;
            namespaces::set_hostname(narrator, &cli.jail.hostname)?;
            match net {
                Network::Bridge => {
                    let why =
                        "wait while the runtime plugs this new network namespace into the bridge";
                    handshake.ask_runtime(narrator, "network", why)?;
                }
                Network::Pasta => {
                    let why = "wait while the runtime starts pasta, which gives this namespace an eth0 and carries its traffic out";
                    handshake.ask_runtime(narrator, "network", why)?;
                }
                Network::None => net::bring_up_loopback(narrator)?,
                Network::Host => {}
            }
            mounts::make_all_private(narrator)?;
            // pivot_root(2) refuses a mount the kernel locked (it would show
            // what is beneath): bind the rootfs onto itself once more; the
            // bind keeps the locked flags, not that lock.
            mounts::bind_onto_itself(narrator, &root)?;
            // CHANGED in ch05: the PID namespace too is made inside the user
            // namespace, so the fork into it happens here, not in the runtime.
            namespaces::enter_new_pid_namespace(narrator)?;
            // The session starts in PID 1, so that the foreground process group a
            // shell finds on its terminal is one it can see (and restore on exit).
            terminal::enter_new_session(narrator, terminal.as_ref())?;
            mounts::mount_kernel_filesystems(narrator, &root)?;
            if let Some(network) = &network {
                mounts::bind_etc_files(narrator, &root, &network.etc_files())?;
            }
            mounts::pivot_into(narrator, &root)?;
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
    let code = process::wait(&narrator, child)?;
    // pasta, if any, goes with the container it served.
    drop(usernet);
    Ok(code)
}
// ANCHOR_END: recipe
