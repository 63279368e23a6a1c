//! Port security (anti-spoofing), as Neutron defines it: a port sends only from its own MAC and IPs (or
//! an allowed address pair's); DHCP discovery (from 0.0.0.0) and IPv6 DAD (from ::) and the port's
//! link-local address are allowed; ARP must claim the port's own addresses; a VM may not act as a DHCP
//! server or an IPv6 router. Skipped for ports with port security off.
//! Drops: `port_security.mac_spoof`, `.ip_spoof`, `.arp_spoof`, `.rogue_server`, `.ethertype`.

use crate::buf::PacketBuf;
use crate::drop::Reason;
use crate::meta::{flags, Meta};
use crate::stages::BurstMemo;
use crate::tables::{PortEntry, Tables};
use crate::wire::{Ipv4Addr, Ipv6Addr, Mac};

pub fn run<B: PacketBuf>(t: &Tables, pkts: &mut [B], meta: &mut [Meta]) {
    let mut memo = BurstMemo::default();
    for (p, m) in pkts.iter_mut().zip(meta.iter_mut()) {
        if m.pending() {
            packet(t, &mut memo, p, m);
        }
    }
}

/// One packet still pending.
#[inline(always)]
pub fn packet<'t, B: PacketBuf>(t: &'t Tables, memo: &mut BurstMemo<'t>, p: &mut B, m: &mut Meta) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::HeapBuf;
    use crate::fixtures::*;
    use crate::meta::Action;
    use crate::stages::classify;
    use crate::tables::IpNet;

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
