//! Network plumbing shared by the tour and, later, chapter 04.

use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
use std::os::fd::AsRawFd;

/// Bring interface `name` up, as `ip link set NAME up` does, with the
/// SIOCGIFFLAGS/SIOCSIFFLAGS ioctls on any socket (netdevice(7)).
pub fn set_link_up(name: &str) -> nix::Result<()> {
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    // SAFETY: ifreq is plain old data; zeroed is a valid value.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    let bytes = name.as_bytes();
    if bytes.len() >= request.ifr_name.len() {
        return Err(nix::errno::Errno::ENAMETOOLONG);
    }
    for (slot, byte) in request.ifr_name.iter_mut().zip(bytes) {
        *slot = *byte as libc::c_char;
    }
    // SAFETY: both ioctls read and write the ifreq we own; the flags union
    // member is the one SIOC[GS]IFFLAGS use.
    unsafe {
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut request) < 0 {
            return Err(nix::errno::Errno::last());
        }
        request.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &request) < 0 {
            return Err(nix::errno::Errno::last());
        }
    }
    Ok(())
}
