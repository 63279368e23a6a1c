//! The distributed L3 router: a packet sent to a router interface's MAC is routed by longest prefix over
//! the router's attached subnets and extra routes (`routing.rs`; an equal-cost group picks its member by
//! a hash of the packet's addresses, protocol and ports), its TTL/hop limit decremented (IPv4 checksum updated
//! incrementally), its MACs rewritten (source: the router's interface on the egress network;
//! destination: the next hop's, from the ARP/ND tables), and it leaves by the next hop's port, all on the
//! node it entered; a next hop on another node gets it in a tunnel (`tunnel_encap`), routed already, as
//! Dragonflow's distributed router does it. The router answers pings to its own gateway addresses in place (ARP and ND for them
//! are answered by the responders). A packet whose TTL/hop limit would expire becomes, in place, the
//! ICMP time-exceeded error (RFC 792/1812, RFC 4443) from the router's interface on the ingress network
//! back to its sender, quoting as much of it as fits in 576 (IPv4) or 1280 (IPv6) bytes; no error is sent
//! about an ICMP error, a later fragment, or a packet from an unspecified or multicast source, and those
//! are dropped as `.ttl_exceeded`. There is at most one error per expiring packet, going back out of the
//! port the packet came in by, and errors are rate-limited as Linux limits them (`icmp_ratelimit.rs`:
//! per sender, a burst of 6 then one a second for IPv4, one per 250 ms for IPv6 on a /64, and about 1000
//! a second per worker overall); an expiring packet whose error is over the limit is dropped as
//! `.icmp_ratelimit`. Echo replies are not limited (nor are they in Linux).
//! Drops: `l3_route.no_route`, `.ttl_exceeded`, `.to_router`, `.no_neighbor`, `.icmp_ratelimit`.

use crate::buf::PacketBuf;
use crate::drop::Reason;
use crate::meta::{flags, Action, Meta};
use crate::routing::{Lookup, Router, RouterIface};
use crate::stages::{nat, BurstMemo, WorkerState};
use crate::tables::Tables;
use crate::wire::checksum;
use crate::wire::ipv4::Ipv4Packet;
use crate::wire::{IpNet, Ipv4Addr, Ipv6Addr, Mac};

pub fn run<B: PacketBuf>(t: &Tables, w: &mut WorkerState, pkts: &mut [B], meta: &mut [Meta]) {
    let mut memo = BurstMemo::default();
    for (p, m) in pkts.iter_mut().zip(meta.iter_mut()) {
        packet(t, &mut memo, w, p, m);
    }
}

/// One packet, routed if it is pending and unicast to the MAC of a router's interface on its network.
#[inline(always)]
pub fn packet<'t, B: PacketBuf>(t: &'t Tables, memo: &mut BurstMemo<'t>, w: &mut WorkerState, p: &mut B, m: &mut Meta) {
    if !m.pending() || m.has(flags::MULTICAST_DST) {
        return;
    }
    let dst = Mac(p.data()[0..6].try_into().expect("classify checked the length"));
    if let Some((key, r)) = memo.router(t, m.network, dst) {
        route(t, memo, w, key, r, p, m);
    }
}

/// Routes one pending packet addressed to the MAC of router `key`'s interface on the packet's network
/// (the burst fast path calls this directly, with the router its template looked up).
#[inline]
pub fn route<B: PacketBuf>(
    t: &Tables,
    memo: &mut BurstMemo<'_>,
    w: &mut WorkerState,
    key: u32,
    r: &Router,
    p: &mut B,
    m: &mut Meta,
) {
    m.router = key;
    if m.has(flags::IPV4) {
        route_v4(t, memo, w, r, p, m);
    } else if m.has(flags::IPV6) {
        route_v6(t, memo, w, r, p, m);
    } else if !m.has(flags::ARP) {
        m.drop(Reason::L3ToRouter);
    }
}

#[inline(always)]
fn route_v4<B: PacketBuf>(
    t: &Tables,
    memo: &mut BurstMemo<'_>,
    w: &mut WorkerState,
    r: &Router,
    p: &mut B,
    m: &mut Meta,
) {
    let l3 = m.l3_off as usize;
    let d = p.data_mut();
    let dst = Ipv4Addr(d[l3 + 16..l3 + 20].try_into().expect("classify checked"));
    let id = memo.ahead_v4(w, m.router, dst.0).unwrap_or_else(|| r.hop_v4(dst));
    let hop = match r.answer_v4(id, dst, || flow_hash(d, m, l3 + 12, 4)) {
        Lookup::Local => {
            if !echo_reply_v4(d, m) {
                m.drop(Reason::L3ToRouter);
            }
            return;
        }
        _ if d[l3 + 8] <= 1 => {
            if let Err(reason) = time_exceeded_v4(w, r, p, m) {
                m.drop(reason);
            }
            return;
        }
        Lookup::Next(hop) => hop,
        Lookup::NoRoute => {
            m.drop(Reason::L3NoRoute);
            return;
        }
    };
    let iface = r.ifaces[hop.iface as usize];
    if r.external != 0 && hop.iface < 64 && r.external >> hop.iface & 1 != 0 {
        return nat::to_external(t, w, m.router, iface, hop.neighbor, p, m);
    }
    let Some((mac, port)) = memo.neighbor(t, iface.network, hop.neighbor) else {
        return to_remote(t, d, m, iface, hop.neighbor);
    };
    Ipv4Packet::new_unchecked(&mut d[l3..]).decrement_ttl();
    forward(d, m, iface.mac, mac, iface.network, port);
}

#[inline(always)]
fn route_v6<B: PacketBuf>(
    t: &Tables,
    memo: &mut BurstMemo<'_>,
    w: &mut WorkerState,
    r: &Router,
    p: &mut B,
    m: &mut Meta,
) {
    let l3 = m.l3_off as usize;
    let d = p.data_mut();
    let dst = Ipv6Addr(d[l3 + 24..l3 + 40].try_into().expect("classify checked"));
    let id = memo.ahead_v6(w, m.router, dst.0).unwrap_or_else(|| r.hop_v6(dst));
    let hop = r.answer_v6(id, dst, || flow_hash(d, m, l3 + 8, 16));
    if hop == Lookup::Local {
        if !echo_reply_v6(d, m) {
            m.drop(Reason::L3ToRouter);
        }
        return;
    }
    if dst.is_multicast() || dst.is_link_local() {
        // Link-scoped traffic to the router (RS, MLD, ...) is not forwarded.
        m.drop(Reason::L3ToRouter);
        return;
    }
    if d[l3 + 7] <= 1 {
        if let Err(reason) = time_exceeded_v6(w, r, p, m) {
            m.drop(reason);
        }
        return;
    }
    let Lookup::Next(hop) = hop else {
        m.drop(Reason::L3NoRoute);
        return;
    };
    let iface = r.ifaces[hop.iface as usize];
    let Some((mac, port)) = memo.neighbor(t, iface.network, hop.neighbor) else {
        return to_remote(t, d, m, iface, hop.neighbor);
    };
    d[l3 + 7] -= 1;
    forward(d, m, iface.mac, mac, iface.network, port);
}

/// The hash of a packet's flow that picks an equal-cost group's member: its source and destination
/// addresses (`len` bytes each from `addrs`), its protocol and, for TCP and UDP but a later fragment,
/// its ports; the same for every packet of a flow, on every worker and node.
fn flow_hash(d: &[u8], m: &Meta, addrs: usize, len: usize) -> u32 {
    let mut h: u64 = 0x9e37_79b9_7f4a_7c15 ^ u64::from(m.ip_proto);
    let mut mix = |v: u64| h = (h ^ v).wrapping_mul(0xff51_afd7_ed55_8ccd).rotate_left(31);
    for w in d[addrs..addrs + 2 * len].chunks_exact(4) {
        mix(u64::from(u32::from_be_bytes([w[0], w[1], w[2], w[3]])));
    }
    let l4 = m.l4_off as usize;
    if matches!(m.ip_proto, 6 | 17) && !m.has(flags::LATER_FRAGMENT) && d.len() >= l4 + 4 {
        mix(u64::from(u32::from_be_bytes([d[l4], d[l4 + 1], d[l4 + 2], d[l4 + 3]])));
    }
    (h ^ (h >> 32)) as u32
}

/// A packet routed through `iface` to a next hop that no local port has: if the next hop is a port on
/// another node (its MAC from the ARP/ND tables, then the remote ports), the packet's TTL or hop limit is
/// decremented and its MACs rewritten here, and it goes to that node in a tunnel (`Action::Remote`, for
/// `tunnel_encap`: routed here, delivered there); else it is dropped as `l3_route.no_neighbor`. Out of
/// the local path's way, and not memoised as a local next hop is ([`BurstMemo::neighbor`]).
#[cold]
#[inline(never)]
fn to_remote(t: &Tables, d: &mut [u8], m: &mut Meta, iface: RouterIface, next_hop: IpNet) {
    let mac = match next_hop {
        IpNet::V4(a, _) => t.arp_lookup(iface.network, a),
        IpNet::V6(a, _) => t.nd_lookup(iface.network, a),
    };
    let Some((mac, to)) = mac.and_then(|mac| t.remote_lookup(iface.network, mac).map(|r| (mac, r))) else {
        return m.drop(Reason::L3NoNeighbor);
    };
    let l3 = m.l3_off as usize;
    if m.has(flags::IPV4) {
        Ipv4Packet::new_unchecked(&mut d[l3..]).decrement_ttl();
    } else {
        d[l3 + 7] -= 1;
    }
    d[0..6].copy_from_slice(&mac.0);
    d[6..12].copy_from_slice(&iface.mac.0);
    m.network = iface.network;
    m.action = Action::Remote;
    m.dst_lport = to.lport;
    m.chassis = to.chassis;
}

fn forward(d: &mut [u8], m: &mut Meta, src: Mac, dst: Mac, network: u32, port: u16) {
    d[0..6].copy_from_slice(&dst.0);
    d[6..12].copy_from_slice(&src.0);
    m.network = network;
    m.output(port);
}

/// Swaps the Ethernet addresses of a frame being answered: back to its sender, from the address it was
/// sent to.
fn bounce(d: &mut [u8], m: &mut Meta) {
    let (a, b) = d.split_at_mut(6);
    a.swap_with_slice(&mut b[..6]);
    m.reply();
}

/// An ICMP echo request to the router becomes its reply in place; false for anything else.
fn echo_reply_v4(d: &mut [u8], m: &mut Meta) -> bool {
    let (l3, l4) = (m.l3_off as usize, m.l4_off as usize);
    if m.ip_proto != 1 || m.has(flags::LATER_FRAGMENT) || d.len() < l4 + 8 || d[l4] != 8 || d[l4 + 1] != 0 {
        return false;
    }
    // Type 8 -> 0 in the ICMP checksum; addresses swap (the IPv4 header sum does not change); TTL 64.
    let c = u16::from_be_bytes([d[l4 + 2], d[l4 + 3]]);
    d[l4] = 0;
    d[l4 + 2..l4 + 4].copy_from_slice(&checksum::update16(c, 0x0800, 0x0000).to_be_bytes());
    let (src, dst) = d[l3 + 12..l3 + 20].split_at_mut(4);
    src.swap_with_slice(dst);
    let mut ip = Ipv4Packet::new_unchecked(&mut d[l3..]);
    let ttl = ip.ttl();
    let c = checksum::update16(ip.checksum(), u16::from_be_bytes([ttl, 1]), u16::from_be_bytes([64, 1]));
    ip.set_ttl(64);
    ip.set_checksum(c);
    bounce(d, m);
    true
}

/// An ICMPv6 echo request to the router becomes its reply in place; false for anything else.
fn echo_reply_v6(d: &mut [u8], m: &mut Meta) -> bool {
    let (l3, l4) = (m.l3_off as usize, m.l4_off as usize);
    if m.ip_proto != 58 || d.len() < l4 + 8 || d[l4] != 128 || d[l4 + 1] != 0 {
        return false;
    }
    let c = u16::from_be_bytes([d[l4 + 2], d[l4 + 3]]);
    d[l4] = 129;
    d[l4 + 2..l4 + 4].copy_from_slice(&checksum::update16(c, 0x8000, 0x8100).to_be_bytes());
    let (src, dst) = d[l3 + 8..l3 + 40].split_at_mut(16);
    src.swap_with_slice(dst);
    d[l3 + 7] = 64;
    bounce(d, m);
    true
}

/// Largest IPv4 datagram carrying an ICMP error (RFC 1812 4.3.2.3).
const ICMP4_ERROR_MAX: usize = 576;
/// Largest IPv6 packet carrying an ICMPv6 error (RFC 4443 2.4(c): the minimum MTU).
const ICMP6_ERROR_MAX: usize = 1280;

/// The gateway address of router `r` on `network`, of the family `v6`.
fn gateway(r: &Router, network: u32, v6: bool) -> Option<IpNet> {
    r.ifaces.iter().find(|i| i.network == network && matches!(i.ip, IpNet::V6(..)) == v6).map(|i| i.ip)
}

/// Makes room in `p` for `hdr` bytes of new IP and ICMP headers between the L2 header (`l3` bytes, moved
/// to the front) and the invoking packet (`ip_len` bytes, without the frame's padding), cut so that the
/// new IP packet is at most `max` bytes. Returns how many bytes of the invoking packet it quotes, or
/// `None` (and `p` unchanged) without headroom.
fn wrap_for_error<B: PacketBuf>(p: &mut B, l3: usize, ip_len: usize, hdr: usize, max: usize) -> Option<usize> {
    let quoted = ip_len.min(max - hdr);
    p.prepend(hdr)?;
    let excess = p.len() - (l3 + hdr + quoted);
    p.trim(excess);
    p.data_mut().copy_within(hdr..hdr + l3, 0);
    Some(quoted)
}

/// Turns the IPv4 packet in `p` into the ICMP time-exceeded error about it, addressed back to its sender
/// from the router's gateway address on the ingress network. Leaves `p` unchanged and says why the packet
/// drops where RFC 1812 forbids an error or there is no room (`L3TtlExceeded`), or the error is over the
/// limit (`L3IcmpRateLimit`).
fn time_exceeded_v4<B: PacketBuf>(w: &mut WorkerState, r: &Router, p: &mut B, m: &mut Meta) -> Result<(), Reason> {
    const TIME_EXCEEDED: u8 = 11;
    let (l3, l4) = (m.l3_off as usize, m.l4_off as usize);
    let d = p.data();
    let src = Ipv4Addr(d[l3 + 12..l3 + 16].try_into().expect("classify checked"));
    let is_error = m.ip_proto == 1 && !matches!(d.get(l4), Some(0 | 8 | 13 | 14 | 15 | 16 | 17 | 18) | None);
    if is_error || m.has(flags::LATER_FRAGMENT) || src.0[0] == 0 || src.0[0] >= 224 || src.0 == [255; 4] {
        return Err(Reason::L3TtlExceeded);
    }
    let Some(IpNet::V4(gw, _)) = gateway(r, m.network, false) else { return Err(Reason::L3TtlExceeded) };
    if !w.icmp.allow_v4(w.now_ms, m.network, src) {
        return Err(Reason::L3IcmpRateLimit);
    }
    let ip_len = (u16::from_be_bytes([d[l3 + 2], d[l3 + 3]]) as usize).min(d.len() - l3);
    let Some(quoted) = wrap_for_error(p, l3, ip_len, 20 + 8, ICMP4_ERROR_MAX) else {
        return Err(Reason::L3TtlExceeded);
    };
    let d = p.data_mut();
    let total = (20 + 8 + quoted) as u16;
    let ip = &mut d[l3..l3 + 20];
    ip.copy_from_slice(&[0x45, 0xc0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip[12..16].copy_from_slice(&gw.0);
    ip[16..20].copy_from_slice(&src.0);
    let c = !checksum::fold(checksum::sum(0, ip));
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let icmp = &mut d[l3 + 20..];
    icmp[..8].copy_from_slice(&[TIME_EXCEEDED, 0, 0, 0, 0, 0, 0, 0]);
    let c = !checksum::fold(checksum::sum(0, icmp));
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    error_reply(d, m, 1, l3 + 20);
    Ok(())
}

/// As [`time_exceeded_v4`] for IPv6 (RFC 4443 2.4: no error about an ICMPv6 error or a multicast or
/// unspecified source).
fn time_exceeded_v6<B: PacketBuf>(w: &mut WorkerState, r: &Router, p: &mut B, m: &mut Meta) -> Result<(), Reason> {
    use crate::wire::icmpv6::TIME_EXCEEDED;
    let (l3, l4) = (m.l3_off as usize, m.l4_off as usize);
    let d = p.data();
    let src = Ipv6Addr(d[l3 + 8..l3 + 24].try_into().expect("classify checked"));
    let is_error = m.ip_proto == 58 && d.get(l4).is_none_or(|t| *t < 128);
    if is_error || src.is_unspecified() || src.is_multicast() {
        return Err(Reason::L3TtlExceeded);
    }
    let Some(IpNet::V6(gw, prefix_len)) = gateway(r, m.network, true) else { return Err(Reason::L3TtlExceeded) };
    // The sender is on the ingress interface's subnet: that route's prefix sets its period.
    if !w.icmp.allow_v6(w.now_ms, m.network, src, prefix_len) {
        return Err(Reason::L3IcmpRateLimit);
    }
    let ip_len = (40 + u16::from_be_bytes([d[l3 + 4], d[l3 + 5]]) as usize).min(d.len() - l3);
    let Some(quoted) = wrap_for_error(p, l3, ip_len, 40 + 8, ICMP6_ERROR_MAX) else {
        return Err(Reason::L3TtlExceeded);
    };
    let d = p.data_mut();
    let ip = &mut d[l3..l3 + 40];
    ip[..8].copy_from_slice(&[0x60, 0, 0, 0, 0, 0, 58, 64]);
    ip[4..6].copy_from_slice(&((8 + quoted) as u16).to_be_bytes());
    ip[8..24].copy_from_slice(&gw.0);
    ip[24..40].copy_from_slice(&src.0);
    let icmp = &mut d[l3 + 40..];
    icmp[..8].copy_from_slice(&[TIME_EXCEEDED, 0, 0, 0, 0, 0, 0, 0]);
    let c = !checksum::fold(checksum::sum(checksum::pseudo_v6(gw.0, src.0, 58, icmp.len() as u32), icmp));
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    error_reply(d, m, 58, l3 + 40);
    Ok(())
}

/// Sends the error built in `d` back where its invoking packet came from.
fn error_reply(d: &mut [u8], m: &mut Meta, proto: u8, l4: usize) {
    m.ip_proto = proto;
    m.l4_off = l4 as u16;
    m.flags &= !flags::LATER_FRAGMENT;
    bounce(d, m);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drop::DropCounters;
    use crate::fixtures::*;
    use crate::meta::Action;
    use crate::routing::RouterIface;
    use crate::stages::WorkerState;
    use crate::tables::TablesBuilder;
    use crate::wire::checksum::pseudo_v6;
    use crate::wire::*;

    const VM3: Mac = Mac([0xfa, 0x16, 0x3e, 0, 0, 3]);

    fn decide(frames: &[Vec<u8>]) -> (Vec<Meta>, Vec<Vec<u8>>, DropCounters) {
        decide_with(&routed_tables(), frames)
    }

    fn decide_with(t: &Tables, frames: &[Vec<u8>]) -> (Vec<Meta>, Vec<Vec<u8>>, DropCounters) {
        run_burst(t, frames)
    }

    fn udp4_ttl(sm: Mac, dm: Mac, s: Ipv4Addr, d: Ipv4Addr, ttl: u8) -> Vec<u8> {
        let mut f = udp4(sm, dm, s, d);
        let mut ip = Ipv4Packet::new_unchecked(&mut f[14..]);
        ip.set_ttl(ttl);
        ip.fill_checksum();
        f
    }

    #[test]
    fn routes_across_subnets_v4_and_v6() {
        let (meta, out, _) = decide(&[
            udp4(VM1, ROUTER_MAC, IP1, Ipv4Addr::new(10, 2, 0, 3)),
            udp6(VM1, ROUTER_MAC, ip6(1), ip6_net2(3)),
            udp4(VM1, ROUTER_MAC, IP1, Ipv4Addr::new(10, 1, 7, 7)),
        ]);
        // To VM3 (port 2): MACs rewritten, TTL 63, checksum still right; the packet now in network 2.
        assert_eq!((meta[0].action, meta[0].out_port, meta[0].network), (Action::Output, 2, 2));
        let mut expect = udp4_ttl(ROUTER_MAC2, VM3, IP1, Ipv4Addr::new(10, 2, 0, 3), 63);
        expect[6..12].copy_from_slice(&ROUTER_MAC2.0);
        assert_eq!(out[0], expect);
        assert!(Ipv4Packet::new_checked(&out[0][14..]).unwrap().verify_checksum());
        assert_eq!((meta[1].action, meta[1].out_port), (Action::Output, 2));
        assert_eq!((&out[1][0..6], &out[1][6..12], out[1][14 + 7]), (&VM3.0[..], &ROUTER_MAC2.0[..], 63));
        // The extra route 10.1.0.0/16 via 10.2.0.3 (VM3).
        assert_eq!((meta[2].action, meta[2].out_port), (Action::Output, 2));
    }

    #[test]
    fn a_large_router_looks_its_burst_up_in_a_batch_and_routes_as_one_by_one() {
        // 3,000 extra routes in 3,000 /16s: more than LARGE_BYTES of trie, so decide batches.
        let mut t = routed_tables();
        let r = t.routers.get_mut(&1).unwrap();
        let mut routes: Vec<(IpNet, IpNet)> = r.extra_routes().to_vec();
        for i in 0..3000u32 {
            let net = Ipv4Addr::from_u32(0x2000_0000 + (i << 16) + (5 << 8));
            routes.push((IpNet::V4(net, 24), IpNet::host_v4(Ipv4Addr::new(10, 2, 0, 3))));
        }
        r.set_routes(routes);
        assert!(r.is_large());
        t.large_routers = true;
        let frames: Vec<Vec<u8>> = (0..32u32)
            .map(|i| {
                let dst = match i % 4 {
                    0 => Ipv4Addr::from_u32(0x2000_0000 + (i << 16) + (5 << 8) + 9), // an extra route
                    1 => Ipv4Addr::from_u32(0x2000_0000 + (i << 16) + (6 << 8) + 9), // no route
                    2 => Ipv4Addr::new(10, 2, 0, 3),                                 // attached
                    _ => Ipv4Addr::new(10, 2, 0, 254),                               // the router
                };
                udp4(VM1, ROUTER_MAC, IP1, dst)
            })
            .collect();
        let (batched, bytes, _) = decide_with(&t, &frames);
        let mut one_by_one = frames.clone();
        let mut w = WorkerState::new(1);
        let mut meta = vec![Meta::new(0); frames.len()];
        let mut pkts: Vec<crate::buf::HeapBuf> = one_by_one.iter_mut().map(|f| crate::buf::HeapBuf::new(f)).collect();
        crate::stages::decide_per_packet(&t, &mut w, &mut pkts, &mut meta);
        for i in 0..32 {
            assert_eq!(batched[i], meta[i], "packet {i}");
            assert_eq!(bytes[i], pkts[i].data(), "packet {i}");
        }
        assert_eq!((batched[0].action, batched[0].out_port), (Action::Output, 2));
        assert_eq!((batched[1].action, batched[1].reason), (Action::Drop, Reason::L3NoRoute));
        assert_eq!(batched[3].action, Action::Drop, "UDP to the router itself");
    }

    #[test]
    fn an_equal_cost_group_spreads_flows_and_keeps_each_on_one_path() {
        let mut b = TablesBuilder::new();
        b.local_port(0, vm_port(101, 1, VM1, IP1, ip6(1), true));
        let (vm3, vm4) = (Mac([0xfa, 0x16, 0x3e, 0, 0, 3]), Mac([0xfa, 0x16, 0x3e, 0, 0, 4]));
        b.local_port(2, vm_port(103, 2, vm3, Ipv4Addr::new(10, 2, 0, 3), ip6_net2(3), true));
        b.local_port(3, vm_port(104, 2, vm4, Ipv4Addr::new(10, 2, 0, 4), ip6_net2(4), true));
        let ifaces = [
            RouterIface { network: 1, mac: ROUTER_MAC, ip: IpNet::V4(Ipv4Addr::new(10, 0, 0, 254), 24) },
            RouterIface { network: 2, mac: ROUTER_MAC2, ip: IpNet::V4(Ipv4Addr::new(10, 2, 0, 254), 24) },
        ];
        let net = IpNet::V4(Ipv4Addr::new(10, 9, 0, 0), 16);
        let extra =
            [(net, IpNet::host_v4(Ipv4Addr::new(10, 2, 0, 3))), (net, IpNet::host_v4(Ipv4Addr::new(10, 2, 0, 4)))];
        b.router(1, &ifaces, extra);
        let t = b.build();
        let flows: Vec<Vec<u8>> =
            (0..64u16).map(|i| udp4_ports(VM1, ROUTER_MAC, IP1, Ipv4Addr::new(10, 9, 1, 1), 1024 + i, 80)).collect();
        let (first, out, _) = decide_with(&t, &flows);
        let (again, _, _) = decide_with(&t, &flows);
        let ports: Vec<u16> = first.iter().map(|m| m.out_port).collect();
        assert_eq!(ports, again.iter().map(|m| m.out_port).collect::<Vec<_>>(), "a flow keeps its path");
        let to3 = ports.iter().filter(|&&p| p == 2).count();
        assert!((16..=48).contains(&to3), "both paths carry flows: {to3} of 64 via VM3");
        assert_eq!(to3 + ports.iter().filter(|&&p| p == 3).count(), 64);
        for (m, f) in first.iter().zip(&out) {
            assert_eq!(&f[0..6], if m.out_port == 2 { &vm3.0 } else { &vm4.0 }, "the MAC of the member taken");
        }
    }

    #[test]
    fn expiring_packets_become_time_exceeded_errors_to_their_sender() {
        let gw = Ipv4Addr::new(10, 0, 0, 254);
        let expiring = udp4_ttl(VM1, ROUTER_MAC, IP1, Ipv4Addr::new(10, 2, 0, 3), 1);
        let big =
            ethernet(VM1, ROUTER_MAC, 0x0800, &ipv4(IP1, Ipv4Addr::new(10, 2, 0, 3), IpProtocol::Udp, 1, &[7; 1000]));
        let mut expiring6 = udp6(VM1, ROUTER_MAC, ip6(1), ip6_net2(3));
        expiring6[14 + 7] = 1;
        let (meta, out, drops) = decide(&[expiring.clone(), big.clone(), expiring6.clone()]);
        assert_eq!(drops.get(Reason::L3TtlExceeded), 0);
        for (i, original, quoted) in [(0, &expiring, expiring.len() - 14), (1, &big, 576 - 28)] {
            assert_eq!((meta[i].action, meta[i].out_port), (Action::Reply, 0));
            assert_eq!((&out[i][0..6], &out[i][6..12]), (&VM1.0[..], &ROUTER_MAC.0[..]));
            let ip = Ipv4Packet::new_checked(&out[i][14..]).unwrap();
            assert!(ip.verify_checksum());
            let r = Ipv4Repr::parse(&ip).unwrap();
            assert_eq!((r.src, r.dst, r.protocol, r.ttl, r.payload_len), (gw, IP1, IpProtocol::Icmp, 64, 8 + quoted));
            let icmp = ip.payload();
            assert_eq!((icmp[0], icmp[1], &icmp[4..8]), (11, 0, &[0u8; 4][..]));
            assert_eq!(checksum::fold(checksum::sum(0, icmp)), 0xffff);
            assert_eq!(&icmp[8..], &original[14..14 + quoted]);
        }
        assert_eq!(out[1].len(), 14 + 576);
        assert_eq!((meta[2].action, meta[2].out_port, &out[2][0..6]), (Action::Reply, 0, &VM1.0[..]));
        let ip = Ipv6Packet::new_checked(&out[2][14..]).unwrap();
        assert_eq!((ip.src(), ip.dst(), ip.hop_limit()), (ip6(0xfe), ip6(1), 64));
        let icmp = Icmpv6Packet::new_checked(ip.payload()).unwrap();
        assert!(icmp.verify_checksum(pseudo_v6(ip6(0xfe).0, ip6(1).0, 58, ip.payload().len() as u32)));
        assert_eq!((icmp.msg_type(), &ip.payload()[8..]), (3, &expiring6[14..]));
    }

    #[test]
    fn errors_are_rate_limited_per_sender_as_linux_does() {
        let t = routed_tables();
        let w = &mut WorkerState::new(1);
        let expiring = udp4_ttl(VM1, ROUTER_MAC, IP1, Ipv4Addr::new(10, 2, 0, 3), 1);
        let mut expiring6 = udp6(VM1, ROUTER_MAC, ip6(1), ip6_net2(3));
        expiring6[14 + 7] = 1;
        let verdicts = |w: &mut WorkerState, f: &Vec<u8>, n: usize| -> Vec<Reason> {
            let (meta, _, _) = run_burst_on(&t, w, &vec![f.clone(); n]);
            meta.iter().map(|m| if m.action == Action::Reply { Reason::None } else { m.reason }).collect()
        };
        let (sent, limited) = (Reason::None, Reason::L3IcmpRateLimit);
        // At one instant: a burst of 6 per sender, IPv4 and IPv6 apart.
        assert_eq!(verdicts(w, &expiring, 8), [[sent; 6].as_slice(), &[limited; 2]].concat());
        assert_eq!(verdicts(w, &expiring6, 7), [[sent; 6].as_slice(), &[limited]].concat());
        // Pings are not errors: not limited.
        let mut echo = [0u8; 16];
        Icmpv4Repr::EchoRequest { ident: 9, seq: 1, data: b"abcdefgh" }
            .emit(&mut Icmpv4Packet::new_unchecked(&mut echo[..]));
        let gw = Ipv4Addr::new(10, 0, 0, 254);
        let ping = ethernet(VM1, ROUTER_MAC, 0x0800, &ipv4(IP1, gw, IpProtocol::Icmp, 64, &echo));
        assert_eq!(verdicts(w, &ping, 10), [sent; 10]);
        // Then one a second for IPv4; one per 250 ms for IPv6 (its sender is on a /64).
        w.now_ms = 999;
        assert_eq!(verdicts(w, &expiring, 2), [limited; 2]);
        w.now_ms = 1000;
        assert_eq!(verdicts(w, &expiring, 2), [sent, limited]);
        assert_eq!(verdicts(w, &expiring6, 5), [[sent; 4].as_slice(), &[limited]].concat());
    }

    #[test]
    fn no_error_about_an_error_or_from_a_bad_source() {
        let mut err = [0u8; 36];
        err[0] = 11; // an ICMP time-exceeded, itself expiring
        let f = ethernet(VM1, ROUTER_MAC, 0x0800, &ipv4(IP1, Ipv4Addr::new(10, 2, 0, 3), IpProtocol::Icmp, 1, &err));
        let zero = udp4_ttl(VM1, ROUTER_MAC, Ipv4Addr::new(0, 0, 0, 0), Ipv4Addr::new(10, 2, 0, 3), 1);
        let err6 = ethernet(VM1, ROUTER_MAC, 0x86dd, &ipv6(ip6(1), ip6_net2(3), IpProtocol::Icmpv6, 1, &[1; 16]));
        // Port security off on VM1's port, so the unspecified source reaches the router.
        let mut t = routed_tables();
        t.ports[0].as_mut().unwrap().security = false;
        let (meta, out, drops) = decide_with(&t, &[f.clone(), zero, err6]);
        let reasons: Vec<_> = meta.iter().map(|m| (m.action, m.reason)).collect();
        assert_eq!(reasons, vec![(Action::Drop, Reason::L3TtlExceeded); 3]);
        assert_eq!((drops.get(Reason::L3TtlExceeded), &out[0]), (3, &f));
    }

    #[test]
    fn unroutable_and_unresolved_packets_drop() {
        let (meta, _, drops) = decide(&[
            udp4(VM1, ROUTER_MAC, IP1, Ipv4Addr::new(192, 168, 1, 1)),
            udp4(VM1, ROUTER_MAC, IP1, Ipv4Addr::new(10, 2, 0, 99)),
            udp4(VM1, ROUTER_MAC, IP1, Ipv4Addr::new(10, 0, 0, 254)),
        ]);
        let reasons: Vec<Reason> = meta.iter().map(|m| m.reason).collect();
        assert_eq!(reasons, vec![Reason::L3NoRoute, Reason::L3NoNeighbor, Reason::L3ToRouter]);
        assert_eq!(drops.get(Reason::L3NoRoute), 1);
    }

    #[test]
    fn router_answers_ping_and_arp_for_its_gateway() {
        let gw = Ipv4Addr::new(10, 0, 0, 254);
        let mut echo = [0u8; 16];
        Icmpv4Repr::EchoRequest { ident: 9, seq: 1, data: b"abcdefgh" }
            .emit(&mut Icmpv4Packet::new_unchecked(&mut echo[..]));
        let ping = ethernet(VM1, ROUTER_MAC, 0x0800, &ipv4(IP1, gw, IpProtocol::Icmp, 64, &echo));
        let gw6 = ip6(0xfe);
        let mut echo6 = [0u8; 12];
        let pseudo = pseudo_v6(ip6(1).0, gw6.0, 58, 12);
        Icmpv6Repr::EchoRequest { ident: 9, seq: 1, data: b"abcd" }
            .emit(&mut Icmpv6Packet::new_unchecked(&mut echo6[..]), pseudo);
        let ping6 = ethernet(VM1, ROUTER_MAC, 0x86dd, &ipv6(ip6(1), gw6, IpProtocol::Icmpv6, 64, &echo6));
        let ns = neighbor_solicit(VM1, ip6(1), gw6);
        let (meta, out, _) = decide(&[ping, arp_request(VM1, IP1, gw), ping6, ns]);
        // The router's own NA carries the router flag.
        assert_eq!((meta[3].action, &out[3]), (Action::Reply, &neighbor_advert(ROUTER_MAC, gw6, VM1, ip6(1), true)));
        assert_eq!((meta[0].action, meta[0].out_port), (Action::Reply, 0));
        let mut reply = [0u8; 16];
        Icmpv4Repr::EchoReply { ident: 9, seq: 1, data: b"abcdefgh" }
            .emit(&mut Icmpv4Packet::new_unchecked(&mut reply[..]));
        assert_eq!(out[0], ethernet(ROUTER_MAC, VM1, 0x0800, &ipv4(gw, IP1, IpProtocol::Icmp, 64, &reply)));
        assert_eq!(out[1], arp(ArpOperation::Reply, ROUTER_MAC, gw, VM1, IP1, VM1));
        assert_eq!(meta[2].action, Action::Reply);
        let ip = Ipv6Packet::new_checked(&out[2][14..]).unwrap();
        assert_eq!((ip.src(), ip.dst()), (gw6, ip6(1)));
        let icmp = Icmpv6Packet::new_checked(ip.payload()).unwrap();
        assert!(icmp.verify_checksum(pseudo_v6(gw6.0, ip6(1).0, 58, 12)));
        assert_eq!(icmp.msg_type(), 129);
    }
}
