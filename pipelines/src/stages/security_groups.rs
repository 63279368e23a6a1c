//! Security groups, as Neutron defines them and its OVS firewall driver enforces them: a port's groups
//! allow what their rules allow (a union), in each direction, and nothing else; stateful groups (the
//! default) also allow the rest of a connection their rules let open, both ways, through connection
//! tracking (`conntrack.rs`); stateless groups check every packet against the rules alone.
//!
//! Two checks, one per direction: [`from_port`] (after port security and the punt stage: the port's
//! egress rules, for what it sends) and [`to_port`] (from `egress`, for a packet leaving by a local
//! port: that port's ingress rules). A packet between two local ports takes both, each in its port's
//! zone, as OVN gives each port its conntrack zone; a packet from or to another node takes the check of
//! its own node's port, on that node. Only IP packets are checked (ARP and the rest were port security's
//! to allow or drop); a reply the switch makes itself (ARP, ND, the router's echo replies and ICMP
//! errors) is not checked: it answers a packet that passed.
//!
//! Always allowed, as Neutron's OVS firewall allows them before any rule: DHCP (a client's requests out, a
//! server's replies in, v4 and v6), and ICMPv6 neighbour discovery and multicast listener queries (router
//! solicitations out, router advertisements in: a VM may not send one, port security drops it).
//!
//! A flooded packet (broadcast, multicast, unknown unicast) is checked against each receiving local
//! port's ingress rules ([`flood`]): a port that refuses it gets no copy.
//!
//! Tracking: a packet of a known connection passes (its TCP flags are checked against the connection's
//! state); an ICMP error about a known connection passes (related); a packet that opens a connection (a
//! TCP SYN, an ICMP echo request, any UDP or other datagram) passes if the rules of its direction allow
//! it, and the connection is remembered. A TCP segment without SYN or RST of no known connection picks it
//! up in the middle, if the rules allow it (as Linux and OVS do: connections survive a restart). A SYN-ACK
//! or RST of nothing, an echo reply nobody asked for, is invalid (OVN drops `ct.inv`). When the port's
//! rules change, a connection's next packet checks the packet that opened it against the new rules, and
//! if they no longer allow it the connection is blocked: its packets are dropped until it expires, so
//! that it is not picked up again (OVN's behaviour: removing a rule ends what it allowed).
//!
//! Fragments: the first fragment of a datagram carries its ports and is checked as any packet; once it
//! passes, the datagram's later fragments (same addresses, protocol and identification, within 2 s) pass too.
//! Later fragments without it are dropped (`security_groups.fragment`): Neutron's drivers reassemble
//! (conntrack does), the switch does not. IPv6: a fragment header right after the fixed header only.
//!
//! Both directions of a connection must meet on one worker: the table is the worker's (see
//! `conntrack.rs`). With several workers, the dataplane hands every packet, before any stage, to the
//! worker its IP address pair hashes to while the tables track connections (`steer.rs`: a symmetric
//! hash, so replies, later fragments and ICMP errors about a connection go there too), whatever queue
//! and worker received it.
//!
//! Drops: `security_groups.egress_denied`, `.ingress_denied`, `.invalid`, `.revoked`, `.fragment`,
//! `conntrack.full`.

use crate::acl::{has_ports, Acl, Query};
use crate::buf::PacketBuf;
use crate::conntrack::{self, tcp_next, tcp_opens, tcp_picks_up, Dir, Entry, Key, State, TcpState, FRAGMENT};
use crate::drop::Reason;
use crate::meta::{flags, Meta};
use crate::stages::l2_switch::flood_ports;
use crate::stages::{BurstMemo, WorkerState};
use crate::tables::{PortEntry, PortSg, Tables};

/// The egress rules of the in-port, for a packet still pending.
#[inline(always)]
pub fn from_port<'t, B: PacketBuf>(t: &'t Tables, memo: &mut BurstMemo<'t>, w: &mut WorkerState, p: &B, m: &mut Meta) {
    if !m.pending() || m.flags & (flags::IPV4 | flags::IPV6) == 0 {
        return;
    }
    if let Some(port) = memo.port(t, m.in_port) {
        sent_by(port, w, p, m);
    }
}

/// [`from_port`] for a packet of in-port `port`, pending and IP.
#[inline(always)]
pub fn sent_by<B: PacketBuf>(port: &PortEntry, w: &mut WorkerState, p: &B, m: &mut Meta) {
    through(port, Dir::Egress, w, p, m);
}

/// The ingress rules of the local port a decided packet leaves by (`Action::Output`).
#[inline(always)]
pub fn to_port<B: PacketBuf>(t: &Tables, w: &mut WorkerState, p: &B, m: &mut Meta) {
    if m.flags & (flags::IPV4 | flags::IPV6) != 0 {
        if let Some(port) = t.port(m.out_port) {
            through(port, Dir::Ingress, w, p, m);
        }
    }
}

/// Packet `p` through `port`'s groups in direction `dir` (none: nothing to check); dropped if refused.
#[inline(always)]
fn through<B: PacketBuf>(port: &PortEntry, dir: Dir, w: &mut WorkerState, p: &B, m: &mut Meta) {
    let Some(sg) = port.sg.as_deref() else { return };
    if let Err(r) = check(w, sg, port.lport, dir, p.data(), m) {
        m.drop(r);
    }
}

/// The ingress rules of each local port a flooded packet (broadcast, multicast, unknown unicast) goes to:
/// a port whose groups refuse it gets no copy (`Meta::flood_skip`); refused by all and for no other node,
/// it is dropped. Each copy is checked (and tracked) in its port's zone, as OVN checks each output port.
#[inline(never)]
pub fn flood<B: PacketBuf>(t: &Tables, w: &mut WorkerState, p: &B, m: &mut Meta) {
    if m.flags & (flags::IPV4 | flags::IPV6) == 0 {
        return;
    }
    let mut copies = 0;
    let mut reason = Reason::None;
    for port in flood_ports(t, m.network, m.in_port, m.flags, 0) {
        let Some(e) = t.port(port) else { continue };
        match e.sg.as_deref().map(|sg| check(w, sg, e.lport, Dir::Ingress, p.data(), m)) {
            Some(Err(r)) if port < 64 => {
                m.flood_skip |= 1 << port;
                reason = r;
            }
            _ => copies += 1,
        }
    }
    let f = flood_ports(t, m.network, m.in_port, m.flags, m.flood_skip);
    if copies == 0 && f.chassis().is_empty() && f.uplink().is_none() && reason != Reason::None {
        m.drop(reason);
    }
}

/// What kind of packet, for tracking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// TCP, with its flags.
    Tcp(u8),
    /// Another protocol with ports, or without (GRE, ...): tracked as a datagram.
    Datagram,
    /// An ICMP echo request or reply (`true`: request).
    Echo(bool),
    /// An ICMP error: the offset of the packet it quotes (its IP header).
    Error(usize),
    /// Another ICMP message: checked, not tracked.
    Untracked,
    /// Always allowed (DHCP, neighbour discovery, MLD).
    Allowed,
    /// A fragment after the first: its datagram's identification.
    LaterFragment(u32),
}

/// One IP packet's fields: addresses (IPv4 as values below 2^32), ports (the echo identifier twice for
/// ICMP echo), and what the rules match on.
#[derive(Debug, Clone, Copy)]
struct Pkt {
    v6: bool,
    proto: u8,
    src: u128,
    dst: u128,
    sport: u16,
    dport: u16,
    /// The rules' L4 value: the destination port, or ICMP `type << 8 | code`.
    l4: u16,
    kind: Kind,
    /// A first fragment: its identification (its later fragments' permit is made when it passes).
    first_fragment: Option<u32>,
}

/// Big-endian reads at `at`, `None` past the end (also `steer`'s).
#[inline(always)]
pub(crate) fn be16(d: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*d.get(at)?, *d.get(at + 1)?]))
}

/// An IPv4 address at `at`, as the `u128` value tracking keys use.
pub(crate) fn addr4(d: &[u8], at: usize) -> Option<u128> {
    Some(u32::from_be_bytes(d.get(at..at + 4)?.try_into().ok()?) as u128)
}

pub(crate) fn addr6(d: &[u8], at: usize) -> Option<u128> {
    Some(u128::from_be_bytes(d.get(at..at + 16)?.try_into().ok()?))
}

/// The packet's fields; `None` if its L4 header is cut short (dropped as invalid).
#[inline]
fn parse(d: &[u8], m: &Meta, dir: Dir) -> Option<Pkt> {
    let v6 = m.has(flags::IPV6);
    let l3 = m.l3_off as usize;
    let l4 = m.l4_off as usize;
    // The IP packet alone: not the frame's padding or trailer (a tiny first fragment must not take its
    // TCP flags from there). Classify checked that the frame holds the length.
    let len = if v6 { 40 + usize::from(be16(d, l3 + 4)?) } else { usize::from(be16(d, l3 + 2)?) };
    let d = d.get(..l3 + len)?;
    let (src, dst) =
        if v6 { (addr6(d, l3 + 8)?, addr6(d, l3 + 24)?) } else { (addr4(d, l3 + 12)?, addr4(d, l3 + 16)?) };
    let mut first_fragment = None;
    let mut later = None;
    if !v6 {
        let frag = be16(d, l3 + 6)?;
        let id = u32::from(be16(d, l3 + 4)?);
        if frag & 0x1fff != 0 {
            later = Some(id);
        } else if frag & 0x2000 != 0 {
            first_fragment = Some(id);
        }
    } else if m.has(flags::LATER_FRAGMENT) {
        // A fragment header right after the fixed header (its identification at +4).
        let id = (d.get(l3 + 6) == Some(&44)).then(|| be16(d, l3 + 44).zip(be16(d, l3 + 46))).flatten();
        later = Some(id.map_or(u32::MAX, |(h, l)| u32::from(h) << 16 | u32::from(l)));
    } else if d.get(l3 + 6) == Some(&44) {
        first_fragment = Some(u32::from(be16(d, l3 + 44)?) << 16 | u32::from(be16(d, l3 + 46)?));
    }
    if let Some(id) = later {
        let kind = Kind::LaterFragment(id);
        // The datagram's protocol: IPv6 names it in the fragment header (which classify stopped at).
        let proto = if v6 { d.get(l3 + 40).copied().unwrap_or(FRAGMENT) } else { m.ip_proto };
        return Some(Pkt { v6, proto, src, dst, sport: 0, dport: 0, l4: 0, kind, first_fragment });
    }
    let proto = m.ip_proto;
    let mut p = Pkt { v6, proto, src, dst, sport: 0, dport: 0, l4: 0, kind: Kind::Datagram, first_fragment };
    match proto {
        6 => {
            (p.sport, p.dport) = (be16(d, l4)?, be16(d, l4 + 2)?);
            p.l4 = p.dport;
            p.kind = Kind::Tcp(*d.get(l4 + 13)?);
        }
        _ if has_ports(proto) => {
            (p.sport, p.dport) = (be16(d, l4)?, be16(d, l4 + 2)?);
            p.l4 = p.dport;
            let dhcp = match dir {
                Dir::Egress => (p.sport, p.dport) == (68, 67) || (p.sport, p.dport) == (546, 547),
                Dir::Ingress => (p.sport, p.dport) == (67, 68) || (p.sport, p.dport) == (547, 546),
            };
            if proto == 17 && dhcp {
                p.kind = Kind::Allowed;
            }
        }
        1 | 58 if (proto == 1) != v6 => {
            let (ty, code) = (*d.get(l4)?, *d.get(l4 + 1)?);
            p.l4 = u16::from(ty) << 8 | u16::from(code);
            let (request, reply) = if v6 { (128, 129) } else { (8, 0) };
            p.kind = if ty == request || ty == reply {
                let id = be16(d, l4 + 4)?;
                (p.sport, p.dport) = (id, id);
                Kind::Echo(ty == request)
            } else if (!v6 && matches!(ty, 3 | 4 | 5 | 11 | 12)) || (v6 && (1..=4).contains(&ty)) {
                Kind::Error(l4 + 8)
            } else if v6 && always_allowed_icmp6(ty, dir) {
                Kind::Allowed
            } else {
                Kind::Untracked
            };
        }
        _ => {}
    }
    Some(p)
}

/// The ICMPv6 messages Neutron's OVS firewall allows before any rule (`firewall.py`): multicast listener
/// queries and neighbour discovery both ways, router solicitations out, router advertisements in.
#[inline(always)]
fn always_allowed_icmp6(ty: u8, dir: Dir) -> bool {
    match dir {
        Dir::Egress => matches!(ty, 130 | 133 | 135 | 136),
        Dir::Ingress => matches!(ty, 130 | 134 | 135 | 136),
    }
}

/// The rules' question for packet `p` in direction `dir`: the remote end is the destination of what
/// the port sends, the source of what it receives.
#[inline(always)]
fn query(p: &Pkt, dir: Dir) -> Query {
    let remote = if dir == Dir::Egress { p.dst } else { p.src };
    Query { v6: p.v6, proto: p.proto, l4: p.l4, remote }
}

#[inline(always)]
fn acl(sg: &PortSg, dir: Dir) -> &Acl {
    if dir == Dir::Egress {
        &sg.egress
    } else {
        &sg.ingress
    }
}

#[inline(always)]
fn denied(dir: Dir) -> Reason {
    if dir == Dir::Egress {
        Reason::SgEgressDenied
    } else {
        Reason::SgIngressDenied
    }
}

/// Packet `d` (headers in `m`) through port `zone`'s groups `sg` in direction `dir`: the common case
/// ([`tracked_v4`]) in one pass, anything else in [`check_any`].
#[inline(always)]
fn check(w: &mut WorkerState, sg: &PortSg, zone: u32, dir: Dir, d: &[u8], m: &Meta) -> Result<(), Reason> {
    if sg.stateful {
        if let Some(verdict) = tracked_v4(w, sg, zone, d, m) {
            return verdict;
        }
    }
    check_any(w, sg, zone, dir, d, m)
}

/// An untagged IPv4 TCP or UDP packet without options, not a fragment, not DHCP, its L4 header (TCP:
/// through its flags) within the IP packet: its protocol, ends and TCP flags (0 for UDP). Read from the
/// bytes alone (also before classify: [`ahead`]).
#[inline(always)]
fn plain_v4(d: &[u8]) -> Option<(u8, u128, u16, u128, u16, u8)> {
    let h = d.get(..48)?;
    let proto = h[23];
    let total = usize::from(u16::from_be_bytes([h[16], h[17]]));
    if h[12..15] != [0x08, 0x00, 0x45]
        || (proto != 6 && proto != 17)
        || u16::from_be_bytes([h[20], h[21]]) & 0x3fff != 0
        || total < 20 + if proto == 6 { 14 } else { 8 }
        || d.len() < 14 + total
    {
        return None;
    }
    let addr = |at: usize| u128::from(u32::from_be_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]));
    let (sport, dport) = (u16::from_be_bytes([h[34], h[35]]), u16::from_be_bytes([h[36], h[37]]));
    if proto == 17 && (matches!(sport, 67 | 68) || matches!(dport, 67 | 68)) {
        return None;
    }
    Some((proto, addr(26), sport, addr(30), dport, if proto == 6 { h[47] } else { 0 }))
}

/// The common case, decided with the fewest reads: a [`plain_v4`] packet of a connection the zone
/// tracks, whose rules did not change, and a segment its TCP state takes. `None` for anything else:
/// [`check_any`] decides it (and finds the connection again: a new connection pays two lookups, an
/// established one one).
#[inline(always)]
fn tracked_v4(w: &mut WorkerState, sg: &PortSg, zone: u32, d: &[u8], m: &Meta) -> Option<Result<(), Reason>> {
    if m.flags & (flags::IPV4 | flags::VLAN | flags::LATER_FRAGMENT) != flags::IPV4 {
        return None;
    }
    let (proto, src, sport, dst, dport, tcp_flags) = plain_v4(d)?;
    let (key, sender_is_b) = Key::of(zone, proto, false, src, sport, dst, dport);
    let now = w.now_ms;
    let s = w.conntrack.find(&key, now)?;
    let e = w.conntrack.entry_mut(s);
    if e.digest != sg.digest {
        return None;
    }
    let from_opener = sender_is_b == e.opener;
    let state = match e.state {
        State::Tcp(t) => State::Tcp(tcp_next(t, from_opener, tcp_flags)?),
        State::Other { replied } => State::Other { replied: replied || !from_opener },
        State::Blocked => return None,
    };
    e.state = state;
    e.expires_ms = now + conntrack::timeout_ms(proto, state);
    Some(Ok(()))
}

/// Before a burst is decided, when the worker tracks more connections than its caches hold: the table's
/// lines each of the burst's [`plain_v4`] packets will read (its connection in the in-port's zone and in
/// the destination port's, if local and filtered) are asked for at once, so that their misses overlap
/// instead of coming one after the other (as `stages::routes_ahead` does for routes). Only a hint: the
/// packets are decided as they would be without it.
pub fn ahead<'t, B: PacketBuf>(t: &'t Tables, memo: &mut BurstMemo<'t>, w: &WorkerState, pkts: &[B], meta: &[Meta]) {
    for (p, m) in pkts.iter().zip(meta) {
        let d = p.data();
        let Some((proto, src, sport, dst, dport, _)) = plain_v4(d) else { continue };
        let Some(port) = memo.port(t, m.in_port) else { continue };
        let zone = |e: &crate::tables::PortEntry| e.sg.as_ref().is_some_and(|sg| sg.stateful).then_some(e.lport);
        if let Some(z) = zone(port) {
            w.conntrack.prefetch(&Key::of(z, proto, false, src, sport, dst, dport).0);
        }
        let to = crate::wire::Mac(d[0..6].try_into().expect("plain_v4 read 48 bytes"));
        if let Some(z) = memo.l2(t, port.network, to).and_then(|o| t.port(o)).and_then(zone) {
            w.conntrack.prefetch(&Key::of(z, proto, false, src, sport, dst, dport).0);
        }
    }
}

/// [`check`] for any packet.
#[inline(never)]
fn check_any(w: &mut WorkerState, sg: &PortSg, zone: u32, dir: Dir, d: &[u8], m: &Meta) -> Result<(), Reason> {
    let Some(p) = parse(d, m, dir) else { return Err(Reason::SgInvalid) };
    match p.kind {
        Kind::Allowed => return Ok(()),
        Kind::LaterFragment(id) => return fragment(w, zone, &p, id),
        _ => {}
    }
    let allowed = |p: &Pkt| acl(sg, dir).allows(&query(p, dir));
    if !sg.stateful {
        if !allowed(&p) {
            return Err(denied(dir));
        }
        permit(w, zone, &p);
        return Ok(());
    }
    let now = w.now_ms;
    let (key, sender_is_b) = key(zone, &p);
    let ct = &mut w.conntrack;
    let tracked = !matches!(p.kind, Kind::Error(_) | Kind::Untracked);
    if let Some(s) = if tracked { ct.find(&key, now) } else { None } {
        let e = ct.entry(s);
        if e.digest != sg.digest && e.state != State::Blocked {
            if !acl(sg, e.dir).allows(&query(&opening(e), e.dir)) {
                let e = ct.entry_mut(s);
                e.state = State::Blocked;
                e.digest = sg.digest;
                ct.stats.revoked += 1;
            } else {
                ct.entry_mut(s).digest = sg.digest;
            }
        }
        let e = ct.entry_mut(s);
        if e.state == State::Blocked {
            // A new connection the rules allow replaces it; anything else of it is dropped, and keeps it.
            let opens = match p.kind {
                Kind::Tcp(f) => tcp_opens(f),
                Kind::Echo(request) => request,
                _ => true,
            };
            if opens && acl(sg, dir).allows(&query(&p, dir)) {
                ct.remove(s);
                return open(w, sg, zone, dir, &p, key, sender_is_b);
            }
            e.expires_ms = now + conntrack::timeout_ms(p.proto, State::Blocked);
            return Err(Reason::SgRevoked);
        }
        let from_opener = sender_is_b == e.opener;
        let state = match (e.state, p.kind) {
            (State::Tcp(TcpState::Closed | TcpState::TimeWait), Kind::Tcp(f)) if tcp_opens(f) => {
                // The connection is over and a new one opens with the same ends: checked as new.
                ct.remove(s);
                return open(w, sg, zone, dir, &p, key, sender_is_b);
            }
            (State::Tcp(t), Kind::Tcp(f)) => State::Tcp(tcp_next(t, from_opener, f).ok_or(Reason::SgInvalid)?),
            (State::Other { replied }, _) => State::Other { replied: replied || !from_opener },
            (State::Tcp(_) | State::Blocked, _) => return Err(Reason::SgInvalid),
        };
        e.state = state;
        e.expires_ms = now + conntrack::timeout_ms(p.proto, state);
        permit(w, zone, &p);
        return Ok(());
    }
    match p.kind {
        Kind::Error(at) if related(w, zone, &p, d, at) => Ok(()),
        Kind::Error(_) | Kind::Untracked => {
            if allowed(&p) {
                Ok(())
            } else {
                Err(denied(dir))
            }
        }
        _ => open(w, sg, zone, dir, &p, key, sender_is_b),
    }
}

/// The connection of packet `p` in `zone`, and whether its sender is the key's `b` end. An echo's also
/// says which end asks (as Linux's tuples hold the echo type): an echo request the other way is another
/// connection, not a reply.
#[inline(always)]
fn key(zone: u32, p: &Pkt) -> (Key, bool) {
    let (mut k, sender_is_b) = Key::of(zone, p.proto, p.v6, p.src, p.sport, p.dst, p.dport);
    if let Kind::Echo(request) = p.kind {
        k.tag = echo_tag(sender_is_b == request);
    }
    (k, sender_is_b)
}

/// The tag of an echo whose requester is the key's `b` end (`requester_is_b`) or its `a` end.
#[inline(always)]
fn echo_tag(requester_is_b: bool) -> u8 {
    1 + u8::from(requester_is_b)
}

/// A packet that may open a connection: checked against the rules and, if they allow it, remembered.
#[inline]
fn open(
    w: &mut WorkerState,
    sg: &PortSg,
    zone: u32,
    dir: Dir,
    p: &Pkt,
    key: Key,
    sender_is_b: bool,
) -> Result<(), Reason> {
    let state = match p.kind {
        Kind::Tcp(f) if tcp_opens(f) => State::Tcp(TcpState::SynSent),
        Kind::Tcp(f) if tcp_picks_up(f) => State::Tcp(TcpState::Established),
        Kind::Tcp(_) | Kind::Echo(false) => return Err(Reason::SgInvalid),
        _ => State::Other { replied: false },
    };
    if !acl(sg, dir).allows(&query(p, dir)) {
        return Err(denied(dir));
    }
    let now = w.now_ms;
    let e = Entry {
        key,
        expires_ms: now + conntrack::timeout_ms(p.proto, state),
        digest: sg.digest,
        state,
        opener: sender_is_b,
        dir,
    };
    w.conntrack.insert(e, now).ok_or(Reason::ConntrackFull)?;
    permit(w, zone, p);
    Ok(())
}

/// The packet that opened connection `e`, as its rules saw it.
fn opening(e: &Entry) -> Pkt {
    let k = &e.key;
    let ((src, sport), (dst, dport)) = if e.opener { ((k.b, k.pb), (k.a, k.pa)) } else { ((k.a, k.pa), (k.b, k.pb)) };
    let l4 = match k.proto {
        1 if !k.v6 => 8 << 8,
        58 if k.v6 => 128 << 8,
        _ => dport,
    };
    Pkt { v6: k.v6, proto: k.proto, src, dst, sport, dport, l4, kind: Kind::Datagram, first_fragment: None }
}

/// Whether the ICMP error `p` quotes (at offset `at` of `d`) a packet of a connection the zone tracks.
fn related(w: &mut WorkerState, zone: u32, p: &Pkt, d: &[u8], at: usize) -> bool {
    let inner = || -> Option<Key> {
        let (proto, src, dst, l4) = if p.v6 {
            (*d.get(at + 6)?, addr6(d, at + 8)?, addr6(d, at + 24)?, at + 40)
        } else {
            let ihl = usize::from(*d.get(at)? & 0x0f) * 4;
            (*d.get(at + 9)?, addr4(d, at + 12)?, addr4(d, at + 16)?, at + ihl)
        };
        let (sport, dport) = match proto {
            1 | 58 => {
                let id = be16(d, l4 + 4)?;
                (id, id)
            }
            _ if has_ports(proto) => (be16(d, l4)?, be16(d, l4 + 2)?),
            _ => (0, 0),
        };
        let (mut k, src_is_b) = Key::of(zone, proto, p.v6, src, sport, dst, dport);
        if matches!(proto, 1 | 58) {
            // The quoted packet: an echo request (a reply's error would be about nothing tracked).
            k.tag = echo_tag(src_is_b);
        }
        Some(k)
    };
    let now = w.now_ms;
    inner().is_some_and(|k| w.conntrack.find(&k, now).is_some())
}

/// The key of a datagram's fragment permit: its addresses, protocol and identification (IPv4's
/// identification is unique per addresses and protocol only, RFC 791).
fn permit_key(zone: u32, p: &Pkt, id: u32) -> Key {
    // (Tag 3: no connection's key, whatever its protocol.)
    Key { zone, proto: p.proto, v6: p.v6, tag: 3, pa: (id >> 16) as u16, pb: id as u16, a: p.src, b: p.dst }
}

/// A packet passed: if it is a first fragment, its datagram's later fragments may follow.
#[inline(always)]
fn permit(w: &mut WorkerState, zone: u32, p: &Pkt) {
    if let Some(id) = p.first_fragment {
        permit_fragments(w, zone, p, id);
    }
}

#[cold]
fn permit_fragments(w: &mut WorkerState, zone: u32, p: &Pkt, id: u32) {
    let key = permit_key(zone, p, id);
    let now = w.now_ms;
    if w.conntrack.find(&key, now).is_none() {
        let state = State::Other { replied: false };
        let e = Entry {
            key,
            expires_ms: now + conntrack::timeout_ms(FRAGMENT, state),
            digest: 0,
            state,
            opener: false,
            dir: Dir::Egress,
        };
        // Full: the later fragments are dropped, as their datagram would be.
        let _ = w.conntrack.insert(e, now);
    }
}

/// A later fragment: passes if its first fragment did.
fn fragment(w: &mut WorkerState, zone: u32, p: &Pkt, id: u32) -> Result<(), Reason> {
    let now = w.now_ms;
    match w.conntrack.find(&permit_key(zone, p, id), now) {
        Some(_) => Ok(()),
        None => Err(Reason::SgFragment),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::acl::{Rule, L4};
    use crate::conntrack::tcp::{ACK, FIN, RST, SYN};
    use crate::fixtures::*;
    use crate::meta::Action;
    use crate::tables::{PortEntry, TablesBuilder};
    use crate::wire::{IpNet, Ipv4Addr, Mac};

    fn any(v6: bool) -> Rule {
        Rule { v6, proto: None, l4: L4::Any, remote: None }
    }

    fn tcp(port: u16) -> Rule {
        Rule { v6: false, proto: Some(6), l4: L4::Ports(port, port), remote: None }
    }

    fn sg(stateful: bool, ingress: &[Rule], egress: &[Rule]) -> Option<Arc<PortSg>> {
        Some(Arc::new(PortSg::new(stateful, Acl::compile(ingress), Acl::compile(egress))))
    }

    /// VM1 on port 0, VM2 on port 1, with these groups.
    fn tables(sg1: Option<Arc<PortSg>>, sg2: Option<Arc<PortSg>>) -> Tables {
        let port = |lport, mac, v4, v6, sg| PortEntry { sg, ..vm_port(lport, 1, mac, v4, v6, true) };
        let mut b = TablesBuilder::new();
        b.local_port(0, port(101, VM1, IP1, ip6(1), sg1));
        b.local_port(1, port(102, VM2, IP2, ip6(2), sg2));
        b.build()
    }

    /// The default groups' shape: egress anywhere; VM2 also takes TCP 80 and UDP 53 in.
    fn web() -> Tables {
        let udp53 = Rule { v6: false, proto: Some(17), l4: L4::Ports(53, 53), remote: None };
        tables(sg(true, &[], &[any(false), any(true)]), sg(true, &[tcp(80), udp53], &[any(false), any(true)]))
    }

    /// Each frame (with its in-port) through the pipeline, one burst each, on worker `w` at `now_ms`:
    /// the drop reason, or `None` for passed.
    fn verdicts(t: &Tables, w: &mut WorkerState, now_ms: u64, frames: &[(u16, Vec<u8>)]) -> Vec<Reason> {
        w.now_ms = now_ms;
        frames
            .iter()
            .map(|(port, f)| {
                let mut p = [crate::buf::HeapBuf::new(f)];
                let mut m = [Meta::new(*port)];
                crate::stages::decide(t, w, &mut p, &mut m);
                if m[0].action == Action::Drop {
                    m[0].reason
                } else {
                    Reason::None
                }
            })
            .collect()
    }

    const OK: Reason = Reason::None;

    #[test]
    fn a_tcp_connection_opens_by_rule_and_its_replies_pass() {
        let t = web();
        let w = &mut WorkerState::new(1);
        let seg = |from: u16, flags| match from {
            0 => (0, tcp4(VM1, VM2, IP1, IP2, 40000, 80, flags)),
            _ => (1, tcp4(VM2, VM1, IP2, IP1, 80, 40000, flags)),
        };
        let frames = [
            seg(0, SYN),
            seg(1, SYN | ACK),
            seg(0, ACK),
            seg(1, ACK),
            seg(0, FIN | ACK),
            seg(1, FIN | ACK),
            seg(0, ACK),
        ];
        assert_eq!(verdicts(&t, w, 0, &frames), vec![OK; 7]);
        // Not to another port, not a SYN-ACK of nothing, not VM2 to VM1 (VM1 takes nothing in); a segment
        // of a connection the switch has not seen open is picked up where the rules allow it.
        let frames = [
            (0, tcp4(VM1, VM2, IP1, IP2, 40001, 81, SYN)),
            (0, tcp4(VM1, VM2, IP1, IP2, 40002, 80, SYN | ACK)),
            (1, tcp4(VM2, VM1, IP2, IP1, 40003, 22, SYN)),
            (1, udp4(VM2, VM1, IP2, IP1)),
            (0, tcp4(VM1, VM2, IP1, IP2, 40004, 80, ACK)),
            (0, tcp4(VM1, VM2, IP1, IP2, 40005, 81, ACK)),
            (1, tcp4(VM2, VM1, IP2, IP1, 80, 40004, ACK)),
        ];
        assert_eq!(
            verdicts(&t, w, 0, &frames),
            vec![
                Reason::SgIngressDenied,
                Reason::SgInvalid,
                Reason::SgIngressDenied,
                Reason::SgIngressDenied,
                OK,
                Reason::SgIngressDenied,
                OK
            ]
        );
        // A new connection with the same ends after the old one closed.
        assert_eq!(verdicts(&t, w, 1000, &[seg(0, SYN), seg(1, SYN | ACK)]), vec![OK, OK]);
        // A RST closes it; then a RST of nothing is invalid.
        assert_eq!(verdicts(&t, w, 1000, &[seg(1, RST), seg(0, ACK)]), vec![OK, OK]);
        assert_eq!(verdicts(&t, w, 12_000, &[seg(1, RST)]), vec![Reason::SgInvalid], "closed, then expired");
    }

    #[test]
    fn echo_out_and_its_reply_in_but_no_echo_in() {
        let t = web();
        let w = &mut WorkerState::new(1);
        let frames = [
            (1, echo4(VM2, VM1, IP2, IP1, true, 7)),
            (0, echo4(VM1, VM2, IP1, IP2, true, 9)),
            (1, echo4(VM2, VM1, IP2, IP1, false, 9)),
        ];
        // VM1 takes no echo in; VM2 takes no ICMP in, and a reply nobody asked for is invalid.
        assert_eq!(
            verdicts(&t, w, 0, &frames),
            vec![Reason::SgIngressDenied, Reason::SgIngressDenied, Reason::SgInvalid]
        );
        let t = tables(
            sg(true, &[], &[any(false)]),
            sg(true, &[Rule { v6: false, proto: Some(1), l4: L4::Any, remote: None }], &[any(false)]),
        );
        assert_eq!(verdicts(&t, w, 0, &frames[1..]), vec![OK, OK]);
        // The echo's connection expires 30 s after its last packet.
        assert_eq!(verdicts(&t, w, 29_000, &frames[2..]), vec![OK]);
        assert_eq!(verdicts(&t, w, 60_000, &frames[2..]), vec![Reason::SgInvalid]);
    }

    #[test]
    fn removing_a_rule_closes_what_it_allowed() {
        let t = web();
        let w = &mut WorkerState::new(1);
        let syn = (0, tcp4(VM1, VM2, IP1, IP2, 40000, 80, SYN));
        let synack = (1, tcp4(VM2, VM1, IP2, IP1, 80, 40000, SYN | ACK));
        let ack = (0, tcp4(VM1, VM2, IP1, IP2, 40000, 80, ACK));
        let back = (1, tcp4(VM2, VM1, IP2, IP1, 80, 40000, ACK));
        assert_eq!(verdicts(&t, w, 0, &[syn, synack, ack.clone(), back.clone()]), vec![OK; 4]);
        // Another rule added: the connection stays.
        let udp = Rule { v6: false, proto: Some(17), l4: L4::Any, remote: None };
        let more = tables(sg(true, &[], &[any(false)]), sg(true, &[tcp(80), udp], &[any(false)]));
        assert_eq!(verdicts(&more, w, 10, &[ack.clone(), back.clone()]), vec![OK, OK]);
        // TCP 80 gone: the next packet either way ends it, and it stays ended (not picked up again, in
        // either direction), until a new connection the rules allow.
        let fewer = tables(sg(true, &[], &[any(false)]), sg(true, &[], &[any(false)]));
        assert_eq!(verdicts(&fewer, w, 20, std::slice::from_ref(&back)), vec![Reason::SgRevoked]);
        assert_eq!(verdicts(&fewer, w, 20, &[ack.clone(), back.clone()]), vec![Reason::SgRevoked, Reason::SgRevoked]);
        assert_eq!(w.conntrack.stats.revoked, 1);
        assert_eq!(
            verdicts(&fewer, w, 200_000, std::slice::from_ref(&ack)),
            vec![Reason::SgIngressDenied],
            "expired: denied anew"
        );
        let syn2 = (0, tcp4(VM1, VM2, IP1, IP2, 40000, 80, SYN));
        assert_eq!(verdicts(&web(), w, 200_010, &[syn2, ack]), vec![OK, Reason::SgInvalid], "reopened by rule");
    }

    #[test]
    fn icmp_errors_about_a_connection_are_related() {
        let t = web();
        let w = &mut WorkerState::new(1);
        let query = udp4_ports(VM1, VM2, IP1, IP2, 5555, 53);
        // VM2 answers with "port unreachable", quoting the query's IP header and 8 bytes.
        let quoted = &query[14..14 + 28];
        let mut icmp = vec![3, 3, 0, 0, 0, 0, 0, 0];
        icmp.extend_from_slice(quoted);
        let error = ethernet(VM2, VM1, 0x0800, &ipv4(IP2, IP1, crate::wire::IpProtocol::Icmp, 64, &icmp));
        assert_eq!(verdicts(&t, w, 0, &[(1, error.clone())]), vec![Reason::SgIngressDenied], "about nothing");
        assert_eq!(verdicts(&t, w, 0, &[(0, query), (1, error)]), vec![OK, OK]);
    }

    #[test]
    fn stateless_groups_check_every_packet() {
        let t = tables(sg(true, &[], &[any(false)]), sg(false, &[tcp(80)], &[]));
        let w = &mut WorkerState::new(1);
        let frames =
            [(0, tcp4(VM1, VM2, IP1, IP2, 40000, 80, SYN)), (1, tcp4(VM2, VM1, IP2, IP1, 80, 40000, SYN | ACK))];
        assert_eq!(verdicts(&t, w, 0, &frames), vec![OK, Reason::SgEgressDenied]);
        // Not even a mid-stream segment is invalid: nothing is tracked.
        let t = tables(None, sg(false, &[tcp(80)], &[]));
        assert_eq!(verdicts(&t, w, 0, &[(0, tcp4(VM1, VM2, IP1, IP2, 1, 80, ACK))]), vec![OK]);
    }

    #[test]
    fn dhcp_and_neighbor_discovery_need_no_rule() {
        // (VM2 unfiltered: only VM1's egress is in question.)
        let t = tables(sg(true, &[], &[]), None);
        let w = &mut WorkerState::new(1);
        let frames = [
            (0, udp4_ports(VM1, VM2, IP1, IP2, 68, 67)),
            (0, neighbor_solicit(VM1, ip6(1), ip6(2))),
            (0, udp4(VM1, VM2, IP1, IP2)),
            (0, udp6(VM1, VM2, ip6(1), ip6(2))),
        ];
        assert_eq!(verdicts(&t, w, 0, &frames)[2..], [Reason::SgEgressDenied, Reason::SgEgressDenied]);
        assert_eq!(verdicts(&t, w, 0, &frames)[..2], [OK, OK]);
    }

    #[test]
    fn ipv6_connections_are_tracked_too() {
        let t = tables(
            sg(true, &[], &[any(true)]),
            sg(
                true,
                &[Rule { v6: true, proto: Some(6), l4: L4::Ports(80, 80), remote: Some(vec![IpNet::host_v6(ip6(1))]) }],
                &[any(true)],
            ),
        );
        let w = &mut WorkerState::new(1);
        let frames = [
            (0, tcp6(VM1, VM2, ip6(1), ip6(2), 40000, 80, SYN)),
            (1, tcp6(VM2, VM1, ip6(2), ip6(1), 80, 40000, SYN | ACK)),
            (0, echo6(VM1, VM2, ip6(1), ip6(2), true, 1)),
            (1, echo6(VM2, VM1, ip6(2), ip6(1), true, 1)),
        ];
        assert_eq!(verdicts(&t, w, 0, &frames), vec![OK, OK, Reason::SgIngressDenied, Reason::SgIngressDenied]);
    }

    #[test]
    fn a_full_table_refuses_new_connections_only() {
        let t = web();
        let w = &mut WorkerState::with_conntrack(1, 8);
        let syn = |sp| (0, tcp4(VM1, VM2, IP1, IP2, sp, 80, SYN));
        let synack = |sp| (1, tcp4(VM2, VM1, IP2, IP1, 80, sp, SYN | ACK));
        // Each connection takes an entry in both ports' zones: four answered connections fill eight entries.
        for sp in 1000..1004 {
            assert_eq!(verdicts(&t, w, 0, &[syn(sp), synack(sp)]), vec![OK, OK]);
        }
        assert_eq!(verdicts(&t, w, 0, &[syn(2000), syn(2001)]), vec![Reason::ConntrackFull; 2]);
        let ack = (0, tcp4(VM1, VM2, IP1, IP2, 1000, 80, ACK));
        assert_eq!(verdicts(&t, w, 0, &[ack]), vec![OK], "the old still flow");
        // An unanswered connection is taken out for a new one (Linux's early drop).
        let w = &mut WorkerState::with_conntrack(1, 8);
        assert_eq!(verdicts(&t, w, 0, &(0..6).map(|i| syn(1000 + i)).collect::<Vec<_>>()), vec![OK; 6]);
        assert!(w.conntrack.stats.evicted >= 4);
    }

    #[test]
    fn later_fragments_follow_their_first() {
        let t = web();
        let w = &mut WorkerState::new(1);
        let frag = |id: u16, offset: u16, more: bool| {
            let mut f = udp4_ports(VM1, VM2, IP1, IP2, 5555, 53);
            f[18..20].copy_from_slice(&id.to_be_bytes());
            f[20..22].copy_from_slice(&(offset | if more { 0x2000 } else { 0 }).to_be_bytes());
            (0, f)
        };
        let mut other_protocol = frag(1, 10, false);
        other_protocol.1[23] = 132; // SCTP: same addresses and identification, another protocol
        let frames = [frag(1, 0, true), frag(1, 10, false), frag(2, 10, false), other_protocol];
        assert_eq!(verdicts(&t, w, 0, &frames), vec![OK, OK, Reason::SgFragment, Reason::SgFragment]);
        assert_eq!(verdicts(&t, w, 3000, &frames[1..2]), vec![Reason::SgFragment], "its permit lasts 2 s");
    }

    #[test]
    fn floods_reach_only_the_ports_whose_groups_take_them() {
        let mut t = web();
        let vm3 = Mac([0xfa, 0x16, 0x3e, 0, 0, 3]);
        let mut b = TablesBuilder::from_tables(t.clone());
        b.local_port(2, vm_port(103, 1, vm3, Ipv4Addr::new(10, 0, 0, 3), ip6(3), true));
        t = b.build();
        let w = &mut WorkerState::new(1);
        let bcast = |dport| udp4_ports(VM1, Mac::BROADCAST, IP1, Ipv4Addr::new(10, 0, 0, 255), 5555, dport);
        let fates = |f: Vec<u8>, w: &mut WorkerState| {
            let mut p = [crate::buf::HeapBuf::new(&f)];
            let mut m = [Meta::new(0)];
            let d = crate::stages::decide(&t, w, &mut p, &mut m);
            d.fates(&t).map(|f| format!("{f:?}")).collect::<Vec<_>>()
        };
        // VM2 takes UDP 53 only; VM3 has no group.
        assert_eq!(fates(bcast(53), w), ["Flood([1, 2])"]);
        assert_eq!(fates(bcast(5001), w), ["Flood([2])"]);
        // Without VM3, nobody takes it: dropped.
        let w = &mut WorkerState::new(1);
        assert_eq!(verdicts(&web(), w, 0, &[(0, bcast(5001)), (0, bcast(53))]), vec![Reason::SgIngressDenied, OK]);
    }

    #[test]
    fn ports_without_groups_are_not_filtered() {
        let t = tables(None, None);
        let w = &mut WorkerState::new(1);
        assert_eq!(verdicts(&t, w, 0, &[(0, tcp4(VM1, VM2, IP1, IP2, 1, 2, ACK))]), vec![OK]);
        assert_eq!(w.conntrack.live(), 0);
        let _ = (Ipv4Addr::UNSPECIFIED, Mac::ZERO);
    }
}
