//! ch10-oci: an OCI runtime with runc's command line (OCI 2015; containerd
//! and CRI-O 2017-2019).
//!
//! The shape changes on purpose. Chapters 07-09 were engines and runtimes
//! at once: images, names, logs and the container's steps in one binary.
//! Here the steps alone remain, driven by a bundle's config.json instead
//! of flags, behind the command line engines expect of runc: `create`
//! leaves the container's process set up and waiting, `start` lets it run
//! its command, `state`, `kill`, `delete` and `exec` act on it from
//! outside. podman (through conmon) and containerd (through its shim) can
//! run containers with it in place of runc.

use clap::{Args, Parser, Subcommand};
use container_lab::error::LabError;
use container_lab::narrator::{Narrator, Step};
use container_lab::oci::config::{Bundle, NamespaceKind, NamespacePlan, Plan, ProcessPlan};
use container_lab::oci::log::Log;
use container_lab::oci::state::{Container, DEFAULT_ROOT, StateJson, StateRoot, Status, check_id};
use container_lab::oci::{fifo, hooks, mounts as oci_mounts, process as oci_process, verbs};
use container_lab::runtime::cgroups::ContainerCgroup;
use container_lab::runtime::command::{self, Command};
use container_lab::runtime::hardening::set_no_new_privs;
use container_lab::runtime::namespaces::{self, NamespaceFile};
use container_lab::runtime::process::spawn_detached;
use container_lab::runtime::seccomp::Filter;
use container_lab::runtime::state::{ProcessRef, now};
use container_lab::runtime::sync::Handshake;
use container_lab::runtime::terminal::{self, ConsoleSocket};
use container_lab::runtime::{fds, fork, masks, mounts, net, userns};
use nix::mount::MsFlags;
use nix::sched::CloneFlags;
use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

/// An OCI runtime with runc's command line.
#[derive(Parser, Debug)]
#[command(
    name = "ch10-oci",
    version,
    long_about = "Run OCI bundles as runc does: a bundle is a directory with a config.json \
        (the OCI runtime specification's description of a container: its process, root \
        filesystem, mounts, namespaces, cgroup budget, capabilities, seccomp filter, hooks) \
        and the root filesystem it names. Every step chapters 00-09 built is here, driven by \
        config.json instead of flags, behind runc's command line: podman (--runtime) and \
        containerd (ctr run --runc-binary, or a RuntimeClass handler) can use this binary in \
        place of runc.\n\n\
        Chapter 10 of container-lab (OCI 2015; containerd and CRI-O from 2016).",
    after_help = "Examples:\n  \
        sudo lab bundle lab/base:v1 ./mybundle          # a bundle from a lab image\n  \
        sudo ch10-oci run -b ./mybundle demo            # create + start, attached\n  \
        sudo ch10-oci create -b ./mybundle demo         # set up, waiting\n  \
        sudo ch10-oci state demo                        # \"status\": \"created\"\n  \
        sudo ch10-oci start demo                        # the command runs\n  \
        sudo ch10-oci exec demo ps                      # another process inside\n  \
        sudo ch10-oci kill demo TERM\n  \
        sudo ch10-oci delete demo\n  \
        ch10-oci spec                                   # a default config.json here\n\n\
        Under podman: podman --runtime $(which ch10-oci) --cgroup-manager=cgroupfs run ...\n\
        Under containerd: ctr run --runc-binary $(which ch10-oci) IMAGE ID ...\n\
        State lives in --root (default /run/container-lab/oci), one directory per container.\n\
        Exit status: 0, or 1 when the operation failed (255 for exec); `run` and `exec` \
        without --detach exit with the command's own code (128+N if signal N killed it)."
)]
struct Cli {
    /// Where the containers' state is kept, one directory per container
    #[arg(long, global = true, default_value = DEFAULT_ROOT, value_name = "DIR")]
    root: PathBuf,

    /// Append errors to FILE as well as stderr (engines read it)
    #[arg(long, global = true, value_name = "FILE")]
    log: Option<PathBuf>,

    /// The log's format: text or json (one JSON object per line)
    #[arg(long = "log-format", global = true, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,

    /// Accepted for runc's sake; --explain narrates the steps instead
    #[arg(long, global = true)]
    debug: bool,

    /// Refused: cgroups are managed by path here (cgroupfs), never through systemd
    #[arg(long = "systemd-cgroup", global = true)]
    systemd_cgroup: bool,

    /// Narrate every step on stderr: the syscall, its arguments, why, and
    /// the man page to read
    #[arg(long, global = true)]
    explain: bool,

    /// Instructor mode: like --explain, and wait for Enter before each step
    #[arg(long, global = true)]
    step: bool,

    #[command(subcommand)]
    verb: Verb,
}

// ANCHOR: cli
#[derive(Subcommand, Debug)]
enum Verb {
    /// Write a default config.json into the bundle directory
    Spec(verbs::SpecArgs),
    /// Set the container up from its bundle; its process waits for `start`
    Create(CreateArgs),
    /// Let a created container's process execute its command
    Start(IdArgs),
    /// Print the container's state (the specification's JSON)
    State(IdArgs),
    /// Send a signal to the container's first process (or, with --all, to all)
    Kill(verbs::KillArgs),
    /// Remove a stopped container (--force: stop it first)
    Delete(verbs::DeleteArgs),
    /// create + start; without --detach, wait for it and delete it
    Run(RunArgs),
    /// Run another process in a running container
    Exec(ExecArgs),
    /// Freeze every process of the container (cgroup freezer)
    Pause(IdArgs),
    /// Thaw a paused container
    Resume(IdArgs),
    /// List the container's processes
    Ps(verbs::PsArgs),
    /// List the containers under --root
    List(verbs::ListArgs),
    /// Print what this runtime supports (the specification's features document)
    Features,
}
// ANCHOR_END: cli

#[derive(Args, Debug)]
struct IdArgs {
    /// The container's ID
    id: String,
}

#[derive(Args, Debug)]
struct CreateArgs {
    /// The bundle: a directory with config.json
    #[arg(short, long, default_value = ".", value_name = "DIR")]
    bundle: PathBuf,

    /// Write the container's pid (as the host numbers it) to FILE
    #[arg(long, value_name = "FILE")]
    pid_file: Option<PathBuf>,

    /// A unix socket to send the terminal's master end to (process.terminal)
    #[arg(long, value_name = "PATH")]
    console_socket: Option<PathBuf>,

    /// Refused: the root is always put in place with pivot_root(2)
    #[arg(long)]
    no_pivot: bool,

    /// Keep the runtime's session keyring instead of a new one
    #[arg(long)]
    no_new_keyring: bool,

    /// Pass descriptors 3..3+N on to the container (socket activation)
    #[arg(long, default_value_t = 0, value_name = "N")]
    preserve_fds: i32,

    /// The container's ID
    id: String,
}

#[derive(Args, Debug)]
struct RunArgs {
    #[command(flatten)]
    create: CreateArgs,

    /// Return once the container runs, instead of waiting for it
    #[arg(short, long)]
    detach: bool,

    /// Keep the container's state after it exits (delete it later)
    #[arg(long)]
    keep: bool,
}

#[derive(Args, Debug)]
struct ExecArgs {
    /// A JSON file with the process to run (config.json's process object)
    #[arg(short, long, value_name = "FILE")]
    process: Option<PathBuf>,

    /// Give the process a terminal
    #[arg(short, long)]
    tty: bool,

    /// Return once the process runs, instead of waiting for it
    #[arg(short, long)]
    detach: bool,

    /// Write the process's pid (as the host numbers it) to FILE
    #[arg(long, value_name = "FILE")]
    pid_file: Option<PathBuf>,

    /// A unix socket to send the terminal's master end to
    #[arg(long, value_name = "PATH")]
    console_socket: Option<PathBuf>,

    /// The working directory inside (default: config.json's)
    #[arg(long, value_name = "DIR")]
    cwd: Option<PathBuf>,

    /// KEY=VALUE added to config.json's environment
    #[arg(short, long, value_name = "KEY=VALUE")]
    env: Vec<String>,

    /// UID[:GID] to run as (default: config.json's)
    #[arg(short, long, value_name = "UID[:GID]")]
    user: Option<String>,

    /// Set no_new_privs for this process
    #[arg(long)]
    no_new_privs: bool,

    /// Pass descriptors 3..3+N on to the process
    #[arg(long, default_value_t = 0, value_name = "N")]
    preserve_fds: i32,

    /// The container's ID
    id: String,

    /// The command and its arguments (without --process)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<OsString>,
}

fn main() {
    fds::close_all_above_stdio_except(&preserved_fds());
    let cli: Cli = container_lab::cli::parse();
    let log = Log {
        file: cli.log.clone(),
        json: cli.log_format == "json",
    };
    let exec = matches!(cli.verb, Verb::Exec(_));
    match dispatch(&cli) {
        Ok(code) => std::process::exit(code),
        Err(error) => {
            log.error(&error);
            container_lab::program::print_error(&error);
            // runc's codes: 1 for a failed operation, 255 for a failed exec.
            std::process::exit(if exec { 255 } else { 1 })
        }
    }
}

/// `--preserve-fds N` keeps 3..3+N open from the very start.
fn preserved_fds() -> Vec<i32> {
    let args: Vec<String> = std::env::args().collect();
    let count = args
        .iter()
        .position(|a| a == "--preserve-fds")
        .and_then(|i| args.get(i + 1))
        .or_else(|| {
            args.iter()
                .find_map(|a| a.strip_prefix("--preserve-fds=").map(|_| a))
        })
        .and_then(|a| a.rsplit('=').next().and_then(|n| n.parse::<i32>().ok()))
        .unwrap_or(0);
    (3..3 + count.max(0)).collect()
}

fn dispatch(cli: &Cli) -> Result<i32, LabError> {
    if cli.systemd_cgroup {
        return Err(LabError::Refused {
            message: "--systemd-cgroup is not supported: this runtime makes cgroups by path (cgroupfs)".into(),
            hint: "configure the engine for cgroupfs (podman --cgroup-manager=cgroupfs; containerd: SystemdCgroup = false)".into(),
        });
    }
    let root = || StateRoot::open(&cli.root);
    match &cli.verb {
        Verb::Spec(args) => verbs::spec(args),
        Verb::Features => verbs::features(),
        Verb::Create(args) => create(cli, args, None).map(|_| 0),
        Verb::Start(args) => start(&root()?, &args.id),
        Verb::State(args) => verbs::state(&root()?, &args.id),
        Verb::Kill(args) => verbs::kill(&root()?, args),
        Verb::Delete(args) => verbs::delete(&root()?, args),
        Verb::Run(args) => run(cli, args),
        Verb::Exec(args) => exec(cli, args),
        Verb::Pause(args) => verbs::pause(&root()?, &args.id, true),
        Verb::Resume(args) => verbs::pause(&root()?, &args.id, false),
        Verb::Ps(args) => verbs::ps(&root()?, args),
        Verb::List(args) => verbs::list(&root()?, args),
    }
}

/// Where the terminal's master goes: an engine's console socket, or
/// (`run` without one) a socket pair whose other end `run` relays.
enum Console<'a> {
    Engine(OwnedFd),
    Own(&'a ConsoleSocket),
}

// ANCHOR: create
/// `create`: read the bundle, claim the ID, make the cgroup and the FIFO,
/// and start the container's process, which sets everything up and waits.
/// Returns its pid. Anything made is undone if a step fails.
fn create(
    cli: &Cli,
    args: &CreateArgs,
    own_console: Option<&ConsoleSocket>,
) -> Result<Container, LabError> {
    let narrator = Narrator::new(cli.explain, cli.step)?;
    check_id(&args.id)?;
    if args.no_pivot {
        return Err(LabError::Refused {
            message:
                "--no-pivot is not supported: the root is always put in place with pivot_root(2)"
                    .into(),
            hint: "drop --no-pivot (it exists for ramdisk roots, where pivot_root fails)".into(),
        });
    }
    // A bad bundle is refused before anything is made.
    let bundle = Bundle::load(&args.bundle)?;
    let console = console_for(&bundle.plan, args, own_console)?;
    let root = StateRoot::open(&cli.root)?;
    let _lock = root.lock(&args.id)?;
    root.claim(&args.id)?;
    let made = set_up(&narrator, &root, &bundle, args, console);
    if made.is_err() {
        let _ = root.forget(&args.id);
    }
    made
}
// ANCHOR_END: create

/// process.terminal needs a console socket, and a console socket needs
/// process.terminal (runc's rule: each without the other is a mistake).
fn console_for<'a>(
    plan: &Plan,
    args: &CreateArgs,
    own: Option<&'a ConsoleSocket>,
) -> Result<Option<Console<'a>>, LabError> {
    match (plan.process.terminal, &args.console_socket, own) {
        (true, Some(path), _) => {
            let stream = std::os::unix::net::UnixStream::connect(path)
                .map_err(|e| LabError::io("connect", path.display(), e))?;
            Ok(Some(Console::Engine(stream.into())))
        }
        (true, None, Some(own)) => Ok(Some(Console::Own(own))),
        (true, None, None) => Err(LabError::Usage {
            message:
                "config.json asks for a terminal (process.terminal): --console-socket is required"
                    .into(),
        }),
        (false, Some(_), _) => Err(LabError::Usage {
            message: "--console-socket given, but config.json's process.terminal is false".into(),
        }),
        (false, None, _) => Ok(None),
    }
}

// ANCHOR: set_up
/// The runtime's side of `create`.
fn set_up(
    narrator: &Narrator,
    root: &StateRoot,
    bundle: &Bundle,
    args: &CreateArgs,
    console: Option<Console>,
) -> Result<Container, LabError> {
    let plan = &bundle.plan;
    let rootless = !nix::unistd::geteuid().is_root();
    // chapter 09's filter, compiled before anything starts.
    let filter = plan
        .seccomp
        .as_ref()
        .map(|profile| profile.compile(&plan.process.capabilities.bounding.names()))
        .transpose()?;
    // NEW in ch10: the FIFO the process will wait on.
    fifo::make(&root.fifo(&args.id))?;
    let fifo = fifo::open_path(&root.fifo(&args.id))?;
    // chapter 06's cgroup, where config.json's cgroupsPath says; kept
    // past this process (`delete` removes it).
    let cgroup = match rootless {
        true => None,
        false => Some(container_lab::oci::cgroup::create(
            narrator, plan, &args.id,
        )?),
    };
    let cgroup_dirs = cgroup
        .as_ref()
        .map(ContainerCgroup::dirs)
        .unwrap_or_default();
    // namespaces to join, opened now, as the host's root.
    let joined = open_joined(&plan.namespaces)?;
    let pid = spawn_detached(
        narrator,
        |pid, what| match what {
            // into the cgroup, and its OOM score, before it forks.
            "prepare" => prepare(narrator, pid, &cgroup_dirs, plan.process.oom_score_adj),
            "id maps" => userns::write_maps(narrator, pid, &plan.uid_maps, &plan.gid_maps),
            // NEW in ch10: hooks in the runtime's namespaces.
            "hooks" => {
                let state = state_line(&args.id, bundle, Status::Creating, pid.as_raw());
                hooks::run_all("prestart", &plan.hooks.prestart, &state)?;
                hooks::run_all("createRuntime", &plan.hooks.create_runtime, &state)
            }
            _ => Ok(()),
        },
        |narrator, handshake| {
            let console = console.as_ref().map(|c| match c {
                Console::Engine(fd) => fd.as_fd(),
                Console::Own(pair) => pair.container_end(),
            });
            // Nothing the runtime had open follows the container in but
            // what it needs (the lock of `create`, a log, ...: closed).
            let mut keep: Vec<i32> = handshake.descriptors().to_vec();
            keep.extend(console.iter().map(|fd| fd.as_raw_fd()));
            keep.push(fifo.as_raw_fd());
            keep.extend(joined.iter().map(NamespaceFile::as_raw_fd));
            keep.extend(narrator.descriptors());
            keep.extend(3..3 + args.preserve_fds.max(0));
            fds::close_all_above_stdio_except(&keep);
            enter_namespaces(narrator, handshake, plan, &joined)?;
            namespaces::fork_detached(narrator, handshake)?;
            let setup = Setup {
                id: &args.id,
                bundle,
                fifo: fifo.as_fd(),
                cgroups: &cgroup_dirs,
                console,
                filter: filter.as_ref(),
                new_keyring: !args.no_new_keyring,
                preserve_fds: args.preserve_fds,
            };
            let waiting = recipe(narrator, handshake, &setup)?;
            waiting.start_when_asked(narrator)
        },
    )?;
    let process = ProcessRef::of(pid.as_raw()).ok_or_else(|| LabError::Container {
        message: "the container's process exited during create".into(),
        hint: "its stderr says why".into(),
    })?;
    let container = Container {
        id: args.id.clone(),
        process,
        bundle: bundle.dir.clone(),
        rootfs: plan.rootfs.clone(),
        created: now(),
        annotations: plan.annotations.clone(),
        cgroups: cgroup.map(ContainerCgroup::into_dirs).unwrap_or_default(),
        poststart: plan.hooks.poststart.clone(),
        poststop: plan.hooks.poststop.clone(),
        seccomp: plan.seccomp.clone(),
        user_namespace: plan.has(NamespaceKind::User),
        terminal: plan.process.terminal,
    };
    root.write(&container)?;
    if let Some(path) = &args.pid_file {
        verbs::write_pid_file(path, pid.as_raw())?;
    }
    Ok(container)
}
// ANCHOR_END: set_up

/// From outside, before the child forks anything: into the container's
/// cgroup (its children inherit it), and the OOM score config.json asks for.
fn prepare(
    narrator: &Narrator,
    pid: nix::unistd::Pid,
    cgroups: &[PathBuf],
    oom_score_adj: Option<i32>,
) -> Result<(), LabError> {
    for dir in cgroups {
        let why = "the process, and all it will start, is in the container's cgroup";
        container_lab::runtime::cgroups::write(
            narrator,
            &dir.join("cgroup.procs"),
            &pid.to_string(),
            why,
        )?;
    }
    if let Some(score) = oom_score_adj {
        let path = format!("/proc/{pid}/oom_score_adj");
        std::fs::write(&path, score.to_string()).map_err(|e| LabError::io("write", path, e))?;
    }
    Ok(())
}

/// The state hooks read on stdin: `status` with the pid as the hook's
/// namespaces number it.
fn state_line(id: &str, bundle: &Bundle, status: Status, pid: i32) -> String {
    StateJson {
        oci_version: container_lab::oci::config::OCI_VERSION,
        id,
        status: status.as_str(),
        pid: Some(pid),
        bundle: &bundle.dir,
        annotations: &bundle.plan.annotations,
    }
    .to_line()
}

/// The kinds as setns(2) and unshare(2) name them (and /proc/PID/ns), in
/// the order they are joined: the user namespace first (it owns the others), the mount
/// namespace last (after it, paths are the container's).
const KINDS: [(NamespaceKind, CloneFlags, &str); 7] = [
    (NamespaceKind::User, CloneFlags::CLONE_NEWUSER, "user"),
    (NamespaceKind::Ipc, CloneFlags::CLONE_NEWIPC, "ipc"),
    (NamespaceKind::Uts, CloneFlags::CLONE_NEWUTS, "uts"),
    (NamespaceKind::Network, CloneFlags::CLONE_NEWNET, "net"),
    (NamespaceKind::Pid, CloneFlags::CLONE_NEWPID, "pid"),
    (NamespaceKind::Cgroup, CloneFlags::CLONE_NEWCGROUP, "cgroup"),
    (NamespaceKind::Mount, CloneFlags::CLONE_NEWNS, "mnt"),
];

fn open_joined(namespaces: &[NamespacePlan]) -> Result<Vec<NamespaceFile>, LabError> {
    let mut joined = Vec::new();
    for (kind, flag, _) in KINDS {
        if let Some(path) = namespaces
            .iter()
            .find(|n| n.kind == kind)
            .and_then(|n| n.path.as_ref())
        {
            joined.push(namespaces::open_namespace(path, flag)?);
        }
    }
    Ok(joined)
}

// ANCHOR: enter_namespaces
/// In the child, before it forks the container's process: into the
/// cgroup (from outside), into the namespaces config.json names by path,
/// then a new user namespace (its maps written from outside), then the
/// other new ones. The PID namespace is for children: the fork that
/// follows makes PID 1.
fn enter_namespaces(
    narrator: &Narrator,
    handshake: &Handshake,
    plan: &Plan,
    joined: &[NamespaceFile],
) -> Result<(), LabError> {
    let why = "wait while the runtime puts this process in the container's cgroup";
    handshake.ask_runtime(narrator, "prepare", why)?;
    for namespace in joined {
        namespaces::join(narrator, namespace)?;
    }
    if plan.has_new(NamespaceKind::User) {
        namespaces::unshare(narrator, CloneFlags::CLONE_NEWUSER)?;
        let why = "wait while the runtime writes config.json's uid and gid mappings";
        handshake.ask_runtime(narrator, "id maps", why)?;
    }
    if plan.has(NamespaceKind::User) {
        userns::become_root(narrator)?;
    }
    let new = KINDS
        .iter()
        .filter(|(kind, _, _)| *kind != NamespaceKind::User && plan.has_new(*kind))
        .fold(CloneFlags::empty(), |all, (_, flag, _)| all | *flag);
    if !new.is_empty() {
        namespaces::unshare(narrator, new)?;
    }
    Ok(())
}
// ANCHOR_END: enter_namespaces

/// What the container's process needs for its setup.
struct Setup<'a> {
    id: &'a str,
    bundle: &'a Bundle,
    /// exec.fifo, O_PATH.
    fifo: BorrowedFd<'a>,
    cgroups: &'a [PathBuf],
    console: Option<BorrowedFd<'a>>,
    filter: Option<&'a Filter>,
    new_keyring: bool,
    preserve_fds: i32,
}

/// A process set up and waiting for `start`.
struct Waiting<'a> {
    command: Command,
    setup: &'a Setup<'a>,
}

// ANCHOR: recipe
/// The container's first process, from its own namespaces to the moment
/// it waits for `start`: every step chapters 03-09 built, as config.json
/// asks for them.
fn recipe<'a>(
    narrator: &Narrator,
    handshake: &Handshake,
    setup: &'a Setup<'a>,
) -> Result<Waiting<'a>, LabError> {
    let plan = &setup.bundle.plan;
    terminal::enter_new_session(narrator, None)?;
    // the pid hooks are told: the host's procfs is still at /proc here.
    let host_pid = std::fs::read_link("/proc/self")
        .ok()
        .and_then(|p| p.to_string_lossy().parse::<i32>().ok())
        .unwrap_or(0);
    // chapter 03: the mount table, then the root bound onto itself.
    let propagation = plan.rootfs_propagation.as_deref().unwrap_or("rslave");
    let flag = container_lab::oci::config::propagation_flag(propagation)
        .unwrap_or(MsFlags::MS_SLAVE | MsFlags::MS_REC);
    mounts::mount_step(
        narrator,
        None,
        Path::new("/"),
        None,
        flag,
        None,
        "mounts made from here on stay in the container (rootfsPropagation)",
    )?;
    mounts::bind_onto_itself(narrator, &plan.rootfs)?;
    // NEW in ch10: config.json's mounts, and its /dev.
    oci_mounts::mount_all(
        narrator,
        &plan.rootfs,
        &setup.bundle.dir,
        &plan.mounts,
        setup.cgroups,
    )?;
    if oci_mounts::runtime_makes_dev(&plan.mounts) {
        oci_mounts::make_dev(narrator, &plan.rootfs, &plan.devices)?;
    }
    // chapter 02: the names.
    if let Some(hostname) = &plan.hostname {
        namespaces::set_hostname(narrator, hostname)?;
    }
    if let Some(domainname) = &plan.domainname {
        narrator.run(
            Step {
                syscall: "setdomainname",
                args: domainname,
                why: "config.json's NIS domain name",
                man: "setdomainname(2)",
            },
            || {
                nix::errno::Errno::result(unsafe {
                    libc::setdomainname(domainname.as_ptr().cast(), domainname.len())
                })
                .map(drop)
            },
        )?;
    }
    // chapter 04: a new network namespace has its loopback up; the rest
    // of its network is the engine's to make (between create and start).
    if plan.has_new(NamespaceKind::Network) {
        net::bring_up_loopback(narrator)?;
    }
    // NEW in ch10: hooks, outside then inside, before pivot_root.
    if !(plan.hooks.prestart.is_empty() && plan.hooks.create_runtime.is_empty()) {
        handshake.ask_runtime(
            narrator,
            "hooks",
            "wait while the runtime runs the prestart and createRuntime hooks",
        )?;
    }
    let state = state_line(setup.id, setup.bundle, Status::Creating, host_pid);
    hooks::run_all("createContainer", &plan.hooks.create_container, &state)?;
    // the working directory exists, as runc makes it.
    if plan.process.cwd != Path::new("/") {
        container_lab::runtime::volumes::resolve_target(
            &plan.rootfs,
            &plan.process.cwd,
            true,
            None,
        )
        .map_err(|errno| LabError::StepFailed {
            syscall: "mkdir",
            target: plan.process.cwd.display().to_string(),
            errno,
        })?;
    }
    mounts::pivot_into(narrator, &plan.rootfs)?;
    // NEW in ch10: the sysctls config.json sets, in the container's own
    // namespaces (config.rs refused the host's).
    for (key, value) in &plan.sysctl {
        let path = PathBuf::from("/proc/sys").join(key.replace('.', "/"));
        let args = format!("{:?}, {value:?}", path.display().to_string());
        narrator.run(
            Step {
                syscall: "write",
                args: &args,
                why: "config.json's sysctl, for the container's namespace only",
                man: "sysctl(8)",
            },
            || std::fs::write(&path, value).map_err(|e| container_lab::error::errno_of(&e)),
        )?;
    }
    // chapter 09: masked and read-only paths, config.json's lists.
    masks::apply_lists(narrator, &plan.masked_paths, &plan.readonly_paths)?;
    if plan.readonly_root {
        let flags = MsFlags::MS_REMOUNT
            | MsFlags::MS_BIND
            | MsFlags::MS_RDONLY
            | mounts::kept_mount_flags(Path::new("/"));
        mounts::mount_step(
            narrator,
            None,
            Path::new("/"),
            None,
            flags,
            None,
            "root.readonly: the root filesystem cannot be written",
        )?;
    }
    // chapter 07's terminal, its master sent to the console socket.
    if let Some(socket) = setup.console {
        terminal::open_and_send_master(narrator, socket)?;
        bind_console(narrator, plan.process.console_size)?;
    }
    // NEW in ch10: config.json's rlimits, and a session keyring of its own.
    oci_process::set_rlimits(narrator, &plan.process.rlimits)?;
    if setup.new_keyring {
        oci_process::join_new_session_keyring(narrator, setup.id)?;
    }
    oci_process::set_umask(plan.process.umask);
    if let Some(profile) = &plan.process.apparmor_profile {
        oci_process::set_apparmor_profile(narrator, profile)?;
    }
    let command = find_command(&plan.process.args, &plan.process.env)?;
    // chapter 09: without no_new_privs only a process with CAP_SYS_ADMIN
    // may load a filter, so it goes on first; with it, last of all.
    if !plan.process.no_new_privileges
        && let Some(filter) = setup.filter
    {
        filter.load(narrator)?;
    }
    oci_process::become_user_with_capabilities(narrator, &plan.process)?;
    if plan.process.no_new_privileges {
        set_no_new_privs(narrator)?;
        // chapter 09, last: the filter holds from here on, over the wait
        // for `start` and the startContainer hooks too, as in runc 1.1.
        if let Some(filter) = setup.filter {
            filter.load(narrator)?;
        }
    }
    command::enter_workdir(narrator, &plan.process.cwd)?;
    fds::close_inherited(narrator)?;
    keep_preserved(setup.preserve_fds);
    // NEW in ch10: ready; `create` returns, and this process waits.
    handshake.ask_runtime(
        narrator,
        "ready",
        "tell `create` the container is set up: it may return",
    )?;
    Ok(Waiting { command, setup })
}
// ANCHOR_END: recipe

impl Waiting<'_> {
    // ANCHOR: start_when_asked
    /// Wait for `start`, run the startContainer hooks and execute the
    /// command. `create` is gone: a failure is told on the
    /// container's stderr, which the engine logs.
    fn start_when_asked(self, narrator: &Narrator) -> ! {
        let plan = &self.setup.bundle.plan;
        let failed = |error: LabError| -> ! {
            container_lab::program::print_error(&error);
            // SAFETY: leave without the runtime's exit handlers.
            unsafe { libc::_exit(error.exit_code()) }
        };
        if let Err(error) = fifo::wait_for_start(narrator, self.setup.fifo) {
            failed(error)
        }
        // inside the container's PID namespace, this process is 1.
        let state = state_line(self.setup.id, self.setup.bundle, Status::Running, 1);
        if let Err(error) = hooks::run_all("startContainer", &plan.hooks.start_container, &state) {
            failed(error)
        }
        failed(fork::exec_command(narrator, &self.command))
    }
    // ANCHOR_END: start_when_asked
}

/// `args[0]` found on the process's own PATH, inside the root.
fn find_command(args: &[String], env: &[String]) -> Result<Command, LabError> {
    let words: Vec<OsString> = args.iter().map(OsString::from).collect();
    let pairs: Vec<(String, String)> = env
        .iter()
        .filter_map(|s| {
            s.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect();
    command::resolve_with_environment(Path::new("/"), &words, pairs).map(|mut found| {
        // the environment exactly as config.json gives it, duplicates and all.
        found.environment = Some(
            env.iter()
                .filter_map(|s| std::ffi::CString::new(s.as_str()).ok())
                .collect(),
        );
        found
    })
}

/// /dev/console is the container's terminal, bound from its /dev/pts.
fn bind_console(narrator: &Narrator, size: Option<(u16, u16)>) -> Result<(), LabError> {
    let pts = std::fs::read_link("/proc/self/fd/0")
        .map_err(|e| LabError::io("readlink", "/proc/self/fd/0", e))?;
    let console = Path::new("/dev/console");
    if std::fs::symlink_metadata(console).is_err() {
        std::fs::File::create(console).map_err(|e| LabError::io("open", console.display(), e))?;
    }
    mounts::mount_step(
        narrator,
        Some(&pts.to_string_lossy()),
        console,
        None,
        MsFlags::MS_BIND,
        None,
        "/dev/console is the container's terminal",
    )?;
    if let Some((rows, columns)) = size {
        let size = libc::winsize {
            ws_row: rows,
            ws_col: columns,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one winsize struct.
        unsafe { libc::ioctl(0, libc::TIOCSWINSZ, &size) };
    }
    Ok(())
}

/// `--preserve-fds N`: 3..3+N survive execve(2) after all.
fn keep_preserved(count: i32) {
    for fd in 3..3 + count.max(0) {
        // SAFETY: F_SETFD on one of our own descriptors.
        unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
    }
}

// ANCHOR: start
/// `start`: the FIFO opened, the process released, the poststart hooks run.
fn start(root: &StateRoot, id: &str) -> Result<i32, LabError> {
    let _lock = root.lock(id)?;
    let container = root.read(id)?;
    match root.status(&container) {
        Status::Created => {}
        status => {
            return Err(LabError::Container {
                message: format!("cannot start container {id}: it is {}", status.as_str()),
                hint: "only a created container can be started; `run` creates and starts at once"
                    .into(),
            });
        }
    }
    fifo::release(&root.fifo(id), container.process)?;
    let state = container.state_json(Status::Running).to_line();
    hooks::run_all_reporting("poststart", &container.poststart, &state);
    Ok(0)
}
// ANCHOR_END: start

/// Attached (`run`, `exec` without --detach): the container's process,
/// orphaned when its parent leaves, comes to this process, not to init,
/// so that this one can wait for it (prctl(2), PR_SET_CHILD_SUBREAPER).
fn become_subreaper() -> Result<(), LabError> {
    nix::sys::prctl::set_child_subreaper(true).map_err(|errno| LabError::StepFailed {
        syscall: "prctl",
        target: "PR_SET_CHILD_SUBREAPER".into(),
        errno,
    })
}

// ANCHOR: run
/// `run`: create and start; attached, this process is the container's
/// parent (a subreaper), relays its terminal, waits for it and deletes it.
fn run(cli: &Cli, args: &RunArgs) -> Result<i32, LabError> {
    if !args.detach {
        become_subreaper()?;
    }
    let own = match (args.detach, args.create.console_socket.is_none()) {
        (false, true) => Some(ConsoleSocket::new()?),
        _ => None,
    };
    let narrator = Narrator::new(cli.explain, cli.step)?;
    let container = create(cli, &args.create, own.as_ref())?;
    let root = StateRoot::open(&cli.root)?;
    if let Err(error) = start(&root, &args.create.id) {
        let _ = verbs::remove(&root, &container, true);
        return Err(error);
    }
    if args.detach {
        return Ok(0);
    }
    let pid = nix::unistd::Pid::from_raw(container.process.pid);
    fork::forward_signals_to(pid);
    if let Some(own) = own.filter(|_| container.terminal) {
        own.receive()?.relay(&narrator, pid)?;
    }
    let code = fork::wait(&narrator, fork::Child { pid })?;
    if !args.keep {
        verbs::remove(&root, &container, true)?;
    }
    Ok(code)
}
// ANCHOR_END: run

// ANCHOR: exec
/// `exec`: another process in the container, as config.json's `process`
/// (or `--process FILE`) describes it: into the container's cgroup and
/// namespaces, under the container's seccomp filter, its own user,
/// capabilities and terminal.
fn exec(cli: &Cli, args: &ExecArgs) -> Result<i32, LabError> {
    let narrator = Narrator::new(cli.explain, cli.step)?;
    let root = StateRoot::open(&cli.root)?;
    let container = root.read(&args.id)?;
    match root.status(&container) {
        Status::Created | Status::Running => {}
        status => {
            return Err(LabError::Container {
                message: format!(
                    "cannot exec in container {}: it is {}",
                    args.id,
                    status.as_str()
                ),
                hint: "exec needs a created or running container (`resume` a paused one)".into(),
            });
        }
    }
    let process = exec_process(&container, args)?;
    let filter = container
        .seccomp
        .as_ref()
        .map(|profile| profile.compile(&process.capabilities.bounding.names()))
        .transpose()?;
    let console = match (process.terminal, &args.console_socket, args.detach) {
        (true, Some(path), _) => {
            let stream = std::os::unix::net::UnixStream::connect(path)
                .map_err(|e| LabError::io("connect", path.display(), e))?;
            Some(Console::Engine(stream.into()))
        }
        (true, None, false) => None,
        (true, None, true) => {
            return Err(LabError::Usage {
                message: "a terminal with --detach needs --console-socket: nobody would hold the terminal".into(),
            });
        }
        (false, _, _) => None,
    };
    let own = match (process.terminal, &console) {
        (true, None) => Some(ConsoleSocket::new()?),
        _ => None,
    };
    let console = console.or(own.as_ref().map(Console::Own));
    let joined = container_namespaces(container.process.pid)?;
    if !args.detach {
        become_subreaper()?;
    }
    let pid = spawn_detached(
        &narrator,
        |pid, what| match what {
            "prepare" => prepare(&narrator, pid, &container.cgroups, process.oom_score_adj),
            _ => Ok(()),
        },
        |narrator, handshake| {
            let why = "wait while the runtime puts this process in the container's cgroup";
            handshake.ask_runtime(narrator, "prepare", why)?;
            for namespace in &joined {
                namespaces::join(narrator, namespace)?;
            }
            namespaces::fork_detached(narrator, handshake)?;
            terminal::enter_new_session(narrator, None)?;
            if let Some(console) = &console {
                let socket = match console {
                    Console::Engine(fd) => fd.as_fd(),
                    Console::Own(pair) => pair.container_end(),
                };
                terminal::open_and_send_master(narrator, socket)?;
            }
            oci_process::set_rlimits(narrator, &process.rlimits)?;
            oci_process::set_umask(process.umask);
            if let Some(profile) = &process.apparmor_profile {
                oci_process::set_apparmor_profile(narrator, profile)?;
            }
            let command = find_command(&process.args, &process.env)?;
            if !process.no_new_privileges
                && let Some(filter) = &filter
            {
                filter.load(narrator)?;
            }
            oci_process::become_user_with_capabilities(narrator, &process)?;
            if process.no_new_privileges {
                set_no_new_privs(narrator)?;
            }
            command::enter_workdir(narrator, &process.cwd)?;
            fds::close_inherited(narrator)?;
            keep_preserved(args.preserve_fds);
            if process.no_new_privileges
                && let Some(filter) = &filter
            {
                filter.load(narrator)?;
            }
            Err(fork::exec_command(narrator, &command))
        },
    )?;
    if let Some(path) = &args.pid_file {
        verbs::write_pid_file(path, pid.as_raw())?;
    }
    if args.detach {
        return Ok(0);
    }
    fork::forward_signals_to(pid);
    if let Some(own) = own {
        own.receive()?.relay(&narrator, pid)?;
    }
    fork::wait(&narrator, fork::Child { pid })
}
// ANCHOR_END: exec

/// The process `exec` runs: `--process FILE`, or config.json's process
/// with the command and the flags' changes.
fn exec_process(container: &Container, args: &ExecArgs) -> Result<ProcessPlan, LabError> {
    if let Some(file) = &args.process {
        let text =
            std::fs::read_to_string(file).map_err(|e| LabError::io("open", file.display(), e))?;
        return container_lab::oci::config::parse_process(&text);
    }
    if args.command.is_empty() {
        return Err(LabError::Usage {
            message: "exec needs a command after the ID, or --process FILE".into(),
        });
    }
    let mut process = Bundle::load(&container.bundle)?.plan.process;
    process.args = args
        .command
        .iter()
        .map(|w| w.to_string_lossy().into_owned())
        .collect();
    process.terminal = args.tty;
    process.env.extend(args.env.iter().cloned());
    if let Some(cwd) = &args.cwd {
        process.cwd = cwd.clone();
    }
    if let Some(user) = &args.user {
        let (uid, gid) = user.split_once(':').unwrap_or((user, "0"));
        let number = |text: &str| {
            text.parse::<u32>().map_err(|_| LabError::Usage {
                message: format!("--user {user}: expected UID[:GID], numbers"),
            })
        };
        process.uid = number(uid)?;
        process.gid = number(gid)?;
    }
    process.no_new_privileges |= args.no_new_privs;
    Ok(process)
}

/// The container's namespaces that are not this process's own, opened,
/// in the order they are joined.
fn container_namespaces(pid: i32) -> Result<Vec<NamespaceFile>, LabError> {
    let mut joined = Vec::new();
    for (_, flag, name) in KINDS {
        let theirs = PathBuf::from(format!("/proc/{pid}/ns/{name}"));
        let ours = PathBuf::from(format!("/proc/self/ns/{name}"));
        if std::fs::read_link(&theirs).ok() != std::fs::read_link(&ours).ok() {
            joined.push(namespaces::open_namespace(&theirs, flag)?);
        }
    }
    Ok(joined)
}
