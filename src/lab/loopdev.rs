//! Loop devices (loop(4)): a file of ours presented as a block device.
//!
//! The tour uses one as bait: a block device of the host's whose contents
//! only the tour knows, so a container that can mknod and read it proves the
//! leak without touching a real disk.

use nix::errno::Errno;
use std::path::{Path, PathBuf};

/// The block major of loop devices (devices.txt in the kernel docs).
pub const MAJOR: u64 = 7;
// ioctl numbers from <linux/loop.h>.
const LOOP_SET_FD: libc::c_ulong = 0x4C00;
const LOOP_CLR_FD: libc::c_ulong = 0x4C01;
const LOOP_CTL_GET_FREE: libc::c_ulong = 0x4C82;

/// An attached loop device; detached again when dropped.
pub struct LoopDevice {
    device: std::fs::File,
    pub number: u64,
}

impl LoopDevice {
    pub fn attach(backing: &Path) -> Result<LoopDevice, String> {
        use std::os::fd::AsRawFd;
        let control = std::fs::File::open("/dev/loop-control")
            .map_err(|e| format!("/dev/loop-control: {e}"))?;
        // SAFETY: LOOP_CTL_GET_FREE takes no argument and returns a number.
        let number = unsafe { libc::ioctl(control.as_raw_fd(), LOOP_CTL_GET_FREE) };
        if number < 0 {
            return Err(format!(
                "LOOP_CTL_GET_FREE: {}",
                crate::error::describe_errno(Errno::last())
            ));
        }
        let path = format!("/dev/loop{number}");
        let device = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| format!("{path}: {e}"))?;
        let file =
            std::fs::File::open(backing).map_err(|e| format!("{}: {e}", backing.display()))?;
        // SAFETY: LOOP_SET_FD takes the backing file's descriptor.
        if unsafe { libc::ioctl(device.as_raw_fd(), LOOP_SET_FD, file.as_raw_fd()) } < 0 {
            return Err(format!(
                "LOOP_SET_FD {path}: {}",
                crate::error::describe_errno(Errno::last())
            ));
        }
        Ok(LoopDevice {
            device,
            number: number as u64,
        })
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        let _ = clear(&self.device);
    }
}

/// Detach loop device `number` (for `lab clean`).
pub fn detach(number: u64) -> Result<(), String> {
    let path = format!("/dev/loop{number}");
    let device = std::fs::File::open(&path).map_err(|e| format!("{path}: {e}"))?;
    clear(&device).map_err(|errno| {
        format!(
            "LOOP_CLR_FD {path}: {}",
            crate::error::describe_errno(errno)
        )
    })
}

fn clear(device: &std::fs::File) -> Result<(), Errno> {
    use std::os::fd::AsRawFd;
    // SAFETY: LOOP_CLR_FD takes no argument.
    if unsafe { libc::ioctl(device.as_raw_fd(), LOOP_CLR_FD, 0) } < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// Attached loop devices and their backing files, from sysfs.
pub fn attached() -> Vec<(u64, PathBuf)> {
    let Ok(entries) = std::fs::read_dir("/sys/block") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let number = name.strip_prefix("loop")?.parse().ok()?;
            let backing = std::fs::read_to_string(entry.path().join("loop/backing_file")).ok()?;
            Some((number, PathBuf::from(backing.trim_end())))
        })
        .collect()
}
