//! ch04-net, for real, each test inside throwaway network namespaces that
//! stand in for the host (and for "the internet"): no traffic leaves them.

mod common;
use common::netns::Netns;
use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Stdio};

const CH: &str = "ch04-net";

// The checks every chapter from 02 on must pass (without a bridge: see
// host_safe_flags).
jail_suite!(CH);
mount_namespace_suite!(CH);

/// Start ch04 in `host` with `args` before ROOTFS and `command` after it.
/// Its stdin is /dev/null, never the test's own: when `cargo test` runs on
/// a terminal, a runtime that inherited it would give the container a
/// terminal of its own and relay the user's keystrokes into it, so the
/// test would run differently there than in CI.
fn start(host: &Netns, args: &[&str], command: &[&str]) -> Child {
    host.command(bin(CH))
        .args(args)
        .arg(rootfs())
        .args(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The first line the container prints (its readiness).
fn first_line(child: &mut Child) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    line
}

fn finish(child: Child) -> std::process::Output {
    child.wait_with_output().unwrap()
}

/// Nothing per-container left in `host`: no veth, no container table, no
/// lease, no port claim.
fn assert_nothing_left(host: &Netns) {
    // A container's veth goes when the kernel tears its network namespace
    // down, after the container ends, in the background on one kernel
    // worker for the whole machine: usually within milliseconds, but
    // 5.3 s once on two busy cores (two CPU hogs, other tests' namespaces
    // going too). A veth that is really left stays for good, so a long
    // deadline costs nothing when all is well.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut links = host.ip(&["-br", "link"]);
    while links.contains("labv") && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
        links = host.ip(&["-br", "link"]);
    }
    assert!(!links.contains("labv"), "veth left: {links}");
    let tables = host.nft(&["list", "tables"]);
    assert!(
        !tables.contains("container-lab-c"),
        "container table left: {tables}"
    );
    for dir in ["leases", "ports"] {
        let path = host.lab_state().join("labbr0").join(dir);
        let left: Vec<_> = std::fs::read_dir(&path)
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "{dir} left: {left:?}");
    }
}

#[test]
fn help_teaches_the_network_flags() {
    let output = run(CH, ["--help"]);
    assert_eq!(code(&output), 0);
    snapshot!("ch04_help", stdout(&output));
}

as_root!(
    /// A server in the container answers the host through the published
    /// port, on the host's loopback and on the bridge address.
    published_port_answers_on_loopback_and_bridge,
    {
        let host = Netns::new("publish");
        let mut server = start(&host, &["-p", "18080:8080"], &["/usr/local/bin/lab-probe", "--serve", "8080", "--count", "2"]);
        assert_eq!(first_line(&mut server), "listening on port 8080\n");
        for address in ["127.0.0.1:18080", "10.88.0.1:18080"] {
            let client = host.command(bin("lab-probe")).args(["--connect", address]).output().unwrap();
            assert!(stdout(&client).starts_with("hello from jail"), "{address}: {}{}", stdout(&client), stderr(&client));
        }
        let output = finish(server);
        assert_eq!(code(&output), 0, "{}", stderr(&output));
        assert_nothing_left(&host);
    }
);

as_root!(
    /// The bridge outlives its rules after a firewall reload (`nft flush
    /// ruleset`): the next container puts them back before it plugs in, so
    /// nothing routes 127.0.0.0/8 in from the bridge unguarded.
    a_flushed_ruleset_is_put_back,
    {
        let host = Netns::new("flushed");
        let first = finish(start(&host, &[], &["/bin/true"]));
        assert_eq!(code(&first), 0, "{}", stderr(&first));
        host.nft(&["flush", "ruleset"]);
        assert_eq!(host.nft(&["list", "tables"]), "");
        let second = finish(start(&host, &["--explain"], &["/bin/true"]));
        assert_eq!(code(&second), 0, "{}", stderr(&second));
        assert!(stderr(&second).contains("the bridge's rules were gone"), "{}", stderr(&second));
        let table = host.nft(&["list", "table", "ip", "container-lab-labbr0"]);
        assert!(table.contains("iifname \"labbr0\" ip daddr 127.0.0.0/8 drop"), "{table}");
        assert_nothing_left(&host);
    }
);

as_root!(
    /// A container reaches another's published port through the host's
    /// address on the bridge (hairpin NAT): the connection goes up to the
    /// host, is rewritten to the server, goes back down the same bridge,
    /// and the server sees it come from the gateway, so its answer goes
    /// back through the host too.
    a_published_port_is_reached_from_a_neighbour_through_the_gateway,
    {
        let host = Netns::new("hairpin");
        let mut server = start(&host, &["-p", "18084:8080"], &["/usr/local/bin/lab-probe", "--serve", "8080", "--count", "1"]);
        assert_eq!(first_line(&mut server), "listening on port 8080\n");
        let client = finish(start(&host, &[], &["/usr/local/bin/lab-probe", "--connect", "10.88.0.1:18084"]));
        let out = stdout(&client);
        if !out.starts_with("hello from jail") {
            // Not greeted: the server still waits; a killed runtime leaves
            // its state, so the failure is this one, not a later one.
            let _ = server.kill();
            finish(server);
            panic!("not greeted: {out}{}", stderr(&client));
        }
        // Greeted once, the server ends by itself and its runtime cleans up.
        let served = finish(server);
        assert_eq!(code(&served), 0, "{}", stderr(&served));
        assert!(out.contains("10.88.0.1"), "the server saw the gateway: {out}");
        assert_nothing_left(&host);
    }
);

as_root!(
    /// Two containers on the bridge reach each other directly (no NAT
    /// between them: the server sees the client's own address).
    two_containers_reach_each_other,
    {
        let host = Netns::new("pair");
        let script = "ip -4 -o addr show eth0; exec /usr/local/bin/lab-probe --serve 8080";
        let mut server = start(&host, &[], &["/bin/sh", "-c", script]);
        // One reader for both lines: a second BufReader would miss the
        // line the first one had already buffered (both arrive at once on
        // a busy machine), wait until the server gives up after a minute,
        // and the client would then rightly get the server's old address.
        let mut server_out = BufReader::new(server.stdout.take().unwrap());
        let mut line = String::new();
        server_out.read_line(&mut line).unwrap();
        let server_ip = line.split_whitespace().nth(3).unwrap().split('/').next().unwrap().to_string();
        let mut ready = String::new();
        server_out.read_line(&mut ready).unwrap();
        if ready != "listening on port 8080\n" {
            let _ = server.kill();
            panic!("the server is not listening: {ready:?}");
        }
        let target = format!("{server_ip}:8080");
        let client = start(&host, &[], &["/bin/sh", "-c", &format!("ip -4 -o addr show eth0; /usr/local/bin/lab-probe --connect {target}")]);
        let client = finish(client);
        let out = stdout(&client);
        let client_ip = out.split_whitespace().nth(3).unwrap().split('/').next().unwrap();
        assert!(out.contains(&format!("hello from jail, you are {client_ip}")), "{out}{}", stderr(&client));
        assert_ne!(client_ip, server_ip);
        assert_eq!(code(&finish(server)), 0);
        assert_nothing_left(&host);
    }
);

as_root!(
    /// A third namespace plays the internet: the container reaches it only
    /// through the host's NAT, and it sees the host's address as source.
    the_outside_is_reached_through_nat,
    {
        let host = Netns::new("nat-host");
        let world = Netns::new("nat-world");
        host.ip(&["link", "add", "labt-h", "type", "veth", "peer", "name", "labt-w"]);
        host.ip(&["link", "set", "labt-w", "netns", &world.name]);
        host.ip(&["addr", "add", "198.51.100.1/24", "dev", "labt-h"]);
        host.ip(&["link", "set", "labt-h", "up"]);
        world.ip(&["addr", "add", "198.51.100.2/24", "dev", "labt-w"]);
        world.ip(&["link", "set", "labt-w", "up"]);
        assert!(!world.ip(&["route"]).contains("10.88."), "the world must have no route to the containers");
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::scope(|scope| {
            scope.spawn(|| {
                world.enter_this_thread();
                let listener = std::net::TcpListener::bind("198.51.100.2:9000").unwrap();
                sender.send(()).unwrap();
                let (mut stream, peer) = listener.accept().unwrap();
                writeln!(stream, "hello from the world").unwrap();
                let mut rest = String::new();
                let _ = stream.read_to_string(&mut rest);
                sender.send(()).unwrap();
                assert_eq!(peer.ip().to_string(), "198.51.100.1", "the world must see the host's address");
            });
            receiver.recv().unwrap();
            let client = finish(start(&host, &[], &["/usr/local/bin/lab-probe", "--connect", "198.51.100.2:9000"]));
            assert_eq!(stdout(&client), "hello from the world\n", "{}", stderr(&client));
            receiver.recv().unwrap();
        });
        assert_nothing_left(&host);
    }
);

as_root!(
    /// Ten containers that run at the same time get ten addresses;
    /// afterwards no interface, lease or rule of theirs is left. Each one
    /// reports its address and then waits until all ten have: a container
    /// that has ended hands its address on, so on a busy machine one that
    /// ended before the last had started would share its address with it,
    /// rightly, and the test would prove nothing about leases.
    ten_at_once_get_ten_addresses,
    {
        let host = Netns::new("ten");
        let mut children: Vec<Child> = (0..10)
            .map(|_| {
                host.command(bin(CH))
                    .arg(rootfs())
                    .args(["/bin/sh", "-c", "ip -4 -o addr show eth0; read go"])
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        // Every line is read while all ten still run (each waits on its
        // stdin, which the test holds open).
        let lines: Vec<String> = children.iter_mut().map(first_line).collect();
        // A line for each `read`, and the containers end.
        for child in &mut children {
            let _ = child.stdin.take().unwrap().write_all(b"go\n");
        }
        let outputs: Vec<_> = children.into_iter().map(finish).collect();
        for (line, output) in lines.iter().zip(&outputs) {
            assert_eq!(code(output), 0, "{line}{}", stderr(output));
        }
        let mut addresses: Vec<&str> = lines.iter().map(|line| word_after(line, "inet")).collect();
        addresses.sort();
        addresses.dedup();
        assert_eq!(addresses.len(), 10, "{lines:?}");
        assert_nothing_left(&host);
        let links = host.ip(&["-br", "link"]);
        assert_eq!(links.lines().count(), 2, "only lo and the bridge: {links}");
    }
);

as_root!(
    /// Bad input: one clear error each, and nothing half-created.
    bad_input_is_refused_cleanly,
    {
        let host = Netns::new("bad");
        let refused = |args: &[&str], message: &str| {
            let output = finish(start(&host, args, &["/bin/true"]));
            assert_clean_failure(&output, 125, message);
        };
        refused(&["-p", "8080"], "expected HOST_PORT:CONTAINER_PORT");
        refused(&["-p", "0:80"], "host port \"0\" is not a number from 1 to 65535");
        refused(&["-p", "70000:80"], "is not a number from 1 to 65535");
        refused(&["-p", "80:80/udp"], "only tcp ports can be published");
        refused(&["--net", "none", "-p", "80:80"], "-p needs --net bridge");
        refused(&["--subnet", "10.88.0.1/24"], "did you mean 10.88.0.0/24");
        // A port something already listens on.
        std::thread::scope(|scope| {
            let (sender, receiver) = std::sync::mpsc::channel();
            let (done_sender, done) = std::sync::mpsc::channel::<()>();
            let host = &host;
            scope.spawn(move || {
                host.enter_this_thread();
                let _listener = std::net::TcpListener::bind("0.0.0.0:18090").unwrap();
                sender.send(()).unwrap();
                done.recv().unwrap();
            });
            receiver.recv().unwrap();
            refused(&["-p", "18090:80"], "host port 18090 is already in use");
            done_sender.send(()).unwrap();
        });
        // A subnet the host already routes.
        host.ip(&["link", "add", "labt-a", "type", "veth", "peer", "name", "labt-b"]);
        host.ip(&["addr", "add", "10.99.0.1/24", "dev", "labt-a"]);
        host.ip(&["link", "set", "labt-a", "up"]);
        host.ip(&["link", "set", "labt-b", "up"]);
        refused(&["--bridge", "labbr9", "--subnet", "10.99.0.0/24"], "overlaps the host's route 10.99.0.0/24 on labt-a");
        assert!(!host.ip(&["-br", "link"]).contains("labbr9"), "no bridge may be left half-made");
        assert_nothing_left(&host);
    }
);

as_root!(
    /// `--net none`: only a loopback, up. `--net host`: the host's own links.
    none_and_host_modes,
    {
        let host = Netns::new("modes");
        let none = finish(start(&host, &["--net", "none"], &["ip", "-br", "link"]));
        let listing = stdout(&none);
        let links: Vec<&str> = listing.lines().map(|l| l.split_whitespace().next().unwrap()).collect();
        assert_eq!(links, ["lo"], "{}", stderr(&none));
        assert!(stdout(&none).contains("UNKNOWN") || stdout(&none).contains("UP"), "lo must be up: {}", stdout(&none));
        host.ip(&["link", "add", "labt-only", "type", "veth", "peer", "name", "labt-host"]);
        let shared = finish(start(&host, &["--net", "host"], &["ip", "-br", "link"]));
        assert!(stdout(&shared).contains("labt-only"), "{}", stdout(&shared));
    }
);

as_root!(
    /// For the book: the narrated wiring of a first container on a fresh host.
    explain_narrates_the_wiring,
    {
        let host = Netns::new("explain");
        let output = finish(start(&host, &["--explain"], &["/sbin/ip", "-4", "-br", "addr"]));
        assert_eq!(code(&output), 0, "{}", stderr(&output));
        let state = host.lab_state().display().to_string();
        let text = transcript("ch04-net --explain ./rootfs /sbin/ip -4 -br addr", &output, Some(rootfs()))
            .replace(&state, "/run/container-lab/net/<netns>");
        snapshot!("ch04_explain", text);
    }
);

as_root!(
    /// A SIGKILLed runtime cannot clean up; `lab clean` then removes its
    /// port rules, port guard, lease and files, and the bridge nobody uses
    /// any more, and turns forwarding back off since the lab turned it on.
    lab_clean_reclaims_what_a_killed_runtime_left,
    {
        let host = Netns::new("killed");
        let mut server = start(&host, &["-p", "18081:8080"], &["/usr/local/bin/lab-probe", "--serve", "8080"]);
        assert_eq!(first_line(&mut server), "listening on port 8080\n");
        server.kill().unwrap();
        finish(server);
        let tables = || host.nft(&["list", "tables"]);
        assert!(tables().contains("table ip container-lab-c"), "the killed runtime's rules are still there");
        assert!(tables().contains("table bridge container-lab-c"), "the killed runtime's port guard is still there");
        let cleaned = host.command(bin("lab")).arg("clean").output().unwrap();
        assert_eq!(code(&cleaned), 0, "{}{}", stdout(&cleaned), stderr(&cleaned));
        let out = stdout(&cleaned);
        for removed in [
            "removed nftables table ip container-lab-c",
            "removed nftables table bridge container-lab-c",
            "removed network state",
            "removed bridge labbr0",
        ] {
            assert!(out.contains(removed), "{removed}: {out}");
        }
        assert_eq!(tables(), "", "no lab table may be left");
        assert_eq!(host.ip(&["-br", "link"]).lines().count(), 1, "only lo");
        assert_eq!(host.sysctl("net.ipv4.ip_forward"), "0", "the lab turned forwarding on, so clean turns it off");
        assert!(!host.lab_state().join("labbr0").exists());
    }
);

as_root!(
    /// A host that already forwards (a router, a Docker host) keeps
    /// forwarding as it was: the lab does not write ip_forward, does not
    /// narrow the host's forwarding to its own subnets, and `lab clean`,
    /// after a killed runtime, leaves forwarding on since the lab did not
    /// turn it on. (explain_narrates_the_wiring and
    /// lab_clean_reclaims_what_a_killed_runtime_left show the other case.)
    forwarding_already_on_is_left_on,
    {
        let host = Netns::with_sysctls("forwarding", &[("net.ipv4.ip_forward", "1")]);
        // What an earlier bridge of the same name left, when the lab had
        // turned forwarding on for it and its bridge was then deleted by hand.
        let state = host.lab_state().join("labbr0");
        std::fs::create_dir_all(&state).unwrap();
        std::fs::write(state.join("forwarding-enabled"), "1").unwrap();
        let mut server = start(&host, &["--explain", "-p", "18083:8080"], &["/usr/local/bin/lab-probe", "--serve", "8080"]);
        let ready = first_line(&mut server);
        let bridge_table = host.nft(&["list", "table", "ip", "container-lab-labbr0"]);
        let mark_left = state.join("forwarding-enabled").exists();
        // Killed before any assertion, so that a failing one leaves no
        // runtime behind.
        server.kill().unwrap();
        let killed = finish(server);
        assert_eq!(ready, "listening on port 8080\n", "{}", stderr(&killed));
        assert!(bridge_table.contains("masquerade"), "the bridge's NAT must be there: {bridge_table}");
        assert!(!bridge_table.contains("policy drop"), "the host's own forwarding must stay as it was: {bridge_table}");
        assert!(!mark_left, "the lab did not turn forwarding on: the old mark must go");
        let narration = stderr(&killed);
        assert!(narration.contains("route_localnet"), "the bridge was made by this run: {narration}");
        assert!(!narration.contains("ip_forward"), "the lab must not write ip_forward: {narration}");
        let cleaned = host.command(bin("lab")).arg("clean").output().unwrap();
        assert_eq!(code(&cleaned), 0, "{}{}", stdout(&cleaned), stderr(&cleaned));
        assert!(stdout(&cleaned).contains("removed bridge labbr0"), "{}", stdout(&cleaned));
        assert_eq!(host.sysctl("net.ipv4.ip_forward"), "1", "clean must leave the host's forwarding on");
    }
);

as_root!(
    /// `--explain 2>&1 | head -1`: head takes the first step's line and
    /// leaves, and every later write, of the runtime and of its child
    /// before exec, meets a pipe nobody reads. Rust ignores SIGPIPE, so
    /// each write fails with EPIPE: the runtime must let that go, build the
    /// container, end with the container's own code and leave nothing of
    /// it behind (the bridge stays, for the next container).
    explain_piped_into_head_ends_with_the_containers_code,
    {
        let host = Netns::new("head");
        // The container waits for a line the test sends only once nobody
        // reads the pipe: `closed` comes after head has exited and the
        // group has closed its own copy of the pipe's read end.
        let script = r#""$0" --explain --net bridge "$1" /bin/sh -c 'read go; exit 7' 2>&1 | { head -1; exec 0<&-; echo closed; }
                        echo "runtime exited ${PIPESTATUS[0]}""#;
        let mut shell = host
            .command("bash")
            .args(["-c", script])
            .arg(bin(CH))
            .arg(rootfs())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(shell.stdout.take().unwrap());
        let mut lines = [String::new(), String::new()];
        for line in &mut lines {
            out.read_line(line).unwrap();
        }
        let _ = shell.stdin.take().unwrap().write_all(b"go\n");
        let mut rest = String::new();
        out.read_to_string(&mut rest).unwrap();
        let errors = stderr(&shell.wait_with_output().unwrap());
        assert!(lines[0].starts_with("[runtime] "), "head's line is the first step: {lines:?}{errors}");
        assert_eq!(lines[1], "closed\n", "{errors}");
        assert_eq!(rest, "runtime exited 7\n", "the container's code: {errors}");
        assert_nothing_left(&host);
    }
);

as_root!(
    /// Stdout and stderr a pipe nobody reads from the start, so every write
    /// fails: the runtime still ends with the container's code when the
    /// container ran, with its own 125 when it refused the command line
    /// (its error line lost, not a panic), and leaves nothing behind.
    output_nobody_reads_changes_no_exit_code,
    {
        let host = Netns::new("no-reader");
        let run_unread = |args: &[&str], command: &[&str]| {
            let (reader, writer) = std::io::pipe().unwrap();
            drop(reader);
            host.command(bin(CH))
                .args(args)
                .arg(rootfs())
                .args(command)
                .stdin(Stdio::null())
                .stdout(writer.try_clone().unwrap())
                .stderr(writer)
                .status()
                .unwrap()
        };
        let ran = run_unread(&["--explain"], &["/bin/sh", "-c", "exit 7"]);
        assert_eq!(ran.code(), Some(7), "{ran:?}");
        let refused = run_unread(&["--net", "none", "-p", "80:80"], &["/bin/true"]);
        assert_eq!(refused.code(), Some(125), "{refused:?}");
        assert_nothing_left(&host);
    }
);

as_root!(
    /// The runtime ignores SIGPIPE until the command is executed (see the
    /// two tests above); the command itself gets the default back, so that
    /// `yes | head` in the container ends as it does anywhere else.
    the_command_gets_the_default_sigpipe,
    {
        let output = run_in(CH, &["/bin/grep", "SigIgn", "/proc/self/status"]);
        assert_eq!(code(&output), 0, "{}", stderr(&output));
        let mask = u64::from_str_radix(stdout(&output).trim_start_matches("SigIgn:").trim(), 16).unwrap();
        assert_eq!(mask & (1 << (libc::SIGPIPE - 1)), 0, "SIGPIPE is ignored in the container: {}", stdout(&output));
    }
);

as_root!(
    /// Root inside cannot route to the host's loopback-only services through
    /// the bridge, even by taking 127.0.0.1 off its own lo and pointing it
    /// at the gateway (the CVE-2020-8558 trick).
    loopback_only_services_stay_out_of_reach,
    {
        let host = Netns::new("localnet");
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::scope(|scope| {
            let host = &host;
            scope.spawn(move || {
                host.enter_this_thread();
                let listener = std::net::TcpListener::bind("127.0.0.1:18099").unwrap();
                listener.set_nonblocking(true).unwrap();
                sender.send(()).unwrap();
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(8);
                while std::time::Instant::now() < deadline {
                    if let Ok((mut stream, _)) = listener.accept() {
                        let _ = writeln!(stream, "host loopback secret");
                    }
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
            });
            receiver.recv().unwrap();
            let attack = "ip addr del 127.0.0.1/8 dev lo; \
                          echo 1 > /proc/sys/net/ipv4/conf/eth0/route_localnet; \
                          ip route add 127.0.0.1/32 via 10.88.0.1 dev eth0; \
                          /usr/local/bin/lab-probe --connect 127.0.0.1:18099";
            let output = finish(start(host, &[], &["/bin/sh", "-c", attack]));
            assert!(!stdout(&output).contains("secret"), "reached the host's loopback: {}", stdout(&output));
            assert!(stderr(&output).contains("connect 127.0.0.1:18099"), "the attack must have been tried: {}", stderr(&output));
        });
    }
);

/// The word after `key` in `text` (`link/ether` gives the MAC address in
/// `ip -o link` output, `inet` the address in `ip -o addr`).
fn word_after<'a>(text: &'a str, key: &str) -> &'a str {
    let mut words = text.split_whitespace();
    words.find(|word| *word == key);
    let word = words
        .next()
        .unwrap_or_else(|| panic!("no {key} in {text:?}"));
    word.split('/').next().unwrap()
}

/// The host's neighbour-table entry for `address` on labbr0, as
/// `ip neigh` prints it.
fn neighbour(host: &Netns, address: &str) -> String {
    host.ip(&["neigh", "show", address, "dev", "labbr0"])
}

as_root!(
    /// Root in a container holds CAP_NET_RAW and can write any frame onto
    /// the bridge. It claims its neighbour's address and the gateway's in
    /// forged ARP replies, sends a UDP packet with its neighbour's address
    /// as source, and takes its neighbour's MAC address. The bridge port
    /// drops each lie: the host still knows the victim by its own MAC, the
    /// victim still knows the gateway by the bridge's, and of the same
    /// packet sent three ways the host's listener gets only the honest one.
    neighbours_cannot_spoof_arp_or_addresses,
    {
        let host = Netns::new("spoof");
        // The victim learns the gateway's MAC (a refused connection is
        // enough), says who it is, and waits for the test.
        let victim_script = "ip -o link show eth0; ip -4 -o addr show eth0; \
                             /usr/local/bin/lab-probe --connect 10.88.0.1:1 2>/dev/null; \
                             echo ready; read line; ip neigh show 10.88.0.1 dev eth0";
        let mut victim = host
            .command(bin(CH))
            .arg(rootfs())
            .args(["/bin/sh", "-c", victim_script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut victim_out = BufReader::new(victim.stdout.take().unwrap());
        let mut line = || {
            let mut line = String::new();
            victim_out.read_line(&mut line).unwrap();
            line
        };
        let victim_link = line();
        let victim_mac = word_after(&victim_link, "link/ether").to_string();
        let victim_ip = word_after(&line(), "inet").to_string();
        assert_eq!(line(), "ready\n");
        let gateway_mac = word_after(&host.ip(&["-o", "link", "show", "labbr0"]), "link/ether").to_string();

        std::thread::scope(|scope| {
            let (ready, listening) = std::sync::mpsc::channel();
            let (attacked, attack_over) = std::sync::mpsc::channel::<()>();
            let host = &host;
            let victim_ip = victim_ip.as_str();
            let listener = scope.spawn(move || {
                host.enter_this_thread();
                // The host learns the victim's MAC the honest way.
                let socket = std::net::UdpSocket::bind("0.0.0.0:9999").unwrap();
                socket.send_to(b"hello", (victim_ip, 9)).unwrap();
                socket.set_read_timeout(Some(std::time::Duration::from_millis(100))).unwrap();
                ready.send(()).unwrap();
                let mut received = Vec::new();
                let mut buffer = [0u8; 256];
                let mut drain_until = None;
                loop {
                    if let Ok((n, peer)) = socket.recv_from(&mut buffer) {
                        received.push(format!("{peer} {}", String::from_utf8_lossy(&buffer[..n]).trim()));
                    }
                    if drain_until.is_none() && attack_over.try_recv().is_ok() {
                        drain_until = Some(std::time::Instant::now() + std::time::Duration::from_millis(500));
                    }
                    if drain_until.is_some_and(|t| std::time::Instant::now() > t) {
                        return received;
                    }
                }
            });
            listening.recv().unwrap();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
            while !neighbour(host, victim_ip).contains(&victim_mac) && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            assert!(neighbour(host, victim_ip).contains(&victim_mac), "the host never learnt the victim's MAC: {}", neighbour(host, victim_ip));

            let probe = "/usr/local/bin/lab-probe";
            let attack = format!(
                "set -e; ip -o link show eth0; set -- $(ip -4 -o addr show eth0); me=${{4%/*}}; \
                 {probe} --spoof-arp {victim_ip}; \
                 {probe} --spoof-arp 10.88.0.1; \
                 {probe} --spoof-source {victim_ip} --to 10.88.0.1:9999; \
                 {probe} --spoof-source $me --to 10.88.0.1:9999; \
                 ip link set eth0 address {victim_mac}; \
                 {probe} --spoof-source $me --to 10.88.0.1:9999"
            );
            let attacker = finish(start(host, &[], &["/bin/sh", "-c", &attack]));
            attacked.send(()).unwrap();
            let received = listener.join().unwrap();
            let out = stdout(&attacker);
            assert_eq!(code(&attacker), 0, "every lie must have been told: {out}{}", stderr(&attacker));
            let attacker_mac = word_after(&out, "link/ether");
            assert!(out.contains(&format!("sent: {victim_ip} is at {attacker_mac}")), "{out}");
            let attacker_ip = out.lines().last().unwrap().split_whitespace().last().unwrap();
            assert_ne!(attacker_ip, victim_ip);

            // The same packet twice: first from the attacker's own MAC,
            // then from the victim's. Only the first may arrive.
            let honest = format!("{attacker_ip}:40000 from {attacker_ip}");
            assert!(received.contains(&honest), "the honest packet must arrive: {received:?}");
            assert_eq!(
                received.iter().filter(|r| **r == honest).count(),
                1,
                "a frame with the victim's MAC as source reached the host: {received:?}"
            );
            assert!(
                !received.iter().any(|r| r.contains(&format!("from {victim_ip}"))),
                "a packet with the victim's address as source reached the host: {received:?}"
            );
            let entry = neighbour(host, victim_ip);
            assert!(entry.contains(&victim_mac), "the host now sends the victim's traffic to {entry}");
        });
        victim.stdin.take().unwrap().write_all(b"go\n").unwrap();
        let gateway_entry = line();
        assert_eq!(code(&finish(victim)), 0);
        assert!(gateway_entry.contains(&gateway_mac), "the victim now sends to the gateway at {gateway_entry:?}, not {gateway_mac}");
        assert_nothing_left(&host);
    }
);

as_root!(
    /// Two lab bridges on one host are two networks: a container on labbr0
    /// cannot reach a server on labbr1 directly, though the host routes
    /// between them and forwards for both subnets; it still reaches the
    /// outside through NAT, and the server's published port like anyone.
    bridges_are_isolated_from_each_other,
    {
        let host = Netns::new("isolate");
        let world = Netns::new("isolate-world");
        host.ip(&["link", "add", "labt-h", "type", "veth", "peer", "name", "labt-w"]);
        host.ip(&["link", "set", "labt-w", "netns", &world.name]);
        host.ip(&["addr", "add", "198.51.100.1/24", "dev", "labt-h"]);
        host.ip(&["link", "set", "labt-h", "up"]);
        world.ip(&["addr", "add", "198.51.100.2/24", "dev", "labt-w"]);
        world.ip(&["link", "set", "labt-w", "up"]);
        let other = ["--bridge", "labbr1", "--subnet", "10.88.1.0/24", "-p", "18082:8080"];
        let script = "ip -4 -o addr show eth0; exec /usr/local/bin/lab-probe --serve 8080 --count 1";
        let mut server = start(&host, &other, &["/bin/sh", "-c", script]);
        let mut server_out = BufReader::new(server.stdout.take().unwrap());
        let mut lines = [String::new(), String::new()];
        for line in &mut lines {
            server_out.read_line(line).unwrap();
        }
        let server_ip = word_after(&lines[0], "inet").to_string();
        assert!(server_ip.starts_with("10.88.1."), "{server_ip}");
        assert_eq!(lines[1], "listening on port 8080\n");
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::scope(|scope| {
            let world = &world;
            scope.spawn(move || {
                world.enter_this_thread();
                let listener = std::net::TcpListener::bind("198.51.100.2:9000").unwrap();
                listener.set_nonblocking(true).unwrap();
                sender.send(()).unwrap();
                // Never blocks for good: a failed test must still end.
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
                while std::time::Instant::now() < deadline {
                    if let Ok((mut stream, _)) = listener.accept() {
                        let _ = writeln!(stream, "hello from the world");
                        return;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
            });
            receiver.recv().unwrap();
            let probe = "/usr/local/bin/lab-probe";
            let client = format!(
                "{probe} --connect {server_ip}:8080; {probe} --connect 198.51.100.2:9000; \
                 {probe} --connect 10.88.0.1:18082"
            );
            let client = finish(start(&host, &[], &["/bin/sh", "-c", &client]));
            let (out, err) = (stdout(&client), stderr(&client));
            assert!(err.contains(&format!("connect {server_ip}:8080")), "labbr0 reached labbr1 directly: {out}{err}");
            assert_eq!(
                out, "hello from the world\nhello from jail, you are 10.88.1.1\n",
                "the outside through NAT, and the published port, must still answer: {err}"
            );
        });
        assert_eq!(code(&finish(server)), 0);
        assert_nothing_left(&host);
    }
);
