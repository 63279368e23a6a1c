//! Provider networks (Neutron's `vlan` and `flat`): a network of physical network P leaves this node by
//! P's uplink port (the node's bridge mapping P:port), tagged with the network's VLAN (802.1Q) or
//! untagged for a flat one, instead of in a tunnel; the physical network delivers it, to other nodes or to
//! hosts outside the cloud. Unicast for a port on another node goes out there too, and so does a copy of
//! each flood (`l2_switch`'s flood ports).
//!
//! What comes in by an uplink belongs to the network of its VLAN on that port (untagged or
//! priority-tagged: the flat network's). Its tag popped, it goes to this node's ports only, as a
//! tunnelled packet does (`flags::FROM_TUNNEL`): whoever sent it on the physical network delivered it to
//! the other nodes itself; nothing goes back out of an uplink or into a tunnel.
//! Drops: `provider.unknown_vlan`, `provider.malformed`, `provider.no_headroom`.

use crate::buf::PacketBuf;
use crate::drop::Reason;
use crate::meta::Meta;
use crate::stages::classify;
use crate::tables::{uplink_key, Tables, Uplink};
use crate::wire::{ethernet, vlan, EtherType};

/// Where the EtherType (or an 802.1Q tag) starts.
const ET: usize = 12;

/// A frame that came in by uplink port `m.in_port`: into its network, untagged, or dropped.
#[inline]
pub fn ingress<B: PacketBuf>(t: &Tables, p: &mut B, m: &mut Meta) {
    let d = p.data();
    if d.len() < ethernet::HEADER_LEN {
        return m.drop(Reason::ProviderMalformed);
    }
    let tagged = u16::from_be_bytes([d[ET], d[ET + 1]]) == u16::from(EtherType::Vlan);
    let vid = match tagged {
        true if d.len() < ethernet::HEADER_LEN + vlan::HEADER_LEN => return m.drop(Reason::ProviderMalformed),
        true => u16::from_be_bytes([d[ET + 2], d[ET + 3]]) & 0x0fff,
        false => 0,
    };
    let Some(network) = t.uplink_in.get(uplink_key(m.in_port, vid)) else {
        return m.drop(Reason::ProviderUnknownVlan);
    };
    if tagged {
        // The MACs move over the tag, which goes.
        p.data_mut().copy_within(0..ET, vlan::HEADER_LEN);
        if !p.adj(vlan::HEADER_LEN) {
            return m.drop(Reason::ProviderMalformed);
        }
    }
    // (A second tag, QinQ, is malformed here.)
    if !classify::from_outside(p.data(), network, m) {
        m.drop(Reason::ProviderMalformed);
    }
}

/// A packet of a provider network for a port on another node (`Action::Remote`): out of the uplink
/// `u`, tagged.
#[inline]
pub fn egress<B: PacketBuf>(u: Uplink, p: &mut B, m: &mut Meta) {
    if push(u, p) {
        m.output(u.port);
    } else {
        m.drop(Reason::ProviderNoHeadroom);
    }
}

/// Tags the frame in `p` with `u`'s VLAN (priority 0), if it has one; false, and `p` unchanged, if the
/// buffer has no headroom for the tag.
pub fn push<B: PacketBuf>(u: Uplink, p: &mut B) -> bool {
    let Some(vid) = u.vlan else { return true };
    if p.len() < ethernet::HEADER_LEN || p.prepend(vlan::HEADER_LEN).is_none() {
        return false;
    }
    let d = p.data_mut();
    d.copy_within(vlan::HEADER_LEN..vlan::HEADER_LEN + ET, 0);
    d[ET..ET + 2].copy_from_slice(&u16::from(EtherType::Vlan).to_be_bytes());
    d[ET + 2..ET + 4].copy_from_slice(&(vid & 0x0fff).to_be_bytes());
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::HeapBuf;
    use crate::fate::Fate;
    use crate::fixtures::*;
    use crate::meta::Action;
    use crate::stages::{self, WorkerState};
    use crate::tables::{RemotePort, TablesBuilder};
    use crate::wire::{IpNet, Ipv4Addr, Mac};

    const UPLINK: u16 = 4;
    const REMOTE_VM: Mac = Mac([0xfa, 0x16, 0x3e, 0, 0, 9]);
    const REMOTE_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 9);
    const VM3: Mac = Mac([0xfa, 0x16, 0x3e, 0, 0, 3]);
    const IP3: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 3);

    /// VM1 and VM2 on network 1 (VLAN 100 on port 4), VM3 on network 2 (flat on port 4), a port on
    /// another node on network 1.
    fn tables() -> Tables {
        let mut b = TablesBuilder::new();
        b.local_port(0, vm_port(101, 1, VM1, IP1, ip6(1), true));
        b.local_port(1, vm_port(102, 1, VM2, IP2, ip6(2), true));
        b.local_port(2, vm_port(103, 2, VM3, IP3, ip6(3), true));
        b.remote_port(1, REMOTE_VM, &[IpNet::host_v4(REMOTE_IP)], RemotePort { lport: 109, chassis: 7 });
        b.uplink(1, Uplink { port: UPLINK, vlan: Some(100) }).uplink(2, Uplink { port: UPLINK, vlan: None });
        b.build()
    }

    fn tagged(frame: &[u8], vid: u16) -> Vec<u8> {
        let mut p = HeapBuf::new(frame);
        assert!(push(Uplink { port: UPLINK, vlan: Some(vid) }, &mut p));
        p.into_vec()
    }

    /// `frames` decided as one burst from `port`.
    fn decide(t: &Tables, port: u16, frames: &[Vec<u8>]) -> (Vec<Meta>, Vec<Vec<u8>>) {
        let mut pkts: Vec<HeapBuf> = frames.iter().map(|f| HeapBuf::new(f)).collect();
        let mut meta = vec![Meta::new(port); frames.len()];
        stages::decide(t, &mut WorkerState::new(1), &mut pkts, &mut meta).fates(t).for_each(drop);
        (meta, pkts.into_iter().map(HeapBuf::into_vec).collect())
    }

    #[test]
    fn a_tag_pushed_is_802_1q_and_popped_gives_the_frame_back() {
        let frame = udp4(VM1, VM2, IP1, IP2);
        let t = tagged(&frame, 100);
        assert_eq!(t.len(), frame.len() + 4);
        assert_eq!((&t[..12], &t[12..16], &t[16..]), (&frame[..12], &[0x81, 0, 0, 100][..], &frame[12..]));
        let mut p = HeapBuf::new(&frame);
        assert!(push(Uplink { port: UPLINK, vlan: None }, &mut p), "flat: untouched");
        assert_eq!(p.into_vec(), frame);
    }

    #[test]
    fn from_the_uplink_a_frame_goes_to_the_network_of_its_vlan_untagged() {
        let t = tables();
        let to_vm2 = udp4(REMOTE_VM, VM2, REMOTE_IP, IP2);
        let to_vm3 = udp4(REMOTE_VM, VM3, REMOTE_IP, IP3);
        let (meta, out) = decide(&t, UPLINK, &[tagged(&to_vm2, 100), to_vm3.clone(), tagged(&to_vm3, 0)]);
        assert_eq!((meta[0].action, meta[0].out_port, meta[0].network), (Action::Output, 1, 1));
        assert_eq!(out[0], to_vm2, "the tag popped");
        assert_eq!((meta[1].action, meta[1].out_port, meta[1].network), (Action::Output, 2, 2), "untagged: flat");
        assert_eq!((meta[2].action, meta[2].out_port), (Action::Output, 2), "priority-tagged: flat");
        assert_eq!(out[2], to_vm3);
    }

    #[test]
    fn what_no_network_claims_or_does_not_parse_is_dropped_by_name() {
        let t = tables();
        let frame = udp4(REMOTE_VM, VM2, REMOTE_IP, IP2);
        let cases = [
            (tagged(&frame, 101), Reason::ProviderUnknownVlan),
            (tagged(&tagged(&frame, 7), 100), Reason::ProviderMalformed),
            (tagged(&frame, 100)[..16].to_vec(), Reason::ProviderMalformed),
            (frame[..10].to_vec(), Reason::ProviderMalformed),
        ];
        for (f, reason) in cases {
            let (meta, _) = decide(&t, UPLINK, &[f]);
            assert_eq!((meta[0].action, meta[0].reason), (Action::Drop, reason));
        }
        let (meta, _) = decide(&t, 3, &[tagged(&frame, 100)]);
        assert_eq!(meta[0].reason, Reason::ClassifyUnknownPort, "port 3 is no uplink");
    }

    #[test]
    fn a_vlan_two_networks_claim_carries_neither_way() {
        let mut b = TablesBuilder::from_tables(tables());
        b.local_port(3, vm_port(104, 5, Mac([0xfa, 0x16, 0x3e, 0, 0, 4]), IP3, ip6(4), true));
        b.uplink(5, Uplink { port: UPLINK, vlan: Some(100) });
        let t = b.build();
        let frame = udp4(VM1, REMOTE_VM, IP1, REMOTE_IP);
        let (meta, _) = decide(&t, 0, std::slice::from_ref(&frame));
        assert_eq!((meta[0].action, meta[0].reason), (Action::Drop, Reason::ProviderVlanConflict));
        let (meta, _) = decide(&t, UPLINK, &[tagged(&udp4(REMOTE_VM, VM2, REMOTE_IP, IP2), 100)]);
        assert_eq!((meta[0].action, meta[0].reason), (Action::Drop, Reason::ProviderUnknownVlan));
        let broadcast = udp4(VM1, Mac::BROADCAST, IP1, Ipv4Addr::BROADCAST);
        let (mut pkts, mut m) = ([HeapBuf::new(&broadcast)], [Meta::new(0)]);
        let decided = stages::decide(&t, &mut WorkerState::new(1), &mut pkts, &mut m);
        let Some(Fate::Flood(ports)) = decided.fates(&t).next() else { panic!("a flood") };
        assert_eq!(ports.uplink(), None, "no copy out of the uplink either");
    }

    #[test]
    fn to_a_port_on_another_node_out_of_the_uplink_tagged_and_floods_copy_there() {
        let t = tables();
        let frame = udp4(VM1, REMOTE_VM, IP1, REMOTE_IP);
        let (meta, out) = decide(&t, 0, std::slice::from_ref(&frame));
        assert_eq!((meta[0].action, meta[0].out_port), (Action::Output, UPLINK));
        assert_eq!(out[0], tagged(&frame, 100));
        let broadcast = udp4(VM1, Mac::BROADCAST, IP1, Ipv4Addr::BROADCAST);
        let (mut pkts, mut m) = ([HeapBuf::new(&broadcast)], [Meta::new(0)]);
        let decided = stages::decide(&t, &mut WorkerState::new(1), &mut pkts, &mut m);
        let Some(Fate::Flood(ports)) = decided.fates(&t).next() else { panic!("a flood") };
        assert_eq!(ports.uplink(), Some(Uplink { port: UPLINK, vlan: Some(100) }));
        assert_eq!(ports.collect::<Vec<u16>>(), [1]);
        // From the uplink: local ports only.
        let (mut pkts, mut m) = ([HeapBuf::new(&tagged(&broadcast, 100))], [Meta::new(UPLINK)]);
        let decided = stages::decide(&t, &mut WorkerState::new(1), &mut pkts, &mut m);
        let Some(Fate::Flood(ports)) = decided.fates(&t).next() else { panic!("a flood") };
        assert_eq!(ports.uplink(), None, "never back out of an uplink");
        assert_eq!(ports.collect::<Vec<u16>>(), [0, 1]);
    }
}
