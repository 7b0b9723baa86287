//! Command-line pieces every chapter composes, so a flag means the same in
//! every chapter that has it.

use crate::error::LabError;
use crate::narrator::Narrator;
use crate::runtime::mountspec::MountSpec;
use crate::runtime::net::{NetChoice, NetMode, Network, PortMapping, Subnet};
use crate::runtime::process::Launch;
use crate::runtime::userns::{IdMap, SubordinateRange};
use clap::{Args, Parser};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// `--explain` and `--step`, for instructors.
#[derive(Args, Debug, Clone)]
pub struct NarrationArgs {
    /// Narrate every step on stderr: the syscall, its arguments, why, and
    /// the man page to read
    #[arg(long)]
    pub explain: bool,

    /// Instructor mode: like --explain, and wait for Enter before each step
    #[arg(long)]
    pub step: bool,
}

impl NarrationArgs {
    pub fn narrator(&self) -> Result<Narrator, LabError> {
        Narrator::new(self.explain, self.step)
    }
}

/// `ROOTFS`: the directory that becomes the command's `/` (from ch01 on).
#[derive(Args, Debug, Clone)]
pub struct RootfsArg {
    /// The directory that becomes the command's / (default: the lab's rootfs)
    #[arg(value_name = "ROOTFS")]
    pub rootfs: Option<PathBuf>,
}

impl RootfsArg {
    /// The rootfs given, or the default one, checked to be a directory.
    pub fn locate(&self) -> Result<PathBuf, LabError> {
        crate::rootfs::locate(self.rootfs.as_deref())
    }
}

/// Flags of the jail, from ch02 on.
#[derive(Args, Debug, Clone)]
pub struct JailArgs {
    /// The container's hostname (set in its own UTS namespace)
    #[arg(long, value_name = "NAME", default_value = "jail")]
    pub hostname: String,

    /// Run COMMAND itself as PID 1, without the init (to see why an init matters)
    #[arg(long)]
    pub no_init: bool,

    /// Set a variable in the container's environment (repeatable); KEY alone
    /// passes the runtime's value. The container starts from PATH, HOME,
    /// HOSTNAME and TERM only, never the runtime's whole environment
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
}

impl JailArgs {
    /// Under the init, unless --no-init.
    pub fn launch(&self) -> Launch {
        if self.no_init {
            Launch::Exec
        } else {
            Launch::UnderInit
        }
    }
}

/// What `--net` offers in a chapter: its values (as a clap value enum),
/// which one is the default, and the flag's help line. ch04 offers the
/// bridge era's modes; from ch05 on, user-mode networking and `auto` join
/// them, so that a run without root has a network it can make.
pub trait NetModeFlag: clap::ValueEnum + Clone + Send + Sync + std::fmt::Debug + 'static {
    const DEFAULT: &'static str;
    const HELP: &'static str;
}

impl NetModeFlag for NetMode {
    const DEFAULT: &'static str = "bridge";
    const HELP: &'static str = "none: only loopback; host: share the host's network (no isolation); \
        bridge: own network on a lab bridge, with NAT and published ports";
}

impl NetModeFlag for NetChoice {
    const DEFAULT: &'static str = "auto";
    const HELP: &'static str = "none: only loopback; host: share the host's network (no isolation); \
        bridge: own network on a lab bridge, with NAT and published ports; pasta: own network \
        through pasta(1), user-mode networking that needs no root; auto: bridge as root, pasta \
        without root (loopback only when pasta is not installed)";
}

/// Network flags, from ch04 on (`M`: the `--net` values of the chapter).
#[derive(Args, Debug, Clone)]
pub struct NetArgs<M: NetModeFlag = NetMode> {
    #[arg(
        long = "net",
        value_name = "MODE",
        value_parser = clap::builder::EnumValueParser::<M>::new(),
        default_value = M::DEFAULT,
        help = M::HELP
    )]
    pub mode: M,

    /// Publish a container port on the host: HOST_PORT:CONTAINER_PORT[/tcp] (repeatable)
    #[arg(short = 'p', long = "publish", value_name = "HOST:CONTAINER")]
    pub publish: Vec<PortMapping>,

    /// The bridge to plug the container into (created on first use)
    #[arg(long, value_name = "NAME", default_value = crate::runtime::net::DEFAULT_BRIDGE)]
    pub bridge: String,

    /// The bridge's subnet; the bridge takes the first address
    #[arg(long, value_name = "CIDR", default_value = crate::runtime::net::DEFAULT_SUBNET)]
    pub subnet: Subnet,
}

impl<M: NetModeFlag> NetArgs<M> {
    fn check_bridge_name(&self) -> Result<(), LabError> {
        if self.bridge.is_empty() || self.bridge.len() > 15 || self.bridge.contains(['/', ' ']) {
            return Err(LabError::Usage {
                message: format!(
                    "--bridge {:?}: an interface name has 1 to 15 characters, no '/' or spaces",
                    self.bridge
                ),
            });
        }
        Ok(())
    }
}

impl NetArgs<NetMode> {
    /// Refuse flag combinations that cannot work, before anything is made.
    pub fn check(&self) -> Result<(), LabError> {
        if !self.publish.is_empty() && self.mode != NetMode::Bridge {
            return Err(LabError::Usage { message: "-p needs --net bridge: with none there is nothing to publish to, with host the ports are the host's already".into() });
        }
        self.check_bridge_name()
    }
}

impl NetArgs<NetChoice> {
    /// The network this run gets: `auto` decided for this user and host,
    /// and flag combinations that cannot work refused before anything is
    /// made. Rootless, `auto` falls back to loopback only when pasta(1)
    /// cannot run here, and says so in one line on stderr.
    pub fn resolve(&self, rootless: bool) -> Result<Network, LabError> {
        use crate::runtime::usernet;
        self.check_bridge_name()?;
        let network = match (self.mode, rootless) {
            (NetChoice::Auto, false) | (NetChoice::Bridge, false) => Network::Bridge,
            (NetChoice::Bridge, true) => {
                return Err(LabError::Refused {
                    message: "--net bridge needs root on the host: a veth, a bridge and NAT rules are the host's to make".into(),
                    hint: "run rootless with --net pasta (user-mode networking), --net none (only loopback) or --net host (the host's network), or with sudo".into(),
                });
            }
            (NetChoice::Auto, true) => match usernet::unavailable() {
                None => Network::Pasta,
                Some(why) if !self.publish.is_empty() => {
                    return Err(LabError::Refused {
                        message: format!(
                            "-p needs user-mode networking in a rootless run, and {why}"
                        ),
                        hint: why.fix(),
                    });
                }
                Some(why) => {
                    eprintln!(
                        "{}: --net auto: {why}; running with loopback only ({})",
                        crate::program_name(),
                        why.fix()
                    );
                    Network::None
                }
            },
            (NetChoice::Pasta, _) => {
                if let Some(why) = usernet::unavailable() {
                    return Err(LabError::Refused {
                        message: format!("--net pasta: {why}"),
                        hint: why.fix(),
                    });
                }
                Network::Pasta
            }
            (NetChoice::None, _) => Network::None,
            (NetChoice::Host, _) => Network::Host,
        };
        if !self.publish.is_empty() && matches!(network, Network::None | Network::Host) {
            return Err(LabError::Usage { message: "-p needs --net bridge or --net pasta: with none there is nothing to publish to, with host the ports are the host's already".into() });
        }
        Ok(network)
    }
}

/// User namespace flags, from ch05 on.
#[derive(Args, Debug, Clone)]
pub struct UsernsArgs {
    /// Map container uids onto host uids: CONTAINER_ID:HOST_ID:COUNT (repeatable;
    /// default as root 0:1879048192:65536, or the next 65536 ids that no line
    /// of /etc/subuid or /etc/subgid claims; as a user 0:YOUR_UID:1)
    #[arg(long = "uid-map", value_name = "C:H:N")]
    pub uid_maps: Vec<IdMap>,

    /// Map container gids onto host gids: CONTAINER_ID:HOST_ID:COUNT (repeatable;
    /// default as root the same range as the uids, as a user 0:YOUR_GID:1)
    #[arg(long = "gid-map", value_name = "C:H:N")]
    pub gid_maps: Vec<IdMap>,

    /// As root: give the container a copy of the rootfs chowned to its ids,
    /// instead of an idmapped mount (for kernels before 5.12, or filesystems
    /// without idmapped mounts)
    #[arg(long)]
    pub chown_copy: bool,
}

impl UsernsArgs {
    /// The uid and gid maps to write: the ones given, or the defaults for
    /// root (a range no line of /etc/subuid or /etc/subgid claims) and for
    /// an ordinary user (root is the user, plus the subordinate range when
    /// newuidmap(1) can write it). A map given onto another user's
    /// subordinate range is refused.
    pub fn maps(&self) -> Result<(Vec<IdMap>, Vec<IdMap>), LabError> {
        use crate::runtime::userns::{root_default, rootless_maps};
        let subuid = read_subordinate("/etc/subuid")?;
        let subgid = read_subordinate("/etc/subgid")?;
        // Who we are, from the password database rather than $USER, which
        // `sudo -E` would leave naming the user who ran sudo.
        let uid = nix::unistd::getuid().as_raw();
        let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
            .ok()
            .flatten()
            .map(|user| user.name)
            .unwrap_or_else(|| std::env::var("USER").unwrap_or_default());
        let claimed: Vec<_> = subuid.iter().chain(&subgid).cloned().collect();
        let for_root = root_default(&claimed);
        // What a refusal suggests instead: root's default, when it is root's.
        let suggestion = for_root.filter(|_| nix::unistd::geteuid().is_root());
        let defaults = |own: u32, file: &[SubordinateRange]| {
            if nix::unistd::geteuid().is_root() {
                return for_root.map(|map| vec![map]).ok_or_else(|| LabError::Refused {
                    message: "no 65536 host ids from 1879048192 on are free of the ranges in /etc/subuid and /etc/subgid".into(),
                    hint: "give the container's ids a range with --uid-map and --gid-map".into(),
                });
            }
            let helper = crate::hostinfo::find_in_path("newuidmap").is_some();
            // newuidmap and newgidmap both look a user up by name or uid.
            let range = file
                .iter()
                .find(|range| range.belongs_to(&user, uid))
                .map(|range| (range.start, range.count));
            Ok(rootless_maps(own, range.filter(|_| helper)))
        };
        let uids = if self.uid_maps.is_empty() {
            defaults(uid, &subuid)?
        } else {
            refuse_claimed(
                "--uid-map",
                &self.uid_maps,
                "/etc/subuid",
                &subuid,
                (&user, uid),
                suggestion,
            )?;
            self.uid_maps.clone()
        };
        let gids = if self.gid_maps.is_empty() {
            defaults(nix::unistd::getgid().as_raw(), &subgid)?
        } else {
            refuse_claimed(
                "--gid-map",
                &self.gid_maps,
                "/etc/subgid",
                &subgid,
                (&user, uid),
                suggestion,
            )?;
            self.gid_maps.clone()
        };
        Ok((uids, gids))
    }
}

/// The ranges of /etc/subuid or /etc/subgid; none when the file does not
/// exist (a host without shadow's subordinate ids).
fn read_subordinate(path: &str) -> Result<Vec<SubordinateRange>, LabError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(crate::runtime::userns::subordinate_ranges(
            &String::from_utf8_lossy(&bytes),
        )),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(error) => Err(LabError::io("read", path, error)),
    }
}

/// Refuse maps given with `flag` whose host ids overlap a range that
/// `file` grants to someone other than `me` (name, uid): that user's own
/// rootless containers run as those ids, so they could signal and ptrace
/// this container's processes and own what it writes, and it theirs.
fn refuse_claimed(
    flag: &str,
    maps: &[IdMap],
    file: &str,
    claimed: &[SubordinateRange],
    me: (&str, u32),
    default: Option<IdMap>,
) -> Result<(), LabError> {
    use crate::runtime::userns::claimed_by_another;
    let Some((map, range)) = maps
        .iter()
        .find_map(|map| claimed_by_another(map, claimed, me.0, me.1).map(|range| (map, range)))
    else {
        return Ok(());
    };
    let last = u64::from(map.outside) + u64::from(map.count) - 1;
    let choose = match default {
        Some(free) => format!(
            "leave out --uid-map and --gid-map to get the default, here {}:{}:{}, or choose a range that no line of /etc/subuid or /etc/subgid lists",
            free.inside, free.outside, free.count
        ),
        None => "choose a range that no line of /etc/subuid or /etc/subgid lists".into(),
    };
    Err(LabError::Refused {
        message: format!(
            "{flag} {}:{}:{} maps onto host ids {}-{last}, which {file} gives to {} ({range})",
            map.inside, map.outside, map.count, map.outside, range.owner
        ),
        hint: format!(
            "{}'s own containers run as those ids and could signal, ptrace and own this container's processes and files: {choose}",
            range.owner
        ),
    })
}

/// Resource budgets, from ch06 on.
#[derive(Args, Debug, Clone)]
pub struct LimitArgs {
    /// Memory budget, such as 64M or 1G; past it the kernel's OOM killer
    /// ends the container (exit 137)
    #[arg(long, value_name = "SIZE", value_parser = crate::runtime::cgroups::parse_size)]
    pub memory: Option<u64>,

    /// CPU budget in CPUs, such as 0.5 for half of one (a quota per 100 ms)
    #[arg(long, value_name = "CPUS", value_parser = crate::runtime::cgroups::parse_cpus)]
    pub cpus: Option<f64>,

    /// Relative CPU weight against other cgroups, 1 to 10000 (default 100)
    #[arg(long, value_name = "WEIGHT", value_parser = clap::value_parser!(u64).range(1..=10000))]
    pub cpu_weight: Option<u64>,

    /// Most processes the container may have at once, such as 64
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub pids: Option<u64>,

    /// At exit, print peak memory, CPU time and processes on stderr
    #[arg(long)]
    pub stats: bool,
}

impl LimitArgs {
    pub fn limits(&self) -> crate::runtime::cgroups::Limits {
        crate::runtime::cgroups::Limits {
            memory_bytes: self.memory,
            cpus: self.cpus,
            cpu_weight: self.cpu_weight,
            pids: self.pids,
            account: self.stats,
            freezable: false,
        }
    }
}

/// `IMAGE` and the flags that come with images (from ch08 on).
#[derive(Args, Debug, Clone)]
pub struct ImageRunArgs {
    /// The user the command runs as: UID[:GID] or NAME[:GROUP], names from
    /// the image's own /etc/passwd (default: the image's User, else root)
    #[arg(short = 'u', long, value_name = "USER")]
    pub user: Option<String>,

    /// Mount a host directory or a named volume: HOST_DIR:DIR[:ro|:rw]
    /// (HOST_DIR absolute, its owners as the host has them) or
    /// NAME:DIR[:ro|:rw] (a named volume, made on first use, seeded from
    /// the image's DIR, kept after rm); repeatable
    #[arg(short = 'v', long = "volume", value_name = "SOURCE:DIR[:MODE]",
          value_parser = crate::runtime::mountspec::parse_volume)]
    pub volumes: Vec<MountSpec>,

    /// Mount a tmpfs at DIR, in memory, gone with the container:
    /// DIR[:OPTIONS], OPTIONS from size=, mode= (1777), uid=, gid=,
    /// nr_inodes=, ro, noexec (always nosuid, nodev); repeatable
    #[arg(long, value_name = "DIR[:OPTIONS]",
          value_parser = crate::runtime::mountspec::parse_tmpfs)]
    pub tmpfs: Vec<MountSpec>,

    /// The program to run instead of the image's Entrypoint ("" for none:
    /// the COMMAND alone, as `build` runs a RUN step)
    #[arg(long, value_name = "COMMAND")]
    pub entrypoint: Option<String>,

    /// The image: NAME[:TAG], an id, or a unique prefix of one (see `images`)
    #[arg(value_name = "IMAGE")]
    pub image: String,
}

impl ImageRunArgs {
    /// Every -v and --tmpfs, in the order given.
    pub fn mounts(&self) -> Vec<MountSpec> {
        self.volumes.iter().chain(&self.tmpfs).cloned().collect()
    }
}

// ANCHOR: security_args
/// What chapter 09 turns on, and the flags that turn each part off.
#[derive(Args, Debug, Clone)]
pub struct SecurityArgs {
    /// Give the container a capability beyond chapter 09's list (CHOWN,
    /// DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID, SETUID, SETPCAP,
    /// NET_BIND_SERVICE, MKNOD, AUDIT_WRITE, SETFCAP; capabilities(7):
    /// NET_RAW, SYS_PTRACE, ..., or ALL); applied after --cap-drop;
    /// repeatable. `exec` keeps the container's settings
    #[arg(long = "cap-add", value_name = "CAP")]
    pub cap_add: Vec<String>,

    /// Take a capability off the list (or ALL: none at all); repeatable
    #[arg(long = "cap-drop", value_name = "CAP")]
    pub cap_drop: Vec<String>,

    /// no-new-privileges[=true|false]: setuid programs gain nothing (default
    /// true); seccomp=unconfined or seccomp=PROFILE.json (Docker's JSON
    /// format; default: the built-in profile, Docker's default's
    /// decisions); systempaths=unconfined: no masked or read-only /proc
    /// and /sys paths; repeatable (apparmor= and label= are refused: not
    /// in the lab)
    #[arg(long = "security-opt", value_name = "OPTION")]
    pub security_opt: Vec<String>,

    /// Turn every protection of chapter 09 off: every capability (over the
    /// container's own namespaces), no seccomp, no masks, setuid allowed,
    /// the host's own services reachable again
    #[arg(long)]
    pub privileged: bool,
}
// ANCHOR_END: security_args

impl SecurityArgs {
    /// The container's settings: chapter 09's defaults, changed by the
    /// flags as docker run changes them.
    pub fn security(&self) -> Result<crate::runtime::hardening::Security, LabError> {
        use crate::runtime::hardening::Security;
        use crate::runtime::seccomp::Profile;
        if self.privileged {
            if !self.cap_add.is_empty()
                || !self.cap_drop.is_empty()
                || !self.security_opt.is_empty()
            {
                return Err(LabError::Usage {
                    message: "--privileged turns every protection off: leave out --cap-add, --cap-drop and --security-opt, or leave out --privileged".into(),
                });
            }
            return Ok(Security::privileged());
        }
        let mut security = Security::default();
        security.capabilities = security
            .capabilities
            .adjusted(&self.cap_add, &self.cap_drop)?;
        for option in &self.security_opt {
            // docker accepts `key=value` and the older `key:value`.
            let (key, value) = option
                .split_once(['=', ':'])
                .map_or((option.as_str(), None), |(k, v)| (k, Some(v)));
            match (key, value) {
                ("no-new-privileges", None | Some("true")) => security.no_new_privileges = true,
                ("no-new-privileges", Some("false")) => security.no_new_privileges = false,
                ("seccomp", Some("unconfined")) => security.seccomp = None,
                ("seccomp", Some(path)) if !path.is_empty() => {
                    security.seccomp = Some(Profile::from_file(Path::new(path))?);
                }
                ("systempaths", Some("unconfined")) => security.masked_paths = false,
                ("apparmor" | "label", _) => {
                    return Err(LabError::Usage {
                        message: format!(
                            "--security-opt {option}: AppArmor and SELinux are not part of the lab (see chapter 09's page)"
                        ),
                    });
                }
                _ => {
                    return Err(LabError::Usage {
                        message: format!(
                            "--security-opt {option:?}: expected no-new-privileges[=true|false], seccomp=unconfined, seccomp=PROFILE.json or systempaths=unconfined"
                        ),
                    });
                }
            }
        }
        Ok(security)
    }
}

/// `volume SUBCOMMAND` (ch08): named volumes, Docker's verbs.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum VolumeVerb {
    /// Make a volume (a generated name if none is given)
    Create {
        #[arg(value_name = "NAME")]
        name: Option<String>,
    },
    /// List volumes
    Ls {
        /// Only the names
        #[arg(short = 'q', long)]
        quiet: bool,
    },
    /// Show volumes as JSON: where they live, which containers use them
    Inspect {
        #[arg(value_name = "VOLUME", required = true)]
        names: Vec<String>,
    },
    /// Remove volumes (refused while a container, running or not, uses one)
    Rm {
        /// No error for a name that is not a volume
        #[arg(short = 'f', long)]
        force: bool,
        #[arg(value_name = "VOLUME", required = true)]
        names: Vec<String>,
    },
    /// Remove every volume no container uses
    Prune {
        /// Do not ask (the lab never asks; kept for Docker's habit)
        #[arg(short = 'f', long)]
        force: bool,
    },
}

impl VolumeVerb {
    pub fn run(&self) -> Result<i32, LabError> {
        use crate::runtime::volumes::{self, VolumeStore};
        let store = VolumeStore::open()?;
        match self {
            VolumeVerb::Create { name } => volumes::create(&store, name.as_deref()),
            VolumeVerb::Ls { quiet } => volumes::ls(&store, *quiet),
            VolumeVerb::Inspect { names } => {
                volumes::inspect(&store, &crate::runtime::state::Store::open()?, names)
            }
            VolumeVerb::Rm { force, names } => volumes::rm(
                &store,
                &crate::runtime::state::Store::open()?,
                names,
                *force,
            ),
            VolumeVerb::Prune { .. } => {
                volumes::prune(&store, &crate::runtime::state::Store::open()?)
            }
        }
    }
}

/// `COMMAND [ARG]...`: everything after it belongs to the command.
#[derive(Args, Debug, Clone)]
pub struct CommandArgs {
    /// The program to run and its arguments (default: /bin/sh)
    #[arg(
        value_name = "COMMAND",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<OsString>,
}

impl CommandArgs {
    /// The words to run, `/bin/sh` when none were given (as chroot(1) does).
    pub fn words(&self) -> Vec<OsString> {
        if self.command.is_empty() {
            vec![OsString::from("/bin/sh")]
        } else {
            self.command.clone()
        }
    }
}

/// The flags `run` gains in ch07, when containers outlive the command.
#[derive(Args, Debug, Clone)]
pub struct LifecycleArgs {
    /// Detach: print the container's id and return once it runs; it keeps
    /// running after this command, and after the terminal, are gone
    #[arg(short = 'd', long)]
    pub detach: bool,

    /// A name for the container (default: two words); ids and names are
    /// accepted wherever a container is named
    #[arg(long, value_name = "NAME", value_parser = parse_name)]
    pub name: Option<String>,

    /// Remove the container's state when it ends
    #[arg(long)]
    pub rm: bool,

    /// Keep stdin open: attached, what you type goes to the container; with
    /// -d, its stdin stays open and silent
    #[arg(short = 'i', long)]
    pub interactive: bool,

    /// Give the container a pseudo-terminal of its own (use -it for a shell)
    #[arg(short = 't', long)]
    pub tty: bool,

    /// The command's working directory inside the container
    #[arg(short = 'w', long, value_name = "DIR")]
    pub workdir: Option<PathBuf>,

    /// Start the command again when it exits: no, or on-failure[:N] (after
    /// a non-zero exit, at most N times)
    #[arg(long, value_name = "POLICY", default_value = "no")]
    pub restart: crate::runtime::state::RestartPolicy,
}

impl LifecycleArgs {
    /// Refuse combinations that cannot work, before anything is made.
    pub fn check(&self, narration: &NarrationArgs) -> Result<(), LabError> {
        let usage = |message: &str| {
            Err(LabError::Usage {
                message: message.into(),
            })
        };
        if self.rm && self.restart != crate::runtime::state::RestartPolicy::No {
            return usage(
                "--rm and --restart conflict: a container removed at its end cannot be restarted",
            );
        }
        let stdin_is_terminal = std::io::IsTerminal::is_terminal(&std::io::stdin());
        if self.tty && self.interactive && !self.detach && !stdin_is_terminal {
            return Err(LabError::Refused {
                message: "the input device is not a TTY".into(),
                hint: "leave out -t, or run it from a terminal".into(),
            });
        }
        if self.detach && narration.step {
            return usage(
                "--step pauses on your terminal, and a detached container leaves it: use --explain",
            );
        }
        Ok(())
    }
}

fn parse_grace_period(text: &str) -> Result<u64, String> {
    match text.parse::<i64>() {
        Ok(seconds) if seconds >= 0 => Ok(seconds as u64),
        Ok(_) => {
            Err("the grace period is a number of seconds, 0 or more (0: SIGKILL at once)".into())
        }
        Err(_) => Err(format!("{text:?} is not a number of seconds")),
    }
}

fn parse_name(text: &str) -> Result<String, String> {
    crate::runtime::state::check_name(text).map(|()| text.to_string())
}

/// Names of one or more containers (ids, unique id prefixes or names).
#[derive(Args, Debug, Clone)]
pub struct ContainerNames {
    /// Containers: their ids, unique prefixes of ids, or names
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

/// The verbs every chapter from ch07 on shares: they act on containers
/// that exist, the same way whatever built them.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum LifecycleVerb {
    /// List containers: running ones, or all with -a
    Ps {
        /// All containers, the exited and dead too
        #[arg(short = 'a', long)]
        all: bool,
        /// Only the ids
        #[arg(short = 'q', long)]
        quiet: bool,
    },
    /// Stop containers: SIGTERM to their PID 1, SIGKILL after the grace period
    Stop {
        /// Seconds to wait after SIGTERM before SIGKILL
        #[arg(
            short = 't',
            long = "time",
            value_name = "SECONDS",
            default_value_t = 10,
            allow_negative_numbers = true,
            value_parser = parse_grace_period
        )]
        seconds: u64,
        #[command(flatten)]
        names: ContainerNames,
    },
    /// Send a signal to containers' PID 1 (SIGKILL unless -s says otherwise)
    Kill {
        /// The signal: a name (TERM, SIGHUP) or a number
        #[arg(short = 's', long, value_name = "SIGNAL", default_value = "KILL",
              value_parser = crate::runtime::lifecycle::parse_signal)]
        signal: nix::sys::signal::Signal,
        #[command(flatten)]
        names: ContainerNames,
    },
    /// Freeze every process of containers (the cgroup freezer; LXC's lxc-freeze)
    Pause(ContainerNames),
    /// Thaw frozen containers (LXC's lxc-unfreeze)
    Unpause(ContainerNames),
    /// Show what a container wrote on stdout and stderr
    Logs {
        /// Keep showing what it writes until it ends
        #[arg(short = 'f', long)]
        follow: bool,
        /// Show when each line was written
        #[arg(short = 't', long)]
        timestamps: bool,
        /// Only the last N lines
        #[arg(long, value_name = "N")]
        tail: Option<usize>,
        #[arg(value_name = "CONTAINER")]
        container: String,
    },
    /// Wait until containers end; print their exit codes
    Wait(ContainerNames),
    /// Show containers' state as JSON
    Inspect(ContainerNames),
    /// List a container's processes as the host sees them
    Top {
        #[arg(value_name = "CONTAINER")]
        container: String,
    },
    /// Remove containers (running ones only with -f, which kills them)
    Rm {
        /// Kill a running container first
        #[arg(short = 'f', long)]
        force: bool,
        #[command(flatten)]
        names: ContainerNames,
    },
}

impl LifecycleVerb {
    pub fn run(&self) -> Result<i32, LabError> {
        use crate::runtime::lifecycle;
        let store = crate::runtime::state::Store::open()?;
        match self {
            LifecycleVerb::Ps { all, quiet } => lifecycle::ps(&store, *all, *quiet),
            LifecycleVerb::Stop { seconds, names } => {
                lifecycle::stop(&store, &names.containers, *seconds)
            }
            LifecycleVerb::Kill { signal, names } => {
                lifecycle::kill(&store, &names.containers, *signal)
            }
            LifecycleVerb::Pause(names) => lifecycle::pause(&store, &names.containers, true),
            LifecycleVerb::Unpause(names) => lifecycle::pause(&store, &names.containers, false),
            LifecycleVerb::Logs {
                follow,
                timestamps,
                tail,
                container,
            } => {
                let options = lifecycle::LogOptions {
                    follow: *follow,
                    timestamps: *timestamps,
                    tail: *tail,
                };
                lifecycle::logs(&store, container, &options)
            }
            LifecycleVerb::Wait(names) => lifecycle::wait(&store, &names.containers),
            LifecycleVerb::Inspect(names) => lifecycle::inspect(&store, &names.containers),
            LifecycleVerb::Top { container } => lifecycle::top(&store, container),
            LifecycleVerb::Rm { force, names } => lifecycle::rm(&store, &names.containers, *force),
        }
    }
}

/// `exec`: a command in a running container.
#[derive(Args, Debug, Clone)]
pub struct ExecArgs {
    #[command(flatten)]
    pub narration: NarrationArgs,

    /// Keep stdin open: what you type goes to the command
    #[arg(short = 'i', long)]
    pub interactive: bool,

    /// Give the command a pseudo-terminal of its own (use -it for a shell)
    #[arg(short = 't', long)]
    pub tty: bool,

    /// Set a variable in the command's environment (repeatable)
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,

    /// The command's working directory inside the container
    #[arg(short = 'w', long, value_name = "DIR")]
    pub workdir: Option<PathBuf>,

    /// The container: its id, a unique prefix of it, or its name
    #[arg(value_name = "CONTAINER")]
    pub container: String,

    /// The program to run and its arguments
    #[arg(
        value_name = "COMMAND",
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<OsString>,
}

impl ExecArgs {
    /// Find the container, check that it runs, and join it.
    pub fn run(&self) -> Result<i32, LabError> {
        use crate::runtime::lifecycle::{Observed, observe};
        let narrator = self.narration.narrator()?;
        let store = crate::runtime::state::Store::open()?;
        let record = store.find(&self.container)?;
        let name = &self.container;
        let pid = match (observe(&record), record.pid) {
            (Observed::Running, Some(pid)) => pid,
            // Joining a frozen cgroup would freeze the new process before
            // it ran: docker refuses too.
            (Observed::Paused, _) => {
                return Err(LabError::Container {
                    message: format!("container {name} is paused"),
                    hint: format!("unpause it first (unpause {name})"),
                });
            }
            (observed, _) => {
                return Err(LabError::Container {
                    message: format!("container {name} is not running ({observed:?})")
                        .to_lowercase(),
                    hint: "exec joins a running container: see `ps -a`".into(),
                });
            }
        };
        let request = crate::runtime::exec::ExecRequest {
            words: &self.command,
            env: &self.env,
            workdir: self.workdir.as_deref(),
            tty: self.tty,
            interactive: self.interactive,
        };
        // From ch09: the container's protections, for this process too.
        let hardening = record
            .security
            .as_ref()
            .map(|security| security.prepare())
            .transpose()?;
        crate::runtime::exec::exec_in(&narrator, pid, &request, hardening.as_ref())
    }
}

/// Parse the command line. `--help` exits 0; a usage error exits 125 like
/// any other runtime failure (Docker's convention), never 2.
pub fn parse<C: Parser>() -> C {
    match C::try_parse() {
        Ok(cli) => cli,
        Err(error) if !error.use_stderr() => {
            let _ = error.print();
            std::process::exit(0)
        }
        Err(error) => {
            let text = error.kind().to_string();
            // The first line, and the indented lines that follow it (the
            // missing arguments' names), joined: one line, as every error
            // of the lab is; clap's usage and tip lines are left out.
            let rendered = error.to_string();
            let mut lines = rendered.lines();
            let first = lines
                .next()
                .map(|line| line.trim_start_matches("error: ").to_string());
            let details: Vec<&str> = lines
                .take_while(|line| line.starts_with("  "))
                .map(str::trim)
                .collect();
            let message = match (first, details.is_empty()) {
                (Some(first), true) => first,
                (Some(first), false) => format!("{} {}", first, details.join(", ")),
                (None, _) => text,
            };
            crate::program::exit_with_error(&LabError::Usage { message })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::userns::{ROOT_DEFAULT, subordinate_ranges};

    #[test]
    fn a_map_onto_another_users_range_is_refused_with_the_line() {
        let claimed = subordinate_ranges("bad line\nalice:100000:65536\nroot:300000:65536\n");
        let map = |text: &str| vec![text.parse::<IdMap>().unwrap()];
        let refused = refuse_claimed(
            "--uid-map",
            &map("0:165000:1000"),
            "/etc/subuid",
            &claimed,
            ("root", 0),
            Some(ROOT_DEFAULT),
        )
        .unwrap_err();
        assert_eq!(
            refused.to_string(),
            "--uid-map 0:165000:1000 maps onto host ids 165000-165999, which /etc/subuid gives to alice (alice:100000:65536)"
        );
        let hint = refused.hint().unwrap();
        assert!(
            hint.starts_with("alice's own containers run as those ids"),
            "{hint}"
        );
        assert!(
            hint.contains(
                "leave out --uid-map and --gid-map to get the default, here 0:1879048192:65536"
            ),
            "{hint}"
        );
        assert_eq!(refused.exit_code(), 125);
        // root's own line, and ids nobody claims, are fine.
        for fine in ["0:300000:65536", "0:1879048192:65536", "0:165536:1000"] {
            refuse_claimed(
                "--uid-map",
                &map(fine),
                "/etc/subuid",
                &claimed,
                ("root", 0),
                None,
            )
            .unwrap();
        }
        // Alice may map onto her own range, by name or by uid.
        refuse_claimed(
            "--gid-map",
            &map("0:100000:65536"),
            "/etc/subgid",
            &claimed,
            ("alice", 1000),
            None,
        )
        .unwrap();
    }
}
