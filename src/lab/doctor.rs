//! `lab doctor`: can this host run the lab? One line per check, and for
//! every problem the exact command that fixes it.
//!
//! Gathering and rendering are apart: each check is built from facts
//! ([`crate::hostinfo`]) by a pure function, so every verdict and every fix
//! text is unit-tested with made-up hosts, and [`render`] is tested on its
//! own. Doctor only looks; it needs no root and changes nothing.

use crate::hostinfo::{self, CgroupLayout, HostInfoError, MountInfo, UsernsKnob};
use colored::Colorize;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Ready.
    Ok,
    /// Worth knowing; nothing to do.
    Info,
    /// A part of the lab (a chapter, a rootfs variant) will not work.
    Warn,
    /// The lab will not work at all.
    Fail,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Info => "info",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked (`kernel`, `cgroups`, `busybox`).
    pub name: &'static str,
    pub status: Status,
    /// What was found, in one line.
    pub found: String,
    /// Further lines of what was found (cgroup hierarchies and controllers).
    pub details: Vec<String>,
    /// For warn and fail: exactly what to do about it.
    pub fix: Option<String>,
}

impl Check {
    fn new(name: &'static str, status: Status, found: impl Into<String>) -> Check {
        Check {
            name,
            status,
            found: found.into(),
            details: Vec::new(),
            fix: None,
        }
    }

    fn fix(mut self, fix: impl Into<String>) -> Check {
        self.fix = Some(fix.into());
        self
    }
}

/// Check the host, print the report to `out`, and say whether the lab can
/// run: `true` unless a check failed (warnings leave some chapters out).
pub fn run(out: &mut impl Write) -> io::Result<bool> {
    let checks = gather();
    render(&checks, out)?;
    Ok(passed(&checks))
}

/// `true` when no check failed.
pub fn passed(checks: &[Check]) -> bool {
    checks.iter().all(|check| check.status != Status::Fail)
}

/// Look at this host and build every check, in report order.
pub fn gather() -> Vec<Check> {
    let lab = shown_path(&crate::rootfs::lab_binary());
    let mut checks = vec![
        root_check(nix::unistd::geteuid().as_raw(), &lab),
        kernel_check(&hostinfo::kernel_release()),
        cgroup_check(
            &hostinfo::detect_cgroup_layout(),
            &hostinfo::read_mountinfo(),
            hostinfo::cgroup2_controllers,
        ),
        cgroup_move_check(
            &time_cgroup_move(),
            hostinfo::read_mountinfo()
                .ok()
                .and_then(|mounts| hostinfo::cgroup2_mount(&mounts))
                .as_deref(),
        ),
        overlay_check(hostinfo::overlayfs_available()),
    ];
    checks.extend(USERNS_KNOBS.iter().map(|knob| {
        let reading = hostinfo::read_if_present(Path::new(knob.path));
        userns_check(knob, &reading)
    }));
    checks.extend(TOOLS.iter().map(|tool| {
        let found = locate_tool(tool.program);
        let linking = match (&found, tool.must_be_static) {
            (Some(path), true) => Some(hostinfo::is_static_executable(path)),
            _ => None,
        };
        tool_check(tool, found.as_deref(), linking)
    }));
    if locate_tool("pasta").is_some() {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(crate::runtime::usernet::TUN_DEVICE)
            .ok()
            .map(|meta| meta.permissions().mode());
        checks.push(tun_check(mode));
    }
    let rootfs = crate::rootfs::default_path();
    let from_env = std::env::var_os(crate::rootfs::ROOTFS_ENV).is_some_and(|v| !v.is_empty());
    checks.push(rootfs_check(
        &rootfs_state(&rootfs),
        &rootfs,
        from_env,
        &lab,
    ));
    checks
}

/// Print `checks` as the report: a status word, the check's name, what was
/// found; below it any details and the fix.
pub fn render(checks: &[Check], out: &mut impl Write) -> io::Result<()> {
    // Names padded to the longest, so every "found" starts in one column.
    let width = checks
        .iter()
        .map(|check| check.name.len())
        .max()
        .unwrap_or(0)
        + 2;
    let indent = " ".repeat(4 + 2 + width);
    for check in checks {
        let word = format!("{:<4}", check.status.word());
        let word = match check.status {
            Status::Ok => word.green(),
            Status::Info => word.cyan(),
            Status::Warn => word.yellow().bold(),
            Status::Fail => word.red().bold(),
        };
        writeln!(out, "{word}  {:<width$}{}", check.name, check.found)?;
        for detail in &check.details {
            writeln!(out, "{indent}{detail}")?;
        }
        if let Some(fix) = &check.fix {
            writeln!(out, "{indent}{} {fix}", "fix:".bold())?;
        }
    }
    let count = |status| checks.iter().filter(|c| c.status == status).count();
    let (warnings, failures) = (count(Status::Warn), count(Status::Fail));
    let summary = format!(
        "{} checks: {} ok, {} info, {warnings} warn, {failures} fail",
        checks.len(),
        count(Status::Ok),
        count(Status::Info),
    );
    let summary = if failures > 0 {
        summary.red().bold()
    } else if warnings > 0 {
        summary.yellow()
    } else {
        summary.green()
    };
    writeln!(out, "\n{summary}")
}

/// `path` as a user would type it: relative to the current directory when
/// below it (`target/release/lab`, `./lab`), absolute otherwise. A bare
/// name gets `./`, or sudo would look it up in PATH instead.
fn shown_path(path: &Path) -> String {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    relative_to(path, &cwd)
}

fn relative_to(path: &Path, cwd: &Path) -> String {
    match path.strip_prefix(cwd) {
        Ok(relative) if cwd != Path::new("/") && !relative.as_os_str().is_empty() => {
            if relative.components().count() == 1 {
                format!("./{}", relative.display())
            } else {
                relative.display().to_string()
            }
        }
        _ => path.display().to_string(),
    }
}

// ---------------------------------------------------------------------------
// root

/// The chapters make privileged calls: chroot(2) needs CAP_SYS_CHROOT,
/// mount(2) and the namespace calls CAP_SYS_ADMIN (capabilities(7)).
pub fn root_check(euid: u32, lab: &str) -> Check {
    if euid == 0 {
        return Check::new("root", Status::Ok, "running as root (euid 0)");
    }
    Check::new(
        "root",
        Status::Fail,
        format!(
            "running as euid {euid}, not root: chapters 01 to 04 call chroot(2), mount(2) and unshare(2), which need root (ch05-user runs rootless)"
        ),
    )
    .fix(format!(
        "run the chapters and lab through sudo, e.g. sudo {lab} demo (doctor itself needs no root)"
    ))
}

// ---------------------------------------------------------------------------
// kernel

/// The oldest kernel the lab runs on: it looks commands up inside the
/// rootfs with openat2(2) and RESOLVE_IN_ROOT, new in Linux 5.6.
pub const MIN_KERNEL: (u32, u32) = (5, 6);

pub fn kernel_check(release: &str) -> Check {
    let fix = "boot a Linux 5.6 or later kernel (your distribution's newer or HWE kernel package)";
    match hostinfo::parse_kernel_version(release) {
        Some(version) if version >= MIN_KERNEL => Check::new(
            "kernel",
            Status::Ok,
            format!("Linux {release} (openat2(2) needs 5.6 or later)"),
        ),
        Some(_) => Check::new(
            "kernel",
            Status::Warn,
            format!(
                "Linux {release} is older than 5.6: the lab finds commands inside the rootfs with openat2(2), which 5.6 added"
            ),
        )
        .fix(fix),
        None => Check::new(
            "kernel",
            Status::Warn,
            format!("cannot read a version from the kernel release {release:?}"),
        )
        .fix(format!("check uname -r; the lab needs 5.6 or later: {fix}")),
    }
}

// ---------------------------------------------------------------------------
// cgroups

/// Controllers chapter 06 sets limits with.
pub const CGROUP_CONTROLLERS_NEEDED: [&str; 3] = ["memory", "cpu", "pids"];

/// The cgroup layout and where every controller lives, from the layout
/// statfs(2) found, the mount table, and a reader of a cgroup2
/// directory's `cgroup.controllers`.
pub fn cgroup_check(
    layout: &Result<CgroupLayout, HostInfoError>,
    mounts: &Result<Vec<MountInfo>, HostInfoError>,
    read_v2: impl Fn(&Path) -> Result<Vec<String>, HostInfoError>,
) -> Check {
    let mut details = Vec::new();
    let mut available: Vec<String> = Vec::new();
    // A cgroup.controllers we could not read: the missing list is a guess.
    let mut unread: Option<PathBuf> = None;
    match mounts {
        Ok(mounts) => {
            // One line per v1 hierarchy: controllers sharing a mount
            // (cpu,cpuacct) are listed together.
            let mut hierarchies: Vec<(PathBuf, Vec<String>)> = Vec::new();
            for (controller, mount) in hostinfo::cgroup_v1_controllers(mounts) {
                available.push(controller.clone());
                match hierarchies.iter_mut().find(|(at, _)| *at == mount) {
                    Some((_, names)) => names.push(controller),
                    None => hierarchies.push((mount, vec![controller])),
                }
            }
            for (mount, names) in hierarchies {
                details.push(format!("v1 {}: {}", mount.display(), names.join(" ")));
            }
            for (name, mount) in hostinfo::cgroup_v1_named_hierarchies(mounts) {
                details.push(format!(
                    "v1 {}: name={name} (a named hierarchy, no controller)",
                    mount.display()
                ));
            }
            if let Some(mount) = hostinfo::cgroup2_mount(mounts) {
                let line = match read_v2(&mount) {
                    Ok(names) if names.is_empty() => "no controllers".to_string(),
                    Ok(names) => {
                        let line = names.join(" ");
                        available.extend(names);
                        line
                    }
                    Err(error) => {
                        unread = Some(mount.join("cgroup.controllers"));
                        format!("controllers unknown ({error})")
                    }
                };
                details.push(format!("v2 {}: {line}", mount.display()));
            }
        }
        Err(error) => details.push(format!("mount table unknown ({error})")),
    }
    let missing: Vec<&str> = CGROUP_CONTROLLERS_NEEDED
        .iter()
        .copied()
        .filter(|needed| !available.iter().any(|name| name == needed))
        .collect();

    let (status, found, fix) = match (layout, &unread) {
        (Err(error), _) => (
            Status::Warn,
            format!("no cgroup hierarchy the lab can use: {error}"),
            Some(
                "ch06 needs cgroups: if nothing is mounted there, sudo mount -t cgroup2 none /sys/fs/cgroup"
                    .to_string(),
            ),
        ),
        (Ok(layout), Some(file)) if !missing.is_empty() => (
            Status::Warn,
            format!("{layout}, but which controllers it has is unknown"),
            Some(format!("look by hand: cat {}", file.display())),
        ),
        (Ok(layout), None) if !missing.is_empty() && mounts.is_ok() => (
            Status::Warn,
            format!(
                "{layout}, but without the {} controller{} that ch06 limits with",
                missing.join(", "),
                if missing.len() == 1 { "" } else { "s" }
            ),
            Some(
                "see which controllers the kernel has and enables in /proc/cgroups, and look for cgroup_disable= in /proc/cmdline"
                    .to_string(),
            ),
        ),
        (Ok(CgroupLayout::Unified), _) => (
            Status::Ok,
            format!("{}: every controller in one tree", CgroupLayout::Unified),
            None,
        ),
        (Ok(CgroupLayout::Legacy), _) => (
            Status::Ok,
            format!("{}: one hierarchy per controller group", CgroupLayout::Legacy),
            None,
        ),
        (Ok(CgroupLayout::Hybrid), _) => (
            Status::Ok,
            format!(
                "{}: controllers in v1 hierarchies, cgroup2 beside them holds the rest",
                CgroupLayout::Hybrid
            ),
            None,
        ),
    };
    Check {
        name: "cgroups",
        status,
        found,
        details,
        fix,
    }
}

// ---------------------------------------------------------------------------
// overlayfs

pub fn overlay_check(available: bool) -> Check {
    if available {
        Check::new("overlayfs", Status::Ok, "overlay is in /proc/filesystems")
    } else {
        Check::new(
            "overlayfs",
            Status::Warn,
            "overlay is not in /proc/filesystems: ch08 stacks image layers with it",
        )
        .fix(
            "sudo modprobe overlay (if that fails, the kernel was built without CONFIG_OVERLAY_FS)",
        )
    }
}

// ---------------------------------------------------------------------------
// user namespaces

/// One sysctl that can stop user namespaces, and what to say about it.
pub struct UsernsKnobSpec {
    pub name: &'static str,
    /// Its /proc/sys path.
    pub path: &'static str,
    /// Its sysctl(8) name.
    pub sysctl: &'static str,
    pub interpret: fn(Option<&str>) -> UsernsKnob,
    /// What a value that blocks means for the lab.
    pub when_blocked: &'static str,
    /// The fix for a value that blocks, with the protection it lowers.
    pub fix: &'static str,
    /// The status when the file does not exist, and why.
    pub when_absent: (Status, &'static str),
}

pub const USERNS_KNOBS: [UsernsKnobSpec; 3] = [
    UsernsKnobSpec {
        name: "userns max",
        path: hostinfo::MAX_USER_NAMESPACES,
        sysctl: "user.max_user_namespaces",
        interpret: hostinfo::max_user_namespaces,
        when_blocked: "nobody, not even root, can create a user namespace: ch05 cannot run",
        fix: "sudo sysctl -w user.max_user_namespaces=15000 (any positive number)",
        when_absent: (
            Status::Warn,
            "the kernel has no user namespaces (CONFIG_USER_NS), so ch05 cannot run",
        ),
    },
    UsernsKnobSpec {
        name: "userns clone",
        path: hostinfo::UNPRIVILEGED_USERNS_CLONE,
        sysctl: "kernel.unprivileged_userns_clone",
        interpret: hostinfo::unprivileged_userns_clone,
        when_blocked: "only root can create user namespaces: ch05's rootless runs fail",
        fix: "sudo sysctl -w kernel.unprivileged_userns_clone=1 (this lowers a protection: every local user gets a namespaced root, a common first step of kernel exploits; set it back to 0 when done)",
        when_absent: (
            Status::Ok,
            "a Debian patch this kernel lacks, so nothing is restricted",
        ),
    },
    UsernsKnobSpec {
        name: "userns apparmor",
        path: hostinfo::APPARMOR_RESTRICT_USERNS,
        sysctl: "kernel.apparmor_restrict_unprivileged_userns",
        interpret: hostinfo::apparmor_restrict_unprivileged_userns,
        when_blocked: "AppArmor gives an unprivileged user's new namespace no capabilities: ch05's rootless runs fail",
        fix: "sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 (this lowers a protection Ubuntu turns on by default; set it back to 1 when done, or instead allow userns for the lab's binaries in an AppArmor profile)",
        when_absent: (
            Status::Ok,
            "an Ubuntu AppArmor feature this kernel lacks, so nothing is restricted",
        ),
    },
];

/// What one user namespace switch, read from its file, means for the lab.
pub fn userns_check(
    knob: &UsernsKnobSpec,
    reading: &Result<Option<String>, HostInfoError>,
) -> Check {
    let contents = match reading {
        Ok(contents) => contents.as_deref(),
        Err(error) => {
            return Check::new(knob.name, Status::Warn, format!("{}: {error}", knob.sysctl))
                .fix(format!("look at it by hand: sysctl {}", knob.sysctl));
        }
    };
    match (knob.interpret)(contents) {
        UsernsKnob::Allows(value) => {
            Check::new(knob.name, Status::Ok, format!("{} = {value}", knob.sysctl))
        }
        UsernsKnob::Blocks(value) => Check::new(
            knob.name,
            Status::Warn,
            format!("{} = {value}: {}", knob.sysctl, knob.when_blocked),
        )
        .fix(knob.fix),
        UsernsKnob::Absent => {
            let (status, why) = knob.when_absent;
            let check = Check::new(
                knob.name,
                status,
                format!("{} is absent: {why}", knob.sysctl),
            );
            if status == Status::Ok {
                check
            } else {
                check
                    .fix("use a kernel built with CONFIG_USER_NS=y (every major distribution's is)")
            }
        }
        UsernsKnob::Unreadable(text) => Check::new(
            knob.name,
            Status::Warn,
            format!("{} = {text:?}, which is not a number", knob.sysctl),
        )
        .fix(format!("look at it by hand: cat {}", knob.path)),
    }
}

// ---------------------------------------------------------------------------
// tools

/// A program on the host that some part of the lab uses or compares with.
pub struct Tool {
    pub program: &'static str,
    /// The Debian/Ubuntu package that provides it.
    pub package: &'static str,
    /// What the lab wants it for.
    pub used_for: &'static str,
    /// Missing is a warning (the lab uses it) rather than information (it
    /// is only there to compare with).
    pub wanted: bool,
    /// Only a statically linked build will do (it is copied into a rootfs
    /// that has no libraries).
    pub must_be_static: bool,
}

pub const TOOLS: [Tool; 10] = [
    Tool {
        program: "busybox",
        package: "busybox-static",
        used_for: "the busybox rootfs (lab rootfs --variant busybox)",
        wanted: true,
        must_be_static: true,
    },
    Tool {
        program: "ip",
        package: "iproute2",
        used_for: "inspecting ch04's veth pairs, bridges and routes (the runtime itself speaks netlink), and the tour's bait interface",
        wanted: true,
        must_be_static: false,
    },
    Tool {
        program: "nft",
        package: "nftables",
        used_for: "looking at the rules ch04-ch06 load (nft list ruleset); the runtime loads them over netlink itself",
        wanted: false,
        must_be_static: false,
    },
    Tool {
        program: "newuidmap",
        package: "uidmap",
        used_for: "rootless ch05/ch06 with your whole subordinate id range (without it: your own id only)",
        wanted: true,
        must_be_static: false,
    },
    Tool {
        program: "newgidmap",
        package: "uidmap",
        used_for: "rootless ch05/ch06 with your whole subordinate group range",
        wanted: true,
        must_be_static: false,
    },
    Tool {
        program: "pasta",
        package: "passt",
        used_for: "networking in rootless runs (ch05 on: --net pasta, and --net auto without root)",
        wanted: true,
        must_be_static: false,
    },
    Tool {
        program: "slirp4netns",
        package: "slirp4netns",
        used_for: "comparing with slirp4netns, podman's user-mode networking before pasta",
        wanted: false,
        must_be_static: false,
    },
    Tool {
        program: "unshare",
        package: "util-linux",
        used_for: "trying namespaces by hand",
        wanted: false,
        must_be_static: false,
    },
    Tool {
        program: "bwrap",
        package: "bubblewrap",
        used_for: "comparing with a real rootless sandbox",
        wanted: false,
        must_be_static: false,
    },
    Tool {
        program: "runc",
        package: "runc",
        used_for: "comparing with runc, the OCI reference runtime (ch10)",
        wanted: false,
        must_be_static: false,
    },
];

/// pasta opens /dev/net/tun as the container's root, an unprivileged
/// host id even in a run as root: the device must be open to every user,
/// as udev makes it (opening it grants nothing by itself; making an
/// interface takes CAP_NET_ADMIN in the namespace it goes into). `mode`:
/// the device's st_mode, None if it is missing.
pub fn tun_check(mode: Option<u32>) -> Check {
    let device = crate::runtime::usernet::TUN_DEVICE;
    match mode {
        Some(mode) if mode & 0o006 == 0o006 => Check::new(
            "tun",
            Status::Ok,
            format!(
                "{device} is open to every user (mode {:o}), as pasta needs",
                mode & 0o777
            ),
        ),
        Some(mode) => Check::new(
            "tun",
            Status::Warn,
            format!(
                "{device} has mode {:o}: pasta, which runs as the container's root, cannot open it",
                mode & 0o777
            ),
        )
        .fix(format!("sudo chmod 0666 {device} (udev's default)")),
        None => Check::new(
            "tun",
            Status::Warn,
            format!("{device} is missing: pasta needs it"),
        )
        .fix("sudo modprobe tun"),
    }
}

/// Directories sudo's `secure_path` holds: ip and nft live in sbin, which a
/// user's own PATH often lacks, yet the lab runs them through sudo.
const SBIN_DIRS: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn locate_tool(program: &str) -> Option<PathBuf> {
    hostinfo::find_in_path(program)
        .or_else(|| hostinfo::find_in_dirs(program, std::ffi::OsStr::new(SBIN_DIRS)))
}

/// Whether `tool` was found (at `path`), and for one that must be static,
/// what its ELF headers said (`linking`).
pub fn tool_check(
    tool: &Tool,
    path: Option<&Path>,
    linking: Option<Result<Option<bool>, HostInfoError>>,
) -> Check {
    let install = format!("sudo apt-get install {}", tool.package);
    let Some(path) = path else {
        return if tool.wanted {
            Check::new(
                tool.program,
                Status::Warn,
                format!("not found; wanted for {}", tool.used_for),
            )
            .fix(install)
        } else {
            Check::new(
                tool.program,
                Status::Info,
                format!("not found; optional, for {}: {install}", tool.used_for),
            )
        };
    };
    match linking {
        Some(Ok(Some(false))) => Check::new(
            tool.program,
            Status::Warn,
            format!(
                "{} is dynamically linked; {} needs a static one",
                path.display(),
                tool.used_for
            ),
        )
        .fix(install),
        Some(Ok(Some(true))) => Check::new(
            tool.program,
            Status::Ok,
            format!("{} (statically linked)", path.display()),
        ),
        Some(Ok(None)) => Check::new(
            tool.program,
            Status::Ok,
            format!(
                "{} (not ELF: cannot tell whether it is static)",
                path.display()
            ),
        ),
        Some(Err(error)) => Check::new(
            tool.program,
            Status::Ok,
            format!(
                "{} (cannot tell whether it is static: {error})",
                path.display()
            ),
        ),
        None => Check::new(tool.program, Status::Ok, path.display().to_string()),
    }
}

// ---------------------------------------------------------------------------
// rootfs

/// What is at the default rootfs path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootfsState {
    Missing,
    NotDirectory,
    /// A directory without the lab's own tools in it.
    WithoutTools,
    Ready,
}

/// The tool every lab-built rootfs holds (installed by `lab rootfs`).
pub const ROOTFS_MARKER: &str = "usr/local/bin/lab-breakout";

fn rootfs_state(path: &Path) -> RootfsState {
    match std::fs::metadata(path) {
        Err(_) => RootfsState::Missing,
        Ok(meta) if !meta.is_dir() => RootfsState::NotDirectory,
        Ok(_) if path.join(ROOTFS_MARKER).is_file() => RootfsState::Ready,
        Ok(_) => RootfsState::WithoutTools,
    }
}

/// A move into cgroups slower than this is worth a word: the move that
/// waits for an RCU grace period takes some milliseconds, one that does
/// not a fraction of one.
pub const SLOW_CGROUP_MOVE: Duration = Duration::from_millis(2);

/// Time one move of a process into a container's cgroups, as chapters 06
/// to 10 make and join them (`ContainerCgroup::create` and `add`: memory,
/// cpu, pids, freezer), with a `sleep` as the process; then remove them.
/// They are named container-lab-PID, which `lab clean` removes should the
/// doctor die in between.
pub fn time_cgroup_move() -> Result<Duration, String> {
    use crate::runtime::cgroups::{ContainerCgroup, Limits};
    if !nix::unistd::geteuid().is_root() {
        return Err("needs root".into());
    }
    let narrator = crate::narrator::Narrator::new(false, false).map_err(|e| e.to_string())?;
    // The narrator sets colour for stderr; the report keeps its own.
    colored::control::unset_override();
    let limits = Limits {
        account: true,
        freezable: true,
        ..Limits::default()
    };
    let cgroup = ContainerCgroup::create(&narrator, &limits).map_err(|e| e.to_string())?;
    let mut child = std::process::Command::new("sleep")
        .arg("10")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start sleep: {e}"))?;
    let started = Instant::now();
    let moved = cgroup.add(&narrator, nix::unistd::Pid::from_raw(child.id() as i32));
    let took = started.elapsed();
    let _ = child.kill();
    let _ = child.wait();
    drop(cgroup);
    moved.map_err(|e| e.to_string())?;
    Ok(took)
}

/// How long a container start waits to enter its cgroups. Moving a process
/// takes the kernel's cgroup_threadgroup_rwsem, whose writer waits for an
/// RCU grace period unless a cgroup mount has `favordynmods` (Linux 6.0),
/// which makes every fork and exit a little slower instead (the kernel's
/// cgroup-v2 documentation). The lock is one for the whole kernel: the
/// option on any cgroup2 mount, a hybrid host's included, is enough.
pub fn cgroup_move_check(measured: &Result<Duration, String>, cgroup2: Option<&Path>) -> Check {
    let took = match measured {
        Err(why) => {
            return Check::new("cgroup move", Status::Info, format!("not measured: {why}"));
        }
        Ok(took) => *took,
    };
    let shown = format!("{:.1} ms", took.as_secs_f64() * 1000.0);
    if took < SLOW_CGROUP_MOVE {
        return Check::new(
            "cgroup move",
            Status::Ok,
            format!("a process entered a container's cgroups in {shown}"),
        );
    }
    let mut check = Check::new(
        "cgroup move",
        Status::Info,
        format!(
            "a process entered a container's cgroups in {shown}: every container start waits as long"
        ),
    );
    check.details.push(
        "the kernel's cgroup_threadgroup_rwsem lets a move in after an RCU grace period (see the bench page)".into(),
    );
    check.details.push(match cgroup2 {
        Some(mount) => format!(
            "to trade it for slightly slower fork and exit: mount -o remount,favordynmods {} (Linux 6.0)",
            mount.display()
        ),
        None => "a cgroup mount with favordynmods (Linux 6.0) trades it for slightly slower fork and exit".into(),
    });
    check
}

/// The default rootfs at `path` (from $CONTAINER_LAB_ROOTFS when
/// `from_env`). The fix names the path: sudo drops the environment, so
/// `sudo lab rootfs` alone would build in the built-in default instead.
pub fn rootfs_check(state: &RootfsState, path: &Path, from_env: bool, lab: &str) -> Check {
    let shown = if from_env {
        format!("{} (from ${})", path.display(), crate::rootfs::ROOTFS_ENV)
    } else {
        path.display().to_string()
    };
    let build = format!("sudo {lab} rootfs {}", path.display());
    match state {
        RootfsState::Ready => Check::new(
            "rootfs",
            Status::Ok,
            format!("{shown}, with /{ROOTFS_MARKER}"),
        ),
        RootfsState::Missing => Check::new(
            "rootfs",
            Status::Warn,
            format!("no rootfs at {shown}: the chapters use it when given no ROOTFS"),
        )
        .fix(build),
        RootfsState::WithoutTools => Check::new(
            "rootfs",
            Status::Warn,
            format!("{shown} lacks /{ROOTFS_MARKER}: not built by lab rootfs, or by an older one"),
        )
        .fix(build),
        RootfsState::NotDirectory => Check::new(
            "rootfs",
            Status::Warn,
            format!("{shown} is not a directory"),
        )
        .fix(format!(
            "move it out of the way (the lab never deletes it for you), then {build}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::errno::Errno;

    /// The report without color codes, whatever `colored` was told.
    fn plain(checks: &[Check]) -> String {
        let mut out = Vec::new();
        render(checks, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let mut plain = String::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                // Skip "ESC [ ... m".
                for c in chars.by_ref() {
                    if c == 'm' {
                        break;
                    }
                }
            } else {
                plain.push(c);
            }
        }
        plain
    }

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    const LEGACY_SHARED: &str = "\
24 18 0:20 / /sys/fs/cgroup ro - tmpfs tmpfs ro,mode=755
28 24 0:24 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
29 24 0:25 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
";

    const UNIFIED: &str =
        "35 22 0:30 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n";

    fn hugetlb_only(_: &Path) -> Result<Vec<String>, HostInfoError> {
        Ok(vec!["hugetlb".into()])
    }

    #[test]
    fn render_lines_up_status_name_found_details_fix() {
        let checks = vec![
            Check::new("root", Status::Ok, "running as root (euid 0)"),
            Check {
                details: vec!["v1 /a: cpu".into()],
                ..Check::new("cgroups", Status::Info, "hybrid")
            },
            Check::new("busybox", Status::Warn, "not found")
                .fix("sudo apt-get install busybox-static"),
            Check::new("root", Status::Fail, "euid 1000").fix("run through sudo"),
        ];
        let text = plain(&checks);
        let expected = "\
ok    root     running as root (euid 0)
info  cgroups  hybrid
               v1 /a: cpu
warn  busybox  not found
               fix: sudo apt-get install busybox-static
fail  root     euid 1000
               fix: run through sudo

4 checks: 1 ok, 1 info, 1 warn, 1 fail
";
        assert_eq!(text, expected);
        assert!(!passed(&checks));
        assert!(passed(&checks[..3]));
    }

    #[test]
    fn lab_path_is_shown_as_typed() {
        let lab = Path::new("/src/lab/target/release/lab");
        assert_eq!(
            relative_to(lab, Path::new("/src/lab")),
            "target/release/lab"
        );
        assert_eq!(
            relative_to(lab, Path::new("/src/lab/target/release")),
            "./lab"
        );
        assert_eq!(
            relative_to(lab, Path::new("/home")),
            "/src/lab/target/release/lab"
        );
        assert_eq!(
            relative_to(lab, Path::new("/")),
            "/src/lab/target/release/lab"
        );
    }

    #[test]
    fn root_is_required_but_doctor_says_so_without_it() {
        assert_eq!(root_check(0, "lab").status, Status::Ok);
        let user = root_check(1000, "target/release/lab");
        assert_eq!(user.status, Status::Fail);
        assert!(user.found.contains("euid 1000"), "{}", user.found);
        assert!(
            user.fix.unwrap().contains("sudo target/release/lab demo"),
            "the fix names the command"
        );
    }

    #[test]
    fn kernels_before_5_6_lack_openat2() {
        assert_eq!(kernel_check("6.8.0-45-generic").status, Status::Ok);
        assert_eq!(kernel_check("5.6.0").status, Status::Ok);
        let old = kernel_check("5.4.0-150-generic");
        assert_eq!(old.status, Status::Warn);
        assert!(old.found.contains("openat2(2)"));
        assert!(old.fix.is_some());
        let odd = kernel_check("weird");
        assert_eq!(odd.status, Status::Warn);
        assert!(odd.fix.is_some());
    }

    #[test]
    fn hybrid_host_lists_both_versions() {
        let mounts = Ok(hostinfo::parse_mountinfo(HYBRID));
        let check = cgroup_check(&Ok(CgroupLayout::Hybrid), &mounts, hugetlb_only);
        assert_eq!(check.status, Status::Ok);
        assert!(
            check.found.starts_with("hybrid (cgroup v1 + v2)"),
            "{}",
            check.found
        );
        assert_eq!(
            check.details,
            [
                "v1 /sys/fs/cgroup/cpu: cpu",
                "v1 /sys/fs/cgroup/cpuacct: cpuacct",
                "v1 /sys/fs/cgroup/memory: memory",
                "v1 /sys/fs/cgroup/pids: pids",
                "v1 /sys/fs/cgroup/systemd: name=systemd (a named hierarchy, no controller)",
                "v2 /sys/fs/cgroup/unified: hugetlb",
            ]
        );
        assert_eq!(check.fix, None);
    }

    #[test]
    fn shared_hierarchies_share_a_line_and_missing_controllers_warn() {
        let mounts = Ok(hostinfo::parse_mountinfo(LEGACY_SHARED));
        let check = cgroup_check(&Ok(CgroupLayout::Legacy), &mounts, hugetlb_only);
        assert_eq!(
            check.details,
            [
                "v1 /sys/fs/cgroup/cpu,cpuacct: cpu cpuacct",
                "v1 /sys/fs/cgroup/memory: memory",
            ]
        );
        assert_eq!(check.status, Status::Warn);
        assert!(
            check.found.contains("without the pids controller"),
            "{}",
            check.found
        );
        assert!(check.fix.unwrap().contains("/proc/cgroups"));
    }

    #[test]
    fn unified_host_reads_its_controllers() {
        let mounts = Ok(hostinfo::parse_mountinfo(UNIFIED));
        let all = |_: &Path| Ok(vec!["cpu".into(), "memory".into(), "pids".into()]);
        let check = cgroup_check(&Ok(CgroupLayout::Unified), &mounts, all);
        assert_eq!(check.status, Status::Ok);
        assert_eq!(check.details, ["v2 /sys/fs/cgroup: cpu memory pids"]);

        let unreadable = |path: &Path| {
            Err(HostInfoError::Read {
                path: path.join("cgroup.controllers"),
                errno: Errno::EACCES,
            })
        };
        let check = cgroup_check(&Ok(CgroupLayout::Unified), &mounts, unreadable);
        assert_eq!(check.status, Status::Warn);
        assert!(check.found.ends_with("which controllers it has is unknown"));
        assert!(
            check.details[0].contains("permission denied (EACCES)"),
            "{:?}",
            check.details
        );
        assert_eq!(
            check.fix.as_deref(),
            Some("look by hand: cat /sys/fs/cgroup/cgroup.controllers")
        );
    }

    #[test]
    fn no_cgroups_is_a_warning_with_a_mount_command() {
        let layout = Err(HostInfoError::Statfs {
            path: "/sys/fs/cgroup".into(),
            errno: Errno::ENOENT,
        });
        let check = cgroup_check(&layout, &Ok(Vec::new()), hugetlb_only);
        assert_eq!(check.status, Status::Warn);
        assert!(
            check.found.contains("statfs /sys/fs/cgroup: no such file"),
            "{}",
            check.found
        );
        assert!(check.fix.unwrap().contains("mount -t cgroup2"));
    }

    #[test]
    fn overlay_missing_is_a_warning() {
        assert_eq!(overlay_check(true).status, Status::Ok);
        let missing = overlay_check(false);
        assert_eq!(missing.status, Status::Warn);
        assert!(missing.fix.unwrap().starts_with("sudo modprobe overlay"));
    }

    fn knob(name: &str) -> &'static UsernsKnobSpec {
        USERNS_KNOBS.iter().find(|knob| knob.name == name).unwrap()
    }

    #[test]
    fn userns_switches_warn_only_when_they_block() {
        let max = knob("userns max");
        assert_eq!(
            userns_check(max, &Ok(Some("63372\n".into()))).status,
            Status::Ok
        );
        let zero = userns_check(max, &Ok(Some("0\n".into())));
        assert_eq!(zero.status, Status::Warn);
        assert!(
            zero.found
                .starts_with("user.max_user_namespaces = 0: nobody")
        );
        assert_eq!(userns_check(max, &Ok(None)).status, Status::Warn);

        let clone = knob("userns clone");
        assert_eq!(userns_check(clone, &Ok(None)).status, Status::Ok);
        assert_eq!(
            userns_check(clone, &Ok(Some("1\n".into()))).status,
            Status::Ok
        );
        let blocked = userns_check(clone, &Ok(Some("0\n".into())));
        assert_eq!(blocked.status, Status::Warn);
        assert!(blocked.fix.unwrap().starts_with(
            "sudo sysctl -w kernel.unprivileged_userns_clone=1 (this lowers a protection"
        ));
    }

    #[test]
    fn ubuntu_apparmor_restriction_has_an_exact_fix() {
        let apparmor = knob("userns apparmor");
        let absent = userns_check(apparmor, &Ok(None));
        assert_eq!(absent.status, Status::Ok);
        assert_eq!(absent.fix, None);
        let restricted = userns_check(apparmor, &Ok(Some("1\n".into())));
        assert_eq!(restricted.status, Status::Warn);
        let fix = restricted.fix.unwrap();
        assert!(fix.starts_with("sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0"));
        assert!(fix.contains("lowers a protection"));
        assert_eq!(
            userns_check(apparmor, &Ok(Some("0\n".into()))).status,
            Status::Ok
        );
    }

    #[test]
    fn unreadable_switch_is_a_finding_not_a_crash() {
        let error = Err(HostInfoError::Read {
            path: hostinfo::MAX_USER_NAMESPACES.into(),
            errno: Errno::EACCES,
        });
        let check = userns_check(knob("userns max"), &error);
        assert_eq!(check.status, Status::Warn);
        assert!(check.found.contains("(EACCES)"));
        let garbage = userns_check(knob("userns max"), &Ok(Some("many".into())));
        assert_eq!(garbage.status, Status::Warn);
    }

    fn tool(program: &str) -> &'static Tool {
        TOOLS.iter().find(|tool| tool.program == program).unwrap()
    }

    #[test]
    fn wanted_tools_warn_with_their_package_others_inform() {
        let busybox = tool_check(tool("busybox"), None, None);
        assert_eq!(busybox.status, Status::Warn);
        assert_eq!(
            busybox.fix.as_deref(),
            Some("sudo apt-get install busybox-static")
        );
        let nft = tool_check(tool("nft"), None, None);
        assert_eq!((nft.status, nft.fix), (Status::Info, None));
        let ip = tool_check(tool("ip"), Some(Path::new("/usr/sbin/ip")), None);
        assert_eq!((ip.status, ip.found.as_str()), (Status::Ok, "/usr/sbin/ip"));
        let bwrap = tool_check(tool("bwrap"), None, None);
        assert_eq!(bwrap.status, Status::Info);
        assert_eq!(bwrap.fix, None);
        assert!(bwrap.found.contains("apt-get install bubblewrap"));
    }

    #[test]
    fn pasta_is_wanted_with_its_package_and_slirp4netns_informs() {
        let pasta = tool_check(tool("pasta"), None, None);
        assert_eq!(pasta.status, Status::Warn);
        assert_eq!(pasta.fix.as_deref(), Some("sudo apt-get install passt"));
        let slirp = tool_check(tool("slirp4netns"), None, None);
        assert_eq!(slirp.status, Status::Info);
        assert!(
            slirp.found.contains("apt-get install slirp4netns"),
            "{}",
            slirp.found
        );
    }

    #[test]
    fn tun_must_be_open_to_every_user() {
        assert_eq!(tun_check(Some(0o20666)).status, Status::Ok);
        let closed = tun_check(Some(0o20600));
        assert_eq!(closed.status, Status::Warn);
        assert!(closed.found.contains("mode 600"), "{}", closed.found);
        assert_eq!(
            closed.fix.as_deref(),
            Some("sudo chmod 0666 /dev/net/tun (udev's default)")
        );
        assert_eq!(tun_check(None).status, Status::Warn);
    }

    #[test]
    fn busybox_must_be_static() {
        let path = Some(Path::new("/usr/bin/busybox"));
        let dynamic = tool_check(tool("busybox"), path, Some(Ok(Some(false))));
        assert_eq!(dynamic.status, Status::Warn);
        assert!(dynamic.found.contains("dynamically linked"));
        assert_eq!(
            dynamic.fix.as_deref(),
            Some("sudo apt-get install busybox-static")
        );
        let fine = tool_check(tool("busybox"), path, Some(Ok(Some(true))));
        assert_eq!(fine.found, "/usr/bin/busybox (statically linked)");
        assert_eq!(fine.status, Status::Ok);
    }

    #[test]
    fn rootfs_fix_names_the_path_because_sudo_drops_the_environment() {
        let path = Path::new("/home/me/rootfs");
        let missing = rootfs_check(&RootfsState::Missing, path, true, "target/release/lab");
        assert_eq!(missing.status, Status::Warn);
        assert!(missing.found.contains("(from $CONTAINER_LAB_ROOTFS)"));
        assert_eq!(
            missing.fix.as_deref(),
            Some("sudo target/release/lab rootfs /home/me/rootfs")
        );
        let old = rootfs_check(&RootfsState::WithoutTools, path, false, "lab");
        assert!(old.found.contains("lacks /usr/local/bin/lab-breakout"));
        let ready = rootfs_check(&RootfsState::Ready, path, false, "lab");
        assert_eq!(ready.status, Status::Ok);
        let file = rootfs_check(&RootfsState::NotDirectory, path, false, "lab");
        assert!(file.fix.unwrap().contains("never deletes"));
    }

    #[test]
    fn rootfs_state_reads_the_directory() {
        let dir = std::env::temp_dir().join(format!("lab-doctor-rootfs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(rootfs_state(&dir), RootfsState::Missing);
        std::fs::create_dir_all(dir.join("usr/local/bin")).unwrap();
        assert_eq!(rootfs_state(&dir), RootfsState::WithoutTools);
        std::fs::write(dir.join(ROOTFS_MARKER), "").unwrap();
        assert_eq!(rootfs_state(&dir), RootfsState::Ready);
        assert_eq!(
            rootfs_state(&dir.join(ROOTFS_MARKER)),
            RootfsState::NotDirectory
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn gathering_on_this_host_does_not_panic() {
        let checks = gather();
        assert!(checks.len() >= 10);
        assert!(checks.iter().all(|check| !check.found.is_empty()));
        assert!(
            checks
                .iter()
                .filter(|check| matches!(check.status, Status::Warn | Status::Fail))
                .all(|check| check.fix.is_some()),
            "every warning and failure says what to do"
        );
    }

    #[test]
    fn a_quick_cgroup_move_is_ok_and_a_slow_one_names_favordynmods() {
        let quick = cgroup_move_check(&Ok(Duration::from_micros(300)), None);
        assert_eq!(quick.status, Status::Ok);
        assert!(quick.found.contains("0.3 ms"), "{}", quick.found);
        let slow = cgroup_move_check(
            &Ok(Duration::from_micros(12_340)),
            Some(Path::new("/sys/fs/cgroup/unified")),
        );
        assert_eq!(slow.status, Status::Info);
        assert!(slow.found.contains("12.3 ms"), "{}", slow.found);
        assert!(
            slow.details
                .iter()
                .any(|d| d.contains("mount -o remount,favordynmods /sys/fs/cgroup/unified")),
            "{:?}",
            slow.details
        );
        let unmeasured = cgroup_move_check(&Err("needs root".into()), None);
        assert_eq!(unmeasured.status, Status::Info);
        assert_eq!(unmeasured.found, "not measured: needs root");
    }
}
