//! ch09-hardening: what root inside may ask of the kernel, cut to what
//! containers need (Docker's defaults, 2014-2016).
//!
//! ch08 plus, on by default: a short capability list (capabilities(7)),
//! no_new_privs (setuid programs gain nothing; Docker's opt-in, the
//! lab's default), a seccomp filter (system
//! calls refused by number and argument: keyctl, unshare, mount, bpf, ...)
//! and Docker's masked and read-only paths of /proc and /sys. Each comes
//! with the flag that turns it off (`--cap-add`, `--security-opt`,
//! `--privileged`), so the scorecard can show what each one holds.

use clap::{Parser, Subcommand};
use container_lab::cli::{
    self, CommandArgs, ImageRunArgs, JailArgs, LifecycleArgs, LifecycleVerb, LimitArgs,
    NarrationArgs, NetArgs, SecurityArgs, UsernsArgs, VolumeVerb,
};
use container_lab::error::LabError;
use container_lab::image::manage::lower_dirs;
use container_lab::image::spec::RunConfig;
use container_lab::image::store::ImageStore;
use container_lab::image::verbs::ImageVerb;
use container_lab::runtime::caps::{self, CAP_SYS_ADMIN, CAP_SYS_CHROOT};
use container_lab::runtime::cgroups::ContainerCgroup;
use container_lab::runtime::hardening::Hardening;
use container_lab::runtime::monitor::{self, Monitor};
use container_lab::runtime::mountspec::MountSpec;
use container_lab::runtime::net::{BridgeRequest, ContainerNetwork, NetChoice, Network};
use container_lab::runtime::overlay::LayeredRoot;
use container_lab::runtime::state::{NetworkRecord, Record, Store};
use container_lab::runtime::usernet::UserModeNetwork;
use container_lab::runtime::userns::{self, IdMap, RootfsMountPoint};
use container_lab::runtime::volumes::{self, Attachment};
use container_lab::runtime::{command, fds, masks, mounts, namespaces, net, process, terminal};
use nix::sched::CloneFlags;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Containers whose root may ask the kernel for little.
#[derive(Parser, Debug)]
#[command(
    name = "ch09-hardening",
    version,
    long_about = "Run containers from images as chapter 08 does, with Docker's protections \
        (2014-2016) on by default: root inside keeps 12 capabilities (Docker's list without \
        NET_RAW and SYS_CHROOT), no program gains privilege through a setuid bit \
        (no_new_privs: Docker's opt-in, on here), a seccomp filter refuses the system calls containers do not need \
        (keyctl, unshare, mount, bpf, perf_event_open, userfaultfd, kernel modules, \
        reboot, ...) with EPERM, and the parts of /proc and /sys that show or change the \
        whole machine are masked or read-only. Each has its flag to turn it off, to see \
        what it holds: --cap-add/--cap-drop, --security-opt no-new-privileges=false, \
        --security-opt seccomp=unconfined (or seccomp=PROFILE.json, Docker's format), \
        --security-opt systempaths=unconfined, and --privileged for all of them.\n\n\
        Chapter 09 of container-lab (Docker 2014-2016). `run` takes every option of \
        chapter 08, and the security flags.",
    after_help = "Examples:\n  \
        sudo ch09-hardening import /var/lib/container-lab/rootfs lab/base:v1\n  \
        sudo ch09-hardening run --rm lab/base:v1 grep Cap /proc/self/status\n  \
        sudo ch09-hardening run --rm --cap-drop ALL --cap-add NET_BIND_SERVICE lab/base:v1 /bin/sh\n  \
        sudo ch09-hardening run --rm --security-opt seccomp=unconfined lab/base:v1 /bin/sh\n  \
        sudo ch09-hardening run --rm --security-opt seccomp=./profile.json lab/base:v1 /bin/sh\n  \
        sudo ch09-hardening run --rm --security-opt no-new-privileges=false -u 1000 lab/base:v1 /bin/sh\n  \
        sudo ch09-hardening run --rm --privileged lab/base:v1 /bin/sh\n  \
        sudo ch09-hardening run -d --name web lab/base:v1 /bin/sh -c 'while :; do date >> /log; sleep 1; done'\n  \
        sudo ch09-hardening exec web grep Seccomp /proc/self/status\n\n\
        Every verb of chapter 08 is here too (pull, load, import, images, rmi, commit, build, \
        save, push, volume, ps, logs, stop, rm, ...).\n\
        Images live in /var/lib/container-lab/storage, named volumes in \
        /var/lib/container-lab/volumes (rootless: both in $XDG_DATA_HOME/container-lab; \
        CONTAINER_LAB_STORAGE names another); containers' state in /run/container-lab/containers/ID/.\n\
        Exit status: `run` and `exec` as chapter 08 (the command's own; 125, 126, 127, 128+N); \
        the other verbs 0, or 1 when they fail; 125 for a usage error."
)]
struct Cli {
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Subcommand, Debug)]
enum Verb {
    /// Run a command in a new container made from an image
    #[command(override_usage = "ch09-hardening run [OPTIONS] IMAGE [COMMAND [ARG]...]")]
    Run(Box<RunArgs>),
    /// Run a command in a running container: it joins the container's
    /// namespaces and cgroup with setns(2)
    Exec(cli::ExecArgs),
    #[command(flatten)]
    Manage(LifecycleVerb),
    #[command(flatten)]
    Image(ImageVerb),
    /// Named volumes: volume create, ls, inspect, rm, prune
    #[command(subcommand)]
    Volume(VolumeVerb),
}

/// `run`: chapter 08's options, and the security flags.
#[derive(clap::Args, Debug)]
#[command(mut_arg("chown_copy", |arg| arg.help(
    "Refused from chapter 08: an image's layers are shared by every container and seen \
     through idmapped mounts, never copied"
)))]
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
    image: ImageRunArgs,

    #[command(flatten)]
    security: SecurityArgs,

    #[command(flatten)]
    command: CommandArgs,
}

fn main() {
    fds::close_all_above_stdio_except(&[]);
    let cli: Cli = cli::parse();
    container_lab::run(|| match &cli.verb {
        Verb::Run(run) => create(run),
        Verb::Exec(exec) => exec.run(),
        Verb::Manage(verb) => verb.run(),
        Verb::Image(verb) => verb.run(),
        Verb::Volume(verb) => verb.run(),
    })
}

// ANCHOR: create
/// `run`: find the image, record the container, hand it to its monitor,
/// which starts it (again, with --restart) until it ends.
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
    if cli.userns.chown_copy {
        return Err(LabError::Usage {
            message: "--chown-copy copies a rootfs; an image's layers are shared by every container and seen through idmapped mounts instead".into(),
        });
    }
    // ANCHOR: security
    // NEW in ch09: the protections, the filter compiled here, so that a
    // profile that does not compile stops the run before anything starts.
    let security = cli.security.security()?;
    let hardening = security.prepare()?;
    // ANCHOR_END: security
    // the image, and what its config says to run.
    let images = ImageStore::open()?;
    let image = images
        .find(&cli.image.image)
        .map_err(|error| missing_image(&images, &cli.image.image, error))?;
    // A store that fails `run` is the runtime's failure (125), not the
    // container's.
    let config = images
        .read_config(&image.id)
        .map_err(|error| LabError::Refused {
            message: error.to_string(),
            hint: "remove the image (rmi) and pull, load or import it again".into(),
        })?
        .config
        .unwrap_or_default();
    // --entrypoint replaces the image's ("" drops it), as docker run's.
    let mut config = config;
    if let Some(entrypoint) = &cli.image.entrypoint {
        config.entrypoint = (!entrypoint.is_empty()).then(|| vec![entrypoint.clone()]);
    }
    let words = image_command(&config, &cli.command.command)?;
    // -v's host paths checked, its named volumes made.
    let mounts = cli.image.mounts();
    let attachments = volumes::prepare(&mounts)?;
    let store = Store::open()?;
    let mut record = Record::new(
        cli.lifecycle.name.as_deref(),
        Path::new(&cli.image.image),
        &words,
    );
    record.hostname = cli.jail.hostname.clone();
    record.restart = cli.lifecycle.restart;
    record.auto_remove = cli.lifecycle.rm;
    record.image = Some(image.id.to_string());
    record.layer = Some(images.container_dir(&record.id));
    // what `commit` needs to tell the container's ids from the host's.
    (record.uid_maps, record.gid_maps) = cli.userns.maps()?;
    record.mounts = mounts.clone();
    // NEW in ch09: kept, so that `exec` puts a joining process under them.
    record.security = Some(security);
    store.create(&mut record)?;
    let layer = images.container_dir(&record.id);
    let monitor = monitor::become_monitor(
        &narrator,
        store,
        &record.id,
        cli.lifecycle.detach,
        cli.lifecycle.interactive,
        cli.lifecycle.tty,
    )?;
    let image = ImageToRun {
        layers: lower_dirs(&images, &image),
        config,
        layer,
        attachments,
        mounts,
        maps: (record.uid_maps.clone(), record.gid_maps.clone()),
        hardening,
    };
    monitor.run_until_done(|| recipe(cli, &narrator, &monitor, &image, &words, rootless))
}
// ANCHOR_END: create

/// What `create` found for the recipe: the image's layers (top first),
/// its config, where the container's writable layer goes, and its -v
/// and --tmpfs mounts.
struct ImageToRun {
    layers: Vec<PathBuf>,
    config: RunConfig,
    layer: PathBuf,
    attachments: Vec<Attachment>,
    mounts: Vec<MountSpec>,
    /// The uid and gid maps, worked out once by `create` and recorded.
    maps: (Vec<IdMap>, Vec<IdMap>),
    /// Chapter 09's protections, the filter compiled.
    hardening: Hardening,
}

/// Why IMAGE is not in the store, and what to do: a path is chapter 07's
/// habit (import it); a name without its tag is `:latest` (name the tags
/// the store has).
fn missing_image(images: &ImageStore, given: &str, error: LabError) -> LabError {
    let hint = if given.starts_with(['/', '.']) {
        format!(
            "chapter 08 runs images, not directories: make one first, `import {given} NAME:TAG`"
        )
    } else {
        let name = given.split(':').next().unwrap_or(given);
        let tags: Vec<String> = images
            .tags()
            .into_keys()
            .filter(|tag| tag.rsplit_once(':').map(|(n, _)| n) == Some(name))
            .collect();
        match tags.is_empty() {
            true => "pull, load or import it first; `images` lists what the store holds".into(),
            false => format!("the store has {}", tags.join(", ")),
        }
    };
    LabError::Refused {
        message: format!("unable to find image {given}: {error}"),
        hint,
    }
}

/// Entrypoint and Cmd, the user's COMMAND replacing Cmd (docker run's rule).
fn image_command(config: &RunConfig, given: &[OsString]) -> Result<Vec<OsString>, LabError> {
    let given: Vec<String> = given
        .iter()
        .map(|w| w.to_string_lossy().into_owned())
        .collect();
    let words = config.command(&given);
    if words.is_empty() {
        return Err(LabError::Usage {
            message: "no command: the image has neither Entrypoint nor Cmd; give one after IMAGE"
                .into(),
        });
    }
    Ok(words.into_iter().map(OsString::from).collect())
}

// ANCHOR: recipe
/// One start of the container, as chapter 06 builds it; the monitor, not
/// the user's command, waits for it.
fn recipe(
    cli: &RunArgs,
    narrator: &container_lab::narrator::Narrator,
    monitor: &Monitor,
    image: &ImageToRun,
    words: &[OsString],
    rootless: bool,
) -> Result<i32, LabError> {
    // a cgroup always, even with no budget: pause freezes it,
    // exec joins it, top lists it.
    let mut limits = cli.limits.limits();
    limits.freezable = !rootless;
    // --net auto: a bridge as root; without root, which cannot
    // make one, user-mode networking with pasta (loopback only without it).
    let net = cli.net.resolve(rootless)?;
    let (uids, gids) = image.maps.clone();
    let last_gid = gids
        .iter()
        .map(|map| map.inside + map.count.saturating_sub(1))
        .max()
        .unwrap_or(0);
    // the root is the image's layers under a writable layer
    // of the container's own, whose top directory its root owns.
    let owner = (
        uids.iter().find_map(|map| map.to_host(0)).unwrap_or(0),
        gids.iter().find_map(|map| map.to_host(0)).unwrap_or(0),
    );
    let layered = LayeredRoot::prepare(&image.layer, image.layers.clone(), owner)?;
    // as root on an empty mount point of its own under /run; without root
    // on the writable layer's `merged`, in the container's namespace only.
    let mount_point = (!rootless).then(RootfsMountPoint::make).transpose()?;
    let root = mount_point
        .as_ref()
        .map_or(layered.merged.clone(), |p| p.path.clone());
    // the image's Env under -e, its User under --user, its
    // WorkingDir under -w; the command and the user are found in the
    // image's files, stacked, before anything is started.
    let mut settings = image.config.env.clone().unwrap_or_default();
    settings.extend(cli.jail.env.iter().cloned());
    let environment = command::clean_environment(&cli.jail.hostname, &settings)?;
    let user = cli
        .image
        .user
        .as_ref()
        .or(image.config.user.as_ref())
        .filter(|u| !u.is_empty());
    let (command, user) = layered.with_view(&root, |view| {
        // Not found: in the image, not in whichever directory showed it.
        let command = command::resolve_with_environment(view, words, environment).map_err(
            |error| match error {
                LabError::CommandNotFound { command, .. } => LabError::CommandNotFound {
                    command,
                    root: PathBuf::from(&cli.image.image),
                },
                other => other,
            },
        )?;
        let user = user
            .map(|user| command::resolve_user(view, user))
            .transpose()?;
        Ok((command, user))
    })?;
    // a named volume new here starts with the image's files
    // at its path (Docker's copy-up).
    volumes::seed_new(narrator, &layered, &root, &image.attachments)?;
    let workdir = cli.lifecycle.workdir.clone().or(image
        .config
        .working_dir
        .as_ref()
        .filter(|d| !d.is_empty())
        .map(PathBuf::from));
    let cgroup = match limits.is_empty() {
        true => None,
        false => Some(ContainerCgroup::create(narrator, &limits)?),
    };
    let network = match net {
        Network::Bridge => {
            let mut network = ContainerNetwork::prepare(
                narrator,
                &BridgeRequest {
                    bridge: &cli.net.bridge,
                    subnet: cli.net.subnet,
                    ports: &cli.net.publish,
                    hostname: &cli.jail.hostname,
                },
            )?;
            // NEW in ch09: the host's own services closed to it.
            network.close_host_services = !image.hardening.security.privileged;
            Some(network)
        }
        Network::None | Network::Host | Network::Pasta => None,
    };
    let mut usernet: Option<UserModeNetwork> = None;
    // the container's stdio are the monitor's pipes, or a pty.
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
                // the layers, idmapped, stacked onto the root.
                if !rootless {
                    layered.mount_for(narrator, child, &root)?;
                    // -v's binds and volumes onto it, here,
                    // where the kernel locks their flags in the copy the
                    // container gets: `:ro` stays read-only.
                    volumes::attach_for(narrator, child, &root, &image.attachments, owner)?;
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
            // without root, the stack is mounted in here, by
            // the user namespace's root.
            if rootless {
                layered.mount_inside(narrator, &root)?;
                volumes::attach_inside(narrator, &root, &image.attachments)?;
            }
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
            // NEW in ch09: ping without CAP_NET_RAW, in the container's
            // own network namespace (never the host's).
            if net != Network::Host {
                net::allow_ping_sockets(narrator, &root.join("proc"), last_gid)?;
            }
            if let Some(network) = &network {
                mounts::bind_etc_files(narrator, &root, &network.etc_files())?;
            }
            mounts::pivot_into(narrator, &root)?;
            // ANCHOR: masks
            // NEW in ch09: the parts of /proc and /sys that show or change
            // the whole machine, masked or read-only (Docker's lists).
            if image.hardening.security.masked_paths {
                masks::apply(narrator)?;
            }
            // ANCHOR_END: masks
            // --tmpfs, mounted by the container's root once `/` is the
            // container's own.
            volumes::mount_tmpfs(narrator, &image.mounts)?;
            // with -t, a terminal from the container's own devpts.
            stdio.open_console(narrator)?;
            // -w, the command's working directory.
            if let Some(workdir) = &workdir {
                command::enter_workdir(narrator, workdir)?;
            }
            fds::close_inherited(narrator)?;
            // ANCHOR: lock_down
            // NEW in ch09: capabilities cut to the container's list (which
            // has neither SYS_CHROOT nor DAC_READ_SEARCH, as in chapter 02),
            // no_new_privs, then the filter; the image's user is set between.
            image.hardening.lock_down(narrator, user)?;
            // ANCHOR_END: lock_down
            Ok(cli.jail.launch())
        },
    )?;
    // the monitor keeps the output and records the end.
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
