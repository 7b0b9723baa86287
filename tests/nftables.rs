//! src/runtime/nftables.rs, for real: the lab's three tables (port guard,
//! bridge NAT, published ports) loaded over nf_tables netlink inside
//! throwaway network namespaces that the tests create and delete (also
//! when they fail), and compared with what nft(8) loads from the same
//! ruleset text in the same namespace. The machine's own tables
//! are never read nor changed.

mod common;
use common::netns::Netns as Scratch;
use common::*;
use container_lab::error::LabError;
use container_lab::runtime::net::{PortMapping, bridge_table, port_guard, published_ports};
use container_lab::runtime::netlink::Netns;
use container_lab::runtime::nftables::{Family, Nftnl, Table};
use nix::errno::Errno;
use std::net::Ipv4Addr;
use std::process::Output;
use std::time::{Duration, Instant};

const TABLE: &str = "container-lab-c7";
const TEXT_TABLE: &str = "container-lab-text";
const PORT: &str = "labv7";
const IP: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 7);

fn socket(scratch: &Scratch) -> Nftnl {
    let netns = Netns::open(format!("/run/netns/{}", scratch.name).as_ref()).unwrap();
    Nftnl::open_in(&netns).unwrap()
}

fn nft(scratch: &Scratch, args: &[&str], stdin: &str) -> Output {
    require_tool("nft", "nftables");
    output_with_input(scratch.command("nft").args(args), stdin.as_bytes())
}

/// `nft ARGS list table FAMILY NAME`, with the table's name made `T`, or
/// None when there is no such table.
fn listing(scratch: &Scratch, flags: &[&str], family: Family, table: &str) -> Option<String> {
    let mut args = flags.to_vec();
    args.extend(["list", "table", family.nft_name(), table]);
    let output = nft(scratch, &args, "");
    output
        .status
        .success()
        .then(|| stdout(&output).replace(table, "T"))
}

/// `nft -j list table`, without the table's handle (a number the kernel
/// counts per namespace, so the second table always has another).
fn json(scratch: &Scratch, family: Family, table: &str) -> serde_json::Value {
    let mut value: serde_json::Value =
        serde_json::from_str(&listing(scratch, &["-j"], family, table).unwrap()).unwrap();
    for object in value["nftables"].as_array_mut().unwrap() {
        if let Some(table) = object.get_mut("table") {
            table.as_object_mut().unwrap().remove("handle");
        }
    }
    value
}

/// nft(8)'s way, for comparison: the table's text on its standard input,
/// under another name.
fn load_text(scratch: &Scratch, table: &Table, name: &str) {
    let mut renamed = table.clone();
    renamed.name = name.to_string();
    let output = nft(scratch, &["-f", "-"], &renamed.text());
    assert!(output.status.success(), "nft -f: {}", stderr(&output));
}

/// Load `table` through netlink and its text through nft(8) in the same
/// namespace, check that both read back the same (as nft's ruleset text,
/// and as its JSON, which spells out each match), and return the listing.
fn loaded_both_ways(scratch: &Scratch, table: &Table) -> String {
    socket(scratch).load(table).unwrap();
    load_text(scratch, table, TEXT_TABLE);
    let ours = listing(scratch, &[], table.family, &table.name).expect("the table is there");
    let theirs = listing(scratch, &[], table.family, TEXT_TABLE).unwrap();
    assert_eq!(ours, theirs);
    assert_eq!(
        json(scratch, table.family, &table.name),
        json(scratch, table.family, TEXT_TABLE)
    );
    ours
}

/// The kernel's own expressions of both tables (`nft --debug=netlink`),
/// register by register: (ours, nft's).
fn expressions_both_ways(scratch: &Scratch, table: &Table) -> (String, String) {
    let debug = ["--debug=netlink"];
    (
        listing(scratch, &debug, table.family, &table.name).unwrap(),
        listing(scratch, &debug, table.family, TEXT_TABLE).unwrap(),
    )
}

as_root!(
    /// What the netlink batch leaves in the kernel reads back exactly as
    /// what nft(8) made of the text: as nft's ruleset, as its JSON and as
    /// the kernel's expressions (`--debug=netlink`, register by register).
    the_guard_reads_back_as_what_nft_loads_from_the_text,
    {
        let scratch = Scratch::new("nft-same");
        let ours = loaded_both_ways(&scratch, &port_guard(TABLE, PORT, IP));
        assert!(ours.contains("ether saddr != 02:42:0a:58:00:07 drop"), "{ours}");
        assert!(ours.contains("arp htype 1 arp ptype ip arp saddr ether 02:42:0a:58:00:07 arp saddr ip 10.88.0.7 accept"), "{ours}");
        assert!(ours.contains("ip saddr 10.88.0.7 accept"), "{ours}");
        // The kernel's own expressions (`nft --debug=netlink`): the same,
        // register by register, but for one match. nft tests IPv4 with
        // `meta protocol` (the skb's protocol); the module reads the
        // frame's EtherType itself, as the rule's text says.
        let (ours, theirs) = expressions_both_ways(&scratch, &port_guard(TABLE, PORT, IP));
        eprintln!("{ours}");
        let ether_type_ip =
            "[ payload load 2b @ link header + 12 => reg 1 ]\n  [ cmp eq reg 1 0x00000008 ]";
        let meta_protocol_ip = "[ meta load protocol => reg 1 ]\n  [ cmp eq reg 1 0x00000008 ]";
        assert_eq!(ours.matches(ether_type_ip).count(), 1, "{ours}");
        assert_eq!(ours.replace(ether_type_ip, meta_protocol_ip), theirs);
    }
);

as_root!(
    /// The bridge's table (masquerade, the loopback guard, isolation from
    /// other lab bridges, forwarding restricted to lab bridges) reads back
    /// as nft(8) makes it from the same text, both with the forward chain
    /// and without it, and for a prefix that is not whole bytes.
    the_bridge_table_reads_back_as_what_nft_loads_from_the_text,
    {
        let scratch = Scratch::new("nft-bridge");
        let nftnl = socket(&scratch);
        for (subnet, restrict) in [("10.88.0.0/24", true), ("10.89.16.0/20", false)] {
            let table = bridge_table("labbr0", subnet.parse().unwrap(), restrict);
            let ours = loaded_both_ways(&scratch, &table);
            eprintln!("{ours}");
            assert!(ours.contains(&format!("ip saddr {subnet} ip daddr != {subnet} masquerade")), "{ours}");
            assert!(ours.contains("oifname \"labbr0\" ip saddr 127.0.0.0/8 masquerade"), "{ours}");
            assert!(ours.contains("iifname \"labbr0\" ip daddr 127.0.0.0/8 drop"), "{ours}");
            assert!(ours.contains("oifgroup 427 ct status dnat accept"), "{ours}");
            assert_eq!(ours.contains("policy drop"), restrict, "{ours}");
            let (ours, theirs) = expressions_both_ways(&scratch, &table);
            assert_eq!(ours, theirs);
            nftnl.delete_table(Family::Ip, &table.name).unwrap();
            nftnl.delete_table(Family::Ip, TEXT_TABLE).unwrap();
        }
    }
);

as_root!(
    /// The published ports (`fib daddr type local tcp dport ... dnat to
    /// ...`, in prerouting and output) read back as nft(8) makes them.
    the_published_ports_read_back_as_what_nft_loads_from_the_text,
    {
        let scratch = Scratch::new("nft-ports");
        let ports = [
            PortMapping { host: 8080, container: 80 },
            PortMapping { host: 2222, container: 22 },
        ];
        let table = published_ports(TABLE, IP, &ports);
        let ours = loaded_both_ways(&scratch, &table);
        eprintln!("{ours}");
        let (expressions, nfts) = expressions_both_ways(&scratch, &table);
        assert_eq!(expressions, nfts);
        for rule in [
            "fib daddr type local tcp dport 8080 dnat to 10.88.0.7:80",
            "fib daddr type local tcp dport 2222 dnat to 10.88.0.7:22",
        ] {
            assert_eq!(ours.matches(rule).count(), 2, "{rule} in both chains: {ours}");
        }
    }
);

as_root!(
    /// `list_tables` finds what is there, in each family, as `nft list
    /// tables` does.
    tables_are_listed_with_their_families,
    {
        let scratch = Scratch::new("nft-list");
        let nftnl = socket(&scratch);
        assert_eq!(nftnl.list_tables().unwrap(), vec![]);
        nftnl.load(&port_guard(TABLE, PORT, IP)).unwrap();
        nftnl.load(&bridge_table("labbr0", "10.88.0.0/24".parse().unwrap(), false)).unwrap();
        let mut tables = nftnl.list_tables().unwrap();
        tables.sort_by_key(|(family, name)| (family.nft_name(), name.clone()));
        assert_eq!(
            tables,
            vec![
                (Family::Bridge, TABLE.to_string()),
                (Family::Ip, "container-lab-labbr0".to_string()),
            ]
        );
    }
);

as_root!(
    /// Deleting takes the table and its chains and rules; a second delete
    /// finds nothing (ENOENT), and names what it asked for.
    delete_removes_the_table,
    {
        let scratch = Scratch::new("nft-delete");
        let nftnl = socket(&scratch);
        nftnl.load(&port_guard(TABLE, PORT, IP)).unwrap();
        assert!(listing(&scratch, &[], Family::Bridge, TABLE).is_some());
        nftnl.delete_table(Family::Bridge, TABLE).unwrap();
        assert_eq!(listing(&scratch, &[], Family::Bridge, TABLE), None);
        let ruleset = nft(&scratch, &["list", "ruleset"], "");
        assert_eq!(stdout(&ruleset).trim(), "");
        match nftnl.delete_table(Family::Bridge, TABLE) {
            Err(LabError::StepFailed { target, errno, .. }) => {
                assert_eq!(errno, Errno::ENOENT);
                assert!(target.contains("NFT_MSG_DELTABLE bridge container-lab-c7"), "{target}");
            }
            other => panic!("second delete: {other:?}"),
        }
    }
);

as_root!(
    /// Loading a second time is refused whole: EEXIST for the table, and
    /// the first guard is left as it was (no chain or rule added twice).
    loading_twice_is_eexist_and_changes_nothing,
    {
        let scratch = Scratch::new("nft-twice");
        let nftnl = socket(&scratch);
        nftnl.load(&port_guard(TABLE, PORT, IP)).unwrap();
        let before = listing(&scratch, &["-a"], Family::Bridge, TABLE).unwrap();
        match nftnl.load(&port_guard(TABLE, PORT, IP)) {
            Err(LabError::StepFailed { target, errno, .. }) => {
                assert_eq!(errno, Errno::EEXIST);
                assert!(target.contains("NFT_MSG_NEWTABLE bridge container-lab-c7"), "{target}");
                assert!(target.contains("(netns /run/netns/"), "{target}");
            }
            other => panic!("second load: {other:?}"),
        }
        assert_eq!(listing(&scratch, &["-a"], Family::Bridge, TABLE).unwrap(), before);
    }
);

as_root!(
    /// A batch the kernel refuses leaves nothing behind, and the error
    /// names the message it refused: here a table name longer than the
    /// kernel takes (NFT_NAME_MAXLEN, 256 with its NUL).
    a_refused_batch_leaves_nothing,
    {
        let scratch = Scratch::new("nft-atomic");
        let long = "t".repeat(300);
        match socket(&scratch).load(&port_guard(&long, PORT, IP)) {
            Err(LabError::StepFailed { target, errno, .. }) => {
                eprintln!("{errno}: {target}");
                assert!(target.starts_with("NFT_MSG_NEWTABLE bridge ttt"), "{target}");
            }
            other => panic!("a 300-byte name: {other:?}"),
        }
        assert_eq!(stdout(&nft(&scratch, &["list", "ruleset"], "")).trim(), "");
    }
);

as_root!(
    /// Not a timed test: load + delete of the guard through netlink and
    /// through nft(8), printed for `cargo test --test nftables --
    /// --ignored --nocapture`.
    #[ignore]
    measure_netlink_against_nft,
    {
        let rounds: usize = std::env::var("ROUNDS")
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(50);
        let scratch = Scratch::new("nft-bench");
        let nftnl = socket(&scratch);
        let mut times: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
        for round in 0..rounds * 2 {
            let start = Instant::now();
            if round % 2 == 0 {
                nftnl.load(&port_guard(TABLE, PORT, IP)).unwrap();
                nftnl.delete_table(Family::Bridge, TABLE).unwrap();
            } else {
                load_text(&scratch, &port_guard(TABLE, PORT, IP), TABLE);
                let output = nft(&scratch, &["delete", "table", "bridge", TABLE], "");
                assert!(output.status.success(), "{}", stderr(&output));
            }
            times[round % 2].push(start.elapsed());
        }
        for (name, mut samples) in ["netlink", "nft(8)"].into_iter().zip(times) {
            samples.sort();
            let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
            eprintln!(
                "{name:8} {rounds} load+delete: median {:?}, mean {mean:?}, min {:?}, max {:?}",
                samples[samples.len() / 2],
                samples[0],
                samples[samples.len() - 1]
            );
        }
    }
);
