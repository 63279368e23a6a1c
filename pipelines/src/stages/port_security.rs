//! Port security (anti-spoofing), as Neutron defines it: a port sends only from its own MAC and IPs (or
//! an allowed address pair's); DHCP discovery (from 0.0.0.0) and IPv6 DAD (from ::) and the port's
//! link-local address are allowed; ARP must claim the port's own addresses; a VM may not act as a DHCP
//! server or an IPv6 router. Skipped for ports with port security off.
//!
//! Neighbour discovery is held to what OVN's `ls_in_port_sec_nd` table enforces (ovn-northd(8),
//! "Ingress Port Security - Neighbor discovery"), so that a VM cannot claim another's IPv6 address: in a
//! neighbour solicitation or advertisement, every link-layer address option (the NS's source, the NA's
//! target link-layer address) must be the Ethernet source, and an advertisement's target must be an
//! address the port may send from with that MAC (a fixed IP, an allowed address pair, or the link-local
//! address of the port's MAC). Two points are stricter than OVN, where OVS's flow extraction cannot tell:
//! an all-zero link-layer option is refused (OVN lets it through as "no option"), and so is an NS/NA whose
//! options do not parse (a receiver discards it anyway, RFC 4861 7.1). OVN checks NA targets only when the
//! port has IPv6 addresses; here an IPv4-only port may advertise its link-local address alone.
//! Drops: `port_security.mac_spoof`, `.ip_spoof`, `.arp_spoof`, `.nd_spoof`, `.rogue_server`, `.ethertype`.

use crate::buf::PacketBuf;
use crate::drop::Reason;
use crate::meta::{flags, Meta};
use crate::stages::BurstMemo;
use crate::tables::{PortEntry, Tables};
use crate::wire::icmpv6::{NEIGHBOR_ADVERT, NEIGHBOR_SOLICIT, OPT_SOURCE_LINK_ADDR, OPT_TARGET_LINK_ADDR};
use crate::wire::{Icmpv6Packet, Ipv4Addr, Ipv6Addr, Mac, NdOptions};

pub fn run<B: PacketBuf>(t: &Tables, pkts: &mut [B], meta: &mut [Meta]) {
    let mut memo = BurstMemo::default();
    for (p, m) in pkts.iter_mut().zip(meta.iter_mut()) {
        packet(t, &mut memo, p, m);
    }
}

/// One packet, checked if it is still pending.
#[inline(always)]
pub fn packet<'t, B: PacketBuf>(t: &'t Tables, memo: &mut BurstMemo<'t>, p: &mut B, m: &mut Meta) {
    if !m.pending() {
        return;
    }
    let Some(port) = memo.port(t, m.in_port).filter(|e| e.security) else { return };
    if let Err(r) = check(port, p.data(), m) {
        m.drop(r);
    }
}

#[inline(always)]
fn check(port: &PortEntry, d: &[u8], m: &Meta) -> Result<(), Reason> {
    let src = Mac(d[6..12].try_into().expect("classify checked the length"));
    if !port.mac_allowed(src) {
        return Err(Reason::PortSecurityMac);
    }
    let l3 = m.l3_off as usize;
    let l4 = m.l4_off as usize;
    if m.has(flags::IPV4) {
        let ip = Ipv4Addr(d[l3 + 12..l3 + 16].try_into().expect("classify checked"));
        let udp_ports = (m.ip_proto == 17 && d.len() >= l4 + 4)
            .then(|| (u16::from_be_bytes([d[l4], d[l4 + 1]]), u16::from_be_bytes([d[l4 + 2], d[l4 + 3]])));
        if udp_ports.is_some_and(|(s, _)| s == 67) {
            return Err(Reason::PortSecurityRogueServer);
        }
        let dhcp_discovery = ip == Ipv4Addr::UNSPECIFIED && udp_ports == Some((68, 67));
        if !dhcp_discovery && !port.v4_allowed(src, ip) {
            return Err(Reason::PortSecurityIp);
        }
    } else if m.has(flags::IPV6) {
        let ip = Ipv6Addr(d[l3 + 8..l3 + 24].try_into().expect("classify checked"));
        if m.ip_proto == 58 && d.len() > l4 && d[l4] == crate::wire::icmpv6::ROUTER_ADVERT {
            return Err(Reason::PortSecurityRogueServer);
        }
        if m.ip_proto == 17 && d.len() >= l4 + 2 && u16::from_be_bytes([d[l4], d[l4 + 1]]) == 547 {
            return Err(Reason::PortSecurityRogueServer);
        }
        // DAD neighbour solicitations and MLD reports come from :: (RFC 4862).
        let dad = ip.is_unspecified() && m.ip_proto == 58;
        if !dad && !port.v6_allowed(src, ip) {
            return Err(Reason::PortSecurityIp);
        }
        if m.ip_proto == 58 {
            // The ICMPv6 message, without the frame's padding (classify checked the payload length).
            let end = l3 + 40 + u16::from_be_bytes([d[l3 + 4], d[l3 + 5]]) as usize;
            if !nd_allowed(port, src, &d[l4..end]) {
                return Err(Reason::PortSecurityNd);
            }
        }
    } else if m.has(flags::ARP) {
        let sha = Mac(d[l3 + 8..l3 + 14].try_into().expect("classify checked"));
        let spa = Ipv4Addr(d[l3 + 14..l3 + 18].try_into().expect("classify checked"));
        // An ARP probe (RFC 5227) claims 0.0.0.0.
        if sha != src || (spa != Ipv4Addr::UNSPECIFIED && !port.v4_allowed(src, spa)) {
            return Err(Reason::PortSecurityArp);
        }
    } else {
        return Err(Reason::PortSecurityEthertype);
    }
    Ok(())
}

/// True unless `icmp` is a neighbour solicitation or advertisement that speaks for another port than the
/// one whose Ethernet source `src` already passed: see the module's documentation.
#[inline]
fn nd_allowed(port: &PortEntry, src: Mac, icmp: &[u8]) -> bool {
    let kind = match icmp.first() {
        Some(&k) if k == NEIGHBOR_SOLICIT || k == NEIGHBOR_ADVERT => k,
        _ => return true,
    };
    let p = Icmpv6Packet::new_unchecked(icmp);
    let Some(target) = p.nd_target() else { return false };
    if kind == NEIGHBOR_ADVERT && !port.v6_allowed(src, target) {
        return false;
    }
    p.nd_options().all(|o| match o {
        Ok((OPT_SOURCE_LINK_ADDR | OPT_TARGET_LINK_ADDR, o)) => NdOptions::link_addr(o) == Some(src),
        Ok(_) => true,
        Err(_) => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::HeapBuf;
    use crate::fixtures::*;
    use crate::meta::Action;
    use crate::stages::classify;
    use crate::wire::IpNet;

    fn verdicts(t: &Tables, frames: &[Vec<u8>]) -> Vec<Reason> {
        let mut pkts: Vec<HeapBuf> = frames.iter().map(|f| HeapBuf::new(f)).collect();
        let mut meta = vec![Meta::new(0); frames.len()];
        classify::run(t, &mut pkts, &mut meta);
        run(t, &mut pkts, &mut meta);
        meta.iter().map(|m| if m.action == Action::Drop { m.reason } else { Reason::None }).collect()
    }

    #[test]
    fn own_addresses_pass_and_spoofs_drop() {
        let t = two_port_tables(true);
        let ok = Reason::None;
        assert_eq!(
            verdicts(
                &t,
                &[
                    udp4(VM1, VM2, IP1, IP2),
                    udp4(Mac([2, 0, 0, 0, 0, 9]), VM2, IP1, IP2),
                    udp4(VM1, VM2, Ipv4Addr::new(10, 0, 0, 99), IP2),
                    arp_request(VM1, IP1, IP2),
                    arp_request(VM1, Ipv4Addr::new(10, 0, 0, 99), IP2),
                    udp6(VM1, VM2, ip6(1), ip6(2)),
                    udp6(VM1, VM2, ip6(99), ip6(2)),
                    udp6(VM1, VM2, Ipv6Addr::link_local_from_mac(VM1), ip6(2)),
                    ethernet(VM1, VM2, 0x88cc, &[0; 46]),
                ]
            ),
            vec![
                ok,
                Reason::PortSecurityMac,
                Reason::PortSecurityIp,
                ok,
                Reason::PortSecurityArp,
                ok,
                Reason::PortSecurityIp,
                ok,
                Reason::PortSecurityEthertype
            ]
        );
    }

    #[test]
    fn dhcp_discovery_and_dad_are_allowed_servers_are_not() {
        let t = two_port_tables(true);
        let discover = udp4_ports(VM1, Mac::BROADCAST, Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST, 68, 67);
        let offer = udp4_ports(VM1, Mac::BROADCAST, IP1, Ipv4Addr::BROADCAST, 67, 68);
        let dad = neighbor_solicit(VM1, Ipv6Addr::UNSPECIFIED, ip6(1));
        let ra = router_advert(VM1, Ipv6Addr::link_local_from_mac(VM1));
        assert_eq!(
            verdicts(&t, &[discover, offer, dad, ra]),
            vec![Reason::None, Reason::PortSecurityRogueServer, Reason::None, Reason::PortSecurityRogueServer]
        );
    }

    /// A neighbour solicitation (`kind` 135) or advertisement (136) for `target`, from `(sm, s)` to
    /// all nodes, with `options` as raw bytes.
    fn nd(kind: u8, sm: Mac, s: Ipv6Addr, target: Ipv6Addr, options: &[u8]) -> Vec<u8> {
        let mut icmp = vec![kind, 0, 0, 0, if kind == NEIGHBOR_ADVERT { 0x20 } else { 0 }, 0, 0, 0];
        icmp.extend_from_slice(&target.0);
        icmp.extend_from_slice(options);
        icmp6(sm, s, icmp)
    }

    /// The ICMPv6 message `icmp` (its checksum filled here) from `(sm, s)` to all nodes.
    fn icmp6(sm: Mac, s: Ipv6Addr, mut icmp: Vec<u8>) -> Vec<u8> {
        use crate::wire::checksum::{fold, pseudo_v6, sum};
        let d = Ipv6Addr::ALL_NODES;
        let c = !fold(sum(pseudo_v6(s.0, d.0, 58, icmp.len() as u32), &icmp));
        icmp[2..4].copy_from_slice(&c.to_be_bytes());
        let ip = ipv6(s, d, crate::wire::IpProtocol::Icmpv6, 255, &icmp);
        ethernet(sm, Mac::ipv6_multicast(&d.0), 0x86dd, &ip)
    }

    /// A link-layer address option (`kind` 1: source, 2: target).
    fn lla(kind: u8, mac: Mac) -> Vec<u8> {
        let mut o = vec![kind, 1];
        o.extend_from_slice(&mac.0);
        o
    }

    #[test]
    fn neighbor_discovery_speaks_only_for_the_port() {
        let t = two_port_tables(true);
        let (ok, spoof) = (Reason::None, Reason::PortSecurityNd);
        let (na, ns) = (NEIGHBOR_ADVERT, NEIGHBOR_SOLICIT);
        let ll1 = Ipv6Addr::link_local_from_mac(VM1);
        let two_options = [lla(2, VM1), lla(1, VM2)].concat();
        let cases = [
            // What a host sends about itself.
            (neighbor_solicit(VM1, ip6(1), ip6(2)), ok),
            (neighbor_solicit(VM1, Ipv6Addr::UNSPECIFIED, ip6(1)), ok),
            (neighbor_advert(VM1, ip6(1), VM2, ip6(2), false), ok),
            (nd(na, VM1, ll1, ll1, &lla(2, VM1)), ok),
            (nd(na, VM1, ip6(1), ip6(1), &[]), ok),
            (nd(na, VM1, ll1, ip6(1), &[lla(2, VM1), vec![99, 1, 0, 0, 0, 0, 0, 0]].concat()), ok),
            // Another port's address as an advertised target, from the port's own addresses.
            (nd(na, VM1, ip6(1), ip6(2), &lla(2, VM1)), spoof),
            (nd(na, VM1, ll1, Ipv6Addr::link_local_from_mac(VM2), &[]), spoof),
            // Another port's MAC in a link-layer option, or a zero one, or one of the wrong length.
            (nd(na, VM1, ip6(1), ip6(1), &lla(2, VM2)), spoof),
            (nd(ns, VM1, ip6(1), ip6(2), &lla(1, VM2)), spoof),
            (nd(na, VM1, ip6(1), ip6(1), &lla(2, Mac::ZERO)), spoof),
            (nd(na, VM1, ip6(1), ip6(1), &two_options), spoof),
            (nd(ns, VM1, ip6(1), ip6(2), &[1, 2, 0xfa, 0x16, 0x3e, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]), spoof),
            // Options that do not parse.
            (nd(na, VM1, ip6(1), ip6(1), &[lla(2, VM1), vec![99, 0, 0, 0, 0, 0, 0, 0]].concat()), spoof),
            (nd(ns, VM1, ip6(1), ip6(2), &[1, 2, 0xfa, 0x16, 0x3e, 0, 0, 1]), spoof),
            // Cut short of its target.
            (icmp6(VM1, ip6(1), vec![na, 0, 0, 0, 0x20, 0, 0, 0]), spoof),
            // The IP source is checked first.
            (nd(na, VM1, ip6(2), ip6(2), &lla(2, VM1)), Reason::PortSecurityIp),
        ];
        let (frames, want): (Vec<_>, Vec<_>) = cases.into_iter().unzip();
        assert_eq!(verdicts(&t, &frames), want);
        // Security off: anything goes.
        let off = two_port_tables(false);
        assert_eq!(verdicts(&off, &frames[6..8]), vec![ok, ok]);
        // An allowed address pair's MAC advertises the pair's addresses, not the port's own.
        let mut t = two_port_tables(true);
        let vip = Mac([0xfa, 0x16, 0x3e, 0xaa, 0xbb, 0xcc]);
        let mut net = ip6(0);
        net.0[14] = 1; // 2001:db8::100/120
        t.ports[0].as_mut().unwrap().allowed.push((vip, IpNet::V6(net, 120)));
        let mut vip_ip = net;
        vip_ip.0[15] = 7;
        let frames = [nd(na, vip, vip_ip, vip_ip, &lla(2, vip)), nd(na, vip, vip_ip, ip6(1), &lla(2, vip))];
        assert_eq!(verdicts(&t, &frames), vec![ok, spoof]);
    }

    #[test]
    fn allowed_address_pairs_and_disabled_security() {
        let mut t = two_port_tables(true);
        let vip = Mac([0xfa, 0x16, 0x3e, 0xaa, 0xbb, 0xcc]);
        t.ports[0].as_mut().unwrap().allowed.push((vip, IpNet::V4(Ipv4Addr::new(10, 0, 0, 128), 25)));
        let frames = [udp4(vip, VM2, Ipv4Addr::new(10, 0, 0, 200), IP2), udp4(vip, VM2, IP1, IP2)];
        assert_eq!(verdicts(&t, &frames), vec![Reason::None, Reason::PortSecurityIp]);
        let off = two_port_tables(false);
        assert_eq!(
            verdicts(&off, &[udp4(Mac([2, 0, 0, 0, 0, 9]), VM2, Ipv4Addr::new(1, 1, 1, 1), IP2)]),
            vec![Reason::None]
        );
    }
}
