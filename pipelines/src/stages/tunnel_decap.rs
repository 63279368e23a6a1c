//! Tunnel decapsulation, before classification: a frame that comes in by the underlay port is a tunnel
//! packet from another node, or ARP about the underlay, or dropped. A tunnel packet is accepted only if
//! it is addressed to this node's MAC and tunnel endpoint, comes from a known chassis and carries the
//! segment of a network this node has; its outer headers are stripped and its inner frame goes on as a
//! packet of that network, flagged `FROM_TUNNEL`: the sending node did port security, the responders and
//! the routing, so the later stages only switch it to this node's ports (never back into a tunnel). An
//! ARP request for this node's tunnel endpoint is answered in place; ARP between one of the underlay's
//! next hops and this node (a reply to it, a request for its address) teaches the next hop's MAC
//! (`tunnel::NextHops`, the dataplane's own resolution) and goes no further; other ARP is dropped.
//! Drops: `tunnel.not_ours`, `tunnel.malformed`, `tunnel.not_tunnel`, `tunnel.unknown_chassis`,
//! `tunnel.unknown_segment`, `tunnel.arp`, `tunnel.arp_learned`.

use crate::buf::PacketBuf;
use crate::drop::Reason;
use crate::meta::{flags, Meta};
use crate::stages::{arp_responder, classify};
use crate::tables::Tables;
use crate::tunnel::{self, Outer, Underlay};
use crate::wire::{ethernet, ArpOperation, ArpPacket, ArpRepr, Mac};

pub fn run<B: PacketBuf>(t: &Tables, pkts: &mut [B], meta: &mut [Meta]) {
    let Some(u) = t.underlay else { return };
    for (p, m) in pkts.iter_mut().zip(meta.iter_mut()) {
        if m.in_port == u.port {
            packet(t, &u, p, m);
        }
    }
}

/// One frame that came in by the underlay port `u`.
#[inline]
pub fn packet<B: PacketBuf>(t: &Tables, u: &Underlay, p: &mut B, m: &mut Meta) {
    match tunnel::outer(u, p.data()) {
        Outer::Tunnel { seg, src, inner, end } => {
            if !t.chassis_ips.contains_key(&src.to_u32()) {
                return m.drop(Reason::TunnelUnknownChassis);
            }
            let Some(network) = t.decap.get(seg.key()) else { return m.drop(Reason::TunnelUnknownSegment) };
            // The outer frame's padding, then the outer headers, go.
            if !p.trim(p.len() - end) || !p.adj(inner) {
                return m.drop(Reason::TunnelMalformed);
            }
            if !classify::from_outside(p.data(), network, m) {
                m.drop(Reason::TunnelMalformed);
            }
        }
        Outer::Arp => {
            if !classify::parse(p.data(), m) || !m.has(flags::ARP) {
                return m.drop(Reason::TunnelMalformed);
            }
            // A next hop's MAC, from ARP between it and this node only: a reply to this node, or a request
            // for its address; sent from the MAC it claims (a stranger's gratuitous ARP teaches nothing).
            let eth_src = Mac(p.data()[6..12].try_into().expect("outer checked the header"));
            let learned = ArpPacket::new_checked(&p.data()[ethernet::HEADER_LEN..])
                .and_then(|a| ArpRepr::parse(&a))
                .is_ok_and(|a| {
                    let to_us = match a.operation {
                        ArpOperation::Reply => a.target_ip == u.ip && a.target_mac == u.mac,
                        ArpOperation::Request => a.target_ip == u.ip,
                        _ => false,
                    };
                    to_us && a.sender_mac == eth_src && t.hops.learn(a.sender_ip, a.sender_mac)
                });
            let ours = (u.ip, u.mac);
            arp_responder::answer_with(p, m, |ip| (ip == ours.0).then_some(ours.1));
            if m.pending() {
                m.drop(if learned { Reason::TunnelArpLearned } else { Reason::TunnelArp });
            }
        }
        Outer::NotOurs => m.drop(Reason::TunnelNotOurs),
        Outer::NotTunnel => m.drop(Reason::TunnelNotTunnel),
        Outer::Malformed => m.drop(Reason::TunnelMalformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::HeapBuf;
    use crate::fate::Fate;
    use crate::fixtures::*;
    use crate::meta::Action;
    use crate::stages::{self, WorkerState};
    use crate::tables::TablesBuilder;
    use crate::tunnel::{encap, Chassis, Encap, NextHops, Segment};
    use crate::wire::{ArpOperation, Ipv4Addr, Mac};

    const HERE: Underlay = UNDERLAY;
    const PEER_MAC: Mac = PEER_CHASSIS.mac;
    /// The peer's underlay, as it sends to this node.
    const PEER: Underlay = PEER_CHASSIS;
    const SEG: Segment = Segment { encap: Encap::Vxlan, id: 100 };
    const REMOTE_VM: Mac = Mac([0xfa, 0x16, 0x3e, 0, 0, 9]);
    const REMOTE_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 9);

    /// VM1 and VM2 on network 1 (segment VXLAN 100), the peer chassis 3.
    fn tables() -> Tables {
        let mut b = TablesBuilder::new();
        b.local_port(0, vm_port(101, 1, VM1, IP1, ip6(1), true));
        b.local_port(1, vm_port(102, 1, VM2, IP2, ip6(2), true));
        b.underlay(Some(HERE)).chassis(3, Chassis { ip: PEER.ip, hop: 0, encaps: Encap::ALL }).segment(1, SEG);
        // (Not resolved yet: its MAC is learned from ARP.)
        b.next_hops(NextHops::new([(PEER.ip, None)]).into());
        b.build()
    }

    /// `inner` as the peer sends it to this node in `seg`.
    fn tunnelled(inner: &[u8], seg: Segment) -> Vec<u8> {
        let mut p = HeapBuf::new(inner);
        assert!(encap(&PEER, HERE.ip, HERE.mac, seg, &mut p));
        p.into_vec()
    }

    /// `frames` decided as one burst from the underlay port.
    fn decide(t: &Tables, frames: &[Vec<u8>]) -> (Vec<Meta>, Vec<Vec<u8>>) {
        let mut pkts: Vec<HeapBuf> = frames.iter().map(|f| HeapBuf::new(f)).collect();
        let mut meta = vec![Meta::new(HERE.port); frames.len()];
        stages::decide(t, &mut WorkerState::new(1), &mut pkts, &mut meta).fates(t).for_each(drop);
        (meta, pkts.into_iter().map(HeapBuf::into_vec).collect())
    }

    #[test]
    fn a_tunnel_packet_is_stripped_and_switched_to_its_local_port() {
        let t = tables();
        let inner = udp4(REMOTE_VM, VM2, REMOTE_IP, IP2);
        let (meta, out) = decide(&t, &[tunnelled(&inner, SEG)]);
        assert_eq!((meta[0].action, meta[0].out_port, meta[0].network), (Action::Output, 1, 1));
        assert!(meta[0].has(flags::FROM_TUNNEL));
        assert_eq!(out[0], inner, "no outer header left, the inner frame untouched");
    }

    #[test]
    fn tunnelled_unicast_for_no_port_here_is_dropped_not_flooded() {
        let t = tables();
        let stranger = Mac([0xfa, 0x16, 0x3e, 0, 0, 0x77]);
        let (meta, _) = decide(&t, &[tunnelled(&udp4(REMOTE_VM, stranger, REMOTE_IP, IP2), SEG)]);
        assert_eq!((meta[0].action, meta[0].reason), (Action::Drop, Reason::L2NoDestination));
    }

    #[test]
    fn a_tunnelled_broadcast_floods_only_the_local_ports() {
        let t = tables();
        let inner = arp_request(REMOTE_VM, REMOTE_IP, IP2);
        let (meta, out) = decide(&t, &[tunnelled(&inner, SEG)]);
        // Not answered by this node's responder (the sending node answers what it knows), flooded here.
        assert_eq!(meta[0].action, Action::Flood);
        assert_eq!(out[0], inner);
        let (mut pkts, mut meta) = ([HeapBuf::new(&tunnelled(&inner, SEG))], [Meta::new(HERE.port)]);
        let decided = stages::decide(&t, &mut WorkerState::new(1), &mut pkts, &mut meta);
        let Some(Fate::Flood(ports)) = decided.fates(&t).next() else { panic!("a flood") };
        assert!(ports.chassis().is_empty(), "never back into a tunnel");
        assert_eq!(ports.collect::<Vec<u16>>(), [0, 1]);
    }

    #[test]
    fn what_is_not_a_known_tunnel_to_this_node_is_dropped_by_name() {
        let t = tables();
        let inner = udp4(REMOTE_VM, VM2, REMOTE_IP, IP2);
        let stranger = {
            let mut p = HeapBuf::new(&inner);
            encap(&Underlay { ip: Ipv4Addr::new(192, 168, 100, 66), ..PEER }, HERE.ip, HERE.mac, SEG, &mut p);
            p.into_vec()
        };
        let to_other = {
            let mut p = HeapBuf::new(&inner);
            encap(&PEER, Ipv4Addr::new(192, 168, 100, 3), HERE.mac, SEG, &mut p);
            p.into_vec()
        };
        let mut spoofed = arp(ArpOperation::Reply, Mac([2, 0, 0, 0, 0, 0x66]), PEER.ip, HERE.mac, HERE.ip, HERE.mac);
        spoofed[6..12].copy_from_slice(&PEER_MAC.0);
        let cases = [
            (tunnelled(&inner, Segment { encap: Encap::Vxlan, id: 101 }), Reason::TunnelUnknownSegment),
            (tunnelled(&inner, Segment { encap: Encap::Geneve, id: 100 }), Reason::TunnelUnknownSegment),
            (stranger, Reason::TunnelUnknownChassis),
            (to_other, Reason::TunnelNotOurs),
            (udp4(PEER_MAC, HERE.mac, PEER.ip, HERE.ip), Reason::TunnelNotTunnel),
            (tunnelled(&inner, SEG)[..60].to_vec(), Reason::TunnelMalformed),
            (
                arp_request(PEER_MAC, Ipv4Addr::new(192, 168, 100, 66), Ipv4Addr::new(192, 168, 100, 9)),
                Reason::TunnelArp,
            ),
            // The peer's request for another address, a reply to someone else, one sent from another MAC
            // than it claims: nothing learned.
            (arp_request(PEER_MAC, PEER.ip, Ipv4Addr::new(192, 168, 100, 9)), Reason::TunnelArp),
            (
                arp(ArpOperation::Reply, PEER_MAC, PEER.ip, PEER_MAC, Ipv4Addr::new(192, 168, 100, 9), PEER_MAC),
                Reason::TunnelArp,
            ),
            (spoofed, Reason::TunnelArp),
            (arp(ArpOperation::Reply, PEER_MAC, PEER.ip, HERE.mac, HERE.ip, HERE.mac), Reason::TunnelArpLearned),
        ];
        for (frame, reason) in cases {
            let (meta, _) = decide(&t, &[frame]);
            assert_eq!((meta[0].action, meta[0].reason), (Action::Drop, reason));
        }
    }

    #[test]
    fn arp_for_the_tunnel_endpoint_is_answered() {
        let t = tables();
        let (meta, out) = decide(&t, &[arp_request(PEER_MAC, PEER.ip, HERE.ip)]);
        assert_eq!((meta[0].action, meta[0].out_port), (Action::Reply, HERE.port));
        assert_eq!(out[0], arp(ArpOperation::Reply, HERE.mac, HERE.ip, PEER_MAC, PEER.ip, PEER_MAC));
    }
}
