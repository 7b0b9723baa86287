//! `lab tour`: run the probe in every chapter and build the scorecard.
//!
//! The tour first makes a stand-in host: it moves itself into new mount,
//! UTS, IPC and network namespaces, so that when a chapter LEAKS (changes
//! the hostname, leaks a mount, reaches a listener) the leak lands in the
//! stand-in and not on the real machine. Each chapter is then an honest
//! test: its container is isolated from the tour exactly as much as it
//! would be from the host. For each chapter the tour plants fresh bait,
//! runs the probe, checks the host side itself, and cleans up.

use crate::error::LabError;
use crate::lab::scorecard::{
    Bait, CPU_BUDGET, Column, Finding, ForgedDatagram, MEMORY_BUDGET_BYTES, Matrix, PIDS_BUDGET,
    Verdict,
};
use crate::runtime::net::DEFAULT_BRIDGE;
use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, unshare};
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::stat::Mode;
use nix::unistd::{ForkResult, Pid, fork, pipe2};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A chapter the tour knows how to run the probe in.
pub struct Chapter {
    pub number: &'static str,
    pub binary: &'static str,
    /// Whether the chapter takes ROOTFS before the command.
    pub takes_rootfs: bool,
    /// Whether it takes the tour's budgets as --memory/--pids/--cpus.
    pub takes_budgets: bool,
    /// Whether its container gets a network of its own on the default lab
    /// bridge (ch04's `--net bridge`, the default from ch04 on).
    pub bridged: bool,
    /// How the probe is started: as the chapter's command line (up to ch06),
    /// through `run`, or through `exec` into a running container (ch07 on).
    pub start: Start,
    /// Whether `run` takes an IMAGE (ch08 on): the tour imports its rootfs
    /// into an image store of its own and runs that image.
    pub from_image: bool,
    /// Flags `run` gets besides the budgets (`--privileged` for 09p: what
    /// chapter 09's protections hold, shown by their absence).
    pub run_flags: &'static [&'static str],
}

/// How the tour starts the probe in a chapter.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// `chNN [OPTIONS] ROOTFS PROBE`.
    CommandLine,
    /// `chNN run [OPTIONS] ROOTFS PROBE`, attached.
    Run,
    /// `chNN run -d [OPTIONS] ROOTFS sleep`, then `chNN exec NAME PROBE`:
    /// where runc's CVE-2016-9962 and CVE-2019-5736 lived.
    Exec,
    /// The probe as an OCI bundle's process: `chNN create`, the network
    /// wired by the tour as an engine would, `chNN start` (`engine.rs`).
    Bundle,
}

/// Every chapter, in order; the tour runs those whose binary was built.
pub const CHAPTERS: &[Chapter] = &[
    Chapter {
        number: "00",
        binary: "ch00-process",
        takes_rootfs: false,
        takes_budgets: false,
        bridged: false,
        start: Start::CommandLine,
        from_image: false,
        run_flags: &[],
    },
    Chapter {
        number: "01",
        binary: "ch01-chroot",
        takes_rootfs: true,
        takes_budgets: false,
        bridged: false,
        start: Start::CommandLine,
        from_image: false,
        run_flags: &[],
    },
    Chapter {
        number: "02",
        binary: "ch02-jail",
        takes_rootfs: true,
        takes_budgets: false,
        bridged: false,
        start: Start::CommandLine,
        from_image: false,
        run_flags: &[],
    },
    Chapter {
        number: "03",
        binary: "ch03-namespaces",
        takes_rootfs: true,
        takes_budgets: false,
        bridged: false,
        start: Start::CommandLine,
        from_image: false,
        run_flags: &[],
    },
    Chapter {
        number: "04",
        binary: "ch04-net",
        takes_rootfs: true,
        takes_budgets: false,
        bridged: true,
        start: Start::CommandLine,
        from_image: false,
        run_flags: &[],
    },
    Chapter {
        number: "05",
        binary: "ch05-user",
        takes_rootfs: true,
        takes_budgets: false,
        bridged: true,
        start: Start::CommandLine,
        from_image: false,
        run_flags: &[],
    },
    Chapter {
        number: "06",
        binary: "ch06-cgroups",
        takes_rootfs: true,
        takes_budgets: true,
        bridged: true,
        start: Start::CommandLine,
        from_image: false,
        run_flags: &[],
    },
    Chapter {
        number: "07",
        binary: "ch07-lifecycle",
        takes_rootfs: true,
        takes_budgets: true,
        bridged: true,
        start: Start::Run,
        from_image: false,
        run_flags: &[],
    },
    Chapter {
        number: "07e",
        binary: "ch07-lifecycle",
        takes_rootfs: true,
        takes_budgets: true,
        bridged: true,
        start: Start::Exec,
        from_image: false,
        run_flags: &[],
    },
    Chapter {
        number: "08",
        binary: "ch08-images",
        takes_rootfs: true,
        takes_budgets: true,
        bridged: true,
        start: Start::Run,
        from_image: true,
        run_flags: &[],
    },
    Chapter {
        number: "09",
        binary: "ch09-hardening",
        takes_rootfs: true,
        takes_budgets: true,
        bridged: true,
        start: Start::Run,
        from_image: true,
        run_flags: &[],
    },
    Chapter {
        number: "09p",
        binary: "ch09-hardening",
        takes_rootfs: true,
        takes_budgets: true,
        bridged: true,
        start: Start::Run,
        from_image: true,
        run_flags: &["--privileged"],
    },
    Chapter {
        number: "10",
        binary: "ch10-oci",
        takes_rootfs: true,
        // As config.json's linux.resources, not as flags.
        takes_budgets: true,
        // By the tour, playing the engine: an OCI runtime makes only the
        // loopback of a new network namespace.
        bridged: true,
        start: Start::Bundle,
        from_image: false,
        run_flags: &[],
    },
];

/// Hostname of the stand-in host.
const STAND_IN_HOSTNAME: &str = "lab-tour-host";
/// The interface only the stand-in host has.
const BAIT_INTERFACE: &str = "labbait0";
/// The stand-in host's address on it (TEST-NET-like, inside the tour's own
/// network namespace only).
const BAIT_ADDRESS: std::net::Ipv4Addr = std::net::Ipv4Addr::new(10, 254, 254, 1);
/// net.spoof-source: the source the probe writes into its datagram. An
/// address of the default lab subnet that no container holds during a
/// tour (leases start at .2, and the tour runs a container or two at a
/// time): a neighbour's, as far as the host can tell. Nothing but the
/// lab's port guard stands between it and the host, whatever the
/// stand-in's rp_filter (a new network namespace copies the real host's
/// IPv4 settings, devconf_inherit_init_net: Debian's 0, or systemd's 2):
/// in ch04-ch06 it comes in on labbr0, and the way back to it is labbr0's
/// own subnet route, which passes the strict check (1) as well as the
/// loose one (2); in ch00-ch03 the probe shares the stand-in's network and
/// sends to one of the stand-in's own addresses, over lo, where the packet
/// keeps the route its sender looked up and no reverse path is checked.
const FORGED_SOURCE: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 250);
/// net.arp-spoof: a neighbour the stand-in host keeps an entry for, on
/// labbait0 (its LAN) and in bridged chapters on the default bridge, with
/// the MAC a container at that address would have. Like FORGED_SOURCE,
/// an address of the default subnet nobody holds during the tour.
const ARP_VICTIM: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 251);
/// net.cross-bridge: the second lab network the server container is on.
const OTHER_BRIDGE: &str = "labbr1";
const OTHER_SUBNET: &str = "10.88.1.0/24";
const OTHER_BRIDGE_PORT: u16 = 8080;
/// A cable the tour plugs into the default bridge while a bridged chapter
/// runs: a bridge with no port up has no carrier, and the kernel flushes
/// the neighbours of a device that loses its carrier (neigh_carrier_down,
/// from arp_netdev_event): without it, the victim's entry would vanish the
/// moment the probe's container, the bridge's only port, went away. Any
/// host with one more container running has such a port.
const NEIGHBOUR_PORT: &str = "labnb0";
/// Where bait files live on the host: the runtime's own run directory, so
/// that `lab clean` finds a killed tour's leftovers beside the runtime's.
pub const BAIT_ROOT: &str = crate::runtime::RUN_DIR;

fn step_error(syscall: &'static str, target: impl Into<String>, errno: Errno) -> LabError {
    LabError::StepFailed {
        syscall,
        target: target.into(),
        errno,
    }
}

/// The stand-in host, while it stands: its sysfs mount point goes away with
/// it.
pub struct StandIn {
    sysfs: PathBuf,
    /// The stand-in's copies of /etc/subuid and /etc/subgid, bind-mounted
    /// over the real ones in the tour's own mount namespace.
    subordinate_copies: Vec<(PathBuf, PathBuf)>,
}

impl Drop for StandIn {
    fn drop(&mut self) {
        let _ = umount2(&self.sysfs, MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir(&self.sysfs);
        for (target, copy) in &self.subordinate_copies {
            let _ = umount2(target, MntFlags::MNT_DETACH);
            let _ = std::fs::remove_file(copy);
        }
    }
}

/// Debian's useradd gives the first user it makes this range; the stand-in
/// host lists such a user, so that a runtime whose ids overlap it shows.
const FIRST_USER_RANGE: &str = "lab-tour-user:100000:65536";
const SUBORDINATE_FILES: [&str; 2] = ["/etc/subuid", "/etc/subgid"];

/// Copies of /etc/subuid and /etc/subgid with `FIRST_USER_RANGE` added,
/// bind-mounted over the real files (in the tour's mount namespace only:
/// the real files are never written). A host without the files gets none.
fn list_first_user(stand_in: &mut StandIn) {
    for file in SUBORDINATE_FILES {
        let Ok(real) = std::fs::read_to_string(file) else {
            continue;
        };
        let name = file.trim_start_matches("/etc/");
        let copy = std::env::temp_dir().join(format!(
            "container-lab-stand-in-{}-{name}",
            std::process::id()
        ));
        let text = format!(
            "{real}{}{FIRST_USER_RANGE}\n",
            if real.is_empty() || real.ends_with('\n') {
                ""
            } else {
                "\n"
            }
        );
        if std::fs::write(&copy, text).is_err() {
            continue;
        }
        let bound = mount(
            Some(&copy),
            file,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        );
        stand_in
            .subordinate_copies
            .push((PathBuf::from(file), copy));
        if bound.is_err() {
            stand_in
                .subordinate_copies
                .pop()
                .map(|(_, copy)| std::fs::remove_file(copy));
        }
    }
}

/// Move this process into fresh mount, UTS, IPC and network namespaces
/// that stand in for the host (see the module comment).
pub fn enter_stand_in_host() -> Result<StandIn, LabError> {
    let kinds = CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWNET;
    unshare(kinds).map_err(|e| {
        step_error(
            "unshare",
            "CLONE_NEWNS|CLONE_NEWUTS|CLONE_NEWIPC|CLONE_NEWNET",
            e,
        )
    })?;
    // Nothing mounted from here on may propagate to the real host.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| step_error("mount", "/ MS_REC|MS_PRIVATE", e))?;
    nix::unistd::sethostname(STAND_IN_HOSTNAME)
        .map_err(|e| step_error("sethostname", STAND_IN_HOSTNAME, e))?;
    crate::runtime::net::set_link_up("lo")
        .map_err(|e| step_error("ioctl", "SIOCSIFFLAGS lo up", e))?;
    // A host has a sysfs of its own network namespace mounted; so must the
    // stand-in, or a container's sysfs mount would be the first of that
    // namespace and behave unlike on a real host. Not over /sys, which
    // would hide /sys/fs/cgroup from runc: on a directory of its own.
    let sysfs = std::env::temp_dir().join(format!("container-lab-stand-in-{}", std::process::id()));
    std::fs::create_dir_all(&sysfs).map_err(|e| LabError::io("mkdir", sysfs.display(), e))?;
    let mut stand_in = StandIn {
        sysfs,
        subordinate_copies: Vec::new(),
    };
    list_first_user(&mut stand_in);
    mount(
        Some("sysfs"),
        &stand_in.sysfs,
        Some("sysfs"),
        MsFlags::empty(),
        None::<&str>,
    )
    .map_err(|e| step_error("mount", format!("sysfs {}", stand_in.sysfs.display()), e))?;
    // A veth pair is the one virtual interface every kernel has (dummy is a
    // module that may be missing). Without ip(8) the check is N/A.
    let _ = Command::new("ip")
        .args([
            "link",
            "add",
            BAIT_INTERFACE,
            "type",
            "veth",
            "peer",
            "name",
            "labbait1",
        ])
        .status();
    // The stand-in host's own address besides loopback, as a real host has
    // one on its LAN: services bound to 0.0.0.0 answer on it.
    for args in [
        &[
            "addr",
            "add",
            &format!("{BAIT_ADDRESS}/32"),
            "dev",
            BAIT_INTERFACE,
        ][..],
        &["link", "set", BAIT_INTERFACE, "up"],
        &["link", "set", "labbait1", "up"],
    ] {
        let _ = Command::new("ip").args(args).status();
    }
    Ok(stand_in)
}

/// A secret no container can guess: 16 hex digits from the kernel's RNG.
fn random_hex() -> String {
    let mut bytes = [0u8; 8];
    if let Ok(mut random) = std::fs::File::open("/dev/urandom") {
        let _ = random.read_exact(&mut bytes);
    }
    crate::lab::probe::hex(&bytes)
}

/// Everything planted on the host for one chapter's probe run; removed on
/// drop, whatever happened.
struct HostBait {
    secret: String,
    bait: Bait,
    dir: PathBuf,
    /// Open without O_CLOEXEC on purpose: a runtime that does not close
    /// inherited fds hands it to the container.
    dir_fd: Option<OwnedFd>,
    process: Option<(Pid, OwnedFd)>,
    shm_id: Option<i32>,
    listener: Option<TcpListener>,
    /// A service of the host's bound to every address (0.0.0.0).
    service: Option<TcpListener>,
    /// Where forged datagrams arrive, on every address (net.spoof-source).
    forged_listener: Option<UdpSocket>,
    /// Devices the host keeps a neighbour entry for ARP_VICTIM on.
    neighbours: Vec<String>,
    /// Whether NEIGHBOUR_PORT is plugged into the default bridge.
    neighbour_port: bool,
    /// A server container on another lab bridge (net.cross-bridge).
    other_bridge: Option<OtherBridgeServer>,
    loop_device: Option<crate::lab::loopdev::LoopDevice>,
    /// Files the tour put beside or inside the rootfs: removed on drop.
    planted_files: Vec<PathBuf>,
    /// Where on disk a file the probe creates in the rootfs would land.
    rootfs_written: Option<PathBuf>,
    /// The terminal the chapter runs on: the tour keeps both ends.
    terminal: Option<TourTerminal>,
    /// The key the host added to root's user keyring (sys.proc-keys): its
    /// serial and its description, which only the host knows.
    host_key: Option<(i64, String)>,
    /// The machine's Ctrl-Alt-Del setting while the chapter runs
    /// (sys.reboot), put back when dropped.
    ctrl_alt_del: Option<CtrlAltDel>,
    /// Why a piece of bait could not be planted, by check id.
    unplanted: Vec<(&'static str, String)>,
}

impl HostBait {
    fn plant(chapter: &Chapter, rootfs: &Path) -> Result<HostBait, LabError> {
        let secret = random_hex();
        // Names the probe is told are drawn apart from the secret, so no
        // name gives the secret away.
        let tag = random_hex();
        let dir =
            Path::new(BAIT_ROOT).join(format!("tour-{}-ch{}", std::process::id(), chapter.number));
        std::fs::create_dir_all(&dir).map_err(|e| LabError::io("mkdir", dir.display(), e))?;
        let marker = dir.join("host-secret.txt");
        std::fs::write(&marker, &secret).map_err(|e| LabError::io("write", marker.display(), e))?;
        let dir_fd = open(&dir, OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty()).ok();

        let mut planted = HostBait {
            secret: secret.clone(),
            bait: Bait {
                host_file: Some(marker),
                marker_name: Some("host-secret.txt".into()),
                mount_tag: Some(format!("lab-probe-{tag}")),
                hostname_tag: Some(format!("probe-{}", &tag[..8])),
                env_name: Some(format!("CONTAINER_LAB_TOUR_{}", tag.to_uppercase())),
                mq_name: Some(format!("/container-lab-{tag}")),
                memory_limit_bytes: MEMORY_BUDGET_BYTES,
                pids_limit: PIDS_BUDGET,
                cpu_limit: CPU_BUDGET,
                ..Bait::default()
            },
            dir,
            dir_fd,
            process: None,
            shm_id: None,
            listener: None,
            service: None,
            forged_listener: None,
            neighbours: Vec::new(),
            neighbour_port: false,
            other_bridge: None,
            loop_device: None,
            planted_files: Vec::new(),
            rootfs_written: None,
            terminal: None,
            host_key: None,
            ctrl_alt_del: None,
            unplanted: Vec::new(),
        };
        planted.process = spawn_signal_target();
        planted.bait.host_pid = planted.process.as_ref().map(|(pid, _)| pid.as_raw());
        planted.plant_shm();
        planted.plant_mq();
        planted.listener = TcpListener::bind("127.0.0.1:0").ok();
        planted.bait.loopback_port = planted
            .listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
            .map(|a| a.port());
        let has_bait_interface = nix::net::if_::if_nameindex()
            .map(|list| {
                list.iter()
                    .any(|i| i.name().to_bytes() == BAIT_INTERFACE.as_bytes())
            })
            .unwrap_or(false);
        planted.bait.host_interface = has_bait_interface.then(|| BAIT_INTERFACE.to_string());
        planted.plant_host_service();
        planted.plant_forged_datagram(&tag);
        planted.plant_neighbours(chapter, rootfs);
        planted.plant_other_bridge_server(rootfs);
        planted.plant_block_device();
        planted.plant_rootfs_node(chapter, rootfs);
        let written = rootfs.join(format!(".container-lab-tour-write-{}", std::process::id()));
        planted.bait.rootfs_write = Some(HostBait::as_seen_inside(chapter, rootfs, &written));
        planted.planted_files.push(written.clone());
        planted.rootfs_written = Some(written);
        match TourTerminal::open() {
            Ok(terminal) => {
                planted.terminal = Some(terminal);
                planted.bait.tty_marker = Some(format!("lab-tty-{}", &tag[8..]));
            }
            Err(errno) => planted
                .unplanted
                .push(("tty.inject", format!("no pseudo-terminal: {errno}"))),
        }
        planted.plant_file_handle(chapter, rootfs);
        planted.plant_host_key();
        planted.plant_setuid_helper(chapter, rootfs);
        match CtrlAltDel::watch() {
            Ok(watch) => {
                planted.ctrl_alt_del = Some(watch);
                planted.bait.reboot_watched = true;
            }
            Err(why) => planted.unplanted.push(("sys.reboot", why)),
        }
        // Checks of kernel features this kernel may not have at all.
        if !Path::new("/proc/kcore").exists() {
            planted.unplanted.push((
                "sys.kcore",
                "this kernel has no /proc/kcore (built without CONFIG_PROC_KCORE)".into(),
            ));
        }
        if !Path::new("/proc/modules").exists() {
            planted.unplanted.push((
                "sys.kernel-module",
                "this kernel cannot load modules (built without CONFIG_MODULES: no /proc/modules)"
                    .into(),
            ));
        }
        Ok(planted)
    }

    /// A key of the host's in root's user keyring (@u), its description a
    /// random marker (add_key(2)): what /proc/keys shows any process of
    /// root's in the host's user namespace.
    fn plant_host_key(&mut self) {
        const ID: &str = "sys.proc-keys";
        const KEY_SPEC_USER_KEYRING: libc::c_long = -4;
        // The tour's pid in it, for `lab clean` after a tour that was killed.
        let description = format!("{TOUR_KEY_PREFIX}{}-{}", std::process::id(), random_hex());
        let Ok(c_description) = std::ffi::CString::new(description.clone()) else {
            return;
        };
        let payload = b"container-lab tour bait";
        // SAFETY: type and description are NUL-terminated, the payload is
        // as long as said; the key is removed in Drop.
        let serial = unsafe {
            libc::syscall(
                libc::SYS_add_key,
                c"user".as_ptr(),
                c_description.as_ptr(),
                payload.as_ptr(),
                payload.len(),
                KEY_SPEC_USER_KEYRING,
            )
        };
        if serial < 0 {
            self.unplanted
                .push((ID, format!("add_key: {}", Errno::last())));
            return;
        }
        self.host_key = Some((serial, description));
        self.bait.host_key = true;
    }

    /// A setuid-root copy of the rootfs's own probe, beside it in the
    /// rootfs (mode 4755, owned by root: the container's root in ch05 on,
    /// through the idmapped rootfs or the image's layers).
    fn plant_setuid_helper(&mut self, chapter: &Chapter, rootfs: &Path) {
        use std::os::unix::fs::PermissionsExt;
        const ID: &str = "user.setuid-gain";
        let probe = rootfs.join("usr/local/bin/lab-probe");
        let helper = rootfs.join(format!(
            "usr/local/bin/.container-lab-tour-suid-{}",
            std::process::id()
        ));
        let planted = std::fs::copy(&probe, &helper)
            .and_then(|_| std::os::unix::fs::chown(&helper, Some(0), Some(0)))
            // After chown, which clears the setuid bit.
            .and_then(|()| {
                std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o4755))
            });
        match planted {
            Ok(()) => {
                self.bait.setuid_helper = Some(Self::as_seen_inside(chapter, rootfs, &helper));
                self.planted_files.push(helper);
            }
            Err(error) => {
                let _ = std::fs::remove_file(&helper);
                self.unplanted
                    .push((ID, format!("{}: {error}", helper.display())));
            }
        }
    }

    /// A service on 0.0.0.0, and the host address (not loopback) the probe
    /// is told to try it on.
    fn plant_host_service(&mut self) {
        const ID: &str = "net.host-services";
        if !has_bait_address() {
            self.unplanted.push((
                ID,
                format!("the stand-in host has no address {BAIT_ADDRESS} (ip(8) missing?)"),
            ));
            return;
        }
        match TcpListener::bind("0.0.0.0:0") {
            Ok(listener) => {
                self.bait.host_service = listener
                    .local_addr()
                    .ok()
                    .map(|a| std::net::SocketAddr::from((BAIT_ADDRESS, a.port())));
                self.service = Some(listener);
            }
            Err(error) => self.unplanted.push((ID, format!("bind 0.0.0.0: {error}"))),
        }
    }

    /// A UDP port on every address, and the datagram the probe is told to
    /// send it: to the host's address that is not loopback, from
    /// FORGED_SOURCE, with a marker for a payload.
    fn plant_forged_datagram(&mut self, tag: &str) {
        const ID: &str = "net.spoof-source";
        if !has_bait_address() {
            self.unplanted.push((
                ID,
                format!("the stand-in host has no address {BAIT_ADDRESS} (ip(8) missing?)"),
            ));
            return;
        }
        let bound = UdpSocket::bind("0.0.0.0:0").and_then(|s| Ok((s.local_addr()?, s)));
        match bound {
            Ok((local, socket)) => {
                self.bait.forged_datagram = Some(ForgedDatagram {
                    to: std::net::SocketAddrV4::new(BAIT_ADDRESS, local.port()),
                    from: FORGED_SOURCE,
                    marker: format!("lab-forged-{}", &tag[..8]),
                });
                self.forged_listener = Some(socket);
            }
            Err(error) => self
                .unplanted
                .push((ID, format!("bind udp 0.0.0.0: {error}"))),
        }
    }

    /// A neighbour entry for ARP_VICTIM, stale as an entry the host has
    /// not used for a while: on labbait0, where ch00-ch03 can answer from
    /// labbait1 (the other end of its cable), and in bridged chapters on
    /// the default bridge, where the container's eth0 is plugged in.
    fn plant_neighbours(&mut self, chapter: &Chapter, rootfs: &Path) {
        const ID: &str = "net.arp-spoof";
        let mut devices = vec![BAIT_INTERFACE.to_string()];
        if chapter.bridged {
            if let Err(why) = ensure_default_bridge(chapter, rootfs) {
                self.unplanted.push((ID, why));
                return;
            }
            if let Err(why) = plug_neighbour_port() {
                self.unplanted.push((ID, why));
                return;
            }
            self.neighbour_port = true;
            devices.push(DEFAULT_BRIDGE.to_string());
        }
        let victim = ARP_VICTIM.to_string();
        let mac = crate::runtime::net::mac_for(ARP_VICTIM);
        for device in devices {
            let args = [
                "neigh", "replace", &victim, "lladdr", &mac, "dev", &device, "nud", "stale",
            ];
            match Command::new("ip").args(args).output() {
                Ok(output) if output.status.success() => self.neighbours.push(device),
                Ok(output) => {
                    let why = String::from_utf8_lossy(&output.stderr).trim().to_string();
                    self.unplanted
                        .push((ID, format!("ip {}: {why}", args.join(" "))));
                    return;
                }
                Err(error) => {
                    self.unplanted.push((ID, format!("ip: {error}")));
                    return;
                }
            }
        }
        self.bait.arp_victim = Some(ARP_VICTIM);
    }

    fn plant_other_bridge_server(&mut self, rootfs: &Path) {
        match OtherBridgeServer::start(rootfs) {
            Ok(server) => {
                self.bait.other_bridge_server = Some(server.address);
                self.other_bridge = Some(server);
            }
            Err(why) => self.unplanted.push(("net.cross-bridge", why)),
        }
    }

    /// How the container sees `host_path`, a path inside the rootfs.
    fn as_seen_inside(chapter: &Chapter, rootfs: &Path, host_path: &Path) -> PathBuf {
        match host_path.strip_prefix(rootfs) {
            Ok(inside) if chapter.takes_rootfs => Path::new("/").join(inside),
            _ => host_path.to_path_buf(),
        }
    }

    /// A block node for the tour's loop device, left in the rootfs as a
    /// hostile image would ship it (owned by root, mode 0600).
    fn plant_rootfs_node(&mut self, chapter: &Chapter, rootfs: &Path) {
        const ID: &str = "dev.rootfs-node";
        let Some((major, minor)) = self.bait.block_device else {
            self.unplanted
                .push((ID, "no loop device to make a node for".into()));
            return;
        };
        let node = rootfs.join(format!(".container-lab-tour-node-{}", std::process::id()));
        let made = nix::sys::stat::mknod(
            &node,
            nix::sys::stat::SFlag::S_IFBLK,
            Mode::from_bits_truncate(0o600),
            nix::sys::stat::makedev(major, minor),
        );
        match made {
            Ok(()) => {
                self.bait.rootfs_node = Some(Self::as_seen_inside(chapter, rootfs, &node));
                self.planted_files.push(node);
            }
            Err(errno) => self
                .unplanted
                .push((ID, format!("mknod {}: {errno}", node.display()))),
        }
    }

    /// A file holding the secret on the rootfs's filesystem, outside the
    /// rootfs, and its handle (name_to_handle_at(2)): what shocker (2014)
    /// guessed by brute force, handed over so the check needs no guessing.
    fn plant_file_handle(&mut self, chapter: &Chapter, rootfs: &Path) {
        const ID: &str = "fs.open-by-handle";
        let Some(beside) = rootfs.parent() else {
            self.unplanted.push((ID, "the rootfs is / itself".into()));
            return;
        };
        let device = |path: &Path| {
            std::fs::metadata(path)
                .map(|m| std::os::unix::fs::MetadataExt::dev(&m))
                .ok()
        };
        if device(rootfs).is_none() || device(rootfs) != device(beside) {
            self.unplanted.push((
                ID,
                format!(
                    "{} is a filesystem of its own: no host file shares it",
                    rootfs.display()
                ),
            ));
            return;
        }
        let file = beside.join(format!(".container-lab-tour-handle-{}", std::process::id()));
        if let Err(error) = std::fs::write(&file, &self.secret) {
            self.unplanted
                .push((ID, format!("{}: {error}", file.display())));
            return;
        }
        self.planted_files.push(file.clone());
        match file_handle_of(&file) {
            Ok((handle_type, bytes)) => {
                self.bait.file_handle = Some(crate::lab::scorecard::FileHandleBait {
                    mount_path: Self::as_seen_inside(chapter, rootfs, rootfs),
                    handle_type,
                    bytes: crate::lab::probe::hex(&bytes),
                })
            }
            Err(errno) => self
                .unplanted
                .push((ID, format!("name_to_handle_at {}: {errno}", file.display()))),
        }
    }

    fn plant_shm(&mut self) {
        let tag = self.bait.mount_tag.as_deref().unwrap_or_default();
        let key = i32::from_str_radix(&tag[tag.len() - 7..], 16).unwrap_or(0x1ab);
        // SAFETY: create a 4 KiB segment, write the secret (shorter than the
        // segment) and detach.
        unsafe {
            let id = libc::shmget(key, 4096, libc::IPC_CREAT | libc::IPC_EXCL | 0o600);
            if id < 0 {
                return;
            }
            let address = libc::shmat(id, std::ptr::null(), 0);
            if address as isize != -1 {
                std::ptr::copy_nonoverlapping(
                    self.secret.as_ptr(),
                    address as *mut u8,
                    self.secret.len(),
                );
                libc::shmdt(address);
            }
            self.shm_id = Some(id);
        }
        self.bait.shm_key = Some(key);
    }

    fn plant_block_device(&mut self) {
        let backing = self.dir.join("disk.img");
        let mut image = self.secret.clone().into_bytes();
        image.resize(64 * 1024, 0);
        if let Err(error) = std::fs::write(&backing, image) {
            self.unplanted
                .push(("dev.block-read", format!("{}: {error}", backing.display())));
            return;
        }
        match crate::lab::loopdev::LoopDevice::attach(&backing) {
            Ok(device) => {
                self.bait.block_device = Some((crate::lab::loopdev::MAJOR, device.number));
                self.loop_device = Some(device);
            }
            Err(why) => self.unplanted.push((
                "dev.block-read",
                format!("no loop device on this host: {why}"),
            )),
        }
    }

    fn plant_mq(&mut self) {
        use nix::mqueue::{MQ_OFlag, MqAttr, mq_open, mq_send};
        let Some(name) = self.bait.mq_name.clone() else {
            return;
        };
        let attr = MqAttr::new(0, 1, 64, 0);
        let flags = MQ_OFlag::O_CREAT | MQ_OFlag::O_EXCL | MQ_OFlag::O_WRONLY;
        match mq_open(
            name.as_str(),
            flags,
            Mode::from_bits_truncate(0o600),
            Some(&attr),
        ) {
            Ok(queue) => {
                let _ = mq_send(&queue, self.secret.as_bytes(), 0);
            }
            Err(_) => self.bait.mq_name = None,
        }
    }

    /// What the host itself saw, read right after the probe ended.
    fn observe(&mut self, findings: &[Finding]) -> HostObservations {
        let claimed = |id: &str| {
            findings
                .iter()
                .any(|f| f.check == id && f.verdict == Verdict::Leaks)
        };
        let signal_received = match &self.process {
            Some((_, pipe)) => {
                let wait = if claimed("pid.signal-host") { 1000 } else { 0 };
                readable_within(pipe, wait)
            }
            None => false,
        };
        let hostname = nix::unistd::gethostname()
            .ok()
            .map(|h| h.to_string_lossy().into_owned());
        let hostname_changed_to = hostname.filter(|h| h != STAND_IN_HOSTNAME);
        let _ = nix::unistd::sethostname(STAND_IN_HOSTNAME);
        let mount_seen = self.bait.mount_tag.as_deref().and_then(remove_tagged_mount);
        let connection_accepted = self.listener.as_ref().is_some_and(|listener| {
            let _ = listener.set_nonblocking(true);
            listener.accept().is_ok()
        });
        let service_reached = self.service.as_ref().is_some_and(|listener| {
            let _ = listener.set_nonblocking(true);
            listener.accept().is_ok()
        });
        let rootfs_changed = self.rootfs_written.as_ref().is_some_and(|file| {
            let there = file.exists();
            let _ = std::fs::remove_file(file);
            there
        });
        let typed_on_terminal = self
            .terminal
            .as_ref()
            .map(TourTerminal::typed_input)
            .unwrap_or_default();
        // A datagram or a frame the probe sent is handled by the kernel
        // soon after; give it a moment when the probe says it sent one.
        let datagrams = self
            .forged_listener
            .as_ref()
            .map_or_else(Vec::new, |socket| {
                receive_datagrams(socket, if claimed("net.spoof-source") { 500 } else { 0 })
            });
        let neighbour_entries = self.neighbour_entries(claimed("net.arp-spoof"));
        let other_bridge = self.other_bridge.as_mut().map(OtherBridgeServer::stop);
        let ctrl_alt_del = self.ctrl_alt_del.as_ref().map(|watch| {
            (
                watch.watched.clone(),
                CtrlAltDel::read().unwrap_or_default(),
            )
        });
        HostObservations {
            host_key: self
                .host_key
                .as_ref()
                .map(|(_, description)| description.clone()),
            ctrl_alt_del,
            secret: self.secret.clone(),
            signal_received,
            hostname_changed_to,
            mount_seen,
            connection_accepted,
            service_reached,
            rootfs_changed,
            tty_marker: self.bait.tty_marker.clone(),
            typed_on_terminal,
            forged: self.bait.forged_datagram.clone(),
            datagrams,
            arp_victim: self.bait.arp_victim,
            neighbour_entries,
            other_bridge,
            unplanted: self.unplanted.clone(),
        }
    }

    /// Where each of the host's entries for ARP_VICTIM points now, by
    /// device (`None`: the entry has no address any more, or is gone).
    fn neighbour_entries(&self, claimed: bool) -> Vec<(String, Option<String>)> {
        let victim = ARP_VICTIM.to_string();
        let planted = crate::runtime::net::mac_for(ARP_VICTIM);
        let read = || -> Vec<(String, Option<String>)> {
            self.neighbours
                .iter()
                .map(|device| {
                    let shown = Command::new("ip")
                        .args(["neigh", "show", &victim, "dev", device])
                        .output()
                        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                        .unwrap_or_default();
                    (device.clone(), neighbour_lladdr(&shown))
                })
                .collect()
        };
        let deadline = Instant::now() + Duration::from_millis(if claimed { 500 } else { 0 });
        loop {
            let entries = read();
            let changed = entries
                .iter()
                .any(|(_, mac)| mac.as_deref() != Some(planted.as_str()));
            if changed || Instant::now() >= deadline {
                return entries;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Whether the stand-in host has BAIT_ADDRESS (ip(8) put it there).
fn has_bait_address() -> bool {
    nix::ifaddrs::getifaddrs().is_ok_and(|mut addresses| {
        addresses.any(|a| {
            a.address
                .and_then(|sockaddr| sockaddr.as_sockaddr_in().map(|sin| sin.ip()))
                == Some(BAIT_ADDRESS)
        })
    })
}

/// The default bridge, made the way the chapter makes it: a bridge is
/// made by the first container that needs it and stays for the next
/// (ensure_bridge in runtime/net.rs), so the host can only keep a
/// neighbour on it before the probe's run if a container ran first. One
/// that runs /bin/true is that container; it changes nothing else.
fn ensure_default_bridge(chapter: &Chapter, rootfs: &Path) -> Result<(), String> {
    let exists = || nix::net::if_::if_nametoindex(DEFAULT_BRIDGE).is_ok();
    if exists() {
        return Ok(());
    }
    // A chapter that runs images makes the same bridge as ch07, which
    // runs a rootfs: the bridge is made before the tour's image is. An
    // OCI runtime makes none: the tour's engine makes the same one.
    let maker = match chapter.from_image || chapter.start == Start::Bundle {
        true => "ch07-lifecycle",
        false => chapter.binary,
    };
    let binary = crate::rootfs::sibling(maker);
    let mut command = Command::new(&binary);
    if chapter.start != Start::CommandLine {
        command.args(["run", "--rm"]);
    }
    let output = command
        .arg(rootfs)
        .arg("/bin/true")
        .stdin(Stdio::null())
        .output()
        .map_err(|error| format!("{}: {error}", binary.display()))?;
    if exists() {
        Ok(())
    } else {
        Err(format!(
            "{} ROOTFS /bin/true did not make {DEFAULT_BRIDGE}: {}",
            chapter.binary,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// NEIGHBOUR_PORT, one end of a veth pair, plugged into the default bridge
/// and up (its peer up too, or the port has no carrier either).
fn plug_neighbour_port() -> Result<(), String> {
    let peer = format!("{NEIGHBOUR_PORT}p");
    let steps: [&[&str]; 3] = [
        &[
            "link",
            "add",
            NEIGHBOUR_PORT,
            "type",
            "veth",
            "peer",
            "name",
            &peer,
        ],
        &["link", "set", &peer, "up"],
        &[
            "link",
            "set",
            NEIGHBOUR_PORT,
            "master",
            DEFAULT_BRIDGE,
            "up",
        ],
    ];
    for args in steps {
        let output = Command::new("ip")
            .args(args)
            .output()
            .map_err(|error| format!("ip: {error}"))?;
        if !output.status.success() {
            let _ = Command::new("ip")
                .args(["link", "del", NEIGHBOUR_PORT])
                .stderr(Stdio::null())
                .status();
            return Err(format!(
                "ip {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
    }
    Ok(())
}

/// The lladdr an `ip neigh show ADDRESS dev DEVICE` line names.
fn neighbour_lladdr(shown: &str) -> Option<String> {
    let mut words = shown.split_whitespace();
    words.find(|w| *w == "lladdr")?;
    words.next().map(str::to_lowercase)
}

/// Every datagram waiting on `socket`, as (source, payload), after waiting
/// up to `millis` ms for the first.
fn receive_datagrams(socket: &UdpSocket, millis: u16) -> Vec<(SocketAddr, String)> {
    readable_within(socket, millis);
    let _ = socket.set_nonblocking(true);
    let mut received = Vec::new();
    let mut buffer = [0u8; 512];
    // Bounded: the port is the tour's, but a flood must not hold it up.
    while received.len() < 64 {
        match socket.recv_from(&mut buffer) {
            Ok((n, from)) => {
                received.push((from, String::from_utf8_lossy(&buffer[..n]).into_owned()))
            }
            Err(_) => break,
        }
    }
    received
}

/// A server in a ch04 container on a second lab bridge, OTHER_BRIDGE, for
/// the probe to try to reach (net.cross-bridge): started before the probe
/// runs and stopped after it, as a neighbour's container would be running.
/// It greets each client and prints `greeted ADDRESS` for each; the host
/// counts those, minus the connection it made itself to see the server
/// answer. The server cannot tell the probe from the tour by address (the
/// host masquerades what leaves a bridge for another subnet), so it is the
/// count that tells.
struct OtherBridgeServer {
    runtime: std::process::Child,
    address: SocketAddr,
    /// What the server printed so far.
    output: String,
    /// Connections the tour made itself, to see that it answers.
    tour_connections: u32,
}

/// What the server on the other bridge reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerReport {
    pub address: SocketAddr,
    /// Clients it greeted, the tour's own check included.
    pub greeted: u32,
    pub tour_connections: u32,
    /// Whether it ended before the tour stopped it (its clients counted
    /// out, or its own 60 s deadline).
    pub ended_on_its_own: bool,
}

impl OtherBridgeServer {
    fn start(rootfs: &Path) -> Result<OtherBridgeServer, String> {
        let binary = crate::rootfs::sibling("ch04-net");
        if !binary.is_file() {
            return Err(format!("{} is not built", binary.display()));
        }
        let port = OTHER_BRIDGE_PORT.to_string();
        let runtime = Command::new(&binary)
            .args(["--bridge", OTHER_BRIDGE, "--subnet", OTHER_SUBNET])
            .arg(rootfs)
            // Two clients: the tour's own check and the probe; then it
            // ends by itself.
            .args(["/usr/local/bin/lab-probe", "--serve", &port, "--count", "2"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|error| format!("{}: {error}", binary.display()))?;
        // From here on its Drop stops it, whatever fails next.
        let mut server = OtherBridgeServer {
            runtime,
            address: SocketAddr::from((Ipv4Addr::UNSPECIFIED, OTHER_BRIDGE_PORT)),
            output: String::new(),
            tour_connections: 0,
        };
        let ready = format!("listening on port {port}\n");
        if !server.read_output(Duration::from_secs(10), |out| out.contains(&ready)) {
            let mut stderr = String::new();
            // Only once it has ended: a runtime still running holds its
            // stderr open, and reading it would wait for good.
            if matches!(server.runtime.try_wait(), Ok(Some(_)))
                && let Some(mut pipe) = server.runtime.stderr.take()
            {
                let _ = pipe.read_to_string(&mut stderr);
            }
            return Err(format!(
                "the server on {OTHER_BRIDGE} did not start: {}",
                stderr.trim()
            ));
        }
        server.address = SocketAddr::from((server.leased_address()?, OTHER_BRIDGE_PORT));
        server.check_it_answers()?;
        Ok(server)
    }

    /// The server's address: the lease its runtime took (a file named for
    /// the address, holding the runtime's pid, in the bridge's state).
    fn leased_address(&self) -> Result<Ipv4Addr, String> {
        let leases = crate::runtime::net::state_root()
            .join(OTHER_BRIDGE)
            .join("leases");
        let pid = self.runtime.id().to_string();
        std::fs::read_dir(&leases)
            .map_err(|error| format!("{}: {error}", leases.display()))?
            .flatten()
            .find(|lease| {
                std::fs::read_to_string(lease.path()).is_ok_and(|owner| owner.trim() == pid)
            })
            .and_then(|lease| lease.file_name().to_str()?.parse().ok())
            .ok_or_else(|| format!("no lease of pid {pid} in {}", leases.display()))
    }

    /// The stand-in host reaches the server directly (labbr1 is one of its
    /// own networks): connect once and read the greeting.
    fn check_it_answers(&mut self) -> Result<(), String> {
        use std::io::BufRead;
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match std::net::TcpStream::connect_timeout(&self.address, Duration::from_secs(1)) {
                Ok(stream) => {
                    self.tour_connections += 1;
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                    let mut greeting = String::new();
                    let _ = std::io::BufReader::new(stream).read_line(&mut greeting);
                    return if greeting.starts_with("hello from") {
                        Ok(())
                    } else {
                        Err(format!(
                            "the server at {} did not greet the host: {greeting:?}",
                            self.address
                        ))
                    };
                }
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                Err(error) => {
                    return Err(format!(
                        "the stand-in host cannot reach the server at {}: {error}",
                        self.address
                    ));
                }
            }
        }
    }

    /// Read what the server prints until `enough` says so, its output
    /// ends, or `wait` passes; returns whether `enough` said so.
    fn read_output(&mut self, wait: Duration, enough: impl Fn(&str) -> bool) -> bool {
        let end = Instant::now() + wait;
        let Some(stdout) = self.runtime.stdout.as_ref() else {
            return enough(&self.output);
        };
        let mut buffer = [0u8; 512];
        while !enough(&self.output) {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            if !readable_within(stdout, left.as_millis().min(1000) as u16) {
                continue;
            }
            match nix::unistd::read(stdout, &mut buffer) {
                Ok(n) if n > 0 => self.output.push_str(&String::from_utf8_lossy(&buffer[..n])),
                _ => return enough(&self.output),
            }
        }
        true
    }

    /// Stop the server, if it still runs, as `docker stop` would: SIGTERM
    /// to its runtime, which passes it on and takes the container's veth
    /// and rules down as it exits; SIGKILL after 5 s. Then count whom it
    /// greeted.
    fn stop(&mut self) -> ServerReport {
        let ended = |runtime: &mut std::process::Child| matches!(runtime.try_wait(), Ok(Some(_)));
        let ended_on_its_own = ended(&mut self.runtime);
        if !ended_on_its_own {
            let _ = kill(Pid::from_raw(self.runtime.id() as i32), Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(5);
            while !ended(&mut self.runtime) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if !ended(&mut self.runtime) {
                let _ = self.runtime.kill();
                let _ = self.runtime.wait();
            }
        }
        self.read_output(Duration::from_secs(1), |_| false);
        ServerReport {
            address: self.address,
            greeted: self
                .output
                .lines()
                .filter(|line| line.starts_with("greeted "))
                .count() as u32,
            tour_connections: self.tour_connections,
            ended_on_its_own,
        }
    }
}

impl Drop for OtherBridgeServer {
    fn drop(&mut self) {
        if !matches!(self.runtime.try_wait(), Ok(Some(_))) {
            self.stop();
        }
    }
}

impl Drop for HostBait {
    fn drop(&mut self) {
        if let Some((serial, _)) = self.host_key.take() {
            const KEYCTL_UNLINK: libc::c_long = 9;
            const KEY_SPEC_USER_KEYRING: libc::c_long = -4;
            // SAFETY: keyctl on the key the tour added, by its serial.
            unsafe {
                libc::syscall(
                    libc::SYS_keyctl,
                    KEYCTL_UNLINK,
                    serial,
                    KEY_SPEC_USER_KEYRING,
                );
            }
            let _ = invalidate_key(serial);
        }
        // Its own Drop puts Ctrl-Alt-Del back, then lets go of the lock.
        self.ctrl_alt_del.take();
        if let Some((pid, _)) = self.process.take() {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(pid, None);
        }
        if let Some(id) = self.shm_id {
            // SAFETY: removing a segment we created.
            unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) };
        }
        if let Some(name) = &self.bait.mq_name {
            let _ = nix::mqueue::mq_unlink(name.as_str());
        }
        // The default bridge outlives the chapter: its entry must not.
        for device in &self.neighbours {
            let _ = Command::new("ip")
                .args(["neigh", "del", &ARP_VICTIM.to_string(), "dev", device])
                .stderr(Stdio::null())
                .status();
        }
        if self.neighbour_port {
            let _ = Command::new("ip")
                .args(["link", "del", NEIGHBOUR_PORT])
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        for file in &self.planted_files {
            let _ = std::fs::remove_file(file);
        }
    }
}

/// The machine's kernel.ctrl-alt-del while a chapter runs (sys.reboot):
/// the probe's reboot(LINUX_REBOOT_CMD_CAD_OFF) sets it to 0 when the
/// kernel lets it, so the tour makes it 1 first (Ctrl-Alt-Del reboots at
/// once, the kernel's default) for a change to show, and puts the
/// machine's own value back on drop, whatever happened. The setting is the
/// whole machine's, not the stand-in's: tours running at once take turns
/// through a lock, so that none takes another's change for the machine's
/// own value.
struct CtrlAltDel {
    /// What the machine had before the tour touched it.
    original: String,
    /// What the tour set for the chapter to change.
    watched: String,
    _lock: std::fs::File,
}

pub const CTRL_ALT_DEL: &str = "/proc/sys/kernel/ctrl-alt-del";
/// The lock tours take turns through; while a tour holds it, it holds the
/// machine's own value too, for `lab clean` to put back after a tour that
/// was killed.
pub const CTRL_ALT_DEL_LOCK: &str = ".tour-ctrl-alt-del.lock";
/// The start of the description of the key a tour adds (sys.proc-keys),
/// followed by the tour's pid.
pub const TOUR_KEY_PREFIX: &str = "lab-tour-key-";

/// Invalidate a key the tour added, by its serial (keyctl(2)
/// KEYCTL_INVALIDATE: gone at once for everyone): the tour's own cleanup,
/// and `lab clean`'s after a tour that was killed.
pub fn invalidate_key(serial: i64) -> nix::Result<()> {
    const KEYCTL_INVALIDATE: libc::c_long = 21;
    // SAFETY: keyctl with a key's serial, no pointers.
    match unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_INVALIDATE, serial) } {
        0 => Ok(()),
        _ => Err(Errno::last()),
    }
}

impl CtrlAltDel {
    fn read() -> Option<String> {
        std::fs::read_to_string(CTRL_ALT_DEL)
            .ok()
            .map(|v| v.trim().to_string())
    }

    fn watch() -> Result<CtrlAltDel, String> {
        let lock_path = Path::new(BAIT_ROOT).join(CTRL_ALT_DEL_LOCK);
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&lock_path)
            .map_err(|e| format!("{}: {e}", lock_path.display()))?;
        // SAFETY: flock on a descriptor we own; released when it closes.
        if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) } < 0 {
            return Err(format!("flock {}: {}", lock_path.display(), Errno::last()));
        }
        let original = Self::read().ok_or_else(|| format!("{CTRL_ALT_DEL} is unreadable"))?;
        // The machine's value, kept where `lab clean` finds it.
        let _ = lock.set_len(0);
        let _ = (&lock).write_all(original.as_bytes());
        let watch = CtrlAltDel {
            original: original.clone(),
            watched: "1".into(),
            _lock: lock,
        };
        if original != "1" {
            std::fs::write(CTRL_ALT_DEL, "1")
                .map_err(|e| format!("write 1 to {CTRL_ALT_DEL}: {e}"))?;
        }
        Ok(watch)
    }
}

impl Drop for CtrlAltDel {
    fn drop(&mut self) {
        if Self::read().as_deref() != Some(self.original.as_str()) {
            let _ = std::fs::write(CTRL_ALT_DEL, &self.original);
        }
        let _ = self._lock.set_len(0);
    }
}

/// A pseudo-terminal the tour runs each chapter on, as a user's shell would
/// run it on theirs: stdin is its far end (stdout stays a pipe for the
/// probe's JSON). Raw, so that bytes typed into it with TIOCSTI wait in its
/// input queue for the tour to read, newline or not.
struct TourTerminal {
    _master: nix::pty::PtyMaster,
    pts: std::fs::File,
}

impl TourTerminal {
    fn open() -> Result<TourTerminal, Errno> {
        use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
        use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};
        let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)?;
        grantpt(&master)?;
        unlockpt(&master)?;
        let name = ptsname_r(&master)?;
        let pts = open(
            name.as_str(),
            OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        let mut settings = tcgetattr(&pts)?;
        cfmakeraw(&mut settings);
        tcsetattr(&pts, SetArg::TCSANOW, &settings)?;
        Ok(TourTerminal {
            _master: master,
            pts: std::fs::File::from(pts),
        })
    }

    /// Whatever waits in the terminal's input queue, read without blocking.
    fn typed_input(&self) -> String {
        let mut typed = Vec::new();
        let mut buffer = [0u8; 256];
        while readable_within(&self.pts, 0) {
            match nix::unistd::read(&self.pts, &mut buffer) {
                Ok(n) if n > 0 => typed.extend_from_slice(&buffer[..n]),
                _ => break,
            }
        }
        String::from_utf8_lossy(&typed).into_owned()
    }
}

/// name_to_handle_at(2) of `path`: the handle's type and bytes.
fn file_handle_of(path: &Path) -> Result<(i32, Vec<u8>), Errno> {
    use std::os::unix::ffi::OsStrExt;
    const MAX_HANDLE_SZ: usize = 128;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    // struct file_handle: handle_bytes (in: room, out: used), handle_type, bytes.
    let mut buffer = vec![0u8; 8 + MAX_HANDLE_SZ];
    buffer[..4].copy_from_slice(&(MAX_HANDLE_SZ as u32).to_ne_bytes());
    let mut mount_id: libc::c_int = 0;
    // SAFETY: the buffer has room for MAX_HANDLE_SZ bytes after its header.
    let result = unsafe {
        libc::name_to_handle_at(
            libc::AT_FDCWD,
            c_path.as_ptr(),
            buffer.as_mut_ptr().cast(),
            &mut mount_id,
            0,
        )
    };
    if result < 0 {
        return Err(Errno::last());
    }
    let used = u32::from_ne_bytes(buffer[..4].try_into().unwrap()) as usize;
    let handle_type = i32::from_ne_bytes(buffer[4..8].try_into().unwrap());
    Ok((handle_type, buffer[8..8 + used.min(MAX_HANDLE_SZ)].to_vec()))
}

/// A harmless host process that waits for SIGUSR1 and, when it comes,
/// writes one byte to a pipe the tour reads.
fn spawn_signal_target() -> Option<(Pid, OwnedFd)> {
    let (reader, writer) = pipe2(OFlag::O_CLOEXEC).ok()?;
    let mut usr1 = SigSet::empty();
    usr1.add(Signal::SIGUSR1);
    // SAFETY: the tour is single-threaded here; the child only waits for
    // a signal, writes a byte and leaves with _exit.
    match unsafe { fork() }.ok()? {
        ForkResult::Child => {
            let _ = usr1.thread_block();
            if usr1.wait().is_ok() {
                let _ = nix::unistd::write(&writer, b"!");
            }
            // SAFETY: leave without running the parent's exit handlers.
            unsafe { libc::_exit(0) }
        }
        ForkResult::Parent { child } => Some((child, reader)),
    }
}

fn readable_within(fd: impl std::os::fd::AsFd, millis: u16) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    matches!(poll(&mut fds, PollTimeout::from(millis)), Ok(n) if n > 0)
}

/// Find the tmpfs the probe mounted (by its source name) in our mount
/// table; unmount it and remove its directory. Returns where it was.
fn remove_tagged_mount(tag: &str) -> Option<PathBuf> {
    let mounts = crate::hostinfo::read_mountinfo().ok()?;
    let path = mounts.into_iter().find(|m| m.source == tag)?.mount_point;
    let _ = umount2(&path, MntFlags::MNT_DETACH);
    let _ = std::fs::remove_dir(&path);
    Some(path)
}

/// What the host side saw during one probe run.
#[derive(Debug, Default)]
pub struct HostObservations {
    pub secret: String,
    pub signal_received: bool,
    pub hostname_changed_to: Option<String>,
    pub mount_seen: Option<PathBuf>,
    pub connection_accepted: bool,
    pub service_reached: bool,
    /// The probe's file appeared in the rootfs on disk.
    pub rootfs_changed: bool,
    /// What the probe was told to type, and what arrived as input on the
    /// tour's terminal while the chapter ran.
    pub tty_marker: Option<String>,
    pub typed_on_terminal: String,
    /// The datagram the probe was told to forge, and every datagram that
    /// reached the host's UDP port: (source, payload).
    pub forged: Option<ForgedDatagram>,
    pub datagrams: Vec<(SocketAddr, String)>,
    /// The neighbour the host kept entries for, and where each entry
    /// points after the probe, by device.
    pub arp_victim: Option<Ipv4Addr>,
    pub neighbour_entries: Vec<(String, Option<String>)>,
    /// What the server on the other bridge reported.
    pub other_bridge: Option<ServerReport>,
    /// The description of the key the host added to its keyring.
    pub host_key: Option<String>,
    /// kernel.ctrl-alt-del as the tour set it, and as it was after the probe.
    pub ctrl_alt_del: Option<(String, String)>,
    /// Bait the host could not plant, and why (the check is N/A).
    pub unplanted: Vec<(&'static str, String)>,
}

/// The final verdicts: the probe's claims, confirmed or overruled by what
/// the host saw. Checks whose effect only the host can see are decided by
/// the host; a LEAKS that should carry the secret and does not is marked
/// N/A with the reason, which fails any test that expects a verdict.
pub fn judge(findings: Vec<Finding>, host: &HostObservations) -> Vec<Finding> {
    findings
        .into_iter()
        .map(|finding| judge_one(finding, host))
        .collect()
}

fn judge_one(mut finding: Finding, host: &HostObservations) -> Finding {
    if let Some((_, why)) = host.unplanted.iter().find(|(id, _)| *id == finding.check) {
        finding.verdict = Verdict::NotApplicable;
        finding.evidence = format!("the host could not plant the bait: {why}");
        return finding;
    }
    let decided_by_host = |seen: bool, leak: String, isolated: &str| {
        if seen {
            (Verdict::Leaks, leak)
        } else {
            (Verdict::Isolated, isolated.to_string())
        }
    };
    let (verdict, evidence) = match finding.check.as_str() {
        "pid.signal-host" => decided_by_host(
            host.signal_received,
            "the host's process received SIGUSR1".into(),
            &format!("the host's process got no signal ({})", finding.evidence),
        ),
        "uts.hostname" => decided_by_host(
            host.hostname_changed_to.is_some(),
            format!(
                "the host's hostname became {}",
                host.hostname_changed_to.clone().unwrap_or_default()
            ),
            &format!("the host's hostname did not change ({})", finding.evidence),
        ),
        "mnt.leak" => decided_by_host(
            host.mount_seen.is_some(),
            format!(
                "the host's mount table gained {}",
                host.mount_seen
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            ),
            &format!(
                "the host's mount table did not change ({})",
                finding.evidence
            ),
        ),
        "fs.rootfs-write" => decided_by_host(
            host.rootfs_changed,
            "the probe's file is in the rootfs on disk, for every later container to find".into(),
            &format!("nothing new in the rootfs on disk ({})", finding.evidence),
        ),
        "net.host-services" => decided_by_host(
            host.service_reached,
            "a host service on 0.0.0.0 accepted a connection on a host address".into(),
            &format!(
                "no connection reached the host's service ({})",
                finding.evidence
            ),
        ),
        "user.shared-range" => shared_range_verdict(&finding),
        "sys.proc-keys" => match &host.host_key {
            Some(description) => decided_by_host(
                finding
                    .observed
                    .as_deref()
                    .is_some_and(|seen| seen.lines().any(|d| d == description)),
                format!("/proc/keys showed the host's key {description}, in root's keyring"),
                &format!(
                    "the host's key is not among those /proc/keys shows ({})",
                    finding.evidence
                ),
            ),
            None => (finding.verdict, finding.evidence.clone()),
        },
        "sys.reboot" => match &host.ctrl_alt_del {
            Some((before, after)) => decided_by_host(
                before != after,
                format!(
                    "the machine's kernel.ctrl-alt-del went from {before} to {after}: reboot(2) reached the host"
                ),
                &format!(
                    "the machine's kernel.ctrl-alt-del stayed {before} ({})",
                    finding.evidence
                ),
            ),
            None => (finding.verdict, finding.evidence.clone()),
        },
        "net.spoof-source" => match &host.forged {
            Some(forged) => forged_verdict(forged, &host.datagrams, &finding.evidence),
            None => (finding.verdict, finding.evidence.clone()),
        },
        "net.arp-spoof" => match host.arp_victim {
            Some(victim) => neighbour_verdict(victim, &host.neighbour_entries, &finding.evidence),
            None => (finding.verdict, finding.evidence.clone()),
        },
        "net.cross-bridge" => match &host.other_bridge {
            Some(report) => cross_bridge_verdict(report, &finding.evidence),
            None => (finding.verdict, finding.evidence.clone()),
        },
        "tty.inject" => {
            let marker = host.tty_marker.as_deref().unwrap_or("\u{0}");
            decided_by_host(
                host.typed_on_terminal.contains(marker),
                format!(
                    "the runtime's terminal received {:?} as if typed: a shell there would run it",
                    host.typed_on_terminal
                ),
                &format!(
                    "nothing reached the runtime's terminal (probe: {})",
                    finding.evidence
                ),
            )
        }
        "net.loopback" => decided_by_host(
            host.connection_accepted,
            "the host's 127.0.0.1 listener accepted a connection".into(),
            &format!(
                "no connection reached the host's listener ({})",
                finding.evidence
            ),
        ),
        "fs.host-path" | "fs.chroot-breakout" | "fs.inherited-fd" | "ipc.sysv-shm"
        | "ipc.posix-mq" | "dev.block-read" | "fs.open-by-handle" | "dev.rootfs-node"
        | "pid.environment" | "fs.reopen-stdio"
            if finding.verdict == Verdict::Leaks =>
        {
            confirm(
                &finding,
                finding
                    .observed
                    .as_deref()
                    .is_some_and(|seen| seen.trim() == host.secret),
            )
        }
        _ => (finding.verdict, finding.evidence.clone()),
    };
    finding.verdict = verdict;
    finding.evidence = evidence;
    finding.observed = None;
    finding
}

/// The host's ids the container's maps (the probe's `observed`: uid_map,
/// a `--` line, gid_map) share with a host user other than root: a
/// subordinate range in /etc/subuid or /etc/subgid, or an account in
/// /etc/passwd or /etc/group. Such a user can signal, trace and own what
/// the container's processes and files are (user_namespaces(7)).
fn shared_range_verdict(finding: &Finding) -> (Verdict, String) {
    let Some(observed) = finding.observed.as_deref() else {
        return (finding.verdict, finding.evidence.clone());
    };
    let read = |path: &str| {
        (
            path.to_string(),
            std::fs::read_to_string(path).unwrap_or_default(),
        )
    };
    shared_range_of(
        observed,
        [read("/etc/subuid"), read("/etc/passwd")],
        [read("/etc/subgid"), read("/etc/group")],
    )
}

/// `shared_range_verdict` over the files' (path, text): subordinate ranges
/// first, then accounts.
fn shared_range_of(
    observed: &str,
    uid_files: [(String, String); 2],
    gid_files: [(String, String); 2],
) -> (Verdict, String) {
    let (uid_map, gid_map) = observed.split_once("--\n").unwrap_or((observed, ""));
    let owners = |[(subordinate, ranges), (accounts, entries)]: &[(String, String); 2]| {
        let mut owners: Vec<(String, u64, u64)> =
            crate::runtime::userns::subordinate_ranges(ranges)
                .into_iter()
                .map(|r| {
                    let who = format!(
                        "{} ({}:{}:{} in {subordinate})",
                        r.owner, r.owner, r.start, r.count
                    );
                    (
                        who,
                        u64::from(r.start),
                        u64::from(r.start) + u64::from(r.count),
                    )
                })
                .collect();
        for line in entries.lines() {
            let fields: Vec<&str> = line.split(':').collect();
            if let Some(id) = fields
                .get(2)
                .and_then(|id| id.parse::<u64>().ok())
                .filter(|id| *id != 0)
            {
                owners.push((format!("{} (id {id} in {accounts})", fields[0]), id, id + 1));
            }
        }
        owners
    };
    let shared = |map: &str, owners: &[(String, u64, u64)]| -> Option<String> {
        map.lines().find_map(|line| {
            let fields: Vec<u64> = line
                .split_whitespace()
                .filter_map(|f| f.parse().ok())
                .collect();
            let [_, outside, count] = fields[..] else {
                return None;
            };
            owners
                .iter()
                .find(|(_, start, end)| outside < *end && *start < outside + count)
                .map(|(who, _, _)| {
                    format!(
                        "host ids {outside}-{} include those of {who}",
                        outside + count - 1
                    )
                })
        })
    };
    match shared(uid_map, &owners(&uid_files)).or_else(|| shared(gid_map, &owners(&gid_files))) {
        Some(why) => (Verdict::Leaks, why),
        None => (
            Verdict::Isolated,
            format!(
                "no host user owns any of its ids (uid_map: {})",
                uid_map.trim().replace('\n', ", ")
            ),
        ),
    }
}

/// net.spoof-source: LEAKS when the host received the probe's marker from
/// the forged source; the marker from another source means something on
/// the way rewrote the lie.
fn forged_verdict(
    forged: &ForgedDatagram,
    datagrams: &[(SocketAddr, String)],
    probe: &str,
) -> (Verdict, String) {
    let ours: Vec<&SocketAddr> = datagrams
        .iter()
        .filter(|(_, payload)| *payload == forged.marker)
        .map(|(from, _)| from)
        .collect();
    if ours.iter().any(|from| from.ip() == forged.from) {
        (
            Verdict::Leaks,
            format!(
                "the host's UDP port {} received the probe's datagram from {}, an address that is not the probe's",
                forged.to.port(),
                forged.from
            ),
        )
    } else if let Some(from) = ours.first() {
        (
            Verdict::Isolated,
            format!(
                "the probe's datagram arrived from {from}, not from the forged {}",
                forged.from
            ),
        )
    } else {
        (
            Verdict::Isolated,
            format!(
                "no datagram from {} reached the host (probe: {probe})",
                forged.from
            ),
        )
    }
}

/// net.arp-spoof: LEAKS when one of the host's entries for the victim
/// points at another MAC than the one the host gave it.
fn neighbour_verdict(
    victim: Ipv4Addr,
    entries: &[(String, Option<String>)],
    probe: &str,
) -> (Verdict, String) {
    let planted = crate::runtime::net::mac_for(victim);
    if let Some((device, Some(mac))) = entries
        .iter()
        .find(|(_, mac)| mac.as_deref().is_some_and(|mac| mac != planted))
    {
        return (
            Verdict::Leaks,
            format!(
                "the host's entry for {victim} on {device} now says {mac}, not {planted}: the host sends the neighbour's traffic there"
            ),
        );
    }
    if let Some((device, None)) = entries.iter().find(|(_, mac)| mac.is_none()) {
        return (
            Verdict::NotApplicable,
            format!("the host's entry for {victim} on {device} is gone: nothing to tell by"),
        );
    }
    if entries.is_empty() {
        return (
            Verdict::NotApplicable,
            "the host kept no neighbour entry".into(),
        );
    }
    let devices: Vec<&str> = entries.iter().map(|(device, _)| device.as_str()).collect();
    (
        Verdict::Isolated,
        format!(
            "the host's entries for {victim} on {} still say {planted} (probe: {probe})",
            devices.join(", ")
        ),
    )
}

/// net.cross-bridge: LEAKS when the server greeted more clients than the
/// tour's own connections; N/A when it ended early without doing so (it
/// was not there for the probe to reach).
fn cross_bridge_verdict(report: &ServerReport, probe: &str) -> (Verdict, String) {
    if report.greeted > report.tour_connections {
        (
            Verdict::Leaks,
            format!(
                "the server at {} on another lab bridge greeted {} clients, the host's own check {}",
                report.address, report.greeted, report.tour_connections
            ),
        )
    } else if report.ended_on_its_own {
        (
            Verdict::NotApplicable,
            format!(
                "the server at {} ended before the probe was done (greeted {})",
                report.address, report.greeted
            ),
        )
    } else {
        (
            Verdict::Isolated,
            format!(
                "the server at {} on another lab bridge greeted only the host's own check (probe: {probe})",
                report.address
            ),
        )
    }
}

fn confirm(finding: &Finding, matches: bool) -> (Verdict, String) {
    if matches {
        (
            Verdict::Leaks,
            format!("{} (the host confirms the secret)", finding.evidence),
        )
    } else {
        (
            Verdict::NotApplicable,
            format!(
                "unconfirmed: the probe says '{}' but what it read is not the host's secret",
                finding.evidence
            ),
        )
    }
}

/// Run the probe in `chapter` and judge the result.
pub fn run_chapter(chapter: &Chapter, rootfs: &Path) -> Result<Column, LabError> {
    let binary = crate::rootfs::sibling(chapter.binary);
    let mut planted = HostBait::plant(chapter, rootfs)?;
    let bait_json = serde_json::to_string(&planted.bait).expect("bait serialises");
    let budgets = match chapter.takes_budgets {
        true => vec![
            "--memory".to_string(),
            format!("{}M", MEMORY_BUDGET_BYTES >> 20),
            "--pids".into(),
            PIDS_BUDGET.to_string(),
            "--cpus".into(),
            CPU_BUDGET.to_string(),
        ],
        false => Vec::new(),
    };
    let probe_flags = ["--json", "--bait", bait_json.as_str()];
    // stdin is the tour's terminal (tty.inject).
    let terminal = match &planted.terminal {
        Some(terminal) => Some(
            terminal
                .pts
                .try_clone()
                .map_err(|e| LabError::io("dup", "the tour's terminal", e))?,
        ),
        None => None,
    };
    let secret_variable = planted
        .bait
        .env_name
        .clone()
        .map(|name| (name, planted.secret.clone()));
    // stderr is a host log file, opened for appending only, that begins
    // with the secret: the file a service manager or `2>>log` would pass.
    let log = planted.dir.join("stderr.log");
    std::fs::write(&log, format!("{}\n", planted.secret))
        .map_err(|e| LabError::io("write", log.display(), e))?;
    let log_file = std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .map_err(|e| LabError::io("open", log.display(), e))?;
    let stdio = crate::lab::engine::TourStdio {
        stdin: terminal,
        stderr: log_file,
        env: secret_variable,
    };
    // With exec, the container runs before the probe and after it: it is
    // removed whatever happens to the probe.
    let mut _running = None;
    let command = runtime_command(chapter, rootfs, &budgets, &planted, &mut _running)?;
    let (stdout, exit_code) = match command {
        Some(command) => run_runtime(command, &probe_flags, stdio)?,
        None => {
            let args = std::iter::once(PROBE.to_string())
                .chain(probe_flags.iter().map(|flag| flag.to_string()))
                .collect();
            let run =
                crate::lab::engine::run_in_bundle(&binary, &planted.dir, rootfs, args, stdio)?;
            (run.stdout, run.exit_code)
        }
    };
    // The runtime has exited: the leaked fd has done its job.
    planted.dir_fd.take();
    let stderr = std::fs::read_to_string(&log).unwrap_or_default();
    let stderr = stderr
        .strip_prefix(&format!("{}\n", planted.secret))
        .unwrap_or(&stderr);
    let findings: Vec<Finding> =
        serde_json::from_slice(&stdout).map_err(|error| LabError::Probe {
            chapter: chapter.binary.to_string(),
            message: format!(
                "its output is not the probe's JSON ({error}); exit status {exit_code:?}; stderr: {}",
                stderr.trim()
            ),
        })?;
    let host = planted.observe(&findings);
    Ok(Column {
        chapter: chapter.number.to_string(),
        binary: chapter.binary.to_string(),
        findings: judge(findings, &host),
    })
}

/// The probe, where the tour's rootfs has it.
const PROBE: &str = "/usr/local/bin/lab-probe";

/// The command line of the chapter's runtime, up to the probe's flags;
/// `None` for a chapter the tour runs as an engine (`Start::Bundle`).
/// With `Start::Exec`, the container to exec into is started here and
/// kept in `running`, which removes it when dropped.
fn runtime_command(
    chapter: &Chapter,
    rootfs: &Path,
    budgets: &[String],
    planted: &HostBait,
    running: &mut Option<RunningContainer>,
) -> Result<Option<Command>, LabError> {
    let mut command = Command::new(crate::rootfs::sibling(chapter.binary));
    match chapter.start {
        Start::CommandLine if chapter.takes_rootfs => {
            command.args(budgets).arg(rootfs).arg(PROBE);
        }
        Start::CommandLine => {
            command.arg(crate::rootfs::sibling("lab-probe"));
        }
        // --rm: the tour leaves no container behind in the state directory.
        Start::Run if chapter.from_image => {
            let store = planted.dir.join("image-store");
            let image = import_tour_image(chapter, rootfs, &store)?;
            command
                .env(crate::image::store::STORAGE_ENV, &store)
                .args(["run", "--rm"])
                .args(chapter.run_flags)
                .args(budgets)
                .arg(image)
                .arg(PROBE);
        }
        Start::Run => {
            command
                .args(["run", "--rm"])
                .args(budgets)
                .arg(rootfs)
                .arg(PROBE);
        }
        Start::Exec => {
            let container = RunningContainer::start(chapter, budgets, rootfs, planted)?;
            command.arg("exec").arg(&container.name).arg(PROBE);
            *running = Some(container);
        }
        Start::Bundle => return Ok(None),
    }
    Ok(Some(command))
}

/// Run a chapter's runtime with the tour's stdio, the probe's flags last:
/// what the probe printed, and the runtime's exit code.
fn run_runtime(
    mut command: Command,
    probe_flags: &[&str],
    stdio: crate::lab::engine::TourStdio,
) -> Result<(Vec<u8>, Option<i32>), LabError> {
    command.args(probe_flags);
    if let Some(pts) = stdio.stdin {
        command.stdin(Stdio::from(pts));
    }
    if let Some((name, value)) = &stdio.env {
        command.env(name, value);
    }
    command.stderr(Stdio::from(stdio.stderr));
    let output = command
        .output()
        .map_err(|e| LabError::io("execve", command.get_program().to_string_lossy(), e))?;
    Ok((output.stdout, output.status.code()))
}

/// The tour's rootfs, with what the tour planted in it, imported as an
/// image into a store of the tour's own (inside its bait directory, gone
/// with it): ch08's container runs the same files as ch07's, as layers.
fn import_tour_image(chapter: &Chapter, rootfs: &Path, store: &Path) -> Result<String, LabError> {
    let binary = crate::rootfs::sibling(chapter.binary);
    let image = format!("lab-tour/ch{}:{}", chapter.number, std::process::id());
    let output = Command::new(&binary)
        .env(crate::image::store::STORAGE_ENV, store)
        .arg("import")
        .arg(rootfs)
        .arg(&image)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| LabError::io("execve", binary.display(), e))?;
    match output.status.success() {
        true => Ok(image),
        false => Err(LabError::Probe {
            chapter: chapter.binary.to_string(),
            message: format!(
                "import of {} failed: {}",
                rootfs.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        }),
    }
}

/// A container `run -d` started for the probe to exec into, removed (rm
/// -f) when dropped.
struct RunningContainer {
    binary: PathBuf,
    name: String,
}

impl RunningContainer {
    fn start(
        chapter: &Chapter,
        budgets: &[String],
        rootfs: &Path,
        planted: &HostBait,
    ) -> Result<RunningContainer, LabError> {
        let binary = crate::rootfs::sibling(chapter.binary);
        let name = format!("tour-{}-ch{}", std::process::id(), chapter.number);
        let mut command = Command::new(&binary);
        command
            .args(["run", "-d", "--name", &name])
            .args(budgets)
            .arg(rootfs)
            .args(["/bin/sleep", "86400"])
            .stdin(Stdio::null());
        // The monitor holds the runtime's environment, secret included.
        if let Some(variable) = &planted.bait.env_name {
            command.env(variable, &planted.secret);
        }
        let output = command
            .output()
            .map_err(|e| LabError::io("execve", binary.display(), e))?;
        if !output.status.success() {
            return Err(LabError::Probe {
                chapter: chapter.binary.to_string(),
                message: format!(
                    "run -d did not start the container to exec into: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                ),
            });
        }
        Ok(RunningContainer { binary, name })
    }
}

impl Drop for RunningContainer {
    fn drop(&mut self) {
        let _ = Command::new(&self.binary)
            .args(["rm", "-f", &self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The chapters to run: those selected (all when `selected` is empty)
/// whose binary exists next to this one.
pub fn chapters(selected: &[String]) -> Result<Vec<&'static Chapter>, LabError> {
    for wanted in selected {
        if !CHAPTERS.iter().any(|c| c.number == wanted) {
            return Err(LabError::Usage {
                message: format!(
                    "no chapter {wanted}: the tour knows {}",
                    CHAPTERS
                        .iter()
                        .map(|c| c.number)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
    }
    Ok(CHAPTERS
        .iter()
        .filter(|c| selected.is_empty() || selected.iter().any(|s| s == c.number))
        .filter(|c| crate::rootfs::sibling(c.binary).is_file())
        .collect())
}

/// Run the whole tour: stand-in host, then every chapter in order.
pub fn tour(
    chapters: &[&Chapter],
    rootfs: &Path,
    progress: impl Fn(&str),
) -> Result<Matrix, LabError> {
    let _stand_in = enter_stand_in_host()?;
    let mut columns = Vec::new();
    let result = chapters.iter().try_for_each(|chapter| {
        progress(&format!("probing {} ...", chapter.binary));
        columns.push(run_chapter(chapter, rootfs)?);
        Ok(())
    });
    // The stand-in's bridges die with its namespace; their state with them.
    let _ = std::fs::remove_dir_all(crate::runtime::net::state_root());
    result.map(|()| Matrix { columns })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(id: &str, verdict: Verdict, observed: Option<&str>) -> Finding {
        let mut finding = Finding::new(id, verdict, "probe says so");
        finding.observed = observed.map(str::to_string);
        finding
    }

    fn host() -> HostObservations {
        HostObservations {
            secret: "s3cret".into(),
            ..Default::default()
        }
    }

    #[test]
    fn host_decides_the_hostname_whatever_the_probe_says() {
        let mut seen = host();
        seen.hostname_changed_to = Some("probe-1".into());
        let judged = judge(vec![claim("uts.hostname", Verdict::Isolated, None)], &seen);
        assert_eq!(judged[0].verdict, Verdict::Leaks);
        let judged = judge(vec![claim("uts.hostname", Verdict::Leaks, None)], &host());
        assert_eq!(judged[0].verdict, Verdict::Isolated);
    }

    #[test]
    fn a_leak_must_carry_the_secret() {
        let judged = judge(
            vec![claim("fs.host-path", Verdict::Leaks, Some("s3cret\n"))],
            &host(),
        );
        assert_eq!(judged[0].verdict, Verdict::Leaks);
        let judged = judge(
            vec![claim("fs.host-path", Verdict::Leaks, Some("guess"))],
            &host(),
        );
        assert_eq!(judged[0].verdict, Verdict::NotApplicable);
        assert!(judged[0].evidence.starts_with("unconfirmed"));
    }

    #[test]
    fn bait_the_host_could_not_plant_makes_the_check_na() {
        let mut seen = host();
        seen.unplanted
            .push(("dev.block-read", "no loop device".into()));
        let judged = judge(
            vec![claim("dev.block-read", Verdict::Isolated, None)],
            &seen,
        );
        assert_eq!(judged[0].verdict, Verdict::NotApplicable);
        assert!(judged[0].evidence.contains("no loop device"));
    }

    #[test]
    fn shared_ranges_are_found_in_subordinate_files_and_accounts() {
        let files = |ranges: &str, accounts: &str| {
            [
                ("subuid".to_string(), ranges.to_string()),
                ("passwd".to_string(), accounts.to_string()),
            ]
        };
        let none = || files("", "");
        let debian_first_user = files("alice:100000:65536\n", "root:x:0:0::/root:/bin/sh\n");
        let (verdict, why) = shared_range_of(
            "0 100000 65536\n--\n0 0 1\n",
            debian_first_user.clone(),
            none(),
        );
        assert_eq!(verdict, Verdict::Leaks);
        assert!(why.contains("alice"), "{why}");
        let (verdict, _) = shared_range_of(
            "0 1879048192 65536\n--\n0 1879048192 65536\n",
            debian_first_user,
            none(),
        );
        assert_eq!(verdict, Verdict::Isolated);
        // Root alone (identity for uid 0 only) is user.host-root's business.
        let accounts = files(
            "",
            "root:x:0:0::/root:/bin/sh\nbob:x:1000:1000::/home/bob:/bin/sh\n",
        );
        assert_eq!(
            shared_range_of("0 0 1\n--\n", accounts.clone(), none()).0,
            Verdict::Isolated
        );
        assert_eq!(
            shared_range_of("0 0 4294967295\n--\n", accounts, none()).0,
            Verdict::Leaks
        );
    }

    #[test]
    fn a_forged_source_leaks_only_when_the_host_got_the_marker_from_it() {
        let forged = ForgedDatagram {
            to: "10.254.254.1:5000".parse().unwrap(),
            from: FORGED_SOURCE,
            marker: "lab-forged-1".into(),
        };
        let mut seen = host();
        seen.forged = Some(forged.clone());
        let from = |address: &str| address.parse::<SocketAddr>().unwrap();
        // The probe's word counts for nothing either way.
        let judged = judge(vec![claim("net.spoof-source", Verdict::Leaks, None)], &seen);
        assert_eq!(judged[0].verdict, Verdict::Isolated);
        seen.datagrams = vec![
            (from("10.88.0.2:40000"), "lab-forged-1".into()),
            (from("10.88.0.250:40000"), "someone else".into()),
        ];
        let (verdict, why) = forged_verdict(&forged, &seen.datagrams, "");
        assert_eq!(verdict, Verdict::Isolated, "rewritten on the way: {why}");
        seen.datagrams
            .push((from("10.88.0.250:40000"), "lab-forged-1".into()));
        let judged = judge(
            vec![claim("net.spoof-source", Verdict::Isolated, None)],
            &seen,
        );
        assert_eq!(judged[0].verdict, Verdict::Leaks, "{}", judged[0].evidence);
    }

    #[test]
    fn a_neighbour_entry_that_moved_is_a_leak() {
        let planted = crate::runtime::net::mac_for(ARP_VICTIM);
        let entries = |macs: &[Option<&str>]| -> Vec<(String, Option<String>)> {
            macs.iter()
                .enumerate()
                .map(|(i, mac)| (format!("dev{i}"), mac.map(str::to_string)))
                .collect()
        };
        let verdict = |macs: &[Option<&str>]| neighbour_verdict(ARP_VICTIM, &entries(macs), "").0;
        assert_eq!(
            verdict(&[Some(&planted), Some(&planted)]),
            Verdict::Isolated
        );
        assert_eq!(
            verdict(&[Some(&planted), Some("02:42:0a:58:00:02")]),
            Verdict::Leaks
        );
        assert_eq!(verdict(&[Some(&planted), None]), Verdict::NotApplicable);
        assert_eq!(verdict(&[]), Verdict::NotApplicable);
        let mut seen = host();
        seen.arp_victim = Some(ARP_VICTIM);
        seen.neighbour_entries = entries(&[Some(&planted)]);
        let judged = judge(vec![claim("net.arp-spoof", Verdict::Leaks, None)], &seen);
        assert_eq!(judged[0].verdict, Verdict::Isolated);
    }

    #[test]
    fn neighbour_entries_are_read_from_ip_neigh() {
        assert_eq!(
            neighbour_lladdr("10.88.0.251 lladdr 02:42:0A:58:00:FB STALE\n").as_deref(),
            Some("02:42:0a:58:00:fb")
        );
        assert_eq!(neighbour_lladdr("10.88.0.251  FAILED\n"), None);
        assert_eq!(neighbour_lladdr(""), None);
    }

    #[test]
    fn the_other_bridge_leaks_when_its_server_greeted_more_than_the_host() {
        let report = |greeted, ended_on_its_own| ServerReport {
            address: "10.88.1.2:8080".parse().unwrap(),
            greeted,
            tour_connections: 1,
            ended_on_its_own,
        };
        let verdict = |r: ServerReport| cross_bridge_verdict(&r, "").0;
        assert_eq!(verdict(report(2, true)), Verdict::Leaks);
        assert_eq!(verdict(report(2, false)), Verdict::Leaks);
        assert_eq!(verdict(report(1, false)), Verdict::Isolated);
        // Gone before the probe could try (its own deadline): no verdict.
        assert_eq!(verdict(report(1, true)), Verdict::NotApplicable);
        let mut seen = host();
        seen.other_bridge = Some(report(1, false));
        let judged = judge(vec![claim("net.cross-bridge", Verdict::Leaks, None)], &seen);
        assert_eq!(judged[0].verdict, Verdict::Isolated);
    }

    #[test]
    fn the_host_decides_keys_and_ctrl_alt_del() {
        let mut seen = host();
        seen.host_key = Some("lab-tour-key-1".into());
        seen.ctrl_alt_del = Some(("1".into(), "1".into()));
        let keys = |observed| claim("sys.proc-keys", Verdict::Leaks, Some(observed));
        let judged = judge(vec![keys(".user_reg\nlab-tour-key-1")], &seen);
        assert_eq!(judged[0].verdict, Verdict::Leaks, "{}", judged[0].evidence);
        // A key of another tour, or a prefix of ours, is not ours.
        let judged = judge(vec![keys("lab-tour-key-12\n_uid.0")], &seen);
        assert_eq!(judged[0].verdict, Verdict::Isolated);
        let judged = judge(vec![claim("sys.reboot", Verdict::Leaks, None)], &seen);
        assert_eq!(judged[0].verdict, Verdict::Isolated);
        seen.ctrl_alt_del = Some(("1".into(), "0".into()));
        let judged = judge(vec![claim("sys.reboot", Verdict::Isolated, None)], &seen);
        assert_eq!(judged[0].verdict, Verdict::Leaks, "{}", judged[0].evidence);
    }

    #[test]
    fn probe_only_checks_pass_through() {
        let judged = judge(vec![claim("cap.sys-admin", Verdict::Leaks, None)], &host());
        assert_eq!(judged[0].verdict, Verdict::Leaks);
        assert_eq!(judged[0].evidence, "probe says so");
    }

    #[test]
    fn unknown_chapter_is_a_usage_error() {
        assert!(chapters(&["42".into()]).is_err());
    }
}
