//! The tour as an engine, for chapter 10's OCI runtime.
//!
//! An OCI runtime does what a bundle's config.json says and no more: the
//! container's root filesystem, its network beyond loopback and its user
//! namespace's files are the engine's to provide (containerd's snapshotter
//! and CNI, podman's storage and netavark). So the tour does what such an
//! engine does around runc, with the lab's own code, and chapter 10's
//! column compares with chapter 09's row for row:
//!
//! - **the bundle**: config.json is the default spec (`ch10-oci spec`)
//!   with the probe as its process, the tour's budgets as
//!   `linux.resources`, and chapter 09's user namespace (see
//!   [`tour_spec`]); the root is the tour's rootfs, bait and all, idmapped
//!   onto that namespace as chapter 09 idmaps its layers (containerd's
//!   idmapped snapshots, podman's `--userns=auto`);
//! - **the network**: `create`, then the lab's bridge wired into
//!   /proc/PID/ns/net (chapter 09's `ContainerNetwork`, host guard
//!   included), then `start`: what podman does with netavark and
//!   containerd with CNI between the runtime's two verbs. Left as the
//!   runtime makes it, the namespace would hold a loopback alone, and the
//!   network rows would measure an empty namespace instead of a
//!   container on a bridge beside others, as chapters 04-09 run;
//! - **stdout and stderr**: pipes, whose ends the tour reads, as conmon
//!   gives runc (see [`Created::create`]);
//! - **the process's parent**: the runtime's `create` leaves the
//!   container's process orphaned, to be reaped by whoever started it as
//!   a subreaper (conmon, containerd's shim); the tour is that subreaper
//!   while the container lives.

use crate::error::LabError;
use crate::lab::scorecard::{CPU_BUDGET, MEMORY_BUDGET_BYTES, PIDS_BUDGET};
use crate::narrator::Narrator;
use crate::oci::spec;
use crate::runtime::net::{BridgeRequest, ContainerNetwork, DEFAULT_BRIDGE, DEFAULT_SUBNET};
use crate::runtime::userns::{self, IdMap};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{MntFlags, umount2};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, pipe2};
use oci_spec::runtime::{
    LinuxCpuBuilder, LinuxIdMappingBuilder, LinuxMemoryBuilder, LinuxNamespaceBuilder,
    LinuxNamespaceType, LinuxPidsBuilder, MountBuilder, Spec,
};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// cgroup v1's and v2's CPU period (100 ms), over which the quota is
/// counted: the period chapter 06 uses, and runc's default.
const CPU_PERIOD_MICROS: u64 = 100_000;

/// Where the probe works: its checks make their directories in its
/// working directory (the chroot breakout) and in /tmp (the mounts). On
/// the default spec's read-only root each would stop at EROFS before it
/// reached what chapter 09 put in its way (no CAP_SYS_CHROOT, no
/// CAP_SYS_ADMIN, the filter), which chapter 09's writable layer lets it
/// reach. A tmpfs there keeps the root read-only and the checks honest.
const SCRATCH: &str = "/tmp";

/// The stdio and environment the tour gives every chapter's runtime.
pub struct TourStdio {
    /// The tour's pseudo-terminal (tty.inject), or nothing.
    pub stdin: Option<std::fs::File>,
    /// The host log file (fs.reopen-stdio), opened for appending.
    pub stderr: std::fs::File,
    /// The variable holding the secret (pid.environment).
    pub env: Option<(String, String)>,
}

/// What the probe printed, and its exit code (128+N if signal N killed it).
pub struct ProbeRun {
    pub stdout: Vec<u8>,
    pub exit_code: Option<i32>,
}

/// Run `args` (the probe's command line, as chapter 09 runs it) as the
/// process of a bundle: `binary create`, the network wired, `binary
/// start`, the probe's stdout read to its end, the container reaped and
/// deleted. The bundle and the runtime's state go in `scratch`, the
/// tour's bait directory, which the tour removes afterwards; everything
/// else made here is taken down before this returns, whatever fails.
pub fn run_in_bundle(
    binary: &Path,
    scratch: &Path,
    rootfs: &Path,
    args: Vec<String>,
    stdio: TourStdio,
) -> Result<ProbeRun, LabError> {
    let narrator = Narrator::new(false, false)?;
    let (uids, gids) = chapter_09_maps()?;
    // Not `rootfs/` in the bundle: the bundle lives in the tour's bait
    // directory, removed recursively afterwards, and a mount left there
    // would take the rootfs's files with it. config.json's root.path may
    // be absolute (runtime spec, "Root"); this one is chapter 09's mount
    // point, open to the container's unprivileged root on the way in.
    let mount_point = userns::RootfsMountPoint::make()?;
    let _idmapped = IdmappedRootfs::attach(&narrator, rootfs, &mount_point.path, &uids, &gids)?;
    let bundle = scratch.join("bundle");
    std::fs::create_dir_all(&bundle).map_err(|e| LabError::io("mkdir", bundle.display(), e))?;
    let config = bundle.join("config.json");
    let text = spec::to_json(&tour_spec(args, &mount_point.path, &uids, &gids)?)?;
    std::fs::write(&config, text).map_err(|e| LabError::io("write", config.display(), e))?;
    let mut container = Created::create(binary, scratch, &bundle, stdio)?;
    // Chapter 04's bridge, the engine's part of the network: between the
    // verbs, while the container's process waits for `start`.
    let mut network = ContainerNetwork::prepare(
        &narrator,
        &BridgeRequest {
            bridge: DEFAULT_BRIDGE,
            subnet: DEFAULT_SUBNET
                .parse()
                .map_err(|message| LabError::Usage { message })?,
            ports: &[],
            hostname: spec::HOSTNAME,
        },
    )?;
    // chapter 09's host guard, as ch09 gives every container it hardens.
    network.close_host_services = true;
    network.wire(&narrator, container.pid)?;
    container.start()?;
    let mut stdout = Vec::new();
    if let Some(pipe) = container.stdout.take() {
        let _ = std::fs::File::from(pipe).read_to_end(&mut stdout);
    }
    let exit_code = match container.reap() {
        Some(WaitStatus::Exited(_, code)) => Some(code),
        Some(WaitStatus::Signaled(_, signal, _)) => Some(128 + signal as i32),
        _ => None,
    };
    // The container is gone, and its end of the cable with its namespace;
    // its rules go with `network`, after it.
    drop(container);
    drop(network);
    Ok(ProbeRun { stdout, exit_code })
}

/// Chapter 09's uid and gid maps: what it gives a container when no flag
/// says otherwise (0 -> 1879048192, or the next range no line of
/// /etc/subuid or /etc/subgid claims; the stand-in host lists one).
fn chapter_09_maps() -> Result<(Vec<IdMap>, Vec<IdMap>), LabError> {
    crate::cli::UsernsArgs {
        uid_maps: Vec::new(),
        gid_maps: Vec::new(),
        chown_copy: false,
    }
    .maps()
}

// ANCHOR: tour_spec
/// The bundle's config.json: `ch10-oci spec`'s default, which holds
/// chapter 09's capabilities, no_new_privs, seccomp filter, masked paths
/// and device rule, and:
/// - the probe as the process, without a terminal (the tour's own stdio
///   are passed through, as `runc run` passes them);
/// - `root` as the root filesystem (still read-only, as by default), and
///   a tmpfs on /tmp, the probe's working directory, as podman gives a
///   `--read-only` container (see [`SCRATCH`]);
/// - the tour's budgets as `linux.resources`, the numbers chapters 06-09
///   get as `--memory 64M --pids 64 --cpus 0.5`: a memory limit with no
///   swap beyond it (swap is memory + swap, runc's reading), a CPU quota
///   per period, a pids limit;
/// - a cgroup `lab clean` knows by name;
/// - chapter 09's user namespace. The default spec has none, as runc's has
///   none: without one the container's root is the host's root, and the
///   checks chapter 05 closed would open again. Chapters 05-09 give every
///   container one by default; an engine asks for it in config.json
///   (podman `--userns=auto`, a Kubernetes pod's `hostUsers: false`).
pub fn tour_spec(
    args: Vec<String>,
    root: &Path,
    uids: &[IdMap],
    gids: &[IdMap],
) -> Result<Spec, LabError> {
    let mut spec = spec::default_spec(false)?;
    if let Some(process) = spec.process_mut() {
        process.set_args(Some(args));
        process.set_terminal(Some(false));
        process.set_cwd(PathBuf::from(SCRATCH));
    }
    if let Some(spec_root) = spec.root_mut() {
        spec_root.set_path(root.to_path_buf());
    }
    let scratch = MountBuilder::default()
        .destination(SCRATCH)
        .typ("tmpfs")
        .source("tmpfs")
        .options(
            ["nosuid", "nodev", "mode=1777", "size=65536k"]
                .map(String::from)
                .to_vec(),
        )
        .build()
        .map_err(spec_error)?;
    spec.mounts_mut().get_or_insert_with(Vec::new).push(scratch);
    let linux = spec.linux_mut().get_or_insert_with(Default::default);
    let user = LinuxNamespaceBuilder::default()
        .typ(LinuxNamespaceType::User)
        .build()
        .map_err(spec_error)?;
    linux
        .namespaces_mut()
        .get_or_insert_with(Vec::new)
        .push(user);
    linux.set_uid_mappings(Some(oci_maps(uids)?));
    linux.set_gid_mappings(Some(oci_maps(gids)?));
    // The engine names the cgroup: this name, ch06's with the tour's pid,
    // is one `lab clean` reclaims once the tour is gone (a SIGKILLed tour
    // never runs `delete`).
    linux.set_cgroups_path(Some(PathBuf::from(format!(
        "/container-lab-{}",
        std::process::id()
    ))));
    let resources = linux.resources_mut().get_or_insert_with(Default::default);
    let memory = MEMORY_BUDGET_BYTES as i64;
    resources.set_memory(Some(
        LinuxMemoryBuilder::default()
            .limit(memory)
            .swap(memory)
            .build()
            .map_err(spec_error)?,
    ));
    resources.set_cpu(Some(
        LinuxCpuBuilder::default()
            .quota((CPU_BUDGET * CPU_PERIOD_MICROS as f64) as i64)
            .period(CPU_PERIOD_MICROS)
            .build()
            .map_err(spec_error)?,
    ));
    resources.set_pids(Some(
        LinuxPidsBuilder::default()
            .limit(i64::from(PIDS_BUDGET))
            .build()
            .map_err(spec_error)?,
    ));
    Ok(spec)
}
// ANCHOR_END: tour_spec

fn oci_maps(maps: &[IdMap]) -> Result<Vec<oci_spec::runtime::LinuxIdMapping>, LabError> {
    maps.iter()
        .map(|map| {
            LinuxIdMappingBuilder::default()
                .container_id(map.inside)
                .host_id(map.outside)
                .size(map.count)
                .build()
                .map_err(spec_error)
        })
        .collect()
}

fn spec_error(error: oci_spec::OciSpecError) -> LabError {
    LabError::Refused {
        message: format!("the tour's config.json: {error}"),
        hint: "the lab's own values should always build: report it".into(),
    }
}

/// The tour's rootfs seen through the container's id maps, at the
/// bundle's `rootfs`: files the host's root owns are the container root's,
/// as chapter 09 shows its layers, and nothing on disk changes. Neither
/// read-only nor `nodev` here: config.json's `root.readonly` and device
/// rule are what chapter 10 is measured on. Unmounted when dropped.
struct IdmappedRootfs {
    target: PathBuf,
}

impl IdmappedRootfs {
    fn attach(
        narrator: &Narrator,
        rootfs: &Path,
        target: &Path,
        uids: &[IdMap],
        gids: &[IdMap],
    ) -> Result<IdmappedRootfs, LabError> {
        let c_path = |path: &Path| {
            std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| LabError::Usage {
                message: format!("{} has a NUL byte in it", path.display()),
            })
        };
        let namespace = user_namespace(narrator, uids, gids)?;
        let step = |syscall: &'static str, path: &Path| {
            let target = path.display().to_string();
            move |errno| LabError::StepFailed {
                syscall,
                target,
                errno,
            }
        };
        let tree = userns::open_tree_clone(&c_path(rootfs)?).map_err(step("open_tree", rootfs))?;
        userns::set_mount_attributes(&tree, userns::MOUNT_ATTR_IDMAP, Some(&namespace))
            .map_err(step("mount_setattr", rootfs))?;
        userns::move_mount_to(&tree, &c_path(target)?).map_err(step("move_mount", target))?;
        Ok(IdmappedRootfs {
            target: target.to_path_buf(),
        })
    }
}

impl Drop for IdmappedRootfs {
    fn drop(&mut self) {
        let _ = umount2(&self.target, MntFlags::MNT_DETACH);
    }
}

/// A user namespace with `uids` and `gids`, for MOUNT_ATTR_IDMAP, which
/// takes one by descriptor before the container's exists: a child makes
/// it and waits while the tour writes its maps and opens it, then leaves;
/// the descriptor keeps the namespace (containerd makes its idmapped
/// mounts the same way).
fn user_namespace(
    narrator: &Narrator,
    uids: &[IdMap],
    gids: &[IdMap],
) -> Result<std::fs::File, LabError> {
    let pipe = || {
        pipe2(OFlag::O_CLOEXEC).map_err(|errno| LabError::StepFailed {
            syscall: "pipe2",
            target: "O_CLOEXEC".into(),
            errno,
        })
    };
    let (made_read, made_write) = pipe()?;
    let (done_read, done_write) = pipe()?;
    // SAFETY: the child only calls unshare, write, read and _exit.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            drop(made_read);
            drop(done_write);
            if nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER).is_ok() {
                let _ = nix::unistd::write(&made_write, b"u");
                // Until the tour closes its end: the maps are written.
                let _ = nix::unistd::read(&done_read, &mut [0u8; 1]);
            }
            // SAFETY: leave without the tour's exit handlers.
            unsafe { libc::_exit(0) }
        }
        Ok(ForkResult::Parent { child }) => {
            drop(made_write);
            drop(done_read);
            let made = nix::unistd::read(&made_read, &mut [0u8; 1]);
            let opened = match made {
                Ok(1) => userns::write_maps(narrator, child, uids, gids).and_then(|()| {
                    let path = format!("/proc/{child}/ns/user");
                    std::fs::File::open(&path).map_err(|e| LabError::io("open", path, e))
                }),
                _ => Err(LabError::StepFailed {
                    syscall: "unshare",
                    target: "CLONE_NEWUSER".into(),
                    errno: made.err().unwrap_or(Errno::EPERM),
                }),
            };
            drop(done_write);
            let _ = waitpid(child, None);
            opened
        }
        Err(errno) => Err(LabError::StepFailed {
            syscall: "fork",
            target: "a user namespace for the idmapped rootfs".into(),
            errno,
        }),
    }
}

/// A container `create` made, under a state root of the tour's: deleted
/// (`delete --force`) and reaped when dropped, whatever happened.
struct Created {
    binary: PathBuf,
    state: PathBuf,
    id: String,
    pid: Pid,
    /// The read end of the probe's stdout.
    stdout: Option<std::os::fd::OwnedFd>,
    /// Copies the container's stderr, a pipe, into the tour's log.
    logger: Option<std::thread::JoinHandle<Vec<u8>>>,
    reaped: bool,
}

impl Created {
    /// `binary --root STATE create --bundle BUNDLE --pid-file FILE ID`,
    /// its stdin the tour's, its stdout and stderr pipes whose write ends
    /// only the container keeps; what comes out of stderr goes on into the
    /// tour's log.
    ///
    /// Pipes, not the tour's log file itself, as conmon and containerd's
    /// shim give runc pipes and write the log themselves: an OCI runtime
    /// passes its own stdio through to the container (runc's "pass-through"
    /// mode, and ch10-oci's), so a container started with `2>>log` could
    /// reopen the log through /proc/self/fd/2 (fs.reopen-stdio). Chapter
    /// 07's monitor took that job; in OCI's split it is the engine's.
    fn create(
        binary: &Path,
        scratch: &Path,
        bundle: &Path,
        stdio: TourStdio,
    ) -> Result<Created, LabError> {
        let state = scratch.join("oci");
        let pid_file = scratch.join("container.pid");
        let id = format!("tour-{}-ch10", std::process::id());
        let pipe = |what: &str| {
            pipe2(OFlag::O_CLOEXEC).map_err(|errno| LabError::StepFailed {
                syscall: "pipe2",
                target: what.into(),
                errno,
            })
        };
        let (read, write) = pipe("the probe's stdout")?;
        let (errors, errors_write) = pipe("the probe's stderr")?;
        let logger = spawn_logger(errors, stdio.stderr);
        // The container's process is orphaned when `create` returns: to
        // the tour, which reaps it, not to the machine's init.
        set_subreaper(true)?;
        let mut command = Command::new(binary);
        command
            .arg("--root")
            .arg(&state)
            .args(["create", "--bundle"])
            .arg(bundle)
            .arg("--pid-file")
            .arg(&pid_file)
            .arg(&id)
            .stdin(stdio.stdin.map_or_else(Stdio::null, Stdio::from))
            .stdout(Stdio::from(std::fs::File::from(write)))
            .stderr(Stdio::from(std::fs::File::from(errors_write)));
        if let Some((name, value)) = &stdio.env {
            command.env(name, value);
        }
        let status = command.status();
        // The pipes' write ends went with `command`: only the container
        // holds them now, so the tour's reads end when the probe does.
        drop(command);
        let pid = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .map(Pid::from_raw);
        let pid = match (status, pid) {
            (Ok(status), Some(pid)) if status.success() => pid,
            (status, _) => {
                let _ = set_subreaper(false);
                // `create` has ended and closed the pipe: the copy ends.
                let said = logger.join().unwrap_or_default();
                let what = match status {
                    Ok(status) => format!("create failed ({status})"),
                    Err(error) => format!("execve: {error}"),
                };
                return Err(LabError::Probe {
                    chapter: binary.display().to_string(),
                    message: format!("{what}: {}", String::from_utf8_lossy(&said).trim()),
                });
            }
        };
        Ok(Created {
            binary: binary.to_path_buf(),
            state,
            id,
            pid,
            stdout: Some(read),
            logger: Some(logger),
            reaped: false,
        })
    }

    fn start(&self) -> Result<(), LabError> {
        let output = self
            .verb(&["start", &self.id])
            .map_err(|e| LabError::io("execve", self.binary.display(), e))?;
        match output.status.success() {
            true => Ok(()),
            false => Err(LabError::Probe {
                chapter: self.binary.display().to_string(),
                message: format!(
                    "start failed: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                ),
            }),
        }
    }

    fn verb(&self, args: &[&str]) -> std::io::Result<std::process::Output> {
        Command::new(&self.binary)
            .arg("--root")
            .arg(&self.state)
            .args(args)
            .stdin(Stdio::null())
            .output()
    }

    /// Wait for the container's process, the tour's child since `create`.
    fn reap(&mut self) -> Option<WaitStatus> {
        let status = waitpid(self.pid, None).ok();
        self.reaped = true;
        status
    }
}

impl Drop for Created {
    fn drop(&mut self) {
        // Kills what still runs, removes the cgroup and the state.
        let _ = self.verb(&["delete", "--force", &self.id]);
        if !self.reaped {
            let _ = waitpid(self.pid, None);
        }
        let _ = set_subreaper(false);
        // The container is gone, and its end of the stderr pipe with it.
        self.logger.take().map(std::thread::JoinHandle::join);
    }
}

/// conmon's job for stderr: copy what comes out of `pipe` into `log`,
/// until the last writer closes it; what was copied, for an error message.
fn spawn_logger(
    pipe: std::os::fd::OwnedFd,
    mut log: std::fs::File,
) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        use std::io::Write;
        let mut copied = Vec::new();
        let _ = std::fs::File::from(pipe).read_to_end(&mut copied);
        let _ = log.write_all(&copied);
        copied
    })
}

fn set_subreaper(on: bool) -> Result<(), LabError> {
    nix::sys::prctl::set_child_subreaper(on).map_err(|errno| LabError::StepFailed {
        syscall: "prctl",
        target: "PR_SET_CHILD_SUBREAPER".into(),
        errno,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tour_spec_is_the_default_with_the_probe_budgets_and_a_user_namespace() {
        let map = IdMap {
            inside: 0,
            outside: 1879048192,
            count: 65536,
        };
        let args = vec!["/usr/local/bin/lab-probe".to_string(), "--json".into()];
        let dir = std::env::temp_dir().join(format!("lab-tour-spec-{}", std::process::id()));
        let root = dir.join("somewhere-else");
        std::fs::create_dir_all(&root).unwrap();
        let spec = tour_spec(args.clone(), &root, &[map], &[map]).unwrap();
        let json: serde_json::Value = serde_json::from_str(&spec::to_json(&spec).unwrap()).unwrap();
        assert_eq!(json["process"]["args"], serde_json::json!(args));
        assert_eq!(json["process"]["terminal"], false);
        assert_eq!(json["process"]["noNewPrivileges"], true);
        assert_eq!(json["root"]["path"], root.to_str().unwrap());
        assert_eq!(json["root"]["readonly"], true);
        assert_eq!(json["process"]["cwd"], "/tmp");
        let tmp = json["mounts"].as_array().unwrap().last().unwrap();
        assert_eq!(
            (&tmp["destination"], &tmp["type"]),
            (&"/tmp".into(), &"tmpfs".into())
        );
        let resources = &json["linux"]["resources"];
        assert_eq!(resources["memory"]["limit"], 64 << 20);
        assert_eq!(resources["memory"]["swap"], 64 << 20);
        assert_eq!(resources["cpu"]["quota"], 50_000);
        assert_eq!(resources["cpu"]["period"], 100_000);
        assert_eq!(resources["pids"]["limit"], 64);
        // The default's deny-all device rule stays.
        assert_eq!(resources["devices"][0]["allow"], false);
        let kinds: Vec<&str> = json["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert!(
            kinds.contains(&"user") && kinds.contains(&"network"),
            "{kinds:?}"
        );
        assert_eq!(json["linux"]["uidMappings"][0]["hostID"], 1879048192);
        assert_eq!(json["linux"]["gidMappings"][0]["size"], 65536);
        let cgroup = format!("/container-lab-{}", std::process::id());
        assert_eq!(json["linux"]["cgroupsPath"], cgroup.as_str());
        // ... and it reads back as chapter 06's budget.
        std::fs::write(dir.join("config.json"), spec::to_json(&spec).unwrap()).unwrap();
        let bundle = crate::oci::config::Bundle::load(&dir);
        std::fs::remove_dir_all(&dir).unwrap();
        let limits = bundle.unwrap().plan.limits;
        assert_eq!(limits.memory_bytes, Some(MEMORY_BUDGET_BYTES));
        assert_eq!(limits.cpus, Some(CPU_BUDGET));
        assert_eq!(limits.pids, Some(u64::from(PIDS_BUDGET)));
    }
}
