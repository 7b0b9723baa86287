//! ch06-cgroups: budgets for memory, CPU time and processes (Process
//! Containers 2006, cgroups in Linux 2.6.24, 2008; cgroup v2, 2016).
//!
//! ch05 plus: a cgroup of the container's own, under the runtime's, with
//! the limits written before anything runs; the runtime moves the child in
//! while it waits, so every process of the container is counted from its
//! first instruction. An OOM kill is reported as such (exit 137).

use clap::Parser;
use container_lab::cli::{
    self, CommandArgs, JailArgs, LimitArgs, NarrationArgs, NetArgs, RootfsArg, UsernsArgs,
};
use container_lab::error::LabError;
use container_lab::runtime::caps::{self, CAP_DAC_READ_SEARCH, CAP_SYS_ADMIN, CAP_SYS_CHROOT};
use container_lab::runtime::cgroups::ContainerCgroup;
use container_lab::runtime::net::{BridgeRequest, ContainerNetwork, NetChoice, Network};
use container_lab::runtime::usernet::UserModeNetwork;
use container_lab::runtime::userns::{self, RemappedRootfs, RootfsMountPoint};
use container_lab::runtime::{command, fds, mounts, namespaces, net, process, terminal};
use nix::sched::CloneFlags;

/// Run COMMAND with budgets for memory, CPU time and processes.
#[derive(Parser, Debug)]
#[command(
    name = "ch06-cgroups",
    version,
    override_usage = "ch06-cgroups [OPTIONS] [ROOTFS [COMMAND [ARG]...]]",
    long_about = "Run COMMAND as chapter 05 does, in a cgroup of its own with the budgets you \
        give: --memory, --cpus, --cpu-weight, --pids. The kernel enforces them for every \
        process of the container; past the memory budget its OOM killer ends the container \
        (exit 137, and the runtime says so).\n\n\
        Chapter 06 of container-lab (Process Containers 2006, cgroups 2008, cgroup v2 2016). \
        Works on cgroup v2, v1 and hybrid hosts; `lab doctor` shows which this is.",
    after_help = "ROOTFS defaults to $CONTAINER_LAB_ROOTFS, else /var/lib/container-lab/rootfs.\n\n\
        Examples:\n  \
        sudo ch06-cgroups --memory 64M --stats ./rootfs /bin/sh -c 'head -c 500M /dev/zero | tail'\n  \
        sudo ch06-cgroups --pids 32 --net none ./rootfs\n  \
        sudo ch06-cgroups --cpus 0.5 --stats ./rootfs /usr/local/bin/lab-probe --burn-cpu 300000000\n\n\
        Needs root: making cgroups takes root, or a cgroup delegated to you.\n\
        Exit status: the command's own; 125 if the runtime failed, 126 if COMMAND is not \
        executable, 127 if it was not found, 128+N if signal N killed it (137 for an OOM kill)."
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
    limits: LimitArgs,

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
    // without root, the user namespace grants what is needed.
    let rootless = !nix::unistd::geteuid().is_root();
    if !rootless {
        caps::require(CAP_SYS_CHROOT, "dropping CAP_SYS_CHROOT")?;
        caps::require(CAP_SYS_ADMIN, "unshare(2), mount(2) and pivot_root(2)")?;
    }
    let limits = cli.limits.limits();
    if rootless && !limits.is_empty() {
        return Err(LabError::Refused {
            message: "cgroup budgets need root: the cgroup trees are the host root's".into(),
            hint: "run with sudo (rootless budgets, in a cgroup delegated to you, are not supported yet)".into(),
        });
    }
    // --net auto: a bridge as root; without root, which cannot
    // make one, user-mode networking with pasta (loopback only without it).
    let net = cli.net.resolve(rootless)?;
    let rootfs = cli.rootfs.locate()?;
    let rootfs =
        container_lab::rootfs::require_mount_points(&rootfs, &["proc", "sys", "dev", "tmp"])?;
    let environment = command::clean_environment(&cli.jail.hostname, &cli.jail.env)?;
    let command = command::resolve_with_environment(&rootfs, &cli.command.words(), environment)?;
    let (uids, gids) = cli.userns.maps()?;
    // as root, the rootfs is seen through the id maps: an
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
    // ANCHOR: new_cgroup
    // NEW in ch06: a cgroup with the budgets, before anything runs.
    let cgroup = match limits.is_empty() {
        true => None,
        false => Some(ContainerCgroup::create(&narrator, &limits)?),
    };
    // ANCHOR_END: new_cgroup
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
            // the runtime writes the id maps from outside, and
            // puts the idmapped rootfs in place.
            ("id maps", _) => {
                // NEW in ch06: into the cgroup while it waits, before it runs anything.
                if let Some(cgroup) = &cgroup {
                    cgroup.add(&narrator, child)?;
                }
                userns::write_maps(&narrator, child, &uids, &gids)?;
                if idmapped {
                    let tree = userns::idmapped_rootfs(&narrator, &rootfs, child)?;
                    userns::attach_rootfs(&narrator, child, tree, &root)?;
                }
                Ok(())
            }
            ("network", Some(network)) => network.wire(&narrator, child),
            // rootless networking: pasta, started on the child's namespace.
            ("network", None) if net == Network::Pasta => {
                usernet = Some(UserModeNetwork::attach(&narrator, child, &cli.net.publish)?);
                Ok(())
            }
            _ => Ok(()),
        },
        |narrator, handshake| {
            // as root, the rootfs is put in place in a mount namespace of the
            // host's root, whose copy inside the user namespace has its flags
            // locked.
            if !rootless {
                namespaces::unshare(narrator, CloneFlags::CLONE_NEWNS)?;
                mounts::make_all_private(narrator)?;
                if !idmapped {
                    mounts::bind_onto_itself(narrator, &root)?;
                }
            }
            // the user namespace first, so it owns all the others.
            namespaces::unshare(narrator, CloneFlags::CLONE_NEWUSER)?;
            let why = "wait while the runtime, outside, writes which host ids this namespace's ids stand for";
            handshake.ask_runtime(narrator, "id maps", why)?;
            userns::become_root(narrator)?;
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
            // the PID namespace too is made inside the user
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
    // ANCHOR: report
    // NEW in ch06: say what the budget did.
    if let Some(cgroup) = &cgroup {
        if code == 137 && cgroup.oom_killed() {
            let limit = cgroup.limits.memory_bytes.unwrap_or(0) >> 20;
            container_lab::say!(
                "{}: killed: out of memory, limit {limit} MiB",
                container_lab::program_name()
            );
        }
        if cli.limits.stats {
            container_lab::say!("{}: {}", container_lab::program_name(), cgroup.stats());
        }
    }
    // ANCHOR_END: report
    Ok(code)
}
// ANCHOR_END: recipe
