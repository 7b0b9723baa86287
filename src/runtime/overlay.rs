//! overlayfs: a container's root made of read-only layers, shared with
//! every other container of the same image, under a writable layer of its
//! own (Documentation/filesystems/overlayfs.rst). A read finds the topmost
//! layer that has the file; a write copies the file up into the writable
//! layer first; a deletion leaves a whiteout there. The layers themselves
//! never change.
//!
//! Under a user namespace the layers, unpacked by the host's root, hold
//! files of the host's root, which the container's root is not. Each layer
//! is seen through an idmapped mount (mount_setattr(2), as ch05 does for a
//! rootfs) before overlayfs stacks them: overlayfs accepts idmapped layers
//! since Linux 5.19, and then the container's root owns what the image's
//! root owned, while the files on disk stay as they are, shared.

use crate::error::LabError;
use crate::narrator::{Narrator, Step};
use nix::mount::MsFlags;
use nix::unistd::Pid;
use serde::{Serialize, de::DeserializeOwned};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// overlayfs takes its options in one page (mount(2)'s data): layers are
/// named relative to a directory of short names, as Docker's overlay2 does.
const MAX_LAYERS: usize = 120;

/// The directories a container's root is stacked from.
pub struct LayeredRoot {
    /// The image's layers, top first (overlayfs's lowerdir order).
    pub lowers: Vec<PathBuf>,
    /// The container's writable layer: what it changes lands here.
    pub upper: PathBuf,
    /// overlayfs's scratch space, on the upper layer's filesystem.
    pub work: PathBuf,
    /// Where a rootless container's stack is mounted (inside its own
    /// mount namespace only); root's goes on a mount point under /run.
    pub merged: PathBuf,
    /// `DIR.layers/0..N`: where each idmapped layer is attached, for the
    /// moment of the overlay mount, in the child's mount namespace only.
    layer_points: PathBuf,
}

impl LayeredRoot {
    /// Make the writable layer under `dir` (kept across restarts) and an
    /// empty mount point per layer. The upper layer's top directory is the
    /// container's `/`: owned by the container's root (`owner`, as the
    /// host numbers it).
    pub fn prepare(
        dir: &Path,
        lowers: Vec<PathBuf>,
        owner: (u32, u32),
    ) -> Result<LayeredRoot, LabError> {
        if lowers.len() > MAX_LAYERS {
            return Err(LabError::Refused {
                message: format!(
                    "an image of {} layers: at most {MAX_LAYERS} are stacked",
                    lowers.len()
                ),
                hint: "squash the image into fewer layers".into(),
            });
        }
        let upper = dir.join("upper");
        let work = dir.join("work");
        let merged = dir.join("merged");
        for path in [&upper, &work, &merged] {
            std::fs::create_dir_all(path).map_err(|e| LabError::io("mkdir", path.display(), e))?;
        }
        nix::unistd::chown(&upper, Some(owner.0.into()), Some(owner.1.into())).map_err(
            |errno| LabError::StepFailed {
                syscall: "chown",
                target: upper.display().to_string(),
                errno,
            },
        )?;
        let layer_points =
            Path::new(crate::runtime::RUN_DIR).join(format!("layers-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&layer_points);
        // Only root attaches idmapped layers; a rootless stack is mounted
        // from inside, by path.
        let idmapped = nix::unistd::geteuid().is_root();
        for n in (0..lowers.len()).filter(|_| idmapped) {
            let point = layer_points.join(n.to_string());
            std::fs::create_dir_all(&point)
                .map_err(|e| LabError::io("mkdir", point.display(), e))?;
        }
        Ok(LayeredRoot {
            lowers,
            upper,
            work,
            merged,
            layer_points,
        })
    }

    /// The layers' common directory (the store's layers/) and their names
    /// in it: overlayfs takes its options in one page, and full paths of
    /// many layers would not fit.
    fn layers_by_name(&self) -> (PathBuf, Vec<String>) {
        let store = self.lowers[0]
            .parent()
            .unwrap_or(Path::new("/"))
            .to_path_buf();
        let names = self
            .lowers
            .iter()
            .map(|l| match l.parent() == Some(&store) {
                true => l
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
                false => l.display().to_string(),
            })
            .collect();
        (store, names)
    }

    /// overlayfs's options, with the layers named `0:1:...` relative to
    /// `layer_points` (or to the store, for the read-only view).
    fn options(&self, lowers: &[String], with_upper: bool) -> String {
        let mut options = format!("lowerdir={}", lowers.join(":"));
        if with_upper {
            options += &format!(
                ",upperdir={},workdir={}",
                self.upper.display(),
                self.work.display()
            );
        }
        options
    }

    // ANCHOR: view
    /// Run `look` on the image's files as the container will see them
    /// (the layers stacked, read-only), before there is a container: to
    /// find its command, its user, its working directory. The stack is
    /// mounted where no one else sees it, and is gone when `look` returns:
    /// as root on a thread with a mount namespace of its own; without
    /// root in a short-lived child with a user namespace of its own too
    /// (a thread cannot make one), which sends the answer back on a pipe.
    pub fn with_view<T: Serialize + DeserializeOwned + Send>(
        &self,
        at: &Path,
        look: impl FnOnce(&Path) -> Result<T, LabError> + Send,
    ) -> Result<T, LabError> {
        if let [only] = self.lowers.as_slice() {
            return look(only);
        }
        let (store, names) = self.layers_by_name();
        let mut options = self.options(&names, false);
        let rootless = !nix::unistd::geteuid().is_root();
        if rootless {
            options += ",userxattr";
        }
        let failed = |errno| LabError::StepFailed {
            syscall: "mount",
            target: format!("overlay on {}", at.display()),
            errno,
        };
        let mount_view = || -> nix::Result<()> {
            nix::unistd::chdir(&store)?;
            nix::mount::mount(
                None::<&str>,
                "/",
                None::<&str>,
                MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                None::<&str>,
            )?;
            nix::mount::mount(
                Some("overlay"),
                at,
                Some("overlay"),
                MsFlags::MS_RDONLY | MsFlags::MS_NODEV | MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
                Some(options.as_str()),
            )
        };
        if rootless {
            return in_own_user_namespace(|| {
                mount_view().map_err(failed)?;
                look(at)
            });
        }
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    nix::sched::unshare(
                        nix::sched::CloneFlags::CLONE_FS | nix::sched::CloneFlags::CLONE_NEWNS,
                    )
                    .and_then(|()| mount_view())
                    .map_err(failed)?;
                    look(at)
                })
                .join()
                .unwrap_or(Err(failed(nix::errno::Errno::EIO)))
        })
    }
    // ANCHOR_END: view

    // ANCHOR: mount_for
    /// From outside, once the child has its user namespace: each layer
    /// idmapped through it and attached in the child's mount namespace,
    /// then the overlay stacked from them onto `target` (overlayfs keeps
    /// references of its own to its layers).
    pub fn mount_for(
        &self,
        narrator: &Narrator,
        child: Pid,
        target: &Path,
    ) -> Result<(), LabError> {
        let mut trees = Vec::new();
        for layer in &self.lowers {
            trees.push(crate::runtime::userns::idmapped_rootfs(
                narrator, layer, child,
            )?);
        }
        let names: Vec<String> = (0..self.lowers.len()).map(|n| n.to_string()).collect();
        // Neither redirects nor metadata-only copy-ups, whatever the
        // module's defaults: with them the upper directory alone would no
        // longer say what changed, and `commit` reads it alone
        // (Documentation/filesystems/overlayfs.rst). userxattr, the
        // rootless mount, already turns both off.
        let options = self.options(&names, true) + ",redirect_dir=off,metacopy=off";
        let points = CString::new(self.layer_points.as_os_str().as_bytes()).expect("no NUL");
        let args = format!(
            "\"overlay\", {:?}, \"overlay\", MS_NODEV, \"{options}\"",
            target.display().to_string()
        );
        let why = format!(
            "in the child's mount namespace: {} read-only layer(s) seen through its id maps, top first, under the container's own writable layer (cwd {})",
            self.lowers.len(),
            self.layer_points.display()
        );
        narrator.run(
            Step {
                syscall: "mount",
                args: &args,
                why: &why,
                man: "mount(2)",
            },
            || {
                crate::runtime::userns::in_mount_namespace_of(child, || {
                    nix::unistd::chdir(points.as_c_str())?;
                    for (n, tree) in trees.iter().enumerate() {
                        let point = CString::new(n.to_string()).expect("digits");
                        crate::runtime::userns::move_mount_to(tree, &point)?;
                    }
                    // nodev: a device node an image ships must not open a host
                    // device (the container's /dev is its own tmpfs).
                    nix::mount::mount(
                        Some("overlay"),
                        target,
                        Some("overlay"),
                        MsFlags::MS_NODEV,
                        Some(options.as_str()),
                    )?;
                    // The layers' attachments stay: each umount2(2) would
                    // wait for an RCU grace period of its own (milliseconds
                    // apiece), while the container's pivot_root drops them
                    // all with the old root, in one; and this namespace,
                    // the only other one that has them, ends with the
                    // container.
                    Ok(())
                })
            },
        )
    }
    // ANCHOR_END: mount_for

    /// Without root: from inside the child, once it is root of its user
    /// namespace and has a mount namespace of its own, the stack mounted
    /// onto `target` (unprivileged overlayfs, Linux 5.11). The layers are
    /// the user's own files, which the user namespace already maps to its
    /// root; `userxattr` makes overlayfs keep its marks in `user.overlay.*`
    /// xattrs, which an unprivileged user may write.
    pub fn mount_inside(&self, narrator: &Narrator, target: &Path) -> Result<(), LabError> {
        let (store, names) = self.layers_by_name();
        let options = self.options(&names, true) + ",userxattr";
        let args = format!(
            "\"overlay\", {:?}, \"overlay\", MS_NODEV, \"{options}\"",
            target.display().to_string()
        );
        let why = format!(
            "root of this user namespace stacks the image's {} layer(s) (cwd {}) under the container's own writable layer",
            self.lowers.len(),
            store.display()
        );
        narrator.run(
            Step {
                syscall: "mount",
                args: &args,
                why: &why,
                man: "mount(2)",
            },
            || {
                nix::unistd::chdir(&store)?;
                nix::mount::mount(
                    Some("overlay"),
                    target,
                    Some("overlay"),
                    MsFlags::MS_NODEV,
                    Some(options.as_str()),
                )
            },
        )
    }
}

/// Run `work` in a child process with a user namespace and a mount
/// namespace of its own (its user is that namespace's root, mapped to
/// ours alone), and bring its answer back as JSON on a pipe.
fn in_own_user_namespace<T: Serialize + DeserializeOwned>(
    work: impl FnOnce() -> Result<T, LabError>,
) -> Result<T, LabError> {
    use std::io::{Read, Write};
    type Answer<T> = Result<T, (i32, String, Option<String>)>;
    let (uid, gid) = (nix::unistd::getuid(), nix::unistd::getgid());
    let (read, write) = crate::runtime::sync::cloexec_pipe()?;
    // SAFETY: the child only makes namespaces, mounts, reads files and
    // writes to the pipe before _exit(2).
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Child) => {
            drop(read);
            let answer: Answer<T> = (|| {
                let as_lab_error = |errno| LabError::StepFailed {
                    syscall: "unshare",
                    target: "CLONE_NEWUSER|CLONE_NEWNS".into(),
                    errno,
                };
                nix::sched::unshare(
                    nix::sched::CloneFlags::CLONE_NEWUSER | nix::sched::CloneFlags::CLONE_NEWNS,
                )
                .map_err(as_lab_error)?;
                // user_namespaces(7): setgroups must be denied before an
                // unprivileged process may write its gid_map.
                for (file, text) in [
                    ("setgroups", "deny".to_string()),
                    ("uid_map", format!("0 {uid} 1")),
                    ("gid_map", format!("0 {gid} 1")),
                ] {
                    let path = format!("/proc/self/{file}");
                    std::fs::write(&path, text).map_err(|e| LabError::io("write", &path, e))?;
                }
                work()
            })()
            .map_err(|error| (error.exit_code(), error.to_string(), error.hint()));
            let mut pipe = std::fs::File::from(write);
            let _ = pipe.write_all(&serde_json::to_vec(&answer).unwrap_or_default());
            drop(pipe);
            // SAFETY: _exit ends the child without running the parent's exit handlers.
            unsafe { libc::_exit(0) }
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => {
            drop(write);
            let mut bytes = Vec::new();
            let _ = std::fs::File::from(read).read_to_end(&mut bytes);
            let _ = nix::sys::wait::waitpid(child, None);
            let answer: Answer<T> =
                serde_json::from_slice(&bytes).map_err(|_| LabError::RuntimeGaveUp)?;
            answer.map_err(|(exit_code, message, hint)| LabError::InChild {
                exit_code,
                message,
                hint,
            })
        }
        Err(errno) => Err(LabError::StepFailed {
            syscall: "fork",
            target: "the image's view".into(),
            errno,
        }),
    }
}

impl Drop for LayeredRoot {
    fn drop(&mut self) {
        // Mounted only in the child's namespace: empty directories here.
        let _ = std::fs::remove_dir_all(&self.layer_points);
    }
}
