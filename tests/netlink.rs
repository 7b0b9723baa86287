//! src/runtime/netlink.rs, for real: links, addresses and routes made by
//! rtnetlink inside throwaway network namespaces that the tests create and
//! delete (also when they fail). The machine's own interfaces are only ever
//! read, never changed; traffic stays between the namespaces made here.

mod common;
use common::netns::Netns as Scratch;
use common::*;
use container_lab::error::LabError;
use container_lab::runtime::netlink::{Change, Netns, Rtnl};
use nix::errno::Errno;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

const BRIDGE_MAC: &str = "02:42:0a:e7:00:01";
const PEER_MAC: &str = "02:42:0a:e7:00:02";
const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 231, 0, 1);
const ADDRESS: Ipv4Addr = Ipv4Addr::new(10, 231, 0, 2);

fn handle(scratch: &Scratch) -> Netns {
    Netns::open(format!("/run/netns/{}", scratch.name).as_ref()).unwrap()
}

/// What ch04's `wire` does, end to end: the bridge in `host`, a veth with
/// its peer made inside `ctr` as eth0, the address and route inside.
fn wire_with_netlink(host: &Netns, ctr: &Netns) {
    let outside = Rtnl::open_in(host).unwrap();
    let inside = Rtnl::open_in(ctr).unwrap();
    for change in [
        Change::AddBridge {
            name: "labbr0",
            mac: BRIDGE_MAC,
        },
        Change::SetGroup {
            link: "labbr0",
            group: 427,
        },
        Change::AddAddress {
            link: "labbr0",
            address: GATEWAY,
            prefix: 24,
        },
        Change::SetUp { link: "labbr0" },
        Change::AddVeth {
            name: "labv1",
            peer: "eth0",
            peer_mac: PEER_MAC,
            netns: ctr,
        },
        Change::SetMasterUp {
            link: "labv1",
            master: "labbr0",
        },
    ] {
        outside.apply(&change).unwrap();
    }
    for change in [
        Change::AddAddress {
            link: "eth0",
            address: ADDRESS,
            prefix: 24,
        },
        Change::SetUp { link: "eth0" },
        Change::SetUp { link: "lo" },
        Change::AddDefaultRoute { gateway: GATEWAY },
    ] {
        inside.apply(&change).unwrap();
    }
}

/// The same wiring with ip(8), as ch04 did it: one process per step, the
/// host's steps run from a thread inside `host`, the container's from one
/// inside `ctr` (a child inherits its parent thread's namespace).
fn wire_with_ip(host: &Scratch, ctr: &Scratch) {
    let run = |scratch: &Scratch, lines: Vec<String>| {
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    scratch.enter_this_thread();
                    for line in lines {
                        let status = Command::new("ip").args(line.split(' ')).status().unwrap();
                        assert!(status.success(), "ip {line}");
                    }
                })
                .join()
                .unwrap()
        })
    };
    run(
        host,
        vec![
            format!("link add labbr0 address {BRIDGE_MAC} type bridge"),
            "link set labbr0 group 427".into(),
            format!("addr add {GATEWAY}/24 dev labbr0"),
            "link set labbr0 up".into(),
            format!(
                "link add labv1 type veth peer name eth0 address {PEER_MAC} netns {}",
                ctr.name
            ),
            "link set labv1 master labbr0 up".into(),
        ],
    );
    run(
        ctr,
        vec![
            format!("addr add {ADDRESS}/24 dev eth0"),
            "link set eth0 up".into(),
            "link set lo up".into(),
            format!("route add default via {GATEWAY}"),
        ],
    );
}

fn json(scratch: &Scratch, args: &[&str]) -> Value {
    let mut all = vec!["-j"];
    all.extend(args);
    serde_json::from_str(&scratch.ip(&all)).unwrap()
}

/// Connect to `to`:`port` from inside `from`; what the listener answers.
fn connect_from(from: &Scratch, to: Ipv4Addr, port: u16) -> std::io::Result<String> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                from.enter_this_thread();
                let mut stream =
                    TcpStream::connect_timeout(&(to, port).into(), Duration::from_secs(5))?;
                stream.set_read_timeout(Some(Duration::from_secs(5)))?;
                let mut answer = String::new();
                stream.read_to_string(&mut answer)?;
                Ok(answer)
            })
            .join()
            .unwrap()
    })
}

/// A listener inside `scratch` on every address, answering "hello" to
/// `count` connections.
fn listen_in(scratch: &Scratch, count: usize) -> (u16, std::thread::JoinHandle<()>) {
    let (sender, receiver) = std::sync::mpsc::channel();
    let scratch_fd = handle(scratch);
    let thread = std::thread::spawn(move || {
        nix::sched::setns(scratch_fd.file(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let listener = TcpListener::bind("0.0.0.0:0").unwrap();
        sender.send(listener.local_addr().unwrap().port()).unwrap();
        for stream in listener.incoming().take(count) {
            let _ = stream.unwrap().write_all(b"hello");
        }
    });
    (receiver.recv().unwrap(), thread)
}

as_root!(
    /// The whole wiring, checked as ip(8) reports it and by a TCP
    /// connection from the container's namespace to the bridge's address
    /// and, through the default route, to an address beyond it.
    a_container_is_wired_and_reaches_the_host,
    {
        let host = Scratch::new("nl-host");
        let ctr = Scratch::new("nl-ctr");
        wire_with_netlink(&handle(&host), &handle(&ctr));

        let bridge = &json(&host, &["-d", "link", "show", "labbr0"])[0];
        assert_eq!(bridge["address"], BRIDGE_MAC);
        assert_eq!(bridge["linkinfo"]["info_kind"], "bridge", "{bridge}");
        assert_eq!(bridge["group"], "427", "{bridge}");
        assert!(bridge["flags"].as_array().unwrap().contains(&"UP".into()));
        let port = &json(&host, &["link", "show", "labv1"])[0];
        assert_eq!(port["master"], "labbr0", "{port}");
        assert!(port["flags"].as_array().unwrap().contains(&"UP".into()));
        let gateway = &json(&host, &["-4", "addr", "show", "dev", "labbr0"])[0]["addr_info"][0];
        assert_eq!(gateway["local"], GATEWAY.to_string());
        assert_eq!(gateway["prefixlen"], 24);

        // Made inside the container's namespace, not moved there: the
        // host's namespace never had an eth0 of ours.
        let eth0 = &json(&ctr, &["-d", "link", "show", "eth0"])[0];
        assert_eq!(eth0["address"], PEER_MAC);
        assert_eq!(eth0["linkinfo"]["info_kind"], "veth", "{eth0}");
        assert_eq!(eth0["operstate"], "UP", "{eth0}");
        let lo = &json(&ctr, &["link", "show", "lo"])[0];
        assert!(lo["flags"].as_array().unwrap().contains(&"UP".into()));
        let inside = &json(&ctr, &["-4", "addr", "show", "dev", "eth0"])[0]["addr_info"][0];
        assert_eq!(inside["local"], ADDRESS.to_string());
        assert_eq!(inside["prefixlen"], 24);
        let route = &json(&ctr, &["-d", "-4", "route", "show", "default"])[0];
        assert_eq!(route["gateway"], GATEWAY.to_string(), "{route}");
        assert_eq!(route["dev"], "eth0");
        assert_eq!(route["protocol"], "boot", "as ip(8) marks it: {route}");
        assert_eq!(route["type"], "unicast");
        assert_eq!(route["scope"], "global");

        // An address of the host's namespace that is not on the bridge:
        // reachable only through the default route.
        let beyond = Ipv4Addr::new(192, 0, 2, 1);
        host.ip(&["addr", "add", &format!("{beyond}/32"), "dev", "lo"]);
        let (port, listener) = listen_in(&host, 2);
        assert_eq!(connect_from(&ctr, GATEWAY, port).unwrap(), "hello");
        assert_eq!(connect_from(&ctr, beyond, port).unwrap(), "hello");
        listener.join().unwrap();
    }
);

as_root!(
    /// Deleting a link by name; `open` answers for the calling thread's
    /// namespace (here a scratch one, never the machine's).
    a_link_is_deleted_by_name,
    {
        let host = Scratch::new("nl-del");
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    host.enter_this_thread();
                    let rtnl = Rtnl::open().unwrap();
                    let bridge = Change::AddBridge {
                        name: "labbr9",
                        mac: BRIDGE_MAC,
                    };
                    rtnl.apply(&bridge).unwrap();
                    assert!(nix::net::if_::if_nametoindex("labbr9").is_ok());
                    rtnl.apply(&Change::DeleteLink { link: "labbr9" }).unwrap();
                    assert!(nix::net::if_::if_nametoindex("labbr9").is_err());
                })
                .join()
                .unwrap()
        });
        assert_eq!(json(&host, &["link", "show", "type", "bridge"]), Value::Array(vec![]));
    }
);

/// The errno of a failed change, after checking the error's shape.
fn failure(rtnl: &Rtnl, change: Change<'_>, scratch: &Scratch) -> Errno {
    match rtnl.apply(&change) {
        Err(
            ref error @ LabError::StepFailed {
                syscall,
                ref target,
                errno,
            },
        ) => {
            assert_eq!(syscall, "netlink");
            assert_eq!(
                *target,
                format!("{} (netns /run/netns/{})", change.request(), scratch.name)
            );
            assert!(
                error.to_string().starts_with(&format!(
                    "netlink {}",
                    change.request().split(' ').next().unwrap()
                )),
                "{error}"
            );
            errno
        }
        other => panic!(
            "{}: expected a failed step, got {other:?}",
            change.request()
        ),
    }
}

as_root!(
    /// What goes wrong is the kernel's own errno, with the request named.
    errors_are_the_kernels_errno_with_the_request,
    {
        let host = Scratch::new("nl-err");
        let ctr = Scratch::new("nl-err-ctr");
        let rtnl = Rtnl::open_in(&handle(&host)).unwrap();
        let bridge = Change::AddBridge {
            name: "labbr0",
            mac: BRIDGE_MAC,
        };
        rtnl.apply(&bridge).unwrap();
        assert_eq!(failure(&rtnl, bridge, &host), Errno::EEXIST);
        let ctr_handle = handle(&ctr);
        let veth = Change::AddVeth {
            name: "labbr0",
            peer: "eth0",
            peer_mac: PEER_MAC,
            netns: &ctr_handle,
        };
        assert_eq!(failure(&rtnl, veth, &host), Errno::EEXIST);
        for missing in [
            Change::SetUp { link: "nosuch0" },
            Change::SetGroup {
                link: "nosuch0",
                group: 427,
            },
            Change::SetMasterUp {
                link: "nosuch0",
                master: "labbr0",
            },
            Change::SetMasterUp {
                link: "labbr0",
                master: "nosuch0",
            },
            Change::AddAddress {
                link: "nosuch0",
                address: GATEWAY,
                prefix: 24,
            },
            Change::DeleteLink { link: "nosuch0" },
        ] {
            assert_eq!(failure(&rtnl, missing, &host), Errno::ENODEV);
        }
        let bad_mac = Change::AddBridge {
            name: "labbr1",
            mac: "02:42",
        };
        assert_eq!(failure(&rtnl, bad_mac, &host), Errno::EINVAL);
        // No route to the gateway yet: the kernel cannot reach it.
        let route = Change::AddDefaultRoute { gateway: GATEWAY };
        assert_eq!(failure(&rtnl, route, &host), Errno::ENETUNREACH);
        // Narrated or not, the same error.
        let quiet = container_lab::narrator::Narrator::new(false, false).unwrap();
        let message = rtnl
            .run(&quiet, &Change::SetUp { link: "nosuch0" }, "bring it up")
            .unwrap_err()
            .to_string();
        assert_eq!(
            message,
            format!(
                "netlink RTM_NEWLINK nosuch0 IFF_UP (netns /run/netns/{}): no such device (ENODEV)",
                host.name
            )
        );
    }
);

as_root!(
    /// Not a timed test: how long the wiring takes through netlink and
    /// through ip(8), printed for `cargo test --test netlink -- --ignored
    /// --nocapture`.
    #[ignore]
    measure_netlink_against_ip,
    {
        let rounds: usize = std::env::var("ROUNDS")
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(50);
        let mut times: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
        for round in 0..rounds * 2 {
            let host = Scratch::new("nl-bench-host");
            let ctr = Scratch::new("nl-bench-ctr");
            let (host_fd, ctr_fd) = (handle(&host), handle(&ctr));
            let start = Instant::now();
            if round % 2 == 0 {
                wire_with_netlink(&host_fd, &ctr_fd);
            } else {
                wire_with_ip(&host, &ctr);
            }
            times[round % 2].push(start.elapsed());
            // Each way left the same result behind.
            assert_eq!(json(&ctr, &["-4", "route", "show", "default"])[0]["gateway"], GATEWAY.to_string());
        }
        for (name, mut samples) in ["netlink", "ip(8)"].into_iter().zip(times) {
            samples.sort();
            let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
            eprintln!(
                "{name:8} {rounds} wire-ups: median {:?}, mean {mean:?}, min {:?}, max {:?}",
                samples[samples.len() / 2],
                samples[0],
                samples[samples.len() - 1]
            );
        }
    }
);
