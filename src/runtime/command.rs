//! Finding COMMAND the way the container will see it.
//!
//! The runtime checks, before it forks, that the command exists inside the
//! root the container will get, so a typo is one clear error with exit code
//! 127 instead of a failed exec deep inside a half-built container. Paths are
//! resolved with openat2(2) and RESOLVE_IN_ROOT: an absolute symlink in the
//! rootfs (`bin -> /usr/bin`) then resolves inside the rootfs, as it will
//! after chroot, and never escapes to the host.

use crate::error::LabError;
use crate::narrator::{Narrator, Step};
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, open, openat2};
use nix::sys::stat::{Mode, SFlag, fstat};
use std::ffi::{CString, OsString};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The PATH searched when the runtime's environment has none (the same
/// default Docker gives a container).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A command ready for execve(2): the path inside the container's root,
/// argv as the user typed it, and the environment it starts with (`None`:
/// the runtime's own, as a plain process or a chroot gets it).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Command {
    pub path: CString,
    pub argv: Vec<CString>,
    pub environment: Option<Vec<CString>>,
}

impl Command {
    /// `argv[0]` followed by the arguments, for narration: `"sh" "-c" "echo hi"`.
    pub fn display_argv(&self) -> String {
        self.argv
            .iter()
            .map(|arg| format!("{:?}", arg.to_string_lossy()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Resolve `words[0]` inside `root` (`/` for a process on the host),
/// searching the runtime's `PATH` when it has no slash, like execvp(3) will;
/// the command inherits the runtime's environment.
pub fn resolve(root: &Path, words: &[OsString]) -> Result<Command, LabError> {
    let search = std::env::var_os("PATH").unwrap_or_else(|| DEFAULT_PATH.into());
    resolve_searching(root, words, &search, None)
}

// ANCHOR: clean_environment
/// Resolve the command for a container that starts from an environment of
/// its own (`clean_environment`), searching that environment's PATH.
pub fn resolve_with_environment(
    root: &Path,
    words: &[OsString],
    environment: Vec<(String, String)>,
) -> Result<Command, LabError> {
    let search = environment
        .iter()
        .find(|(key, _)| key == "PATH")
        .map_or(DEFAULT_PATH, |(_, value)| value.as_str())
        .to_string();
    let envp = environment
        .into_iter()
        .map(|(key, value)| {
            CString::new(format!("{key}={value}")).map_err(|_| LabError::Usage {
                message: format!("-e {key}: the value contains a NUL byte"),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    resolve_searching(root, words, search.as_ref(), Some(envp))
}

/// The environment a container starts with, as Docker and podman build it
/// and as FreeBSD's jail(8) does with `exec.clean`: PATH, HOME, HOSTNAME,
/// TERM when the runtime has a terminal, then each `-e KEY=VALUE` (or
/// `-e KEY`, which takes the runtime's value). Nothing else of the
/// runtime's environment (tokens, proxies, SSH agent sockets, sudo's
/// SUDO_USER) reaches the container.
pub fn clean_environment(
    hostname: &str,
    extra: &[String],
) -> Result<Vec<(String, String)>, LabError> {
    let mut environment = vec![
        ("PATH".to_string(), DEFAULT_PATH.to_string()),
        ("HOME".to_string(), "/root".to_string()),
        ("HOSTNAME".to_string(), hostname.to_string()),
    ];
    if std::io::IsTerminal::is_terminal(&std::io::stdin())
        && let Ok(term) = std::env::var("TERM")
    {
        environment.push(("TERM".to_string(), term));
    }
    for setting in extra {
        let (key, value) = match setting.split_once('=') {
            Some((key, value)) => (key.to_string(), value.to_string()),
            None => match std::env::var(setting) {
                Ok(value) => (setting.clone(), value),
                Err(_) => continue, // `-e KEY` with KEY unset: left out, as Docker does
            },
        };
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(LabError::Usage {
                message: format!("-e {setting:?}: expected KEY=VALUE or KEY"),
            });
        }
        environment.retain(|(existing, _)| *existing != key);
        environment.push((key, value));
    }
    Ok(environment)
}
// ANCHOR_END: clean_environment

fn resolve_searching(
    root: &Path,
    words: &[OsString],
    search: &std::ffi::OsStr,
    environment: Option<Vec<CString>>,
) -> Result<Command, LabError> {
    let name = &words[0];
    let argv = words
        .iter()
        .map(|word| {
            CString::new(word.as_bytes()).map_err(|_| LabError::Usage {
                message: format!("argument {word:?} contains a NUL byte"),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let not_found = || LabError::CommandNotFound {
        command: name.to_string_lossy().into_owned(),
        root: root.to_path_buf(),
    };
    let root_dir = open(
        root,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|errno| LabError::StepFailed {
        syscall: "open",
        target: root.display().to_string(),
        errno,
    })?;

    let path = if name.as_bytes().contains(&b'/') {
        let in_root = absolute_in_root(root, Path::new(name));
        lookup(&root_dir, &in_root).ok_or_else(not_found)?;
        in_root
    } else {
        std::env::split_paths(search)
            .filter(|dir| dir.is_absolute())
            .map(|dir| dir.join(name))
            .find(|candidate| lookup(&root_dir, candidate).is_some_and(|kind| kind.executable))
            .ok_or_else(not_found)?
    };
    Ok(Command {
        path: CString::new(path.as_os_str().as_bytes()).expect("built from NUL-free parts"),
        argv,
        environment,
    })
}

/// After chroot the child's working directory is the new `/`, so a relative
/// path is relative to the root; on the host it is relative to where we are.
fn absolute_in_root(root: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else if root == Path::new("/") {
        std::env::current_dir().unwrap_or_default().join(path)
    } else {
        Path::new("/").join(path)
    }
}

struct Found {
    executable: bool,
}

fn lookup(root_dir: &OwnedFd, path: &Path) -> Option<Found> {
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT);
    let relative = path.strip_prefix("/").unwrap_or(path);
    let file = openat2(root_dir, relative, how).ok()?;
    let st = fstat(&file).ok()?;
    let is_file = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG;
    Some(Found {
        executable: is_file && st.st_mode & 0o111 != 0,
    })
}

/// chdir(2) into the command's working directory (`-w`), inside the
/// container's root: a directory that is not there is an error, as in
/// Docker, not something the runtime creates behind the user's back.
pub fn enter_workdir(narrator: &Narrator, dir: &Path) -> Result<(), LabError> {
    let args = format!("{:?}", dir.display().to_string());
    narrator.run(
        Step {
            syscall: "chdir",
            args: &args,
            why: "the command starts in the working directory asked for with -w",
            man: "chdir(2)",
        },
        || nix::unistd::chdir(dir),
    )
}

// ANCHOR: user
/// The user a command runs as (`--user`, or the image's `User`):
/// `uid[:gid]`, or `name[:group]` looked up in the container's own
/// /etc/passwd and /etc/group, as Docker does, never in the host's. The
/// files are opened with RESOLVE_IN_ROOT: an image whose /etc/passwd is a
/// symlink to `/etc/shadow` reads its own, not the host's.
pub fn resolve_user(root: &Path, spec: &str) -> Result<(u32, u32), LabError> {
    let (user, group) = match spec.split_once(':') {
        Some((user, group)) => (user, Some(group)),
        None => (spec, None),
    };
    let unknown = |what: &str, name: &str| LabError::Refused {
        message: format!(
            "no {what} {name:?} in the container's /etc/{}",
            if what == "user" { "passwd" } else { "group" }
        ),
        hint: "give a number (--user 1000:1000), or a name the image's own files list".into(),
    };
    let entries = |file: &str| -> Vec<Vec<String>> {
        let root_dir = open(
            root,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        );
        let how = OpenHow::new()
            .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT);
        let text = root_dir
            .and_then(|dir| openat2(&dir, file, how))
            .ok()
            .and_then(|fd| std::io::read_to_string(std::fs::File::from(fd)).ok())
            .unwrap_or_default();
        text.lines()
            .map(|line| line.split(':').map(str::to_string).collect())
            .collect()
    };
    let (uid, primary_gid) = match user.parse::<u32>() {
        Ok(uid) => {
            let gid = entries("etc/passwd")
                .into_iter()
                .find(|fields| fields.get(2).is_some_and(|f| f.parse() == Ok(uid)))
                .and_then(|fields| fields.get(3)?.parse().ok());
            (uid, gid.unwrap_or(0))
        }
        Err(_) => entries("etc/passwd")
            .into_iter()
            .find(|fields| fields.first().map(String::as_str) == Some(user))
            .and_then(|fields| Some((fields.get(2)?.parse().ok()?, fields.get(3)?.parse().ok()?)))
            .ok_or_else(|| unknown("user", user))?,
    };
    let gid = match group {
        None => primary_gid,
        Some(group) => match group.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => entries("etc/group")
                .into_iter()
                .find(|fields| fields.first().map(String::as_str) == Some(group))
                .and_then(|fields| fields.get(2)?.parse().ok())
                .ok_or_else(|| unknown("group", group))?,
        },
    };
    Ok((uid, gid))
}

/// Become that user, last of all the setup steps: setgroups(2) to that
/// group alone (root's supplementary groups must not stay behind),
/// setgid(2), then setuid(2), which leaves no capability behind.
pub fn become_user(narrator: &Narrator, uid: u32, gid: u32) -> Result<(), LabError> {
    let args = format!("[{gid}]; setgid({gid}); setuid({uid})");
    narrator.run(
        Step {
            syscall: "setgroups",
            args: &args,
            why: "the command runs as the user the image (or --user) asks for, with no capability left",
            man: "setgroups(2)",
        },
        || {
            let gid = nix::unistd::Gid::from_raw(gid);
            nix::unistd::setgroups(&[gid])?;
            nix::unistd::setgid(gid)?;
            nix::unistd::setuid(nix::unistd::Uid::from_raw(uid))
        },
    )
}
// ANCHOR_END: user

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    #[test]
    fn users_are_numbers_or_names_from_the_containers_own_files() {
        let root = fake_root("users");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(
            root.join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nweb:x:1000:1001::/home:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(root.join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
        assert_eq!(resolve_user(&root, "web").unwrap(), (1000, 1001));
        assert_eq!(resolve_user(&root, "1000").unwrap(), (1000, 1001));
        assert_eq!(resolve_user(&root, "web:staff").unwrap(), (1000, 50));
        assert_eq!(resolve_user(&root, "77:78").unwrap(), (77, 78));
        assert_eq!(resolve_user(&root, "4242").unwrap(), (4242, 0));
        assert!(resolve_user(&root, "nobody-here").is_err());
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn a_clean_environment_starts_small_and_takes_settings_in_order() {
        let set = [
            "A=1".to_string(),
            "PATH=/bin".to_string(),
            "A=2".to_string(),
        ];
        let environment = clean_environment("box", &set).unwrap();
        let keys: Vec<&str> = environment.iter().map(|(key, _)| key.as_str()).collect();
        assert!(keys.starts_with(&["HOME", "HOSTNAME"]), "{keys:?}");
        assert!(environment.contains(&("PATH".into(), "/bin".into())));
        assert!(environment.contains(&("A".into(), "2".into())));
        assert_eq!(keys.iter().filter(|key| **key == "A").count(), 1);
        for bad in ["=x", "TWO WORDS=x"] {
            assert!(
                clean_environment("box", &[bad.to_string()]).is_err(),
                "{bad}"
            );
        }
    }

    fn fake_root(test: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("lab-command-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("usr/bin")).unwrap();
        std::fs::write(dir.join("usr/bin/tool"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(
            dir.join("usr/bin/tool"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::fs::write(dir.join("usr/bin/data"), "not a program").unwrap();
        // An absolute symlink, as merged-/usr distributions have.
        symlink("/usr/bin", dir.join("bin")).unwrap();
        dir
    }

    fn words(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn absolute_symlink_resolves_inside_the_root() {
        let root = fake_root("symlink");
        let command = resolve(&root, &words(&["/bin/tool", "x"])).unwrap();
        assert_eq!(command.path.to_str().unwrap(), "/bin/tool");
        assert_eq!(command.display_argv(), "\"/bin/tool\", \"x\"");
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn missing_command_is_127_and_names_the_rootfs() {
        let root = fake_root("missing");
        let error = resolve(&root, &words(&["/bin/nope"])).unwrap_err();
        assert_eq!(error.exit_code(), 127);
        assert!(error.to_string().contains("not found in rootfs"), "{error}");
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn escaping_symlink_does_not_reach_the_host() {
        let root = fake_root("escape");
        // /etc/passwd exists on the host, but not in this root.
        symlink("../../../../../../etc/passwd", root.join("usr/bin/escape")).unwrap();
        assert!(resolve(&root, &words(&["/usr/bin/escape"])).is_err());
        std::fs::remove_dir_all(root).unwrap();
    }
}
