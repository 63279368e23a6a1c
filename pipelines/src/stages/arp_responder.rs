//! ARP responder: a request for an address the network knows is answered by the switch itself, in place
//! (the request becomes the reply and goes back out of its port); it is never flooded. Gratuitous ARP,
//! probes (from 0.0.0.0) and requests for the sender's own address are left to `l2_switch`.

use crate::buf::PacketBuf;
use crate::meta::{flags, Meta};
use crate::tables::Tables;
use crate::wire::arp::ArpPacket;
use crate::wire::{ArpOperation, EthernetFrame, Ipv4Addr, Mac};

pub fn run<B: PacketBuf>(t: &Tables, pkts: &mut [B], meta: &mut [Meta]) {
    for (p, m) in pkts.iter_mut().zip(meta.iter_mut()) {
        packet(t, p, m);
    }
}

/// One packet, answered if it is a pending ARP request the stage answers.
#[inline(always)]
pub fn packet<B: PacketBuf>(t: &Tables, p: &mut B, m: &mut Meta) {
    if m.pending() && m.has(flags::ARP) {
        answer(t, p, m);
    }
}

/// One pending ARP packet.
fn answer<B: PacketBuf>(t: &Tables, p: &mut B, m: &mut Meta) {
    let network = m.network;
    answer_with(p, m, |ip| t.arp_lookup(network, ip));
}

/// Rewrites an ARP request (its header at `m.l3_off`) into the reply `lookup` gives for its target
/// address, back out of its port; leaves it as it is if `lookup` has no answer or the request is not one
/// the responder answers (not Ethernet/IPv4, a probe, gratuitous, or asking for the sender's own MAC).
/// The tunnel stage answers for the underlay's own address with it too.
pub(crate) fn answer_with<B: PacketBuf>(p: &mut B, m: &mut Meta, lookup: impl FnOnce(Ipv4Addr) -> Option<Mac>) {
    let l3 = m.l3_off as usize;
    let d = p.data_mut();
    let arp = ArpPacket::new_unchecked(&d[l3..]);
    if arp.htype() != 1 || arp.ptype() != 0x0800 || arp.operation() != ArpOperation::Request {
        return;
    }
    let (sha, spa, tpa) = (arp.sender_mac(), arp.sender_ip(), arp.target_ip());
    if spa == Ipv4Addr::UNSPECIFIED || spa == tpa {
        return;
    }
    let Some(answer) = lookup(tpa) else {
        return;
    };
    if answer == sha {
        return;
    }
    let mut arp = ArpPacket::new_unchecked(&mut d[l3..]);
    arp.set_operation(ArpOperation::Reply);
    arp.set_sender(answer, tpa);
    arp.set_target(sha, spa);
    let mut eth = EthernetFrame::new_unchecked(&mut d[..]);
    eth.set_dst(sha);
    eth.set_src(answer);
    m.reply();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::*;
    use crate::meta::Action;

    fn respond(t: &Tables, frame: Vec<u8>) -> (Meta, Vec<u8>) {
        classify_then(t, &frame, run)
    }

    #[test]
    fn known_address_is_answered_in_place() {
        let t = two_port_tables(true);
        let (m, out) = respond(&t, arp_request(VM1, IP1, IP2));
        assert_eq!((m.action, m.out_port), (Action::Reply, 0));
        assert_eq!(out, arp(ArpOperation::Reply, VM2, IP2, VM1, IP1, VM1));
    }

    #[test]
    fn unknown_gratuitous_and_probe_are_not_answered() {
        let t = two_port_tables(true);
        for f in [
            arp_request(VM1, IP1, Ipv4Addr::new(10, 0, 0, 77)),
            arp_request(VM1, IP1, IP1),
            arp_request(VM1, Ipv4Addr::UNSPECIFIED, IP2),
            arp(ArpOperation::Reply, VM1, IP1, VM2, IP2, VM2),
        ] {
            let (m, out) = respond(&t, f.clone());
            assert_eq!(m.action, Action::Continue);
            assert_eq!(out, f);
        }
    }
}
