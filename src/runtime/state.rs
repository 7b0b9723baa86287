//! The state directory: one folder per container, so that a container can
//! outlive the command that started it and any later command can find it.
//!
//! `/run/container-lab/containers/ID/` (rootless: under `$XDG_RUNTIME_DIR`)
//! holds `state.json`, the container's log and a lock file. The directory
//! is on tmpfs, as runc's `/run/runc` and podman's runroot are: a reboot
//! ends every container, and their state goes with them.
//!
//! Three rules keep it sound when several commands run at once:
//! - `state.json` is never written in place: a new file is written beside
//!   it and renamed over it (rename(2) is atomic), so a reader sees the old
//!   record or the new one, never half of one;
//! - a change is read, modified and written under an flock(2) on that
//!   container's lock file, so two commands on one container take turns,
//!   and commands on different containers never wait on each other;
//! - a process id is never trusted alone: the record keeps the process's
//!   start time (field 22 of /proc/PID/stat), and a pid whose start time
//!   differs is another process that got the same number.

use crate::error::LabError;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A process as the record knows it: its pid and when it started.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProcessRef {
    pub pid: i32,
    /// Clock ticks after boot (proc(5), /proc/PID/stat field 22).
    pub start_time: u64,
}

// ANCHOR: process_ref
impl ProcessRef {
    /// The process `pid` as it is now, if it exists.
    pub fn of(pid: i32) -> Option<ProcessRef> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        Some(ProcessRef {
            pid,
            start_time: start_time_from_stat(&stat)?,
        })
    }

    /// Whether this very process still runs (not a zombie, not another
    /// process that was given the same pid since).
    pub fn is_alive(&self) -> bool {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)) else {
            return false;
        };
        start_time_from_stat(&stat) == Some(self.start_time) && state_from_stat(&stat) != Some('Z')
    }

    /// A pidfd for this process (pidfd_open(2)), checked to be this very
    /// process after it was opened: from then on the pidfd names it even if
    /// it exits and its pid is reused, so a signal sent through it can
    /// never reach another process.
    pub fn open(&self) -> Option<std::os::fd::OwnedFd> {
        let pidfd = crate::runtime::fork::pidfd_open(self.pid).ok()?;
        self.is_alive().then_some(pidfd)
    }

    /// Send `signal` to this very process through a pidfd
    /// (pidfd_send_signal(2)); Ok(false) if it is gone.
    pub fn send(&self, signal: nix::sys::signal::Signal) -> Result<bool, LabError> {
        let Some(pidfd) = self.open() else {
            return Ok(false);
        };
        use std::os::fd::AsRawFd;
        // SAFETY: a pidfd we own, a signal number, no siginfo, no flags.
        let sent = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                pidfd.as_raw_fd(),
                signal as i32,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        match sent {
            0 => Ok(true),
            _ => match nix::errno::Errno::last() {
                nix::errno::Errno::ESRCH => Ok(false),
                errno => Err(LabError::StepFailed {
                    syscall: "pidfd_send_signal",
                    target: format!("pid {} ({signal})", self.pid),
                    errno,
                }),
            },
        }
    }
}
// ANCHOR_END: process_ref

/// Field 22 of a /proc/PID/stat line; the command name (field 2) may hold
/// spaces and parentheses, so fields are counted after its last ')'.
pub fn start_time_from_stat(stat: &str) -> Option<u64> {
    let (_, after_name) = stat.rsplit_once(')')?;
    after_name.split_whitespace().nth(19)?.parse().ok()
}

fn state_from_stat(stat: &str) -> Option<char> {
    let (_, after_name) = stat.rsplit_once(')')?;
    after_name.split_whitespace().next()?.chars().next()
}

/// What the monitor last wrote about the container.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The state exists; the container is being built.
    Created,
    Running,
    /// Between two runs of `--restart`.
    Restarting,
    Exited,
}

/// When to start the command again after it exits (`--restart`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum RestartPolicy {
    #[default]
    No,
    /// After a non-zero exit, at most this many times (None: no limit).
    OnFailure(Option<u32>),
}

impl std::str::FromStr for RestartPolicy {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text.split_once(':') {
            None if text == "no" => Ok(RestartPolicy::No),
            None if text == "on-failure" => Ok(RestartPolicy::OnFailure(None)),
            Some(("on-failure", count)) => match count.parse::<u32>() {
                Ok(count) => Ok(RestartPolicy::OnFailure(Some(count))),
                Err(_) => Err(format!("{count:?} is not a count of restarts")),
            },
            _ => Err(format!(
                "{text:?}: the policies are no and on-failure[:N] (always and unless-stopped need a daemon that starts with the machine)"
            )),
        }
    }
}

/// The network a container got, for `ps`, `inspect` and cleanup.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkRecord {
    pub mode: String,
    pub address: Option<String>,
    pub ports: Vec<String>,
}

/// One container's `state.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// 64 hex digits, as Docker's.
    pub id: String,
    pub name: String,
    /// Nanoseconds since the epoch.
    pub created: u64,
    pub rootfs: PathBuf,
    pub command: Vec<String>,
    pub hostname: String,
    pub status: Status,
    /// The container's PID 1, as the host numbers it.
    pub pid: Option<ProcessRef>,
    /// The monitor: the container's parent, which records how it ended.
    pub monitor: Option<ProcessRef>,
    pub started_at: Option<u64>,
    pub finished_at: Option<u64>,
    pub exit_code: Option<i32>,
    pub oom_killed: bool,
    /// The container's cgroup directories (one per v1 hierarchy, or one).
    pub cgroups: Vec<PathBuf>,
    pub network: NetworkRecord,
    pub restart: RestartPolicy,
    pub restart_count: u32,
    /// `--rm`: the monitor removes the state when the container ends.
    pub auto_remove: bool,
    /// `stop` or `kill` asked for the end: no restart after it.
    pub stop_requested: bool,
    /// From ch08: the image it was made from (its id), if any.
    #[serde(default)]
    pub image: Option<String>,
    /// From ch08: its writable layer (upper and work directories), removed
    /// with the container.
    #[serde(default)]
    pub layer: Option<PathBuf>,
    /// From ch08: its id maps, so that what it wrote (host ids) can be
    /// told as the container's ids again (commit).
    #[serde(default)]
    pub uid_maps: Vec<crate::runtime::userns::IdMap>,
    #[serde(default)]
    pub gid_maps: Vec<crate::runtime::userns::IdMap>,
    /// From ch08: its -v and --tmpfs mounts; `volume rm` refuses a volume
    /// any record names, running or not.
    #[serde(default)]
    pub mounts: Vec<crate::runtime::mountspec::MountSpec>,
    /// From ch09: its capabilities, no_new_privs, seccomp profile and
    /// masks, which `exec` applies to whatever joins it.
    #[serde(default)]
    pub security: Option<crate::runtime::hardening::Security>,
}

impl Record {
    /// A new container's first record, before anything of it exists.
    pub fn new(name: Option<&str>, rootfs: &Path, command: &[std::ffi::OsString]) -> Record {
        let id = new_id();
        Record {
            name: name.map_or_else(|| generated_name(&id), str::to_string),
            id,
            created: now(),
            rootfs: rootfs.to_path_buf(),
            command: command
                .iter()
                .map(|w| w.to_string_lossy().into_owned())
                .collect(),
            hostname: String::new(),
            status: Status::Created,
            pid: None,
            monitor: None,
            started_at: None,
            finished_at: None,
            exit_code: None,
            oom_killed: false,
            cgroups: Vec::new(),
            network: NetworkRecord::default(),
            restart: RestartPolicy::No,
            restart_count: 0,
            auto_remove: false,
            stop_requested: false,
            image: None,
            layer: None,
            uid_maps: Vec::new(),
            gid_maps: Vec::new(),
            security: None,
            mounts: Vec::new(),
        }
    }
}

/// Where the state of every container lives.
pub struct Store {
    pub root: PathBuf,
}

/// A container's lock, held until dropped (flock(2) is released when the
/// file is closed).
pub struct Lock {
    _file: nix::fcntl::Flock<std::fs::File>,
}

impl Store {
    /// The store for this user: the host's under /run as root, else the
    /// user's own runtime directory.
    pub fn open() -> Result<Store, LabError> {
        let root = match nix::unistd::geteuid().is_root() {
            true => Path::new(crate::runtime::RUN_DIR).join("containers"),
            false => match std::env::var_os("XDG_RUNTIME_DIR") {
                Some(dir) => PathBuf::from(dir).join("container-lab/containers"),
                None => {
                    return Err(LabError::Refused {
                        message: "XDG_RUNTIME_DIR is not set: there is nowhere to keep containers' state".into(),
                        hint: "log in through a session manager (it sets it), or export XDG_RUNTIME_DIR=/run/user/$(id -u)".into(),
                    });
                }
            },
        };
        Store::at(root)
    }

    /// A store at `root` (tests use a temporary directory).
    pub fn at(root: PathBuf) -> Result<Store, LabError> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&root)
            .map_err(|e| LabError::io("mkdir", root.display(), e))?;
        Ok(Store { root })
    }

    pub fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    pub fn log_path(&self, id: &str) -> PathBuf {
        self.dir(id).join("container.log")
    }

    /// Make a new container's directory and first record, under the
    /// store's lock so that two runs cannot take one name.
    /// A generated name that is taken gets a number, as Docker's does.
    pub fn create(&self, record: &mut Record) -> Result<(), LabError> {
        let _store = self.lock_file(&self.root.join(".lock"))?;
        let others = self.list();
        let taken = |name: &str| others.iter().find(|r| r.name == name);
        if record.name == generated_name(&record.id) {
            let base = record.name.clone();
            let mut number = 2;
            while taken(&record.name).is_some() {
                record.name = format!("{base}{number}");
                number += 1;
            }
        }
        if let Some(other) = taken(&record.name) {
            return Err(LabError::Refused {
                message: format!(
                    "the name {:?} is already in use by container {}",
                    record.name, other.id
                ),
                hint: format!(
                    "remove that container (rm -f {}) or choose another --name",
                    record.name
                ),
            });
        }
        let dir = self.dir(&record.id);
        std::fs::create_dir(&dir).map_err(|e| LabError::io("mkdir", dir.display(), e))?;
        self.write(record)
    }

    // ANCHOR: write
    /// Write `record` atomically: a new file, then rename(2) over the old.
    pub fn write(&self, record: &Record) -> Result<(), LabError> {
        let dir = self.dir(&record.id);
        let path = dir.join("state.json");
        let staging = dir.join(format!(".state.json.{}", std::process::id()));
        let text = serde_json::to_vec_pretty(record).expect("a record serialises");
        let written = std::fs::File::create(&staging).and_then(|mut file| {
            file.write_all(&text)?;
            file.sync_data()
        });
        written.map_err(|e| LabError::io("write", staging.display(), e))?;
        std::fs::rename(&staging, &path).map_err(|e| LabError::io("rename", path.display(), e))
    }

    /// Read one container's record.
    pub fn read(&self, id: &str) -> Option<Record> {
        let text = std::fs::read(self.dir(id).join("state.json")).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// Lock the container, read its record, let `change` modify it, write
    /// it back, and return it. `None` when the container is gone.
    pub fn update(
        &self,
        id: &str,
        change: impl FnOnce(&mut Record),
    ) -> Result<Option<Record>, LabError> {
        if !self.dir(id).exists() {
            return Ok(None);
        }
        let _lock = self.lock(id)?;
        let Some(mut record) = self.read(id) else {
            return Ok(None);
        };
        change(&mut record);
        self.write(&record)?;
        Ok(Some(record))
    }
    // ANCHOR_END: write

    /// The container's lock: commands on one container take turns.
    pub fn lock(&self, id: &str) -> Result<Lock, LabError> {
        self.lock_file(&self.dir(id).join("lock"))
    }

    fn lock_file(&self, path: &Path) -> Result<Lock, LabError> {
        lock_file(path)
    }

    /// Every container, oldest first.
    pub fn list(&self) -> Vec<Record> {
        let mut records: Vec<Record> = std::fs::read_dir(&self.root)
            .map(|dir| {
                dir.flatten()
                    .filter_map(|entry| self.read(&entry.file_name().to_string_lossy()))
                    .collect()
            })
            .unwrap_or_default();
        records.sort_by_key(|record| record.created);
        records
    }

    /// The container a user means by `query`: its full id, its name, or a
    /// prefix of its id that no other container shares (Docker's rule).
    pub fn find(&self, query: &str) -> Result<Record, LabError> {
        let records = self.list();
        if let Some(record) = records.iter().find(|r| r.id == query || r.name == query) {
            return Ok(record.clone());
        }
        let matching: Vec<&Record> = records
            .iter()
            .filter(|r| !query.is_empty() && r.id.starts_with(query))
            .collect();
        match matching.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(LabError::Container {
                message: format!("no such container: {query}"),
                hint: "see the containers there are with `ps -a`".into(),
            }),
            many => Err(LabError::Container {
                message: format!("{query} is the start of {} containers' ids", many.len()),
                hint: "give more of the id, or the name".into(),
            }),
        }
    }

    /// Remove a container's directory and everything in it.
    pub fn remove(&self, id: &str) -> Result<(), LabError> {
        // From ch08, a container made from an image takes its writable
        // layer with it.
        if let Some(layer) = self.read(id).and_then(|record| record.layer) {
            remove_tree(&layer)?;
        }
        let dir = self.dir(id);
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(LabError::io("rmdir", dir.display(), e))
            }
            _ => Ok(()),
        }
    }
}

/// A new container id: 32 random bytes from getrandom(2), in hex.
pub fn new_id() -> String {
    let mut bytes = [0u8; 32];
    let mut filled = 0;
    while filled < bytes.len() {
        // SAFETY: writes at most the remaining length into our buffer.
        let n = unsafe {
            libc::getrandom(bytes[filled..].as_mut_ptr().cast(), bytes.len() - filled, 0)
        };
        if n > 0 {
            filled += n as usize;
        }
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Docker's rule for names: a letter or digit, then letters, digits and
/// `_ . -`.
pub fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)) {
        Ok(())
    } else {
        Err(format!(
            "invalid container name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-]* is allowed"
        ))
    }
}

/// A name for a container started without --name: two words, as Docker's
/// (ours are from the history this lab retells).
pub fn generated_name(id: &str) -> String {
    const ADJECTIVES: [&str; 16] = [
        "patient", "curious", "frugal", "stubborn", "quiet", "nimble", "brave", "careful", "eager",
        "gentle", "humble", "jolly", "keen", "lucid", "modest", "sober",
    ];
    const PEOPLE: [&str; 16] = [
        "thompson",
        "ritchie",
        "joy",
        "kamp",
        "watson",
        "biederman",
        "menage",
        "emelyanov",
        "hohndel",
        "hykes",
        "pike",
        "torvalds",
        "heo",
        "bottomley",
        "lezcano",
        "hallyn",
    ];
    let nibble = |i: usize| usize::from_str_radix(&id[i..i + 1], 16).unwrap_or(0);
    format!("{}_{}", ADJECTIVES[nibble(0)], PEOPLE[nibble(1)])
}

/// Nanoseconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// `2026-12-02T03:04:05.123456789Z` (RFC 3339, UTC), as Docker prints
/// times in `inspect` and in its logs.
pub fn rfc3339(nanos: u64) -> String {
    let seconds = nanos / 1_000_000_000;
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        nanos % 1_000_000_000
    )
}

/// Days since 1970-01-01 to a date of the proleptic Gregorian calendar
/// (Howard Hinnant's algorithm, "chrono-Compatible Low-Level Date
/// Algorithms").
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// A duration as `docker ps` says it: "3 seconds", "About a minute",
/// "5 minutes", "About an hour", "2 hours", "3 days", "2 weeks".
pub fn human_duration(seconds: u64) -> String {
    let plural = |n: u64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    match seconds {
        0 => "Less than a second".into(),
        1..60 => plural(seconds, "second"),
        60..120 => "About a minute".into(),
        120..3600 => plural(seconds / 60, "minute"),
        3600..7200 => "About an hour".into(),
        7200..172_800 => plural(seconds / 3600, "hour"),
        172_800..1_209_600 => plural(seconds / 86_400, "day"),
        _ => plural(seconds / 604_800, "week"),
    }
}

/// Remove a directory tree that may hold directories without write
/// permission (a layer can have a 0555 directory): make each writable on
/// the way down. Never follows a symlink.
pub fn remove_tree(path: &Path) -> Result<(), LabError> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => return Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(_) => {}
    }
    // By descriptor, each directory opened with O_NOFOLLOW relative to its
    // parent: a container still writing its layer cannot swap a directory
    // for a symlink and have the host's root chmod what it points to.
    // O_PATH, because a directory of mode 000 (overlayfs's work/work) can
    // be opened so by its owner; chmod(2) through /proc/self/fd/N then
    // reaches that very directory.
    fn open_up(dir: std::os::fd::OwnedFd) {
        use std::os::fd::AsRawFd;
        let _ = nix::sys::stat::fchmodat(
            nix::fcntl::AT_FDCWD,
            format!("/proc/self/fd/{}", dir.as_raw_fd()).as_str(),
            nix::sys::stat::Mode::from_bits_truncate(0o700),
            nix::sys::stat::FchmodatFlags::FollowSymlink,
        );
        let Ok(mut entries) = read_directory(&dir) else {
            return;
        };
        let subdirs: Vec<std::ffi::CString> = entries
            .iter()
            .flatten()
            .filter(|entry| entry.file_type() == Some(nix::dir::Type::Directory))
            .map(|entry| entry.file_name().to_owned())
            .filter(|name| name.as_bytes() != b"." && name.as_bytes() != b"..")
            .collect();
        for name in subdirs {
            if let Ok(child) = open_directory(&entries, name.as_c_str()) {
                open_up(child);
            }
        }
    }
    if let Ok(top) = open_directory(nix::fcntl::AT_FDCWD, path) {
        open_up(top);
    }
    std::fs::remove_dir_all(path).map_err(|e| LabError::io("rmdir", path.display(), e))
}

/// The entries of a directory opened with [`open_directory`].
pub fn read_directory(dir: &std::os::fd::OwnedFd) -> nix::Result<nix::dir::Dir> {
    use nix::fcntl::OFlag;
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    nix::fcntl::openat(dir, ".", flags, nix::sys::stat::Mode::empty())
        .and_then(nix::dir::Dir::from_fd)
}

/// A directory relative to `parent`, never through a symlink as its last
/// component; O_PATH: enough to name it, to read it openat(fd, ".").
pub fn open_directory<P: ?Sized + nix::NixPath>(
    parent: impl std::os::fd::AsFd,
    name: &P,
) -> nix::Result<std::os::fd::OwnedFd> {
    use nix::fcntl::OFlag;
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    nix::fcntl::openat(parent, name, flags, nix::sys::stat::Mode::empty())
}

/// Take an exclusive flock(2) on `path` (created if missing), waiting for
/// whoever holds it; released when the `Lock` is dropped.
pub fn lock_file(path: &Path) -> Result<Lock, LabError> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| LabError::io("open", path.display(), e))?;
    let mut file = file;
    loop {
        match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive) {
            Ok(locked) => return Ok(Lock { _file: locked }),
            Err((back, nix::errno::Errno::EINTR)) => file = back,
            Err((_, errno)) => {
                return Err(LabError::StepFailed {
                    syscall: "flock",
                    target: path.display().to_string(),
                    errno,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, name: &str, created: u64) -> Record {
        let mut record = Record::new(Some(name), Path::new("/rootfs"), &["/bin/sh".into()]);
        record.id = id.into();
        record.created = created;
        record
    }

    fn scratch_store() -> (Store, PathBuf) {
        let dir = std::env::temp_dir().join(format!("lab-state-test-{}", new_id()));
        (Store::at(dir.clone()).unwrap(), dir)
    }

    #[test]
    fn containers_are_found_by_id_name_or_unique_prefix() {
        let (store, dir) = scratch_store();
        store
            .create(&mut record(&"ab".repeat(32), "web", 1))
            .unwrap();
        store
            .create(&mut record(&"ac".repeat(32), "db", 2))
            .unwrap();
        assert_eq!(store.find("web").unwrap().name, "web");
        assert_eq!(store.find(&"ac".repeat(32)).unwrap().name, "db");
        assert_eq!(store.find("abab").unwrap().name, "web");
        let ambiguous = store.find("a").unwrap_err().to_string();
        assert!(ambiguous.contains("2 containers"), "{ambiguous}");
        let missing = store.find("nope").unwrap_err();
        assert_eq!(missing.to_string(), "no such container: nope");
        assert_eq!(missing.exit_code(), 1);
        assert_eq!(
            store
                .list()
                .iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>(),
            ["web", "db"]
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_name_is_taken_once() {
        let (store, dir) = scratch_store();
        store
            .create(&mut record(&"ab".repeat(32), "web", 1))
            .unwrap();
        let error = store
            .create(&mut record(&"cd".repeat(32), "web", 2))
            .unwrap_err()
            .to_string();
        assert!(error.contains(&"ab".repeat(32)), "{error}");
        assert!(!store.dir(&"cd".repeat(32)).exists());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn updates_are_atomic_and_leave_no_staging_file() {
        let (store, dir) = scratch_store();
        let id = "ef".repeat(32);
        store.create(&mut record(&id, "x", 1)).unwrap();
        let updated = store
            .update(&id, |r| {
                r.status = Status::Exited;
                r.exit_code = Some(3);
            })
            .unwrap()
            .unwrap();
        assert_eq!(store.read(&id).unwrap(), updated);
        let names: Vec<String> = std::fs::read_dir(store.dir(&id))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(!names.iter().any(|n| n.starts_with(".state")), "{names:?}");
        store.remove(&id).unwrap();
        assert!(store.update(&id, |_| {}).unwrap().is_none());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn names_follow_dockers_rule() {
        assert!(check_name("web-1.a_b").is_ok());
        for bad in ["", "-web", "we b", "web/1", "ü"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        let id = new_id();
        assert_eq!(id.len(), 64);
        assert!(check_name(&generated_name(&id)).is_ok());
    }

    #[test]
    fn restart_policies_parse_as_docker_spells_them() {
        assert_eq!("no".parse(), Ok(RestartPolicy::No));
        assert_eq!("on-failure".parse(), Ok(RestartPolicy::OnFailure(None)));
        assert_eq!(
            "on-failure:3".parse(),
            Ok(RestartPolicy::OnFailure(Some(3)))
        );
        assert!("always".parse::<RestartPolicy>().is_err());
        assert!("on-failure:x".parse::<RestartPolicy>().is_err());
    }

    #[test]
    fn start_time_is_field_22_even_with_odd_names() {
        let stat = "42 (a) b (c) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 200";
        assert_eq!(start_time_from_stat(stat), Some(98765));
        let me = ProcessRef::of(std::process::id() as i32).unwrap();
        assert!(me.is_alive());
        let older = ProcessRef {
            start_time: me.start_time + 1,
            ..me
        };
        assert!(
            !older.is_alive(),
            "a pid with another start time is another process"
        );
    }

    #[test]
    fn times_read_as_docker_prints_them() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            rfc3339(1_796_266_445_123_456_789),
            "2026-12-03T02:54:05.123456789Z"
        );
        assert_eq!(
            rfc3339(951_782_400_000_000_000),
            "2000-02-29T00:00:00.000000000Z"
        );
        assert_eq!(human_duration(3), "3 seconds");
        assert_eq!(human_duration(1), "1 second");
        assert_eq!(human_duration(90), "About a minute");
        assert_eq!(human_duration(600), "10 minutes");
        assert_eq!(human_duration(7300), "2 hours");
    }
}
