//! Root filesystems: where the lab finds one, and how it builds one.
//!
//! A container's `/` is an ordinary directory holding programs, their
//! libraries and a few files in /etc. The chapters take it as ROOTFS; when
//! none is given they use `$CONTAINER_LAB_ROOTFS`, or else
//! `/var/lib/container-lab/rootfs`. The shell scripts in `rootfs-scripts/`
//! build one; `lab rootfs` runs them and adds the lab's own tools.

use crate::error::LabError;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the lab keeps its default rootfs.
pub const DEFAULT_ROOTFS: &str = "/var/lib/container-lab/rootfs";
/// Environment variable that overrides [`DEFAULT_ROOTFS`].
pub const ROOTFS_ENV: &str = "CONTAINER_LAB_ROOTFS";
/// The rootfs scripts of the source tree the binaries were built from.
pub const SCRIPTS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/rootfs-scripts");

/// Where the rootfs scripts are: a `rootfs-scripts` directory beside the
/// running binary when there is one (binaries copied elsewhere, with their
/// scripts, for users who cannot enter the source tree), else the source
/// tree's.
pub fn scripts_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join("rootfs-scripts")))
        .filter(|dir| dir.join("host.sh").is_file())
        .unwrap_or_else(|| PathBuf::from(SCRIPTS_DIR))
}
/// Programs of this package that `lab rootfs` installs into /usr/local/bin.
pub const IN_CONTAINER_TOOLS: [&str; 2] = ["lab-breakout", "lab-probe"];

/// The ways to build a rootfs, one script each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Variant {
    /// The host's own shell and tools with their libraries (offline, default).
    Host,
    /// One static busybox (needs the busybox-static package).
    Busybox,
    /// Alpine's minirootfs (downloads it, checks its SHA-256).
    Alpine,
    /// Debian minbase via debootstrap (needs debootstrap and a mirror).
    Debian,
}

impl Variant {
    pub fn script(self) -> PathBuf {
        let name = match self {
            Variant::Host => "host.sh",
            Variant::Busybox => "busybox.sh",
            Variant::Alpine => "alpine.sh",
            Variant::Debian => "debian.sh",
        };
        scripts_dir().join(name)
    }
}

/// The rootfs to use when the user named none.
pub fn default_path() -> PathBuf {
    std::env::var_os(ROOTFS_ENV)
        .filter(|value| !value.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOTFS))
}

/// Check that `given` (or the default) is a directory we can use as `/`.
pub fn locate(given: Option<&Path>) -> Result<PathBuf, LabError> {
    let path = given.map(Path::to_path_buf).unwrap_or_else(default_path);
    match std::fs::metadata(&path) {
        Ok(meta) if meta.is_dir() => Ok(path),
        Ok(_) => Err(LabError::RootfsNotDirectory { path }),
        // There, but a directory on the way does not let this user through.
        Err(error) if error.kind() == std::io::ErrorKind::PermissionDenied => {
            Err(LabError::Refused {
                message: format!(
                    "rootfs {}: {}",
                    path.display(),
                    crate::error::describe_errno(crate::error::errno_of(&error))
                ),
                hint: "a directory on the way to it is closed to you: use a rootfs under a directory you can enter (lab rootfs ~/rootfs)".into(),
            })
        }
        Err(_) => Err(LabError::RootfsMissing {
            hint: format!(
                "build it with: sudo {} rootfs {}",
                lab_binary().display(),
                path.display()
            ),
            path,
        }),
    }
}

/// The absolute path of `rootfs`, checked to hold each of `dirs`: the
/// chapters mount over them and never create anything in the rootfs.
pub fn require_mount_points(rootfs: &Path, dirs: &[&str]) -> Result<PathBuf, LabError> {
    let absolute = std::fs::canonicalize(rootfs)
        .map_err(|error| LabError::io("realpath", rootfs.display(), error))?;
    for dir in dirs {
        if !absolute.join(dir).is_dir() {
            return Err(LabError::RootfsIncomplete {
                path: absolute.clone(),
                missing: format!("/{dir}"),
            });
        }
    }
    Ok(absolute)
}

/// The `lab` driver next to the running binary (cargo puts them together).
pub fn lab_binary() -> PathBuf {
    sibling("lab")
}

/// A program of this package, found next to the running binary.
pub fn sibling(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(name)))
        .unwrap_or_else(|| PathBuf::from(name))
}

/// Build a rootfs of `variant` in `dir` and install the lab's tools into it.
pub fn build(variant: Variant, dir: &Path) -> Result<(), LabError> {
    let tools = tool_paths()?;
    run_script(&variant.script(), &[dir.as_os_str()])?;
    install(dir, &tools)
}

/// Copy this build's in-container tools into `dir`, so a rootfs built by
/// an older build never runs an older probe.
pub fn install_tools(dir: &Path) -> Result<(), LabError> {
    install(dir, &tool_paths()?)
}

fn tool_paths() -> Result<Vec<PathBuf>, LabError> {
    let tools: Vec<PathBuf> = IN_CONTAINER_TOOLS.iter().map(|t| sibling(t)).collect();
    match tools.iter().find(|tool| !tool.is_file()) {
        Some(missing) => Err(LabError::ToolMissing {
            path: missing.clone(),
        }),
        None => Ok(tools),
    }
}

fn install(dir: &Path, tools: &[PathBuf]) -> Result<(), LabError> {
    let mut args = vec![dir.as_os_str()];
    args.extend(tools.iter().map(|t| t.as_os_str()));
    run_script(&scripts_dir().join("install-tools.sh"), &args)
}

fn run_script(script: &Path, args: &[&std::ffi::OsStr]) -> Result<(), LabError> {
    let status = Command::new("bash")
        .arg(script)
        .args(args)
        .status()
        .map_err(|error| LabError::io("execve", format!("bash {}", script.display()), error))?;
    if status.success() {
        Ok(())
    } else {
        Err(LabError::Script {
            script: script.to_path_buf(),
            status: status.code().unwrap_or(-1),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_rootfs_hint_names_the_build_command() {
        let error = locate(Some(Path::new("/nonexistent/lab-rootfs"))).unwrap_err();
        assert_eq!(
            error.to_string(),
            "rootfs /nonexistent/lab-rootfs not found"
        );
        let hint = error.hint().unwrap();
        assert!(hint.starts_with("build it with: sudo "), "{hint}");
        assert!(hint.ends_with(" rootfs /nonexistent/lab-rootfs"), "{hint}");
    }

    #[test]
    fn a_file_is_not_a_rootfs() {
        let error = locate(Some(Path::new("/etc/hostname"))).unwrap_err();
        assert_eq!(error.exit_code(), 125);
        assert!(error.to_string().ends_with("is not a directory"));
    }

    #[test]
    fn every_variant_has_its_script() {
        use clap::ValueEnum;
        for variant in Variant::value_variants() {
            assert!(variant.script().is_file(), "{:?}", variant.script());
        }
    }
}
