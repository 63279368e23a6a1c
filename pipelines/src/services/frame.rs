//! The frames the slow path reads and writes: an Ethernet header's fields, and whole UDP and ICMPv6
//! frames built around a payload (checksums filled).

use crate::wire::checksum::{pseudo_v4, pseudo_v6};
use crate::wire::{
    EtherType, EthernetFrame, EthernetRepr, Icmpv6Packet, Icmpv6Repr, IpProtocol, Ipv4Addr, Ipv4Packet, Ipv4Repr,
    Ipv6Addr, Ipv6Packet, Ipv6Repr, Mac, UdpPacket, UdpRepr,
};

/// The source MAC, the EtherType and the rest of an untagged frame.
pub(super) fn ethernet(f: &[u8]) -> Option<(Mac, (EtherType, &[u8]))> {
    let eth = EthernetFrame::new_checked(f).ok()?;
    Some((eth.src(), (eth.ethertype(), &f[14..])))
}

fn eth(src: Mac, dst: Mac, ethertype: EtherType, l3_len: usize) -> Vec<u8> {
    let mut f = vec![0u8; 14 + l3_len];
    EthernetRepr { src, dst, ethertype }.emit(&mut EthernetFrame::new_unchecked(&mut f[..]));
    f
}

/// An IPv4/UDP frame (TTL 64, checksums filled) carrying `payload`.
#[allow(clippy::too_many_arguments)]
pub(super) fn udp4(
    (src_mac, dst_mac): (Mac, Mac),
    (src, dst): (Ipv4Addr, Ipv4Addr),
    (sport, dport): (u16, u16),
    ident: u16,
    payload: &[u8],
) -> Vec<u8> {
    let udp_len = 8 + payload.len();
    let mut f = eth(src_mac, dst_mac, EtherType::Ipv4, 20 + udp_len);
    let ip = Ipv4Repr {
        src,
        dst,
        protocol: IpProtocol::Udp,
        payload_len: udp_len,
        ttl: 64,
        dscp_ecn: 0,
        ident,
        dont_frag: false,
    };
    ip.emit(&mut Ipv4Packet::new_unchecked(&mut f[14..34]));
    f[42..].copy_from_slice(payload);
    let pseudo = pseudo_v4(src.0, dst.0, 17, udp_len as u16);
    UdpRepr { src_port: sport, dst_port: dport }.emit(
        &mut UdpPacket::new_unchecked(&mut f[34..]),
        payload.len(),
        pseudo,
    );
    pad(f)
}

fn ipv6(f: &mut [u8], src: Ipv6Addr, dst: Ipv6Addr, next_header: IpProtocol, hop_limit: u8, payload_len: usize) {
    let r = Ipv6Repr { src, dst, next_header, payload_len, hop_limit, traffic_class: 0, flow_label: 0 };
    r.emit(&mut Ipv6Packet::new_unchecked(&mut f[14..54]));
}

/// An IPv6/UDP frame (hop limit 255: DHCPv6 stays on the link) carrying `payload`.
pub(super) fn udp6(
    (src_mac, dst_mac): (Mac, Mac),
    (src, dst): (Ipv6Addr, Ipv6Addr),
    (sport, dport): (u16, u16),
    payload: &[u8],
) -> Vec<u8> {
    let udp_len = 8 + payload.len();
    let mut f = eth(src_mac, dst_mac, EtherType::Ipv6, 40 + udp_len);
    ipv6(&mut f, src, dst, IpProtocol::Udp, 255, udp_len);
    f[62..].copy_from_slice(payload);
    let pseudo = pseudo_v6(src.0, dst.0, 17, udp_len as u32);
    UdpRepr { src_port: sport, dst_port: dport }.emit(
        &mut UdpPacket::new_unchecked(&mut f[54..]),
        payload.len(),
        pseudo,
    );
    f
}

/// An ICMPv6 frame (hop limit 255, as neighbour discovery requires) carrying `r`.
pub(super) fn icmp6((src_mac, dst_mac): (Mac, Mac), (src, dst): (Ipv6Addr, Ipv6Addr), r: &Icmpv6Repr<'_>) -> Vec<u8> {
    let len = r.buffer_len();
    let mut f = eth(src_mac, dst_mac, EtherType::Ipv6, 40 + len);
    ipv6(&mut f, src, dst, IpProtocol::Icmpv6, 255, len);
    let pseudo = pseudo_v6(src.0, dst.0, 58, len as u32);
    r.emit(&mut Icmpv6Packet::new_unchecked(&mut f[54..]), pseudo);
    f
}

/// Pads a frame to Ethernet's 60 bytes (without the FCS).
fn pad(mut f: Vec<u8>) -> Vec<u8> {
    if f.len() < 60 {
        f.resize(60, 0);
    }
    f
}
