//! The `lab` driver: help, and the README's demo.

mod common;
use common::*;
use std::process::Command;

#[test]
fn help_lists_the_subcommands() {
    let output = run("lab", ["--help"]);
    assert_eq!(code(&output), 0);
    snapshot!("lab_help", stdout(&output));
}

/// The README's main command: ch00, ch01 and the breakout, narrated.
#[test]
fn demo_runs_every_chapter_and_the_breakout() {
    if !require_root("demo_runs_every_chapter_and_the_breakout") {
        return;
    }
    let output = Command::new(bin("lab"))
        .arg("demo")
        .env("CONTAINER_LAB_ROOTFS", rootfs())
        .output()
        .unwrap();
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let out = stdout(&output);
    let err = stderr(&output);
    // ch01 sees the rootfs; the marker is unreadable by path, then the
    // breakout prints it.
    assert!(out.contains("\nhost\n"), "{out}");
    assert!(
        err.contains("host-secret.txt: No such file or directory"),
        "{err}"
    );
    assert_eq!(
        out.matches("a file that lives on the host").count(),
        1,
        "{out}"
    );
    assert!(err.contains("lab-breakout: chroot(\".\")"), "{err}");
}

/// The cgroup layout doctor reports, checked against stat(1)'s own view
/// of the filesystem types (statfs(2) f_type), not against a fixed answer.
#[test]
fn doctor_reports_the_cgroup_layout_this_machine_has() {
    let fs_type = |path: &str| {
        let output = Command::new("stat")
            .args(["-f", "-c", "%T", path])
            .output()
            .unwrap();
        stdout(&output).trim().to_string()
    };
    let expected = match (
        fs_type("/sys/fs/cgroup").as_str(),
        fs_type("/sys/fs/cgroup/unified").as_str(),
    ) {
        ("cgroup2fs", _) => "unified",
        ("tmpfs", "cgroup2fs") => "hybrid",
        ("tmpfs", _) => "legacy",
        (other, _) => panic!("/sys/fs/cgroup is {other}: not a cgroup layout the lab knows"),
    };
    let output = run("lab", ["doctor"]);
    let report = stdout(&output);
    let line = report
        .lines()
        .find(|l| l.contains("cgroups"))
        .expect("a cgroups line");
    assert!(
        line.to_lowercase().contains(expected),
        "expected {expected}: {line}"
    );
    assert!(report.contains("checks:"), "{report}");
}

/// The doctor times a real move into a container's cgroups, and leaves no
/// cgroup behind (they carry its pid: container-lab-PID).
#[test]
fn doctor_times_a_cgroup_move_and_removes_its_cgroups() {
    if !require_root("doctor_times_a_cgroup_move_and_removes_its_cgroups") {
        return;
    }
    let child = Command::new(public_bin("lab"))
        .arg("doctor")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let output = child.wait_with_output().unwrap();
    let report = stdout(&output);
    let line = report
        .lines()
        .find(|l| l.contains("cgroup move"))
        .unwrap_or_else(|| panic!("no cgroup move line: {report}"));
    assert!(
        line.contains("a process entered a container's cgroups in ") && line.contains(" ms"),
        "{line}"
    );
    let left: Vec<_> = std::fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .flatten()
        .map(|hierarchy| hierarchy.path().join(format!("container-lab-{pid}")))
        .chain([std::path::PathBuf::from(format!(
            "/sys/fs/cgroup/container-lab-{pid}"
        ))])
        .filter(|dir| dir.exists())
        .collect();
    assert!(left.is_empty(), "the doctor left {left:?}");
}

#[test]
fn doctor_without_root_fails_and_says_how_to_fix_it() {
    if !require_root("doctor_without_root_fails_and_says_how_to_fix_it") {
        return;
    }
    use std::os::unix::process::CommandExt;
    let output = Command::new(public_bin("lab"))
        .arg("doctor")
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    assert_eq!(code(&output), 1, "{}", stdout(&output));
    let report = stdout(&output);
    let root_line = report.lines().find(|l| l.contains("root ")).unwrap();
    assert!(root_line.starts_with("fail"), "{report}");
    assert!(
        report.contains("fix: run the chapters and lab through sudo"),
        "{report}"
    );
}

/// What a SIGKILLed run would leave, made by hand: clean removes it all,
/// and leaves alone a live tour's bait and a user's own directory.
#[test]
fn clean_removes_only_what_dead_runs_left() {
    if !require_root("clean_removes_only_what_dead_runs_left") {
        return;
    }
    use container_lab::lab::loopdev;
    let scratch = Scratch::new("clean");
    let rootfs = scratch.join("rootfs");
    let mount_point = rootfs.join("tmp/.lab-probe-mnt-1");
    let users_dir = rootfs.join("tmp/keep-me");
    std::fs::create_dir_all(&mount_point).unwrap();
    std::fs::create_dir_all(&users_dir).unwrap();
    nix::mount::mount(
        Some("lab-probe-test"),
        &mount_point,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("size=16k"),
    )
    .unwrap();
    // A bait dir of a tour that no longer runs (pid above any pid_max), with
    // its loop device still attached, and one of a live "tour" (this test).
    let dead = std::path::PathBuf::from("/run/container-lab/tour-999999999-ch00");
    let live = std::path::PathBuf::from(format!(
        "/run/container-lab/tour-{}-ch00",
        std::process::id()
    ));
    std::fs::create_dir_all(&dead).unwrap();
    std::fs::create_dir_all(&live).unwrap();
    std::fs::write(dead.join("disk.img"), vec![0u8; 65536]).unwrap();
    // losetup(8) attaches and exits, like a tour SIGKILLed after attaching.
    let attached = Command::new("losetup")
        .args(["--find", "--show"])
        .arg(dead.join("disk.img"))
        .output()
        .expect("losetup from util-linux");
    let number: u64 = stdout(&attached)
        .trim()
        .trim_start_matches("/dev/loop")
        .parse()
        .unwrap();

    // What a tour killed mid-chapter leaves in and beside the rootfs, and
    // its stand-in's copy of /etc/subuid; and the same of a live tour.
    let tour_files = [
        rootfs.join(".container-lab-tour-node-999999999"),
        scratch.join(".container-lab-tour-handle-999999999"),
        std::env::temp_dir().join("container-lab-stand-in-999999999-subuid"),
    ];
    let live_tour_file = rootfs.join(format!(".container-lab-tour-node-{}", std::process::id()));
    for file in tour_files.iter().chain([&live_tour_file]) {
        std::fs::write(file, "bait").unwrap();
    }

    // In a throwaway network namespace: clean also reclaims lab bridges
    // and forwarding, and the real host's (a student's labbr0, what an
    // earlier run left) are neither this test's to remove nor to count.
    let netns = common::netns::Netns::new("clean");
    let clean = || {
        netns
            .command(bin("lab"))
            .arg("clean")
            .arg("--rootfs")
            .arg(&rootfs)
            .output()
            .unwrap()
    };
    let output = clean();
    let out = stdout(&output);
    let tour_files_left: Vec<_> = tour_files.iter().filter(|f| f.exists()).collect();
    for file in &tour_files {
        let _ = std::fs::remove_file(file);
    }
    let live_tour_file_kept = live_tour_file.exists();
    let _ = std::fs::remove_file(&live_tour_file);
    // Undo by hand whatever clean did not, before asserting.
    let still_mounted = container_lab::hostinfo::read_mountinfo()
        .unwrap()
        .iter()
        .any(|m| m.mount_point == mount_point);
    if still_mounted {
        let _ = nix::mount::umount2(&mount_point, nix::mount::MntFlags::MNT_DETACH);
    }
    let still_attached = loopdev::attached().iter().any(|(n, _)| *n == number);
    if still_attached {
        let _ = loopdev::detach(number);
    }
    let live_kept = live.exists();
    let _ = std::fs::remove_dir_all(&live);
    let _ = std::fs::remove_dir_all(&dead);

    assert_eq!(code(&output), 0, "{out}{}", stderr(&output));
    assert!(!still_mounted, "mount left: {out}");
    assert!(!still_attached, "loop device left: {out}");
    assert!(
        out.contains(&format!("removed loop device /dev/loop{number}")),
        "{out}"
    );
    assert!(
        out.contains("removed bait directory /run/container-lab/tour-999999999-ch00"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "removed scratch directory {}",
            mount_point.display()
        )),
        "{out}"
    );
    assert!(!mount_point.exists());
    assert!(live_kept, "the bait of a running tour must stay");
    assert!(
        tour_files_left.is_empty(),
        "tour files left: {tour_files_left:?}\n{out}"
    );
    assert!(live_tour_file_kept, "a running tour's node must stay");
    assert!(
        users_dir.exists(),
        "a directory without the lab's name must stay"
    );
    let again = clean();
    assert_eq!(stdout(&again), "nothing to clean\n");
}
