//! `lab bundle IMAGE DIR`: an OCI bundle made from an image of the lab's
//! store, for runc or `ch10-oci` to run.
//!
//! A bundle is what the runtime spec hands a runtime: a directory holding a
//! root filesystem (`rootfs/`) and a `config.json` that says how to run
//! it. Chapters 08 and 09 never made one: they stacked an image's layers
//! with overlayfs, and their flags said the rest. Here both become files:
//!
//! - `rootfs/` is the image's layers flattened into one directory: what a
//!   chapter 08 container sees through its overlay at start, copied;
//! - `config.json` is the default spec (`spec.rs`) with the image's own
//!   command, environment, working directory and user put in.
//!
//! # Flattening
//!
//! The store keeps each layer unpacked, with overlayfs's marks
//! (`layer.rs`): a deletion is a character device 0/0, a directory that
//! hides everything below it carries `trusted.overlay.opaque=y`
//! (`user.overlay.opaque` in a rootless store). Flattening answers, for
//! every path, the question overlayfs answers on lookup, walking the
//! layers from the top: the first layer that has the name decides; a
//! whiteout there means the path is gone, a file means that file; a
//! directory merges with the same directory of lower layers, down to the
//! first layer where the name is not a directory, or to an opaque one.
//! Going top down copies each file once, and nothing a higher layer
//! deleted; applying the layers bottom up, as their tars would be, copies
//! what is later removed.
//!
//! # Why the copy never leaves the tree
//!
//! A layer holds any symlinks an image likes (`etc -> /etc`, `x ->
//! ../../..`): they are copied as links, never followed. Every directory
//! is opened with openat2(2) beneath its root with `RESOLVE_NO_SYMLINKS`
//! (`layer::open_beneath`), so the kernel refuses a path that goes
//! through a link or leaves the root; every file by one name relative to
//! its directory, with `O_NOFOLLOW`; and what was opened is checked to be
//! what fstatat(2) saw before it. The new tree is made the same way, in a
//! directory that was empty. The store's lock is held for the copy, so no
//! `rmi` or `prune` removes a layer under it.

use super::spec::{self, ROOTFS_DIR};
use crate::error::LabError;
use crate::image::containerfile::{clean_path, set_env};
use crate::image::digest::Digest;
use crate::image::layer::{
    is_opaque, is_overlay_xattr, open_beneath, set_xattr, sorted_names, xattr_names, xattr_value,
};
use crate::image::manage::{human_size, lower_dirs};
use crate::image::spec::RunConfig;
use crate::image::store::ImageStore;
use crate::runtime::command::{DEFAULT_PATH, resolve_user};
use crate::runtime::state::remove_tree;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FileStat, Mode, SFlag};
use nix::sys::time::TimeSpec;
use oci_spec::runtime::Spec;
use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The image a bundle was made from, by the name it was asked for
/// (the image spec's annotation for a reference's name).
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// ... and by its id, the digest of its config. The `org.opencontainers`
/// keys are the spec's own; others are named in reverse-domain style.
pub const ANNOTATION_IMAGE_ID: &str = "io.container-lab.image.id";

/// `lab bundle`'s flags.
#[derive(clap::Args, Debug, Clone)]
pub struct BundleArgs {
    /// Write a rootless config.json (`runc spec --rootless`'s shape): your
    /// own uid and gid become root in a user namespace, no network
    /// namespace; run it without sudo
    #[arg(long)]
    pub rootless: bool,
    /// Give the container a terminal (process.terminal: true): for an
    /// interactive shell, run from a terminal
    #[arg(short = 't', long)]
    pub tty: bool,
    /// The image: NAME[:TAG], an id, or a unique prefix of one
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// The bundle's directory: new, or empty
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

/// What the bundle's config.json is to say besides the image's own.
#[derive(Debug, Clone, Copy, Default)]
pub struct BundleOptions {
    pub rootless: bool,
    pub terminal: bool,
}

/// The image a bundle is made of: how it was named, its id, its config.
#[derive(Debug, Clone)]
pub struct BundledImage {
    pub reference: String,
    pub id: Digest,
    pub config: RunConfig,
}

/// What flattening copied.
#[derive(Debug, Default, Clone)]
pub struct Flattened {
    /// Files, directories, links and nodes made in the new tree.
    pub entries: u64,
    /// Bytes of file content copied.
    pub bytes: u64,
    /// Names made as hard links to a file copied before.
    pub hard_links: u64,
    /// Whiteouts that decided a name: paths a layer deleted.
    pub deletions: u64,
    /// Directories that hid what the layers below held.
    pub opaque: u64,
    /// What was left out, and why (device nodes when not root, ...).
    pub notes: Vec<String>,
}

/// A bundle made: where, and what went into it.
#[derive(Debug)]
pub struct Bundle {
    pub dir: PathBuf,
    pub layers: usize,
    pub flattened: Flattened,
    pub spec: Spec,
}

// ANCHOR: bundle_verb
/// `lab bundle [--rootless] [--tty] IMAGE DIR`, from the command line: the
/// bundle, a summary on stderr, and how to run it.
pub fn bundle_verb(args: &BundleArgs) -> Result<i32, LabError> {
    let store = ImageStore::open()?;
    let options = BundleOptions {
        rootless: args.rootless,
        terminal: args.tty,
    };
    let bundle = make_bundle(&store, &args.image, &args.dir, &options)?;
    let made = &bundle.flattened;
    let program = crate::program_name();
    crate::say!(
        "{program}: bundle {}: rootfs of {} entries ({} of files, {} deletions, {} opaque directories) from {} layer(s)",
        bundle.dir.display(),
        made.entries,
        human_size(made.bytes),
        made.deletions,
        made.opaque,
        bundle.layers,
    );
    for note in &made.notes {
        crate::say!("{program}: note: {note}");
    }
    let args = bundle
        .spec
        .process()
        .as_ref()
        .and_then(|process| process.args().clone())
        .unwrap_or_default();
    let sudo = if options.rootless { "" } else { "sudo " };
    crate::say!(
        "{program}: config.json runs {}; run it: {sudo}runc run -b {} ID (or {sudo}ch10-oci run -b {} ID)",
        crate::shell_words(&args),
        bundle.dir.display(),
        bundle.dir.display(),
    );
    Ok(0)
}
// ANCHOR_END: bundle_verb

// ANCHOR: make_bundle
/// Make the bundle of image `name` in `dir`, which must be missing or
/// empty. On any failure, or Ctrl-C, what was made is removed again, and
/// nothing else: `dir` itself only if this made it.
pub fn make_bundle(
    store: &ImageStore,
    name: &str,
    dir: &Path,
    options: &BundleOptions,
) -> Result<Bundle, LabError> {
    let image = store.find(name)?;
    let bundled = BundledImage {
        reference: name.to_string(),
        id: image.id.clone(),
        config: store.read_config(&image.id)?.config.unwrap_or_default(),
    };
    // An image with nothing to run is refused before anything is copied.
    process_args(&bundled)?;
    let layers = lower_dirs(store, &image);
    let mut half_made = HalfMadeBundle::start(dir)?;
    let _interruptible = crate::program::Interruptible::install();
    let rootfs = dir.join(ROOTFS_DIR);
    let flattened = {
        let _lock = store.lock()?;
        flatten(&layers, &rootfs)?
    };
    let spec = image_spec(&bundled, &rootfs, options)?;
    write_config(&dir.join("config.json"), &spec)?;
    half_made.keep();
    Ok(Bundle {
        dir: dir.to_path_buf(),
        layers: layers.len(),
        flattened,
        spec,
    })
}
// ANCHOR_END: make_bundle

/// A bundle directory being filled: removed again unless kept.
struct HalfMadeBundle {
    dir: PathBuf,
    /// This run made `dir` (it was missing), so it may remove it.
    made_dir: bool,
    kept: bool,
}

impl HalfMadeBundle {
    /// `dir` made, or found empty. Anything in it is the user's: a bundle
    /// is never written over what is there.
    fn start(dir: &Path) -> Result<HalfMadeBundle, LabError> {
        let made_dir = match std::fs::create_dir(dir) {
            Ok(()) => true,
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                let entries = std::fs::read_dir(dir)
                    .map_err(|e| LabError::io("opendir", dir.display(), e))?
                    .count();
                if entries > 0 {
                    return Err(LabError::Refused {
                        message: format!(
                            "bundle directory {} is not empty ({entries} entries)",
                            dir.display()
                        ),
                        hint: "give a new or an empty directory: a bundle is never written over what is there".into(),
                    });
                }
                false
            }
            Err(error) => return Err(LabError::io("mkdir", dir.display(), error)),
        };
        Ok(HalfMadeBundle {
            dir: dir.to_path_buf(),
            made_dir,
            kept: false,
        })
    }

    fn keep(&mut self) {
        self.kept = true;
    }
}

impl Drop for HalfMadeBundle {
    /// Only what a bundle holds, rootfs/ and config.json: anything the user
    /// put beside them meanwhile stays, and so does `dir` then (rmdir(2)
    /// refuses a directory that is not empty).
    fn drop(&mut self) {
        if self.kept {
            return;
        }
        let _ = remove_tree(&self.dir.join(ROOTFS_DIR));
        let _ = std::fs::remove_file(self.dir.join("config.json"));
        if self.made_dir {
            let _ = std::fs::remove_dir(&self.dir);
        }
    }
}

fn write_config(path: &Path, spec: &Spec) -> Result<(), LabError> {
    use std::io::Write;
    let text = spec::to_json(spec)?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| LabError::io("open", path.display(), e))?;
    file.write_all(text.as_bytes())
        .map_err(|e| LabError::io("write", path.display(), e))
}

/// Entrypoint then Cmd, as `docker run` without a COMMAND runs them.
fn process_args(image: &BundledImage) -> Result<Vec<String>, LabError> {
    let args = image.config.command(&[]);
    if args.is_empty() {
        return Err(LabError::Refused {
            message: format!(
                "image {} has neither Entrypoint nor Cmd: config.json would have no process to run",
                image.reference
            ),
            hint: "give the image a command (import --cmd, commit -c 'CMD ...'), or write process.args into config.json".into(),
        });
    }
    Ok(args)
}

// ANCHOR: image_spec
/// The default spec with the image's own settings, as `docker run` reads
/// them from an image's config: Entrypoint and Cmd as the process, Env
/// over the default PATH, WorkingDir, and User resolved against the
/// flattened `rootfs`'s /etc/passwd and /etc/group (a runtime takes only
/// numbers).
pub fn image_spec(
    image: &BundledImage,
    rootfs: &Path,
    options: &BundleOptions,
) -> Result<Spec, LabError> {
    let run = &image.config;
    let args = process_args(image)?;
    let mut env = vec![format!("PATH={DEFAULT_PATH}")];
    for setting in run.env.iter().flatten() {
        let (name, value) = setting.split_once('=').unwrap_or((setting, ""));
        set_env(&mut env, name, value);
    }
    if options.terminal && !env.iter().any(|setting| setting.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    let cwd = match run.working_dir.as_deref() {
        Some(dir) if !dir.is_empty() => clean_path(dir),
        _ => "/".to_string(),
    };
    let (uid, gid) = match run.user.as_deref() {
        Some(user) if !user.is_empty() => resolve_user(rootfs, user)?,
        _ => (0, 0),
    };
    if options.rootless && (uid, gid) != (0, 0) {
        return Err(LabError::Refused {
            message: format!(
                "image {} runs as {uid}:{gid}, but a rootless bundle maps only root (your own ids) into its user namespace",
                image.reference
            ),
            hint: "make the bundle as root, without --rootless, or add more ids to config.json's linux.uidMappings and gidMappings (from /etc/subuid)".into(),
        });
    }
    let mut spec = spec::default_spec(options.rootless)?;
    if let Some(process) = spec.process_mut() {
        process.set_args(Some(args));
        process.set_env(Some(env));
        process.set_cwd(PathBuf::from(cwd));
        process.set_terminal(Some(options.terminal));
        process.user_mut().set_uid(uid);
        process.user_mut().set_gid(gid);
    }
    spec.set_annotations(Some(HashMap::from([
        (ANNOTATION_REF_NAME.to_string(), image.reference.clone()),
        (ANNOTATION_IMAGE_ID.to_string(), image.id.to_string()),
    ])));
    Ok(spec)
}
// ANCHOR_END: image_spec

// ANCHOR: flatten
/// Flatten `layers` (top first, as overlayfs's lowerdir lists them) into
/// `rootfs`, which must not exist: the tree a read-only overlay of them
/// would show (see the module doc).
pub fn flatten(layers: &[PathBuf], rootfs: &Path) -> Result<Flattened, LabError> {
    let layer_roots = layers
        .iter()
        .map(|layer| open_root(layer))
        .collect::<Result<Vec<_>, _>>()?;
    std::fs::create_dir(rootfs).map_err(|e| LabError::io("mkdir", rootfs.display(), e))?;
    let target_root = open_root(rootfs)?;
    let mut copy = Copy {
        layer_roots,
        layer_dirs: layers.to_vec(),
        target_root,
        rootfs: rootfs.to_path_buf(),
        privileged: nix::unistd::geteuid().is_root(),
        first_names: HashMap::new(),
        dirs_later: Vec::new(),
        made: Flattened::default(),
    };
    // The root is merged as any directory is: from the top layer down to
    // the first opaque one.
    let mut root_layers = Vec::new();
    for (layer, root) in copy.layer_roots.iter().enumerate() {
        root_layers.push(layer);
        if is_opaque(root) {
            break;
        }
    }
    if let Some(&top) = root_layers.first() {
        let top_root = copy.layer_roots[top]
            .try_clone()
            .map_err(|e| LabError::io("dup", layers[top].display(), e))?;
        let target = copy
            .target_root
            .try_clone()
            .map_err(|e| LabError::io("dup", rootfs.display(), e))?;
        copy.directory_attributes(&top_root, &target, &[])?;
    }
    let mut pending = vec![MergedDir {
        parts: Vec::new(),
        layers: root_layers,
    }];
    while let Some(dir) = pending.pop() {
        if crate::program::interrupted() {
            return Err(LabError::Refused {
                message: format!("bundle {}: interrupted by a signal", rootfs.display()),
                hint: "what was copied has been removed; run it again".into(),
            });
        }
        pending.extend(copy.merge(&dir)?);
    }
    copy.finish_directories()?;
    Ok(copy.made)
}
// ANCHOR_END: flatten

/// A directory of the merged tree: its path below the root, and the
/// layers (indices, top first) whose directory of that path it merges.
struct MergedDir {
    parts: Vec<OsString>,
    layers: Vec<usize>,
}

/// What the top layer holding a name says it is in the merged tree.
enum Decision {
    /// A whiteout: the name is gone.
    Deleted,
    /// A file, link or node of `source` (an index into the directory's
    /// open layers).
    Entry { source: usize, stat: FileStat },
    /// A directory, from these layers (top first); `open` while a lower
    /// layer may still add to it; `opaque` when the last one hides the
    /// rest.
    Directory {
        source: usize,
        layers: Vec<usize>,
        open: bool,
        opaque: bool,
    },
}

/// A directory's mode and times, set once everything is in it: a 0555
/// directory set first would refuse its entries, and each entry made
/// changes its directory's mtime.
struct DirLater {
    parts: Vec<OsString>,
    mode: u32,
    atime: TimeSpec,
    mtime: TimeSpec,
}

/// One file, link or node to copy: `name` in `source` (at `from`, for
/// messages) to the same name in `target` (at `parts` below the root).
struct Entry<'a> {
    source: &'a OwnedFd,
    from: &'a Path,
    target: &'a OwnedFd,
    parts: &'a [OsString],
    name: &'a OsStr,
    stat: &'a FileStat,
}

/// One flatten in progress.
struct Copy {
    /// Every layer's root, top first, held open for the whole copy.
    layer_roots: Vec<OwnedFd>,
    /// Their paths, for messages.
    layer_dirs: Vec<PathBuf>,
    target_root: OwnedFd,
    rootfs: PathBuf,
    /// Root: owners, device nodes and `trusted.*` xattrs are copied.
    privileged: bool,
    /// (device, inode) of a file with several names -> where its first
    /// name was made (parent's parts, name), to link the others to.
    first_names: HashMap<(u64, u64), (Vec<OsString>, OsString)>,
    dirs_later: Vec<DirLater>,
    made: Flattened,
}

fn open_root(dir: &Path) -> Result<OwnedFd, LabError> {
    nix::fcntl::open(
        dir,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|errno| step("open", dir, errno))
}

/// A step that failed on `path`, with its errno.
fn step(syscall: &'static str, path: &Path, errno: Errno) -> LabError {
    LabError::StepFailed {
        syscall,
        target: path.display().to_string(),
        errno,
    }
}

fn kind_of(stat: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT
}

/// overlayfs's whiteout: a character device with device number 0/0.
fn is_whiteout(stat: &FileStat) -> bool {
    kind_of(stat) == SFlag::S_IFCHR && stat.st_rdev == 0
}

fn as_parts(parts: &[OsString]) -> Vec<&[u8]> {
    parts.iter().map(|part| part.as_bytes()).collect()
}

fn open_child_dir(dir: &OwnedFd, name: &OsStr) -> nix::Result<OwnedFd> {
    nix::fcntl::openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

fn times_of(stat: &FileStat) -> (TimeSpec, TimeSpec) {
    (
        TimeSpec::new(stat.st_atime, stat.st_atime_nsec),
        TimeSpec::new(stat.st_mtime, stat.st_mtime_nsec),
    )
}

impl Copy {
    /// The path of `parts` in layer `layer`, for messages.
    fn layer_path(&self, layer: usize, parts: &[OsString]) -> PathBuf {
        parts
            .iter()
            .fold(self.layer_dirs[layer].clone(), |path, part| path.join(part))
    }

    /// `parts` (and `name`) in the new tree, for messages.
    fn target_path(&self, parts: &[OsString], name: Option<&OsStr>) -> PathBuf {
        let path = parts
            .iter()
            .fold(self.rootfs.clone(), |path, part| path.join(part));
        match name {
            Some(name) => path.join(name),
            None => path,
        }
    }

    /// A directory below a root, opened beneath it without following any
    /// symlink on the way (the kernel checks, not a string compare).
    fn open_below(
        &self,
        root: &OwnedFd,
        parts: &[OsString],
        shown: &Path,
    ) -> Result<OwnedFd, LabError> {
        open_beneath(root, &as_parts(parts)).map_err(|errno| step("openat2", shown, errno))
    }

    // ANCHOR: merge
    /// Merge one directory: decide every name its layers hold, top layer
    /// first, make each in the new tree, and return the subdirectories to
    /// merge next.
    fn merge(&mut self, dir: &MergedDir) -> Result<Vec<MergedDir>, LabError> {
        let target_dir = self.target_path(&dir.parts, None);
        let target = self.open_below(&self.target_root, &dir.parts, &target_dir)?;
        let mut sources = Vec::with_capacity(dir.layers.len());
        for &layer in &dir.layers {
            let shown = self.layer_path(layer, &dir.parts);
            sources.push(self.open_below(&self.layer_roots[layer], &dir.parts, &shown)?);
        }
        let mut decisions: BTreeMap<OsString, Decision> = BTreeMap::new();
        for (source, fd) in sources.iter().enumerate() {
            let layer = dir.layers[source];
            let layer_dir = self.layer_path(layer, &dir.parts);
            let names =
                sorted_names(fd).map_err(|e| LabError::io("getdents", layer_dir.display(), e))?;
            for name in names {
                let shown = layer_dir.join(&name);
                let stat =
                    nix::sys::stat::fstatat(fd, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
                        .map_err(|errno| step("fstatat", &shown, errno))?;
                let is_dir = kind_of(&stat) == SFlag::S_IFDIR;
                let opaque = || -> Result<bool, LabError> {
                    let child =
                        open_child_dir(fd, &name).map_err(|errno| step("openat", &shown, errno))?;
                    Ok(is_opaque(&child))
                };
                match decisions.get_mut(&name) {
                    // The first layer with the name decides what it is.
                    None => {
                        let decision = if is_whiteout(&stat) {
                            Decision::Deleted
                        } else if is_dir {
                            let opaque = opaque()?;
                            Decision::Directory {
                                source,
                                layers: vec![layer],
                                open: !opaque,
                                opaque,
                            }
                        } else {
                            Decision::Entry { source, stat }
                        };
                        decisions.insert(name, decision);
                    }
                    // A lower layer adds to a directory until a layer has
                    // something else there, or its directory is opaque.
                    Some(Decision::Directory {
                        layers,
                        open,
                        opaque: marked,
                        ..
                    }) if *open => {
                        if is_dir {
                            layers.push(layer);
                            *marked = opaque()?;
                            *open = !*marked;
                        } else {
                            *open = false;
                        }
                    }
                    // Hidden by what a higher layer has under that name.
                    Some(_) => {}
                }
            }
        }
        let mut subdirs = Vec::new();
        for (name, decision) in decisions {
            match decision {
                Decision::Deleted => self.made.deletions += 1,
                Decision::Entry { source, stat } => {
                    let from = self.layer_path(dir.layers[source], &dir.parts).join(&name);
                    self.copy_entry(&Entry {
                        source: &sources[source],
                        from: &from,
                        target: &target,
                        parts: &dir.parts,
                        name: &name,
                        stat: &stat,
                    })?;
                }
                Decision::Directory {
                    source,
                    layers,
                    opaque,
                    ..
                } => {
                    let mut parts = dir.parts.clone();
                    parts.push(name.clone());
                    self.make_directory(&sources[source], &target, &parts, &name)?;
                    self.made.opaque += u64::from(opaque);
                    subdirs.push(MergedDir { parts, layers });
                }
            }
        }
        Ok(subdirs)
    }
    // ANCHOR_END: merge

    /// Make directory `name` in `target` with the owner and xattrs of the
    /// same directory in `source`; its mode and times come last.
    fn make_directory(
        &mut self,
        source: &OwnedFd,
        target: &OwnedFd,
        parts: &[OsString],
        name: &OsStr,
    ) -> Result<(), LabError> {
        let shown = self.target_path(parts, None);
        nix::sys::stat::mkdirat(target, name, Mode::from_bits_truncate(0o700))
            .map_err(|errno| step("mkdirat", &shown, errno))?;
        let from = open_child_dir(source, name).map_err(|errno| step("openat", &shown, errno))?;
        let to = open_child_dir(target, name).map_err(|errno| step("openat", &shown, errno))?;
        self.directory_attributes(&from, &to, parts)
    }

    /// A directory's owner and xattrs now, its mode and times at the end.
    fn directory_attributes(
        &mut self,
        from: &OwnedFd,
        to: &OwnedFd,
        parts: &[OsString],
    ) -> Result<(), LabError> {
        let shown = self.target_path(parts, None);
        let stat = nix::sys::stat::fstat(from).map_err(|errno| step("fstat", &shown, errno))?;
        self.owner_and_xattrs(from, to, &stat, &shown)?;
        let (atime, mtime) = times_of(&stat);
        self.dirs_later.push(DirLater {
            parts: parts.to_vec(),
            mode: stat.st_mode & 0o7777,
            atime,
            mtime,
        });
        self.made.entries += 1;
        Ok(())
    }

    // ANCHOR: copy_entry
    /// Copy one file, symlink or node into the new tree.
    fn copy_entry(&mut self, entry: &Entry) -> Result<(), LabError> {
        let Entry {
            source,
            from,
            target,
            name,
            stat,
            ..
        } = *entry;
        let shown = self.target_path(entry.parts, Some(name));
        let kind = kind_of(stat);
        match kind {
            SFlag::S_IFREG => return self.copy_file(entry),
            SFlag::S_IFLNK => {
                // Copied as the link it is, whatever it points at: it is
                // resolved inside the container's root when followed there.
                let link = nix::fcntl::readlinkat(source, name)
                    .map_err(|errno| step("readlinkat", from, errno))?;
                nix::unistd::symlinkat(link.as_os_str(), target, name)
                    .map_err(|errno| step("symlinkat", &shown, errno))?;
            }
            SFlag::S_IFCHR | SFlag::S_IFBLK | SFlag::S_IFIFO => {
                if kind != SFlag::S_IFIFO && !self.privileged {
                    self.made.notes.push(format!(
                        "{}: device node left out: only the host's root can make one (the container gets its own /dev)",
                        shown.display()
                    ));
                    return Ok(());
                }
                nix::sys::stat::mknodat(
                    target,
                    name,
                    kind,
                    Mode::from_bits_truncate(stat.st_mode),
                    stat.st_rdev,
                )
                .map_err(|errno| step("mknodat", &shown, errno))?;
            }
            // Sockets belong to a running program: tar(1) leaves them out too.
            _ => {
                self.made
                    .notes
                    .push(format!("{}: socket left out", shown.display()));
                return Ok(());
            }
        }
        self.chown_entry(target, name, stat, &shown)?;
        if kind != SFlag::S_IFLNK {
            // mknodat(2) applies the umask, and chown clears setgid: the
            // mode, exactly, after the owner. The node was made just now,
            // in a directory only this copy writes, so following a link
            // here cannot happen (Linux has no mode on links to set).
            nix::sys::stat::fchmodat(
                target,
                name,
                Mode::from_bits_truncate(stat.st_mode & 0o7777),
                nix::sys::stat::FchmodatFlags::FollowSymlink,
            )
            .map_err(|errno| step("fchmodat", &shown, errno))?;
        }
        let (atime, mtime) = times_of(stat);
        nix::sys::stat::utimensat(
            target,
            name,
            &atime,
            &mtime,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .map_err(|errno| step("utimensat", &shown, errno))?;
        self.made.entries += 1;
        Ok(())
    }
    // ANCHOR_END: copy_entry

    /// A regular file: its content, owner, mode, xattrs and times; or a
    /// hard link to the name the same file was first copied to.
    fn copy_file(&mut self, entry: &Entry) -> Result<(), LabError> {
        let Entry {
            source,
            from: from_path,
            target,
            parts,
            name,
            stat,
        } = *entry;
        let shown = self.target_path(parts, Some(name));
        let inode = (stat.st_dev, stat.st_ino);
        if stat.st_nlink > 1
            && let Some((first_parts, first_name)) = self.first_names.get(&inode)
        {
            let first_dir = self.open_below(&self.target_root, first_parts, &shown)?;
            nix::unistd::linkat(
                &first_dir,
                first_name.as_os_str(),
                target,
                name,
                AtFlags::empty(),
            )
            .map_err(|errno| step("linkat", &shown, errno))?;
            self.made.hard_links += 1;
            self.made.entries += 1;
            return Ok(());
        }
        let from = nix::fcntl::openat(
            source,
            name,
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|errno| step("openat", from_path, errno))?;
        // The file opened must be the one looked at: a name swapped since
        // fstatat would otherwise be copied in its place.
        let opened =
            nix::sys::stat::fstat(&from).map_err(|errno| step("fstat", from_path, errno))?;
        if (opened.st_dev, opened.st_ino) != inode {
            return Err(LabError::Refused {
                message: format!("bundle: {} changed while it was copied", from_path.display()),
                hint: "something else is writing to the image store's layers: run it again when it is done".into(),
            });
        }
        let to = nix::fcntl::openat(
            target,
            name,
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(|errno| step("openat", &shown, errno))?;
        let mut from = std::fs::File::from(from);
        let mut to = std::fs::File::from(to);
        // std copies file to file with copy_file_range(2): in the kernel,
        // and shared extents where the filesystem can (XFS, btrfs).
        self.made.bytes += std::io::copy(&mut from, &mut to)
            .map_err(|e| LabError::io("copy_file_range", shown.display(), e))?;
        let (from, to) = (OwnedFd::from(from), OwnedFd::from(to));
        self.owner_and_xattrs(&from, &to, stat, &shown)?;
        nix::sys::stat::fchmod(&to, Mode::from_bits_truncate(stat.st_mode & 0o7777))
            .map_err(|errno| step("fchmod", &shown, errno))?;
        let (atime, mtime) = times_of(stat);
        nix::sys::stat::futimens(&to, &atime, &mtime)
            .map_err(|errno| step("futimens", &shown, errno))?;
        if stat.st_nlink > 1 {
            self.first_names
                .insert(inode, (parts.to_vec(), name.to_os_string()));
        }
        self.made.entries += 1;
        Ok(())
    }

    /// Owner (as root; anyone else's copies are their own, as the rootless
    /// store's layers are) and xattrs but overlayfs's own.
    fn owner_and_xattrs(
        &mut self,
        from: &OwnedFd,
        to: &OwnedFd,
        stat: &FileStat,
        shown: &Path,
    ) -> Result<(), LabError> {
        if self.privileged {
            nix::unistd::fchown(to, Some(stat.st_uid.into()), Some(stat.st_gid.into()))
                .map_err(|errno| step("fchown", shown, errno))?;
        }
        let names =
            xattr_names(from, shown).map_err(|e| LabError::io("flistxattr", shown.display(), e))?;
        for name in names
            .iter()
            .filter(|name| !is_overlay_xattr(name.as_bytes()))
        {
            let value = xattr_value(from, name, shown)
                .map_err(|e| LabError::io("fgetxattr", shown.display(), e))?;
            let Ok(text) = name.to_str() else {
                self.made.notes.push(format!(
                    "{}: xattr {name:?} left out: its name is not UTF-8",
                    shown.display()
                ));
                continue;
            };
            match set_xattr(to, text, &value) {
                Ok(()) => {}
                // The bundle's filesystem takes no xattrs of that kind.
                Err(Errno::EOPNOTSUPP) => self.made.notes.push(format!(
                    "{}: xattr {text} not supported here",
                    shown.display()
                )),
                Err(errno) => return Err(step("fsetxattr", shown, errno)),
            }
        }
        Ok(())
    }

    /// The owner of a link or node, by name, never through a link.
    fn chown_entry(
        &self,
        dir: &OwnedFd,
        name: &OsStr,
        stat: &FileStat,
        shown: &Path,
    ) -> Result<(), LabError> {
        if !self.privileged {
            return Ok(());
        }
        nix::unistd::fchownat(
            dir,
            name,
            Some(stat.st_uid.into()),
            Some(stat.st_gid.into()),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|errno| step("fchownat", shown, errno))
    }

    /// Every directory's mode and times, deepest first (the walk made
    /// each directory before anything below it).
    fn finish_directories(&mut self) -> Result<(), LabError> {
        for later in self.dirs_later.iter().rev() {
            let shown = self.target_path(&later.parts, None);
            let dir = self.open_below(&self.target_root, &later.parts, &shown)?;
            nix::sys::stat::fchmod(&dir, Mode::from_bits_truncate(later.mode))
                .map_err(|errno| step("fchmod", &shown, errno))?;
            nix::sys::stat::futimens(&dir, &later.atime, &later.mtime)
                .map_err(|errno| step("futimens", &shown, errno))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::layer::ApplyOptions;
    use crate::image::store::tests::tempdir::TempDir;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    /// Layer directories as the store keeps them, to flatten in tests.
    struct Layers {
        scratch: TempDir,
    }

    impl Layers {
        fn new(what: &str) -> Layers {
            Layers {
                scratch: TempDir::new(what),
            }
        }

        /// Layer `n`'s directory (made on first use).
        fn layer(&self, n: usize) -> PathBuf {
            let dir = self.scratch.0.join(format!("layer{n}"));
            std::fs::create_dir_all(&dir).unwrap();
            dir
        }

        fn file(&self, n: usize, path: &str, content: &str) {
            let path = self.layer(n).join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }

        fn dir(&self, n: usize, path: &str) {
            std::fs::create_dir_all(self.layer(n).join(path)).unwrap();
        }

        /// overlayfs's deletion mark: a character device 0/0.
        fn whiteout(&self, n: usize, path: &str) {
            let path = self.layer(n).join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            nix::sys::stat::mknod(&path, SFlag::S_IFCHR, Mode::empty(), 0).unwrap();
        }

        /// A directory that hides what lower layers hold at its path.
        fn opaque(&self, n: usize, path: &str) {
            self.dir(n, path);
            let dir = open_root(&self.layer(n).join(path)).unwrap();
            let xattr = ApplyOptions::for_this_user().opaque_xattr();
            set_xattr(&dir, xattr, b"y").unwrap();
        }

        fn symlink(&self, n: usize, path: &str, target: &str) {
            let path = self.layer(n).join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(target, path).unwrap();
        }

        /// Flatten layers 0..count (0 is the top, as lower_dirs lists
        /// them) into `rootfs`.
        fn flatten(&self, count: usize) -> (PathBuf, Flattened) {
            let layers: Vec<PathBuf> = (0..count).map(|n| self.layer(n)).collect();
            let rootfs = self.scratch.0.join("rootfs");
            let made = flatten(&layers, &rootfs).unwrap();
            (rootfs, made)
        }
    }

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap()
    }

    #[test]
    fn the_top_layer_decides_and_whiteouts_and_opaque_directories_hide_what_is_below() {
        let layers = Layers::new("bundle-merge");
        // Layer 1, the lower one.
        layers.file(1, "a/keep", "kept");
        layers.file(1, "a/gone", "deleted above");
        layers.file(1, "b/lower-only", "hidden by the opaque b/");
        layers.file(1, "c/deep/file", "from below");
        layers.file(1, "d", "a file below a directory");
        layers.file(1, "e/inside", "a directory below a file");
        layers.file(1, "f", "replaced");
        // Layer 0, the top one.
        layers.whiteout(0, "a/gone");
        layers.file(0, "a/new", "added");
        layers.opaque(0, "b");
        layers.file(0, "b/upper-only", "b as the top layer has it");
        layers.dir(0, "c");
        layers.file(0, "d/now-a-dir", "d is a directory now");
        layers.file(0, "e", "e is a file now");
        layers.file(0, "f", "replacing");
        layers.whiteout(0, "never-existed");

        let (rootfs, made) = layers.flatten(2);
        assert_eq!(read(&rootfs.join("a/keep")), "kept");
        assert_eq!(read(&rootfs.join("a/new")), "added");
        assert!(!rootfs.join("a/gone").exists());
        assert!(!rootfs.join("never-existed").exists());
        assert_eq!(
            read(&rootfs.join("b/upper-only")),
            "b as the top layer has it"
        );
        assert!(!rootfs.join("b/lower-only").exists());
        assert_eq!(read(&rootfs.join("c/deep/file")), "from below");
        assert_eq!(read(&rootfs.join("d/now-a-dir")), "d is a directory now");
        assert_eq!(read(&rootfs.join("e")), "e is a file now");
        assert_eq!(read(&rootfs.join("f")), "replacing");
        assert_eq!(made.deletions, 2);
        assert_eq!(made.opaque, 1);
        // No whiteout and no overlayfs xattr reaches the bundle.
        let b = open_root(&rootfs.join("b")).unwrap();
        assert!(!is_opaque(&b));
    }

    #[test]
    fn a_directory_merges_through_a_layer_that_lacks_it() {
        let layers = Layers::new("bundle-gap");
        layers.file(2, "etc/bottom", "2");
        layers.file(1, "unrelated", "1");
        layers.file(0, "etc/top", "0");
        let (rootfs, _) = layers.flatten(3);
        assert_eq!(read(&rootfs.join("etc/bottom")), "2");
        assert_eq!(read(&rootfs.join("etc/top")), "0");
        assert_eq!(read(&rootfs.join("unrelated")), "1");
    }

    #[test]
    fn symlinks_are_copied_as_links_and_never_followed() {
        let layers = Layers::new("bundle-links");
        let outside = TempDir::new("bundle-outside");
        std::fs::write(outside.0.join("secret"), "the host's").unwrap();
        let outside_path = outside.0.to_str().unwrap();
        // A lower layer's directory under the name the top layer gives a
        // link out of the tree: the link wins, and nothing is written
        // through it.
        layers.file(1, "escape/planted", "must not land outside");
        layers.symlink(0, "escape", outside_path);
        layers.symlink(0, "climb", "../../../../..");
        layers.symlink(0, "secret", &format!("{outside_path}/secret"));
        let (rootfs, _) = layers.flatten(2);
        for (name, target) in [
            ("escape", outside_path.to_string()),
            ("climb", "../../../../..".to_string()),
            ("secret", format!("{outside_path}/secret")),
        ] {
            let link = rootfs.join(name);
            assert!(link.symlink_metadata().unwrap().file_type().is_symlink());
            assert_eq!(std::fs::read_link(&link).unwrap(), Path::new(&target));
        }
        assert!(!outside.0.join("planted").exists());
        assert_eq!(std::fs::read_dir(&outside.0).unwrap().count(), 1);
    }

    #[test]
    fn hard_links_stay_links_and_survive_a_deleted_sibling() {
        let layers = Layers::new("bundle-hardlinks");
        layers.file(1, "bin/busybox", "one program, many names");
        std::fs::create_dir_all(layers.layer(1).join("sbin")).unwrap();
        for name in ["bin/sh", "sbin/init", "bin/ls"] {
            std::fs::hard_link(
                layers.layer(1).join("bin/busybox"),
                layers.layer(1).join(name),
            )
            .unwrap();
        }
        layers.whiteout(0, "bin/busybox");
        let (rootfs, made) = layers.flatten(2);
        assert!(!rootfs.join("bin/busybox").exists());
        let inode = |name: &str| std::fs::metadata(rootfs.join(name)).unwrap().ino();
        assert_eq!(inode("bin/sh"), inode("sbin/init"));
        assert_eq!(inode("bin/sh"), inode("bin/ls"));
        assert_eq!(std::fs::metadata(rootfs.join("bin/sh")).unwrap().nlink(), 3);
        assert_eq!(read(&rootfs.join("sbin/init")), "one program, many names");
        assert_eq!(made.hard_links, 2);
    }

    #[test]
    fn modes_times_fifos_and_xattrs_are_kept_but_overlayfs_own() {
        let layers = Layers::new("bundle-attributes");
        layers.file(0, "usr/bin/su", "setuid");
        let su = layers.layer(0).join("usr/bin/su");
        std::fs::set_permissions(&su, std::fs::Permissions::from_mode(0o4755)).unwrap();
        let file = open_root(&layers.layer(0).join("usr/bin")).unwrap();
        set_xattr(&file, "user.comment", b"kept").unwrap();
        let old = TimeSpec::new(1_000_000_000, 0);
        nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            &su,
            &old,
            &old,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .unwrap();
        nix::unistd::mkfifo(
            &layers.layer(0).join("pipe"),
            Mode::from_bits_truncate(0o640),
        )
        .unwrap();
        layers.file(0, "readonly/inside", "in a 0555 directory");
        std::fs::set_permissions(
            layers.layer(0).join("readonly"),
            std::fs::Permissions::from_mode(0o555),
        )
        .unwrap();
        let (rootfs, _) = layers.flatten(1);
        let su = std::fs::metadata(rootfs.join("usr/bin/su")).unwrap();
        assert_eq!(su.mode() & 0o7777, 0o4755);
        assert_eq!(su.mtime(), 1_000_000_000);
        let pipe = rootfs.join("pipe").symlink_metadata().unwrap();
        assert!(std::os::unix::fs::FileTypeExt::is_fifo(&pipe.file_type()));
        assert_eq!(pipe.mode() & 0o7777, 0o640);
        let readonly = std::fs::metadata(rootfs.join("readonly")).unwrap();
        assert_eq!(readonly.mode() & 0o7777, 0o555);
        assert_eq!(read(&rootfs.join("readonly/inside")), "in a 0555 directory");
        let bin = open_root(&rootfs.join("usr/bin")).unwrap();
        assert_eq!(
            xattr_value(&bin, &c"user.comment".into(), Path::new("usr/bin")).unwrap(),
            b"kept"
        );
        // The test's own files are removable again.
        std::fs::set_permissions(
            layers.layer(0).join("readonly"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
    }

    fn image(config: RunConfig) -> BundledImage {
        BundledImage {
            reference: "lab/test:v1".into(),
            id: Digest::of(b"config"),
            config,
        }
    }

    fn process(spec: &Spec) -> &oci_spec::runtime::Process {
        spec.process().as_ref().unwrap()
    }

    #[test]
    fn the_process_is_the_images_entrypoint_and_cmd_with_its_env_and_workdir() {
        let rootfs = TempDir::new("bundle-config");
        let config = RunConfig {
            entrypoint: Some(vec!["/bin/sh".into(), "-c".into()]),
            cmd: Some(vec!["echo $GREETING".into()]),
            env: Some(vec![
                "PATH=/opt/bin:/bin".into(),
                "GREETING=hello".into(),
                "EMPTY".into(),
            ]),
            working_dir: Some("srv/../srv/app/".into()),
            ..RunConfig::default()
        };
        let options = BundleOptions::default();
        let spec = image_spec(&image(config), &rootfs.0, &options).unwrap();
        let process = process(&spec);
        assert_eq!(
            process.args().as_deref().unwrap(),
            ["/bin/sh", "-c", "echo $GREETING"]
        );
        assert_eq!(
            process.env().as_deref().unwrap(),
            ["PATH=/opt/bin:/bin", "GREETING=hello", "EMPTY="]
        );
        assert_eq!(process.cwd(), Path::new("/srv/app"));
        assert_eq!(process.terminal(), Some(false));
        assert_eq!((process.user().uid(), process.user().gid()), (0, 0));
        let annotations = spec.annotations().as_ref().unwrap();
        assert_eq!(annotations[ANNOTATION_REF_NAME], "lab/test:v1");
        assert_eq!(
            annotations[ANNOTATION_IMAGE_ID],
            Digest::of(b"config").to_string()
        );
        // The rest is the default spec's.
        assert_eq!(spec.hostname().as_deref(), Some("ch10"));

        let tty = BundleOptions {
            terminal: true,
            ..options
        };
        let spec = image_spec(
            &image(RunConfig {
                cmd: Some(vec!["sh".into()]),
                ..RunConfig::default()
            }),
            &rootfs.0,
            &tty,
        )
        .unwrap();
        let process = spec.process().as_ref().unwrap();
        assert_eq!(process.terminal(), Some(true));
        assert_eq!(
            process.env().as_deref().unwrap(),
            [format!("PATH={DEFAULT_PATH}"), "TERM=xterm".to_string()]
        );
        assert_eq!(process.cwd(), Path::new("/"));
    }

    #[test]
    fn the_user_is_resolved_in_the_images_own_passwd_and_group() {
        let rootfs = TempDir::new("bundle-user");
        std::fs::create_dir_all(rootfs.0.join("etc")).unwrap();
        std::fs::write(
            rootfs.0.join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(rootfs.0.join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
        let as_user = |user: &str, rootless: bool| {
            let config = RunConfig {
                cmd: Some(vec!["id".into()]),
                user: Some(user.into()),
                ..RunConfig::default()
            };
            let options = BundleOptions {
                rootless,
                terminal: false,
            };
            image_spec(&image(config), &rootfs.0, &options).map(|spec| {
                let user = process(&spec).user();
                (user.uid(), user.gid())
            })
        };
        assert_eq!(as_user("app", false).unwrap(), (1000, 1001));
        assert_eq!(as_user("app:staff", false).unwrap(), (1000, 50));
        assert_eq!(as_user("1000", false).unwrap(), (1000, 1001));
        assert_eq!(as_user("4242:4243", false).unwrap(), (4242, 4243));
        assert!(
            as_user("nosuch", false)
                .unwrap_err()
                .to_string()
                .contains("nosuch")
        );
        // Rootless maps only root: another user could not run.
        assert_eq!(as_user("root", true).unwrap(), (0, 0));
        let refused = as_user("app", true).unwrap_err().to_string();
        assert!(refused.contains("rootless"), "{refused}");
    }

    #[test]
    fn an_image_without_a_command_is_refused() {
        let rootfs = TempDir::new("bundle-nocommand");
        let error = image_spec(
            &image(RunConfig::default()),
            &rootfs.0,
            &BundleOptions::default(),
        )
        .unwrap_err();
        assert!(
            error.to_string().contains("neither Entrypoint nor Cmd"),
            "{error}"
        );
    }

    #[test]
    fn a_non_empty_directory_is_refused_and_a_half_made_bundle_removed() {
        let scratch = TempDir::new("bundle-dir");
        let full = scratch.0.join("full");
        std::fs::create_dir(&full).unwrap();
        std::fs::write(full.join("mine"), "the user's").unwrap();
        let error = HalfMadeBundle::start(&full).err().unwrap().to_string();
        assert!(error.contains("not empty"), "{error}");
        assert_eq!(read(&full.join("mine")), "the user's");

        // Made here: removed whole when not kept.
        let new = scratch.0.join("new");
        {
            let _half = HalfMadeBundle::start(&new).unwrap();
            std::fs::create_dir_all(new.join("rootfs/etc")).unwrap();
            std::fs::write(new.join("config.json"), "{}").unwrap();
        }
        assert!(!new.exists());

        // Found empty: emptied again, and left.
        let empty = scratch.0.join("empty");
        std::fs::create_dir(&empty).unwrap();
        {
            let _half = HalfMadeBundle::start(&empty).unwrap();
            std::fs::create_dir_all(empty.join("rootfs/etc")).unwrap();
        }
        assert!(empty.is_dir());
        assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);

        // Kept: stays.
        let kept = scratch.0.join("kept");
        {
            let mut half = HalfMadeBundle::start(&kept).unwrap();
            std::fs::write(kept.join("config.json"), "{}").unwrap();
            half.keep();
        }
        assert!(kept.join("config.json").exists());
    }
}
