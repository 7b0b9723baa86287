//! Throwaway network namespaces for the network tests: one stands in for
//! the host, others for the rest of the world. Traffic never leaves them.

use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// A named network namespace (`ip netns add`), deleted with its lab state
/// when dropped.
pub struct Netns {
    pub name: String,
    file: std::fs::File,
}

fn ip(args: &[&str]) {
    let status = Command::new("ip")
        .args(args)
        .status()
        .expect("ip(8) from iproute2");
    assert!(status.success(), "ip {}", args.join(" "));
}

/// The settings every throwaway namespace starts from, as a fresh host
/// without any tuning has them. A new network namespace copies the host's
/// IPv4 settings (net.core.devconf_inherit_init_net = 0, the default), so
/// without this a test would see whatever the real host was set to: with
/// the host forwarding, the lab would find forwarding on and never turn it
/// on itself. `conf.default` is what the lab's bridge and veths start with,
/// `conf.all` what the kernel combines with each device's own.
pub const STARTING_SYSCTLS: &[(&str, &str)] = &[
    // Off, as on a host that never routed: the lab turns it on, and
    // `lab clean` off again. Writing ip_forward sets conf.all, conf.default
    // and every device's forwarding too (ip-sysctl.rst).
    ("net.ipv4.ip_forward", "0"),
    // No reverse-path filter, no proxy ARP, ARP answered for any local
    // address: the kernel's defaults, under which the NAT, published-port
    // and ARP-spoofing tests were written.
    ("net.ipv4.conf.all.rp_filter", "0"),
    ("net.ipv4.conf.default.rp_filter", "0"),
    ("net.ipv4.conf.all.proxy_arp", "0"),
    ("net.ipv4.conf.default.proxy_arp", "0"),
    ("net.ipv4.conf.all.arp_ignore", "0"),
    ("net.ipv4.conf.default.arp_ignore", "0"),
    ("net.ipv4.conf.all.arp_announce", "0"),
    ("net.ipv4.conf.default.arp_announce", "0"),
    ("net.ipv4.conf.all.arp_filter", "0"),
    ("net.ipv4.conf.default.arp_filter", "0"),
    ("net.ipv4.conf.all.accept_local", "0"),
    ("net.ipv4.conf.default.accept_local", "0"),
    // The lab sets route_localnet on its bridge itself; nothing else may
    // route 127.0.0.0/8, or the loopback test would prove nothing.
    ("net.ipv4.conf.all.route_localnet", "0"),
    ("net.ipv4.conf.default.route_localnet", "0"),
];

/// br_netfilter, when some program on the host loaded it (Docker does),
/// sends bridged IPv4 frames through the IP hooks in every namespace, on
/// by default in each new one. Off, the bridge behaves as on a host that
/// never loaded it; the files exist only while the module is loaded.
const BR_NETFILTER_SYSCTLS: &[(&str, &str)] = &[
    ("net.bridge.bridge-nf-call-iptables", "0"),
    ("net.bridge.bridge-nf-call-ip6tables", "0"),
    ("net.bridge.bridge-nf-call-arptables", "0"),
];

/// The /proc/sys file of `key` (`net.ipv4.ip_forward`).
fn sysctl_path(key: &str) -> String {
    format!("/proc/sys/{}", key.replace('.', "/"))
}

impl Netns {
    /// A namespace that starts from STARTING_SYSCTLS.
    pub fn new(tag: &str) -> Netns {
        Netns::with_sysctls(tag, &[])
    }

    /// A namespace that starts from STARTING_SYSCTLS, then `changes`.
    pub fn with_sysctls(tag: &str, changes: &[(&str, &str)]) -> Netns {
        let name = format!("lab-t{}-{tag}", std::process::id());
        let _ = Command::new("ip")
            .args(["netns", "delete", &name])
            .stderr(std::process::Stdio::null())
            .status();
        ip(&["netns", "add", &name]);
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        let file = std::fs::File::open(format!("/run/netns/{name}")).unwrap();
        let netns = Netns { name, file };
        // The kernel reuses a freed namespace's inode number, and the lab's
        // state is filed under it: a test killed before its Drop ran may
        // have left leases, a subnet or a forwarding mark for this number.
        let _ = std::fs::remove_dir_all(netns.lab_state());
        let br_netfilter = BR_NETFILTER_SYSCTLS
            .iter()
            .filter(|(key, _)| std::path::Path::new(&sysctl_path(key)).exists());
        let settings: Vec<(&str, &str)> = STARTING_SYSCTLS
            .iter()
            .chain(br_netfilter)
            .chain(changes)
            .copied()
            .collect();
        netns.set_sysctls(&settings);
        netns
    }

    /// Write each `(key, value)` inside this namespace, in order, and check
    /// they took (a /proc/sys/net file answers for the namespace of whoever
    /// opens it, so sysctl(8) runs inside).
    pub fn set_sysctls(&self, settings: &[(&str, &str)]) {
        let assignments: Vec<String> = settings.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let output = self
            .command("sysctl")
            .arg("-q")
            .arg("-w")
            .args(&assignments)
            .output()
            .expect("sysctl(8) from procps");
        assert!(
            output.status.success(),
            "sysctl -w {} in {}: {}",
            assignments.join(" "),
            self.name,
            String::from_utf8_lossy(&output.stderr)
        );
        // A later setting of the same key wins: check only the last one.
        let last: Vec<&(&str, &str)> = settings
            .iter()
            .enumerate()
            .filter(|(at, (key, _))| !settings[at + 1..].iter().any(|(k, _)| k == key))
            .map(|(_, setting)| setting)
            .collect();
        let keys: Vec<&str> = last.iter().map(|(key, _)| *key).collect();
        let values = self.sysctls(&keys);
        for ((key, value), now) in last.into_iter().zip(values) {
            assert_eq!(now, *value, "{key} in {}", self.name);
        }
    }

    /// The value of sysctl `key` inside this namespace.
    pub fn sysctl(&self, key: &str) -> String {
        self.sysctls(&[key]).remove(0)
    }

    /// The values of `keys` inside this namespace, in order.
    fn sysctls(&self, keys: &[&str]) -> Vec<String> {
        let output = self
            .command("sysctl")
            .arg("-n")
            .args(keys)
            .output()
            .expect("sysctl(8) from procps");
        let values: Vec<String> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        assert!(
            output.status.success() && values.len() == keys.len(),
            "sysctl -n {}: {}",
            keys.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        values
    }

    /// `program` to be run inside this namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new(program);
        let fd = self.file.as_raw_fd();
        // SAFETY: setns(2) between fork and exec, on an fd we keep open.
        unsafe {
            command.pre_exec(move || {
                if libc::setns(fd, libc::CLONE_NEWNET) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        command
    }

    /// `ip ARGS` inside this namespace.
    /// `nft ARGS` inside this namespace, its output (nft(8) reads back what
    /// the lab loaded over netlink; the tests install it when missing).
    pub fn nft(&self, args: &[&str]) -> String {
        super::require_tool("nft", "nftables");
        let output = self.command("nft").args(args).output().unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    pub fn ip(&self, args: &[&str]) -> String {
        let output = Command::new("ip")
            .arg("-n")
            .arg(&self.name)
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "ip -n {} {}: {}",
            self.name,
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Move the calling thread into this namespace (for a listener thread).
    pub fn enter_this_thread(&self) {
        // SAFETY: setns on our own fd; affects only the calling thread.
        assert_eq!(
            unsafe { libc::setns(self.file.as_raw_fd(), libc::CLONE_NEWNET) },
            0
        );
    }

    /// The lab's state directory for this namespace's bridges.
    pub fn lab_state(&self) -> std::path::PathBuf {
        use std::os::unix::fs::MetadataExt;
        let inode = self.file.metadata().unwrap().ino();
        std::path::Path::new("/run/container-lab/net").join(inode.to_string())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.lab_state());
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.name])
            .status();
    }
}
