//! Chapter 09's hardening, measured (issue 18's goals): what the seccomp
//! filter costs each system call, and what compiling and loading it costs
//! a container's start.
//!
//! Per call: `lab-probe --burn-syscalls N` (N getppid(2) calls) inside
//! ch09, beside the same image in ch08, and in ch09 with
//! `--security-opt seccomp=unconfined` as a control, alternating, best of
//! `repeat`. Then the same in forked children of the bench itself, with
//! no filter, a one-instruction allow-all filter and the default profile,
//! which takes the runtime's start-up out of the numbers and separates
//! seccomp's fixed cost from the profile's length; and personality(2),
//! whose rule reads its argument, so that the kernel's action cache cannot
//! answer for it and the program runs (the linear scan's cost).
//!
//! Start-up: `Profile::docker_default()` compiled in the bench process,
//! and loaded in a forked child that has set no_new_privs, the seccomp(2)
//! calls alone timed; the child reports its nanoseconds through a pipe.

use super::Scratch;
use super::{ComparedRow, Comparison, Goal, argv, built_chapter, compared_row, run_once_with};
use crate::error::LabError;
use crate::image::store::STORAGE_ENV;
use crate::runtime::caps::CapSet;
use crate::runtime::seccomp::{Call, Filter, Profile, bpf, syscall_number};
use crate::runtime::state::remove_tree;
use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

/// The image the per-call rows run: the bench's rootfs, imported.
const IMAGE: &str = "bench/probe:v1";

/// personality(2)'s "which personality is this?": allowed by the default
/// profile, as the last of its five values, after a look at the argument.
const PERSONALITY_QUERY: u64 = 0xffff_ffff;

/// What the hardening bench measures with.
pub struct HardeningBenchPlan<'a> {
    pub rootfs: &'a Path,
    /// Where the image store goes (removed when done).
    pub work: &'a Path,
    /// System calls per loop.
    pub calls: u64,
    /// Loops of each subject, alternating; the goal takes the best.
    pub repeat: usize,
    /// Compiles and loads timed.
    pub runs: usize,
}

fn failed(command: &str, message: impl Into<String>) -> LabError {
    LabError::ToolFailed {
        command: command.into(),
        message: message.into(),
    }
}

/// Run `argv` with the bench's image store; what it printed, trimmed.
fn output_with(argv: &[OsString], store: &Path) -> Result<String, LabError> {
    let line = || {
        argv.iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let output = Command::new(&argv[0])
        .args(&argv[1..])
        .env(STORAGE_ENV, store)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| failed(&line(), e.to_string()))?;
    if !output.status.success() {
        return Err(failed(
            &line(),
            format!(
                "exited with {}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// Nanoseconds per call of a `--burn-syscalls` run.
fn per_call(argv: &[OsString], store: &Path, calls: u64) -> Result<f64, LabError> {
    let printed = output_with(argv, store)?;
    let nanos: f64 = printed
        .parse()
        .map_err(|_| failed("lab-probe --burn-syscalls", format!("printed {printed:?}")))?;
    Ok(nanos / calls as f64)
}

/// `(ours / theirs - 1)` in percent.
fn overhead(ours: f64, theirs: f64) -> f64 {
    (ours / theirs - 1.0) * 100.0
}

fn best(samples: &[f64]) -> Option<f64> {
    samples.iter().copied().reduce(f64::min)
}

/// Issue 18's goal per call: under 10% over ch08, best run against best
/// run (as the throughput rows compare).
fn per_call_goal(ours: &[f64], theirs: &[f64]) -> Option<Goal> {
    let percent = overhead(best(ours)?, best(theirs)?);
    Some(Goal {
        target: "under 10% over ch08".into(),
        measured: format!("{percent:+.1}% (best runs)"),
        met: percent < 10.0,
    })
}

/// Issue 18's goal for start-up: compile and load under 0.5 ms.
fn start_goal(row: &ComparedRow) -> Option<Goal> {
    Some(Goal {
        target: "under 0.5 ms".into(),
        measured: format!("{:.3} ms", row.median),
        met: row.median < 0.5,
    })
}

/// What a forked child loads before it times its calls.
#[derive(Clone, Copy)]
enum Loaded<'a> {
    Nothing,
    /// `return ALLOW`, one instruction: every call is in the kernel's
    /// cache; what is left is seccomp's own cost on the way in.
    AllowAll,
    Profile(&'a Filter),
}

/// Load a one-instruction allow-all program (no_new_privs already set).
fn install_allow_all() -> nix::Result<()> {
    let program = [bpf::statement(bpf::RETURN, bpf::RET_ALLOW)];
    let fprog = libc::sock_fprog {
        len: 1,
        filter: program.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: fprog points at a live one-instruction program; the kernel
    // copies it before returning.
    let result = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &fprog as *const libc::sock_fprog,
        )
    };
    match result {
        0 => Ok(()),
        _ => Err(nix::errno::Errno::last()),
    }
}

/// Fork a child that sets no_new_privs and runs `work`, which returns up
/// to two numbers (nanoseconds) or fails; the parent reads them through a
/// pipe. The child allocates nothing and leaves with _exit(2).
fn in_child(
    what: &str,
    work: impl FnOnce() -> nix::Result<[u64; 2]>,
) -> Result<[u64; 2], LabError> {
    use nix::sys::wait::{WaitStatus, waitpid};
    use nix::unistd::{ForkResult, fork, pipe};
    let (reader, writer): (OwnedFd, OwnedFd) =
        pipe().map_err(|e| failed(what, format!("pipe: {e}")))?;
    // SAFETY: the child makes system calls only (prctl, seccomp, the timed
    // calls, write) and leaves with _exit: nothing that needs a lock
    // another thread of the parent might hold.
    match unsafe { fork() }.map_err(|e| failed(what, format!("fork: {e}")))? {
        ForkResult::Child => {
            drop(reader);
            let answer = nix::sys::prctl::set_no_new_privs().and_then(|()| work());
            let code = match answer {
                Ok(nanos) => {
                    let mut bytes = [0u8; 16];
                    bytes[..8].copy_from_slice(&nanos[0].to_ne_bytes());
                    bytes[8..].copy_from_slice(&nanos[1].to_ne_bytes());
                    match nix::unistd::write(&writer, &bytes) {
                        Ok(16) => 0,
                        _ => 2,
                    }
                }
                Err(errno) => errno as i32,
            };
            // SAFETY: leave without the parent's exit handlers.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            drop(writer);
            let mut bytes = [0u8; 16];
            let mut got = 0;
            while got < bytes.len() {
                match nix::unistd::read(&reader, &mut bytes[got..]) {
                    Ok(0) => break,
                    Ok(n) => got += n,
                    Err(nix::errno::Errno::EINTR) => {}
                    Err(_) => break,
                }
            }
            let status = waitpid(child, None).map_err(|e| failed(what, format!("wait: {e}")))?;
            match (status, got) {
                (WaitStatus::Exited(_, 0), 16) => Ok([
                    u64::from_ne_bytes(bytes[..8].try_into().expect("eight bytes")),
                    u64::from_ne_bytes(bytes[8..].try_into().expect("eight bytes")),
                ]),
                (WaitStatus::Exited(_, code), _) => Err(failed(
                    what,
                    format!(
                        "the child failed: {}",
                        nix::errno::Errno::from_raw(code).desc()
                    ),
                )),
                (status, _) => Err(failed(what, format!("the child ended with {status:?}"))),
            }
        }
    }
}

/// In a forked child with `loaded` in place: nanoseconds per getppid(2)
/// and per personality(0xffffffff), `calls` of each.
fn calls_in_child(loaded: Loaded, calls: u64) -> Result<(f64, f64), LabError> {
    let nanos = in_child("time system calls under a filter", || {
        match loaded {
            Loaded::Nothing => {}
            Loaded::AllowAll => install_allow_all()?,
            Loaded::Profile(filter) => filter.install()?,
        }
        let started = Instant::now();
        for _ in 0..calls {
            std::hint::black_box(nix::unistd::getppid());
        }
        let getppid = started.elapsed().as_nanos() as u64;
        let started = Instant::now();
        for _ in 0..calls {
            // SAFETY: the query form changes nothing (personality(2)).
            std::hint::black_box(unsafe {
                libc::personality(std::hint::black_box(PERSONALITY_QUERY) as libc::c_ulong)
            });
        }
        Ok([getppid, started.elapsed().as_nanos() as u64])
    })?;
    Ok((
        nanos[0] as f64 / calls as f64,
        nanos[1] as f64 / calls as f64,
    ))
}

/// The default profile compiled as chapter 09 compiles it for a container
/// with Docker's capabilities.
fn compile_default() -> Result<Filter, LabError> {
    let names = CapSet::container_default().names();
    Profile::docker_default().compile(&names)
}

/// What the kernel's action cache does with the default filter, and the
/// longest path through it: the notes behind the per-call rows.
fn cache_notes(filter: &Filter) -> Vec<String> {
    let mut notes = Vec::new();
    let table = crate::runtime::seccomp::native_syscalls();
    let allowed: Vec<i64> = table
        .iter()
        .map(|(_, number)| *number)
        .filter(|number| {
            filter.decide_native(*number, [0; 6]) == crate::runtime::seccomp::SeccompAction::Allow
        })
        .collect();
    let cached = allowed
        .iter()
        .filter(|number| filter.kernel_caches(**number))
        .count();
    let getppid = syscall_number("getppid").map(|nr| filter.kernel_caches(nr));
    notes.push(format!(
        "the kernel's action cache (Linux 5.11+), emulated as kernel/seccomp.c does when the \
         filter is loaded: getppid {}; {cached} of the {} calls the default profile allows \
         skip the filter entirely, the rest read an argument and run it on every call",
        match getppid {
            Some(true) => "is always allowed, so no program runs for it",
            Some(false) => "is NOT in the cache: every call runs the programs",
            None => "is not a call of this architecture",
        },
        allowed.len()
    ));
    if let Some(nr) = syscall_number("personality") {
        let run = filter.instructions_run(&Call::native(nr, [PERSONALITY_QUERY, 0, 0, 0, 0, 0]));
        let longest = table
            .iter()
            .map(|(name, number)| {
                (
                    *name,
                    filter.instructions_run(&Call::native(*number, [0; 6])),
                )
            })
            .max_by_key(|(_, ran)| *ran);
        notes.push(format!(
            "personality(0xffffffff) runs {run} of the filter's {} instructions (its rule reads \
             the argument); the longest path, {}, runs {}",
            filter.instructions(),
            longest.map_or("-", |(name, _)| name),
            longest.map_or(0, |(_, ran)| ran),
        ));
    }
    notes
}

/// Chapter 09's rows: per-call cost in containers and in the bench's own
/// children, then compile and load. `progress` is told what is timed.
pub fn hardening(
    plan: &HardeningBenchPlan,
    progress: &dyn Fn(&str),
) -> Result<Comparison, LabError> {
    let mut hardening = Comparison::default();
    let filter = compile_default()?;
    container_rows(plan, progress, &mut hardening)?;

    progress("timing getppid(2) and personality(2) under the filter, in forked children ...");
    let (mut none, mut allow_all, mut profile) = (Vec::new(), Vec::new(), Vec::new());
    let (mut personality_none, mut personality_profile) = (Vec::new(), Vec::new());
    for _ in 0..plan.repeat {
        let (getppid, personality) = calls_in_child(Loaded::Nothing, plan.calls)?;
        none.push(getppid);
        personality_none.push(personality);
        allow_all.push(calls_in_child(Loaded::AllowAll, plan.calls)?.0);
        let (getppid, personality) = calls_in_child(Loaded::Profile(&filter), plan.calls)?;
        profile.push(getppid);
        personality_profile.push(personality);
    }
    let percent = |ours: &[f64], theirs: &[f64]| {
        best(ours)
            .zip(best(theirs))
            .map_or(0.0, |(ours, theirs)| overhead(ours, theirs))
    };
    hardening.notes.push(format!(
        "in the bench's own children (best runs): a one-instruction allow-all filter adds \
         {:+.1}% to getppid, the default filter {:+.1}% over that, and {:+.1}% over no \
         filter; personality(0xffffffff) {:+.1}% over no filter",
        percent(&allow_all, &none),
        percent(&profile, &allow_all),
        percent(&profile, &none),
        percent(&personality_profile, &personality_none),
    ));
    hardening.notes.extend(cache_notes(&filter));
    let row = compared_row;
    hardening.rows.extend(
        [
            row(
                "getppid(2), default filter, bench's child",
                "ns/call",
                profile,
                "one-instruction allow-all filter".into(),
                allow_all.clone(),
            ),
            row(
                "getppid(2), one-instruction allow-all filter, bench's child",
                "ns/call",
                allow_all,
                "no filter".into(),
                none,
            ),
            row(
                "personality(0xffffffff), default filter, bench's child",
                "ns/call",
                personality_profile,
                "no filter".into(),
                personality_none,
            ),
        ]
        .into_iter()
        .flatten(),
    );

    progress("timing compile and load of the default profile ...");
    let (mut compile, mut load, mut start) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..plan.runs {
        let started = Instant::now();
        let compiled = std::hint::black_box(compile_default()?);
        let compile_ms = started.elapsed().as_secs_f64() * 1000.0;
        let nanos = in_child("load the default seccomp filter", || {
            let started = Instant::now();
            compiled.install()?;
            Ok([started.elapsed().as_nanos() as u64, 0])
        })?;
        let load_ms = nanos[0] as f64 / 1e6;
        compile.push(compile_ms);
        load.push(load_ms);
        start.push(compile_ms + load_ms);
    }
    let shape = format!(
        "{} instructions in {} programs",
        filter.instructions(),
        filter.programs()
    );
    hardening.rows.extend(
        [
            row(
                &format!("compile the default profile ({shape})"),
                "ms",
                compile,
                "-".into(),
                Vec::new(),
            ),
            row(
                &format!("load it: seccomp(2) x {}", filter.programs()),
                "ms",
                load,
                "-".into(),
                Vec::new(),
            ),
            row(
                "compile + load, what a container's start pays",
                "ms",
                start,
                "-".into(),
                Vec::new(),
            )
            .map(|mut row| {
                row.goal = start_goal(&row);
                row
            }),
        ]
        .into_iter()
        .flatten(),
    );
    if cfg!(debug_assertions) {
        hardening.notes.push(
            "lab is a debug build: compiling runs unoptimised code here, several times slower \
             than a release build's"
                .into(),
        );
    }
    Ok(hardening)
}

/// getppid(2) in ch09, beside ch08 and ch09 unconfined, on one image in a
/// store of the bench's own; the rows go in `hardening`, or a note when a
/// chapter is not built.
fn container_rows(
    plan: &HardeningBenchPlan,
    progress: &dyn Fn(&str),
    hardening: &mut Comparison,
) -> Result<(), LabError> {
    let not_measured = "seccomp's cost per call in a container was not measured";
    let Some(ch08) = built_chapter("ch08-images", not_measured, &mut hardening.notes) else {
        return Ok(());
    };
    let Some(ch09) = built_chapter("ch09-hardening", not_measured, &mut hardening.notes) else {
        return Ok(());
    };
    let _ = remove_tree(plan.work);
    std::fs::create_dir_all(plan.work)
        .map_err(|e| LabError::io("mkdir", plan.work.display(), e))?;
    let work = Scratch(plan.work.to_path_buf());
    let store = work.0.join("store");
    let root = plan.rootfs.to_string_lossy();
    run_once_with(
        &argv(&ch08, &["import", &root, IMAGE]),
        &[(STORAGE_ENV, &store)],
    )?;
    let calls = plan.calls.to_string();
    let burn = |chapter: &Path, flags: &[&str]| {
        let mut args = vec!["run", "--rm", "--net", "none"];
        args.extend(flags);
        args.extend([IMAGE, "/usr/local/bin/lab-probe", "--burn-syscalls", &calls]);
        argv(chapter, &args)
    };
    let (in_ch08, in_ch09, unconfined) = (
        burn(&ch08, &[]),
        burn(&ch09, &[]),
        burn(&ch09, &["--security-opt", "seccomp=unconfined"]),
    );
    progress(&format!(
        "timing {} getppid(2) calls in ch09, ch08 and ch09 seccomp=unconfined, {} times ...",
        plan.calls, plan.repeat
    ));
    let (mut ours, mut theirs, mut control) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..plan.repeat {
        theirs.push(per_call(&in_ch08, &store, plan.calls)?);
        ours.push(per_call(&in_ch09, &store, plan.calls)?);
        control.push(per_call(&unconfined, &store, plan.calls)?);
    }
    let status = output_with(
        &argv(
            &ch09,
            &[
                "run",
                "--rm",
                "--net",
                "none",
                IMAGE,
                "grep",
                "^Seccomp",
                "/proc/self/status",
            ],
        ),
        &store,
    )?;
    hardening.notes.push(format!(
        "inside ch09, /proc/self/status says: {}",
        status.split_whitespace().collect::<Vec<_>>().join(" ")
    ));
    let goal = per_call_goal(&ours, &theirs);
    let control_percent = best(&control)
        .zip(best(&theirs))
        .map(|(control, theirs)| overhead(control, theirs));
    if let Some(percent) = control_percent {
        hardening.notes.push(format!(
            "control: ch09 with --security-opt seccomp=unconfined is {percent:+.1}% over ch08 \
             (best runs): ch09's other protections cost a call nothing"
        ));
    }
    hardening.rows.extend(
        [
            compared_row(
                "getppid(2) in ch09 (default seccomp filter)",
                "ns/call",
                ours,
                "ch08 run --rm IMAGE".into(),
                theirs.clone(),
            )
            .map(|mut row| {
                row.goal = goal;
                row
            }),
            compared_row(
                "getppid(2) in ch09 --security-opt seccomp=unconfined",
                "ns/call",
                control,
                "ch08 run --rm IMAGE".into(),
                theirs,
            ),
        ]
        .into_iter()
        .flatten(),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_goals_hold_the_best_runs_and_the_median_start() {
        let goal = per_call_goal(&[110.0, 105.0], &[100.0, 120.0]).unwrap();
        assert_eq!(
            (goal.measured.as_str(), goal.met),
            ("+5.0% (best runs)", true)
        );
        let goal = per_call_goal(&[130.0], &[100.0]).unwrap();
        assert!(!goal.met);
        assert_eq!(per_call_goal(&[], &[100.0]), None);
        let start = compared_row("s", "ms", vec![0.2, 0.3, 0.9], "-".into(), vec![]).unwrap();
        let goal = start_goal(&start).unwrap();
        assert_eq!((goal.measured.as_str(), goal.met), ("0.300 ms", true));
    }

    #[test]
    fn getppid_is_in_the_kernels_cache_and_personality_is_not() {
        let filter = compile_default().unwrap();
        let getppid = syscall_number("getppid").unwrap();
        let personality = syscall_number("personality").unwrap();
        assert!(filter.kernel_caches(getppid));
        assert!(!filter.kernel_caches(personality));
        let query = Call::native(personality, [PERSONALITY_QUERY, 0, 0, 0, 0, 0]);
        assert!(filter.instructions_run(&query) > 10);
    }

    #[test]
    fn a_child_under_a_filter_reports_its_timings() {
        // Children need no privilege: no_new_privs lets anyone load a filter.
        let filter = compile_default().unwrap();
        let (getppid, personality) = calls_in_child(Loaded::Profile(&filter), 1000).unwrap();
        assert!(getppid > 0.0 && personality > 0.0);
        let (getppid, _) = calls_in_child(Loaded::AllowAll, 1000).unwrap();
        assert!(getppid > 0.0);
    }
}
