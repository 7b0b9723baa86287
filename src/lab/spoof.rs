//! `lab-probe --spoof-arp` and `--spoof-source`: the two lies a container
//! with CAP_NET_RAW can tell its neighbours on a shared bridge, each sent
//! once, for ch04's anti-spoofing tests and for a student to try by hand.
//!
//! Both bypass the kernel's own bookkeeping on purpose: an AF_PACKET socket
//! (packet(7)) hands a frame to the driver as written, and a raw IPv4
//! socket with IPPROTO_RAW (raw(7)) sends the IP header as written, source
//! address included. Neither needs anything but CAP_NET_RAW, which root in
//! a ch04 container holds.

use crate::error::LabError;
use nix::sys::socket::{
    AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, SockaddrIn, SockaddrLike, sendto,
    socket,
};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::AsRawFd;

/// The interface every ch04 container has: where `--spoof-arp` lies.
const DEVICE: &str = "eth0";

fn failed(syscall: &'static str, target: &str, errno: nix::errno::Errno) -> LabError {
    LabError::StepFailed {
        syscall,
        target: target.into(),
        errno,
    }
}

/// The MAC address of `device`, from getifaddrs(3)'s AF_PACKET entry.
fn own_mac(device: &str) -> Result<[u8; 6], LabError> {
    nix::ifaddrs::getifaddrs()
        .map_err(|errno| failed("getifaddrs", device, errno))?
        .filter(|entry| entry.interface_name == device)
        .find_map(|entry| entry.address?.as_link_addr()?.addr())
        .ok_or_else(|| LabError::Refused {
            message: format!("{device} has no MAC address"),
            hint: "run this inside a ch04 container in bridge mode".into(),
        })
}

/// Every interface that is up, is not loopback and has an Ethernet
/// address: where a frame can be put on a wire (for the scorecard, which
/// does not know which interfaces the chapter gives the probe).
pub fn ethernet_interfaces() -> Vec<(String, [u8; 6])> {
    let Ok(entries) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    let mut found: Vec<(String, [u8; 6])> = Vec::new();
    for entry in entries {
        let flags = entry.flags;
        let up = flags.contains(nix::net::if_::InterfaceFlags::IFF_UP);
        let loopback = flags.contains(nix::net::if_::InterfaceFlags::IFF_LOOPBACK);
        let mac = entry
            .address
            .and_then(|a| a.as_link_addr().and_then(|l| l.addr()))
            .filter(|mac| *mac != [0; 6]);
        if let (true, false, Some(mac)) = (up, loopback, mac)
            && !found.iter().any(|(name, _)| *name == entry.interface_name)
        {
            found.push((entry.interface_name, mac));
        }
    }
    found
}

pub fn mac_text(mac: [u8; 6]) -> String {
    mac.map(|b| format!("{b:02x}")).join(":")
}

/// The 28-byte body of an Ethernet/IPv4 ARP reply (RFC 826) in which
/// `mac` claims `claimed`. It is the gratuitous form, sender and target
/// the same: Linux lets a gratuitous reply overwrite a neighbour entry at
/// once, without waiting out `locktime` (arp_is_garp() in
/// net/ipv4/arp.c; ip-sysctl's arp_accept), so one frame is enough.
pub fn arp_claim(mac: [u8; 6], claimed: Ipv4Addr) -> Vec<u8> {
    let mut body = Vec::with_capacity(28);
    body.extend_from_slice(&1u16.to_be_bytes()); // hardware: Ethernet
    body.extend_from_slice(&0x0800u16.to_be_bytes()); // protocol: IPv4
    body.extend_from_slice(&[6, 4]); // address lengths
    body.extend_from_slice(&2u16.to_be_bytes()); // operation: reply
    body.extend_from_slice(&mac); // sender hardware address
    body.extend_from_slice(&claimed.octets()); // sender protocol address: the lie
    body.extend_from_slice(&mac); // target hardware address
    body.extend_from_slice(&claimed.octets()); // target protocol address
    body
}

/// Broadcast one ARP reply on eth0 saying that `claimed` is at this
/// container's MAC address.
pub fn spoof_arp(claimed: Ipv4Addr) -> Result<i32, LabError> {
    let mac = own_mac(DEVICE)?;
    broadcast_arp_claim(DEVICE, mac, claimed)?;
    println!("sent: {claimed} is at {}", mac_text(mac));
    Ok(0)
}

/// Broadcast on `device` one ARP reply in which `mac` claims `claimed`.
pub fn broadcast_arp_claim(device: &str, mac: [u8; 6], claimed: Ipv4Addr) -> Result<(), LabError> {
    let ifindex =
        nix::net::if_::if_nametoindex(device).map_err(|e| failed("if_nametoindex", device, e))?;
    // SOCK_DGRAM: the kernel writes the Ethernet header, with the device's
    // own MAC as source, from the address below (packet(7)).
    let sock = socket(
        AddressFamily::Packet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|errno| failed("socket(AF_PACKET)", device, errno))?;
    // SAFETY: sockaddr_ll is plain old data; zeroed is a valid value.
    let mut link: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    link.sll_family = libc::AF_PACKET as u16;
    link.sll_protocol = (libc::ETH_P_ARP as u16).to_be();
    link.sll_ifindex = ifindex as i32;
    link.sll_halen = 6;
    link.sll_addr[..6].copy_from_slice(&[0xff; 6]);
    // SAFETY: the pointer and length describe the sockaddr_ll we own.
    let to = unsafe {
        nix::sys::socket::LinkAddr::from_raw(
            (&link as *const libc::sockaddr_ll).cast(),
            Some(std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t),
        )
    }
    .expect("a sockaddr_ll of AF_PACKET");
    sendto(
        sock.as_raw_fd(),
        &arp_claim(mac, claimed),
        &to,
        MsgFlags::empty(),
    )
    .map_err(|errno| failed("sendto(AF_PACKET)", device, errno))?;
    Ok(())
}

/// An IPv4 packet carrying one UDP datagram from `source` (any address
/// at all) to `to`. The UDP checksum is left 0, "no checksum", which IPv4
/// allows (RFC 768).
pub fn udp_packet(source: Ipv4Addr, to: SocketAddrV4, payload: &[u8]) -> Vec<u8> {
    let total = 20 + 8 + payload.len();
    let mut packet = Vec::with_capacity(total);
    packet.extend_from_slice(&[0x45, 0]); // version 4, 5 words of header; TOS
    packet.extend_from_slice(&(total as u16).to_be_bytes());
    packet.extend_from_slice(&[0, 0, 0, 0]); // id (the kernel fills a 0 in), no fragments
    // TTL, protocol, and a header checksum the kernel always fills in (raw(7)).
    packet.extend_from_slice(&[64, libc::IPPROTO_UDP as u8, 0, 0]);
    packet.extend_from_slice(&source.octets());
    packet.extend_from_slice(&to.ip().octets());
    packet.extend_from_slice(&40000u16.to_be_bytes()); // source port
    packet.extend_from_slice(&to.port().to_be_bytes());
    packet.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    packet.extend_from_slice(&[0, 0]);
    packet.extend_from_slice(payload);
    packet
}

/// Send one UDP datagram to `to` whose IPv4 source is `source`, and say so.
pub fn spoof_source(source: Ipv4Addr, to: SocketAddrV4) -> Result<i32, LabError> {
    send_forged_udp(source, to, format!("from {source}\n").as_bytes())?;
    println!("sent: udp to {to} from {source}");
    Ok(0)
}

/// One UDP datagram carrying `payload` to `to` whose IPv4 source is
/// `source`: a raw socket with IPPROTO_RAW implies IP_HDRINCL, and the
/// kernel keeps the source address it is given (raw(7)). It still routes
/// the packet and resolves the next hop's MAC, so only the IP source is a
/// lie, and no interface needs naming.
pub fn send_forged_udp(source: Ipv4Addr, to: SocketAddrV4, payload: &[u8]) -> Result<(), LabError> {
    let target = to.to_string();
    let sock = socket(
        AddressFamily::Inet,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::Raw,
    )
    .map_err(|errno| failed("socket(SOCK_RAW)", &target, errno))?;
    sendto(
        sock.as_raw_fd(),
        &udp_packet(source, to, payload),
        &SockaddrIn::from(to),
        MsgFlags::empty(),
    )
    .map_err(|errno| failed("sendto(SOCK_RAW)", &target, errno))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_arp_claim_is_a_gratuitous_reply() {
        let mac = [0x02, 0x42, 0x0a, 0x58, 0x00, 0x03];
        let body = arp_claim(mac, Ipv4Addr::new(10, 88, 0, 2));
        assert_eq!(body.len(), 28);
        assert_eq!(&body[..8], &[0, 1, 8, 0, 6, 4, 0, 2]);
        assert_eq!(&body[8..14], &mac);
        assert_eq!(&body[14..18], &[10, 88, 0, 2]);
        assert_eq!(body[8..18], body[18..28], "sender and target are the same");
    }

    #[test]
    fn a_forged_packet_carries_the_forged_source() {
        let to = SocketAddrV4::new(Ipv4Addr::new(10, 88, 0, 1), 9999);
        let packet = udp_packet(Ipv4Addr::new(10, 88, 0, 2), to, b"hi");
        assert_eq!(packet.len(), 30);
        assert_eq!(&packet[12..16], &[10, 88, 0, 2]);
        assert_eq!(&packet[16..20], &[10, 88, 0, 1]);
        assert_eq!(u16::from_be_bytes([packet[2], packet[3]]), 30);
        assert_eq!(u16::from_be_bytes([packet[22], packet[23]]), 9999);
        assert_eq!(&packet[28..], b"hi");
    }
}
