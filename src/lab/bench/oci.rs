//! Chapter 10's OCI runtime, measured beside runc (issue 19's goals):
//! `ch10-oci run` and `runc run` of one bundle; `create`, `start`, the
//! wait for the container's end and `delete`, the calls an engine makes,
//! timed as one; and `podman run --rm` end to end with each of them as
//! podman's runtime.
//!
//! Both runtimes run the same config.json ([`bench_config`]), so the rows
//! compare two implementations of one container, not two containers. The
//! engine rows give podman a store, run root, tmpdir and cgroup of the
//! bench's, and remove them when done.

use super::{
    ComparedRow, Comparison, Goal, Scratch, argv, built_chapter, compared_row, millis, run_logged,
    with_goal,
};
use crate::error::LabError;
use crate::runtime::state::remove_tree;
use serde_json::{Value, json};
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The image podman runs: the bench's rootfs, imported.
const IMAGE: &str = "localhost/lab/oci-bench:latest";

/// Rounds of `podman run --rm` at most: each takes a few hundred
/// milliseconds, nearly all of them podman's own, so more rounds would
/// lengthen the bench more than they sharpen the comparison.
const PODMAN_ROUNDS: usize = 20;

/// What the chapter 10 bench measures with.
pub struct OciBenchPlan<'a> {
    pub rootfs: &'a Path,
    /// Where the bundle, the runtimes' state and podman's storage go
    /// (removed when done). podman refuses a run root longer than 50
    /// characters: keep it short.
    pub work: &'a Path,
    pub warmup: usize,
    pub runs: usize,
}

/// An OCI runtime, with a state directory (`--root`) of the bench's.
struct Runtime {
    program: PathBuf,
    root: PathBuf,
}

impl Runtime {
    fn argv(&self, args: &[&str]) -> Vec<OsString> {
        let root = self.root.to_string_lossy();
        let mut all = vec!["--root", root.as_ref()];
        all.extend(args);
        argv(&self.program, &all)
    }
}

/// `ch10-oci spec`'s config.json made the bench's: the rootfs by absolute
/// path and read-only (the runs share it), `/bin/true` with no terminal,
/// and the cgroup at `cgroup` from each hierarchy's root, so that both
/// runtimes make the same one (left to them, ch10-oci makes
/// /container-lab-oci/ID and runc one below its own cgroup). Everything
/// else is the spec's as written, and both runtimes do it: new pid,
/// network, ipc, uts, mount and cgroup namespaces, /proc, a tmpfs /dev
/// with its nodes, /dev/pts, /dev/shm, /dev/mqueue, a read-only /sys and
/// cgroup tree, chapter 09's capabilities, masked and read-only paths and
/// seccomp profile, no_new_privs, an rlimit, the hostname, a device
/// cgroup that denies all but the standard nodes, pivot_root into the
/// root, then execve.
fn bench_config(mut config: Value, rootfs: &Path, cgroup: &str) -> Value {
    config["root"] = json!({"path": rootfs, "readonly": true});
    config["process"]["terminal"] = false.into();
    config["process"]["args"] = json!(["/bin/true"]);
    config["linux"]["cgroupsPath"] = cgroup.into();
    config
}

/// What both runtimes do for `config`, in a line: the note under the rows.
fn what_both_do(config: &Value) -> String {
    let count = |pointer: &str| {
        config
            .pointer(pointer)
            .and_then(Value::as_array)
            .map_or(0, Vec::len)
    };
    let namespaces: Vec<&str> = config
        .pointer("/linux/namespaces")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|namespace| namespace["type"].as_str())
        .collect();
    let rules: usize = config
        .pointer("/linux/seccomp/syscalls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|rule| rule["names"].as_array().map_or(0, Vec::len))
        .sum();
    format!(
        "both runtimes run one config.json, `ch10-oci spec`'s with the rootfs read-only, \
         /bin/true, no terminal and cgroupsPath {}: namespaces {}; {} mounts; {} \
         capabilities; no_new_privs {}; seccomp deciding {} calls by name; {} masked and {} \
         read-only paths; device rules; runc puts the process in every cgroup hierarchy, \
         ch10-oci in those it writes",
        config
            .pointer("/linux/cgroupsPath")
            .and_then(Value::as_str)
            .unwrap_or("-"),
        namespaces.join(", "),
        count("/mounts"),
        count("/process/capabilities/bounding"),
        match config.pointer("/process/noNewPrivileges") {
            Some(Value::Bool(true)) => "on",
            _ => "off",
        },
        rules,
        count("/linux/maskedPaths"),
        count("/linux/readonlyPaths"),
    )
}

/// Issue 19's goal for the runtime on its own: at least five times as
/// fast as runc, medians compared.
fn faster_goal(row: &ComparedRow) -> Option<Goal> {
    let times = row.peer_median? / row.median;
    Some(Goal {
        target: "at least 5x runc's speed".into(),
        measured: format!("{times:.2}x"),
        met: times >= 5.0,
    })
}

/// Issue 19's goal under an engine: no slower than with runc; by how
/// much, in milliseconds too, since the engine's own time dominates.
fn engine_goal(row: &ComparedRow) -> Option<Goal> {
    let theirs = row.peer_median?;
    Some(Goal {
        target: "no slower than with runc".into(),
        measured: format!(
            "{:.3}x its time ({:+.1} ms)",
            row.median / theirs,
            row.median - theirs
        ),
        met: row.median <= theirs,
    })
}

/// The cgroup `path` (from each hierarchy's root) removed from every
/// hierarchy, deepest first, whatever is left in it killed, when dropped:
/// the containers' cgroup, and the parent podman puts its containers and
/// conmon under.
struct BenchCgroup(String);

impl Drop for BenchCgroup {
    fn drop(&mut self) {
        fn remove(dir: &Path) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                    remove(&entry.path());
                }
            }
            let _ = crate::runtime::cgroups::empty_and_remove(dir);
        }
        let mounts = crate::hostinfo::read_mountinfo().unwrap_or_default();
        let relative = self.0.trim_start_matches('/');
        for mount in mounts
            .iter()
            .filter(|mount| matches!(mount.fs_type.as_str(), "cgroup" | "cgroup2"))
        {
            let dir = mount.mount_point.join(relative);
            if dir.is_dir() {
                remove(&dir);
            }
        }
    }
}

/// This process as the reaper of its descendants' orphans while it lives
/// (PR_SET_CHILD_SUBREAPER), as conmon and containerd's shim are: a
/// container's first process becomes its child once `create` exits, so
/// that it can wait for its end. Dropped: no longer, and the orphans that
/// ended meanwhile reaped.
struct Subreaper;

impl Subreaper {
    fn become_one() -> Result<Subreaper, LabError> {
        nix::sys::prctl::set_child_subreaper(true).map_err(|errno| LabError::StepFailed {
            syscall: "prctl",
            target: "PR_SET_CHILD_SUBREAPER".into(),
            errno,
        })?;
        Ok(Subreaper)
    }
}

impl Drop for Subreaper {
    fn drop(&mut self) {
        use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
        let _ = nix::sys::prctl::set_child_subreaper(false);
        // No command of the bench runs now: any child that ended is an
        // adopted container's process.
        while let Ok(status) = waitpid(nix::unistd::Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            if status == WaitStatus::StillAlive {
                break;
            }
        }
    }
}

/// The containers the runtime rows make, deleted with `--force` by their
/// runtime when dropped, whatever was left of them (nothing, when every
/// round succeeded).
struct Containers<'a>(Vec<(&'a Runtime, String)>);

impl Drop for Containers<'_> {
    fn drop(&mut self) {
        for (runtime, id) in &self.0 {
            let _ = std::process::Command::new(&runtime.program)
                .arg("--root")
                .arg(&runtime.root)
                .args(["delete", "--force", id])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

/// Wait for the container's first process `pid`, this process's child
/// since it became a [`Subreaper`]; it must exit 0 (/bin/true).
fn wait_for_end(pid: i32) -> Result<(), LabError> {
    use nix::sys::wait::{WaitStatus, waitpid};
    let failed = |message: String| LabError::ToolFailed {
        command: format!("waitpid {pid}"),
        message,
    };
    loop {
        match waitpid(nix::unistd::Pid::from_raw(pid), None) {
            Ok(WaitStatus::Exited(_, 0)) => return Ok(()),
            Ok(status) => return Err(failed(format!("the container ended with {status:?}"))),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(errno) => {
                return Err(failed(format!(
                    "{}: the container's process is not this process's child",
                    errno.desc()
                )));
            }
        }
    }
}

/// One container's life as an engine drives it: `create` (with the pid
/// file engines ask for), `start`, wait for its process to end, `delete`
/// (not `--force`: it has ended, and `delete` sees it stopped). Its wall
/// time, from `create` to `delete`'s return.
fn create_start_wait_delete(
    runtime: &Runtime,
    bundle: &Path,
    id: &str,
    work: &Path,
) -> Result<f64, LabError> {
    let (pid_file, log) = (work.join("container.pid"), work.join("stderr"));
    let _ = std::fs::remove_file(&pid_file);
    let (bundle, pid_path) = (bundle.to_string_lossy(), pid_file.to_string_lossy());
    let created = runtime.argv(&["create", "--bundle", &bundle, "--pid-file", &pid_path, id]);
    let (start, delete) = (runtime.argv(&["start", id]), runtime.argv(&["delete", id]));
    let started = Instant::now();
    run_logged(&created, &[], Some(&log))?;
    let pid = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|text| text.trim().parse::<i32>().ok())
        .ok_or_else(|| LabError::ToolFailed {
            command: format!("{} create", runtime.program.display()),
            message: format!("wrote no pid into {}", pid_file.display()),
        })?;
    run_logged(&start, &[], Some(&log))?;
    wait_for_end(pid)?;
    run_logged(&delete, &[], Some(&log))?;
    Ok(millis(started.elapsed()))
}

/// Chapter 10's rows: `run`, and create + start + wait + delete, beside
/// runc on the same bundle; `podman run --rm` with each as its runtime.
/// `progress` is told what is timed.
pub fn oci(plan: &OciBenchPlan, progress: &dyn Fn(&str)) -> Result<Comparison, LabError> {
    let mut oci = Comparison::default();
    let Some(chapter) = built_chapter(
        "ch10-oci",
        "its OCI runtime was not measured",
        &mut oci.notes,
    ) else {
        return Ok(oci);
    };
    let runc = crate::hostinfo::find_in_path("runc");
    if runc.is_none() {
        oci.notes
            .push("runc: not measured (not installed: apt-get install runc)".into());
    }
    let _ = remove_tree(plan.work);
    std::fs::create_dir_all(plan.work)
        .map_err(|e| LabError::io("mkdir", plan.work.display(), e))?;
    let work = Scratch(plan.work.to_path_buf());
    // Named as chapter 06 names its cgroups, so that `lab clean` finds it
    // if the bench is killed.
    let cgroup = BenchCgroup(format!("/container-lab-{}", std::process::id()));
    let bundle = work.0.join("bundle");
    std::fs::create_dir_all(&bundle).map_err(|e| LabError::io("mkdir", bundle.display(), e))?;
    run_logged(
        &argv(&chapter, &["spec", "--bundle", &bundle.to_string_lossy()]),
        &[],
        Some(&work.0.join("stderr")),
    )?;
    let path = bundle.join("config.json");
    let spec: Value = std::fs::read_to_string(&path)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .ok_or_else(|| LabError::ToolFailed {
            command: format!("{} spec", chapter.display()),
            message: format!("wrote no readable {}", path.display()),
        })?;
    let config = bench_config(spec, plan.rootfs, &cgroup.0);
    std::fs::write(&path, config.to_string())
        .map_err(|e| LabError::io("write", path.display(), e))?;
    oci.notes.push(what_both_do(&config));

    let ours = Runtime {
        program: chapter.clone(),
        root: work.0.join("state-ch10"),
    };
    let theirs = runc.as_ref().map(|program| Runtime {
        program: program.clone(),
        root: work.0.join("state-runc"),
    });
    progress("timing ch10-oci and runc on one bundle: run, and create + start + wait + delete ...");
    oci.rows.extend(runtime_rows(
        plan,
        &bundle,
        &ours,
        theirs.as_ref(),
        &work.0,
        progress,
    )?);
    oci.notes.push(
        "run: `run --bundle B ID`, attached: the runtime waits for the container's end and \
         deletes it; create + start + wait + delete: `create --bundle B --pid-file F ID`, `start ID`, \
         waitpid(2) on the container's process (the bench is its reaper, \
         PR_SET_CHILD_SUBREAPER, as conmon and containerd's shim are), then `delete ID` of \
         the stopped container"
            .into(),
    );
    oci.rows.extend(podman_row(
        plan,
        &chapter,
        runc.as_deref(),
        &cgroup.0,
        &mut oci.notes,
        progress,
    )?);
    Ok(oci)
}

/// `run`, and create + start + wait + delete, of ours and (when
/// installed) runc's, in rounds as [`super::measure_all`] times start-ups.
fn runtime_rows(
    plan: &OciBenchPlan,
    bundle: &Path,
    ours: &Runtime,
    theirs: Option<&Runtime>,
    work: &Path,
    progress: &dyn Fn(&str),
) -> Result<Vec<ComparedRow>, LabError> {
    let tag = std::process::id();
    let (run_id, cycle_id) = (
        format!("labbench-{tag}-run"),
        format!("labbench-{tag}-cycle"),
    );
    // Declared first, dropped last: the containers are deleted before
    // their processes are reaped.
    let _reaper = Subreaper::become_one()?;
    let mut made = Containers(Vec::new());
    for runtime in std::iter::once(ours).chain(theirs) {
        made.0.push((runtime, run_id.clone()));
        made.0.push((runtime, cycle_id.clone()));
    }
    let path = bundle.to_string_lossy();
    let run = |runtime: &Runtime| -> Result<f64, LabError> {
        let argv = runtime.argv(&["run", "--bundle", &path, &run_id]);
        Ok(millis(run_logged(&argv, &[], Some(&work.join("stderr")))?))
    };
    let cycle = |runtime: &Runtime| create_start_wait_delete(runtime, bundle, &cycle_id, work);
    let (mut our_runs, mut their_runs, mut our_cycles, mut their_cycles) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..plan.warmup + plan.runs {
        let measured = round >= plan.warmup;
        let take = |ms: f64, into: &mut Vec<f64>| {
            if measured {
                into.push(ms);
            }
        };
        // Each runtime's container follows one of the other's, so that what
        // the kernel is left doing by the last container (a cgroup v1
        // attach is cheaper right after another, a network namespace is
        // torn down after its last process has gone) falls on both alike.
        take(run(ours)?, &mut our_runs);
        if let Some(theirs) = theirs {
            take(run(theirs)?, &mut their_runs);
        }
        take(cycle(ours)?, &mut our_cycles);
        if let Some(theirs) = theirs {
            take(cycle(theirs)?, &mut their_cycles);
        }
        if measured && (round - plan.warmup) % 10 == 9 {
            progress(&format!(
                "  round {} of {}",
                round - plan.warmup + 1,
                plan.runs
            ));
        }
    }
    let peer = |command: &str| match theirs {
        Some(_) => command.to_string(),
        None => format!("{command} (runc not installed)"),
    };
    Ok([
        with_goal(
            compared_row(
                "run /bin/true, one bundle",
                "ms",
                our_runs,
                peer("runc run"),
                their_runs,
            ),
            faster_goal,
        ),
        with_goal(
            compared_row(
                "create + start + wait + delete",
                "ms",
                our_cycles,
                peer("runc, the same calls"),
                their_cycles,
            ),
            faster_goal,
        ),
    ]
    .into_iter()
    .flatten()
    .collect())
}

/// Paths podman, and the runtimes it runs, use whatever they are told:
/// podman's blob-info cache (containers/image's default for root, written
/// by `import`), and the runtimes' default state directories (podman
/// passes a runtime no `--root`). Left alone: /dev/shm/libpod_lock, the
/// lock table every podman of the host shares, which another may be using.
const FIXED_PATHS: [&str; 5] = [
    "/var/lib/containers/cache/blob-info-cache-v1.boltdb",
    "/var/lib/containers/cache",
    "/var/lib/containers",
    "/run/runc",
    crate::oci::state::DEFAULT_ROOT,
];

/// Those of [`FIXED_PATHS`] that did not exist before the bench's podman
/// ran: removed when dropped, a file before the directories that hold it,
/// a directory only when it is empty again (rmdir(2) leaves one in use).
struct FixedPaths(Vec<&'static str>);

impl FixedPaths {
    fn note_missing() -> FixedPaths {
        FixedPaths(
            FIXED_PATHS
                .into_iter()
                .filter(|path| !Path::new(path).exists())
                .collect(),
        )
    }
}

impl Drop for FixedPaths {
    fn drop(&mut self) {
        for path in self.0.iter().map(Path::new) {
            let _ = match path.is_dir() {
                true => std::fs::remove_dir(path),
                false => std::fs::remove_file(path),
            };
        }
    }
}

/// podman with everything of its own under `dir`: storage (overlay), run
/// root, tmpdir (exit files, the events log), network configuration and
/// hooks directories, and `cgroup_parent` for its containers and conmon.
/// Its events go to a file, its cgroups are made by path (cgroupfs: no
/// systemd here), containers run with no network. Dropped: any container
/// left removed (through `runtime`), mounts below `dir` detached, `dir`
/// removed.
struct Podman {
    dir: PathBuf,
    cgroup_parent: String,
    runtime: PathBuf,
}

impl Podman {
    /// `podman` with the global flags that keep it to its directory and
    /// `runtime` as its OCI runtime, then `args`.
    fn argv(&self, runtime: &Path, args: &[&str]) -> Vec<OsString> {
        let dir = |sub: &str| self.dir.join(sub).to_string_lossy().into_owned();
        let (storage, run, tmp, net, hooks) = (
            dir("storage"),
            dir("run"),
            dir("tmp"),
            dir("net"),
            dir("hooks"),
        );
        let runtime = runtime.to_string_lossy();
        let mut all = vec![
            "--root",
            &storage,
            "--runroot",
            &run,
            "--tmpdir",
            &tmp,
            "--storage-driver",
            "overlay",
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "file",
            "--network-config-dir",
            &net,
            "--hooks-dir",
            &hooks,
            "--runtime",
            &runtime,
        ];
        all.extend(args);
        argv(Path::new("podman"), &all)
    }

    /// `run --rm` of [`IMAGE`] running /bin/true: no network (no bridge
    /// or firewall rules, nothing left on the host), the bench's cgroup
    /// parent, and ulimits a machine without CAP_SYS_RESOURCE for
    /// podman's defaults allows.
    fn run_argv(&self, runtime: &Path) -> Vec<OsString> {
        self.argv(
            runtime,
            &[
                "run",
                "--rm",
                "--network",
                "none",
                "--cgroup-parent",
                &self.cgroup_parent,
                "--ulimit",
                "nofile=1024:1024",
                "--ulimit",
                "nproc=1024:1024",
                IMAGE,
                "/bin/true",
            ],
        )
    }

    /// Its image copies go to its own tmpdir, not /var/tmp.
    fn tmpdir(&self) -> PathBuf {
        self.dir.join("tmp")
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let remove = self.argv(&self.runtime, &["rm", "--all", "--force", "--time", "0"]);
        let _ = std::process::Command::new(&remove[0])
            .args(&remove[1..])
            .env("TMPDIR", self.tmpdir())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        // containers/storage binds its overlay directory onto itself, and
        // a container's root is an overlay mount below it.
        let mut points: Vec<PathBuf> = crate::hostinfo::read_mountinfo()
            .unwrap_or_default()
            .into_iter()
            .map(|mount| mount.mount_point)
            .filter(|point| point.starts_with(&self.dir))
            .collect();
        points.sort_by_key(|point| std::cmp::Reverse(point.as_os_str().len()));
        for point in points {
            let _ = nix::mount::umount2(&point, nix::mount::MntFlags::MNT_DETACH);
        }
        let _ = remove_tree(&self.dir);
    }
}

/// The bench's rootfs as a tar, for `podman import`.
fn rootfs_tar(rootfs: &Path, tar: &Path) -> Result<(), LabError> {
    let written = (|| {
        let file = std::fs::File::create(tar)?;
        let mut builder = tar::Builder::new(std::io::BufWriter::new(file));
        builder.follow_symlinks(false);
        // containers/storage refuses GNU sparse entries (type 'S'), which
        // the tar crate writes for a file with holes unless told not to.
        builder.sparse(false);
        builder.append_dir_all(".", rootfs)?;
        builder.into_inner()?.flush()
    })();
    written.map_err(|e| LabError::io("write", tar.display(), e))
}

/// `podman run --rm` with ch10-oci, and with runc when it is installed,
/// alternating, `warmup` rounds and then at most [`PODMAN_ROUNDS`]; None
/// and a note saying what to install when podman or conmon is missing.
fn podman_row(
    plan: &OciBenchPlan,
    chapter: &Path,
    runc: Option<&Path>,
    cgroup_parent: &str,
    notes: &mut Vec<String>,
    progress: &dyn Fn(&str),
) -> Result<Option<ComparedRow>, LabError> {
    let missing: Vec<&str> = ["podman", "conmon"]
        .into_iter()
        .filter(|tool| crate::hostinfo::find_in_path(tool).is_none())
        .collect();
    if !missing.is_empty() {
        notes.push(format!(
            "podman run --rm: not measured ({} not installed: apt-get install {})",
            missing.join(" and "),
            missing.join(" ")
        ));
        return Ok(None);
    }
    let _fixed = FixedPaths::note_missing();
    let podman = Podman {
        dir: plan.work.join("pm"),
        cgroup_parent: cgroup_parent.into(),
        runtime: chapter.to_path_buf(),
    };
    for sub in ["tmp", "net", "hooks"] {
        let dir = podman.dir.join(sub);
        std::fs::create_dir_all(&dir).map_err(|e| LabError::io("mkdir", dir.display(), e))?;
    }
    let tmpdir = podman.tmpdir();
    let env = [("TMPDIR", tmpdir.as_path())];
    let log = podman.dir.join("stderr");
    progress("importing the rootfs into a podman store of the bench's ...");
    let tar = podman.dir.join("rootfs.tar");
    rootfs_tar(plan.rootfs, &tar)?;
    let tar_path = tar.to_string_lossy();
    let import = podman.argv(
        chapter,
        &["import", "--change", "CMD=/bin/true", &tar_path, IMAGE],
    );
    run_logged(&import, &env, Some(&log))?;
    let _ = std::fs::remove_file(&tar);

    let rounds = plan.runs.min(PODMAN_ROUNDS);
    progress(&format!(
        "timing podman run --rm with ch10-oci{}, {rounds} rounds ...",
        if runc.is_some() { " and with runc" } else { "" }
    ));
    let time = |runtime: &Path| -> Result<f64, LabError> {
        let argv = podman.run_argv(runtime);
        Ok(millis(run_logged(&argv, &env, Some(&log))?))
    };
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for round in 0..plan.warmup + rounds {
        let mine = time(chapter)?;
        let peer = runc.map(time).transpose()?;
        if round >= plan.warmup {
            ours.push(mine);
            theirs.extend(peer);
        }
    }
    if rounds < plan.runs {
        notes.push(format!(
            "podman run --rm: {rounds} rounds, not {}: each run takes hundreds of \
             milliseconds, nearly all of them podman's",
            plan.runs
        ));
    }
    notes.push(
        "podman run --rm: podman 4 with a store, run root, tmpdir and cgroup parent of the \
         bench's (overlay, cgroupfs, events to a file, --network none); podman calls \
         create, start and delete through conmon and its cleanup process, and passes \
         `--log-format json --log FILE` to runc but not to ch10-oci, a name it does not know"
            .into(),
    );
    let peer = match runc {
        Some(_) => "podman --runtime runc".to_string(),
        None => "podman --runtime runc (runc not installed)".to_string(),
    };
    Ok(with_goal(
        compared_row("podman run --rm IMAGE /bin/true", "ms", ours, peer, theirs),
        engine_goal,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Value {
        json!({
            "ociVersion": "1.0.2",
            "process": {
                "terminal": true,
                "args": ["sh"],
                "noNewPrivileges": true,
                "capabilities": {"bounding": ["CAP_CHOWN", "CAP_KILL"]}
            },
            "root": {"path": "rootfs", "readonly": true},
            "mounts": [{"destination": "/proc"}, {"destination": "/dev"}],
            "linux": {
                "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "mount"}],
                "maskedPaths": ["/proc/kcore"],
                "readonlyPaths": ["/proc/sys", "/proc/bus"],
                "seccomp": {"syscalls": [{"names": ["read", "write"]}, {"names": ["ptrace"]}]}
            }
        })
    }

    #[test]
    fn the_bench_config_runs_true_on_the_rootfs_in_the_bench_cgroup() {
        let config = bench_config(spec(), Path::new("/srv/rootfs"), "/container-lab-42");
        assert_eq!(
            config["root"],
            json!({"path": "/srv/rootfs", "readonly": true})
        );
        assert_eq!(config["process"]["terminal"], json!(false));
        assert_eq!(config["process"]["args"], json!(["/bin/true"]));
        assert_eq!(config["linux"]["cgroupsPath"], json!("/container-lab-42"));
        // The rest is the spec's.
        assert_eq!(config["linux"]["namespaces"], spec()["linux"]["namespaces"]);
        assert_eq!(config["process"]["noNewPrivileges"], json!(true));
    }

    #[test]
    fn the_note_says_what_both_runtimes_do() {
        let config = bench_config(spec(), Path::new("/srv/rootfs"), "/container-lab-42");
        let note = what_both_do(&config);
        for part in [
            "cgroupsPath /container-lab-42",
            "namespaces pid, network, mount;",
            "2 mounts;",
            "2 capabilities;",
            "no_new_privs on;",
            "seccomp deciding 3 calls by name;",
            "1 masked and 2 read-only paths;",
        ] {
            assert!(note.contains(part), "{part:?} not in {note}");
        }
    }

    fn row(ours: f64, theirs: Option<f64>) -> ComparedRow {
        let theirs = theirs.map_or(Vec::new(), |ms| vec![ms]);
        compared_row("r", "ms", vec![ours], "runc".into(), theirs).unwrap()
    }

    #[test]
    fn goals_compare_the_medians() {
        let goal = faster_goal(&row(10.0, Some(60.0))).unwrap();
        assert_eq!((goal.measured.as_str(), goal.met), ("6.00x", true));
        let goal = faster_goal(&row(30.0, Some(60.0))).unwrap();
        assert_eq!((goal.measured.as_str(), goal.met), ("2.00x", false));
        assert_eq!(faster_goal(&row(30.0, None)), None);
        let goal = engine_goal(&row(195.0, Some(200.0))).unwrap();
        assert_eq!(
            (goal.measured.as_str(), goal.met),
            ("0.975x its time (-5.0 ms)", true)
        );
        let goal = engine_goal(&row(210.0, Some(200.0))).unwrap();
        assert!(!goal.met, "{goal:?}");
        assert_eq!(engine_goal(&row(210.0, None)), None);
    }
}
