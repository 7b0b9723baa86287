//! Networking: a network namespace per container, wired to the host by a
//! veth pair and a bridge, with NAT out and published ports in.
//!
//! Links, addresses and routes go to the kernel over rtnetlink (the
//! `netlink` module), with no program run: about 1.4 ms for the whole
//! wiring where ten ip(8) processes took 41 ms. The narrator still shows
//! each step as the `ip ...` line an administrator would type, so a student
//! can retype it. The firewall rules (the bridge's NAT and guards, each
//! container's port guard and published ports) go over nf_tables netlink
//! too, one atomic batch per table (the `nftables` module), announced as
//! the `nft -f` input they stand for. The runtime runs no program at all.
//!
//! Host-side state lives under /run/container-lab/net/NETNS/BRIDGE/, where
//! NETNS is the inode of the runtime's network namespace (so throwaway
//! namespaces in tests never meet): a lock, one lease file per address in
//! use, one file per published host port, each holding the runtime's pid.

use crate::error::LabError;
use crate::narrator::{Narrator, Step};
use crate::runtime::netlink::{self, Change};
use crate::runtime::nftables::{self, Chain, Family, HookPoint, Nftnl, Priority, Rule, Table};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
use std::fmt;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Bring interface `name` up, as `ip link set NAME up` does, with the
/// SIOCGIFFLAGS/SIOCSIFFLAGS ioctls on any socket (netdevice(7)).
pub fn set_link_up(name: &str) -> nix::Result<()> {
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    // SAFETY: ifreq is plain old data; zeroed is a valid value.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    let bytes = name.as_bytes();
    if bytes.len() >= request.ifr_name.len() {
        return Err(nix::errno::Errno::ENAMETOOLONG);
    }
    for (slot, byte) in request.ifr_name.iter_mut().zip(bytes) {
        *slot = *byte as libc::c_char;
    }
    // SAFETY: both ioctls read and write the ifreq we own; the flags union
    // member is the one SIOC[GS]IFFLAGS use.
    unsafe {
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut request) < 0 {
            return Err(nix::errno::Errno::last());
        }
        request.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &request) < 0 {
            return Err(nix::errno::Errno::last());
        }
    }
    Ok(())
}

/// `--net none`: the new namespace's loopback, brought up by the child
/// itself (a new network namespace starts with `lo` down).
pub fn bring_up_loopback(narrator: &Narrator) -> Result<(), LabError> {
    let why = "a new network namespace has only a loopback, and it starts down";
    narrator.run(
        Step {
            syscall: "ioctl",
            args: "SIOCSIFFLAGS, \"lo\" IFF_UP",
            why,
            man: "netdevice(7)",
        },
        || set_link_up("lo"),
    )
}

/// `--net`: how much of the host's network the container gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum NetMode {
    /// Its own network namespace with only loopback, up.
    None,
    /// The host's own network stack, shared (no isolation at all).
    Host,
    /// Its own namespace, wired to a lab bridge with NAT and published ports.
    Bridge,
}

/// `--net` from ch05 on: ch04's modes, user-mode networking, and `auto`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum NetChoice {
    /// As root a bridge; without root pasta, or loopback only without it.
    Auto,
    /// Its own network namespace with only loopback, up.
    None,
    /// The host's own network stack, shared (no isolation at all).
    Host,
    /// Its own namespace, wired to a lab bridge with NAT and published ports.
    Bridge,
    /// Its own namespace, connected by pasta(1): no root needed.
    Pasta,
}

/// The network a run gets once `auto` is decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Network {
    None,
    Host,
    Bridge,
    Pasta,
}

/// `-p HOST_PORT:CONTAINER_PORT[/tcp]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortMapping {
    pub host: u16,
    pub container: u16,
}

impl FromStr for PortMapping {
    type Err = String;
    fn from_str(text: &str) -> Result<PortMapping, String> {
        let (ports, protocol) = text.split_once('/').unwrap_or((text, "tcp"));
        if protocol != "tcp" {
            return Err(format!(
                "{text}: only tcp ports can be published (got /{protocol})"
            ));
        }
        let (host, container) = ports
            .split_once(':')
            .ok_or_else(|| format!("{text}: expected HOST_PORT:CONTAINER_PORT, as in 8080:80"))?;
        let port = |value: &str, which: &str| match value.parse::<u16>() {
            Ok(0) | Err(_) => Err(format!(
                "{text}: {which} port {value:?} is not a number from 1 to 65535"
            )),
            Ok(port) => Ok(port),
        };
        Ok(PortMapping {
            host: port(host, "host")?,
            container: port(container, "container")?,
        })
    }
}

impl fmt::Display for PortMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}/tcp", self.host, self.container)
    }
}

/// The bridge and subnet a container gets when `--bridge` and `--subnet`
/// do not say (named here so the lab's instruments can find them too).
pub const DEFAULT_BRIDGE: &str = "labbr0";
pub const DEFAULT_SUBNET: &str = "10.88.0.0/24";

/// An IPv4 subnet such as `10.88.0.0/24`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subnet {
    pub network: Ipv4Addr,
    pub prefix: u8,
}

impl FromStr for Subnet {
    type Err = String;
    fn from_str(text: &str) -> Result<Subnet, String> {
        let (address, prefix) = text
            .split_once('/')
            .ok_or_else(|| format!("{text}: expected ADDRESS/PREFIX, as in 10.88.0.0/24"))?;
        let address: Ipv4Addr = address
            .parse()
            .map_err(|_| format!("{text}: {address} is not an IPv4 address"))?;
        let prefix: u8 = prefix
            .parse()
            .map_err(|_| format!("{text}: {prefix} is not a prefix length"))?;
        if !(16..=29).contains(&prefix) {
            return Err(format!("{text}: the prefix must be from /16 to /29"));
        }
        let subnet = Subnet {
            network: address,
            prefix,
        };
        if subnet.network_bits() != u32::from(address) {
            return Err(format!(
                "{text}: host bits are set; did you mean {}?",
                Subnet {
                    network: Ipv4Addr::from(subnet.network_bits()),
                    prefix
                }
            ));
        }
        Ok(subnet)
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl Subnet {
    fn mask(&self) -> u32 {
        u32::MAX << (32 - self.prefix)
    }

    fn network_bits(&self) -> u32 {
        u32::from(self.network) & self.mask()
    }

    /// The bridge's own address: the first in the subnet.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.network_bits() + 1)
    }

    /// Addresses for containers: after the gateway, before broadcast.
    pub fn container_addresses(&self) -> impl Iterator<Item = Ipv4Addr> {
        let first = self.network_bits() + 2;
        let broadcast = self.network_bits() | !self.mask();
        (first..broadcast).map(Ipv4Addr::from)
    }

    /// Whether the two address ranges share any address.
    pub fn overlaps(&self, network: Ipv4Addr, prefix: u8) -> bool {
        let shorter = self.prefix.min(prefix);
        let mask = if shorter == 0 {
            0
        } else {
            u32::MAX << (32 - shorter)
        };
        u32::from(self.network) & mask == u32::from(network) & mask
    }
}

/// The IPv4 routes of this network namespace as (device, network, prefix),
/// from /proc/net/route (its addresses are little-endian hex, proc(5)).
pub fn parse_routes(table: &str) -> Vec<(String, Ipv4Addr, u8)> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let hex = |field: &str| u32::from_str_radix(field, 16).ok().map(u32::from_be);
            let destination = hex(fields.get(1)?)?;
            let mask = hex(fields.get(7)?)?;
            Some((
                fields[0].to_string(),
                Ipv4Addr::from(destination),
                mask.count_ones() as u8,
            ))
        })
        .collect()
}

/// Load `table` in one transaction through `nftnl`, announced as the `nft
/// -f` input it stands for: `--explain` shows the whole ruleset, which
/// `nft -f` would load to the same effect.
fn load_table(
    narrator: &Narrator,
    nftnl: &Nftnl,
    table: &Table,
    why: &str,
) -> Result<(), LabError> {
    narrator.run_with_input(
        Step {
            syscall: "nft",
            args: "-f -",
            why,
            man: "nft(8)",
        },
        &table.text(),
        || nftnl.load(table),
    )
}

/// Where this network namespace's lab state lives.
pub fn state_root() -> PathBuf {
    use std::os::unix::fs::MetadataExt;
    let netns = std::fs::metadata("/proc/self/ns/net")
        .map(|m| m.ino())
        .unwrap_or(0);
    Path::new(crate::runtime::RUN_DIR)
        .join("net")
        .join(netns.to_string())
}

/// Whether process `pid` still runs.
pub fn is_running(pid: i32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

/// The pid a lease or port file holds.
fn owner(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// A lease or port claim whose runtime was killed may still have its DNAT
/// rules in place, pointing at the address or port we are about to reuse,
/// and its port guard: take them down first.
fn forget_dead_owner(nftnl: &Nftnl, claim: &Path) {
    if let Some(pid) = owner(claim).filter(|pid| !is_running(*pid)) {
        for family in CONTAINER_TABLE_FAMILIES {
            let _ = nftnl.delete_table(family, &container_table_name(pid as u32));
        }
        // And its cable: a container that outlived its runtime (its
        // command cleared the parent-death signal, as PID 1 under --no-init
        // can) would otherwise keep the address and, its guard gone, could
        // pose as the next container to get it.
        if let Ok(rtnl) = netlink::Rtnl::open() {
            let _ = rtnl.apply(&Change::DeleteLink {
                link: &host_veth_name(pid as u32),
            });
        }
    }
}

/// An exclusive lock on the bridge's state, held while it lives: leases and
/// port claims are read and written under it, so ten containers starting at
/// once get ten different addresses.
struct StateLock {
    _held: nix::fcntl::Flock<std::fs::File>,
}

impl StateLock {
    fn take(dir: &Path) -> Result<StateLock, LabError> {
        std::fs::create_dir_all(dir.join("leases"))
            .map_err(|e| LabError::io("mkdir", dir.display(), e))?;
        std::fs::create_dir_all(dir.join("ports"))
            .map_err(|e| LabError::io("mkdir", dir.display(), e))?;
        let path = dir.join("lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| LabError::io("open", path.display(), e))?;
        let lock = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive).map_err(
            |(_, errno)| LabError::StepFailed {
                syscall: "flock",
                target: path.display().to_string(),
                errno,
            },
        )?;
        Ok(StateLock { _held: lock })
    }
}

/// What a container asks of the bridge network.
pub struct BridgeRequest<'a> {
    pub bridge: &'a str,
    pub subnet: Subnet,
    pub ports: &'a [PortMapping],
    pub hostname: &'a str,
}

/// One container's place on the bridge: its address, its veth, its port
/// rules, its /etc files. Everything is taken down when it drops: after the
/// container ends, on an error, on Ctrl-C. The bridge itself stays for the
/// next container (`lab clean` removes it).
pub struct ContainerNetwork {
    pub bridge: String,
    pub subnet: Subnet,
    pub address: Ipv4Addr,
    pub ports: Vec<PortMapping>,
    state: PathBuf,
    files: PathBuf,
    host_veth: String,
    table: String,
    claimed: Vec<PathBuf>,
    /// Set once the peer is inside the container: from then on the kernel
    /// deletes the pair when the container's namespace goes.
    peer_moved: std::cell::Cell<bool>,
    /// Set once the port guard (the bridge-family table) is loaded.
    guarded: std::cell::Cell<bool>,
    /// From ch09: the host's own services closed to the container (see
    /// `host_guard`); set before `wire`.
    pub close_host_services: bool,
    /// One nf_tables socket for the container's whole life: closing one
    /// waits while the kernel frees rules deleted earlier (by the last
    /// container, say), so it is closed once, at the end, in the
    /// background (see `Nftnl::close_in_background`).
    nftnl: Nftnl,
}

/// Names the lab gives per-container things, from the runtime's pid.
pub fn host_veth_name(pid: u32) -> String {
    format!("labv{pid}")
}
pub fn container_table_name(pid: u32) -> String {
    format!("container-lab-c{pid}")
}
pub fn bridge_table_name(bridge: &str) -> String {
    format!("container-lab-{bridge}")
}
/// A container has a table in each of these nftables families, both named
/// `container_table_name`: its published ports (`ip`) and its port guard
/// (`bridge`).
pub const CONTAINER_TABLE_FAMILIES: [Family; 2] = [Family::Ip, Family::Bridge];

/// The device group (ip-link(8) `group`) every lab bridge is put in, so
/// that each bridge's rules can name all the others with one `oifgroup`
/// match, whatever `--bridge` called them. Group 0 is every device's
/// default; 427 is 0x1ab, "lab".
pub const LAB_BRIDGE_GROUP: u32 = 0x1ab;

/// The MAC address of a container's eth0, or of a bridge, made from its
/// IPv4 address as Docker makes its containers': the first byte 02 sets
/// the "locally administered" bit (IEEE 802: never a vendor's address), 42
/// follows, then the four bytes of the address. Known in advance, so the
/// port guard can name it.
pub fn mac_for(address: Ipv4Addr) -> String {
    let [a, b, c, d] = address.octets();
    format!("02:42:{a:02x}:{b:02x}:{c:02x}:{d:02x}")
}

/// [`mac_for`] as bytes.
fn mac_bytes(address: Ipv4Addr) -> [u8; 6] {
    let [a, b, c, d] = address.octets();
    [0x02, 0x42, a, b, c, d]
}

impl ContainerNetwork {
    // ANCHOR: prepare
    /// Before fork: check the request, make sure the bridge exists, take an
    /// address and the host ports, and write the container's /etc files.
    pub fn prepare(
        narrator: &Narrator,
        request: &BridgeRequest<'_>,
    ) -> Result<ContainerNetwork, LabError> {
        let pid = std::process::id();
        let state = state_root().join(request.bridge);
        let lock = StateLock::take(&state)?;
        let mut network = ContainerNetwork {
            bridge: request.bridge.to_string(),
            subnet: request.subnet,
            address: Ipv4Addr::UNSPECIFIED,
            ports: request.ports.to_vec(),
            files: state.join(format!("ctr-{pid}")),
            state,
            host_veth: host_veth_name(pid),
            table: container_table_name(pid),
            claimed: Vec::new(),
            peer_moved: std::cell::Cell::new(false),
            guarded: std::cell::Cell::new(false),
            close_host_services: false,
            nftnl: Nftnl::open()?,
        };
        // The container's own claims first: a port in use is refused before
        // the bridge is made.
        for port in request.ports {
            network.claim_port(port.host)?;
        }
        ensure_bridge(
            narrator,
            &network.nftnl,
            request.bridge,
            request.subnet,
            &network.state,
        )?;
        network.address = network.lease_address()?;
        drop(lock);
        network.write_etc_files(request.hostname)?;
        Ok(network)
    }
    // ANCHOR_END: prepare

    fn claim_port(&mut self, port: u16) -> Result<(), LabError> {
        let claim = self.state.join("ports").join(port.to_string());
        let taken_by_lab = owner(&claim).filter(|pid| is_running(*pid));
        let in_use =
            taken_by_lab.is_some() || std::net::TcpListener::bind(("0.0.0.0", port)).is_err();
        if in_use {
            return Err(LabError::Refused {
                message: format!("host port {port} is already in use"),
                hint: "choose another host port, or stop what listens on it (ss -ltnp shows who)"
                    .into(),
            });
        }
        forget_dead_owner(&self.nftnl, &claim);
        std::fs::write(&claim, std::process::id().to_string())
            .map_err(|e| LabError::io("write", claim.display(), e))?;
        self.claimed.push(claim);
        Ok(())
    }

    /// The first free address; a lease whose runtime died is free again.
    fn lease_address(&mut self) -> Result<Ipv4Addr, LabError> {
        for address in self.subnet.container_addresses() {
            let lease = self.state.join("leases").join(address.to_string());
            if owner(&lease).is_some_and(is_running) {
                continue;
            }
            forget_dead_owner(&self.nftnl, &lease);
            std::fs::write(&lease, std::process::id().to_string())
                .map_err(|e| LabError::io("write", lease.display(), e))?;
            self.claimed.push(lease);
            return Ok(address);
        }
        Err(LabError::Refused {
            message: format!("no free address left in {}", self.subnet),
            hint: "stop some containers, or use a larger --subnet on another --bridge".into(),
        })
    }

    fn write_etc_files(&self, hostname: &str) -> Result<(), LabError> {
        std::fs::create_dir_all(&self.files)
            .map_err(|e| LabError::io("mkdir", self.files.display(), e))?;
        let hosts = format!(
            "127.0.0.1\tlocalhost\n::1\tlocalhost\n{}\t{hostname}\n",
            self.address
        );
        let resolv = resolv_conf_for_container(
            &std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
        );
        for (name, text) in [
            ("hosts", hosts),
            ("hostname", format!("{hostname}\n")),
            ("resolv.conf", resolv),
        ] {
            let path = self.files.join(name);
            std::fs::write(&path, text).map_err(|e| LabError::io("write", path.display(), e))?;
        }
        Ok(())
    }

    /// The files the container's /etc/hosts, /etc/hostname and
    /// /etc/resolv.conf are bind-mounted from.
    pub fn etc_files(&self) -> Vec<(PathBuf, &'static str)> {
        ["hosts", "hostname", "resolv.conf"]
            .iter()
            .map(|name| (self.files.join(name), *name))
            .collect()
    }

    // ANCHOR: wire
    /// After the child made its network namespace: a veth pair, one end on
    /// the bridge, the other inside the container as eth0 with its address
    /// and a default route; then the published ports.
    pub fn wire(&self, narrator: &Narrator, child: nix::unistd::Pid) -> Result<(), LabError> {
        let host = self.host_veth.as_str();
        // Made with its far end already inside the container and named
        // eth0: moving an interface between namespaces afterwards costs the
        // kernel an RCU grace period, tens of milliseconds.
        let mac = mac_for(self.address);
        let netns = netlink::Netns::of_process(child.as_raw())?;
        let rtnl = netlink::Rtnl::open()?;
        rtnl.run(
            narrator,
            &Change::AddVeth {
                name: host,
                peer: "eth0",
                peer_mac: &mac,
                netns: &netns,
            },
            "a virtual cable, its far end already in the container's network namespace as eth0, with a MAC address made from its IP",
        )?;
        self.peer_moved.set(true);
        // Before the cable goes into the switch: from its first frame on,
        // the port lets through only what carries the container's own names.
        load_table(
            narrator,
            &self.nftnl,
            &port_guard(&self.table, &self.host_veth, self.address),
            "the bridge port takes only frames with the container's own MAC, IPv4 address and ARP: no posing as a neighbour or the gateway",
        )?;
        self.guarded.set(true);
        rtnl.run(
            narrator,
            &Change::SetMasterUp {
                link: host,
                master: &self.bridge,
            },
            "plug the host end into the bridge, like a cable into a switch",
        )?;
        // A netlink socket made inside the container's namespace answers
        // for that namespace for the rest of its life (netlink(7)).
        let inside = netlink::Rtnl::open_in(&netns)?;
        inside.run(
            narrator,
            &Change::AddAddress {
                link: "eth0",
                address: self.address,
                prefix: self.subnet.prefix,
            },
            "inside: the container's own address on the bridge's subnet",
        )?;
        inside.run(
            narrator,
            &Change::SetUp { link: "eth0" },
            "inside: bring eth0 up",
        )?;
        inside.run(
            narrator,
            &Change::SetUp { link: "lo" },
            "inside: a loopback of its own",
        )?;
        inside.run(
            narrator,
            &Change::AddDefaultRoute {
                gateway: self.subnet.gateway(),
            },
            "inside: everything not on the bridge goes through the host",
        )?;
        // One table of the container's own: its published ports, and from
        // ch09 the host guard.
        let mut table = published_ports(&self.table, self.address, &self.ports);
        if self.ports.is_empty() {
            table.chains.clear();
        }
        let why = match self.close_host_services {
            true => {
                table.chains.push(host_guard(&self.bridge, self.address));
                "the host's own services closed to the container: only answers to connections the host opened come in, and the published ports, which go to the container"
            }
            false => {
                "publish the ports: connections to the host's port are rewritten to the container's"
            }
        };
        if !table.chains.is_empty() {
            load_table(narrator, &self.nftnl, &table, why)?;
        }
        Ok(())
    }
    // ANCHOR_END: wire
}

/// The `-p` rules, in a table of the container's own (`table`) so they go
/// with one command: connections to a host port are rewritten to the
/// container's address and port. `fib daddr type local` matches any
/// address of the host (its loopback, its bridge address, its other
/// interfaces); prerouting catches traffic from elsewhere, output the
/// host's own.
pub fn published_ports(table: &str, address: Ipv4Addr, ports: &[PortMapping]) -> Table {
    let rules: Vec<Rule> = ports
        .iter()
        .map(|port| {
            Rule::new(Family::Ip)
                .fib_daddr_local()
                .tcp_dport(port.host)
                .dnat(address, port.container)
        })
        .collect();
    let chain = |name, hook| Chain::hooked(name, "nat", hook, Priority::DstNat, rules.clone());
    Table {
        family: Family::Ip,
        name: table.into(),
        chains: vec![
            chain("prerouting", HookPoint::Prerouting),
            chain("output", HookPoint::Output),
        ],
    }
}

// ANCHOR: ping_sockets
/// From ch09: ICMP echo sockets ("ping sockets", socket(AF_INET,
/// SOCK_DGRAM, IPPROTO_ICMP), Linux 3.0) for every group of the
/// container, so that ping works without CAP_NET_RAW, which chapter 09
/// takes away (icmp(7), net.ipv4.ping_group_range; Docker sets the same).
/// A ping socket sends only echo requests, from the sender's own address.
/// The setting belongs to the network namespace, and its range must be
/// gids of the writer's user namespace: 0 to the last the maps give.
pub fn allow_ping_sockets(narrator: &Narrator, proc: &Path, last_gid: u32) -> Result<(), LabError> {
    let path = proc.join("sys/net/ipv4/ping_group_range");
    let value = format!("0 {last_gid}");
    let args = format!("{:?}, \"{value}\"", path.display().to_string());
    narrator.run(
        Step {
            syscall: "write",
            args: &args,
            why: "ping works through ICMP sockets, for every group of the container, without CAP_NET_RAW",
            man: "icmp(7)",
        },
        || {
            std::fs::write(&path, &value)
                .map_err(|error| crate::error::errno_of(&error))
        },
    )
}
// ANCHOR_END: ping_sockets

// ANCHOR: host_guard
/// From ch09: nothing the container starts reaches the host itself. A
/// service on the host that listens on every address (0.0.0.0) answers on
/// the bridge's gateway address too, and on every other address of the
/// host's, which the container routes to through the gateway: a database
/// or an admin port meant for the host's LAN, reached from a container
/// (Docker leaves this open; issue 12's review found it). The `input`
/// hook sees only packets addressed to the host; from the container's own
/// address (the port guard makes sure of the source), only those that
/// answer a connection the host opened get in. Published ports are not
/// affected: their connections were rewritten to the container's address
/// in prerouting, before this hook, and are routed, not delivered.
pub fn host_guard(bridge: &str, address: Ipv4Addr) -> Chain {
    Chain::hooked(
        "host_guard",
        "filter",
        HookPoint::Input,
        Priority::Filter,
        vec![
            Rule::new(Family::Ip)
                .iifname(false, bridge)
                .ip_saddr(false, address, 32)
                .ct_state_not_established_or_related()
                .drop(),
        ],
    )
}
// ANCHOR_END: host_guard

// ANCHOR: port_guard
/// The port guard: what the container may put on the bridge. Root in a
/// container holds CAP_NET_RAW and CAP_NET_ADMIN in its own network
/// namespace, so it can write any frame (packet(7), raw(7)) or simply
/// change eth0's MAC and addresses; on a shared bridge it could then
/// answer ARP for a neighbour's address or the gateway's and receive
/// their traffic, or send packets in a neighbour's name. So the host
/// checks at the port (`port`, the host end of the container's veth),
/// where the container cannot reach.
///
/// The `bridge` family filters frames as the bridge switches them, with
/// no br_netfilter module and no sysctl (nft wiki, "Bridge filtering");
/// its `prerouting` hook sees every frame that enters through a port,
/// before the bridge learns its source MAC or forwards it, and
/// `iifname` there is the port. Two kinds of frame pass, and only from
/// the container's own MAC: ARP whose sender is this container's MAC
/// and address (RFC 826's sender fields, nft(8)'s `arp saddr ether` and
/// `arp saddr ip`), and IPv4 from its own address. All else is dropped.
/// That includes IPv6: the lab gives containers no IPv6 address, so all
/// they could send is link-local traffic (fe80::) to their neighbours
/// and the host, which no rule of the lab's checks. And VLAN-tagged
/// frames, whose inner headers these rules would not look into.
pub fn port_guard(table: &str, port: &str, address: Ipv4Addr) -> Table {
    let mac = mac_bytes(address);
    let rule = || Rule::new(Family::Bridge);
    Table {
        family: Family::Bridge,
        name: table.into(),
        chains: vec![
            Chain::hooked(
                "prerouting",
                "filter",
                HookPoint::Prerouting,
                Priority::Filter,
                vec![rule().iifname(false, port).jump("from_container")],
            ),
            Chain::regular(
                "from_container",
                vec![
                    rule().ether_saddr(true, mac).drop(),
                    rule().arp_sender(mac, address).accept(),
                    rule().ip_saddr(false, address, 32).accept(),
                    rule().drop(),
                ],
            ),
        ],
    }
}
// ANCHOR_END: port_guard

impl Drop for ContainerNetwork {
    fn drop(&mut self) {
        if !self.ports.is_empty() || self.close_host_services {
            let _ = self.nftnl.delete_table(Family::Ip, &self.table);
        }
        if self.guarded.get() {
            let _ = self.nftnl.delete_table(Family::Bridge, &self.table);
        }
        self.nftnl.close_in_background();
        // Once the peer is in the container, the kernel deletes the pair
        // with the container's namespace (and deleting it here would only
        // make the runtime wait for that); before, it is ours to delete.
        if !self.peer_moved.get()
            && let Ok(rtnl) = netlink::Rtnl::open()
        {
            let _ = rtnl.apply(&Change::DeleteLink {
                link: &self.host_veth,
            });
        }
        for claim in &self.claimed {
            let _ = std::fs::remove_file(claim);
        }
        let _ = std::fs::remove_dir_all(&self.files);
    }
}

/// The bridge, its address, NAT for the subnet and forwarding: created on
/// first use, checked on every later one.
fn ensure_bridge(
    narrator: &Narrator,
    nftnl: &Nftnl,
    bridge: &str,
    subnet: Subnet,
    state: &Path,
) -> Result<(), LabError> {
    // Asked of the kernel through a socket, which answers for the caller's
    // network namespace (/sys/class/net answers for the namespace /sys was
    // mounted in, which may be another).
    if nix::net::if_::if_nametoindex(bridge).is_ok() {
        let recorded = std::fs::read_to_string(state.join("subnet")).unwrap_or_default();
        if recorded.trim() != subnet.to_string() {
            return Err(LabError::Refused {
                message: format!(
                    "bridge {bridge} already serves {}, not {subnet}",
                    if recorded.is_empty() {
                        "another network"
                    } else {
                        recorded.trim()
                    }
                ),
                hint: if recorded.trim().is_empty() {
                    format!("remove it with `lab clean`, or use another --bridge NAME for {subnet}")
                } else {
                    format!(
                        "use --subnet {} with it, or another --bridge NAME for {subnet}",
                        recorded.trim()
                    )
                },
            });
        }
        // The bridge stays between containers, its rules may not: a
        // firewall reload (`nft flush ruleset`) or a runtime killed while
        // making the bridge leaves it without them, and then nothing keeps
        // 127.0.0.0/8 from coming in through it (route_localnet is on:
        // CVE-2020-8558), nor the other lab networks out. Put them back
        // before a container plugs in.
        let table = bridge_table_name(bridge);
        if !nftnl.list_tables()?.contains(&(Family::Ip, table)) {
            let restrict = state.join("forwarding-enabled").exists();
            load_table(
                narrator,
                nftnl,
                &bridge_table(bridge, subnet, restrict),
                "the bridge's rules were gone (a firewall reload?): put them back first",
            )?;
            enable_forwarding(narrator, bridge, !restrict)?;
        }
        return Ok(());
    }
    let routes = parse_routes(&std::fs::read_to_string("/proc/net/route").unwrap_or_default());
    if let Some((device, network, prefix)) = routes
        .iter()
        .find(|(_, network, prefix)| *prefix > 0 && subnet.overlaps(*network, *prefix))
    {
        return Err(LabError::Refused {
            message: format!(
                "subnet {subnet} overlaps the host's route {network}/{prefix} on {device}"
            ),
            hint: "choose another --subnet, one this host does not use".into(),
        });
    }
    // A bridge made without an address takes the lowest MAC of its ports
    // and changes it as ports come and go; each change flushes the host's
    // ARP entries on it (NETDEV_CHANGEADDR) and leaves the containers'
    // entries for their gateway stale. One given at creation stays.
    let mac = mac_for(subnet.gateway());
    let rtnl = netlink::Rtnl::open()?;
    rtnl.run(
        narrator,
        &Change::AddBridge {
            name: bridge,
            mac: &mac,
        },
        "a virtual switch on the host that the containers plug into, with a MAC address that stays",
    )?;
    let undo = || {
        let _ = rtnl.apply(&Change::DeleteLink { link: bridge });
    };
    let steps = || -> Result<(), LabError> {
        rtnl.run(
            narrator,
            &Change::SetGroup {
                link: bridge,
                group: LAB_BRIDGE_GROUP,
            },
            "mark it as a lab bridge, so that every lab bridge's rules can keep the others out",
        )?;
        rtnl.run(
            narrator,
            &Change::AddAddress {
                link: bridge,
                address: subnet.gateway(),
                prefix: subnet.prefix,
            },
            "the host's address on the containers' subnet: their gateway",
        )?;
        rtnl.run(narrator, &Change::SetUp { link: bridge }, "switch it on")?;
        std::fs::write(state.join("subnet"), subnet.to_string())
            .map_err(|e| LabError::io("write", state.display(), e))?;
        // In this order, so that a runtime killed half-way leaves nothing
        // open: the mark before forwarding is turned on (`lab clean` turns
        // off only what the lab turned on), the rules before the bridge
        // may route 127.0.0.1 and the host forwards anything.
        let forwarding_was_on = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
            .is_ok_and(|value| value.trim() == "1");
        let mark = state.join("forwarding-enabled");
        if forwarding_was_on {
            // A mark left by an earlier bridge of this name (deleted by
            // hand, or in a namespace whose inode this one reuses) would
            // make `lab clean` turn off forwarding the lab never turned on.
            let _ = std::fs::remove_file(&mark);
        } else {
            std::fs::write(&mark, "1").map_err(|e| LabError::io("write", mark.display(), e))?;
        }
        load_table(
            narrator,
            nftnl,
            &bridge_table(bridge, subnet, !forwarding_was_on),
            "NAT for the subnet: containers reach out with the host's address",
        )?;
        enable_forwarding(narrator, bridge, forwarding_was_on)
    };
    steps().inspect_err(|_| {
        let _ = nftnl.delete_table(Family::Ip, &bridge_table_name(bridge));
        undo();
    })
}

/// Let the bridge route 127.0.0.1 (so `-p` works from the host's
/// loopback), and turn on IPv4 forwarding unless it `was_on`; then the
/// lab's rules forward only its subnets.
fn enable_forwarding(narrator: &Narrator, bridge: &str, was_on: bool) -> Result<(), LabError> {
    let forward = Path::new("/proc/sys/net/ipv4/ip_forward");
    let localnet = PathBuf::from(format!("/proc/sys/net/ipv4/conf/{bridge}/route_localnet"));
    let mut settings = vec![(
        localnet,
        "routed 127.0.0.1 may leave through the bridge once DNAT has rewritten it",
    )];
    if !was_on {
        settings.push((
            forward.to_path_buf(),
            "let the host route packets between the bridge and its other interfaces",
        ));
    }
    for (path, why) in settings {
        let args = format!("{:?}, \"1\"", path.display().to_string());
        narrator.run(
            Step {
                syscall: "write",
                args: &args,
                why,
                man: "proc(5)",
            },
            || std::fs::write(&path, "1").map_err(|e| crate::error::errno_of(&e)),
        )?;
    }
    Ok(())
}

/// The bridge's nftables table: masquerade for the subnet, for
/// loopback-DNATed connections, and for a container that reaches a
/// published port through the host's address and is sent back onto its
/// own bridge (hairpin NAT: without it the server would answer the client
/// directly, switched, from an address the client never called, and the
/// client's TCP would drop the answer); nothing addressed to 127.0.0.0/8 may come
/// in from the bridge (route_localnet would otherwise let a container route
/// to the host's loopback-only services: the hole of CVE-2020-8558 in
/// Kubernetes); nothing is routed from this bridge into another lab bridge
/// (`isolation`); if the lab turned forwarding on, forward only what comes
/// from or goes to a lab bridge.
///
/// Two lab bridges are two networks, as two Docker networks are: the host
/// routes between their subnets, so without `isolation` a container on one
/// reaches every container on the other. Every lab bridge is in device
/// group LAB_BRIDGE_GROUP, so one rule per bridge covers all the others
/// (nft(8) `oifgroup`), whichever was made first. A base chain's accept
/// ends only that chain and a drop is final (nft wiki, "Configuring
/// chains"), so this drop holds whatever the host's own forward rules
/// accept. Connections the host DNATed pass: a published port is published
/// to everyone, containers on other bridges included.
pub fn bridge_table(bridge: &str, subnet: Subnet, restrict_forwarding: bool) -> Table {
    let group = LAB_BRIDGE_GROUP;
    let rule = || Rule::new(Family::Ip);
    let mut chains = vec![
        Chain::hooked(
            "postrouting",
            "nat",
            HookPoint::Postrouting,
            Priority::SrcNat,
            vec![
                rule()
                    .ip_saddr(false, subnet.network, subnet.prefix)
                    .ip_daddr(true, subnet.network, subnet.prefix)
                    .masquerade(),
                rule()
                    .oifname(false, bridge)
                    .ip_saddr(false, Ipv4Addr::LOCALHOST, 8)
                    .masquerade(),
                rule()
                    .oifname(false, bridge)
                    .ip_saddr(false, subnet.network, subnet.prefix)
                    .ct_status_dnat()
                    .masquerade(),
            ],
        ),
        Chain::hooked(
            "loopback_guard",
            "filter",
            HookPoint::Prerouting,
            Priority::Raw,
            vec![
                rule()
                    .iifname(false, bridge)
                    .ip_daddr(false, Ipv4Addr::LOCALHOST, 8)
                    .drop(),
            ],
        ),
        Chain::hooked(
            "isolation",
            "filter",
            HookPoint::Forward,
            Priority::Filter,
            vec![
                rule()
                    .iifname(false, bridge)
                    .oifname(true, bridge)
                    .oifgroup(group)
                    .ct_status_dnat()
                    .accept(),
                rule()
                    .iifname(false, bridge)
                    .oifname(true, bridge)
                    .oifgroup(group)
                    .drop(),
            ],
        ),
    ];
    if restrict_forwarding {
        chains.push(
            Chain::hooked(
                "forward",
                "filter",
                HookPoint::Forward,
                Priority::Filter,
                vec![
                    rule().iifgroup(group).accept(),
                    rule().oifgroup(group).accept(),
                ],
            )
            .dropping_the_rest(),
        );
    }
    Table {
        family: Family::Ip,
        name: bridge_table_name(bridge),
        chains,
    }
}

/// The host's resolv.conf minus resolvers on loopback, which the
/// container cannot reach from its own namespace.
pub fn resolv_conf_for_container(host: &str) -> String {
    let mut kept = Vec::new();
    let mut dropped = Vec::new();
    for line in host.lines() {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("nameserver"), Some(address))
                if address.starts_with("127.") || address == "::1" =>
            {
                dropped.push(address.to_string())
            }
            (Some("nameserver" | "search" | "options"), Some(_)) => kept.push(line.to_string()),
            _ => {}
        }
    }
    let mut text = String::from("# written by container-lab from the host's /etc/resolv.conf\n");
    if !dropped.is_empty() {
        text.push_str(&format!(
            "# left out, on the host's loopback: {}\n",
            dropped.join(" ")
        ));
    }
    for line in kept {
        text.push_str(&line);
        text.push('\n');
    }
    text
}

/// Take down what `ensure_bridge` made (for `lab clean`).
pub fn remove_bridge(bridge: &str, state: &Path) {
    let _ = nftables::delete_table(Family::Ip, &bridge_table_name(bridge));
    if let Ok(rtnl) = netlink::Rtnl::open() {
        let _ = rtnl.apply(&Change::DeleteLink { link: bridge });
    }
    if state.join("forwarding-enabled").exists() {
        let _ = std::fs::write("/proc/sys/net/ipv4/ip_forward", "0");
    }
    let _ = std::fs::remove_dir_all(state);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_mappings_parse_and_refuse_nonsense() {
        assert_eq!(
            "8080:80".parse(),
            Ok(PortMapping {
                host: 8080,
                container: 80
            })
        );
        assert_eq!(
            "8080:80/tcp".parse(),
            Ok(PortMapping {
                host: 8080,
                container: 80
            })
        );
        for bad in [
            "8080",
            "8080:",
            ":80",
            "0:80",
            "70000:80",
            "a:b",
            "8080:80/udp",
            "-1:80",
        ] {
            assert!(
                bad.parse::<PortMapping>().is_err(),
                "{bad} should be refused"
            );
        }
    }

    #[test]
    fn subnets_parse_and_give_addresses() {
        let subnet: Subnet = "10.88.0.0/24".parse().unwrap();
        assert_eq!(subnet.gateway(), Ipv4Addr::new(10, 88, 0, 1));
        let addresses: Vec<Ipv4Addr> = subnet.container_addresses().collect();
        assert_eq!(addresses.first(), Some(&Ipv4Addr::new(10, 88, 0, 2)));
        assert_eq!(addresses.last(), Some(&Ipv4Addr::new(10, 88, 0, 254)));
        assert!(
            "10.88.0.1/24"
                .parse::<Subnet>()
                .unwrap_err()
                .contains("did you mean 10.88.0.0/24")
        );
        assert!("10.88.0.0/8".parse::<Subnet>().is_err());
        assert!("nonsense".parse::<Subnet>().is_err());
    }

    #[test]
    fn overlap_is_symmetric_and_exact() {
        let subnet: Subnet = "10.88.0.0/24".parse().unwrap();
        assert!(subnet.overlaps(Ipv4Addr::new(10, 0, 0, 0), 8));
        assert!(subnet.overlaps(Ipv4Addr::new(10, 88, 0, 128), 25));
        assert!(!subnet.overlaps(Ipv4Addr::new(10, 89, 0, 0), 24));
        assert!(!subnet.overlaps(Ipv4Addr::new(192, 168, 1, 0), 24));
    }

    #[test]
    fn routes_come_from_proc_net_route() {
        let table = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                     eth0\t00000000\t0101A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
                     eth0\t0001A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
        let routes = parse_routes(table);
        assert_eq!(
            routes[0],
            ("eth0".to_string(), Ipv4Addr::new(0, 0, 0, 0), 0)
        );
        assert_eq!(
            routes[1],
            ("eth0".to_string(), Ipv4Addr::new(192, 168, 1, 0), 24)
        );
    }

    #[test]
    fn loopback_resolvers_are_left_out() {
        let host = "nameserver 127.0.0.53\nnameserver 192.0.2.53\nsearch lab.example\n# comment\n";
        let text = resolv_conf_for_container(host);
        assert!(text.contains("nameserver 192.0.2.53\n"));
        assert!(text.contains("search lab.example\n"));
        assert!(text.contains("left out, on the host's loopback: 127.0.0.53"));
        assert!(!text.lines().any(|l| l.starts_with("nameserver 127.")));
    }

    #[test]
    fn port_rules_use_one_table_per_container() {
        let ports = [PortMapping {
            host: 8080,
            container: 80,
        }];
        let rules = published_ports("container-lab-c1", Ipv4Addr::new(10, 88, 0, 2), &ports).text();
        assert!(rules.starts_with("table ip container-lab-c1 {"));
        assert_eq!(
            rules
                .matches("fib daddr type local tcp dport 8080 dnat to 10.88.0.2:80")
                .count(),
            2
        );
    }

    #[test]
    fn macs_are_made_from_addresses_and_locally_administered() {
        assert_eq!(mac_for(Ipv4Addr::new(10, 88, 0, 2)), "02:42:0a:58:00:02");
        assert_eq!(
            mac_for(Ipv4Addr::new(172, 17, 255, 254)),
            "02:42:ac:11:ff:fe"
        );
    }

    #[test]
    fn the_port_guard_names_the_port_and_its_own_addresses_only() {
        let rules = port_guard("container-lab-c1", "labv1", Ipv4Addr::new(10, 88, 0, 7)).text();
        assert!(rules.starts_with("table bridge container-lab-c1 {"));
        assert!(rules.contains("iifname \"labv1\" jump from_container"));
        assert!(rules.contains("ether saddr != 02:42:0a:58:00:07 drop"));
        assert!(rules.contains("arp saddr ether 02:42:0a:58:00:07 arp saddr ip 10.88.0.7 accept"));
        assert!(rules.contains("ip saddr 10.88.0.7 accept"));
        assert!(
            rules.trim_end().ends_with("drop\n  }\n}"),
            "the last word is drop: {rules}"
        );
    }

    #[test]
    fn every_bridge_keeps_out_of_the_other_lab_bridges() {
        let rules = bridge_table("labbr1", "10.88.1.0/24".parse().unwrap(), true).text();
        assert!(rules.contains("iifname \"labbr1\" oifname != \"labbr1\" oifgroup 427 drop"));
        assert!(rules.contains("iifgroup 427 accept"));
        assert!(
            !bridge_table("labbr1", "10.88.1.0/24".parse().unwrap(), false)
                .text()
                .contains("policy drop")
        );
    }
}
