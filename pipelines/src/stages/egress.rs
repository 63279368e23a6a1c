//! Egress: the last stage. A packet for a local port leaves only if that port is still bound and up, and
//! if its security groups let it in (`security_groups::to_port`); a
//! packet for a port on another node goes out of its provider network's uplink, tagged (`provider`), or
//! else to the tunnel stage (`tunnel_encap`), which decides it: out of the underlay port in a tunnel, or
//! dropped and counted, never flooded or lost silently.
//! Drops: `egress.port_down`, `provider.vlan_conflict` (the network's VLAN is another's too).

use crate::buf::PacketBuf;
use crate::drop::Reason;
use crate::meta::{Action, Meta};
use crate::stages::{provider, security_groups, tunnel_encap, WorkerState};
use crate::tables::Tables;

pub fn run<B: PacketBuf>(t: &Tables, w: &mut WorkerState, pkts: &mut [B], meta: &mut [Meta]) {
    for (p, m) in pkts.iter_mut().zip(meta.iter_mut()) {
        packet(t, w, p, m);
    }
}

/// One decided packet (or one for another node, which the tunnel stage decides).
#[inline(always)]
pub fn packet<B: PacketBuf>(t: &Tables, w: &mut WorkerState, p: &mut B, m: &mut Meta) {
    match m.action {
        Action::Output => match t.port(m.out_port) {
            Some(e) if e.up => {
                if e.sg.is_some() {
                    security_groups::to_port(t, w, p, m);
                }
            }
            _ => m.drop(Reason::EgressPortDown),
        },
        Action::Flood if !t.filtered_networks.is_empty() && t.filtered_networks.binary_search(&m.network).is_ok() => {
            security_groups::flood(t, w, p, m)
        }
        Action::Remote => match t.uplinks.get(&m.network) {
            Some(&u) if t.uplink_in.owns(u.key(), m.network) => provider::egress(u, p, m),
            Some(_) => m.drop(Reason::ProviderVlanConflict),
            None => tunnel_encap::packet(t, p, m),
        },
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::HeapBuf;
    use crate::drop::DropCounters;
    use crate::fixtures::*;
    use crate::stages;
    use crate::tables::{RemotePort, TablesBuilder};
    use crate::wire::{IpNet, Ipv4Addr, Mac};

    const REMOTE_VM: Mac = Mac([0xfa, 0x16, 0x3e, 0, 0, 9]);

    fn tables(vm2_up: bool) -> Tables {
        let mut b = TablesBuilder::new();
        b.local_port(0, vm_port(101, 1, VM1, IP1, ip6(1), true));
        let mut vm2 = vm_port(102, 1, VM2, IP2, ip6(2), true);
        vm2.up = vm2_up;
        b.local_port(1, vm2);
        let remote_ip = Ipv4Addr::new(10, 0, 0, 9);
        b.remote_port(1, REMOTE_VM, &[IpNet::host_v4(remote_ip)], RemotePort { lport: 109, chassis: 7 });
        b.build()
    }

    fn decide(t: &Tables, frames: &[Vec<u8>]) -> (Vec<Meta>, Vec<Vec<u8>>, DropCounters) {
        run_burst(t, frames)
    }

    #[test]
    fn down_ports_get_nothing_unicast_or_flooded() {
        let (meta, _, drops) = decide(&tables(false), &[udp4(VM1, VM2, IP1, IP2), arp_request(VM1, IP1, IP2)]);
        assert_eq!((meta[0].action, meta[0].reason), (Action::Drop, Reason::EgressPortDown));
        // VM2 is down, so the broadcast has nobody to go to; its address is still answered for.
        assert_eq!(meta[1].action, Action::Reply);
        let (meta, _, _) = decide(&tables(false), &[udp4(VM1, Mac::BROADCAST, IP1, IP2)]);
        assert_eq!((meta[0].action, meta[0].reason), (Action::Drop, Reason::L2NoDestination));
        assert_eq!(drops.get(Reason::EgressPortDown), 1);
        let (meta, _, _) = decide(&tables(true), &[udp4(VM1, VM2, IP1, IP2), udp4(VM1, Mac::BROADCAST, IP1, IP2)]);
        assert_eq!((meta[0].action, meta[0].out_port, meta[1].action), (Action::Output, 1, Action::Flood));
    }

    #[test]
    fn remote_ports_go_to_the_tunnel_stage_and_are_answered_for() {
        let t = tables(true);
        let remote_ip = Ipv4Addr::new(10, 0, 0, 9);
        let mut m = Meta::new(0);
        let mut p = HeapBuf::new(&udp4(VM1, REMOTE_VM, IP1, remote_ip));
        let w = &mut stages::WorkerState::new(1);
        stages::decide(&t, w, core::slice::from_mut(&mut p), core::slice::from_mut(&mut m));
        assert_eq!((m.action, m.reason), (Action::Drop, Reason::TunnelNoUnderlay));
        assert_eq!((m.dst_lport, m.chassis), (109, 7));
        let (meta, out, _) = decide(&t, &[arp_request(VM1, IP1, remote_ip)]);
        assert_eq!(meta[0].action, Action::Reply);
        assert_eq!(out[0], arp(crate::wire::ArpOperation::Reply, REMOTE_VM, remote_ip, VM1, IP1, VM1));
    }
}
