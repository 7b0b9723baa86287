//! ch07-lifecycle: containers that outlive the command that started them
//! (LXC 2008, Warden 2011; Docker's verbs, 2013).
//!
//! ch06 plus: every container has an id, a name and a state directory; a
//! monitor process (podman's conmon) is its parent, keeps its output in a
//! log and records how it ended; and the verbs that act on containers
//! which already exist (ps, exec, stop, kill, pause, logs, wait, inspect,
//! top, rm) find it there.

use clap::{Parser, Subcommand};
use container_lab::cli::{
    self, CommandArgs, JailArgs, LifecycleArgs, LifecycleVerb, LimitArgs, NarrationArgs, NetArgs,
    RootfsArg, UsernsArgs,
};
use container_lab::error::LabError;
use container_lab::runtime::caps::{self, CAP_DAC_READ_SEARCH, CAP_SYS_ADMIN, CAP_SYS_CHROOT};
use container_lab::runtime::cgroups::ContainerCgroup;
use container_lab::runtime::monitor::{self, Monitor};
use container_lab::runtime::net::{BridgeRequest, ContainerNetwork, NetChoice, Network};
use container_lab::runtime::state::{NetworkRecord, Record, Store};
use container_lab::runtime::usernet::UserModeNetwork;
use container_lab::runtime::userns::{self, RemappedRootfs, RootfsMountPoint};
use container_lab::runtime::{command, fds, mounts, namespaces, net, process, terminal};
use nix::sched::CloneFlags;
use std::ffi::OsString;
use std::path::Path;

/// Containers that outlive the command that started them.
#[derive(Parser, Debug)]
#[command(
    name = "ch07-lifecycle",
    version,
    long_about = "Run containers that live on their own, as LXC (2008) made them and Docker's \
        verbs (2013) name them: `run -d` returns once the container runs, and the other \
        verbs find it by id or name. A small monitor process is each container's parent: it \
        keeps the container's output in a log, records how it ended, and releases its \
        cgroup, network and mounts.\n\n\
        Chapter 07 of container-lab (LXC 2008, Warden 2011). `run` takes every option of \
        chapter 06.",
    after_help = "Examples:\n  \
        sudo ch07-lifecycle run -d --name web ./rootfs /bin/sh -c 'while :; do date; sleep 1; done'\n  \
        sudo ch07-lifecycle ps\n  \
        sudo ch07-lifecycle exec -it web /bin/sh\n  \
        sudo ch07-lifecycle logs -f web\n  \
        sudo ch07-lifecycle stop web && sudo ch07-lifecycle rm web\n\n\
        State lives in /run/container-lab/containers/ID/ (rootless: $XDG_RUNTIME_DIR).\n\
        Exit status: `run` and `exec` as chapter 06 (the command's own; 125, 126, 127, 128+N); \
        the other verbs 0, or 1 when they fail (no such container, ...), as docker's; 125 for \
        a usage error."
)]
struct Cli {
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Subcommand, Debug)]
enum Verb {
    /// Run a command in a new container (attached, or detached with -d)
    #[command(override_usage = "ch07-lifecycle run [OPTIONS] [ROOTFS [COMMAND [ARG]...]]")]
    Run(Box<RunArgs>),
    /// Run a command in a running container: it joins the container's
    /// namespaces and cgroup with setns(2)
    Exec(cli::ExecArgs),
    #[command(flatten)]
    Manage(LifecycleVerb),
}

/// `run`: chapter 06's options, and the lifecycle's own.
#[derive(clap::Args, Debug)]
struct RunArgs {
    #[command(flatten)]
    narration: NarrationArgs,

    #[command(flatten)]
    lifecycle: LifecycleArgs,

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
    // NEW in ch07: whatever descriptors the caller left open are closed
    // first. A monitor never executes a program, so close-on-exec would
    // never close them; and until execve(2) has found a command's `#!`
    // interpreter, a descriptor marked close-on-exec is still a path
    // (/proc/self/fd/N/..) that a script planted in the container can name.
    fds::close_all_above_stdio_except(&[]);
    let cli: Cli = cli::parse();
    container_lab::run(|| match &cli.verb {
        Verb::Run(run) => create(run),
        Verb::Exec(exec) => exec.run(),
        Verb::Manage(verb) => verb.run(),
    })
}

// ANCHOR: create
/// `run`: check everything that can be checked, record the container, hand
/// it to its monitor, which starts it (again, with --restart) until it ends.
fn create(cli: &RunArgs) -> Result<i32, LabError> {
    let narrator = cli.narration.narrator()?;
    cli.lifecycle.check(&cli.narration)?;
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
    let rootfs = cli.rootfs.locate()?;
    let rootfs =
        container_lab::rootfs::require_mount_points(&rootfs, &["proc", "sys", "dev", "tmp"])?;
    let words = cli.command.words();
    // NEW in ch07: an id, a name, and a state directory, before anything runs.
    let store = Store::open()?;
    let mut record = Record::new(cli.lifecycle.name.as_deref(), &rootfs, &words);
    record.hostname = cli.jail.hostname.clone();
    record.restart = cli.lifecycle.restart;
    record.auto_remove = cli.lifecycle.rm;
    store.create(&mut record)?;
    // NEW in ch07: the monitor; with -d this command returns once it runs.
    let monitor = monitor::become_monitor(
        &narrator,
        store,
        &record.id,
        cli.lifecycle.detach,
        cli.lifecycle.interactive,
        cli.lifecycle.tty,
    )?;
    monitor.run_until_done(|| recipe(cli, &narrator, &monitor, &rootfs, &words, rootless))
}
// ANCHOR_END: create

// ANCHOR: recipe
/// One start of the container, as chapter 06 builds it; the monitor, not
/// the user's command, waits for it.
fn recipe(
    cli: &RunArgs,
    narrator: &container_lab::narrator::Narrator,
    monitor: &Monitor,
    rootfs: &Path,
    words: &[OsString],
    rootless: bool,
) -> Result<i32, LabError> {
    // NEW in ch07: a cgroup always, even with no budget: pause freezes it,
    // exec joins it, top lists it.
    let mut limits = cli.limits.limits();
    limits.freezable = !rootless;
    // --net auto: a bridge as root; without root, which cannot
    // make one, user-mode networking with pasta (loopback only without it).
    let net = cli.net.resolve(rootless)?;
    let environment = command::clean_environment(&cli.jail.hostname, &cli.jail.env)?;
    let command = command::resolve_with_environment(rootfs, words, environment)?;
    let (uids, gids) = cli.userns.maps()?;
    // as root, the rootfs is seen through the id maps: an
    // idmapped mount, or with --chown-copy a copy the container's ids own.
    let idmapped = !rootless && !cli.userns.chown_copy;
    let remapped = match !rootless && cli.userns.chown_copy {
        true => Some(RemappedRootfs::prepare(narrator, rootfs, &uids, &gids)?),
        false => None,
    };
    // The idmapped rootfs goes on a mount point the container's root can
    // reach by path, wherever the rootfs itself lies.
    let mount_point = idmapped.then(RootfsMountPoint::make).transpose()?;
    let root = match (&remapped, &mount_point) {
        (Some(copy), _) => copy.path.clone(),
        (None, Some(mount_point)) => mount_point.path.clone(),
        (None, None) => rootfs.to_path_buf(),
    };
    let cgroup = match limits.is_empty() {
        true => None,
        false => Some(ContainerCgroup::create(narrator, &limits)?),
    };
    let network = match net {
        Network::Bridge => Some(ContainerNetwork::prepare(
            narrator,
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
    // NEW in ch07: the container's stdio are the monitor's pipes, or a pty.
    let stdio = monitor.stdio()?;
    let child = process::spawn_with_runtime_help(
        narrator,
        &command,
        |child, what| match (what, &network) {
            // the runtime writes the id maps from outside, and
            // puts the idmapped rootfs in place.
            ("id maps", _) => {
                // into the cgroup while it waits, before it runs anything.
                if let Some(cgroup) = &cgroup {
                    cgroup.add(narrator, child)?;
                }
                userns::write_maps(narrator, child, &uids, &gids)?;
                if idmapped {
                    let tree = userns::idmapped_rootfs(narrator, rootfs, child)?;
                    userns::attach_rootfs(narrator, child, tree, &root)?;
                }
                Ok(())
            }
            ("network", Some(network)) => network.wire(narrator, child),
            // rootless networking: pasta, started on the child's namespace.
            ("network", None) if net == Network::Pasta => {
                usernet = Some(UserModeNetwork::attach(narrator, child, &cli.net.publish)?);
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
            terminal::enter_new_session(narrator, None)?;
            stdio.attach(narrator)?;
            mounts::mount_kernel_filesystems(narrator, &root)?;
            if let Some(network) = &network {
                mounts::bind_etc_files(narrator, &root, &network.etc_files())?;
            }
            mounts::pivot_into(narrator, &root)?;
            // NEW in ch07: with -t, a terminal from the container's own devpts.
            stdio.open_console(narrator)?;
            // NEW in ch07: -w, the command's working directory.
            if let Some(workdir) = &cli.lifecycle.workdir {
                command::enter_workdir(narrator, workdir)?;
            }
            fds::close_inherited(narrator)?;
            let why = "root inside can never call chroot(2) again, so it cannot climb out";
            caps::drop_from_bounding_set(narrator, CAP_SYS_CHROOT, why)?;
            let why = "root inside can never open a file by handle, from outside its root";
            caps::drop_from_bounding_set(narrator, CAP_DAC_READ_SEARCH, why)?;
            Ok(cli.jail.launch())
        },
    )?;
    // NEW in ch07: the monitor keeps the output and records the end.
    let network_record = NetworkRecord {
        mode: format!("{net:?}").to_lowercase(),
        address: network.as_ref().map(|n| n.address.to_string()),
        ports: cli.net.publish.iter().map(ToString::to_string).collect(),
    };
    let code = monitor.watch(narrator, child, stdio, cgroup.as_ref(), network_record)?;
    // pasta, if any, goes with the container it served.
    drop(usernet);
    // ANCHOR: report
    // say what the budget did.
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
