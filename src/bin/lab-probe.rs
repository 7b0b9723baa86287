//! lab-probe: runs inside a container and tries every way out it knows.
//!
//! Each check prints ISOLATED, LEAKS or N/A with one line of evidence.
//! Run by hand in any chapter's shell, or let `lab tour` run it everywhere
//! with bait planted on the host side.

use clap::Parser;
use container_lab::lab::probe::{self, Context};
use container_lab::lab::scorecard::{Bait, CHECKS, Verdict};
use container_lab::lab::spoof;

/// Try to reach the host from inside a container, one check at a time.
#[derive(Parser, Debug)]
#[command(
    name = "lab-probe",
    version,
    after_help = "Checks that need bait on the host (a marker file, a process, an IPC object, a \
        listener) say N/A when run by hand: `lab tour` plants the bait and passes it with --bait."
)]
struct Cli {
    /// Print the findings as JSON (for `lab tour`)
    #[arg(long)]
    json: bool,

    /// What the host planted, as JSON (written by `lab tour`)
    #[arg(long, value_name = "JSON")]
    bait: Option<String>,

    /// Run only this check (repeatable); see the list with --list
    #[arg(long, value_name = "CHECK")]
    only: Vec<String>,

    /// List the checks and exit
    #[arg(long)]
    list: bool,

    /// Instead of probing: serve PORT (TCP), greeting each client with this
    /// container's hostname and the client's address, then exit after
    /// --count clients or 60 s
    #[arg(long, value_name = "PORT", conflicts_with_all = ["connect", "only", "list"])]
    serve: Option<u16>,

    /// With --serve: how many clients to greet before exiting
    #[arg(long, default_value_t = 1, requires = "serve")]
    count: u32,

    /// Instead of probing: connect to ADDRESS:PORT and print the greeting
    #[arg(long, value_name = "ADDRESS:PORT")]
    connect: Option<std::net::SocketAddr>,

    /// Instead of probing: time a fixed CPU-bound loop and print the
    /// nanoseconds it took (for `lab bench`)
    #[arg(long, value_name = "ITERATIONS")]
    burn_cpu: Option<u64>,

    /// Instead of probing: time ITERATIONS getppid(2) calls and print the
    /// nanoseconds they took (for `lab bench`)
    #[arg(long, value_name = "ITERATIONS")]
    burn_syscalls: Option<u64>,

    /// Instead of probing: allocate and touch MIB mebibytes, then exit 0
    /// (a memory hog, to watch a memory budget at work)
    #[arg(long, value_name = "MIB")]
    hog: Option<u64>,

    /// Instead of probing: accept one TCP connection on PORT, read it to the
    /// end and print how many bytes came (for `lab bench`)
    #[arg(long, value_name = "PORT")]
    sink: Option<u16>,

    /// Instead of probing: leave behind an orphan, a child that exits after
    /// MILLIS ms, and exit at once (to watch who adopts and reaps it)
    #[arg(long, value_name = "MILLIS")]
    orphan: Option<u64>,

    /// Instead of probing: broadcast one forged ARP reply on eth0 claiming
    /// that IP is at this container's MAC address (needs CAP_NET_RAW)
    #[arg(long, value_name = "IP")]
    spoof_arp: Option<std::net::Ipv4Addr>,

    /// Instead of probing: send one UDP datagram to --to whose IPv4 source
    /// is IP, through a raw socket (needs CAP_NET_RAW)
    #[arg(long, value_name = "IP", requires = "to")]
    spoof_source: Option<std::net::Ipv4Addr>,

    /// Instead of probing: print "euid N", the effective uid this process
    /// runs with (the setuid helper of the user.setuid-gain check)
    #[arg(long, hide = true)]
    report_euid: bool,

    /// With --spoof-source: where the datagram goes
    #[arg(long, value_name = "ADDRESS:PORT", requires = "spoof_source")]
    to: Option<std::net::SocketAddrV4>,
}

fn main() {
    refuse_to_work_setuid();
    // Before anything else opens a file: what is open now was inherited.
    let inherited = Context::new(Bait::default());
    let cli: Cli = container_lab::cli::parse();
    container_lab::run(|| {
        if cli.report_euid {
            println!("euid {}", nix::unistd::geteuid());
            return Ok(0);
        }
        if let Some(port) = cli.serve {
            return probe::serve(port, cli.count);
        }
        if let Some(address) = cli.connect {
            return probe::connect(address);
        }
        if let Some(iterations) = cli.burn_cpu {
            println!("{}", probe::burn_cpu(iterations).as_nanos());
            return Ok(0);
        }
        if let Some(iterations) = cli.burn_syscalls {
            println!("{}", probe::burn_syscalls(iterations).as_nanos());
            return Ok(0);
        }
        if let Some(mib) = cli.hog {
            let memory = vec![1u8; (mib as usize) << 20];
            std::hint::black_box(&memory);
            println!("touched {mib} MiB");
            return Ok(0);
        }
        if let Some(port) = cli.sink {
            return probe::sink(port);
        }
        if let Some(millis) = cli.orphan {
            return probe::leave_orphan(millis);
        }
        if let Some(claimed) = cli.spoof_arp {
            return spoof::spoof_arp(claimed);
        }
        if let (Some(source), Some(to)) = (cli.spoof_source, cli.to) {
            return spoof::spoof_source(source, to);
        }
        if cli.list {
            for check in CHECKS {
                println!("{:26} {}", check.id, check.title);
            }
            return Ok(0);
        }
        let bait: Bait = match &cli.bait {
            Some(json) => serde_json::from_str(json).map_err(|error| {
                container_lab::error::LabError::Usage {
                    message: format!("--bait is not valid JSON: {error}"),
                }
            })?,
            None => Bait::default(),
        };
        let context = Context { bait, ..inherited };
        let findings = probe::run(&context, &cli.only);
        if cli.json {
            println!(
                "{}",
                serde_json::to_string(&findings).expect("findings serialise")
            );
        } else {
            for finding in &findings {
                println!(
                    "{:26} {}  {}",
                    finding.check,
                    finding.verdict.colored(8),
                    finding.evidence
                );
            }
        }
        let leaks = findings
            .iter()
            .filter(|f| f.verdict == Verdict::Leaks)
            .count();
        Ok(if leaks == 0 { 0 } else { 1 })
    })
}

/// A setuid-root copy of this binary (the tour plants one in the rootfs
/// for user.setuid-gain, and a killed tour may leave it there) must be
/// good for nothing but saying its euid: run by any user, the probe's
/// checks would read host files as root and print them.
fn refuse_to_work_setuid() {
    use nix::unistd::{getegid, geteuid, getgid, getuid};
    if getuid() == geteuid() && getgid() == getegid() {
        return;
    }
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if args.len() == 1 && args[0] == "--report-euid" {
        println!("euid {}", geteuid());
        std::process::exit(0);
    }
    eprintln!("lab-probe: running setuid, it does nothing but --report-euid");
    std::process::exit(126);
}
