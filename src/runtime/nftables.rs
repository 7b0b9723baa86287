//! The port guard through nf_tables' own netlink interface
//! (`NETLINK_NETFILTER`, subsystem `NFNL_SUBSYS_NFTABLES`): what nft(8)
//! does with a ruleset, without running nft(8).
//!
//! nft(8) is a compiler and a netlink client: it turns `ether saddr !=
//! 02:42:... drop` into a rule of small expressions (load 6 bytes of the
//! link-layer header at offset 6 into register 1; compare register 1 with
//! these bytes; set the verdict register to drop), and sends every table,
//! chain and rule as one message inside a *batch*: `NFNL_MSG_BATCH_BEGIN`,
//! the messages, `NFNL_MSG_BATCH_END`. The kernel applies a batch as one
//! transaction: all of it or none of it, which is what makes `nft -f`
//! atomic. This module sends the same batch (`nft --debug=netlink -f FILE`
//! prints the expressions nft sends; the ones here are written after it).
//!
//! The messages are built with `netlink-packet-netfilter` (rust-netlink,
//! like `netlink-packet-route` for [`super::netlink`]), whose types mirror
//! the kernel's attributes (`NFTA_TABLE_*`, `NFTA_CHAIN_*`, `NFTA_RULE_*`,
//! `NFTA_PAYLOAD_*`, ... of linux/netfilter/nf_tables.h); the few numbers it
//! leaves as plain integers (payload bases, verdict codes, the policy, the
//! bridge hook) are named here with their header.
//!
//! [`port_guard_text`] is the same ruleset as nft(8) would read it, so
//! `--explain` can keep showing a line a student can type again by hand.

use crate::error::LabError;
use crate::runtime::netlink::{Netns, bound_socket};
use netlink_packet_core::{
    ErrorBuffer, NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST, NLMSG_ERROR,
    NetlinkBuffer, NetlinkMessage,
};
use netlink_packet_netfilter::nftables::{
    ChainAttribute, ChainMessage, Cmp, DataAttribute, Expressions, Hook, HookNumber, Immediate,
    Meta, MetaKey, NfTablesMessage, Operator, Payload, Register, RuleAttribute, RuleMessage,
    TableAttribute, TableMessage, Verdict, VerdictAttribute,
};
use netlink_packet_netfilter::none::ControlMessage;
use netlink_packet_netfilter::{NetfilterHeader, NetfilterMessage, NetfilterProtoFamily};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_NETFILTER};
use nix::errno::Errno;
use std::net::Ipv4Addr;

// linux/netfilter/nfnetlink.h: the subsystem a batch is for, carried in
// the batch messages' nfgenmsg res_id.
const NFNL_SUBSYS_NFTABLES: u16 = 10;
// linux/netfilter.h: the verdicts, as a chain policy or an immediate.
const NF_DROP: u32 = 0;
const NF_ACCEPT: u32 = 1;
// linux/netfilter_bridge.h: the bridge family's first hook.
const NF_BR_PRE_ROUTING: u32 = 0;
// linux/netfilter_bridge.h: NF_BR_PRI_FILTER_BRIDGED, nft's `priority filter`
// in the bridge family.
const NF_BR_PRI_FILTER_BRIDGED: i32 = -200;
// linux/netfilter/nf_tables.h, enum nft_payload_bases.
const NFT_PAYLOAD_LL_HEADER: u32 = 0;
const NFT_PAYLOAD_NETWORK_HEADER: u32 = 1;
// IFNAMSIZ (linux/if.h): nft compares a whole interface name, padded.
const IFNAMSIZ: usize = 16;
// linux/if_ether.h
const ETH_P_IP: u16 = 0x0800;
const ETH_P_ARP: u16 = 0x0806;
// RFC 826 / linux/if_arp.h: ARPHRD_ETHER.
const ARPHRD_ETHER: u16 = 1;

/// An nf_tables family, as nft(8) names it and as nfgenmsg carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// `ip`: IPv4 packets (the lab's NAT and published ports).
    Ip,
    /// `bridge`: frames as a bridge switches them (the port guard).
    Bridge,
}

impl Family {
    /// The word nft(8) uses (`table bridge NAME`).
    pub fn nft_name(self) -> &'static str {
        match self {
            Family::Ip => "ip",
            Family::Bridge => "bridge",
        }
    }

    fn proto(self) -> NetfilterProtoFamily {
        match self {
            Family::Ip => NetfilterProtoFamily::IPv4,
            Family::Bridge => NetfilterProtoFamily::Bridge,
        }
    }
}

/// The port guard as nft(8) reads it: the text `--explain` shows, and what
/// [`load_port_guard`] loads. See `net.rs` for why each rule is there.
pub fn port_guard_text(table: &str, port: &str, mac: [u8; 6], ip: Ipv4Addr) -> String {
    let mac = mac_text(mac);
    format!(
        "table bridge {table} {{\n  chain prerouting {{\n    type filter hook prerouting priority filter; policy accept;\n    iifname \"{port}\" jump from_container\n  }}\n  chain from_container {{\n    ether saddr != {mac} drop\n    arp htype 1 arp ptype ip arp saddr ether {mac} arp saddr ip {ip} accept\n    ip saddr {ip} accept\n    drop\n  }}\n}}\n"
    )
}

/// `02:42:0a:58:00:07`
fn mac_text(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|byte| format!("{byte:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Load the port guard ([`port_guard_text`]) into the caller's network
/// namespace as one transaction. A table of that name already there is
/// EEXIST, and nothing is changed.
pub fn load_port_guard(
    table: &str,
    port: &str,
    mac: [u8; 6],
    ip: Ipv4Addr,
) -> Result<(), LabError> {
    Nftnl::open()?.load_port_guard(table, port, mac, ip)
}

/// `nft delete table FAMILY TABLE`, with everything in it, in the caller's
/// network namespace. ENOENT when there is no such table.
pub fn delete_table(family: Family, table: &str) -> Result<(), LabError> {
    Nftnl::open()?.delete_table(family, table)
}

/// One message of a batch, with what it is for errors
/// (`NFT_MSG_NEWTABLE bridge container-lab-c7`).
struct Request {
    message: NfTablesMessage,
    flags: u16,
    what: String,
}

/// A NETLINK_NETFILTER socket: every batch sent on it acts on the network
/// namespace it was created in.
pub struct Nftnl {
    socket: Socket,
    sequence: std::cell::Cell<u32>,
    /// `""` for the runtime's own namespace, else ` (netns NAME)`.
    place: String,
}

impl Nftnl {
    /// A socket on the caller's own network namespace.
    pub fn open() -> Result<Nftnl, LabError> {
        Nftnl::with_socket(bound_socket(NETLINK_NETFILTER, "NETLINK_NETFILTER", None)?)
    }

    /// A socket on another network namespace (see [`bound_socket`]).
    pub fn open_in(netns: &Netns) -> Result<Nftnl, LabError> {
        Nftnl::with_socket(bound_socket(
            NETLINK_NETFILTER,
            "NETLINK_NETFILTER",
            Some(netns),
        )?)
    }

    fn with_socket((socket, place): (Socket, String)) -> Result<Nftnl, LabError> {
        Ok(Nftnl {
            socket,
            sequence: std::cell::Cell::new(1),
            place,
        })
    }

    /// [`load_port_guard`], on this socket's namespace.
    pub fn load_port_guard(
        &self,
        table: &str,
        port: &str,
        mac: [u8; 6],
        ip: Ipv4Addr,
    ) -> Result<(), LabError> {
        self.batch(Family::Bridge, port_guard_batch(table, port, mac, ip))
    }

    /// [`delete_table`], on this socket's namespace.
    pub fn delete_table(&self, family: Family, table: &str) -> Result<(), LabError> {
        self.batch(
            family,
            vec![Request {
                message: NfTablesMessage::DeleteTable(TableMessage {
                    attributes: vec![TableAttribute::Name(table.to_string())],
                }),
                flags: 0,
                what: format!("NFT_MSG_DELTABLE {} {table}", family.nft_name()),
            }],
        )
    }

    /// Send `requests` as one batch and wait for the kernel's answer to
    /// each (every message asks for an ACK, so success is reported too).
    /// The first error names the message the kernel refused; the kernel
    /// then has undone the whole batch.
    fn batch(&self, family: Family, requests: Vec<Request>) -> Result<(), LabError> {
        let first = self.sequence.get();
        let count = requests.len() as u32 + 2;
        self.sequence.set(first.wrapping_add(count));
        let mut bytes = Vec::new();
        // The batch's own messages: family unspec, res_id the subsystem.
        let control = |message: ControlMessage, sequence: u32, bytes: &mut Vec<u8>| {
            let header =
                NetfilterHeader::new(NetfilterProtoFamily::Unspec, 0, NFNL_SUBSYS_NFTABLES);
            emit(
                NetfilterMessage::new(header, message),
                NLM_F_REQUEST,
                sequence,
                bytes,
            );
        };
        control(ControlMessage::BatchBegin, first, &mut bytes);
        for (index, request) in requests.iter().enumerate() {
            let header = NetfilterHeader::new(family.proto(), 0, 0);
            emit(
                NetfilterMessage::new(header, request.message.clone()),
                NLM_F_REQUEST | NLM_F_ACK | request.flags,
                first + 1 + index as u32,
                &mut bytes,
            );
        }
        control(ControlMessage::BatchEnd, first + count - 1, &mut bytes);
        let fail = |what: &str, errno: Errno| LabError::StepFailed {
            syscall: "netlink",
            target: format!("{what}{}", self.place),
            errno,
        };
        self.socket
            .send_to(&bytes, &SocketAddr::new(0, 0), 0)
            .map_err(|e| fail("NFNL_MSG_BATCH", crate::error::errno_of(&e)))?;
        let mut answered = vec![false; requests.len()];
        while answered.iter().any(|done| !done) {
            let (datagram, _) = self
                .socket
                .recv_from_full()
                .map_err(|e| fail("NFNL_MSG_BATCH", crate::error::errno_of(&e)))?;
            for (sequence, code) in
                acks(&datagram).map_err(|errno| fail("NFNL_MSG_BATCH", errno))?
            {
                let index = sequence.wrapping_sub(first + 1) as usize;
                match (requests.get(index), code) {
                    (Some(_), 0) => answered[index] = true,
                    (Some(request), code) => {
                        return Err(fail(&request.what, Errno::from_raw(-code)));
                    }
                    // An error for the batch's begin or end: the batch
                    // as a whole was refused.
                    (None, 0) => {}
                    (None, code) => return Err(fail("NFNL_MSG_BATCH", Errno::from_raw(-code))),
                }
            }
        }
        Ok(())
    }
}

/// Serialise one message onto `bytes` (netlink messages in one datagram
/// follow each other, each aligned to 4 bytes: `buffer_len` includes it).
fn emit(message: NetfilterMessage, flags: u16, sequence: u32, bytes: &mut Vec<u8>) {
    let mut packet = NetlinkMessage::from(message);
    packet.header.flags = flags;
    packet.header.sequence_number = sequence;
    packet.finalize();
    let start = bytes.len();
    bytes.resize(start + packet.buffer_len(), 0);
    packet.serialize(&mut bytes[start..]);
    bytes.resize((bytes.len() + 3) & !3, 0);
}

/// The (sequence, error) of each NLMSG_ERROR in one datagram; error 0 is
/// an acknowledgement, else minus an errno (netlink(7)).
fn acks(datagram: &[u8]) -> Result<Vec<(u32, i32)>, Errno> {
    let mut found = Vec::new();
    let mut rest = datagram;
    while !rest.is_empty() {
        let message = NetlinkBuffer::new_checked(rest).map_err(|_| Errno::EBADMSG)?;
        let length = message.length() as usize;
        if message.message_type() == NLMSG_ERROR {
            let error = ErrorBuffer::new_checked(message.payload()).map_err(|_| Errno::EBADMSG)?;
            found.push((
                message.sequence_number(),
                error.code().map_or(0, |code| code.get()),
            ));
        }
        rest = rest.get((length + 3) & !3..).unwrap_or_default();
    }
    Ok(found)
}

/// The table, its two chains and five rules, in the order nft(8) sends
/// them: both chains before any rule, since `jump from_container` names a
/// chain the kernel must find (in this same transaction).
fn port_guard_batch(table: &str, port: &str, mac: [u8; 6], ip: Ipv4Addr) -> Vec<Request> {
    let chain = |name: &str, base: bool| {
        let mut attributes = vec![
            ChainAttribute::Table(table.to_string()),
            ChainAttribute::Name(name.to_string()),
        ];
        if base {
            attributes.extend([
                ChainAttribute::Hook(vec![
                    Hook::Number(HookNumber::Other(NF_BR_PRE_ROUTING)),
                    Hook::Priority(NF_BR_PRI_FILTER_BRIDGED as u32),
                ]),
                ChainAttribute::Policy(NF_ACCEPT),
                ChainAttribute::Type("filter".to_string()),
            ]);
        }
        Request {
            message: NfTablesMessage::NewChain(ChainMessage { attributes }),
            flags: NLM_F_CREATE,
            what: format!("NFT_MSG_NEWCHAIN bridge {table} {name}"),
        }
    };
    let rule = |chain: &str, expressions: Vec<Expressions>, text: &str| Request {
        message: NfTablesMessage::NewRule(RuleMessage {
            attributes: vec![
                RuleAttribute::Table(table.to_string()),
                RuleAttribute::Chain(chain.to_string()),
                RuleAttribute::Expressions(expressions.into_iter().map(Into::into).collect()),
            ],
        }),
        // Appended, in order, as nft(8) adds rules.
        flags: NLM_F_CREATE | NLM_F_APPEND,
        what: format!("NFT_MSG_NEWRULE bridge {table} {chain} '{text}'"),
    };
    let mut name = [0u8; IFNAMSIZ];
    let length = port.len().min(IFNAMSIZ - 1);
    name[..length].copy_from_slice(&port.as_bytes()[..length]);
    // ARP's sender hardware and protocol addresses follow each other
    // (RFC 826: htype 2, ptype 2, hlen 1, plen 1, op 2, sha 6, spa 4):
    // one load of 10 bytes at offset 8 covers both, as nft loads them.
    let mut sender = mac.to_vec();
    sender.extend(ip.octets());
    let mut types = ARPHRD_ETHER.to_be_bytes().to_vec();
    types.extend(ETH_P_IP.to_be_bytes());
    vec![
        Request {
            message: NfTablesMessage::NewTable(TableMessage {
                attributes: vec![TableAttribute::Name(table.to_string())],
            }),
            // EXCL: a table of that name already there is EEXIST, not a
            // second guard merged into the first.
            flags: NLM_F_CREATE | NLM_F_EXCL,
            what: format!("NFT_MSG_NEWTABLE bridge {table}"),
        },
        chain("prerouting", true),
        chain("from_container", false),
        rule(
            "prerouting",
            vec![
                meta(MetaKey::Iifname),
                cmp(Operator::Equal, &name),
                verdict(Verdict::Jump, Some("from_container")),
            ],
            &format!("iifname \"{port}\" jump from_container"),
        ),
        rule(
            "from_container",
            vec![
                payload(NFT_PAYLOAD_LL_HEADER, 6, 6),
                cmp(Operator::NotEqual, &mac),
                verdict(Verdict::Other(NF_DROP), None),
            ],
            "ether saddr != MAC drop",
        ),
        rule(
            "from_container",
            vec![
                payload(NFT_PAYLOAD_LL_HEADER, 12, 2),
                cmp(Operator::Equal, &ETH_P_ARP.to_be_bytes()),
                payload(NFT_PAYLOAD_NETWORK_HEADER, 0, 4),
                cmp(Operator::Equal, &types),
                payload(NFT_PAYLOAD_NETWORK_HEADER, 8, 10),
                cmp(Operator::Equal, &sender),
                verdict(Verdict::Other(NF_ACCEPT), None),
            ],
            "arp htype 1 arp ptype ip arp saddr ether MAC arp saddr ip IP accept",
        ),
        rule(
            "from_container",
            vec![
                payload(NFT_PAYLOAD_LL_HEADER, 12, 2),
                cmp(Operator::Equal, &ETH_P_IP.to_be_bytes()),
                // struct iphdr: saddr at offset 12 (RFC 791).
                payload(NFT_PAYLOAD_NETWORK_HEADER, 12, 4),
                cmp(Operator::Equal, &ip.octets()),
                verdict(Verdict::Other(NF_ACCEPT), None),
            ],
            "ip saddr IP accept",
        ),
        rule(
            "from_container",
            vec![verdict(Verdict::Other(NF_DROP), None)],
            "drop",
        ),
    ]
}

/// `meta load KEY => reg 1`
fn meta(key: MetaKey) -> Expressions {
    Expressions::Meta(vec![
        Meta::DestinationRegister(Register::Reg1),
        Meta::Key(key),
    ])
}

/// `payload load LENGTHb @ BASE header + OFFSET => reg 1`
fn payload(base: u32, offset: u32, length: u32) -> Expressions {
    Expressions::Payload(vec![
        Payload::DestinationRegister(Register::Reg1),
        Payload::Base(base),
        Payload::Offset(offset),
        Payload::Len(length),
    ])
}

/// `cmp OP reg 1 DATA`
fn cmp(operator: Operator, data: &[u8]) -> Expressions {
    Expressions::Cmp(vec![
        Cmp::SourceRegister(Register::Reg1),
        Cmp::Op(operator),
        Cmp::Data(DataAttribute::Value(data.to_vec())),
    ])
}

/// `immediate reg 0 VERDICT [-> CHAIN]`
fn verdict(code: Verdict, chain: Option<&str>) -> Expressions {
    let mut attributes = vec![VerdictAttribute::Code(code)];
    attributes.extend(chain.map(|chain| VerdictAttribute::Chain(chain.to_string())));
    Expressions::Immediate(vec![
        Immediate::DestinationRegister(Register::Verdict),
        Immediate::Data(DataAttribute::Verdict(attributes)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_is_the_ruleset_nft_reads() {
        let text = port_guard_text(
            "container-lab-c1",
            "labv1",
            [2, 0x42, 10, 0x58, 0, 7],
            Ipv4Addr::new(10, 88, 0, 7),
        );
        assert!(text.starts_with("table bridge container-lab-c1 {"));
        assert!(text.contains("iifname \"labv1\" jump from_container"));
        assert!(text.contains("ether saddr != 02:42:0a:58:00:07 drop"));
        assert!(text.contains("ip saddr 10.88.0.7 accept"));
    }

    #[test]
    fn a_batch_is_begin_messages_end_and_acks_are_read() {
        let requests =
            port_guard_batch("t", "labv1", [2, 0x42, 10, 0x58, 0, 7], Ipv4Addr::LOCALHOST);
        assert_eq!(requests.len(), 8);
        assert!(requests[0].what.starts_with("NFT_MSG_NEWTABLE"));
        let mut bytes = Vec::new();
        let header = NetfilterHeader::new(NetfilterProtoFamily::Unspec, 0, NFNL_SUBSYS_NFTABLES);
        emit(
            NetfilterMessage::new(header, ControlMessage::BatchBegin),
            NLM_F_REQUEST,
            7,
            &mut bytes,
        );
        // nlmsghdr: length 20, type NFNL_MSG_BATCH_BEGIN (16), then an
        // nfgenmsg whose res_id is the subsystem, big-endian.
        assert_eq!(bytes.len(), 20);
        assert_eq!(&bytes[4..6], &16u16.to_ne_bytes());
        assert_eq!(&bytes[16..20], &[0, 0, 0, 10]);

        let mut ack = Vec::new();
        ack.extend(36u32.to_ne_bytes());
        ack.extend(NLMSG_ERROR.to_ne_bytes());
        ack.extend([0; 2]);
        ack.extend(9u32.to_ne_bytes());
        ack.extend([0; 4]);
        ack.extend((-libc::EEXIST).to_ne_bytes());
        ack.extend([0; 16]);
        assert_eq!(acks(&ack), Ok(vec![(9, -libc::EEXIST)]));
        assert_eq!(acks(&[1, 2]), Err(Errno::EBADMSG));
    }
}
