//! nftables rules through nf_tables' own netlink interface
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
//! A [`Rule`] is built match by match, and each match adds both its words
//! of nft(8) text and its expressions, so the text `--explain` shows (and a
//! student can feed to `nft -f`) and what goes to the kernel cannot drift
//! apart. [`Table::text`] is the whole table as nft(8) reads it.
//!
//! The messages are built with `netlink-packet-netfilter` (rust-netlink,
//! like `netlink-packet-route` for [`super::netlink`]), whose types mirror
//! the kernel's attributes (`NFTA_TABLE_*`, `NFTA_CHAIN_*`, `NFTA_RULE_*`,
//! `NFTA_PAYLOAD_*`, ... of linux/netfilter/nf_tables.h). The expressions
//! it has no type for (masq, nat, fib, ct) are written as their attributes,
//! and the numbers it leaves as plain integers (payload bases, verdict
//! codes, hooks, priorities) are named here with their header.

use crate::error::LabError;
use crate::runtime::netlink::{Netns, bound_socket};
use netlink_packet_core::{
    DefaultNla, ErrorBuffer, NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR, NetlinkBuffer, NetlinkMessage,
};
use netlink_packet_netfilter::nftables::{
    Bitwise, ChainAttribute, ChainMessage, Cmp, DataAttribute, Expressions, Hook, HookNumber,
    Immediate, Meta, MetaKey, NfTablesMessage, Operator, Payload, Register, RuleAttribute,
    RuleMessage, TableAttribute, TableMessage, Verdict, VerdictAttribute,
};
use netlink_packet_netfilter::none::ControlMessage;
use netlink_packet_netfilter::{NetfilterHeader, NetfilterMessage, NetfilterProtoFamily};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_NETFILTER};
use nix::errno::Errno;
use std::net::Ipv4Addr;

// linux/netfilter/nfnetlink.h: the subsystem a batch is for, carried in
// the batch messages' nfgenmsg res_id.
const NFNL_SUBSYS_NFTABLES: u16 = 10;
// linux/netfilter/nf_tables.h, enum nf_tables_msg_types: a table, as the
// kernel describes one in a dump.
const NFT_MSG_NEWTABLE: u16 = 0;
const NFTA_TABLE_NAME: u16 = 1;
// linux/netfilter.h: the verdicts, as a chain policy or an immediate.
const NF_DROP: u32 = 0;
const NF_ACCEPT: u32 = 1;
// linux/netfilter.h and linux/netfilter_bridge.h number their hooks alike:
// PRE_ROUTING 0, FORWARD 2, LOCAL_OUT 3, POST_ROUTING 4.
const NF_HOOK_PRE_ROUTING: u32 = 0;
const NF_HOOK_LOCAL_IN: u32 = 1;
const NF_HOOK_FORWARD: u32 = 2;
const NF_HOOK_LOCAL_OUT: u32 = 3;
const NF_HOOK_POST_ROUTING: u32 = 4;
// linux/netfilter/nf_tables.h, enum nft_payload_bases.
const NFT_PAYLOAD_LL_HEADER: u32 = 0;
const NFT_PAYLOAD_NETWORK_HEADER: u32 = 1;
const NFT_PAYLOAD_TRANSPORT_HEADER: u32 = 2;
// linux/netfilter/nf_tables.h: the attributes of the expressions
// netlink-packet-netfilter has no type for, and their values.
const NFTA_CT_DREG: u16 = 1;
const NFTA_CT_KEY: u16 = 2;
const NFT_CT_STATE: u32 = 0;
const NFT_CT_STATUS: u32 = 2;
// linux/netfilter/nf_conntrack_common.h: ct state bits, NF_CT_STATE_BIT of
// IP_CT_ESTABLISHED (0) and IP_CT_RELATED (1).
const NF_CT_STATE_ESTABLISHED: u32 = 1 << 1;
const NF_CT_STATE_RELATED: u32 = 1 << 2;
const NFTA_FIB_DREG: u16 = 1;
const NFTA_FIB_RESULT: u16 = 2;
const NFTA_FIB_FLAGS: u16 = 3;
const NFT_FIB_RESULT_ADDRTYPE: u32 = 3;
const NFTA_FIB_F_DADDR: u32 = 1 << 1;
const NFTA_NAT_TYPE: u16 = 1;
const NFTA_NAT_FAMILY: u16 = 2;
const NFTA_NAT_REG_ADDR_MIN: u16 = 3;
const NFTA_NAT_REG_PROTO_MIN: u16 = 5;
const NFT_NAT_DNAT: u32 = 1;
const NFPROTO_IPV4: u32 = 2;
// linux/netfilter/nf_tables.h, enum nft_registers: the 16-byte registers.
const NFT_REG_1: u32 = 1;
const NFT_REG_2: u32 = 2;
// linux/netfilter/nf_conntrack_common.h: IPS_DST_NAT, "this connection
// had its destination rewritten" (nft's `ct status dnat`).
const IPS_DST_NAT: u32 = 1 << 5;
// linux/rtnetlink.h: RTN_LOCAL, an address of this host (fib's `type local`).
const RTN_LOCAL: u32 = 2;
// IFNAMSIZ (linux/if.h): nft compares a whole interface name, padded.
const IFNAMSIZ: usize = 16;
// linux/if_ether.h
const ETH_P_IP: u16 = 0x0800;
const ETH_P_ARP: u16 = 0x0806;
// RFC 826 / linux/if_arp.h: ARPHRD_ETHER.
const ARPHRD_ETHER: u16 = 1;
// linux/in.h
const IPPROTO_TCP: u8 = 6;

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

    /// From nfgenmsg's family byte (NFPROTO_IPV4 2, NFPROTO_BRIDGE 7).
    fn from_number(number: u8) -> Option<Family> {
        match number {
            2 => Some(Family::Ip),
            7 => Some(Family::Bridge),
            _ => None,
        }
    }
}

/// Where a base chain hooks into the kernel's path of a packet.
#[derive(Clone, Copy, Debug)]
pub enum HookPoint {
    /// Every packet (frame, in the bridge family) as it comes in.
    Prerouting,
    /// Addressed to the host itself, after routing.
    Input,
    /// Routed (bridged) through the host, neither from nor to it.
    Forward,
    /// Sent by the host's own processes.
    Output,
    /// Every packet on its way out.
    Postrouting,
}

/// A base chain's priority, by the name nft(8) gives it: lower runs first.
#[derive(Clone, Copy, Debug)]
pub enum Priority {
    /// -300, before connection tracking.
    Raw,
    /// -100, where destination NAT happens.
    DstNat,
    /// 0 (-200 in the bridge family), where filtering happens.
    Filter,
    /// 100, where source NAT happens.
    SrcNat,
}

impl Priority {
    fn value(self, family: Family) -> i32 {
        match (self, family) {
            (Priority::Raw, _) => -300,
            (Priority::DstNat, _) => -100,
            (Priority::Filter, Family::Ip) => 0,
            // linux/netfilter_bridge.h: NF_BR_PRI_FILTER_BRIDGED.
            (Priority::Filter, Family::Bridge) => -200,
            (Priority::SrcNat, _) => 100,
        }
    }
}

/// What a base chain is hooked as: `type filter hook forward priority
/// filter; policy drop;`.
#[derive(Clone, Debug)]
pub struct Base {
    /// `filter` or `nat` (a nat chain sees only a connection's first packet).
    pub kind: &'static str,
    pub hook: HookPoint,
    pub priority: Priority,
    /// The verdict for packets no rule decided: true to drop them.
    pub drop_by_default: bool,
}

/// One rule, as nft(8) text and as the kernel's expressions.
#[derive(Clone, Debug)]
pub struct Rule {
    family: Family,
    words: Vec<String>,
    expressions: Vec<Expressions>,
}

/// A chain: a base chain when hooked, else one that rules `jump` to.
#[derive(Clone, Debug)]
pub struct Chain {
    pub name: String,
    pub base: Option<Base>,
    pub rules: Vec<Rule>,
}

/// A table with its chains, loaded as one transaction.
#[derive(Clone, Debug)]
pub struct Table {
    pub family: Family,
    pub name: String,
    pub chains: Vec<Chain>,
}

impl Chain {
    /// A base chain, `type KIND hook HOOK priority PRIORITY; policy
    /// accept;`.
    pub fn hooked(
        name: &str,
        kind: &'static str,
        hook: HookPoint,
        priority: Priority,
        rules: Vec<Rule>,
    ) -> Chain {
        Chain {
            name: name.into(),
            base: Some(Base {
                kind,
                hook,
                priority,
                drop_by_default: false,
            }),
            rules,
        }
    }

    /// A base chain whose policy is drop: what no rule accepts goes.
    pub fn dropping_the_rest(mut self) -> Chain {
        if let Some(base) = &mut self.base {
            base.drop_by_default = true;
        }
        self
    }

    /// A chain that only `jump` reaches.
    pub fn regular(name: &str, rules: Vec<Rule>) -> Chain {
        Chain {
            name: name.into(),
            base: None,
            rules,
        }
    }
}

/// `!=` in the text and `cmp neq` in the kernel when `negated`.
fn comparison(negated: bool) -> (Operator, &'static str) {
    if negated {
        (Operator::NotEqual, "!= ")
    } else {
        (Operator::Equal, "")
    }
}

impl Rule {
    /// An empty rule (it matches everything) for a table of `family`.
    pub fn new(family: Family) -> Rule {
        Rule {
            family,
            words: Vec::new(),
            expressions: Vec::new(),
        }
    }

    fn add(mut self, words: String, expressions: Vec<Expressions>) -> Rule {
        self.words.push(words);
        self.expressions.extend(expressions);
        self
    }

    /// `iifname "NAME"`: the interface (the bridge port) it came in on.
    pub fn iifname(self, negated: bool, name: &str) -> Rule {
        self.interface_name(MetaKey::Iifname, "iifname", negated, name)
    }

    /// `oifname "NAME"`: the interface it leaves through.
    pub fn oifname(self, negated: bool, name: &str) -> Rule {
        self.interface_name(MetaKey::Oifname, "oifname", negated, name)
    }

    fn interface_name(self, key: MetaKey, word: &str, negated: bool, name: &str) -> Rule {
        let (operator, not) = comparison(negated);
        let mut padded = [0u8; IFNAMSIZ];
        let length = name.len().min(IFNAMSIZ - 1);
        padded[..length].copy_from_slice(&name.as_bytes()[..length]);
        self.add(
            format!("{word} {not}\"{name}\""),
            vec![meta(key), cmp(operator, &padded)],
        )
    }

    /// `iifgroup GROUP`: it came in on a device of that group (ip-link(8)).
    pub fn iifgroup(self, group: u32) -> Rule {
        self.add(
            format!("iifgroup {group}"),
            vec![
                meta(MetaKey::Iifgroup),
                cmp(Operator::Equal, &group.to_ne_bytes()),
            ],
        )
    }

    /// `oifgroup GROUP`: it leaves through a device of that group.
    pub fn oifgroup(self, group: u32) -> Rule {
        self.add(
            format!("oifgroup {group}"),
            vec![
                meta(MetaKey::Oifgroup),
                cmp(Operator::Equal, &group.to_ne_bytes()),
            ],
        )
    }

    /// `ether saddr MAC`: the frame's source MAC (bytes 6-11 of its
    /// Ethernet header).
    pub fn ether_saddr(self, negated: bool, mac: [u8; 6]) -> Rule {
        let (operator, not) = comparison(negated);
        self.add(
            format!("ether saddr {not}{}", mac_text(mac)),
            vec![payload(NFT_PAYLOAD_LL_HEADER, 6, 6), cmp(operator, &mac)],
        )
    }

    /// `arp htype 1 arp ptype ip arp saddr ether MAC arp saddr ip IP`: an
    /// Ethernet/IPv4 ARP packet whose sender fields (RFC 826's sha and spa)
    /// are this MAC and address.
    pub fn arp_sender(self, mac: [u8; 6], ip: Ipv4Addr) -> Rule {
        // ARP's sender hardware and protocol addresses follow each other
        // (RFC 826: htype 2, ptype 2, hlen 1, plen 1, op 2, sha 6, spa 4):
        // one load of 10 bytes at offset 8 covers both, as nft loads them.
        let mut sender = mac.to_vec();
        sender.extend(ip.octets());
        let mut types = ARPHRD_ETHER.to_be_bytes().to_vec();
        types.extend(ETH_P_IP.to_be_bytes());
        self.add(
            format!(
                "arp htype 1 arp ptype ip arp saddr ether {} arp saddr ip {ip}",
                mac_text(mac)
            ),
            vec![
                payload(NFT_PAYLOAD_LL_HEADER, 12, 2),
                cmp(Operator::Equal, &ETH_P_ARP.to_be_bytes()),
                payload(NFT_PAYLOAD_NETWORK_HEADER, 0, 4),
                cmp(Operator::Equal, &types),
                payload(NFT_PAYLOAD_NETWORK_HEADER, 8, 10),
                cmp(Operator::Equal, &sender),
            ],
        )
    }

    /// `ip saddr NETWORK/PREFIX` (or one address, at /32).
    pub fn ip_saddr(self, negated: bool, network: Ipv4Addr, prefix: u8) -> Rule {
        // struct iphdr: saddr at offset 12, daddr at 16 (RFC 791).
        self.ip_address("saddr", 12, negated, network, prefix)
    }

    /// `ip daddr NETWORK/PREFIX` (or one address, at /32).
    pub fn ip_daddr(self, negated: bool, network: Ipv4Addr, prefix: u8) -> Rule {
        self.ip_address("daddr", 16, negated, network, prefix)
    }

    fn ip_address(
        self,
        word: &str,
        offset: u32,
        negated: bool,
        network: Ipv4Addr,
        prefix: u8,
    ) -> Rule {
        let (operator, not) = comparison(negated);
        let mut expressions = Vec::new();
        // In the bridge family a frame may carry anything: read its
        // EtherType first, so the address is read only from IPv4.
        if self.family == Family::Bridge {
            expressions.extend([
                payload(NFT_PAYLOAD_LL_HEADER, 12, 2),
                cmp(Operator::Equal, &ETH_P_IP.to_be_bytes()),
            ]);
        }
        let mask = u32::MAX
            .checked_shl(32 - u32::from(prefix.min(32)))
            .unwrap_or(0);
        let network = Ipv4Addr::from(u32::from(network) & mask);
        let text = if prefix >= 32 {
            expressions.extend([
                payload(NFT_PAYLOAD_NETWORK_HEADER, offset, 4),
                cmp(operator, &network.octets()),
            ]);
            format!("ip {word} {not}{network}")
        } else if prefix > 0 && prefix.is_multiple_of(8) {
            // Whole bytes: compare only those, as nft does (10.88.0.0/24 is
            // the first three bytes of the address).
            let bytes = usize::from(prefix / 8);
            expressions.extend([
                payload(NFT_PAYLOAD_NETWORK_HEADER, offset, bytes as u32),
                cmp(operator, &network.octets()[..bytes]),
            ]);
            format!("ip {word} {not}{network}/{prefix}")
        } else {
            expressions.extend([
                payload(NFT_PAYLOAD_NETWORK_HEADER, offset, 4),
                Expressions::Bitwise(vec![
                    Bitwise::SourceRegister(Register::Reg1),
                    Bitwise::DestinationRegister(Register::Reg1),
                    Bitwise::Length(4),
                    Bitwise::Mask(DataAttribute::Value(mask.to_be_bytes().to_vec())),
                    Bitwise::Xor(DataAttribute::Value(vec![0; 4])),
                ]),
                cmp(operator, &network.octets()),
            ]);
            format!("ip {word} {not}{network}/{prefix}")
        };
        self.add(text, expressions)
    }

    /// `ct status dnat`: the packet belongs to a connection whose
    /// destination the host rewrote (a published port).
    pub fn ct_status_dnat(self) -> Rule {
        self.add(
            "ct status dnat".into(),
            vec![
                other(
                    "ct",
                    &[(NFTA_CT_DREG, NFT_REG_1), (NFTA_CT_KEY, NFT_CT_STATUS)],
                ),
                Expressions::Bitwise(vec![
                    Bitwise::SourceRegister(Register::Reg1),
                    Bitwise::DestinationRegister(Register::Reg1),
                    Bitwise::Length(4),
                    Bitwise::Mask(DataAttribute::Value(IPS_DST_NAT.to_ne_bytes().to_vec())),
                    Bitwise::Xor(DataAttribute::Value(vec![0; 4])),
                ]),
                cmp(Operator::NotEqual, &[0; 4]),
            ],
        )
    }

    /// `ct state != established,related`: the packet opens a connection
    /// (or belongs to none), rather than answering one the other side
    /// opened.
    pub fn ct_state_not_established_or_related(self) -> Rule {
        let mask = NF_CT_STATE_ESTABLISHED | NF_CT_STATE_RELATED;
        self.add(
            "ct state != established,related".into(),
            vec![
                other(
                    "ct",
                    &[(NFTA_CT_DREG, NFT_REG_1), (NFTA_CT_KEY, NFT_CT_STATE)],
                ),
                Expressions::Bitwise(vec![
                    Bitwise::SourceRegister(Register::Reg1),
                    Bitwise::DestinationRegister(Register::Reg1),
                    Bitwise::Length(4),
                    Bitwise::Mask(DataAttribute::Value(mask.to_ne_bytes().to_vec())),
                    Bitwise::Xor(DataAttribute::Value(vec![0; 4])),
                ]),
                cmp(Operator::Equal, &[0; 4]),
            ],
        )
    }

    /// `fib daddr type local`: the destination is one of the host's own
    /// addresses, on any of its interfaces (a route lookup, nft(8) "FIB
    /// EXPRESSIONS").
    pub fn fib_daddr_local(self) -> Rule {
        self.add(
            "fib daddr type local".into(),
            vec![
                other(
                    "fib",
                    &[
                        (NFTA_FIB_DREG, NFT_REG_1),
                        (NFTA_FIB_RESULT, NFT_FIB_RESULT_ADDRTYPE),
                        (NFTA_FIB_FLAGS, NFTA_FIB_F_DADDR),
                    ],
                ),
                cmp(Operator::Equal, &RTN_LOCAL.to_ne_bytes()),
            ],
        )
    }

    /// `tcp dport PORT`
    pub fn tcp_dport(self, port: u16) -> Rule {
        self.add(
            format!("tcp dport {port}"),
            vec![
                meta(MetaKey::L4Proto),
                cmp(Operator::Equal, &[IPPROTO_TCP]),
                // struct tcphdr: dest at offset 2 (RFC 9293).
                payload(NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2),
                cmp(Operator::Equal, &port.to_be_bytes()),
            ],
        )
    }

    /// `accept`: this chain lets it pass (later chains on the hook still
    /// see it).
    pub fn accept(self) -> Rule {
        self.add(
            "accept".into(),
            vec![verdict(Verdict::Other(NF_ACCEPT), None)],
        )
    }

    /// `drop`: final, whatever any other chain says.
    pub fn drop(self) -> Rule {
        self.add("drop".into(), vec![verdict(Verdict::Other(NF_DROP), None)])
    }

    /// `jump CHAIN`: go on in that chain, and come back if it decides
    /// nothing.
    pub fn jump(self, chain: &str) -> Rule {
        self.add(
            format!("jump {chain}"),
            vec![verdict(Verdict::Jump, Some(chain))],
        )
    }

    /// `masquerade`: source NAT to the address of the interface the
    /// packet leaves through.
    pub fn masquerade(self) -> Rule {
        self.add("masquerade".into(), vec![other("masq", &[])])
    }

    /// `dnat to ADDRESS:PORT`: destination NAT (the rest of the connection
    /// follows through conntrack).
    pub fn dnat(self, address: Ipv4Addr, port: u16) -> Rule {
        self.add(
            format!("dnat to {address}:{port}"),
            vec![
                immediate(Register::Reg1, &address.octets()),
                immediate(Register::Reg2, &port.to_be_bytes()),
                other(
                    "nat",
                    &[
                        (NFTA_NAT_TYPE, NFT_NAT_DNAT),
                        (NFTA_NAT_FAMILY, NFPROTO_IPV4),
                        (NFTA_NAT_REG_ADDR_MIN, NFT_REG_1),
                        (NFTA_NAT_REG_PROTO_MIN, NFT_REG_2),
                    ],
                ),
            ],
        )
    }

    /// The rule as nft(8) reads it.
    pub fn text(&self) -> String {
        self.words.join(" ")
    }
}

impl Table {
    /// The table as nft(8) reads it: what `--explain` shows, and what `nft
    /// -f` would load to the same effect.
    pub fn text(&self) -> String {
        let mut text = format!("table {} {} {{\n", self.family.nft_name(), self.name);
        for chain in &self.chains {
            text.push_str(&format!("  chain {} {{\n", chain.name));
            if let Some(base) = &chain.base {
                let hook = match base.hook {
                    HookPoint::Prerouting => "prerouting",
                    HookPoint::Input => "input",
                    HookPoint::Forward => "forward",
                    HookPoint::Output => "output",
                    HookPoint::Postrouting => "postrouting",
                };
                // nft(8) takes `dstnat` by name only at prerouting.
                let priority = match (base.priority, base.hook) {
                    (Priority::Raw, _) => "raw",
                    (Priority::DstNat, HookPoint::Prerouting) => "dstnat",
                    (Priority::DstNat, _) => "-100",
                    (Priority::Filter, _) => "filter",
                    (Priority::SrcNat, _) => "srcnat",
                };
                let policy = if base.drop_by_default {
                    "drop"
                } else {
                    "accept"
                };
                text.push_str(&format!(
                    "    type {} hook {hook} priority {priority}; policy {policy};\n",
                    base.kind
                ));
            }
            for rule in &chain.rules {
                text.push_str(&format!("    {}\n", rule.text()));
            }
            text.push_str("  }\n");
        }
        text.push_str("}\n");
        text
    }

    /// The table, its chains, then their rules, in the order nft(8) sends
    /// them: every chain before any rule, since a `jump` names a chain the
    /// kernel must find (in this same transaction).
    fn requests(&self) -> Vec<Request> {
        let family = self.family.nft_name();
        let table = &self.name;
        let mut requests = vec![Request {
            message: NfTablesMessage::NewTable(TableMessage {
                attributes: vec![TableAttribute::Name(table.clone())],
            }),
            // EXCL: a table of that name already there is EEXIST, not a
            // second set of rules merged into the first.
            flags: NLM_F_CREATE | NLM_F_EXCL,
            what: format!("NFT_MSG_NEWTABLE {family} {table}"),
        }];
        for chain in &self.chains {
            let mut attributes = vec![
                ChainAttribute::Table(table.clone()),
                ChainAttribute::Name(chain.name.clone()),
            ];
            if let Some(base) = &chain.base {
                let hook = match base.hook {
                    HookPoint::Prerouting => NF_HOOK_PRE_ROUTING,
                    HookPoint::Input => NF_HOOK_LOCAL_IN,
                    HookPoint::Forward => NF_HOOK_FORWARD,
                    HookPoint::Output => NF_HOOK_LOCAL_OUT,
                    HookPoint::Postrouting => NF_HOOK_POST_ROUTING,
                };
                attributes.extend([
                    ChainAttribute::Hook(vec![
                        Hook::Number(HookNumber::Other(hook)),
                        // A signed priority, sent as its two's complement.
                        Hook::Priority(base.priority.value(self.family) as u32),
                    ]),
                    ChainAttribute::Policy(if base.drop_by_default {
                        NF_DROP
                    } else {
                        NF_ACCEPT
                    }),
                    ChainAttribute::Type(base.kind.to_string()),
                ]);
            }
            requests.push(Request {
                message: NfTablesMessage::NewChain(ChainMessage { attributes }),
                flags: NLM_F_CREATE,
                what: format!("NFT_MSG_NEWCHAIN {family} {table} {}", chain.name),
            });
        }
        for chain in &self.chains {
            for rule in &chain.rules {
                requests.push(Request {
                    message: NfTablesMessage::NewRule(RuleMessage {
                        attributes: vec![
                            RuleAttribute::Table(table.clone()),
                            RuleAttribute::Chain(chain.name.clone()),
                            RuleAttribute::Expressions(
                                rule.expressions.iter().cloned().map(Into::into).collect(),
                            ),
                        ],
                    }),
                    // Appended, in order, as nft(8) adds rules.
                    flags: NLM_F_CREATE | NLM_F_APPEND,
                    what: format!(
                        "NFT_MSG_NEWRULE {family} {table} {} '{}'",
                        chain.name,
                        rule.text()
                    ),
                });
            }
        }
        requests
    }
}

/// `02:42:0a:58:00:07`
fn mac_text(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|byte| format!("{byte:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// `nft delete table FAMILY TABLE`, with everything in it, in the caller's
/// network namespace. ENOENT when there is no such table.
pub fn delete_table(family: Family, table: &str) -> Result<(), LabError> {
    Nftnl::open()?.delete_table(family, table)
}

/// `nft list tables`, in the caller's network namespace: the tables of the
/// families the lab uses.
pub fn list_tables() -> Result<Vec<(Family, String)>, LabError> {
    Nftnl::open()?.list_tables()
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

    /// Close this socket without making the caller wait for the kernel to
    /// free what was deleted through it.
    ///
    /// nf_tables frees deleted tables, chains and rules later, from a work
    /// item, once an RCU grace period has passed (no packet can still be
    /// inside them), and the release of any bound NETLINK_NETFILTER socket
    /// first waits for that work (`nft_rcv_nl_event` in
    /// net/netfilter/nf_tables_api.c flushes it). `nft delete table` pays
    /// it too: its close(2) takes 6-20 ms here, longer than the whole rest
    /// of a container's network teardown. The deletions were committed and
    /// acknowledged before this is called, so the rules are already gone:
    /// a child process takes the last reference to the socket and does the
    /// waiting, and the runtime returns at once. The child only closes and
    /// exits; init reaps it once the runtime has exited. The last call on
    /// this socket: the caller's own reference goes when it drops it.
    pub fn close_in_background(&self) {
        use std::os::fd::AsRawFd;
        // SAFETY: the child calls only close(2) and _exit(2), both
        // async-signal-safe, so forking a process that may have threads is
        // sound.
        if let Ok(nix::unistd::ForkResult::Child) = unsafe { nix::unistd::fork() } {
            unsafe {
                libc::close(self.socket.as_raw_fd());
                libc::_exit(0);
            }
        }
        // The caller's close is not the last one now (or fork failed, and
        // it waits there after all).
    }

    /// Load `table` into this socket's namespace as one transaction. A
    /// table of that name already there is EEXIST, and nothing is changed.
    pub fn load(&self, table: &Table) -> Result<(), LabError> {
        self.batch(table.family, table.requests())
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

    /// [`list_tables`], on this socket's namespace: an `NFT_MSG_GETTABLE`
    /// dump of every family, read until NLMSG_DONE.
    pub fn list_tables(&self) -> Result<Vec<(Family, String)>, LabError> {
        let fail = |errno: Errno| LabError::StepFailed {
            syscall: "netlink",
            target: format!("NFT_MSG_GETTABLE{}", self.place),
            errno,
        };
        let sequence = self.sequence.get();
        self.sequence.set(sequence.wrapping_add(1));
        let mut bytes = Vec::new();
        emit(
            NetfilterMessage::new(
                NetfilterHeader::new(NetfilterProtoFamily::Unspec, 0, 0),
                NfTablesMessage::GetTable(TableMessage { attributes: vec![] }),
            ),
            NLM_F_REQUEST | NLM_F_DUMP,
            sequence,
            &mut bytes,
        );
        self.socket
            .send_to(&bytes, &SocketAddr::new(0, 0), 0)
            .map_err(|e| fail(crate::error::errno_of(&e)))?;
        let mut tables = Vec::new();
        loop {
            let (datagram, _) = self
                .socket
                .recv_from_full()
                .map_err(|e| fail(crate::error::errno_of(&e)))?;
            let mut rest = datagram.as_slice();
            while !rest.is_empty() {
                let message = NetlinkBuffer::new_checked(rest).map_err(|_| fail(Errno::EBADMSG))?;
                match message.message_type() {
                    NLMSG_DONE => return Ok(tables),
                    NLMSG_ERROR => {
                        let error = ErrorBuffer::new_checked(message.payload())
                            .map_err(|_| fail(Errno::EBADMSG))?;
                        if let Some(code) = error.code() {
                            return Err(fail(Errno::from_raw(-code.get())));
                        }
                    }
                    kind if kind == (NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWTABLE) => {
                        // nfgenmsg (family, version, res_id), then attributes.
                        let payload = message.payload();
                        let family = payload.first().copied().and_then(Family::from_number);
                        let name = attribute(payload.get(4..).unwrap_or_default(), NFTA_TABLE_NAME)
                            .map(|name| {
                                String::from_utf8_lossy(name)
                                    .trim_end_matches('\0')
                                    .to_string()
                            });
                        if let (Some(family), Some(name)) = (family, name) {
                            tables.push((family, name));
                        }
                    }
                    _ => {}
                }
                let length = message.length() as usize;
                rest = rest.get((length + 3) & !3..).unwrap_or_default();
            }
        }
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

/// The value of the first attribute of `kind` in a run of netlink
/// attributes (struct nlattr: length u16, type u16, value, padding to 4).
fn attribute(mut attributes: &[u8], kind: u16) -> Option<&[u8]> {
    while attributes.len() >= 4 {
        let length = u16::from_ne_bytes([attributes[0], attributes[1]]) as usize;
        let found = u16::from_ne_bytes([attributes[2], attributes[3]]) & 0x3fff;
        let value = attributes.get(4..length)?;
        if found == kind {
            return Some(value);
        }
        attributes = attributes.get((length + 3) & !3..).unwrap_or_default();
    }
    None
}

/// An expression netlink-packet-netfilter has no type for: its name and
/// its attributes, each a big-endian u32 as the kernel reads them
/// (`nla_get_be32`).
fn other(name: &str, attributes: &[(u16, u32)]) -> Expressions {
    Expressions::Other {
        expression_type: name.to_string(),
        attributes: attributes
            .iter()
            .map(|(kind, value)| DefaultNla::new(*kind, value.to_be_bytes().to_vec()))
            .collect(),
    }
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

/// `immediate reg N DATA`
fn immediate(register: Register, data: &[u8]) -> Expressions {
    Expressions::Immediate(vec![
        Immediate::DestinationRegister(register),
        Immediate::Data(DataAttribute::Value(data.to_vec())),
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

    fn guard_like() -> Table {
        let rule = || Rule::new(Family::Bridge);
        Table {
            family: Family::Bridge,
            name: "t".into(),
            chains: vec![
                Chain::hooked(
                    "prerouting",
                    "filter",
                    HookPoint::Prerouting,
                    Priority::Filter,
                    vec![rule().iifname(false, "labv1").jump("inner")],
                ),
                Chain::regular(
                    "inner",
                    vec![
                        rule().ether_saddr(true, [2, 0x42, 10, 0x58, 0, 7]).drop(),
                        rule().drop(),
                    ],
                ),
            ],
        }
    }

    #[test]
    fn text_and_expressions_are_built_together() {
        let table = guard_like();
        assert_eq!(
            table.text(),
            "table bridge t {\n  chain prerouting {\n    type filter hook prerouting priority filter; policy accept;\n    iifname \"labv1\" jump inner\n  }\n  chain inner {\n    ether saddr != 02:42:0a:58:00:07 drop\n    drop\n  }\n}\n"
        );
        let requests = table.requests();
        let whats: Vec<&str> = requests.iter().map(|r| r.what.as_str()).collect();
        assert_eq!(
            whats,
            [
                "NFT_MSG_NEWTABLE bridge t",
                "NFT_MSG_NEWCHAIN bridge t prerouting",
                "NFT_MSG_NEWCHAIN bridge t inner",
                "NFT_MSG_NEWRULE bridge t prerouting 'iifname \"labv1\" jump inner'",
                "NFT_MSG_NEWRULE bridge t inner 'ether saddr != 02:42:0a:58:00:07 drop'",
                "NFT_MSG_NEWRULE bridge t inner 'drop'",
            ]
        );
        let rule = Rule::new(Family::Ip).ether_saddr(false, [0; 6]).drop();
        assert_eq!(rule.expressions.len(), 3, "payload, cmp, verdict");
    }

    #[test]
    fn prefixes_are_masked_and_bridge_frames_checked_for_ipv4() {
        let ip = Rule::new(Family::Ip).ip_saddr(false, Ipv4Addr::new(10, 88, 0, 9), 24);
        assert_eq!(ip.text(), "ip saddr 10.88.0.0/24");
        assert_eq!(ip.expressions.len(), 2, "payload of 3 bytes, cmp");
        let odd = Rule::new(Family::Ip).ip_saddr(false, Ipv4Addr::new(10, 89, 17, 1), 20);
        assert_eq!(odd.text(), "ip saddr 10.89.16.0/20");
        assert_eq!(odd.expressions.len(), 3, "payload, bitwise, cmp");
        let host = Rule::new(Family::Ip).ip_daddr(true, Ipv4Addr::new(10, 88, 0, 9), 32);
        assert_eq!(host.text(), "ip daddr != 10.88.0.9");
        assert_eq!(host.expressions.len(), 2);
        let bridged = Rule::new(Family::Bridge).ip_saddr(false, Ipv4Addr::new(10, 88, 0, 9), 32);
        assert_eq!(bridged.expressions.len(), 4, "EtherType first");
        let all = Rule::new(Family::Ip).ip_daddr(false, Ipv4Addr::new(1, 2, 3, 4), 0);
        assert_eq!(all.text(), "ip daddr 0.0.0.0/0");
    }

    #[test]
    fn dumped_tables_are_read_by_attribute() {
        // NFTA_TABLE_NAME "ab\0" (length 7, padded to 8), then
        // NFTA_TABLE_FLAGS.
        let mut attributes = Vec::new();
        attributes.extend(7u16.to_ne_bytes());
        attributes.extend(NFTA_TABLE_NAME.to_ne_bytes());
        attributes.extend(b"ab\0\0");
        attributes.extend(8u16.to_ne_bytes());
        attributes.extend(2u16.to_ne_bytes());
        attributes.extend([0; 4]);
        assert_eq!(attribute(&attributes, NFTA_TABLE_NAME), Some(&b"ab\0"[..]));
        assert_eq!(attribute(&attributes, 2), Some(&[0u8; 4][..]));
        assert_eq!(attribute(&attributes, 3), None);
        assert_eq!(attribute(&attributes[..5], NFTA_TABLE_NAME), None);
    }

    #[test]
    fn a_batch_is_begin_messages_end_and_acks_are_read() {
        assert_eq!(guard_like().requests().len(), 6);
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
