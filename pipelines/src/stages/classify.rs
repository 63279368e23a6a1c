//! Ingress classification: in-port → logical port and network; parses the headers once into `Meta`
//! (L3/L4 offsets, EtherType, IP protocol, flags) for every later stage.
//!
//! It is also admission control, and drops every frame that carries an 802.1Q (0x8100) or 802.1ad
//! (0x88a8) tag, whatever the port's port security: every port here is a VM port (a Neutron port that is
//! neither a trunk nor a trunk's sub-port), and for those OVN drops `vlan.present` in its first ingress
//! table (ovn-northd(8), "Admission Control": "priority 100 flows to drop packets with VLAN tags"); only a
//! switch with `vlan-passthru` (Neutron's `vlan_transparent` networks, not offered here) lets tags
//! through. Before, a tag was skipped and the frame went on with its tag, switched to the other ports
//! (with the port-security checks applied to the inner headers). Trunk ports, when they come, will map a
//! sub-port's tag to its logical port here, before this check.
//! Drops: `classify.malformed`, `classify.unknown_port`, `classify.port_down`, `classify.vlan_tagged`.

use crate::buf::PacketBuf;
use crate::drop::Reason;
use crate::meta::{flags, Meta};
use crate::stages::BurstMemo;
use crate::tables::Tables;
use crate::wire::ipv6::Ipv6Packet;
use crate::wire::vlan::{self, VlanTag};
use crate::wire::{arp, ethernet, ipv4, EtherType, EthernetFrame, IpProtocol, Ipv4Packet};

const ETH_LEN: usize = ethernet::HEADER_LEN;

pub fn run<B: PacketBuf>(t: &Tables, pkts: &mut [B], meta: &mut [Meta]) {
    let mut memo = BurstMemo::default();
    for (p, m) in pkts.iter_mut().zip(meta.iter_mut()) {
        packet(t, &mut memo, p, m);
    }
}

/// One packet: binds its in-port (looked up once per run of equal in-ports) and parses its headers.
#[inline(always)]
pub fn packet<'t, B: PacketBuf>(t: &'t Tables, memo: &mut BurstMemo<'t>, p: &mut B, m: &mut Meta) {
    let Some(port) = memo.port(t, m.in_port) else {
        m.drop(Reason::ClassifyUnknownPort);
        return;
    };
    if !port.up {
        m.drop(Reason::ClassifyPortDown);
        return;
    }
    m.lport = port.lport;
    m.network = port.network;
    if !parse(p.data(), m) {
        m.drop(if m.has(flags::VLAN) { Reason::ClassifyVlanTagged } else { Reason::ClassifyMalformed });
    }
}

/// Fills the header fields of `m` from the frame; false if a header is cut short or invalid, or if the
/// frame is tagged (no port takes tags: it is then flagged `VLAN`, and its inner headers are parsed all
/// the same).
#[inline(always)]
pub fn parse(d: &[u8], m: &mut Meta) -> bool {
    if d.len() < ETH_LEN {
        return false;
    }
    if EthernetFrame::new_unchecked(d).dst().is_multicast() {
        m.flags |= flags::MULTICAST_DST;
    }
    from_l3(d, u16::from_be_bytes([d[12], d[13]]), ETH_LEN, m)
}

/// A frame that came from outside this node (decapsulated from a tunnel, or untagged from an uplink) into
/// `network`: parsed as a VM's and flagged `FROM_TUNNEL` (decided elsewhere: only switched to this
/// node's ports); false if it does not parse or is tagged (no network here is VLAN-transparent).
#[inline]
pub fn from_outside(d: &[u8], network: u32, m: &mut Meta) -> bool {
    m.network = network;
    m.lport = 0;
    m.flags = flags::FROM_TUNNEL;
    parse(d, m) && !m.has(flags::VLAN)
}

/// An 802.1Q C-tag or an 802.1ad S-tag follows.
#[inline(always)]
fn is_tag(et: EtherType) -> bool {
    matches!(et, EtherType::Vlan | EtherType::QinQ)
}

/// The headers from offset `l3` on, after the EtherType `et`.
#[inline(always)]
fn from_l3(d: &[u8], et: u16, l3: usize, m: &mut Meta) -> bool {
    m.ethertype = et;
    m.l3_off = l3 as u16;
    match EtherType::from(et) {
        EtherType::Ipv4 => {
            let b = &d[l3..];
            if b.len() < ipv4::HEADER_LEN {
                return false;
            }
            let ip = Ipv4Packet::new_unchecked(b);
            let (ihl, total) = (ip.header_len(), ip.total_len() as usize);
            if ip.version() != 4 || ihl < ipv4::HEADER_LEN || total < ihl || b.len() < total {
                return false;
            }
            m.flags |= flags::IPV4;
            m.ip_proto = ip.protocol_number();
            m.l4_off = (l3 + ihl) as u16;
            if ip.is_later_fragment() {
                m.flags |= flags::LATER_FRAGMENT;
            }
        }
        EtherType::Ipv6 => {
            let Ok(ip) = Ipv6Packet::new_checked(&d[l3..]) else {
                return false;
            };
            let Ok((proto, off)) = ip.upper_layer() else {
                return false;
            };
            m.flags |= flags::IPV6;
            if proto == IpProtocol::Ipv6Frag {
                m.flags |= flags::LATER_FRAGMENT;
            }
            m.ip_proto = proto.into();
            m.l4_off = (l3 + off) as u16;
        }
        EtherType::Arp => {
            if d.len() < l3 + arp::PACKET_LEN {
                return false;
            }
            m.flags |= flags::ARP;
        }
        // The outer EtherType only (`tagged` reads at most two tags, and comes back here past them).
        t if l3 == ETH_LEN && is_tag(t) => return tagged(d, m),
        _ => {}
    }
    true
}

/// A tagged frame: flagged, parsed past its tags (at most two: 802.1ad's S-tag, then a C-tag), and
/// refused. Out of line, as no VM port sends tags.
#[cold]
#[inline(never)]
fn tagged(d: &[u8], m: &mut Meta) -> bool {
    m.flags |= flags::VLAN;
    let (mut et, mut at) = (u16::from_be_bytes([d[12], d[13]]), ETH_LEN);
    for _ in 0..2 {
        if !is_tag(EtherType::from(et)) {
            break;
        }
        let Ok(tag) = VlanTag::new_checked(&d[at..]) else { return false };
        et = tag.ethertype().into();
        at += vlan::HEADER_LEN;
    }
    from_l3(d, et, at, m);
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::HeapBuf;
    use crate::fixtures::*;
    use crate::meta::Action;

    #[test]
    fn binds_ports_and_parses_headers() {
        let t = two_port_tables(true);
        let mut pkts = vec![
            HeapBuf::new(&udp4(VM1, VM2, IP1, IP2)),
            HeapBuf::new(&arp_request(VM1, IP1, IP2)),
            HeapBuf::new(&udp6(VM1, VM2, ip6(1), ip6(2))),
            HeapBuf::new(&udp4(VM1, VM2, IP1, IP2)),
            HeapBuf::new(&[0u8; 10]),
            HeapBuf::new(&udp4(VM1, VM2, IP1, IP2)[..30]),
        ];
        let mut meta = vec![Meta::new(0), Meta::new(0), Meta::new(0), Meta::new(5), Meta::new(0), Meta::new(0)];
        run(&t, &mut pkts, &mut meta);
        assert_eq!((meta[0].lport, meta[0].network, meta[0].action), (101, 1, Action::Continue));
        assert_eq!((meta[0].l3_off, meta[0].l4_off, meta[0].ip_proto), (14, 34, 17));
        assert!(meta[0].has(flags::IPV4) && !meta[0].has(flags::MULTICAST_DST));
        assert!(meta[1].has(flags::ARP) && meta[1].has(flags::MULTICAST_DST));
        assert_eq!((meta[2].l4_off, meta[2].ip_proto), (54, 17));
        assert!(meta[2].has(flags::IPV6));
        assert_eq!(meta[3].reason, Reason::ClassifyUnknownPort);
        assert_eq!(meta[4].reason, Reason::ClassifyMalformed);
        assert_eq!(meta[5].reason, Reason::ClassifyMalformed, "IPv4 total length past the frame");
    }

    #[test]
    fn down_ports_drop() {
        let mut t = two_port_tables(true);
        t.ports[0].as_mut().unwrap().up = false;
        let mut pkts = vec![HeapBuf::new(&udp4(VM1, VM2, IP1, IP2))];
        let mut meta = vec![Meta::new(0)];
        run(&t, &mut pkts, &mut meta);
        assert_eq!(meta[0].reason, Reason::ClassifyPortDown);
    }

    #[test]
    fn vlan_tags_are_parsed_through() {
        let mut f = udp4(VM1, VM2, IP1, IP2);
        f.splice(12..12, [0x81, 0x00, 0x00, 0x64]);
        let mut m = Meta::new(0);
        assert!(!parse(&f, &mut m), "refused, but parsed");
        assert!(m.has(flags::VLAN) && m.has(flags::IPV4));
        assert_eq!((m.l3_off, m.l4_off), (18, 38));
        // 802.1ad: an S-tag, then a C-tag.
        f.splice(12..12, [0x88, 0xa8, 0x00, 0x0a]);
        let mut m = Meta::new(0);
        assert!(!parse(&f, &mut m));
        assert!(m.has(flags::VLAN) && m.has(flags::IPV4));
        assert_eq!((m.l3_off, m.l4_off, m.ethertype), (22, 42, 0x0800));
        let mut m = Meta::new(0);
        assert!(!parse(&f[..15], &mut m), "a tag cut short");
        assert!(m.has(flags::VLAN));
    }

    #[test]
    fn tagged_frames_from_a_vm_port_drop() {
        let mut tagged = udp4(VM1, VM2, IP1, IP2);
        tagged.splice(12..12, [0x81, 0x00, 0x00, 0x64]);
        let mut qinq = tagged.clone();
        qinq.splice(12..12, [0x88, 0xa8, 0x00, 0x0a]);
        let mut priority = udp4(VM1, VM2, IP1, IP2);
        priority.splice(12..12, [0x81, 0x00, 0xe0, 0x00]); // VLAN 0, priority tagged
        let mut cut = tagged.clone();
        cut.truncate(30); // tagged, and the IPv4 header cut short: the tag decides
        for security in [true, false] {
            let t = two_port_tables(security);
            let frames = [&tagged, &qinq, &priority, &cut, &udp4(VM1, VM2, IP1, IP2)];
            let mut pkts: Vec<HeapBuf> = frames.iter().map(|f| HeapBuf::new(f)).collect();
            let mut meta = vec![Meta::new(0); frames.len()];
            run(&t, &mut pkts, &mut meta);
            let reasons: Vec<Reason> = meta.iter().map(|m| m.reason).collect();
            assert_eq!(reasons, [[Reason::ClassifyVlanTagged; 4].as_slice(), &[Reason::None]].concat());
        }
    }
}
