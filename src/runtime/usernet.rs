//! User-mode networking: a network for a container that nobody needed root
//! to make, through pasta(1) (package passt; podman's default since 5.0,
//! slirp4netns before it).
//!
//! A bridge takes the host's root: a veth, a bridge and NAT rules are the
//! host's to make. pasta instead gives the container's network namespace a
//! tap interface and, outside, turns every connection the container makes
//! into an ordinary socket of its own on the host, the way any program
//! opens one. So the container reaches out with the host's address, with
//! no route, rule or interface added on the host.
//!
//! The runtime starts pasta once the child has made its network namespace
//! (the child's "network" request), inside the container's user namespace
//! as the container's root: it has the powers it needs over the
//! container's network namespace and none over the host's. pasta forks
//! into the background when the namespace is configured; the runtime keeps
//! its pid (from its `--pid` file, named after the runtime's own pid, so
//! `lab clean` can find a dead run's pasta) and stops it when the
//! container ends.

use crate::error::LabError;
use crate::narrator::{Narrator, Step};
use crate::runtime::net::PortMapping;
use nix::unistd::Pid;
use std::fmt;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The program, and the Debian package that has it.
pub const PROGRAM: &str = "pasta";
pub const PACKAGE: &str = "passt";
/// The device pasta opens to make the container's tap interface.
pub const TUN_DEVICE: &str = "/dev/net/tun";
/// The interface pasta makes inside, named as a bridge's veth is.
pub const INTERFACE: &str = "eth0";

/// Why pasta cannot run on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    NotInstalled,
    /// /dev/net/tun is not open to the container's root: it runs as an
    /// unprivileged host id, rootless or not.
    TunClosed,
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unavailable::NotInstalled => write!(f, "pasta is not installed"),
            Unavailable::TunClosed => write!(
                f,
                "{TUN_DEVICE} is not readable and writable by every user, and pasta runs as the container's root, an unprivileged user on the host"
            ),
        }
    }
}

impl Unavailable {
    /// What to do about it.
    pub fn fix(&self) -> String {
        match self {
            Unavailable::NotInstalled => {
                format!("for user-mode networking install pasta: sudo apt-get install {PACKAGE}")
            }
            Unavailable::TunClosed => {
                format!("give it the mode udev gives it by default: sudo chmod 0666 {TUN_DEVICE}")
            }
        }
    }
}

/// Whether pasta can run here: installed, and the tun device open to an
/// ordinary user (opening it grants nothing by itself: making an interface
/// takes CAP_NET_ADMIN in the namespace it goes into).
pub fn unavailable() -> Option<Unavailable> {
    if crate::hostinfo::find_in_path(PROGRAM).is_none() {
        return Some(Unavailable::NotInstalled);
    }
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(TUN_DEVICE) {
        Ok(meta) if meta.permissions().mode() & 0o006 == 0o006 => None,
        _ => Some(Unavailable::TunClosed),
    }
}

/// The directory of the pid files: the runtime's own under
/// /run/container-lab as root; a user's under $XDG_RUNTIME_DIR (as
/// podman's), or else a directory of theirs in /tmp that only they may use.
pub fn state_dir() -> Result<PathBuf, LabError> {
    if nix::unistd::geteuid().is_root() {
        let dir = Path::new(crate::runtime::RUN_DIR).join("pasta");
        std::fs::create_dir_all(&dir).map_err(|e| LabError::io("mkdir", dir.display(), e))?;
        return Ok(dir);
    }
    let uid = nix::unistd::geteuid().as_raw();
    let base = match std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("container-lab"),
        None => std::env::temp_dir().join(format!("container-lab-{uid}")),
    };
    private_dir(&base, uid)?;
    let dir = base.join("pasta");
    private_dir(&dir, uid)?;
    Ok(dir)
}

/// Make `dir` with mode 0700, or check that the one there is a directory
/// (not a symlink) of `uid`'s that nobody else may write: in /tmp anyone
/// could have made it first.
fn private_dir(dir: &Path, uid: u32) -> Result<(), LabError> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(LabError::io("mkdir", dir.display(), e)),
    }
    let meta =
        std::fs::symlink_metadata(dir).map_err(|e| LabError::io("lstat", dir.display(), e))?;
    if !meta.is_dir() || meta.uid() != uid || meta.mode() & 0o022 != 0 {
        return Err(LabError::Refused {
            message: format!(
                "{} is not a private directory of yours, so it cannot hold pasta's pid file",
                dir.display()
            ),
            hint: "remove it, or set XDG_RUNTIME_DIR to a directory only you can write".into(),
        });
    }
    Ok(())
}

/// The pid file of the pasta a runtime started, named after the runtime.
pub fn pid_file_name(runtime: u32) -> String {
    format!("pasta-{runtime}.pid")
}

/// The runtime's pid in a pid file's name, if it is one of ours.
pub fn runtime_of_pid_file(path: &Path) -> Option<i32> {
    let dir = path.parent()?;
    let in_lab_dir = dir.file_name()? == "pasta"
        && dir
            .parent()?
            .file_name()?
            .to_string_lossy()
            .starts_with("container-lab");
    let name = path.file_name()?.to_str()?;
    let pid = name.strip_prefix("pasta-")?.strip_suffix(".pid")?;
    in_lab_dir.then(|| pid.parse().ok()).flatten()
}

/// `--tcp-ports`: what pasta publishes on the host, as it spells it
/// (HOST:CONTAINER pairs, comma separated), or none.
pub fn tcp_ports_spec(ports: &[PortMapping]) -> String {
    if ports.is_empty() {
        return "none".into();
    }
    ports
        .iter()
        .map(|port| format!("{}:{}", port.host, port.container))
        .collect::<Vec<_>>()
        .join(",")
}

/// pasta's words, before the namespace: the interface is configured from
/// the host's (--config-net) and named eth0; only the ports given are
/// published (the default, `auto`, would publish every port the container
/// listens on, and `--tcp-ns auto` would let it reach the host's loopback
/// services); connections to the gateway's address stay out on the
/// network instead of reaching the host itself (--no-map-gw).
pub fn pasta_args(ports: &[PortMapping], pid_file: &Path) -> Vec<String> {
    let mut args: Vec<String> = [
        "--config-net",
        "--quiet",
        "--ns-ifname",
        INTERFACE,
        "--tcp-ports",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(tcp_ports_spec(ports));
    for word in [
        "--udp-ports",
        "none",
        "--tcp-ns",
        "none",
        "--udp-ns",
        "none",
        "--no-map-gw",
        // Already the container's root (see attach): stay so, rather than
        // become nobody, who holds nothing in the container's namespaces.
        "--runas",
        "0",
        "--pid",
    ] {
        args.push(word.into());
    }
    args.push(pid_file.display().to_string());
    args
}

/// The pasta serving one container; stopped when dropped.
pub struct UserModeNetwork {
    pid: Option<i32>,
    pid_file: PathBuf,
}

/// The host id that id 0 of a process's user namespace stands for, from
/// /proc/PID/uid_map or gid_map (user_namespaces(7)).
fn host_id_of_root(child: Pid, map: &str) -> Result<u32, LabError> {
    let path = format!("/proc/{child}/{map}");
    let text = std::fs::read_to_string(&path).map_err(|e| LabError::io("read", &path, e))?;
    crate::runtime::userns::IdMap::parse_proc_map(&text)
        .iter()
        .find_map(|range| range.to_host(0))
        .ok_or_else(|| LabError::Refused {
            message: format!("{path} maps no id onto the container's root"),
            hint: "pasta runs as the container's root: give the container an id 0".into(),
        })
}

/// Refuse host ports pasta could not take: it skips a port it fails to
/// bind without a word, and the container would wait for connections that
/// never come.
fn check_host_ports(ports: &[PortMapping]) -> Result<(), LabError> {
    let first_unprivileged: u16 =
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(1024);
    for port in ports {
        if port.host < first_unprivileged {
            return Err(LabError::Refused {
                message: format!(
                    "host port {} is below {first_unprivileged}, and pasta runs as the container's root, an unprivileged user on the host",
                    port.host
                ),
                hint: format!(
                    "publish on a host port from {first_unprivileged} on, as in -p 8080:{}",
                    port.container
                ),
            });
        }
        if std::net::TcpListener::bind(("0.0.0.0", port.host)).is_err() {
            return Err(LabError::Refused {
                message: format!("host port {} is already in use", port.host),
                hint: "choose another host port, or stop what listens on it (ss -ltnp shows who)"
                    .into(),
            });
        }
    }
    Ok(())
}

impl UserModeNetwork {
    // ANCHOR: attach
    /// After the child made its network namespace: start pasta on it, as
    /// the container's root, and wait until it has configured eth0.
    pub fn attach(
        narrator: &Narrator,
        child: Pid,
        ports: &[PortMapping],
    ) -> Result<UserModeNetwork, LabError> {
        check_host_ports(ports)?;
        let open = |kind: &str| {
            let path = format!("/proc/{child}/ns/{kind}");
            std::fs::File::open(&path).map_err(|e| LabError::io("open", &path, e))
        };
        let (userns, netns) = (open("user")?, open("net")?);
        let (uid, gid) = (
            host_id_of_root(child, "uid_map")?,
            host_id_of_root(child, "gid_map")?,
        );
        let pid_file = state_dir()?.join(pid_file_name(std::process::id()));
        let _ = std::fs::remove_file(&pid_file);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&pid_file)
            .map_err(|e| LabError::io("open", pid_file.display(), e))?;
        let mut network = UserModeNetwork {
            pid: None,
            pid_file: pid_file.clone(),
        };
        // Made by the runtime, given to the container's root: pasta writes
        // it as that host id, which may not create files here.
        if nix::unistd::geteuid().is_root() {
            nix::unistd::fchown(
                &file,
                Some(nix::unistd::Uid::from_raw(uid)),
                Some(nix::unistd::Gid::from_raw(gid)),
            )
            .map_err(|errno| LabError::StepFailed {
                syscall: "fchown",
                target: pid_file.display().to_string(),
                errno,
            })?;
        }
        drop(file);
        let (user_fd, net_fd) = (userns.as_raw_fd(), netns.as_raw_fd());
        let mut args = pasta_args(ports, &pid_file);
        args.extend(["--netns".into(), format!("/proc/self/fd/{net_fd}")]);
        let line = format!("{PROGRAM} {}", args.join(" "));
        let pid = narrator.run_tool(
            Step {
                syscall: PROGRAM,
                args: &args.join(" "),
                why: "user-mode networking: pasta gives the container an eth0 and carries its connections out through sockets of its own on the host, so no root is needed; it runs inside the container's user namespace as its root",
                man: "pasta(1)",
            },
            || {
                let mut command = Command::new(PROGRAM);
                command
                    .args(&args)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped());
                use std::os::unix::process::CommandExt;
                // SAFETY: only async-signal-safe syscalls between fork and
                // exec, on fds the runtime keeps open until pasta returns.
                unsafe {
                    command.pre_exec(move || {
                        // Into the container's user namespace, as its root:
                        // full powers over the namespaces it owns (its
                        // network namespace), none over the host's.
                        if libc::setns(user_fd, libc::CLONE_NEWUSER) < 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                        // Refused rootless ("deny" in /proc/PID/setgroups);
                        // there the groups are the user's own anyway.
                        if libc::setgroups(0, std::ptr::null()) < 0
                            && std::io::Error::last_os_error().raw_os_error() != Some(libc::EPERM)
                        {
                            return Err(std::io::Error::last_os_error());
                        }
                        if libc::setresgid(0, 0, 0) < 0 || libc::setresuid(0, 0, 0) < 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                        // pasta opens the namespace by the path given.
                        if libc::fcntl(net_fd, libc::F_SETFD, 0) < 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                        Ok(())
                    });
                }
                let output = command.output().map_err(|error| LabError::ToolFailed {
                    command: line.clone(),
                    message: if error.kind() == std::io::ErrorKind::NotFound {
                        format!("cannot run {PROGRAM}: {error}")
                    } else {
                        format!("cannot start it as the container's root: {error}")
                    },
                })?;
                if !output.status.success() {
                    return Err(LabError::ToolFailed {
                        command: line.clone(),
                        message: pasta_error(&String::from_utf8_lossy(&output.stderr)),
                    });
                }
                // pasta's parent writes its background self's pid, then exits.
                std::fs::read_to_string(&pid_file)
                    .ok()
                    .and_then(|text| text.trim().parse::<i32>().ok())
                    .ok_or_else(|| LabError::ToolFailed {
                        command: line.clone(),
                        message: format!("it left no pid in {}", pid_file.display()),
                    })
            },
        )?;
        network.pid = Some(pid);
        drop((userns, netns));
        Ok(network)
    }
    // ANCHOR_END: attach

    /// The pid of the pasta in the background.
    pub fn pid(&self) -> Option<i32> {
        self.pid
    }
}

/// What pasta said on failure, one line: it also says on stderr each time
/// it finds no system logger, and gives its own error last.
pub fn pasta_error(stderr: &str) -> String {
    let syslog_noise =
        |line: &str| line.starts_with("Failed to send") && line.ends_with("to syslog");
    stderr
        .lines()
        .rev()
        .map(str::trim)
        .find(|line| !line.is_empty() && !syslog_noise(line))
        .map(str::to_lowercase)
        .unwrap_or_else(|| "it failed without saying why".into())
}

/// Stop pasta `pid` if it is still the one with `pid_file`, and wait a
/// moment for it to go (it is not our child: init reaps it).
pub fn stop(pid: i32, pid_file: &Path) {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let ours = String::from_utf8_lossy(&cmdline).contains(&*pid_file.to_string_lossy());
    if ours {
        // SIGTERM first, so pasta can close its sockets; SIGKILL if it has
        // not gone in two seconds (a busy machine), and wait for that too.
        for signal in [
            nix::sys::signal::Signal::SIGTERM,
            nix::sys::signal::Signal::SIGKILL,
        ] {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), signal);
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
            while is_alive(pid) && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            if !is_alive(pid) {
                break;
            }
        }
    }
    let _ = std::fs::remove_file(pid_file);
}

/// Whether `pid` runs: it exists and is not a zombie waiting for init.
fn is_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}

impl Drop for UserModeNetwork {
    fn drop(&mut self) {
        match self.pid {
            Some(pid) => stop(pid, &self.pid_file),
            None => {
                let _ = std::fs::remove_file(&self.pid_file);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_spelled_as_pasta_wants_them() {
        assert_eq!(tcp_ports_spec(&[]), "none");
        let ports = [
            PortMapping {
                host: 8080,
                container: 80,
            },
            PortMapping {
                host: 8443,
                container: 443,
            },
        ];
        assert_eq!(tcp_ports_spec(&ports), "8080:80,8443:443");
        let args = pasta_args(&ports, Path::new("/run/container-lab/pasta/pasta-7.pid"));
        let joined = args.join(" ");
        assert!(joined.contains("--tcp-ports 8080:80,8443:443"), "{joined}");
        for closed in [
            "--udp-ports none",
            "--tcp-ns none",
            "--udp-ns none",
            "--no-map-gw",
        ] {
            assert!(joined.contains(closed), "{joined}");
        }
        assert!(
            joined.ends_with("--pid /run/container-lab/pasta/pasta-7.pid"),
            "{joined}"
        );
    }

    #[test]
    fn pid_files_name_their_runtime_and_only_ours_count() {
        let ours = Path::new("/run/container-lab/pasta").join(pid_file_name(4242));
        assert_eq!(runtime_of_pid_file(&ours), Some(4242));
        let user = Path::new("/run/user/1000/container-lab/pasta/pasta-17.pid");
        assert_eq!(runtime_of_pid_file(user), Some(17));
        let tmp = Path::new("/tmp/container-lab-1000/pasta/pasta-18.pid");
        assert_eq!(runtime_of_pid_file(tmp), Some(18));
        for other in [
            "/run/user/1000/containers/pasta/pasta-17.pid",
            "/run/container-lab/pasta/pasta-x.pid",
            "/run/container-lab/net/pasta-17.pid",
            "/tmp/pasta.pid",
        ] {
            assert_eq!(runtime_of_pid_file(Path::new(other)), None, "{other}");
        }
    }

    #[test]
    fn pastas_own_error_is_its_last_line_without_syslog_noise() {
        let stderr = "Failed to send 46 bytes to syslog\nNo external routable interface for IPv6\nFailed to send 45 bytes to syslog\nFailed to open tun socket in namespace\n";
        assert_eq!(
            pasta_error(stderr),
            "failed to open tun socket in namespace"
        );
        assert_eq!(pasta_error(""), "it failed without saying why");
    }
}
