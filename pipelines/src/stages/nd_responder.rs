//! IPv6 neighbour-discovery responder: a valid neighbour solicitation (hop limit 255, code 0, right
//! checksum) for an address the network knows becomes, in place, the solicited advertisement with the
//! owner's link-layer address, and goes back out of its port. DAD solicitations (from ::) are not
//! answered: their sender must see real conflicts only.

use crate::buf::PacketBuf;
use crate::meta::{flags, Meta};
use crate::tables::Tables;
use crate::wire::checksum;
use crate::wire::icmpv6::{NA_OVERRIDE, NA_ROUTER, NA_SOLICITED, NEIGHBOR_ADVERT, NEIGHBOR_SOLICIT};
use crate::wire::{Ipv6Addr, Mac};

/// ICMPv6 NA with one target link-layer option: type, code, checksum, flags+reserved, target, option.
const NA_LEN: usize = 4 + 4 + 16 + 8;

pub fn run<B: PacketBuf>(t: &Tables, pkts: &mut [B], meta: &mut [Meta]) {
    for (p, m) in pkts.iter_mut().zip(meta.iter_mut()) {
        packet(t, p, m);
    }
}

#[inline(always)]
pub fn is_icmpv6(m: &Meta) -> bool {
    m.has(flags::IPV6) && m.ip_proto == 58
}

/// One packet, answered if it is a pending neighbour solicitation the stage answers.
#[inline(always)]
pub fn packet<B: PacketBuf>(t: &Tables, p: &mut B, m: &mut Meta) {
    if m.pending() && is_icmpv6(m) {
        answer(t, p, m);
    }
}

/// One pending ICMPv6 packet.
fn answer<B: PacketBuf>(t: &Tables, p: &mut B, m: &mut Meta) {
    if let Some(answer) = solicitation(t, p.data(), m) {
        let router = t.router_for(m.network, answer).is_some();
        advertise(p, m, answer, router);
    }
}

/// The MAC to answer with, if this is a valid NS for a known, non-DAD target.
fn solicitation(t: &Tables, d: &[u8], m: &Meta) -> Option<Mac> {
    let (l3, l4) = (m.l3_off as usize, m.l4_off as usize);
    let icmp_len = l3 + 40 + u16::from_be_bytes([d[l3 + 4], d[l3 + 5]]) as usize - l4;
    let icmp = d.get(l4..l4 + icmp_len)?;
    if icmp.len() < 24 || icmp[0] != NEIGHBOR_SOLICIT || icmp[1] != 0 || d[l3 + 7] != 255 {
        return None;
    }
    let src = Ipv6Addr(d[l3 + 8..l3 + 24].try_into().ok()?);
    let dst = Ipv6Addr(d[l3 + 24..l3 + 40].try_into().ok()?);
    if src.is_unspecified() {
        return None;
    }
    let pseudo = checksum::pseudo_v6(src.0, dst.0, 58, icmp.len() as u32);
    if checksum::fold(checksum::sum(pseudo, icmp)) != 0xffff {
        return None;
    }
    let target = Ipv6Addr(icmp[8..24].try_into().ok()?);
    t.nd_lookup(m.network, target)
}

/// Rewrites the NS in `p` into the NA from `answer`, resizing the ICMPv6 part to one option.
fn advertise<B: PacketBuf>(p: &mut B, m: &mut Meta, answer: Mac, router: bool) {
    let (l3, l4) = (m.l3_off as usize, m.l4_off as usize);
    let want = l4 + NA_LEN;
    let have = p.len();
    let resized = if have > want { p.trim(have - want) } else { have == want || p.append(want - have).is_some() };
    if !resized {
        return; // no tailroom: left to l2_switch, the owner will answer
    }
    let d = p.data_mut();
    let requester_mac = Mac(d[6..12].try_into().expect("14-byte header"));
    let requester: [u8; 16] = d[l3 + 8..l3 + 24].try_into().expect("40-byte header");
    let target: [u8; 16] = d[l4 + 8..l4 + 24].try_into().expect("NS checked");
    d[0..6].copy_from_slice(&requester_mac.0);
    d[6..12].copy_from_slice(&answer.0);
    // IPv6: payload length, hop limit 255, from the target to the requester; no extension headers.
    d[l3 + 4..l3 + 6].copy_from_slice(&(NA_LEN as u16).to_be_bytes());
    d[l3 + 6] = 58;
    d[l3 + 7] = 255;
    d[l3 + 8..l3 + 24].copy_from_slice(&target);
    d[l3 + 24..l3 + 40].copy_from_slice(&requester);
    // Move the ICMPv6 part right after the fixed header if extension headers came before it.
    let l4 = l3 + 40;
    let icmp = &mut d[l4..l4 + NA_LEN];
    icmp.fill(0);
    icmp[0] = NEIGHBOR_ADVERT;
    // The router flag for a router's gateway address (RFC 4861 4.4), so hosts may use it as their router.
    icmp[4] = NA_SOLICITED | NA_OVERRIDE | if router { NA_ROUTER } else { 0 };
    icmp[8..24].copy_from_slice(&target);
    icmp[24] = 2; // target link-layer address
    icmp[25] = 1;
    icmp[26..32].copy_from_slice(&answer.0);
    let c = !checksum::fold(checksum::sum(checksum::pseudo_v6(target, requester, 58, NA_LEN as u32), icmp));
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    if l4 != m.l4_off as usize {
        let end = l4 + NA_LEN;
        p.trim(p.len() - end);
    }
    m.l4_off = l4 as u16;
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
    fn known_target_is_advertised_in_place() {
        let t = two_port_tables(true);
        let (m, out) = respond(&t, neighbor_solicit(VM1, ip6(1), ip6(2)));
        assert_eq!((m.action, m.out_port), (Action::Reply, 0));
        assert_eq!(out, neighbor_advert(VM2, ip6(2), VM1, ip6(1), false));
    }

    #[test]
    fn dad_unknown_and_corrupt_solicitations_are_left_alone() {
        let t = two_port_tables(true);
        let mut corrupt = neighbor_solicit(VM1, ip6(1), ip6(2));
        let n = corrupt.len();
        corrupt[n - 1] ^= 0xff;
        for f in [neighbor_solicit(VM1, Ipv6Addr::UNSPECIFIED, ip6(2)), neighbor_solicit(VM1, ip6(1), ip6(77)), corrupt]
        {
            let (m, out) = respond(&t, f.clone());
            assert_eq!(m.action, Action::Continue);
            assert_eq!(out, f);
        }
    }
}
