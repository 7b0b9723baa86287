//! What `-v` and `--tmpfs` say (ch08), parsed and checked before anything
//! is made: a host path, a named volume or a tmpfs, and where in the
//! container it goes. Plain data: the container's record keeps it (`state`),
//! `volumes` attaches it.

use serde::{Deserialize, Serialize};
use std::path::{Component, Path, PathBuf};

/// One `-v` or `--tmpfs` of a run, as given (and kept in the container's
/// record: `volume rm` looks for the volumes records name).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum MountSpec {
    /// A host directory or file, by its absolute path.
    Bind {
        source: PathBuf,
        target: PathBuf,
        read_only: bool,
    },
    /// A named volume of the lab's storage.
    Volume {
        name: String,
        target: PathBuf,
        read_only: bool,
    },
    /// A tmpfs, with tmpfs(5)'s options (size=, mode=, ...) and flags.
    Tmpfs {
        target: PathBuf,
        options: Vec<String>,
    },
}

impl MountSpec {
    pub fn target(&self) -> &Path {
        match self {
            MountSpec::Bind { target, .. }
            | MountSpec::Volume { target, .. }
            | MountSpec::Tmpfs { target, .. } => target,
        }
    }

    /// The named volume this mount uses, if it is one.
    pub fn volume(&self) -> Option<&str> {
        match self {
            MountSpec::Volume { name, .. } => Some(name),
            _ => None,
        }
    }
}

// ANCHOR: parse
/// `-v SOURCE:TARGET[:ro|:rw]`, Docker's short form: SOURCE is a host path
/// when it starts with `/`, else a volume name. A bare `-v /dir` (Docker's
/// anonymous volume) and a relative host path are refused.
pub fn parse_volume(text: &str) -> Result<MountSpec, String> {
    let parts: Vec<&str> = text.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [_] => {
            return Err(
                "no container path: give HOST_DIR:CONTAINER_DIR or NAME:CONTAINER_DIR (anonymous volumes are not supported)"
                .into(),
            );
        }
        [source, target] => (*source, *target, None),
        [source, target, mode] => (*source, *target, Some(*mode)),
        _ => {
            return Err("too many ':' (SOURCE:CONTAINER_DIR[:ro|:rw])".into());
        }
    };
    let read_only = match mode {
        None | Some("rw") => false,
        Some("ro") => true,
        Some(other) => return Err(format!("unknown mode '{other}': ro or rw")),
    };
    let target = container_path(target)?;
    if source.starts_with('/') {
        if Path::new(source)
            .components()
            .any(|c| c == Component::ParentDir)
        {
            return Err("the host path may not contain '..'".into());
        }
        return Ok(MountSpec::Bind {
            source: PathBuf::from(source),
            target,
            read_only,
        });
    }
    check_volume_name(source)
        .map_err(|why| format!("{why}; a host directory is given by its absolute path"))?;
    Ok(MountSpec::Volume {
        name: source.to_string(),
        target,
        read_only,
    })
}
// ANCHOR_END: parse

/// A volume name as Docker takes it: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`, which
/// also keeps it one directory name in the storage.
pub fn check_volume_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    match first_ok && rest_ok && name.len() >= 2 {
        true => Ok(()),
        false => Err(format!(
            "'{name}' is not a volume name ([a-zA-Z0-9][a-zA-Z0-9_.-]+)"
        )),
    }
}

/// `--tmpfs PATH[:OPTIONS]`: OPTIONS a comma list of tmpfs(5)'s size=,
/// mode=, uid=, gid=, nr_inodes= and the flags ro, rw, exec, noexec.
/// nosuid and nodev always (as Docker's default): `suid` and `dev` are
/// refused.
pub fn parse_tmpfs(text: &str) -> Result<MountSpec, String> {
    let (path, options) = match text.split_once(':') {
        Some((path, options)) => (path, options),
        None => (text, ""),
    };
    let target = container_path(path)?;
    let mut kept = Vec::new();
    for option in options.split(',').filter(|o| !o.is_empty()) {
        let known = match option.split_once('=') {
            Some((key, value)) => {
                ["size", "mode", "uid", "gid", "nr_inodes", "nr_blocks"].contains(&key)
                    && !value.is_empty()
                    && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '%')
            }
            None => ["ro", "rw", "exec", "noexec", "nosuid", "nodev"].contains(&option),
        };
        if !known {
            return Err(format!(
                "unknown tmpfs option '{option}' (size=, mode=, uid=, gid=, nr_inodes=, ro, rw, exec, noexec)"
            ));
        }
        kept.push(option.to_string());
    }
    Ok(MountSpec::Tmpfs {
        target,
        options: kept,
    })
}

/// A target inside the container: absolute, cleaned (`.` and `//` gone),
/// no `..`, not `/` itself and not under /proc, /sys or /dev, which the
/// runtime mounts itself.
fn container_path(text: &str) -> Result<PathBuf, String> {
    let path = Path::new(text);
    if !path.is_absolute() {
        return Err(format!(
            "the container path '{text}' is not absolute (it must start with /)"
        ));
    }
    let mut clean = PathBuf::from("/");
    for component in path.components() {
        match component {
            Component::Normal(part) => clean.push(part),
            Component::ParentDir => {
                return Err(format!("the container path '{text}' may not contain '..'"));
            }
            _ => {}
        }
    }
    forbidden(&clean).map_or(Ok(clean), Err)
}

/// Why a mount may not go on `inside` (a path in the container), if not.
pub(crate) fn forbidden(inside: &Path) -> Option<String> {
    if inside == Path::new("/") {
        return Some("cannot mount over the container's root /".into());
    }
    ["/proc", "/sys", "/dev"]
        .iter()
        .find(|kernel| inside.starts_with(kernel))
        .map(|kernel| {
            format!(
                "{} is under {kernel}, which the runtime mounts for the kernel",
                inside.display()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bind(source: &str, target: &str, read_only: bool) -> MountSpec {
        MountSpec::Bind {
            source: source.into(),
            target: target.into(),
            read_only,
        }
    }

    #[test]
    fn host_paths_and_volume_names_are_told_apart() {
        assert_eq!(
            parse_volume("/srv/data:/data"),
            Ok(bind("/srv/data", "/data", false))
        );
        assert_eq!(
            parse_volume("/srv/data:/data:ro"),
            Ok(bind("/srv/data", "/data", true))
        );
        assert_eq!(
            parse_volume("/srv/data:/data/./x//:rw"),
            Ok(bind("/srv/data", "/data/x", false))
        );
        assert_eq!(
            parse_volume("cache.v1:/var/cache:ro"),
            Ok(MountSpec::Volume {
                name: "cache.v1".into(),
                target: "/var/cache".into(),
                read_only: true
            })
        );
    }

    #[test]
    fn bad_volumes_are_refused_with_the_reason() {
        let refused = |text: &str, why: &str| {
            let error = parse_volume(text).unwrap_err();
            assert!(error.contains(why), "{text}: {error}");
            assert!(!error.contains('\n'), "{error}");
        };
        refused("./relative:/x", "not a volume name");
        refused("rel/dir:/x", "absolute path");
        refused("/x", "no container path");
        refused("/host:relative", "not absolute");
        refused("/host:/x:rx", "unknown mode 'rx'");
        refused("/host:/x:ro:z", "too many");
        refused("/host:/", "root /");
        refused("/host:/proc/x", "under /proc");
        refused("/host:/sys", "under /sys");
        refused("/host:/dev/shm", "under /dev");
        refused("/host:/a/../etc", "'..'");
        refused("/a/../b:/x", "'..'");
        refused("x:/y", "not a volume name");
        refused("-v:/y", "not a volume name");
        // /devices is not /dev.
        assert!(parse_volume("/host:/devices").is_ok());
    }
}
