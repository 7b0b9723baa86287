//! ch08-images volumes, for real: `-v HOST_DIR:DIR[:ro]`, named volumes
//! `-v NAME:DIR` and `--tmpfs DIR`, and the `volume` verbs.
//!
//! Each test has a storage of its own (CONTAINER_LAB_STORAGE, a scratch
//! directory: the image store and the named volumes), an image imported
//! there with `import` from a layer tar of the test rootfs, and host
//! directories of its own. Containers are named `t8v-PID-...` and removed
//! when the test ends, passed or failed; the scratch directories with them.

mod common;
use common::*;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const CH: &str = "ch08-images";
/// The container's root as the host numbers it (the default map's start).
const CONTAINER_ROOT: u32 = 1_879_048_192;

struct Lab {
    dir: Scratch,
    names: std::sync::Mutex<Vec<String>>,
}

impl Lab {
    /// A storage with `lab/base:v1` (the test rootfs) and, when given,
    /// the extra tar entries of `extra` on top of it in the same layer.
    fn new(test: &str, extra: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Option<Lab> {
        if !require_root(test) {
            return None;
        }
        let lab = Lab {
            dir: Scratch::new(&format!("volumes-{test}")),
            names: Default::default(),
        };
        let mut builder = tar::Builder::new(Vec::new());
        builder.follow_symlinks(false);
        builder.mode(tar::HeaderMode::Complete);
        builder.append_dir_all(".", rootfs()).unwrap();
        extra(&mut builder);
        let tar = lab.dir.join("base.tar");
        std::fs::write(&tar, builder.into_inner().unwrap()).unwrap();
        let output = lab.ch08(&["import", tar.to_str().unwrap(), "lab/base:v1"]);
        assert_eq!(code(&output), 0, "import: {}", stderr(&output));
        Some(lab)
    }

    fn name(&self, what: &str) -> String {
        let name = format!("t8v-{}-{what}", std::process::id());
        self.names.lock().unwrap().push(name.clone());
        name
    }

    fn ch08(&self, args: &[&str]) -> Output {
        Command::new(bin(CH))
            .env("CONTAINER_LAB_STORAGE", &*self.dir)
            .stdin(Stdio::null())
            .args(args)
            .output()
            .unwrap()
    }

    /// `run --net none ARGS...`, attached.
    fn run(&self, args: &[&str]) -> Output {
        let mut words = vec!["run", "--net", "none"];
        words.extend_from_slice(args);
        self.ch08(&words)
    }

    /// `run --net none FLAGS... lab/base:v1 /bin/sh -c SCRIPT`.
    fn shell(&self, flags: &[&str], script: &str) -> Output {
        let mut words = flags.to_vec();
        words.extend(["lab/base:v1", "/bin/sh", "-c", script]);
        self.run(&words)
    }

    /// A host directory of the test's own, removed with the storage.
    fn host_dir(&self, what: &str) -> PathBuf {
        let dir = self.dir.join(what);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn volume_data(&self, name: &str) -> PathBuf {
        self.dir.join("volumes").join(name).join("_data")
    }

    /// Whether `ps -a` lists a container of this name.
    fn listed(&self, name: &str) -> bool {
        stdout(&self.ch08(&["ps", "-a"]))
            .lines()
            .any(|line| line.split_whitespace().any(|word| word == name))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for name in self.names.lock().unwrap().iter() {
            let _ = self.ch08(&["rm", "-f", name]);
        }
    }
}

fn ok(output: &Output) -> String {
    assert_eq!(
        code(output),
        0,
        "stdout: {}\nstderr: {}",
        stdout(output),
        stderr(output)
    );
    stdout(output)
}

#[test]
fn a_read_only_bind_cannot_be_written_nor_remounted_writable() {
    let Some(lab) = Lab::new("ro", |_| {}) else {
        return;
    };
    let host = lab.host_dir("ro-host");
    std::fs::write(host.join("file"), "from the host\n").unwrap();
    let spec = format!("{}:/data:ro", host.display());
    let output = lab.shell(
        &["--rm", "-v", &spec],
        "echo changed > /data/file; echo \"write $?\"; \
         mount -o remount,rw /data; echo \"remount $?\"; \
         mount -o remount,bind,rw /data; echo \"bind remount $?\"; \
         echo changed > /data/file; echo \"write again $?\"; \
         grep ' /data ' /proc/mounts; cat /data/file",
    );
    let out = ok(&output);
    let err = stderr(&output);
    assert!(err.contains("Read-only file system"), "{err}");
    // Each step ran, and failed: the shell's redirection (2), mount(8)'s
    // EPERM from a remount the kernel refuses on a locked flag (32).
    for step in ["write", "remount", "bind remount", "write again"] {
        let line = out
            .lines()
            .find(|l| l.rsplit_once(' ').is_some_and(|(s, _)| s == step))
            .expect(&out);
        assert!(!line.ends_with(" 0"), "{step} succeeded: {out}");
    }
    let line = out.lines().find(|l| l.contains(" /data ")).expect(&out);
    assert!(
        line.split_whitespace().nth(3).unwrap().starts_with("ro"),
        "{line}"
    );
    assert!(out.ends_with("from the host\n"), "{out}");
    assert_eq!(
        std::fs::read_to_string(host.join("file")).unwrap(),
        "from the host\n"
    );
}

#[test]
fn a_writable_bind_keeps_the_hosts_owners() {
    let Some(lab) = Lab::new("rw", |_| {}) else {
        return;
    };
    let host = lab.host_dir("rw-host");
    // The container's root may write here: the host gives the directory
    // to the id it runs as. A file of host uid 1000, which its map does
    // not name, shows as nobody.
    std::os::unix::fs::chown(&host, Some(CONTAINER_ROOT), Some(CONTAINER_ROOT)).unwrap();
    std::fs::write(host.join("users"), "1000's\n").unwrap();
    std::os::unix::fs::chown(host.join("users"), Some(1000), Some(1000)).unwrap();
    let spec = format!("{}:/srv/data", host.display());
    let output = lab.shell(
        &["--rm", "-v", &spec],
        "echo hello > /srv/data/new && stat -c '%u:%g %n' /srv/data /srv/data/users /srv/data/new",
    );
    assert_eq!(
        ok(&output),
        "0:0 /srv/data\n65534:65534 /srv/data/users\n0:0 /srv/data/new\n"
    );
    let new = std::fs::metadata(host.join("new")).unwrap();
    assert_eq!((new.uid(), new.gid()), (CONTAINER_ROOT, CONTAINER_ROOT));
    assert_eq!(
        std::fs::read_to_string(host.join("new")).unwrap(),
        "hello\n"
    );
    assert_eq!(std::fs::metadata(host.join("users")).unwrap().uid(), 1000);
}

#[test]
fn a_named_volume_is_seeded_kept_and_refused_to_rm_while_used() {
    let Some(lab) = Lab::new("named", |_| {}) else {
        return;
    };
    let volume = format!("t8v-{}-data", std::process::id());
    // Seeded from the image: a fresh volume over /etc holds the image's
    // /etc, its files the container root's inside and uid 0 on disk
    // (the container's own ids, seen through its id maps).
    let spec = format!("{volume}:/etc");
    let output = lab.shell(
        &["--rm", "-v", &spec],
        "stat -c '%u %a' /etc/passwd; echo added > /etc/added; stat -c %u /etc/added",
    );
    let passwd = std::fs::read(rootfs().join("etc/passwd")).unwrap();
    let mode = std::fs::metadata(rootfs().join("etc/passwd"))
        .unwrap()
        .mode()
        & 0o7777;
    assert_eq!(ok(&output), format!("0 {mode:o}\n0\n"));
    let data = lab.volume_data(&volume);
    assert_eq!(std::fs::read(data.join("passwd")).unwrap(), passwd);
    // Copied beside _data, then moved in: no staging left; _data has the
    // image's /etc's mode and owner.
    let etc = std::fs::metadata(rootfs().join("etc")).unwrap().mode() & 0o7777;
    let meta = std::fs::metadata(&data).unwrap();
    assert_eq!((meta.mode() & 0o7777, meta.uid()), (etc, 0));
    let beside = std::fs::read_dir(data.parent().unwrap()).unwrap();
    assert_eq!(beside.count(), 2, "only _data and volume.json");
    assert_eq!(std::fs::metadata(data.join("passwd")).unwrap().uid(), 0);
    assert_eq!(std::fs::metadata(data.join("added")).unwrap().uid(), 0);

    // Kept across containers; the image does not seed a volume twice.
    let writer = lab.name("writer");
    let spec = format!("{volume}:/data");
    let output = lab.shell(
        &["--name", &writer, "-v", &spec],
        "echo kept > /data/note; ls /data | grep -c passwd",
    );
    assert_eq!(ok(&output), "1\n");
    // In use by a stopped container: refused, the container named.
    let output = lab.ch08(&["volume", "rm", &volume]);
    assert_eq!(code(&output), 1, "{}", stderr(&output));
    let err = stderr(&output);
    assert!(
        err.contains(&format!("cannot remove volume {volume}")),
        "{err}"
    );
    assert!(err.contains(&writer), "{err}");
    assert!(data.join("note").is_file());
    let listed = ok(&lab.ch08(&["volume", "ls"]));
    assert!(listed.starts_with("DRIVER   VOLUME NAME\n"), "{listed}");
    assert!(listed.contains(&format!("local    {volume}\n")), "{listed}");
    let inspected: serde_json::Value =
        serde_json::from_str(&ok(&lab.ch08(&["volume", "inspect", &volume]))).unwrap();
    assert_eq!(inspected[0]["Name"], volume.as_str());
    assert_eq!(inspected[0]["Driver"], "local");
    assert_eq!(inspected[0]["Mountpoint"], data.to_str().unwrap());
    assert!(
        inspected[0]["UsedBy"][0]
            .as_str()
            .unwrap()
            .starts_with(&writer)
    );
    let record: serde_json::Value =
        serde_json::from_str(&ok(&lab.ch08(&["inspect", &writer]))).unwrap();
    assert_eq!(record[0]["Mounts"][0]["name"], volume.as_str());

    ok(&lab.ch08(&["rm", &writer]));
    let output = lab.run(&["--rm", "-v", &spec, "lab/base:v1", "cat", "/data/note"]);
    assert_eq!(ok(&output), "kept\n");
    assert_eq!(
        ok(&lab.ch08(&["volume", "rm", &volume])),
        format!("{volume}\n")
    );
    assert!(!lab.dir.join("volumes").join(&volume).exists());
    assert!(!ok(&lab.ch08(&["volume", "ls", "-q"])).contains(&volume));
    let output = lab.ch08(&["volume", "rm", &volume]);
    assert_eq!(code(&output), 1);
    assert!(
        stderr(&output).contains("no such volume"),
        "{}",
        stderr(&output)
    );
    ok(&lab.ch08(&["volume", "rm", "-f", &volume]));
}

#[test]
fn a_tmpfs_is_memory_and_gone_with_the_container() {
    let Some(lab) = Lab::new("tmpfs", |_| {}) else {
        return;
    };
    let name = lab.name("tmpfs");
    let output = lab.shell(
        &["--name", &name, "--tmpfs", "/scratch:size=1m,mode=700"],
        "echo temporary > /scratch/file && grep ' /scratch ' /proc/mounts && stat -c '%a %u' /scratch",
    );
    let out = ok(&output);
    let mut lines = out.lines();
    let mount: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(&mount[..3], ["tmpfs", "/scratch", "tmpfs"], "{out}");
    for flag in ["rw", "nosuid", "nodev", "size=1024k", "mode=700"] {
        assert!(mount[3].split(',').any(|f| f == flag), "{flag}: {out}");
    }
    assert_eq!(lines.next(), Some("700 0"));
    // The mount point is in the container's writable layer; the file was
    // in memory only.
    let record: serde_json::Value =
        serde_json::from_str(&ok(&lab.ch08(&["inspect", &name]))).unwrap();
    let upper = Path::new(record[0]["Layer"].as_str().unwrap()).join("upper");
    assert!(upper.join("scratch").is_dir(), "{}", upper.display());
    assert!(!upper.join("scratch/file").exists());
    let output = lab.shell(&["--rm"], "ls /scratch 2>&1");
    assert!(
        stdout(&output).contains("No such file"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn a_symlink_in_the_image_cannot_lead_a_volume_out() {
    let Some(lab) = Lab::new("symlink", |builder| {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        header.set_mode(0o777);
        builder.append_link(&mut header, "data", "/etc").unwrap();
        builder
            .append_link(&mut header, "up", "../../../../../../etc")
            .unwrap();
    }) else {
        return;
    };
    let volume = format!("t8v-{}-escape", std::process::id());
    let host_passwd = std::fs::read("/etc/passwd").unwrap();
    let spec = format!("{volume}:/data");
    let marker = format!("t8v-{}-marker", std::process::id());
    let script =
        format!("echo inside > /data/{marker} && ls /etc/{marker} && grep -c root /data/passwd");
    let output = lab.shell(&["--rm", "-v", &spec], &script);
    assert_eq!(ok(&output), format!("/etc/{marker}\n1\n"));
    // It landed on the container's /etc (seeded from the image's), never
    // the host's.
    assert!(!Path::new("/etc").join(&marker).exists());
    assert_eq!(std::fs::read("/etc/passwd").unwrap(), host_passwd);
    let data = lab.volume_data(&volume);
    assert_eq!(
        std::fs::read_to_string(data.join(&marker)).unwrap(),
        "inside\n"
    );
    assert_eq!(
        std::fs::read(data.join("passwd")).unwrap(),
        std::fs::read(rootfs().join("etc/passwd")).unwrap()
    );
    // A host bind through a relative symlink that climbs: the same.
    let host = lab.host_dir("climb");
    let spec = format!("{}:/up/sub", host.display());
    let output = lab.run(&["--rm", "-v", &spec, "lab/base:v1", "ls", "-d", "/etc/sub"]);
    assert_eq!(ok(&output), "/etc/sub\n");
    assert!(!Path::new("/etc/sub").exists());
    ok(&lab.ch08(&["volume", "rm", &volume]));
}

#[test]
fn bad_volume_input_is_one_line_and_creates_nothing() {
    let Some(lab) = Lab::new("bad", |_| {}) else {
        return;
    };
    let host = lab.host_dir("bad-host");
    let host = host.to_str().unwrap();
    let cases = [
        ("./relative:/x".to_string(), "not a volume name"),
        ("relative/dir:/x".to_string(), "absolute path"),
        ("/x".to_string(), "no container path"),
        (format!("{host}:relative"), "is not absolute"),
        (format!("{host}:/x:rx"), "unknown mode 'rx'"),
        (format!("{host}:/proc/x"), "under /proc"),
        (format!("{host}/missing:/x"), "cannot bind"),
    ];
    for (n, (spec, why)) in cases.iter().enumerate() {
        let name = lab.name(&format!("bad{n}"));
        let output = lab.run(&["--name", &name, "-v", spec, "lab/base:v1", "true"]);
        assert_clean_failure(&output, 125, why);
        assert!(!lab.listed(&name), "{spec} made a container");
    }
    let output = lab.run(&["--tmpfs", "/x:suid", "lab/base:v1", "true"]);
    assert_clean_failure(&output, 125, "unknown tmpfs option 'suid'");
    let volumes = lab.dir.join("volumes");
    let made: Vec<_> = std::fs::read_dir(&volumes)
        .map(|entries| entries.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        made.iter()
            .all(|name| name.to_string_lossy().starts_with('.')),
        "{made:?}"
    );
    assert!(!Path::new(host).join("missing").exists());
    let output = lab.ch08(&["volume", "rm", "t8v-no-such-volume"]);
    assert_clean_failure(&output, 1, "no such volume: t8v-no-such-volume");
}

#[test]
fn a_volume_session_for_the_book() {
    let Some(lab) = Lab::new("session", |_| {}) else {
        return;
    };
    let site = lab.host_dir("site");
    std::fs::write(site.join("index.html"), "<h1>from the host</h1>\n").unwrap();
    let volume = format!("t8v-{}-data", std::process::id());
    let db = lab.name("db");
    let mut session = String::new();
    // `ch08-images ARGS`, shown as SHOWN, exiting with `expected`.
    let mut step = |shown: &str, args: &[&str], expected: i32| {
        let output = lab.ch08(args);
        assert_eq!(code(&output), expected, "{shown}: {}", stderr(&output));
        session += &transcript(shown, &output, None);
    };
    let bind = format!("{}:/www:ro", site.display());
    // mount(8)'s own words differ between util-linux versions: the
    // script says what happened instead. coreutils' touch says the same
    // everywhere.
    let refused = "touch /www/new; mount -o remount,rw /www 2>/dev/null || echo remount refused; cat /www/index.html";
    step(
        &format!(
            "ch08-images run --rm --net none -v /srv/site:/www:ro lab/base:v1 /bin/sh -c '{refused}'"
        ),
        &[
            "run",
            "--rm",
            "--net",
            "none",
            "-v",
            &bind,
            "lab/base:v1",
            "/bin/sh",
            "-c",
            refused,
        ],
        0,
    );
    let seeded = "cat /etc/container-lab-rootfs; echo 1 > /etc/counter";
    let spec = format!("{volume}:/etc");
    step(
        &format!(
            "ch08-images run --net none --name db -v data:/etc lab/base:v1 /bin/sh -c '{seeded}'"
        ),
        &[
            "run",
            "--net",
            "none",
            "--name",
            &db,
            "-v",
            &spec,
            "lab/base:v1",
            "/bin/sh",
            "-c",
            seeded,
        ],
        0,
    );
    step("ch08-images volume ls", &["volume", "ls"], 0);
    step("ch08-images volume rm data", &["volume", "rm", &volume], 1);
    step("ch08-images rm db", &["rm", &db], 0);
    step(
        "ch08-images run --rm --net none -v data:/etc lab/base:v1 cat /etc/counter",
        &[
            "run",
            "--rm",
            "--net",
            "none",
            "-v",
            &spec,
            "lab/base:v1",
            "cat",
            "/etc/counter",
        ],
        0,
    );
    step("ch08-images volume rm data", &["volume", "rm", &volume], 0);
    let session = mask(
        &session
            .replace(&site.display().to_string(), "/srv/site")
            .replace(&volume, "data")
            .replace(&db, "db"),
    );
    assert_eq!(
        std::fs::read_to_string(site.join("index.html")).unwrap(),
        "<h1>from the host</h1>\n"
    );
    snapshot!("ch08_volumes", session);
}

#[test]
fn a_volume_verb_refuses_a_name_that_leads_out_of_the_store() {
    let Some(lab) = Lab::new("outside", |_| {}) else {
        return;
    };
    // A host directory shaped like a volume, beside the store and away
    // from it: `volume rm` deleted both before names were checked.
    let victim = lab.host_dir("victim/_data");
    std::fs::write(victim.join("keep"), "host's\n").unwrap();
    let absolute = lab.dir.join("victim");
    let absolute = absolute.to_str().unwrap();
    for name in [absolute, "../victim"] {
        for verb in [
            &["volume", "rm", name][..],
            &["volume", "rm", "-f", name],
            &["volume", "inspect", name],
        ] {
            let output = lab.ch08(verb);
            assert_clean_failure(&output, 125, "is not a volume name");
            assert!(victim.join("keep").is_file(), "{verb:?} removed it");
        }
    }
}

/// An image whose /seed holds DIRS directories of FILES files each.
fn seed_tree(builder: &mut tar::Builder<Vec<u8>>) {
    const DIRS: usize = 12;
    const FILES: usize = 300;
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Directory);
    header.set_size(0);
    header.set_mode(0o755);
    builder
        .append_data(&mut header.clone(), "seed", std::io::empty())
        .unwrap();
    for d in 0..DIRS {
        builder
            .append_data(&mut header.clone(), format!("seed/d{d}"), std::io::empty())
            .unwrap();
        for f in 0..FILES {
            let mut file = tar::Header::new_gnu();
            file.set_size(5);
            file.set_mode(0o644);
            builder
                .append_data(&mut file, format!("seed/d{d}/f{f}"), &b"seed\n"[..])
                .unwrap();
        }
    }
}

#[test]
fn a_seed_is_never_written_where_a_running_container_can_reach() {
    let Some(lab) = Lab::new("race", seed_tree) else {
        return;
    };
    // Volume V, empty, held by a running container that does not name it
    // in its record (a host bind of its _data, so that only the staging
    // stands between it and the seed): whenever a directory appears in
    // it, the container renames it away and leaves a symlink to a host
    // directory in its place. Seeding by cp into _data wrote the rest of
    // that directory's files through the symlink, as the host's root.
    let volume = format!("t8v-{}-race", std::process::id());
    ok(&lab.ch08(&["volume", "create", &volume]));
    let data = lab.volume_data(&volume);
    std::os::unix::fs::chown(&data, Some(CONTAINER_ROOT), Some(CONTAINER_ROOT)).unwrap();
    let escape = lab.host_dir("escape");
    let ready = lab.host_dir("ready");
    std::os::unix::fs::chown(&ready, Some(CONTAINER_ROOT), Some(CONTAINER_ROOT)).unwrap();
    let racer = lab.name("racer");
    let script = format!(
        "touch /ready/go; i=0; while :; do for d in /data/*; do \
         if [ -d \"$d\" ] && [ ! -L \"$d\" ]; then \
         mv \"$d\" /data/.gone-$i && ln -s {} \"$d\"; i=$((i+1)); fi; done; done",
        escape.display()
    );
    let bind = format!("{}:/data", data.display());
    let ready_bind = format!("{}:/ready", ready.display());
    ok(&lab.shell(
        &["-d", "--name", &racer, "-v", &bind, "-v", &ready_bind],
        &script,
    ));
    let started = std::time::Instant::now();
    while !ready.join("go").exists() {
        assert!(started.elapsed().as_secs() < 20, "the racer did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let spec = format!("{volume}:/seed");
    let seeding = lab.run(&["--rm", "-v", &spec, "lab/base:v1", "true"]);
    ok(&lab.ch08(&["rm", "-f", &racer]));
    let written: Vec<_> = std::fs::read_dir(&escape)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        written.is_empty(),
        "the seed wrote {} files through the container's symlinks; {}",
        written.len(),
        stderr(&seeding)
    );
    ok(&seeding);
    // The seed went in (each directory whole, before the racer moved it),
    // and no staging directory is left beside _data.
    let seeded: usize = std::fs::read_dir(&data)
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().unwrap().is_dir())
        .map(|e| std::fs::read_dir(e.path()).unwrap().count())
        .sum();
    assert_eq!(seeded, 12 * 300);
    let beside: Vec<_> = std::fs::read_dir(lab.dir.join("volumes").join(&volume))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        beside.iter().all(|name| !name.starts_with(".seed")),
        "{beside:?}"
    );
}

#[test]
fn an_empty_volume_a_container_names_is_not_seeded_again() {
    let Some(lab) = Lab::new("named-empty", seed_tree) else {
        return;
    };
    let volume = format!("t8v-{}-emptied", std::process::id());
    let spec = format!("{volume}:/seed");
    let holder = lab.name("holder");
    let output = lab.shell(
        &["--name", &holder, "-v", &spec],
        "ls /seed | wc -l; rm -rf /seed/*",
    );
    assert_eq!(ok(&output).trim(), "12");
    // Empty, and named by `holder`'s record (stopped; it could be running):
    // another container gets it as it is.
    let output = lab.shell(&["--rm", "-v", &spec], "ls /seed | wc -l");
    assert_eq!(ok(&output).trim(), "0");
    ok(&lab.ch08(&["rm", &holder]));
    let output = lab.shell(&["--rm", "-v", &spec], "ls /seed | wc -l");
    assert_eq!(ok(&output).trim(), "12");
}
