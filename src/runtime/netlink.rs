//! Links, addresses and routes through rtnetlink, the kernel's own
//! interface for them (rtnetlink(7), netlink(7)): what ip(8) does, without
//! running ip(8).
//!
//! ip(8) is itself a thin client: each `ip link ...` or `ip addr ...` line
//! becomes one netlink message (`RTM_NEWLINK`, `RTM_NEWADDR`, ...) sent on
//! an `AF_NETLINK`/`NETLINK_ROUTE` socket, and the kernel answers with an
//! `NLMSG_ERROR` message whose error field is 0 (done) or a negative errno.
//! This module sends the same messages from the runtime, so a container's
//! wiring costs a few socket round trips instead of a fork and an exec per
//! step.
//!
//! Each change is a [`Change`], a value that knows both what it is on the
//! wire ([`Change::request`], used in errors) and the ip(8) line that would
//! do the same ([`Change::ip_args`], used by the narrator): `--explain`
//! keeps showing a line the student can type again by hand.
//!
//! The messages are built with `netlink-packet-route`, whose types mirror
//! the kernel's attributes one for one (`IFLA_*`, `IFA_*`, `RTA_*`), and sent
//! on a `netlink-sys` socket: both from the rust-netlink project, which
//! also maintains the asynchronous `rtnetlink` crate; this module needs only
//! the packets and a blocking socket.

use crate::error::LabError;
use crate::narrator::{Narrator, Step};
use netlink_packet_core::{
    ErrorBuffer, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR,
    NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
use nix::errno::Errno;
use std::cell::Cell;
use std::fmt;
use std::fs::File;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;

/// A network namespace held open, with the name ip(8) would take for it.
pub struct Netns {
    file: File,
    /// `1234` for a process's namespace (ip(8) `netns PID`), else the path.
    ip_name: String,
}

impl Netns {
    /// The network namespace process `pid` is in, as /proc/PID/ns/net.
    /// Held by its descriptor: the namespace stays the same one even if
    /// the process ends and its pid is reused.
    pub fn of_process(pid: i32) -> Result<Netns, LabError> {
        let path = format!("/proc/{pid}/ns/net");
        let file = File::open(&path).map_err(|e| LabError::io("open", &path, e))?;
        Ok(Netns {
            file,
            ip_name: pid.to_string(),
        })
    }

    /// A namespace file: /proc/PID/ns/net, or one bind-mounted by
    /// `ip netns add` under /run/netns.
    pub fn open(path: &std::path::Path) -> Result<Netns, LabError> {
        let file = File::open(path).map_err(|e| LabError::io("open", path.display(), e))?;
        Ok(Netns {
            file,
            ip_name: path.display().to_string(),
        })
    }

    /// The open namespace file (for setns(2)).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// The name ip(8) would take for it (`1234`, or the path), for errors.
    pub fn ip_name(&self) -> &str {
        &self.ip_name
    }
}

/// One change to links, addresses or routes: one ip(8) command, one
/// rtnetlink request. Names are resolved to interface indexes in the
/// namespace of the socket that applies it.
pub enum Change<'a> {
    /// `ip link add NAME address MAC type bridge`
    AddBridge { name: &'a str, mac: &'a str },
    /// `ip link add NAME type veth peer name PEER address MAC netns NS`:
    /// the peer is created directly in `netns`.
    AddVeth {
        name: &'a str,
        peer: &'a str,
        peer_mac: &'a str,
        netns: &'a Netns,
    },
    /// `ip link set LINK group GROUP`
    SetGroup { link: &'a str, group: u32 },
    /// `ip link set LINK up`
    SetUp { link: &'a str },
    /// `ip link set LINK master MASTER up`
    SetMasterUp { link: &'a str, master: &'a str },
    /// `ip addr add ADDRESS/PREFIX dev LINK`
    AddAddress {
        link: &'a str,
        address: Ipv4Addr,
        prefix: u8,
    },
    /// `ip route add default via GATEWAY`
    AddDefaultRoute { gateway: Ipv4Addr },
    /// `ip link delete LINK`
    DeleteLink { link: &'a str },
}

impl Change<'_> {
    /// The ip(8) arguments that make the same change, as `--explain` shows
    /// them (`link add labbr0 address 02:42:0a:58:00:01 type bridge`).
    pub fn ip_args(&self) -> String {
        match self {
            Change::AddBridge { name, mac } => format!("link add {name} address {mac} type bridge"),
            Change::AddVeth {
                name,
                peer,
                peer_mac,
                netns,
            } => format!(
                "link add {name} type veth peer name {peer} address {peer_mac} netns {}",
                netns.ip_name
            ),
            Change::SetGroup { link, group } => format!("link set {link} group {group}"),
            Change::SetUp { link } => format!("link set {link} up"),
            Change::SetMasterUp { link, master } => format!("link set {link} master {master} up"),
            Change::AddAddress {
                link,
                address,
                prefix,
            } => format!("addr add {address}/{prefix} dev {link}"),
            Change::AddDefaultRoute { gateway } => format!("route add default via {gateway}"),
            Change::DeleteLink { link } => format!("link delete {link}"),
        }
    }

    /// The ip(8) page that documents the equivalent command.
    pub fn man(&self) -> &'static str {
        match self {
            Change::AddAddress { .. } => "ip-address(8)",
            Change::AddDefaultRoute { .. } => "ip-route(8)",
            _ => "ip-link(8)",
        }
    }

    /// The request as the kernel sees it, for errors
    /// (`RTM_NEWLINK labv123 type veth peer eth0 ...`).
    pub fn request(&self) -> String {
        match self {
            Change::AddBridge { name, mac } => {
                format!("RTM_NEWLINK {name} type bridge address {mac}")
            }
            Change::AddVeth {
                name,
                peer,
                peer_mac,
                netns,
            } => format!(
                "RTM_NEWLINK {name} type veth peer {peer} address {peer_mac} netns {}",
                netns.ip_name
            ),
            Change::SetGroup { link, group } => format!("RTM_NEWLINK {link} group {group}"),
            Change::SetUp { link } => format!("RTM_NEWLINK {link} IFF_UP"),
            Change::SetMasterUp { link, master } => {
                format!("RTM_NEWLINK {link} master {master} IFF_UP")
            }
            Change::AddAddress {
                link,
                address,
                prefix,
            } => format!("RTM_NEWADDR {address}/{prefix} dev {link}"),
            Change::AddDefaultRoute { gateway } => {
                format!("RTM_NEWROUTE default via {gateway}")
            }
            Change::DeleteLink { link } => format!("RTM_DELLINK {link}"),
        }
    }
}

impl fmt::Display for Change<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ip {}", self.ip_args())
    }
}

/// A MAC address as ip(8) writes it (`02:42:0a:58:00:02`), as bytes.
fn parse_mac(text: &str) -> Option<Vec<u8>> {
    let bytes: Vec<u8> = text
        .split(':')
        .map(|part| {
            (part.len() == 2)
                .then(|| u8::from_str_radix(part, 16).ok())
                .flatten()
        })
        .collect::<Option<_>>()?;
    (bytes.len() == 6).then_some(bytes)
}

/// An rtnetlink socket: every request made on it acts on the network
/// namespace it was created in, wherever the runtime's threads are now.
pub struct Rtnl {
    socket: Socket,
    /// The sequence number of the next request (netlink(7): the kernel
    /// copies it into its answer, which is how answers are matched).
    sequence: Cell<u32>,
    /// `""` for the runtime's own namespace, else ` (netns NAME)`: the
    /// errors say where.
    place: String,
}

impl Rtnl {
    /// A socket on the caller's own network namespace.
    pub fn open() -> Result<Rtnl, LabError> {
        Rtnl::with_socket(bound_socket(NETLINK_ROUTE, "NETLINK_ROUTE", None)?)
    }

    /// A socket on another network namespace (see [`bound_socket`]).
    pub fn open_in(netns: &Netns) -> Result<Rtnl, LabError> {
        Rtnl::with_socket(bound_socket(NETLINK_ROUTE, "NETLINK_ROUTE", Some(netns))?)
    }

    fn with_socket((socket, place): (Socket, String)) -> Result<Rtnl, LabError> {
        Ok(Rtnl {
            socket,
            sequence: Cell::new(1),
            place,
        })
    }

    /// Announce `change` as the ip(8) line it stands for, then make it.
    /// The step reads as it did when the runtime ran ip(8): the line a
    /// student can type again by hand. A failure names the rtnetlink
    /// request and the kernel's errno.
    pub fn run(&self, narrator: &Narrator, change: &Change<'_>, why: &str) -> Result<(), LabError> {
        narrator.run_tool(
            Step {
                syscall: "ip",
                args: &change.ip_args(),
                why,
                man: change.man(),
            },
            || self.apply(change),
        )
    }

    /// Make `change`, silently (for cleanup and `lab clean`).
    pub fn apply(&self, change: &Change<'_>) -> Result<(), LabError> {
        self.make(change).map_err(|errno| LabError::StepFailed {
            syscall: "netlink",
            target: format!("{}{}", change.request(), self.place),
            errno,
        })
    }

    fn make(&self, change: &Change<'_>) -> nix::Result<()> {
        // Flags (netlink(7)): every message is a REQUEST and asks for an
        // ACK, so success is reported too and not only failure; creating
        // adds CREATE|EXCL, so that an existing name is EEXIST rather than
        // a change to what is already there (what ip(8) `add` does).
        let create = NLM_F_CREATE | NLM_F_EXCL;
        match change {
            Change::AddBridge { name, mac } => {
                let mut link = LinkMessage::default();
                link.attributes = vec![
                    LinkAttribute::IfName(name.to_string()),
                    LinkAttribute::Address(parse_mac(mac).ok_or(Errno::EINVAL)?),
                    LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Bridge)]),
                ];
                self.request(RouteNetlinkMessage::NewLink(link), create)
                    .map(drop)
            }
            Change::AddVeth {
                name,
                peer,
                peer_mac,
                netns,
            } => {
                // VETH_INFO_PEER carries a whole ifinfomsg and attributes
                // of its own: the peer's name, MAC and namespace
                // (IFLA_NET_NS_FD), so the kernel creates it there at once
                // instead of moving it later, which costs a grace period.
                let mut far = LinkMessage::default();
                far.attributes = vec![
                    LinkAttribute::IfName(peer.to_string()),
                    LinkAttribute::Address(parse_mac(peer_mac).ok_or(Errno::EINVAL)?),
                    // A descriptor number, looked up by the kernel in
                    // the table of the process that sends the message.
                    LinkAttribute::NetNsFd(netns.file.as_raw_fd()),
                ];
                let mut link = LinkMessage::default();
                link.attributes = vec![
                    LinkAttribute::IfName(name.to_string()),
                    LinkAttribute::LinkInfo(vec![
                        LinkInfo::Kind(InfoKind::Veth),
                        LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(far))),
                    ]),
                ];
                self.request(RouteNetlinkMessage::NewLink(link), create)
                    .map(drop)
            }
            Change::SetGroup { link, group } => {
                self.set_link(link, &[LinkAttribute::Group(*group)], false)
            }
            Change::SetUp { link } => self.set_link(link, &[], true),
            Change::SetMasterUp { link, master } => {
                let master = self.index_of(master)?;
                self.set_link(link, &[LinkAttribute::Controller(master)], true)
            }
            Change::AddAddress {
                link,
                address,
                prefix,
            } => {
                let mut message = AddressMessage::default();
                message.header.family = AddressFamily::Inet;
                message.header.prefix_len = *prefix;
                message.header.index = self.index_of(link)?;
                // IFA_LOCAL is the interface's own address, IFA_ADDRESS the
                // other end's on a point-to-point link; on Ethernet both
                // are the same, and ip(8) sends both (rtnetlink(7)).
                message.attributes = vec![
                    AddressAttribute::Local(IpAddr::V4(*address)),
                    AddressAttribute::Address(IpAddr::V4(*address)),
                ];
                self.request(RouteNetlinkMessage::NewAddress(message), create)
                    .map(drop)
            }
            Change::AddDefaultRoute { gateway } => {
                // Destination 0.0.0.0/0 in the main table, learnt at "boot"
                // (the protocol ip(8) marks routes an administrator adds
                // with), reached through the gateway: the kernel finds the
                // interface from the gateway's subnet.
                let mut route = RouteMessage::default();
                route.header.address_family = AddressFamily::Inet;
                route.header.destination_prefix_length = 0;
                route.header.table = RouteHeader::RT_TABLE_MAIN;
                route.header.protocol = RouteProtocol::Boot;
                route.header.scope = RouteScope::Universe;
                route.header.kind = RouteType::Unicast;
                route.attributes = vec![RouteAttribute::Gateway(RouteAddress::Inet(*gateway))];
                self.request(RouteNetlinkMessage::NewRoute(route), create)
                    .map(drop)
            }
            Change::DeleteLink { link } => {
                let mut message = LinkMessage::default();
                message.header.index = self.index_of(link)?;
                self.request(RouteNetlinkMessage::DelLink(message), 0)
                    .map(drop)
            }
        }
    }

    /// Change an existing link, found by name, as `ip link set` does: an
    /// `RTM_NEWLINK` without CREATE, naming the link by its index. By
    /// index, as ip(8) does, and not by IFLA_IFNAME: a request that names
    /// no link but carries IFLA_GROUP applies to every link of that group,
    /// and older kernels took a missing name for no name.
    fn set_link(&self, name: &str, attributes: &[LinkAttribute], up: bool) -> nix::Result<()> {
        let mut message = LinkMessage::default();
        message.header.index = self.index_of(name)?;
        if up {
            // ifi_change says which flags this message sets (rtnetlink(7)).
            message.header.flags = LinkFlags::Up;
            message.header.change_mask = LinkFlags::Up;
        }
        message.attributes = attributes.to_vec();
        self.request(RouteNetlinkMessage::NewLink(message), 0)
            .map(drop)
    }

    /// The index of the link called `name` in this socket's namespace
    /// (`RTM_GETLINK` by IFLA_IFNAME; ENODEV when there is none).
    /// if_nametoindex(3) would answer for the caller's namespace instead.
    pub fn index_of(&self, name: &str) -> nix::Result<u32> {
        let mut message = LinkMessage::default();
        message.attributes = vec![LinkAttribute::IfName(name.to_string())];
        let replies = self.request(RouteNetlinkMessage::GetLink(message), 0)?;
        replies.into_iter().next().ok_or(Errno::ENODEV)
    }

    /// Send one request and wait for the kernel's acknowledgement: an
    /// NLMSG_ERROR whose error is 0, or minus the errno (netlink(7)).
    /// Returns the interface index of each RTM_NEWLINK that came before it
    /// (the answer to an RTM_GETLINK).
    fn request(&self, message: RouteNetlinkMessage, flags: u16) -> nix::Result<Vec<u32>> {
        let sequence = self.sequence.get();
        self.sequence.set(sequence.wrapping_add(1));
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        header.sequence_number = sequence;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(message));
        packet.finalize();
        let mut bytes = vec![0; packet.buffer_len()];
        packet.serialize(&mut bytes);
        // Port 0 is the kernel (netlink(7)).
        self.socket
            .send_to(&bytes, &SocketAddr::new(0, 0), 0)
            .map_err(|e| crate::error::errno_of(&e))?;
        let mut links = Vec::new();
        loop {
            let (datagram, _) = self
                .socket
                .recv_from_full()
                .map_err(|e| crate::error::errno_of(&e))?;
            if let Some(result) = read_answer(&datagram, sequence, &mut links) {
                return result.map(|()| links);
            }
        }
    }
}

/// Walk the messages of one datagram (several may share it, each aligned
/// to 4 bytes, netlink(7)); only the answers to `sequence` count. Returns
/// the outcome once the acknowledgement came, None while it is still to
/// come. Only the headers are read: the link index of an RTM_NEWLINK and
/// the error code of an NLMSG_ERROR, never the many attributes of a link.
fn read_answer(datagram: &[u8], sequence: u32, links: &mut Vec<u32>) -> Option<nix::Result<()>> {
    const RTM_NEWLINK: u16 = libc::RTM_NEWLINK;
    let mut rest = datagram;
    while !rest.is_empty() {
        let Ok(message) = NetlinkBuffer::new_checked(rest) else {
            return Some(Err(Errno::EBADMSG));
        };
        let length = message.length() as usize;
        let (kind, payload) = (message.message_type(), message.payload());
        if message.sequence_number() == sequence {
            match kind {
                NLMSG_ERROR => {
                    let Ok(error) = ErrorBuffer::new_checked(payload) else {
                        return Some(Err(Errno::EBADMSG));
                    };
                    return Some(match error.code() {
                        None => Ok(()),
                        Some(code) => Err(Errno::from_raw(-code.get())),
                    });
                }
                NLMSG_DONE => return Some(Ok(())),
                // struct ifinfomsg: family (1 byte), pad (1), type (2),
                // then the index (4), in the host's byte order.
                RTM_NEWLINK if payload.len() >= 8 => {
                    links.push(u32::from_ne_bytes([
                        payload[4], payload[5], payload[6], payload[7],
                    ]));
                }
                _ => {}
            }
        }
        let aligned = (length + 3) & !3;
        rest = rest.get(aligned..).unwrap_or_default();
    }
    None
}

/// A NETLINK_ROUTE socket in the calling thread's network namespace,
/// close-on-exec (so no container command inherits it).
/// A netlink socket of `protocol` (named `name` in errors), bound, and
/// the ` (netns NAME)` its errors should add. With `netns`, made without
/// forking in another network namespace: a thread that lives for a few
/// microseconds enters it with setns(2), creates the socket there and
/// ends. The socket stays tied to that namespace for its whole life (the
/// kernel records a socket's namespace when it is created, and netlink
/// acts on that one), so the runtime then uses it from its own thread.
///
/// A thread, not the calling thread nor a forked helper: setns(2) on the
/// calling thread would leave it in the container's namespace for
/// everything it does next, unless each path back were undone without
/// fail; a forked helper would have to pass the socket back over a Unix
/// socket (SCM_RIGHTS) and costs a process. Network namespaces, unlike
/// mount and user namespaces, can be entered by one thread of a
/// multithreaded process (setns(2)).
pub fn bound_socket(
    protocol: isize,
    name: &str,
    netns: Option<&Netns>,
) -> Result<(Socket, String), LabError> {
    let make = || {
        Socket::new(protocol).map_err(|e| LabError::io("socket", format!("AF_NETLINK, {name}"), e))
    };
    let (mut socket, place) = match netns {
        None => (make()?, String::new()),
        Some(netns) => {
            let socket = std::thread::scope(|scope| {
                scope
                    .spawn(|| {
                        nix::sched::setns(&netns.file, nix::sched::CloneFlags::CLONE_NEWNET)
                            .map_err(|errno| LabError::StepFailed {
                                syscall: "setns",
                                target: format!("netns {}, CLONE_NEWNET", netns.ip_name),
                                errno,
                            })?;
                        make()
                    })
                    .join()
                    .unwrap_or_else(|_| {
                        Err(LabError::StepFailed {
                            syscall: "socket",
                            target: format!("AF_NETLINK, {name} in netns {}", netns.ip_name),
                            errno: Errno::EIO,
                        })
                    })
            })?;
            (socket, format!(" (netns {})", netns.ip_name))
        }
    };
    // Port 0: the kernel picks a free port id for us (netlink(7)).
    socket
        .bind(&SocketAddr::new(0, 0))
        .map_err(|e| LabError::io("bind", format!("AF_NETLINK socket{place}"), e))?;
    Ok((socket, place))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn netns() -> Netns {
        Netns {
            file: File::open("/dev/null").unwrap(),
            ip_name: "4242".into(),
        }
    }

    #[test]
    fn each_change_reads_as_the_ip_line_it_replaces() {
        let ns = netns();
        let cases = [
            (
                Change::AddBridge {
                    name: "labbr0",
                    mac: "02:42:0a:58:00:01",
                },
                "link add labbr0 address 02:42:0a:58:00:01 type bridge",
                "RTM_NEWLINK labbr0 type bridge address 02:42:0a:58:00:01",
            ),
            (
                Change::AddVeth {
                    name: "labv7",
                    peer: "eth0",
                    peer_mac: "02:42:0a:58:00:02",
                    netns: &ns,
                },
                "link add labv7 type veth peer name eth0 address 02:42:0a:58:00:02 netns 4242",
                "RTM_NEWLINK labv7 type veth peer eth0 address 02:42:0a:58:00:02 netns 4242",
            ),
            (
                Change::SetGroup {
                    link: "labbr0",
                    group: 427,
                },
                "link set labbr0 group 427",
                "RTM_NEWLINK labbr0 group 427",
            ),
            (
                Change::SetUp { link: "lo" },
                "link set lo up",
                "RTM_NEWLINK lo IFF_UP",
            ),
            (
                Change::SetMasterUp {
                    link: "labv7",
                    master: "labbr0",
                },
                "link set labv7 master labbr0 up",
                "RTM_NEWLINK labv7 master labbr0 IFF_UP",
            ),
            (
                Change::AddAddress {
                    link: "eth0",
                    address: Ipv4Addr::new(10, 88, 0, 2),
                    prefix: 24,
                },
                "addr add 10.88.0.2/24 dev eth0",
                "RTM_NEWADDR 10.88.0.2/24 dev eth0",
            ),
            (
                Change::AddDefaultRoute {
                    gateway: Ipv4Addr::new(10, 88, 0, 1),
                },
                "route add default via 10.88.0.1",
                "RTM_NEWROUTE default via 10.88.0.1",
            ),
            (
                Change::DeleteLink { link: "labbr0" },
                "link delete labbr0",
                "RTM_DELLINK labbr0",
            ),
        ];
        for (change, ip, request) in cases {
            assert_eq!(change.ip_args(), ip);
            assert_eq!(change.request(), request);
            assert_eq!(change.to_string(), format!("ip {ip}"));
        }
    }

    #[test]
    fn macs_parse_as_ip_writes_them() {
        assert_eq!(
            parse_mac("02:42:0a:58:00:02"),
            Some(vec![2, 0x42, 10, 0x58, 0, 2])
        );
        for bad in [
            "",
            "02:42:0a:58:00",
            "02:42:0a:58:00:02:03",
            "2:42:a:58:0:2",
            "zz:42:0a:58:00:02",
        ] {
            assert_eq!(parse_mac(bad), None, "{bad}");
        }
    }

    /// One datagram as the kernel writes it: a header (length, type,
    /// flags, sequence, port) and a payload, padded to 4 bytes.
    fn message(kind: u16, sequence: u32, payload: &[u8]) -> Vec<u8> {
        let length = 16 + payload.len();
        let mut bytes = Vec::new();
        bytes.extend((length as u32).to_ne_bytes());
        bytes.extend(kind.to_ne_bytes());
        bytes.extend(0u16.to_ne_bytes());
        bytes.extend(sequence.to_ne_bytes());
        bytes.extend(0u32.to_ne_bytes());
        bytes.extend(payload);
        bytes.resize((length + 3) & !3, 0);
        bytes
    }

    fn error(code: i32) -> Vec<u8> {
        // struct nlmsgerr: the error, then the request's header.
        let mut payload = code.to_ne_bytes().to_vec();
        payload.extend([0; 16]);
        payload
    }

    #[test]
    fn answers_are_matched_by_sequence_and_read_from_their_headers() {
        let mut ifinfo = vec![0u8; 16];
        ifinfo[4..8].copy_from_slice(&7u32.to_ne_bytes());
        // An answer to another request, a link, then the ack.
        let mut datagram = message(NLMSG_ERROR, 4, &error(-libc::EEXIST));
        datagram.extend(message(libc::RTM_NEWLINK, 5, &ifinfo));
        datagram.extend(message(NLMSG_ERROR, 5, &error(0)));
        let mut links = Vec::new();
        assert_eq!(read_answer(&datagram, 5, &mut links), Some(Ok(())));
        assert_eq!(links, [7]);

        let mut links = Vec::new();
        let link_only = message(libc::RTM_NEWLINK, 5, &ifinfo);
        assert_eq!(read_answer(&link_only, 5, &mut links), None);
        assert_eq!(
            read_answer(
                &message(NLMSG_ERROR, 9, &error(-libc::ENODEV)),
                9,
                &mut links
            ),
            Some(Err(Errno::ENODEV))
        );
        assert_eq!(
            read_answer(&[1, 2, 3], 9, &mut links),
            Some(Err(Errno::EBADMSG))
        );
    }
}
