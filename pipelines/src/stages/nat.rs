//! A router's gateway on its external network (a provider network with an uplink on this node): what
//! `l3_route` routes out of the router's external interface leaves through NAT, and what comes in by the
//! uplink for the router is translated back and routed (Neutron's `ext-gw-mode` and floating IPs, as its
//! L3 agent does them with iptables and OVN with `ct_snat`/`ct_dnat`).
//!
//! Going out ([`to_external`]): a packet from a fixed address with a floating IP leaves from the
//! floating IP (1:1, no state); else, with SNAT on, from the router's gateway address and a port of this
//! worker's (`nat.rs`: TCP and UDP by port, ICMP echo by identifier; a later fragment, which carries no
//! ports, and other protocols are dropped); with SNAT off it is routed as it is. The next hop's MAC comes
//! from the network's ports or from ARP ([`crate::nat::Learned`]): a packet for a next hop not known yet
//! becomes the ARP request for it, out of the uplink (OVN's `arp` action), at most one a second per
//! address; the next packets find the MAC.
//!
//! A router whose gateway another node serves (the gateway port is bound there) sends what it routes out
//! of the gateway to that node as it is, in a tunnel of the network it came from (OVN's chassis-redirect
//! port), and that node routes and translates it ([`from_tunnel`]); the replies come back routed, as any
//! packet the distributed router sends to a VM on another node. So every VM of the router's networks
//! reaches outside, wherever it runs, through one node's gateway address.
//!
//! Coming in ([`from_uplink`]): ARP requests for the router's addresses there (its gateway address, its
//! floating IPs) are answered with its gateway MAC, and ARP replies to that MAC teach the sender's; a
//! packet to the gateway MAC has its destination translated back (a floating IP to its fixed address; the
//! gateway address and a port to the connection's inside end) and is routed by the router as a packet
//! from inside is: to the VM's port here or on another node, or answered (a ping to the gateway
//! address). Not translated: IPv6 (Neutron does not NAT it; the gateway takes IPv4 only here).
//!
//! ICMP errors (destination unreachable, so path MTU discovery; time exceeded; parameter problem) about
//! a translated packet are translated as the connection's packets are, both ways, the header they quote
//! included (`quoted`, `rewrite_error`: the quote's address, port and checksums, then the error's own
//! checksum by the difference): an error from outside about what left through SNAT or from a floating
//! IP reaches the VM about the packet as the VM sent it, and one from a VM about what came in leaves as
//! about what the outside sent. An error about no live translation is not translated (to the router,
//! dropped; from a VM behind SNAT, `nat.unsupported`); it keeps no translation alive.
//! Drops: `nat.unresolved`, `nat.unsupported`, `nat.full`, `nat.arp_learned` (an ARP reply consumed).

use crate::buf::PacketBuf;
use crate::drop::Reason;
use crate::meta::{flags, Action, Meta};
use crate::nat::Outside;
use crate::routing::RouterIface;
use crate::stages::{arp_responder, l3_route, provider, BurstMemo, WorkerState};
use crate::tables::Tables;
use crate::tunnel;
use crate::wire::arp::ArpPacket;
use crate::wire::checksum::{self, adjust, delta32};
use crate::wire::ipv4::Ipv4Packet;
use crate::wire::{ArpOperation, IpNet, Ipv4Addr, Mac};

const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMP: u8 = 1;
const ECHO_REQUEST: u8 = 8;
const ECHO_REPLY: u8 = 0;

fn be16(d: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([d[at], d[at + 1]])
}

fn addr(d: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr(d[at..at + 4].try_into().expect("length checked"))
}

/// Routed by router `key` out of its external interface `iface` toward `next_hop`: translated, its TTL
/// decremented and its MACs rewritten, out of the uplink (or to the network's port with the next hop's
/// MAC); or turned into the ARP request for the next hop.
#[cold]
#[inline(never)]
pub(crate) fn to_external<B: PacketBuf>(
    t: &Tables,
    w: &mut WorkerState,
    key: u32,
    iface: RouterIface,
    next_hop: IpNet,
    p: &mut B,
    m: &mut Meta,
) {
    if let Some(chassis) = t.nat.get(&key).and_then(|n| n.redirect) {
        // Served by another node: there as it is (not routed here: its TTL and MACs untouched), in a
        // tunnel of the network it came from, to be routed and translated there (`from_tunnel`).
        m.action = Action::Remote;
        m.dst_lport = 0;
        m.chassis = chassis;
        return;
    }
    let (IpNet::V4(nh, _), IpNet::V4(own, _)) = (next_hop, iface.ip) else { return m.drop(Reason::L3NoNeighbor) };
    let net = iface.network;
    let Some(mac) = t.arp_lookup(net, nh).or_else(|| t.learned.get(net, nh)) else {
        if t.learned.try_ask(net, nh, tunnel::now_ms()) && tunnel::arp_request_from(iface.mac, own, nh, p) {
            // Out of the uplink, as a packet for a host outside the cloud (`egress`).
            m.network = net;
            m.action = Action::Remote;
            m.dst_lport = 0;
            m.chassis = 0;
        } else {
            m.drop(Reason::NatUnresolved);
        }
        return;
    };
    if let Err(reason) = translate_out(t, w, key, net, p.data_mut(), m) {
        return m.drop(reason);
    }
    let d = p.data_mut();
    Ipv4Packet::new_unchecked(&mut d[m.l3_off as usize..]).decrement_ttl();
    d[0..6].copy_from_slice(&mac.0);
    d[6..12].copy_from_slice(&iface.mac.0);
    m.network = net;
    match t.l2_lookup(net, mac) {
        Some(port) => m.output(port),
        None => {
            let r = t.remote_lookup(net, mac);
            m.action = Action::Remote;
            m.dst_lport = r.map_or(0, |r| r.lport);
            m.chassis = r.map_or(0, |r| r.chassis);
        }
    }
}

/// The connection's ends as NAT keys them: `(source port, destination port, TCP flags)`; ICMP echo by its
/// identifier (the remote end's "port" 0). `None`: not translatable.
fn ports(d: &[u8], m: &Meta) -> Option<(u16, u16, u8)> {
    let l4 = m.l4_off as usize;
    if m.has(flags::LATER_FRAGMENT) {
        return None;
    }
    match m.ip_proto {
        TCP if d.len() >= l4 + 20 => Some((be16(d, l4), be16(d, l4 + 2), d[l4 + 13])),
        UDP if d.len() >= l4 + 8 => Some((be16(d, l4), be16(d, l4 + 2), 0)),
        ICMP if d.len() >= l4 + 8 && matches!(d[l4], ECHO_REQUEST | ECHO_REPLY) => Some((be16(d, l4 + 4), 0, 0)),
        _ => None,
    }
}

/// The source of a packet leaving by router `key`'s external network `net`: its floating IP, its SNAT
/// address and port, or as it is.
fn translate_out(t: &Tables, w: &mut WorkerState, key: u32, net: u32, d: &mut [u8], m: &Meta) -> Result<(), Reason> {
    let Some(nat) = t.nat.get(&key) else { return Ok(()) };
    let l3 = m.l3_off as usize;
    let src = addr(d, l3 + 12);
    if let Some(fip) = nat.fip_of(src) {
        if let Some(q) = quoted(d, m, Side::Dst, src) {
            rewrite_error(d, m, &q, Side::Src, fip, None);
        } else {
            rewrite(d, m, Side::Src, fip, None);
        }
        return Ok(());
    }
    let Some(outside) = nat.snat else { return Ok(()) };
    if let Some(q) = quoted(d, m, Side::Dst, src) {
        // An error about a packet that came in through SNAT: it leaves as what that packet was sent to.
        let (qsrc, qdst) = (addr(d, q.l3_off as usize + 12), addr(d, q.l3_off as usize + 16));
        let (sport, dport) = quoted_ports(d, &q);
        let (inside, remote) =
            if q.ip_proto == ICMP { ((qdst, sport), (qsrc, 0)) } else { ((qdst, dport), (qsrc, sport)) };
        let (to, port) =
            w.nat.find_outbound(w.now_ms, key, q.ip_proto, inside, remote).ok_or(Reason::NatUnsupported)?;
        rewrite_error(d, m, &q, Side::Src, to, Some(port));
        return Ok(());
    }
    let Some((sport, dport, tcp)) = ports(d, m) else { return Err(Reason::NatUnsupported) };
    // An echo reply leaving would answer a ping to an inside address: not a connection SNAT opens.
    if m.ip_proto == ICMP && d[m.l4_off as usize] != ECHO_REQUEST {
        return Err(Reason::NatUnsupported);
    }
    let dst = addr(d, l3 + 16);
    let port = w
        .nat
        .outbound(w.now_ms, key, net, outside, m.ip_proto, (src, sport), (dst, dport), tcp)
        .ok_or(Reason::NatFull)?;
    rewrite(d, m, Side::Src, outside, Some(port));
    Ok(())
}

/// Which end of a packet a rewrite changes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Src,
    Dst,
}

/// Sets the `side` address of the IPv4 packet in `d` to `to`, and its port (TCP, UDP; the identifier of
/// an ICMP echo) to `port`, the checksums updated incrementally (a UDP datagram without checksum keeps
/// none; a later fragment has only its IP header changed).
fn rewrite(d: &mut [u8], m: &Meta, side: Side, to: Ipv4Addr, port: Option<u16>) {
    let (l3, l4) = (m.l3_off as usize, m.l4_off as usize);
    let at = l3 + if side == Side::Src { 12 } else { 16 };
    let delta = delta32(addr(d, at).to_u32(), to.to_u32());
    let c = adjust(be16(d, l3 + 10), delta);
    d[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
    d[at..at + 4].copy_from_slice(&to.0);
    if m.has(flags::LATER_FRAGMENT) {
        return;
    }
    let port_at = match m.ip_proto {
        ICMP => l4 + 4,
        _ if side == Side::Src => l4,
        _ => l4 + 2,
    };
    // Where the L4 checksum is, if the packet has one within reach (a UDP datagram may have none; the
    // header an ICMP error quotes may be cut before it) and whether it covers the addresses.
    let (sum_at, pseudo) = match m.ip_proto {
        TCP if d.len() >= l4 + 18 => (Some(l4 + 16), true),
        UDP if d.len() >= l4 + 8 && be16(d, l4 + 6) != 0 => (Some(l4 + 6), true),
        ICMP if d.len() >= l4 + 8 => (Some(l4 + 2), false),
        _ => (None, false),
    };
    // One fold for every changed word the L4 checksum covers: the address (pseudo-header) and the port.
    let mut delta = if pseudo { delta } else { 0 };
    if let Some(port) = port.filter(|_| d.len() >= port_at + 2) {
        delta += u32::from(!be16(d, port_at)) + u32::from(port);
        d[port_at..port_at + 2].copy_from_slice(&port.to_be_bytes());
    }
    if let Some(at) = sum_at {
        let c = adjust(be16(d, at), delta);
        // (UDP: a sum of 0 is sent as all ones, RFC 768.)
        let c = if m.ip_proto == UDP && c == 0 { 0xffff } else { c };
        d[at..at + 2].copy_from_slice(&c.to_be_bytes());
    }
}

/// The header an ICMP error (destination unreachable, time exceeded, parameter problem) in `d` quotes,
/// as a [`Meta`] of its offsets and protocol, if its `side` address is `a` and its ports are within the
/// quote (RFC 792: the header and 8 bytes); `None` for anything else, a fragment of an error included.
#[inline(always)]
fn quoted(d: &[u8], m: &Meta, side: Side, a: Ipv4Addr) -> Option<Meta> {
    if m.ip_proto != ICMP {
        return None;
    }
    quoted_icmp(d, m, side, a)
}

/// [`quoted`] for an ICMP packet: out of line (the connections' packets stay short).
#[cold]
#[inline(never)]
fn quoted_icmp(d: &[u8], m: &Meta, side: Side, a: Ipv4Addr) -> Option<Meta> {
    let q = quote(d, m)?;
    let (l3, l4) = (q.l3_off as usize, q.l4_off as usize);
    if addr(d, l3 + if side == Side::Src { 12 } else { 16 }) != a {
        return None;
    }
    let proto = q.ip_proto;
    (proto == TCP || proto == UDP || (proto == ICMP && d[l4] == ECHO_REQUEST)).then_some(q)
}

/// The IPv4 header an ICMP error in `d` (destination unreachable, time exceeded, parameter problem)
/// quotes, as a [`Meta`] of its offsets and protocol, if the quote holds it and 8 bytes past it (RFC 792:
/// the ports) and is of a first fragment; `None` for anything else, a fragment of an error included.
fn quote(d: &[u8], m: &Meta) -> Option<Meta> {
    if m.ip_proto != ICMP || m.has(flags::LATER_FRAGMENT) {
        return None;
    }
    let l4 = m.l4_off as usize;
    if !matches!(d.get(l4)?, 3 | 11 | 12) {
        return None;
    }
    let q = l4 + 8;
    let (v, ihl) = (d.get(q)? >> 4, usize::from(d.get(q)? & 0x0f) * 4);
    if v != 4 || ihl < 20 || message_end(d, m) < q + ihl + 8 {
        return None;
    }
    // (A quoted later fragment has no ports.)
    if be16(d, q + 6) & 0x1fff != 0 {
        return None;
    }
    let mut qm = Meta::new(m.in_port);
    (qm.l3_off, qm.l4_off, qm.ip_proto) = (q as u16, (q + ihl) as u16, d[q + 9]);
    Some(qm)
}

/// Where the IPv4 packet in `d` ends (by its total length; the frame may be padded).
fn message_end(d: &[u8], m: &Meta) -> usize {
    d.len().min(m.l3_off as usize + usize::from(be16(d, m.l3_off as usize + 2)))
}

/// The quoted header's `(source port, destination port)`; an echo's identifier as its source port.
fn quoted_ports(d: &[u8], q: &Meta) -> (u16, u16) {
    let l4 = q.l4_off as usize;
    if q.ip_proto == ICMP {
        (be16(d, l4 + 4), 0)
    } else {
        (be16(d, l4), be16(d, l4 + 2))
    }
}

/// An ICMP error translated as the packet it quotes was, the other way: its `side` address set to `to`,
/// and the quoted header's other side (address, port when given, and the checksums the quote holds).
/// The error's own checksum, which covers the quote, updated by the difference of the quote's words.
fn rewrite_error(d: &mut [u8], m: &Meta, q: &Meta, side: Side, to: Ipv4Addr, port: Option<u16>) {
    rewrite(d, m, side, to, None);
    let inner = if side == Side::Src { Side::Dst } else { Side::Src };
    rewrite_quote(d, m, q, inner, to, port);
}

/// The `side` address (and port) of the header the ICMP error in `d` quotes set to `to`, with the checksums
/// the quote holds; the error's own checksum, which covers the quote, updated by the difference.
fn rewrite_quote(d: &mut [u8], m: &Meta, q: &Meta, side: Side, to: Ipv4Addr, port: Option<u16>) {
    let (l4, end) = (m.l4_off as usize, message_end(d, m));
    // The quote's header and as much of its L4 header as a rewrite may change (to the TCP checksum),
    // from an even offset of the ICMP message.
    let words = q.l3_off as usize..end.min(q.l4_off as usize + 18);
    let before = checksum::fold(checksum::sum(0, &d[words.clone()]));
    rewrite(&mut d[..end], q, side, to, port);
    let after = checksum::fold(checksum::sum(0, &d[words]));
    let c = adjust(be16(d, l4 + 2), u32::from(!before) + u32::from(after));
    d[l4 + 2..l4 + 4].copy_from_slice(&c.to_be_bytes());
}

/// The router's own ICMP error (time exceeded) about a packet `translate_in` translated: its quote set
/// back to the destination the packet came with (`before`), as the sender knows it: what the sender
/// sees of a floating IP or SNAT is never the inside address.
#[cold]
fn untranslate_own_error(d: &mut [u8], m: &Meta, (to, port): (Ipv4Addr, Option<u16>)) {
    // (Any protocol: this is the packet the router just translated, whatever it carries.)
    if let Some(q) = quote(d, m) {
        rewrite_quote(d, m, &q, Side::Dst, to, port);
    }
}

/// A frame that came in by an uplink into its provider network `m.network`: ARP for the routers'
/// addresses there answered (and their neighbours learned), a packet to a router's gateway MAC translated
/// back and routed; anything else left to `l2_switch`.
#[inline]
pub fn from_uplink<'t, B: PacketBuf>(
    t: &'t Tables,
    memo: &mut BurstMemo<'t>,
    w: &mut WorkerState,
    p: &mut B,
    m: &mut Meta,
) {
    if !m.pending() || t.nat.is_empty() {
        return;
    }
    if m.has(flags::ARP) {
        return outside_arp(t, p, m);
    }
    if m.has(flags::MULTICAST_DST) {
        return;
    }
    let Some((key, r)) = local_gateway(t, memo, p, m) else { return };
    if !m.has(flags::IPV4) {
        return m.drop(Reason::L3ToRouter);
    }
    let before = match translate_in(t, w, key, p.data_mut(), m) {
        Ok(before) => before,
        Err(reason) => return m.drop(reason),
    };
    l3_route::route(t, memo, w, key, r, p, m);
    if m.action == Action::Reply {
        if let Some(before) = before {
            untranslate_own_error(p.data_mut(), m, before);
        }
        tag_reply(t, p, m);
    }
}

/// The router whose MAC on the packet's network is its destination, if this node serves that router's
/// gateway.
#[inline]
fn local_gateway<'t, B: PacketBuf>(
    t: &'t Tables,
    memo: &mut BurstMemo<'t>,
    p: &B,
    m: &Meta,
) -> Option<(u32, &'t crate::routing::Router)> {
    let dst = Mac(p.data()[0..6].try_into().expect("classify checked the length"));
    let (key, r) = memo.router(t, m.network, dst)?;
    t.nat.get(&key).is_some_and(|n| n.is_local()).then_some((key, r))
}

/// A frame from another node, decapsulated: one sent, as it was, to the MAC of a router whose gateway
/// this node serves (by the node it came from, whose VM it is: `to_external`'s redirect) is routed here,
/// out of the gateway through NAT. Anything else is left to `l2_switch`.
#[inline]
pub fn from_tunnel<'t, B: PacketBuf>(
    t: &'t Tables,
    memo: &mut BurstMemo<'t>,
    w: &mut WorkerState,
    p: &mut B,
    m: &mut Meta,
) {
    if !m.pending() || t.nat.is_empty() || !m.has(flags::IPV4) || m.has(flags::MULTICAST_DST) {
        return;
    }
    if let Some((key, r)) = local_gateway(t, memo, p, m) {
        l3_route::route(t, memo, w, key, r, p, m);
    }
}

/// The destination of a packet from outside to router `key`: a floating IP's fixed address, a
/// translated connection's inside end; as it is otherwise (to the gateway address itself, or routed
/// without NAT to an inside address). `Some`: the destination address (and port) a packet had before its
/// translation, for an error the router makes about it (`untranslate_own_error`).
fn translate_in(
    t: &Tables,
    w: &mut WorkerState,
    key: u32,
    d: &mut [u8],
    m: &Meta,
) -> Result<Option<(Ipv4Addr, Option<u16>)>, Reason> {
    let l3 = m.l3_off as usize;
    let dst = addr(d, l3 + 16);
    match t.outside(m.network, dst) {
        Some((k, Outside::Fip(fixed))) if k == key => match quoted(d, m, Side::Src, dst) {
            Some(q) => rewrite_error(d, m, &q, Side::Dst, fixed, None),
            None => {
                rewrite(d, m, Side::Dst, fixed, None);
                return Ok(Some((dst, None)));
            }
        },
        Some((k, Outside::Snat)) if k == key => {
            if let Some(q) = quoted(d, m, Side::Src, dst) {
                // An error about a translated connection: to its inside end, the quote as it left it.
                let (sport, dport) = quoted_ports(d, &q);
                let remote = (addr(d, q.l3_off as usize + 16), if q.ip_proto == ICMP { 0 } else { dport });
                let found = w.nat.find_inbound(w.now_ms, m.network, q.ip_proto, (dst, sport), remote);
                if let Some((inside, iport)) = found {
                    rewrite_error(d, m, &q, Side::Dst, inside, Some(iport));
                }
                return Ok(None);
            }
            let Some((sport, dport, tcp)) = ports(d, m) else { return Ok(None) };
            let (oport, rport) = if m.ip_proto == ICMP { (sport, 0) } else { (dport, sport) };
            if m.ip_proto == ICMP && d[m.l4_off as usize] != ECHO_REPLY {
                return Ok(None);
            }
            let src = addr(d, l3 + 12);
            if let Some((inside, iport)) =
                w.nat.inbound(w.now_ms, m.network, m.ip_proto, (dst, oport), (src, rport), tcp)
            {
                rewrite(d, m, Side::Dst, inside, Some(iport));
                return Ok(Some((dst, Some(oport))));
            }
        }
        _ => {}
    }
    Ok(None)
}

/// A reply made in place goes back out of the uplink it came in by, tagged as it came.
fn tag_reply<B: PacketBuf>(t: &Tables, p: &mut B, m: &mut Meta) {
    if let Some(&u) = t.uplinks.get(&m.network) {
        if !provider::push(u, p) {
            m.drop(Reason::ProviderNoHeadroom);
        }
    }
}

/// ARP from outside: a request for a router's address answered, its sender learned; a reply to a
/// router's MAC learned and consumed; a gratuitous one updates what is known.
fn outside_arp<B: PacketBuf>(t: &Tables, p: &mut B, m: &mut Meta) {
    let net = m.network;
    let l3 = m.l3_off as usize;
    let Ok(a) = ArpPacket::new_checked(&p.data()[l3..]) else { return };
    let (op, sha, spa, tha, tpa) = (a.operation(), a.sender_mac(), a.sender_ip(), a.target_mac(), a.target_ip());
    let local = |mac: &Mac| t.router_for(net, *mac).and_then(|k| t.nat.get(&k)).is_some_and(|n| n.is_local());
    let ours = |ip: Ipv4Addr| t.arp_lookup(net, ip).filter(local);
    match op {
        ArpOperation::Request if ours(tpa).is_some() && spa != tpa => {
            t.learned.learn(net, spa, sha, false);
            arp_responder::answer_with(p, m, ours);
            if m.action == Action::Reply {
                tag_reply(t, p, m);
            }
        }
        ArpOperation::Reply if local(&tha) => {
            t.learned.learn(net, spa, sha, false);
            m.drop(Reason::NatArpLearned);
        }
        _ => t.learned.learn(net, spa, sha, true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::HeapBuf;
    use crate::fixtures::*;
    use crate::nat::RouterNat;
    use crate::tables::{TablesBuilder, Uplink};
    use crate::wire::checksum;

    const UPLINK: u16 = 4;
    /// The router's gateway MAC and address on the external network (2), and the host outside.
    const GW_MAC: Mac = Mac([0xfa, 0x16, 0x3e, 0, 0, 0xee]);
    const GW: Ipv4Addr = Ipv4Addr::new(172, 24, 4, 10);
    const HOST: Ipv4Addr = Ipv4Addr::new(172, 24, 4, 1);
    const HOST_MAC: Mac = Mac([2, 0, 0, 0x24, 4, 1]);
    const FAR: Ipv4Addr = Ipv4Addr::new(8, 8, 8, 8);
    const FIP: Ipv4Addr = Ipv4Addr::new(172, 24, 4, 20);

    /// VM1 and VM2 on network 1 behind router 1 (10.0.0.254/24), whose gateway is 172.24.4.10/24 on
    /// network 2 (flat, or VLAN `vlan`, on the uplink), default route via 172.24.4.1; SNAT `snat`, VM2's
    /// floating IP 172.24.4.20.
    fn tables(snat: bool, vlan: Option<u16>) -> Tables {
        let mut b = TablesBuilder::new();
        b.local_port(0, vm_port(101, 1, VM1, IP1, ip6(1), false));
        b.local_port(1, vm_port(102, 1, VM2, IP2, ip6(2), false));
        b.uplink(2, Uplink { port: UPLINK, vlan });
        let ifaces = [
            RouterIface { network: 1, mac: ROUTER_MAC, ip: IpNet::V4(Ipv4Addr::new(10, 0, 0, 254), 24) },
            RouterIface { network: 2, mac: GW_MAC, ip: IpNet::V4(GW, 24) },
        ];
        b.router(1, &ifaces, [(IpNet::V4(Ipv4Addr::UNSPECIFIED, 0), IpNet::host_v4(HOST))]);
        b.router_nat(1, RouterNat { network: 2, snat: snat.then_some(GW), fips: vec![(IP2, FIP)], redirect: None });
        b.build()
    }

    /// `f` with its IPv4 header and L4 checksums filled in.
    fn summed(mut f: Vec<u8>) -> Vec<u8> {
        let (l3, l4) = (14, 34);
        f[l3 + 10..l3 + 12].fill(0);
        let c = checksum::checksum(&f[l3..l4]);
        f[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
        let total = u16::from_be_bytes([f[l3 + 2], f[l3 + 3]]) as usize;
        let end = l3 + total;
        let at = match f[l3 + 9] {
            6 => l4 + 16,
            17 => l4 + 6,
            _ => l4 + 2,
        };
        f[at..at + 2].fill(0);
        let pseudo = match f[l3 + 9] {
            1 => 0,
            p => checksum::pseudo_v4(
                f[l3 + 12..l3 + 16].try_into().unwrap(),
                f[l3 + 16..l3 + 20].try_into().unwrap(),
                p,
                (end - l4) as u16,
            ),
        };
        let c = !checksum::fold(checksum::sum(pseudo, &f[l4..end]));
        f[at..at + 2].copy_from_slice(&c.to_be_bytes());
        f
    }

    /// Whether `f`'s checksums are right (what [`summed`] would write).
    fn sums_ok(f: &[u8]) -> bool {
        summed(f.to_vec()) == f
    }

    fn decide(t: &Tables, w: &mut WorkerState, port: u16, frame: Vec<u8>) -> (Meta, Vec<u8>) {
        let mut p = [HeapBuf::new(&frame)];
        let mut m = [Meta::new(port)];
        crate::stages::decide(t, w, &mut p, &mut m).fates(t).for_each(drop);
        let [p] = p;
        (m[0], p.into_vec())
    }

    fn learn_host(t: &Tables, w: &mut WorkerState) {
        let reply = arp(ArpOperation::Reply, HOST_MAC, HOST, GW_MAC, GW, GW_MAC);
        let (m, _) = decide(t, w, UPLINK, reply);
        assert_eq!((m.action, m.reason), (Action::Drop, Reason::NatArpLearned));
        assert_eq!(t.learned.get(2, HOST), Some(HOST_MAC));
    }

    #[test]
    fn the_first_packet_out_asks_for_the_next_hop_and_its_reply_teaches_it() {
        let t = tables(true, None);
        let w = &mut WorkerState::new(1);
        let (m, out) = decide(&t, w, 0, summed(udp4_ports(VM1, ROUTER_MAC, IP1, FAR, 5000, 53)));
        assert_eq!((m.action, m.out_port), (Action::Output, UPLINK));
        assert_eq!(out, tunnel_arp(GW_MAC, GW, HOST));
        // Within the second, no second request: dropped as unresolved.
        let (m, _) = decide(&t, w, 0, summed(udp4_ports(VM1, ROUTER_MAC, IP1, FAR, 5000, 53)));
        assert_eq!((m.action, m.reason), (Action::Drop, Reason::NatUnresolved));
        learn_host(&t, w);
    }

    fn tunnel_arp(mac: Mac, ip: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
        let mut p = HeapBuf::new(&[0u8; 60]);
        assert!(tunnel::arp_request_from(mac, ip, target, &mut p));
        p.into_vec()
    }

    #[test]
    fn snat_translates_out_and_back_udp_tcp_and_echo() {
        let t = tables(true, None);
        let w = &mut WorkerState::new(1);
        learn_host(&t, w);
        for (out_frame, reply_of) in [
            (
                summed(udp4_ports(VM1, ROUTER_MAC, IP1, FAR, 5000, 53)),
                Box::new(|p: u16| summed(udp4_ports(HOST_MAC, GW_MAC, FAR, GW, 53, p))) as Box<dyn Fn(u16) -> Vec<u8>>,
            ),
            (
                summed(tcp4(VM1, ROUTER_MAC, IP1, FAR, 40000, 80, 0x02)),
                Box::new(|p: u16| summed(tcp4(HOST_MAC, GW_MAC, FAR, GW, 80, p, 0x12))),
            ),
            (
                summed(echo4(VM1, ROUTER_MAC, IP1, FAR, true, 77)),
                Box::new(|p: u16| summed(echo4(HOST_MAC, GW_MAC, FAR, GW, false, p))),
            ),
        ] {
            let (m, out) = decide(&t, w, 0, out_frame.clone());
            assert_eq!((m.action, m.out_port), (Action::Output, UPLINK), "{:?}", m.reason);
            assert_eq!((&out[0..6], &out[6..12]), (&HOST_MAC.0[..], &GW_MAC.0[..]));
            assert_eq!(&out[26..30], &GW.0, "from the gateway address");
            assert_eq!(out[22], 63, "TTL decremented");
            assert!(sums_ok(&out), "checksums updated");
            let port = if out[23] == 1 {
                u16::from_be_bytes([out[38], out[39]])
            } else {
                u16::from_be_bytes([out[34], out[35]])
            };
            // The reply comes back to the VM, its address and port.
            let (m, back) = decide(&t, w, UPLINK, reply_of(port));
            assert_eq!((m.action, m.out_port), (Action::Output, 0), "{:?}", m.reason);
            assert_eq!(&back[30..34], &IP1.0);
            assert_eq!(&back[0..6], &VM1.0);
            assert!(sums_ok(&back));
            let inside = if back[23] == 1 { &back[38..40] } else { &back[36..38] };
            let sent = if out_frame[23] == 1 { &out_frame[38..40] } else { &out_frame[34..36] };
            assert_eq!(inside, sent, "the inside port back");
        }
        // Nothing opened this one: to the router itself, which takes no UDP.
        let (m, _) = decide(&t, w, UPLINK, summed(udp4_ports(HOST_MAC, GW_MAC, FAR, GW, 53, 9999)));
        assert_eq!((m.action, m.reason), (Action::Drop, Reason::L3ToRouter));
        // A GRE packet (no ports) is not translated.
        let gre = ethernet(VM1, ROUTER_MAC, 0x0800, &ipv4(IP1, FAR, crate::wire::IpProtocol::Gre, 64, &[0; 8]));
        let (m, _) = decide(&t, w, 0, gre);
        assert_eq!((m.action, m.reason), (Action::Drop, Reason::NatUnsupported));
    }

    #[test]
    fn a_floating_ip_is_one_to_one_and_answered_for() {
        let t = tables(true, Some(100));
        let w = &mut WorkerState::new(1);
        let tagged = |f: Vec<u8>| {
            let mut p = HeapBuf::new(&f);
            assert!(provider::push(Uplink { port: UPLINK, vlan: Some(100) }, &mut p));
            p.into_vec()
        };
        // ARP for the floating IP, tagged: answered with the gateway MAC, tagged.
        let (m, out) = decide(&t, w, UPLINK, tagged(arp_request(HOST_MAC, HOST, FIP)));
        assert_eq!(m.action, Action::Reply);
        assert_eq!(out, tagged(arp(ArpOperation::Reply, GW_MAC, FIP, HOST_MAC, HOST, HOST_MAC)));
        assert_eq!(t.learned.get(2, HOST), Some(HOST_MAC), "the asker learned");
        // In to the floating IP: to VM2.
        let (m, back) = decide(&t, w, UPLINK, tagged(summed(tcp4(HOST_MAC, GW_MAC, HOST, FIP, 999, 22, 0x02))));
        assert_eq!((m.action, m.out_port), (Action::Output, 1), "{:?}", m.reason);
        assert_eq!(&back[30..34], &IP2.0);
        assert!(sums_ok(&back));
        // Out of VM2: from the floating IP, whatever the port; tagged.
        let (m, out) = decide(&t, w, 1, summed(tcp4(VM2, ROUTER_MAC, IP2, HOST, 22, 999, 0x12)));
        assert_eq!((m.action, m.out_port), (Action::Output, UPLINK));
        assert_eq!(&out[12..16], &[0x81, 0, 0, 100]);
        let mut untagged = out[..12].to_vec();
        untagged.extend_from_slice(&out[16..]);
        assert_eq!(&untagged[26..30], &FIP.0);
        assert_eq!(&untagged[34..36], &22u16.to_be_bytes());
        assert!(sums_ok(&untagged));
        // A ping to the gateway address: answered, tagged.
        let (m, out) = decide(&t, w, UPLINK, tagged(summed(echo4(HOST_MAC, GW_MAC, HOST, GW, true, 5))));
        assert_eq!(m.action, Action::Reply);
        assert_eq!(&out[12..16], &[0x81, 0, 0, 100]);
    }

    #[test]
    fn without_snat_the_inside_address_goes_out() {
        let t = tables(false, None);
        let w = &mut WorkerState::new(1);
        learn_host(&t, w);
        let (m, out) = decide(&t, w, 0, summed(udp4_ports(VM1, ROUTER_MAC, IP1, FAR, 5000, 53)));
        assert_eq!((m.action, m.out_port), (Action::Output, UPLINK));
        assert_eq!(&out[26..30], &IP1.0);
        assert_eq!(&out[34..36], &5000u16.to_be_bytes());
        // And in: routed to the VM as it is.
        let (m, _) = decide(&t, w, UPLINK, summed(udp4_ports(HOST_MAC, GW_MAC, FAR, IP1, 53, 5000)));
        assert_eq!((m.action, m.out_port), (Action::Output, 0));
        // Nothing answers the gateway's ARP for an address it does not own.
        let (m, _) = decide(&t, w, UPLINK, arp_request(HOST_MAC, HOST, FAR));
        assert_ne!(m.action, Action::Reply);
    }

    /// [`REMOTE_VM`] (10.0.0.9, on chassis 1) reaches outside through the gateway this node serves: its
    /// node sends its packets here as they are, in a tunnel; they leave translated, and the replies go
    /// back to it routed, in a tunnel.
    #[test]
    fn the_gateway_node_routes_and_translates_what_another_node_redirects() {
        use crate::tables::RemotePort;
        use crate::tunnel::{Chassis, Encap, NextHops, Segment};
        let mut b = TablesBuilder::from_tables(tables(true, None));
        b.underlay(Some(UNDERLAY));
        b.chassis(1, Chassis { ip: PEER_CHASSIS.ip, hop: 0, encaps: Encap::ALL });
        b.next_hops(NextHops::new([(PEER_CHASSIS.ip, Some(PEER_CHASSIS.mac))]).into());
        let vxlan = Segment { encap: Encap::Vxlan, id: 101 };
        b.segment(1, vxlan);
        let remote_ip = Ipv4Addr::new(10, 0, 0, 9);
        b.remote_port(1, REMOTE_VM, &[IpNet::host_v4(remote_ip)], RemotePort { lport: 109, chassis: 1 });
        let t = b.build();
        let w = &mut WorkerState::new(1);
        learn_host(&t, w);
        let sent = summed(udp4_ports(REMOTE_VM, ROUTER_MAC, remote_ip, FAR, 6000, 53));
        let (m, out) = decide(&t, w, UNDERLAY.port, tunnelled(&sent, vxlan));
        assert_eq!((m.action, m.out_port), (Action::Output, UPLINK), "{:?}", m.reason);
        assert_eq!(&out[26..30], &GW.0);
        assert_eq!(out[22], 63, "routed once, here");
        let port = u16::from_be_bytes([out[34], out[35]]);
        let (m, back) = decide(&t, w, UPLINK, summed(udp4_ports(HOST_MAC, GW_MAC, FAR, GW, 53, port)));
        assert_eq!((m.action, m.out_port), (Action::Output, UNDERLAY.port), "{:?}", m.reason);
        let inner = &back[50..];
        assert_eq!(
            (&inner[0..6], &inner[30..34], &inner[36..38]),
            (&REMOTE_VM.0[..], &remote_ip.0[..], &6000u16.to_be_bytes()[..])
        );
        // A frame to the router's MAC from a router this node does not serve the gateway of: switched as
        // before (to nobody here).
        let mut b = TablesBuilder::from_tables(t.clone());
        b.remove_router_nat(1);
        let t2 = b.build();
        let (m, _) = decide(&t2, w, UNDERLAY.port, tunnelled(&sent, vxlan));
        assert_eq!(m.action, Action::Drop);
    }

    /// The node of a VM whose router's gateway another node serves sends what it routes out of the
    /// gateway there, untouched, in a tunnel of the VM's network; it answers no ARP for the gateway's
    /// addresses.
    #[test]
    fn a_gateway_served_elsewhere_gets_the_packets_as_they_are() {
        let base = tunnel_tables();
        let mut b = TablesBuilder::from_tables(base.clone());
        let mut ifaces = base.routers[&1].ifaces.clone();
        ifaces.push(RouterIface { network: 3, mac: GW_MAC, ip: IpNet::V4(GW, 24) });
        let default = (IpNet::V4(Ipv4Addr::UNSPECIFIED, 0), IpNet::host_v4(HOST));
        let extra = [(IpNet::V4(Ipv4Addr::new(10, 1, 0, 0), 16), IpNet::host_v4(Ipv4Addr::new(10, 2, 0, 3))), default];
        b.router(1, &ifaces, extra);
        b.router_nat(1, RouterNat { network: 3, snat: Some(GW), fips: vec![(IP2, FIP)], redirect: Some(1) });
        b.uplink(3, Uplink { port: UPLINK, vlan: None });
        let t = b.build();
        assert!(t.outside(3, FIP).is_none() && t.arp_lookup(3, FIP).is_none(), "not this node's to answer for");
        let w = &mut WorkerState::new(1);
        let sent = summed(udp4_ports(VM1, ROUTER_MAC, IP1, FAR, 5000, 53));
        let (m, out) = decide(&t, w, 0, sent.clone());
        assert_eq!((m.action, m.out_port, m.chassis), (Action::Output, UNDERLAY.port, 1), "{:?}", m.reason);
        assert_eq!(&out[50..], &sent[..], "as it was sent, in VXLAN 101");
        assert_eq!(&out[50 - 8 + 4..50 - 8 + 7], &[0, 0, 101]);
        let (m, _) = decide(&t, w, UPLINK, arp_request(HOST_MAC, HOST, GW));
        assert_ne!(m.action, Action::Reply, "the gateway address is the serving node's to answer for");
    }

    /// An ICMP error of type `ty` (code 0) from `from` to `to`, quoting `quote`, its checksums right.
    fn error4(sm: Mac, dm: Mac, from: Ipv4Addr, to: Ipv4Addr, ty: u8, quote: &[u8]) -> Vec<u8> {
        let mut icmp = vec![ty, 0, 0, 0, 0, 0, 0, 0];
        icmp.extend_from_slice(quote);
        summed(ethernet(sm, dm, 0x0800, &ipv4(from, to, crate::wire::IpProtocol::Icmp, 64, &icmp)))
    }

    /// `f`'s IP packet with its TTL `ttl` and checksums right: a packet as a router a hop on sees it.
    fn at_ttl(f: &[u8], ttl: u8) -> Vec<u8> {
        let mut f = f.to_vec();
        f[22] = ttl;
        summed(f)[14..].to_vec()
    }

    /// Whether the ICMP message of frame `f` (an IPv4 header of 20 bytes) sums right.
    fn icmp_sum_ok(f: &[u8]) -> bool {
        let end = 14 + usize::from(u16::from_be_bytes([f[16], f[17]]));
        checksum::checksum(&f[34..end]) == 0
    }

    #[test]
    fn icmp_errors_about_translated_packets_are_translated_back() {
        let t = tables(true, None);
        let w = &mut WorkerState::new(1);
        learn_host(&t, w);
        // Out of SNAT (a UDP and a TCP connection, an echo), an error back from a router on the way, quoting
        // 8 bytes or the whole packet: to the VM, about the packet as the VM sent it (its TTL as it reached
        // the router), every checksum right; steered to the worker of the translation.
        for (sent, whole) in [
            (summed(udp4_ports(VM1, ROUTER_MAC, IP1, FAR, 5000, 53)), false),
            (summed(tcp4(VM1, ROUTER_MAC, IP1, FAR, 40000, 80, 0x02)), true),
            (summed(tcp4(VM1, ROUTER_MAC, IP1, FAR, 40001, 80, 0x02)), false),
            (summed(echo4(VM1, ROUTER_MAC, IP1, FAR, true, 77)), true),
        ] {
            let (m, out) = decide(&t, w, 0, sent.clone());
            assert_eq!((m.action, m.out_port), (Action::Output, UPLINK), "{:?}", m.reason);
            let quote = if whole { &out[14..] } else { &out[14..42] };
            let err = error4(HOST_MAC, GW_MAC, HOST, GW, 11, quote);
            let port = u16::from_be_bytes(if out[23] == 1 { [out[38], out[39]] } else { [out[34], out[35]] });
            for n in 2..5 {
                assert_eq!(crate::steer::owner(&t, UPLINK, &err, n), Some(crate::nat::port_owner(port, n)));
            }
            let (m, back) = decide(&t, w, UPLINK, err);
            assert_eq!((m.action, m.out_port), (Action::Output, 0), "{:?}", m.reason);
            assert_eq!(&back[30..34], &IP1.0, "to the VM");
            let expect = at_ttl(&sent, 63);
            assert_eq!(&back[42..], &expect[..back.len() - 42], "the quote as the VM sent it");
            assert!(icmp_sum_ok(&back) && sums_ok(&back));
        }
        // A floating IP's: both ways.
        let (m, out) = decide(&t, w, 1, summed(udp4_ports(VM2, ROUTER_MAC, IP2, HOST, 7000, 9)));
        assert_eq!(&out[26..30], &FIP.0);
        assert_eq!(m.action, Action::Output);
        let err = error4(HOST_MAC, GW_MAC, HOST, FIP, 3, &out[14..]);
        let (m, back) = decide(&t, w, UPLINK, err);
        assert_eq!((m.action, m.out_port), (Action::Output, 1), "{:?}", m.reason);
        assert_eq!(&back[30..34], &IP2.0);
        assert_eq!(&back[42..], &at_ttl(&summed(udp4_ports(VM2, ROUTER_MAC, IP2, HOST, 7000, 9)), 63)[..]);
        assert!(icmp_sum_ok(&back) && sums_ok(&back));
        let inbound = summed(udp4_ports(HOST_MAC, GW_MAC, HOST, FIP, 9, 7001));
        let (m, seen) = decide(&t, w, UPLINK, inbound.clone());
        assert_eq!((m.action, m.out_port), (Action::Output, 1));
        let err = error4(VM2, ROUTER_MAC, IP2, HOST, 3, &seen[14..]);
        let (m, out) = decide(&t, w, 1, err);
        assert_eq!((m.action, m.out_port), (Action::Output, UPLINK), "{:?}", m.reason);
        assert_eq!(&out[26..30], &FIP.0, "from the floating IP");
        assert_eq!(&out[42..], &at_ttl(&inbound, 63)[..], "about the packet as the host sent it, routed");
        assert!(icmp_sum_ok(&out) && sums_ok(&out));
        // From a VM behind SNAT, about a reply that came in through it: out as about what the host sent.
        let (_, out) = decide(&t, w, 0, summed(udp4_ports(VM1, ROUTER_MAC, IP1, FAR, 5002, 53)));
        let port = u16::from_be_bytes([out[34], out[35]]);
        let reply = summed(udp4_ports(HOST_MAC, GW_MAC, FAR, GW, 53, port));
        let (_, seen) = decide(&t, w, UPLINK, reply.clone());
        let (m, out) = decide(&t, w, 0, error4(VM1, ROUTER_MAC, IP1, FAR, 3, &seen[14..42]));
        assert_eq!((m.action, m.out_port), (Action::Output, UPLINK), "{:?}", m.reason);
        assert_eq!(&out[26..30], &GW.0);
        assert_eq!(&out[42..], &at_ttl(&reply, 63)[..28]);
        assert!(icmp_sum_ok(&out) && sums_ok(&out));
        // Not about a translation: a quote cut short, a quote from another address, an error about
        // nothing translated. To the router, which takes none of them.
        for quote in [&out[42..52], &at_ttl(&sent_from(FAR), 63)[..28], &at_ttl(&sent_from(GW), 63)[..28]] {
            let (m, _) = decide(&t, w, UPLINK, error4(HOST_MAC, GW_MAC, HOST, GW, 3, quote));
            assert_eq!((m.action, m.reason), (Action::Drop, Reason::L3ToRouter));
        }
        // Out of a VM, an error about nothing translated: not sent.
        let (m, _) = decide(&t, w, 0, error4(VM1, ROUTER_MAC, IP1, FAR, 3, &at_ttl(&sent_from(FAR), 60)[..28]));
        assert_eq!((m.action, m.reason), (Action::Drop, Reason::NatUnsupported));
    }

    #[test]
    fn the_routers_own_time_exceeded_quotes_what_the_sender_sent() {
        let t = tables(true, None);
        let w = &mut WorkerState::new(1);
        learn_host(&t, w);
        let far2 = Ipv4Addr::new(9, 9, 9, 9);
        let ttl1 = |f: Vec<u8>| {
            let mut f = f;
            f[22] = 1;
            summed(f)
        };
        // To a floating IP, a reply through SNAT (UDP, echo), each with one hop left: the router's time
        // exceeded goes back out of the uplink quoting the packet with the destination it was sent to (the
        // floating IP; the gateway and its port), not the VM's; every checksum right.
        let (_, out) = decide(&t, w, 0, summed(udp4_ports(VM1, ROUTER_MAC, IP1, FAR, 5000, 53)));
        let port = u16::from_be_bytes([out[34], out[35]]);
        let (_, out) = decide(&t, w, 0, summed(echo4(VM1, ROUTER_MAC, IP1, far2, true, 78)));
        let id = u16::from_be_bytes([out[38], out[39]]);
        for (sent, from) in [
            (ttl1(udp4_ports(HOST_MAC, GW_MAC, HOST, FIP, 9, 7001)), HOST),
            (ttl1(udp4_ports(HOST_MAC, GW_MAC, FAR, GW, 53, port)), FAR),
            (ttl1(echo4(HOST_MAC, GW_MAC, far2, GW, false, id)), far2),
        ] {
            let (m, back) = decide(&t, w, UPLINK, sent.clone());
            assert_eq!(m.action, Action::Reply, "{:?}", m.reason);
            assert_eq!((back[34], &back[26..30], &back[30..34]), (11, &GW.0[..], &from.0[..]), "time exceeded");
            assert_eq!(&back[42..], &sent[14..14 + back.len() - 42], "the quote as the sender sent it");
            assert!(icmp_sum_ok(&back) && sums_ok(&back));
        }
    }

    /// A UDP datagram from `a` to the VM1's address, port 1 to 2.
    fn sent_from(a: Ipv4Addr) -> Vec<u8> {
        summed(udp4_ports(HOST_MAC, GW_MAC, a, IP1, 1, 2))
    }
}
