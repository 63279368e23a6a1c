//! Tunnel encapsulation, called by `egress` for a packet for a port on another node (`Action::Remote`:
//! switched there by `l2_switch`, or routed there by `l3_route`): it leaves by the underlay port inside
//! the outer headers of its network's segment, addressed to that node's tunnel endpoint (`tunnel.rs`). Its network is the
//! one it is in now: a routed packet's is the egress network, as Dragonflow's distributed router does it
//! (routed on the source node, then tunnelled to the destination's).
//! Drops: `tunnel.no_underlay`, `tunnel.no_segment`, `tunnel.no_chassis`, `tunnel.unresolved`,
//! `tunnel.no_headroom`.

use crate::buf::PacketBuf;
use crate::drop::Reason;
use crate::meta::{Action, Meta};
use crate::tables::Tables;
use crate::tunnel;

pub fn run<B: PacketBuf>(t: &Tables, pkts: &mut [B], meta: &mut [Meta]) {
    for (p, m) in pkts.iter_mut().zip(meta.iter_mut()) {
        if m.action == Action::Remote {
            packet(t, p, m);
        }
    }
}

/// One packet for another node (`Action::Remote`), encapsulated (or turned into an ARP request for the
/// next hop toward the node, [`to_node`]) or dropped.
#[inline]
pub fn packet<B: PacketBuf>(t: &Tables, p: &mut B, m: &mut Meta) {
    debug_assert_eq!(m.action, Action::Remote);
    match to_node(t, m.network, m.chassis, p) {
        Ok(port) => m.output(port),
        Err(reason) => m.drop(reason),
    }
}

/// Puts `p`, a frame of `network`, in a tunnel to node `chassis`: the port it leaves by, or why it
/// cannot. While the underlay's next hop toward the node has no known MAC, `p` becomes an ARP request for
/// it instead (at most one a second per next hop, [`NextHops::ask`](tunnel::NextHops::ask)) and the other
/// packets are dropped as `tunnel.unresolved`. The flood's head-end replication sends each copy for
/// another node through here too.
#[inline]
pub fn to_node<B: PacketBuf>(t: &Tables, network: u32, chassis: u32, p: &mut B) -> Result<u16, Reason> {
    let u = t.underlay.as_ref().ok_or(Reason::TunnelNoUnderlay)?;
    let seg = *t.segments.get(&network).filter(|s| t.decap.owns(s.key(), network)).ok_or(Reason::TunnelNoSegment)?;
    let c = t.chassis.get(&chassis).ok_or(Reason::TunnelNoChassis)?;
    if c.encaps & seg.encap.bit() == 0 {
        return Err(Reason::TunnelUnsupported);
    }
    match t.hops.mac(c.hop) {
        Some(next_hop) if tunnel::encap(u, c.ip, next_hop, seg, p) => Ok(u.port),
        Some(_) => Err(Reason::TunnelNoHeadroom),
        None => match t.hops.ask(c.hop) {
            Some(ip) if tunnel::arp_request(u, ip, p) => Ok(u.port),
            _ => Err(Reason::TunnelUnresolved),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::HeapBuf;
    use crate::fixtures::*;
    use crate::stages::{self, WorkerState};
    use crate::tables::{RemotePort, TablesBuilder};
    use crate::tunnel::{outer, Chassis, Encap, NextHops, Outer, Segment, Underlay};
    use crate::wire::{ArpOperation, IpNet, Ipv4Addr, Mac};

    const HERE: Underlay = UNDERLAY;
    const PEER: Chassis = Chassis { ip: PEER_CHASSIS.ip, hop: 0, encaps: Encap::ALL };

    /// VM1 and VM2 here on network 1, REMOTE_VM on chassis 3; `f` adds the tunnel's parts.
    fn tables(f: impl FnOnce(&mut TablesBuilder)) -> Tables {
        let mut b = TablesBuilder::new();
        b.local_port(0, vm_port(101, 1, VM1, IP1, ip6(1), true));
        b.local_port(1, vm_port(102, 1, VM2, IP2, ip6(2), true));
        let remote_ip = Ipv4Addr::new(10, 0, 0, 9);
        b.remote_port(1, REMOTE_VM, &[IpNet::host_v4(remote_ip)], RemotePort { lport: 109, chassis: 3 });
        f(&mut b);
        b.build()
    }

    fn full(b: &mut TablesBuilder) {
        b.underlay(Some(HERE)).chassis(3, PEER).segment(1, Segment { encap: Encap::Geneve, id: 5001 });
        b.next_hops(NextHops::new([(PEER.ip, Some(PEER_CHASSIS.mac))]).into());
    }

    #[test]
    fn a_packet_for_another_node_leaves_by_the_underlay_in_its_segment() {
        let t = tables(full);
        let frame = udp4(VM1, REMOTE_VM, IP1, Ipv4Addr::new(10, 0, 0, 9));
        let (meta, out, _) = run_burst(&t, std::slice::from_ref(&frame));
        assert_eq!((meta[0].action, meta[0].out_port), (Action::Output, HERE.port));
        let peer = Underlay { mac: PEER_CHASSIS.mac, ip: PEER.ip, ..HERE };
        let seg = Segment { encap: Encap::Geneve, id: 5001 };
        let inner = Encap::Geneve.overhead();
        assert_eq!(outer(&peer, &out[0]), Outer::Tunnel { seg, src: HERE.ip, inner, end: out[0].len() });
        assert_eq!(&out[0][Encap::Geneve.overhead()..], &frame[..]);
    }

    #[test]
    fn a_packet_routed_to_a_port_on_another_node_is_tunnelled_in_the_egress_network() {
        let t = tunnel_tables();
        let (meta, out, _) = run_burst(&t, &[udp4(VM1, ROUTER_MAC, IP1, Ipv4Addr::new(10, 2, 0, 9))]);
        assert_eq!((meta[0].action, meta[0].out_port, meta[0].network), (Action::Output, UNDERLAY.port, 2));
        let Outer::Tunnel { seg, inner, .. } = outer(&PEER_CHASSIS, &out[0]) else { panic!("a tunnel packet") };
        assert_eq!(seg, Segment { encap: Encap::Geneve, id: 102 }, "network 2's segment, not network 1's");
        let f = &out[0][inner..];
        assert_eq!((&f[0..6], &f[6..12]), (&REMOTE_VM2.0[..], &ROUTER_MAC2.0[..]), "routed here");
        assert_eq!(f[22], 63, "TTL decremented once, on this node");
    }

    #[test]
    fn an_unresolved_next_hop_is_asked_for_once_a_second_and_learned_from_its_answer() {
        let hops = std::sync::Arc::new(NextHops::new([(PEER.ip, None)]));
        let t = tables(|b| {
            b.underlay(Some(HERE)).chassis(3, PEER).segment(1, Segment { encap: Encap::Geneve, id: 5001 });
            b.next_hops(hops.clone());
        });
        let frame = udp4(VM1, REMOTE_VM, IP1, Ipv4Addr::new(10, 0, 0, 9));
        let (meta, out, _) = run_burst(&t, &[frame.clone(), frame.clone()]);
        assert_eq!((meta[0].action, meta[0].out_port), (Action::Output, HERE.port), "the first asks");
        let request = arp(ArpOperation::Request, HERE.mac, HERE.ip, Mac::ZERO, PEER.ip, Mac::BROADCAST);
        assert_eq!(out[0][..42], request[..42]);
        assert_eq!(out[0].len(), 60, "padded to Ethernet's minimum");
        assert_eq!((meta[1].action, meta[1].reason), (Action::Drop, Reason::TunnelUnresolved), "once a second");
        // The answer, through the decapsulation stage, teaches the MAC every worker then uses.
        let reply = arp(ArpOperation::Reply, PEER_CHASSIS.mac, PEER.ip, HERE.mac, HERE.ip, HERE.mac);
        let (mut pkts, mut m) = ([HeapBuf::new(&reply)], [Meta::new(HERE.port)]);
        stages::decide(&t, &mut WorkerState::new(1), &mut pkts, &mut m).fates(&t).for_each(drop);
        assert_eq!((m[0].action, m[0].reason), (Action::Drop, Reason::TunnelArpLearned));
        assert_eq!(hops.mac(0), Some(PEER_CHASSIS.mac));
        let (meta, out, _) = run_burst(&t, std::slice::from_ref(&frame));
        assert_eq!((meta[0].action, meta[0].out_port), (Action::Output, HERE.port));
        assert_eq!(&out[0][..6], &PEER_CHASSIS.mac.0[..], "tunnelled to the learned MAC");
    }

    #[test]
    fn a_segment_two_networks_claim_carries_neither() {
        let seg = Segment { encap: Encap::Geneve, id: 5001 };
        let t = tables(|b| {
            full(b);
            b.segment(9, seg);
        });
        let frame = udp4(VM1, REMOTE_VM, IP1, Ipv4Addr::new(10, 0, 0, 9));
        let (meta, _, _) = run_burst(&t, std::slice::from_ref(&frame));
        assert_eq!((meta[0].action, meta[0].reason), (Action::Drop, Reason::TunnelNoSegment));
        let mut b = TablesBuilder::from_tables(t);
        b.remove_segment(9);
        let (meta, _, _) = run_burst(&b.build(), std::slice::from_ref(&frame));
        assert_eq!((meta[0].action, meta[0].out_port), (Action::Output, HERE.port), "network 1's again");
    }

    #[test]
    fn each_missing_part_is_its_own_drop() {
        let frame = udp4(VM1, REMOTE_VM, IP1, Ipv4Addr::new(10, 0, 0, 9));
        type Setup = fn(&mut TablesBuilder);
        let cases: [(Setup, Reason); 5] = [
            (
                |b| {
                    b.chassis(3, PEER).segment(1, Segment { encap: Encap::Vxlan, id: 1 });
                },
                Reason::TunnelNoUnderlay,
            ),
            (
                |b| {
                    b.underlay(Some(HERE)).chassis(3, PEER);
                },
                Reason::TunnelNoSegment,
            ),
            (
                |b| {
                    b.underlay(Some(HERE)).segment(1, Segment { encap: Encap::Vxlan, id: 1 });
                },
                Reason::TunnelNoChassis,
            ),
            (
                |b| {
                    full(b);
                    b.chassis(3, Chassis { hop: 1, ..PEER });
                },
                Reason::TunnelUnresolved,
            ),
            (
                |b| {
                    full(b);
                    b.chassis(3, Chassis { encaps: Encap::Vxlan.bit() | Encap::Gre.bit(), ..PEER });
                },
                Reason::TunnelUnsupported,
            ),
        ];
        for (f, reason) in cases {
            let (meta, out, drops) = run_burst(&tables(f), std::slice::from_ref(&frame));
            assert_eq!((meta[0].action, meta[0].reason), (Action::Drop, reason));
            assert_eq!((drops.get(reason), &out[0]), (1, &frame));
        }
    }
}
