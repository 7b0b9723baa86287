//! One error type for every chapter, mapped to Docker's exit codes.
//!
//! Messages are one lowercase line naming the step, the path and the errno;
//! a hint says what to do about it. A runtime failure exits 125, a command
//! that is not executable 126, a command that is not found 127 (the codes
//! `docker run` uses, documented in docker-run(1) under "Exit Status").

use nix::errno::Errno;
use std::fmt;
use std::path::PathBuf;

/// The runtime itself failed (bad input, a syscall that went wrong).
pub const EXIT_RUNTIME_FAILURE: i32 = 125;
/// A management command (stop, rm, ...) failed: docker's CLI exits 1.
pub const EXIT_MANAGEMENT_FAILURE: i32 = 1;
/// The command exists but cannot be executed.
pub const EXIT_NOT_EXECUTABLE: i32 = 126;
/// The command does not exist.
pub const EXIT_NOT_FOUND: i32 = 127;

#[derive(Debug)]
pub enum LabError {
    /// The command line could not be parsed.
    Usage { message: String },
    /// ROOTFS does not exist.
    RootfsMissing { path: PathBuf, hint: String },
    /// ROOTFS exists but is not a directory.
    RootfsNotDirectory { path: PathBuf },
    /// ROOTFS lacks a directory the chapter mounts something on.
    RootfsIncomplete { path: PathBuf, missing: String },
    /// COMMAND is not inside the root the container will see.
    CommandNotFound { command: String, root: PathBuf },
    /// COMMAND was found but the kernel refused to execute it.
    CommandNotExecutable { command: String, errno: Errno },
    /// The runtime lacks a capability one of its steps needs.
    MissingCapability {
        capability: &'static str,
        needed_for: &'static str,
        /// The command line to repeat with sudo.
        command_line: String,
    },
    /// A narrated step (one syscall) failed.
    StepFailed {
        syscall: &'static str,
        target: String,
        errno: Errno,
    },
    /// `--step` was asked for but there is no terminal to wait on.
    NoTerminal { errno: Errno },
    /// A program of the lab that goes into every rootfs was not built.
    ToolMissing { path: PathBuf },
    /// The probe did not report properly from inside a chapter.
    Probe { chapter: String, message: String },
    /// A rootfs-building script failed (it printed why).
    Script { script: PathBuf, status: i32 },
    /// A program the lab runs (newuidmap, pasta, cp, runc) failed; what it said.
    ToolFailed { command: String, message: String },
    /// What was asked cannot be had: a port in use, a subnet taken, a shared rootfs.
    Refused { message: String, hint: String },
    /// A management command (ps, stop, rm, ...) could not do what was asked:
    /// no such container, a running one to remove. Exit 1, as docker's.
    Container { message: String, hint: String },
    /// An image verb (pull, load, rmi, ...) could not do what was asked: no
    /// such image, a digest that does not match, a hostile archive. Exit 1,
    /// as docker's.
    Image { message: String, hint: String },
    /// The runtime refused to go on with a handshake (it reports why).
    RuntimeGaveUp,
    /// Something happened in the child between fork and exec; the child
    /// already formatted it, the parent only relays it.
    InChild {
        exit_code: i32,
        message: String,
        hint: Option<String>,
    },
}

impl LabError {
    /// The exit code the runtime ends with for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            LabError::CommandNotFound { .. } => EXIT_NOT_FOUND,
            LabError::CommandNotExecutable { errno, .. } if *errno == Errno::ENOENT => {
                EXIT_NOT_FOUND
            }
            LabError::CommandNotExecutable { .. } => EXIT_NOT_EXECUTABLE,
            LabError::InChild { exit_code, .. } => *exit_code,
            LabError::Container { .. } | LabError::Image { .. } => EXIT_MANAGEMENT_FAILURE,
            _ => EXIT_RUNTIME_FAILURE,
        }
    }

    /// What the user can do about it, if we know.
    pub fn hint(&self) -> Option<String> {
        match self {
            LabError::Usage { .. } => Some("see --help for usage and examples".into()),
            LabError::RootfsMissing { hint, .. } => Some(hint.clone()),
            LabError::RootfsNotDirectory { .. } => {
                Some("ROOTFS must be a directory holding a root filesystem (bin/, etc/, ...)".into())
            }
            LabError::RootfsIncomplete { path, missing } => Some(format!(
                "create it (mkdir {}{missing}); the runtime never modifies a rootfs on disk",
                path.display()
            )),
            LabError::CommandNotFound { root, .. } if root.as_os_str() == "/" => {
                Some("check the spelling, or give the full path".into())
            }
            LabError::CommandNotFound { root, .. } => Some(format!(
                "the command must exist inside the rootfs: look in {} (PATH is searched there, not on the host)",
                root.display()
            )),
            LabError::CommandNotExecutable { errno, .. } if *errno == Errno::ENOENT => Some(
                "the file exists but its interpreter or dynamic loader does not: copy it into the rootfs too".into(),
            ),
            LabError::CommandNotExecutable { errno, .. } if *errno == Errno::ENOEXEC => Some(
                "the kernel does not know its format: a script needs a #! line, a binary must be built for this machine".into(),
            ),
            LabError::CommandNotExecutable { .. } => {
                Some("make it executable (chmod +x) or run it through a shell".into())
            }
            LabError::MissingCapability { command_line, .. } => {
                Some(format!("run it as root: sudo {command_line}"))
            }
            LabError::StepFailed { errno, .. } if *errno == Errno::EPERM => {
                Some("this step needs privileges: run as root".into())
            }
            LabError::StepFailed { errno, .. } if *errno == Errno::ESRCH => {
                Some("that process has exited: the container is no longer running".into())
            }
            LabError::StepFailed { .. } => None,
            LabError::NoTerminal { .. } => {
                Some("run it from a terminal, or use --explain, which does not pause".into())
            }
            LabError::ToolMissing { .. } => {
                Some("build all the lab's binaries first: cargo build --release".into())
            }
            LabError::Probe { .. } => Some(
                "run the chapter by hand with /usr/local/bin/lab-probe as its command to see why".into(),
            ),
            LabError::Script { .. } => Some("its own error message is just above".into()),
            LabError::InChild { hint, .. } => hint.clone(),
            LabError::RuntimeGaveUp => None,
            LabError::ToolFailed { command, message } if message.starts_with("cannot run") => {
                let package = match command.split_whitespace().next().unwrap_or("") {
                    "newuidmap" | "newgidmap" => "uidmap",
                    "pasta" => "passt",
                    "runc" => "runc",
                    _ => "coreutils",
                };
                Some(format!("install it: apt-get install {package}"))
            }
            LabError::ToolFailed { command, .. } if command.starts_with("pasta") => Some(
                "that is pasta's own word; `lab doctor` checks what it needs (the passt package, /dev/net/tun)".into(),
            ),
            LabError::ToolFailed { .. } => None,
            LabError::Refused { hint, .. }
            | LabError::Container { hint, .. }
            | LabError::Image { hint, .. } => {
                Some(hint.clone())
            }
        }
    }
}

/// The errno an I/O error from std carries (0 when it carries none), so
/// that errors from std keep their errno like those from nix.
pub fn errno_of(error: &std::io::Error) -> Errno {
    Errno::from_raw(error.raw_os_error().unwrap_or(0))
}

impl LabError {
    /// A failed step that std performed (`syscall` on `target`).
    pub fn io(syscall: &'static str, target: impl fmt::Display, error: std::io::Error) -> LabError {
        LabError::StepFailed {
            syscall,
            target: target.to_string(),
            errno: errno_of(&error),
        }
    }
}

/// An errno as `no such file or directory (ENOENT)`: lowercase, with the
/// symbolic name so it can be looked up in errno(3).
pub fn describe_errno(errno: Errno) -> String {
    let text = errno.desc();
    let mut chars = text.chars();
    let lower_first = match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    };
    format!("{lower_first} ({errno:?})")
}

impl fmt::Display for LabError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LabError::Usage { message } => write!(f, "{message}"),
            LabError::RootfsMissing { path, .. } => {
                write!(f, "rootfs {} not found", path.display())
            }
            LabError::RootfsNotDirectory { path } => {
                write!(f, "rootfs {} is not a directory", path.display())
            }
            LabError::RootfsIncomplete { path, missing } => {
                write!(
                    f,
                    "rootfs {} has no {missing} directory to mount on",
                    path.display()
                )
            }
            LabError::CommandNotFound { command, root } if root.as_os_str() == "/" => {
                write!(f, "command {command} not found")
            }
            LabError::CommandNotFound { command, root } => {
                write!(
                    f,
                    "command {command} not found in rootfs {}",
                    root.display()
                )
            }
            LabError::CommandNotExecutable { command, errno, .. } => {
                write!(f, "cannot execute {command}: {}", describe_errno(*errno))
            }
            LabError::MissingCapability {
                capability,
                needed_for,
                ..
            } => write!(
                f,
                "{needed_for} needs {capability}, which this process does not have"
            ),
            LabError::StepFailed {
                syscall,
                target,
                errno,
            } => write!(f, "{syscall} {target}: {}", describe_errno(*errno)),
            LabError::NoTerminal { errno } => write!(
                f,
                "--step waits for Enter on /dev/tty, which cannot be opened: {}",
                describe_errno(*errno)
            ),
            LabError::ToolMissing { path } => {
                write!(f, "{} not found: the rootfs needs it", path.display())
            }
            LabError::Probe { chapter, message } => {
                write!(f, "probing {chapter} failed: {message}")
            }
            LabError::Script { script, status } => {
                write!(f, "{} failed with exit status {status}", script.display())
            }
            LabError::InChild { message, .. } => write!(f, "{message}"),
            LabError::RuntimeGaveUp => write!(f, "the runtime gave up on this container"),
            LabError::ToolFailed { command, message } => write!(f, "{command}: {message}"),
            LabError::Refused { message, .. }
            | LabError::Container { message, .. }
            | LabError::Image { message, .. } => {
                write!(f, "{message}")
            }
        }
    }
}

impl std::error::Error for LabError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_is_lowercase_with_symbol() {
        assert_eq!(
            describe_errno(Errno::ENOENT),
            "no such file or directory (ENOENT)"
        );
    }

    #[test]
    fn exit_codes_follow_docker() {
        let missing = LabError::CommandNotFound {
            command: "nope".into(),
            root: "/r".into(),
        };
        assert_eq!(missing.exit_code(), 127);
        let noexec = LabError::CommandNotExecutable {
            command: "/etc/passwd".into(),
            errno: Errno::EACCES,
        };
        assert_eq!(noexec.exit_code(), 126);
        let step = LabError::StepFailed {
            syscall: "chroot",
            target: "/r".into(),
            errno: Errno::EPERM,
        };
        assert_eq!(step.exit_code(), 125);
        assert_eq!(
            step.to_string(),
            "chroot /r: operation not permitted (EPERM)"
        );
    }
}
