//! Volumes (ch08): data that does not belong in the container's layer.
//! A writable layer goes with `rm`; what must outlive the container is
//! mounted over a directory of its root instead, as Docker does:
//!
//! - `-v /host/dir:/dir[:ro]`: a bind mount of a host directory (or file),
//!   its owners as the host has them (files of host ids the container's
//!   map does not name show as nobody inside);
//! - `-v NAME:/dir[:ro]`: a named volume, a directory of the lab's storage
//!   made on first use, seeded from the image's own files at /dir when it
//!   is new (Docker's copy-up), kept until `volume rm`;
//! - `--tmpfs /dir[:OPTIONS]`: memory, gone with the container.
//!
//! As root, binds and volumes are attached by the runtime from outside, in
//! the child's first mount namespace (the one it made as the host's root,
//! before its user namespace), exactly where the image's layers go: the
//! container's own mount namespace is a copy of that one, made inside the
//! user namespace, and the kernel locks the flags of every mount it copies
//! into a less privileged namespace (mount_namespaces(7), "restrictions on
//! mount namespaces"; mount(2), MNT_LOCK_READONLY): `:ro` cannot be undone
//! by the container's root with `mount -o remount,rw`.
//!
//! A target is resolved inside the container's root (openat2(2) with
//! RESOLVE_IN_ROOT): a symlink `/data -> /etc` in an image leads to the
//! container's /etc, never the host's; the mount goes onto the descriptor
//! found (move_mount(2) with MOVE_MOUNT_T_EMPTY_PATH), not onto a path
//! that could be resolved again differently.

use crate::error::LabError;
use crate::narrator::{Narrator, Step};
use crate::runtime::mountspec::{MountSpec, check_volume_name, forbidden};
use crate::runtime::userns::{
    MOUNT_ATTR_IDMAP, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY,
};
use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
use nix::mount::MsFlags;
use nix::sys::stat::Mode;
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// The variable that names another storage (the tests give each test its
/// own): named volumes live in its `volumes/`, beside the image store's
/// directories.
pub const STORAGE_ENV: &str = "CONTAINER_LAB_STORAGE";
/// Where the host root's named volumes live (Docker's /var/lib/docker/volumes).
pub const ROOT_VOLUMES: &str = "/var/lib/container-lab/volumes";

/// tmpfs's mount flags and data: nosuid and nodev always, `mode=1777`
/// unless given (Docker's default, a /tmp-like directory).
fn tmpfs_arguments(options: &[String]) -> (MsFlags, String) {
    let mut flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    let mut data = Vec::new();
    for option in options {
        match option.as_str() {
            "ro" => flags |= MsFlags::MS_RDONLY,
            "rw" => flags.remove(MsFlags::MS_RDONLY),
            "noexec" => flags |= MsFlags::MS_NOEXEC,
            "exec" => flags.remove(MsFlags::MS_NOEXEC),
            "nosuid" | "nodev" => {}
            other => data.push(other.to_string()),
        }
    }
    if !data.iter().any(|o| o.starts_with("mode=")) {
        data.push("mode=1777".into());
    }
    (flags, data.join(","))
}

// ANCHOR: store
/// The named volumes: `ROOT/NAME/_data` (Docker's layout), with
/// `ROOT/NAME/volume.json` saying when it was made.
pub struct VolumeStore {
    pub root: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct VolumeInfo {
    created: u64,
}

impl VolumeStore {
    /// The host root's (/var/lib/container-lab/volumes), a user's
    /// ($XDG_DATA_HOME/container-lab/volumes), or `$CONTAINER_LAB_STORAGE/volumes`.
    pub fn open() -> Result<VolumeStore, LabError> {
        if let Some(storage) = std::env::var_os(STORAGE_ENV) {
            return VolumeStore::at(&Path::new(&storage).join("volumes"));
        }
        if nix::unistd::geteuid().is_root() {
            return VolumeStore::at(Path::new(ROOT_VOLUMES));
        }
        let data = std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".local/share")))
            .ok_or_else(|| LabError::Refused {
                message: "no place for named volumes: neither XDG_DATA_HOME nor HOME is set".into(),
                hint: "set HOME".into(),
            })?;
        VolumeStore::at(&data.join("container-lab/volumes"))
    }

    /// The store at `root`, made if missing, 0700: a volume holds files
    /// with the container's ids as they are on disk (see `attach_for`),
    /// a setuid-root one among them perhaps; no host user may reach them.
    pub fn at(root: &Path) -> Result<VolumeStore, LabError> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(root).map_err(|e| LabError::io("mkdir", root.display(), e))?;
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| LabError::io("chmod", root.display(), e))?;
        Ok(VolumeStore {
            root: root.to_path_buf(),
        })
    }

    /// Volume `name`'s directory, `ROOT/NAME`: the one place a name becomes
    /// a path, so the name is checked here. `/tmp/x` or `../../y` would
    /// lead out of the store, and `volume rm` delete a host directory.
    fn dir(&self, name: &str) -> Result<PathBuf, LabError> {
        check_volume_name(name).map_err(|message| LabError::Usage { message })?;
        Ok(self.root.join(name))
    }

    /// What a container sees of volume `name`.
    pub fn data(&self, name: &str) -> Result<PathBuf, LabError> {
        Ok(self.dir(name)?.join("_data"))
    }

    pub fn exists(&self, name: &str) -> Result<bool, LabError> {
        Ok(self.data(name)?.is_dir())
    }

    /// Make volume `name` unless it exists; true when it was made.
    pub fn create(&self, name: &str) -> Result<bool, LabError> {
        let dir = self.dir(name)?;
        let _lock = crate::runtime::state::lock_file(&self.root.join(".lock"))?;
        if self.exists(name)? {
            return Ok(false);
        }
        let data = dir.join("_data");
        std::fs::create_dir_all(&data).map_err(|e| LabError::io("mkdir", data.display(), e))?;
        let info = serde_json::to_vec(&VolumeInfo {
            created: crate::runtime::state::now(),
        })
        .expect("json serialises");
        let file = dir.join("volume.json");
        std::fs::write(&file, info).map_err(|e| LabError::io("write", file.display(), e))?;
        Ok(true)
    }

    /// Every volume's name, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|entry| entry.path().join("_data").is_dir())
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|name| check_volume_name(name).is_ok())
            .collect();
        names.sort();
        names
    }

    fn created(&self, name: &str) -> u64 {
        self.dir(name)
            .ok()
            .and_then(|dir| std::fs::read(dir.join("volume.json")).ok())
            .and_then(|bytes| serde_json::from_slice::<VolumeInfo>(&bytes).ok())
            .map_or(0, |info| info.created)
    }

    /// True when the volume holds nothing: a new one, which the image seeds.
    pub fn is_empty(&self, name: &str) -> Result<bool, LabError> {
        Ok(is_empty_dir(&self.data(name)?))
    }

    fn remove(&self, name: &str) -> Result<(), LabError> {
        crate::runtime::state::remove_tree(&self.dir(name)?)
    }
}
// ANCHOR_END: store

/// The containers (name, short id) whose records name volume `name`,
/// running or not: their next start would need it.
fn users_of(containers: &crate::runtime::state::Store, name: &str) -> Vec<String> {
    containers
        .list()
        .into_iter()
        .filter(|record| record.mounts.iter().any(|m| m.volume() == Some(name)))
        .map(|record| format!("{} ({})", record.name, &record.id[..12]))
        .collect()
}

/// `volume create [NAME]`: a new volume (a generated name if none).
pub fn create(store: &VolumeStore, name: Option<&str>) -> Result<i32, LabError> {
    let name = name
        .map(str::to_string)
        .unwrap_or_else(crate::runtime::state::new_id);
    store.create(&name)?;
    println!("{name}");
    Ok(0)
}

/// `volume ls [-q]`.
pub fn ls(store: &VolumeStore, quiet: bool) -> Result<i32, LabError> {
    let names = store.names();
    if quiet {
        names.iter().for_each(|name| println!("{name}"));
        return Ok(0);
    }
    let mut rows = vec![["DRIVER".to_string(), "VOLUME NAME".to_string()]];
    rows.extend(names.into_iter().map(|name| ["local".to_string(), name]));
    print!("{}", crate::runtime::lifecycle::align(&rows));
    Ok(0)
}

/// `volume inspect NAME...`: Docker's fields, and the containers that use it.
pub fn inspect(
    store: &VolumeStore,
    containers: &crate::runtime::state::Store,
    names: &[String],
) -> Result<i32, LabError> {
    let mut documents = Vec::new();
    for name in names {
        if !store.exists(name)? {
            return Err(no_such_volume(name));
        }
        documents.push(serde_json::json!({
            "CreatedAt": crate::runtime::state::rfc3339(store.created(name)),
            "Driver": "local",
            "Labels": {},
            "Mountpoint": store.data(name)?,
            "Name": name,
            "Options": {},
            "Scope": "local",
            "UsedBy": users_of(containers, name),
        }));
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&documents).expect("json serialises")
    );
    Ok(0)
}

fn no_such_volume(name: &str) -> LabError {
    LabError::Container {
        message: format!("no such volume: {name}"),
        hint: "`volume ls` lists the volumes".into(),
    }
}

// ANCHOR: rm
/// `volume rm [-f] NAME...`: refused while any container's record names
/// the volume (a stopped one too: its next start needs it); -f only
/// forgives a name that is not a volume.
pub fn rm(
    store: &VolumeStore,
    containers: &crate::runtime::state::Store,
    names: &[String],
    force: bool,
) -> Result<i32, LabError> {
    crate::runtime::lifecycle::each(names, |name| {
        if !store.exists(name)? {
            return match force {
                true => Ok(()),
                false => Err(no_such_volume(name)),
            };
        }
        let users = users_of(containers, name);
        if !users.is_empty() {
            return Err(LabError::Container {
                message: format!(
                    "cannot remove volume {name}: it is in use by container {}",
                    users.join(", ")
                ),
                hint: "remove the container first (rm), then the volume".into(),
            });
        }
        store.remove(name)?;
        println!("{name}");
        Ok(())
    })
}
// ANCHOR_END: rm

/// `volume prune`: every volume no container's record names.
pub fn prune(
    store: &VolumeStore,
    containers: &crate::runtime::state::Store,
) -> Result<i32, LabError> {
    println!("Deleted Volumes:");
    for name in store.names() {
        if users_of(containers, &name).is_empty() {
            store.remove(&name)?;
            println!("{name}");
        }
    }
    Ok(0)
}

/// One bind a run attaches: a host path (a host directory, or a named
/// volume's `_data`) over `target` in the container.
pub struct Attachment {
    pub source: PathBuf,
    pub target: PathBuf,
    pub read_only: bool,
    /// A named volume: seen through the container's id maps.
    pub idmapped: bool,
    /// A directory (else a file, bound over a file).
    pub directory: bool,
    /// A volume just made, or empty and named by no container's record:
    /// the image's files at `target` go in first.
    pub seed: bool,
}

// ANCHOR: prepare
/// Before the container: check every host path, make the named volumes
/// that do not exist yet. Binds and volumes only (tmpfs needs nothing).
pub fn prepare(mounts: &[MountSpec]) -> Result<Vec<Attachment>, LabError> {
    let mut attachments = Vec::new();
    // The store only when a volume is named: a run without one needs no
    // HOME, and makes no directory.
    let store = match mounts.iter().any(|m| m.volume().is_some()) {
        true => Some(VolumeStore::open()?),
        false => None,
    };
    for mount in mounts {
        match mount {
            MountSpec::Bind {
                source,
                target,
                read_only,
            } => {
                // Docker's -v makes a missing host directory; the lab
                // refuses, so that a typo does not become an empty
                // directory of the host's root.
                let meta = std::fs::metadata(source).map_err(|e| LabError::Refused {
                    message: format!(
                        "cannot bind {}: {}",
                        source.display(),
                        crate::error::describe_errno(crate::error::errno_of(&e))
                    ),
                    hint: "give an existing host directory or file (mkdir it first)".into(),
                })?;
                attachments.push(Attachment {
                    source: source.clone(),
                    target: target.clone(),
                    read_only: *read_only,
                    idmapped: false,
                    directory: meta.is_dir(),
                    seed: false,
                });
            }
            MountSpec::Volume {
                name,
                target,
                read_only,
            } => {
                let store = store.as_ref().expect("opened for volumes");
                let made = store.create(name)?;
                // An empty volume another container's record names is
                // not seeded: that container may be running with it.
                let seed = made
                    || (store.is_empty(name)?
                        && users_of(&crate::runtime::state::Store::open()?, name).is_empty());
                attachments.push(Attachment {
                    source: store.data(name)?,
                    target: target.clone(),
                    read_only: *read_only,
                    idmapped: nix::unistd::geteuid().is_root(),
                    directory: true,
                    seed,
                });
            }
            MountSpec::Tmpfs { .. } => {}
        }
    }
    Ok(attachments)
}
// ANCHOR_END: prepare

// ANCHOR: seed
/// Docker's copy-up: a new volume mounted where the image has files
/// starts with a copy of them, owners, modes and times kept (`cp -a`).
/// `view` is the image's layers stacked read-only (`LayeredRoot::with_view`),
/// whose files carry the image's own ids, the container's side: the very
/// ids a volume keeps on disk. The image's directory is found inside
/// `view` (RESOLVE_IN_ROOT: a symlink `/data -> /etc` seeds from the
/// image's /etc, never the host's) and handed to cp(1) as
/// /proc/PID/fd/N. Returns false when the image has no directory there.
///
/// cp never writes where a container can reach: one already running with
/// the volume could swap a directory cp has just made in `_data` for a
/// symlink to anywhere on the host, and the host's root would write the
/// rest there, owners and setuid bits kept. It copies into a staging
/// directory beside `_data`, which no container mounts; the finished
/// entries are then moved in (`Staging::move_in`).
pub fn seed(view: &Path, target: &Path, data: &Path, keep_owners: bool) -> Result<bool, LabError> {
    let root = nix::fcntl::open(
        view,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|errno| LabError::StepFailed {
        syscall: "open",
        target: view.display().to_string(),
        errno,
    })?;
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let found = match openat2(&root, relative(target), how) {
        Ok(found) => found,
        Err(Errno::ENOENT | Errno::ENOTDIR) => return Ok(false),
        Err(errno) => {
            return Err(LabError::StepFailed {
                syscall: "openat2",
                target: format!("{} in the image", target.display()),
                errno,
            });
        }
    };
    let staging = Staging::make(data)?;
    let from = format!("/proc/{}/fd/{}/.", std::process::id(), found.as_raw_fd());
    let mut cp = std::process::Command::new("cp");
    cp.arg("-a");
    if !keep_owners {
        // Without root only our own id is mapped: the files become the
        // user's, which is the container's root.
        cp.arg("--no-preserve=ownership");
    }
    let shown = format!("cp -a {}/. {}", target.display(), staging.path.display());
    let output = cp
        .arg(&from)
        .arg(&staging.path)
        .output()
        .map_err(|e| LabError::ToolFailed {
            command: shown.clone(),
            message: format!("cannot run cp: {e}"),
        })?;
    if !output.status.success() {
        return Err(LabError::ToolFailed {
            command: shown,
            message: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    staging.move_in(keep_owners)?;
    Ok(true)
}
// ANCHOR_END: seed

/// `NAME/.seed-PID`, beside the volume's `_data`: where a seed is copied
/// before it goes in. Made 0700 by mkdir(2), which fails on a name that
/// exists; removed when dropped, whatever happened. It and `_data` are
/// held by descriptors opened from the volume's own directory with
/// O_DIRECTORY|O_NOFOLLOW.
struct Staging {
    path: PathBuf,
    dir: OwnedFd,
    data: OwnedFd,
}

impl Staging {
    fn make(data: &Path) -> Result<Staging, LabError> {
        let volume = data.parent().unwrap_or(Path::new("/"));
        let failed = |syscall: &'static str, target: &Path| {
            let target = target.display().to_string();
            move |errno| LabError::StepFailed {
                syscall,
                target,
                errno,
            }
        };
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let volume_fd =
            nix::fcntl::open(volume, flags, Mode::empty()).map_err(failed("open", volume))?;
        let name = format!(".seed-{}", std::process::id());
        let path = volume.join(&name);
        let mkdir =
            || nix::sys::stat::mkdirat(&volume_fd, name.as_str(), Mode::from_bits_truncate(0o700));
        let made = match mkdir() {
            Err(Errno::EEXIST) => {
                // Left by a runtime that was killed and had this PID.
                crate::runtime::state::remove_tree(&path)?;
                mkdir()
            }
            made => made,
        };
        made.map_err(failed("mkdir", &path))?;
        let staging = Staging {
            dir: nix::fcntl::openat(&volume_fd, name.as_str(), flags, Mode::empty())
                .map_err(failed("open", &path))?,
            data: nix::fcntl::openat(&volume_fd, "_data", flags, Mode::empty())
                .map_err(failed("open", data))?,
            path,
        };
        Ok(staging)
    }

    /// Each entry renamed into `_data` (renameat2(2) with RENAME_NOREPLACE,
    /// between the two descriptors): a finished tree moves in whole, and
    /// nothing is written through a path a container could have changed.
    /// A name `_data` has meanwhile is left as it is. Then `_data` takes
    /// the mode (and, as root, the owner) cp gave the staging directory:
    /// the image's directory's.
    fn move_in(&self, keep_owners: bool) -> Result<(), LabError> {
        let entries = std::fs::read_dir(&self.path)
            .map_err(|e| LabError::io("read", self.path.display(), e))?;
        for entry in entries {
            let name = entry
                .map_err(|e| LabError::io("read", self.path.display(), e))?
                .file_name();
            match nix::fcntl::renameat2(
                &self.dir,
                name.as_os_str(),
                &self.data,
                name.as_os_str(),
                nix::fcntl::RenameFlags::RENAME_NOREPLACE,
            ) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(errno) => {
                    return Err(LabError::StepFailed {
                        syscall: "renameat2",
                        target: self.path.join(name).display().to_string(),
                        errno,
                    });
                }
            }
        }
        let failed = |syscall| {
            move |errno| LabError::StepFailed {
                syscall,
                target: self.path.display().to_string(),
                errno,
            }
        };
        let stat = nix::sys::stat::fstat(&self.dir).map_err(failed("fstat"))?;
        if keep_owners {
            nix::unistd::fchown(
                &self.data,
                Some(stat.st_uid.into()),
                Some(stat.st_gid.into()),
            )
            .map_err(failed("fchown"))?;
        }
        nix::sys::stat::fchmod(&self.data, Mode::from_bits_truncate(stat.st_mode & 0o7777))
            .map_err(failed("fchmod"))
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = crate::runtime::state::remove_tree(&self.path);
    }
}

/// Before the container starts: each volume that is new (or empty) and
/// mounted where the image has a directory gets a copy of it, read from
/// the image's layers stacked read-only at `at` (`LayeredRoot::with_view`).
pub fn seed_new(
    narrator: &Narrator,
    layered: &crate::runtime::overlay::LayeredRoot,
    at: &Path,
    attachments: &[Attachment],
) -> Result<(), LabError> {
    let keep_owners = nix::unistd::geteuid().is_root();
    for attachment in attachments {
        if !attachment.seed || !is_empty_dir(&attachment.source) {
            continue;
        }
        let args = format!(
            "-a IMAGE{}/. {}/.seed-PID, then each entry renameat2(2)'d into _data, RENAME_NOREPLACE",
            attachment.target.display(),
            attachment
                .source
                .parent()
                .unwrap_or(&attachment.source)
                .display()
        );
        narrator.run_tool(
            Step {
                syscall: "cp",
                args: &args,
                why: "a new volume starts with the image's files at its path, owners and modes kept (Docker's copy-up); copied where no container can reach, then moved in",
                man: "cp(1)",
            },
            || {
                layered.with_view(at, |view| {
                    seed(view, &attachment.target, &attachment.source, keep_owners).map(drop)
                })
            },
        )?;
    }
    Ok(())
}

fn is_empty_dir(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_none())
}

fn relative(target: &Path) -> &Path {
    target.strip_prefix("/").unwrap_or(target)
}

// ANCHOR: detached
/// A detached copy of `attachment.source`'s mount (open_tree(2),
/// OPEN_TREE_CLONE|AT_RECURSIVE: Docker's rbind), its flags set before
/// anyone sees it (mount_setattr(2)): read-only for `:ro`; nodev always (a
/// device node in a host directory must not open a host device); a named
/// volume nosuid too, and idmapped through `userns` (the child's user
/// namespace).
///
/// Why a named volume is idmapped rather than chowned: its files are kept
/// on disk with the container's own ids (0 for its root), as the image's
/// layers are, so the seed is a plain `cp -a` of the image's files, and
/// the same volume serves containers of any --uid-map, each seeing its own
/// root as the owner; a chown to one map's host ids would tie the volume
/// to that map. The price: on disk, what the container's root writes is
/// owned by uid 0, which is why the volumes' directory is 0700 and the
/// mount nosuid.
fn detached_tree(
    narrator: &Narrator,
    attachment: &Attachment,
    userns: Option<&std::fs::File>,
) -> Result<OwnedFd, LabError> {
    let path = std::ffi::CString::new(attachment.source.as_os_str().as_bytes())
        .expect("paths have no NUL");
    let args = format!(
        "AT_FDCWD, {:?}, OPEN_TREE_CLONE|OPEN_TREE_CLOEXEC|AT_RECURSIVE",
        attachment.source.display().to_string()
    );
    let tree = narrator.run(
        Step {
            syscall: "open_tree",
            args: &args,
            why: "a detached copy of the volume's mount, not yet attached anywhere",
            man: "open_tree(2)",
        },
        || crate::runtime::userns::open_tree_clone(&path),
    )?;
    let mut set = MOUNT_ATTR_NODEV;
    let mut names = vec!["MOUNT_ATTR_NODEV"];
    if attachment.read_only {
        set |= MOUNT_ATTR_RDONLY;
        names.push("MOUNT_ATTR_RDONLY");
    }
    if userns.is_some() && attachment.idmapped {
        set |= MOUNT_ATTR_IDMAP | MOUNT_ATTR_NOSUID;
        names.extend(["MOUNT_ATTR_NOSUID", "MOUNT_ATTR_IDMAP"]);
    }
    let args = format!(
        "tree, \"\", AT_EMPTY_PATH|AT_RECURSIVE, {{{}}}",
        names.join("|")
    );
    let why = match (attachment.idmapped, attachment.read_only) {
        (true, _) => "the volume's files, kept with the container's ids, seen through its id maps",
        (false, true) => {
            "read-only, set before the mount is attached: locked once copied into the container's namespace"
        }
        (false, false) => "device nodes in a host directory must not open host devices",
    };
    narrator.run(
        Step {
            syscall: "mount_setattr",
            args: &args,
            why,
            man: "mount_setattr(2)",
        },
        || {
            let idmap = userns.filter(|_| attachment.idmapped);
            crate::runtime::userns::set_mount_attributes(&tree, set, idmap)
        },
    )?;
    Ok(tree)
}
// ANCHOR_END: detached

// ANCHOR: resolve
/// Find `target` inside `root` (RESOLVE_IN_ROOT: `..` and absolute
/// symlinks stop at `root`), making what is missing on the way: directories
/// (a file last, to bind a file over) in the container's writable layer,
/// owned by `owner` when given (the container's root as the host numbers
/// it; the runtime, the host's root, makes them). Returns the target
/// opened O_PATH and where it landed, as a path inside the container.
pub fn resolve_target(
    root: &Path,
    target: &Path,
    directory: bool,
    owner: Option<(u32, u32)>,
) -> nix::Result<(OwnedFd, PathBuf)> {
    let root_fd = nix::fcntl::open(
        root,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let how = |flags: OFlag| {
        OpenHow::new()
            .flags(flags | OFlag::O_PATH | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS)
    };
    let parts: Vec<Component> = relative(target).components().collect();
    for n in 0..parts.len() {
        let prefix: PathBuf = parts[..=n].iter().collect();
        match openat2(&root_fd, &prefix, how(OFlag::empty())) {
            Ok(_) => continue,
            Err(Errno::ENOENT) => {}
            Err(errno) => return Err(errno),
        }
        let parent: PathBuf = match n {
            0 => PathBuf::from("."),
            _ => parts[..n].iter().collect(),
        };
        let parent_fd = openat2(&root_fd, &parent, how(OFlag::O_DIRECTORY))?;
        let name = parts[n].as_os_str();
        if n + 1 == parts.len() && !directory {
            nix::fcntl::openat(
                &parent_fd,
                name,
                OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_WRONLY
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o644),
            )?;
        } else {
            nix::sys::stat::mkdirat(&parent_fd, name, Mode::from_bits_truncate(0o755))?;
        }
        if let Some((uid, gid)) = owner {
            nix::unistd::fchownat(
                &parent_fd,
                name,
                Some(uid.into()),
                Some(gid.into()),
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            )?;
        }
    }
    let kind = match directory {
        true => OFlag::O_DIRECTORY,
        false => OFlag::empty(),
    };
    let found = openat2(&root_fd, relative(target), how(kind))?;
    // Where it landed: the kernel's own name for each descriptor.
    let name =
        |fd: &OwnedFd| nix::fcntl::readlink(format!("/proc/self/fd/{}", fd.as_raw_fd()).as_str());
    let root_name = PathBuf::from(name(&root_fd)?);
    let found_name = PathBuf::from(name(&found)?);
    let inside = found_name
        .strip_prefix(&root_name)
        .map(|rest| Path::new("/").join(rest))
        .map_err(|_| Errno::EXDEV)?;
    Ok((found, inside))
}
// ANCHOR_END: resolve

/// Attach `tree` onto the descriptor `at` (move_mount(2) with
/// MOVE_MOUNT_F_EMPTY_PATH|MOVE_MOUNT_T_EMPTY_PATH): the very directory
/// resolve_target found, not a path looked up once more.
fn move_onto(tree: &OwnedFd, at: &OwnedFd) -> nix::Result<()> {
    const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
    const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
    // SAFETY: move_mount takes two dirfd/path pairs and flags.
    let result = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            at.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    Errno::result(result).map(drop)
}

/// `resolve_target` of one attachment, runnable on another thread.
type Resolve<'a> = dyn Fn() -> nix::Result<(OwnedFd, PathBuf)> + Sync + 'a;

/// The target resolved (in whichever mount namespace `within` runs it),
/// refused when it lands on `/` or under /proc, /sys or /dev.
fn resolved(
    narrator: &Narrator,
    root: &Path,
    attachment: &Attachment,
    owner: Option<(u32, u32)>,
    within: impl FnOnce(&Resolve<'_>) -> nix::Result<(OwnedFd, PathBuf)>,
) -> Result<OwnedFd, LabError> {
    let args = format!(
        "root of {:?}, {:?}, O_PATH, RESOLVE_IN_ROOT",
        root.display().to_string(),
        attachment.target.display().to_string()
    );
    let (fd, inside) = narrator.run(
        Step {
            syscall: "openat2",
            args: &args,
            why: "the mount point, found inside the container's root (a symlink cannot lead out), made in its writable layer if missing",
            man: "openat2(2)",
        },
        || {
            within(&|| {
                resolve_target(root, &attachment.target, attachment.directory, owner)
            })
        },
    )?;
    if let Some(why) = forbidden(&inside) {
        return Err(LabError::Refused {
            message: format!(
                "cannot mount {} on {}: it leads to {inside:?}: {why}",
                attachment.source.display(),
                attachment.target.display(),
                inside = inside.display()
            ),
            hint: "the image has a symlink on the way: choose another container path".into(),
        });
    }
    if inside != attachment.target {
        narrator.note(&format!(
            "{} leads to {} inside the container: mounted there",
            attachment.target.display(),
            inside.display()
        ));
    }
    Ok(fd)
}

// ANCHOR: attach_for
/// As root, from outside, once the child has its user namespace and the
/// overlay is on `root` in its first mount namespace: each bind and volume
/// attached there (see the module's comment for why there), mount points
/// made as the container's root (`owner`, host ids).
pub fn attach_for(
    narrator: &Narrator,
    child: Pid,
    root: &Path,
    attachments: &[Attachment],
    owner: (u32, u32),
) -> Result<(), LabError> {
    if attachments.is_empty() {
        return Ok(());
    }
    let userns_path = format!("/proc/{child}/ns/user");
    let userns =
        std::fs::File::open(&userns_path).map_err(|e| LabError::io("open", &userns_path, e))?;
    for attachment in attachments {
        let tree = detached_tree(narrator, attachment, Some(&userns))?;
        let at = resolved(narrator, root, attachment, Some(owner), |resolve| {
            crate::runtime::userns::in_mount_namespace_of(child, resolve)
        })?;
        narrator.run(
            Step {
                syscall: "move_mount",
                args: "tree, \"\", target, \"\", MOVE_MOUNT_F_EMPTY_PATH|MOVE_MOUNT_T_EMPTY_PATH",
                why: "in the child's first mount namespace, owned by the host's root: its flags are locked in the copy the container gets",
                man: "move_mount(2)",
            },
            || crate::runtime::userns::in_mount_namespace_of(child, || move_onto(&tree, &at)),
        )?;
    }
    Ok(())
}
// ANCHOR_END: attach_for

/// Without root, inside the child (root of its user namespace, in a mount
/// namespace of its own, before pivot_root): the same binds, made by the
/// child itself, of paths its user can read. Not idmapped (only the host's
/// root may idmap); a named volume holds the user's own files, which the
/// user namespace shows as its root's. Here `:ro` is the container's own
/// mount's flag: its root could clear it, but it writes the directory as
/// the user anyway, with the user's rights and no more.
pub fn attach_inside(
    narrator: &Narrator,
    root: &Path,
    attachments: &[Attachment],
) -> Result<(), LabError> {
    for attachment in attachments {
        let tree = detached_tree(narrator, attachment, None)?;
        let at = resolved(narrator, root, attachment, None, |resolve| resolve())?;
        narrator.run(
            Step {
                syscall: "move_mount",
                args: "tree, \"\", target, \"\", MOVE_MOUNT_F_EMPTY_PATH|MOVE_MOUNT_T_EMPTY_PATH",
                why: "the bind in place, on the directory found inside the root",
                man: "move_mount(2)",
            },
            || move_onto(&tree, &at),
        )?;
    }
    Ok(())
}

// ANCHOR: tmpfs
/// Inside, after pivot_root(2): each --tmpfs, mounted by the container's
/// root (tmpfs may be mounted in a user namespace), so the tmpfs is its
/// own, as its /tmp is. After the pivot, `/` is the container's: its path
/// is resolved there, symlinks included, and can lead nowhere else.
pub fn mount_tmpfs(narrator: &Narrator, mounts: &[MountSpec]) -> Result<(), LabError> {
    for mount in mounts {
        let MountSpec::Tmpfs { target, options } = mount else {
            continue;
        };
        let attachment = Attachment {
            source: PathBuf::from("tmpfs"),
            target: target.clone(),
            read_only: false,
            idmapped: false,
            directory: true,
            seed: false,
        };
        let at = resolved(narrator, Path::new("/"), &attachment, None, |resolve| {
            resolve()
        })?;
        let (flags, data) = tmpfs_arguments(options);
        let on = format!("/proc/self/fd/{}", at.as_raw_fd());
        let args = format!(
            "\"tmpfs\", {:?} ({}), \"tmpfs\", {flags:?}, {data:?}",
            on,
            target.display()
        );
        narrator.run(
            Step {
                syscall: "mount",
                args: &args,
                why: "scratch space in memory, gone with the container; nosuid, nodev",
                man: "tmpfs(5)",
            },
            || {
                nix::mount::mount(
                    Some("tmpfs"),
                    on.as_str(),
                    Some("tmpfs"),
                    flags,
                    Some(data.as_str()),
                )
            },
        )?;
    }
    Ok(())
}
// ANCHOR_END: tmpfs

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::mountspec::parse_tmpfs;

    #[test]
    fn tmpfs_takes_its_options_and_keeps_nosuid_nodev() {
        let MountSpec::Tmpfs { target, options } =
            parse_tmpfs("/scratch:size=64m,mode=700,noexec").unwrap()
        else {
            panic!("not a tmpfs");
        };
        assert_eq!(target, Path::new("/scratch"));
        let (flags, data) = tmpfs_arguments(&options);
        assert_eq!(
            flags,
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC
        );
        assert_eq!(data, "size=64m,mode=700");
        let MountSpec::Tmpfs { options, .. } = parse_tmpfs("/scratch").unwrap() else {
            panic!("not a tmpfs");
        };
        assert_eq!(
            tmpfs_arguments(&options),
            (MsFlags::MS_NOSUID | MsFlags::MS_NODEV, "mode=1777".into())
        );
        for bad in [
            "/x:suid",
            "/x:dev",
            "/x:size=",
            "/x:size=1;rm",
            "scratch",
            "/proc/x",
        ] {
            assert!(parse_tmpfs(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_volume_store_makes_lists_and_removes() {
        let dir = std::env::temp_dir().join(format!("lab-volumes-{}", std::process::id()));
        let store = VolumeStore::at(&dir).unwrap();
        assert!(store.create("v1").unwrap());
        assert!(!store.create("v1").unwrap());
        assert!(store.is_empty("v1").unwrap());
        std::fs::write(store.data("v1").unwrap().join("f"), "x").unwrap();
        assert!(!store.is_empty("v1").unwrap());
        store.create("a2").unwrap();
        assert_eq!(store.names(), ["a2", "v1"]);
        assert!(store.created("v1") > 0);
        store.remove("v1").unwrap();
        assert_eq!(store.names(), ["a2"]);
        assert!(store.create("../x").is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_name_that_leads_out_of_the_store_is_refused_everywhere() {
        let dir = std::env::temp_dir().join(format!("lab-volumes-out-{}", std::process::id()));
        let store = VolumeStore::at(&dir.join("volumes")).unwrap();
        let outside = dir.join("outside");
        std::fs::create_dir_all(outside.join("_data")).unwrap();
        for name in [
            outside.to_str().unwrap(),
            "../outside",
            "a/../../outside",
            "..",
        ] {
            assert!(store.data(name).is_err(), "{name}");
            assert!(store.exists(name).is_err(), "{name}");
            assert!(store.remove(name).is_err(), "{name}");
            assert!(store.is_empty(name).is_err(), "{name}");
            assert_eq!(store.created(name), 0, "{name}");
        }
        assert!(outside.join("_data").is_dir());
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The seed goes through a staging directory and moves in without
    /// replacing: a symlink the volume holds (a container's, planted where
    /// the seed has a directory) is never written through, and no staging
    /// directory is left.
    #[test]
    fn a_seed_never_writes_through_what_the_volume_holds() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("lab-volumes-seed-{}", std::process::id()));
        let view = dir.join("view");
        std::fs::create_dir_all(view.join("srv/sub")).unwrap();
        std::fs::create_dir_all(view.join("srv/kept")).unwrap();
        std::fs::write(view.join("srv/sub/file"), "image\n").unwrap();
        std::fs::write(view.join("srv/top"), "image\n").unwrap();
        std::fs::set_permissions(view.join("srv"), std::fs::Permissions::from_mode(0o750)).unwrap();
        let outside = dir.join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        let store = VolumeStore::at(&dir.join("volumes")).unwrap();
        store.create("v1").unwrap();
        let data = store.data("v1").unwrap();
        std::os::unix::fs::symlink(&outside, data.join("sub")).unwrap();
        std::fs::write(data.join("top"), "volume's\n").unwrap();

        assert!(seed(&view, Path::new("/srv"), &data, false).unwrap());
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
        assert!(data.join("sub").is_symlink());
        assert_eq!(
            std::fs::read_to_string(data.join("top")).unwrap(),
            "volume's\n"
        );
        assert!(data.join("kept").is_dir());
        let mode = std::fs::metadata(&data).unwrap().permissions().mode();
        assert_eq!(mode & 0o7777, 0o750);
        let left: Vec<_> = std::fs::read_dir(dir.join("volumes/v1"))
            .unwrap()
            .flatten()
            .map(|entry| entry.file_name())
            .collect();
        assert_eq!(left.len(), 2, "{left:?}"); // _data and volume.json
        assert!(!seed(&view, Path::new("/missing"), &data, false).unwrap());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
