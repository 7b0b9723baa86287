//! Throwaway network namespaces for the network tests: one stands in for
//! the host, others for the rest of the world. Traffic never leaves them.

use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// A named network namespace (`ip netns add`), deleted with its lab state
/// when dropped.
pub struct Netns {
    pub name: String,
    file: std::fs::File,
}

fn ip(args: &[&str]) {
    let status = Command::new("ip")
        .args(args)
        .status()
        .expect("ip(8) from iproute2");
    assert!(status.success(), "ip {}", args.join(" "));
}

impl Netns {
    pub fn new(tag: &str) -> Netns {
        let name = format!("lab-t{}-{tag}", std::process::id());
        let _ = Command::new("ip")
            .args(["netns", "delete", &name])
            .stderr(std::process::Stdio::null())
            .status();
        ip(&["netns", "add", &name]);
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        let file = std::fs::File::open(format!("/run/netns/{name}")).unwrap();
        Netns { name, file }
    }

    /// `program` to be run inside this namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new(program);
        let fd = self.file.as_raw_fd();
        // SAFETY: setns(2) between fork and exec, on an fd we keep open.
        unsafe {
            command.pre_exec(move || {
                if libc::setns(fd, libc::CLONE_NEWNET) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        command
    }

    /// `ip ARGS` inside this namespace.
    pub fn ip(&self, args: &[&str]) -> String {
        let output = Command::new("ip")
            .arg("-n")
            .arg(&self.name)
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "ip -n {} {}: {}",
            self.name,
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Move the calling thread into this namespace (for a listener thread).
    pub fn enter_this_thread(&self) {
        // SAFETY: setns on our own fd; affects only the calling thread.
        assert_eq!(
            unsafe { libc::setns(self.file.as_raw_fd(), libc::CLONE_NEWNET) },
            0
        );
    }

    /// The lab's state directory for this namespace's bridges.
    pub fn lab_state(&self) -> std::path::PathBuf {
        use std::os::unix::fs::MetadataExt;
        let inode = self.file.metadata().unwrap().ino();
        std::path::Path::new("/run/container-lab/net").join(inode.to_string())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.lab_state());
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.name])
            .status();
    }
}
