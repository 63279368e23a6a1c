//! The stages, one file each with its drop reasons, its per-packet `packet` and a burst-level `run` (its
//! tests use it). Their order is written once, top to bottom, in the body of `packet` below (the first
//! function a reader of the pipeline should read); [`decide`] chains them in one pass over a burst, and
//! the burst fast path (`burst.rs`) repeats, for the packets that share the first one's header, what
//! that order decided for it.
//!
//! Every stage but the first and the last looks at a packet only while its `Meta::action` is still
//! `Continue`, and only at the kinds it handles (ARP, ICMPv6, unicast to a router's MAC): that test is
//! the first line of its `packet`. `classify` starts every packet from a VM port (`tunnel_decap` every
//! one from the underlay port); `egress` checks the decided ones.
//! `l2_switch` decides every packet still pending, `egress` hands every packet for another node (`Remote`)
//! to `tunnel_encap`, which decides it, so the burst [`decide`] returns is a `fate::Decided`: each packet's `fate::Fate` (its port,
//! its reply port, its flood set, or its drop) is all the dataplane needs to carry it out. A frame that
//! comes in by the underlay port takes another way: `tunnel_decap` instead of `classify` and the stages
//! after it, then `l2_switch` and `egress` (the sending node did the rest).
//!
//! `punt`, after the ARP/ND responders, hands DHCP requests and router solicitations to the slow path
//! (`services`), which answers them off the workers. `security_groups` checks what a port sends against
//! its egress rules after that, and, called from `egress`, what a local port receives against its ingress
//! rules. `nat` is a router's gateway on its external network: `l3_route` hands it what it routes out of
//! that network, and what comes in by an uplink meets it before `l2_switch`. Stages still to come slot in
//! by adding a file and a line in `packet`.
//!
//! Stages read the tables (an immutable snapshot) and write packets and their `Meta`; what a worker must
//! remember from one burst to the next (so far, how many ICMP errors it sent), and the scratch space of
//! a burst's batched route lookups ([`Ahead`]), and its tracked connections, are its [`WorkerState`], passed to [`decide`] by the
//! worker that owns it, with the time of the burst.

pub mod arp_responder;
mod burst;
pub mod classify;
pub mod egress;
pub mod l2_switch;
pub mod l3_route;
pub mod nat;
pub mod nd_responder;
pub mod port_security;
pub mod provider;
pub mod punt;
pub mod security_groups;
pub mod tunnel_decap;
pub mod tunnel_encap;

use crate::buf::PacketBuf;
use crate::conntrack::Conntrack;
use crate::drop::DropCounters;
use crate::fate::Decided;
use crate::icmp_ratelimit::IcmpLimiter;
use crate::meta::{Action, Meta};
use crate::nat::Nat;
use crate::routing::{HopId, Router};
use crate::tables::{PortEntry, Tables};
use crate::wire::{IpNet, Mac};

/// The mutable state of one worker's pipeline, kept from burst to burst: the time of the burst, the
/// ICMP error limits and the punt limits.
///
/// Thread-safety: one per worker, owned by it and passed by `&mut` to [`decide`]; never shared, so
/// plain fields (no atomics, no locks). Allocated once, when the worker starts.
#[derive(Debug, Clone)]
pub struct WorkerState {
    /// The worker's clock, in milliseconds from any fixed origin, never going back: the worker sets it
    /// before each burst (one clock read per burst, none per packet).
    pub now_ms: u64,
    /// How many ICMP errors the router may still send (`l3_route`).
    pub icmp: IcmpLimiter,
    /// The current burst's route lookups, made ahead ([`routes_ahead`]).
    pub ahead: Ahead,
    /// How many requests each port may still punt to the slow path (`punt`).
    pub punt: punt::PuntLimiter,
    /// The connections its ports' security groups track (`security_groups`).
    pub conntrack: Conntrack,
    /// The connections its routers translated (`nat`).
    pub nat: Nat,
}

impl WorkerState {
    /// A worker's state at time 0; `seed` starts its randomness (a worker seeds it from its clock; tests
    /// and goldens with a constant, to be repeatable).
    pub fn new(seed: u32) -> WorkerState {
        WorkerState::with_conntrack(seed, 4096)
    }

    /// As [`WorkerState::new`], with room for `connections` tracked connections (and as many translated).
    pub fn with_conntrack(seed: u32, connections: usize) -> WorkerState {
        WorkerState::with_limits(seed, connections, connections)
    }

    /// As [`WorkerState::new`], with room for `connections` tracked connections and `translations`
    /// translated ones (`nat`).
    pub fn with_limits(seed: u32, connections: usize, translations: usize) -> WorkerState {
        WorkerState {
            now_ms: 0,
            icmp: IcmpLimiter::new(seed),
            ahead: Ahead::default(),
            punt: Default::default(),
            conntrack: Conntrack::new(connections, u64::from(seed).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1),
            nat: Nat::new(translations, crate::nat::port_range(0, 1), seed),
        }
    }
}

/// Lookups that consecutive packets of a burst share (a burst comes from one port and mostly goes to
/// one destination), and which packets' routes were looked up ahead in one batch: remembered for the
/// length of one burst, never across table versions.
#[derive(Default)]
pub struct BurstMemo<'t> {
    port: Option<(u16, Option<&'t PortEntry>)>,
    l2: Option<(u32, Mac, Option<u16>)>,
    router: Option<(u32, Mac, Option<KeyedRouter<'t>>)>,
    neighbor: Option<(u32, IpNet, Option<Neighbor>)>,
    /// The packets of the burst whose route [`routes_ahead`] looked up (bit `i`: packet `i`; the
    /// answers are in the worker's [`Ahead`]).
    ahead: u64,
    /// The packet of the burst being decided (its index).
    at: usize,
}

/// How many tracked connections a burst's sweep visits for expiry (`Conntrack::sweep`).
const SWEEP: usize = 8;

/// How many packets of a burst [`routes_ahead`] looks up at once.
pub const BURST_AHEAD: usize = 32;

/// The route lookups [`routes_ahead`] made for a burst: per packet, its router's key and destination and
/// the trie's answer. Kept in the worker's state (written for the packets looked up, never cleared:
/// [`BurstMemo`] says which entries belong to the current burst).
#[derive(Debug, Clone)]
pub struct Ahead {
    v4: [(u32, [u8; 4], HopId); BURST_AHEAD],
    v6: [(u32, [u8; 16], HopId); BURST_AHEAD],
}

impl Default for Ahead {
    fn default() -> Self {
        Ahead { v4: [(0, [0; 4], 0); BURST_AHEAD], v6: [(0, [0; 16], 0); BURST_AHEAD] }
    }
}

/// A router and its key.
pub type KeyedRouter<'t> = (u32, &'t Router);
/// A next hop's MAC and local port.
pub type Neighbor = (Mac, u16);

impl<'t> BurstMemo<'t> {
    /// The trie's answer [`routes_ahead`] found for the current packet, if it looked up this very
    /// router and IPv4 destination.
    #[inline(always)]
    pub fn ahead_v4(&self, w: &WorkerState, router: u32, dst: [u8; 4]) -> Option<HopId> {
        if self.ahead >> self.at.min(63) & 1 == 0 {
            return None;
        }
        let (k, d, id) = *w.ahead.v4.get(self.at)?;
        (k == router && d == dst).then_some(id)
    }

    /// As [`BurstMemo::ahead_v4`] for IPv6.
    #[inline(always)]
    pub fn ahead_v6(&self, w: &WorkerState, router: u32, dst: [u8; 16]) -> Option<HopId> {
        if self.ahead >> self.at.min(63) & 1 == 0 {
            return None;
        }
        let (k, d, id) = *w.ahead.v6.get(self.at)?;
        (k == router && d == dst).then_some(id)
    }

    #[inline(always)]
    pub fn port(&mut self, t: &'t Tables, index: u16) -> Option<&'t PortEntry> {
        match self.port {
            Some((i, e)) if i == index => e,
            _ => {
                let e = t.port(index);
                self.port = Some((index, e));
                e
            }
        }
    }

    /// The router whose interface on `network` has MAC `dst`, if any.
    #[inline(always)]
    pub fn router(&mut self, t: &'t Tables, network: u32, dst: Mac) -> Option<KeyedRouter<'t>> {
        match self.router {
            Some((n, d, found)) if n == network && d == dst => found,
            _ => {
                let found = t.router_for(network, dst).and_then(|k| t.routers.get(&k).map(|r| (k, r)));
                self.router = Some((network, dst, found));
                found
            }
        }
    }

    /// The MAC and local port of the neighbour `ip` on `network` (from the ARP/ND and L2 tables); a
    /// neighbour on another node is `l3_route`'s own, slower, lookup.
    #[inline(always)]
    pub fn neighbor(&mut self, t: &Tables, network: u32, ip: IpNet) -> Option<Neighbor> {
        match self.neighbor {
            Some((n, i, found)) if n == network && i == ip => found,
            _ => {
                let mac = match ip {
                    IpNet::V4(a, _) => t.arp_lookup(network, a),
                    IpNet::V6(a, _) => t.nd_lookup(network, a),
                };
                let found = mac.and_then(|m| t.l2_lookup(network, m).map(|port| (m, port)));
                self.neighbor = Some((network, ip, found));
                found
            }
        }
    }

    #[inline(always)]
    pub fn l2(&mut self, t: &Tables, network: u32, dst: Mac) -> Option<u16> {
        match self.l2 {
            Some((n, d, found)) if n == network && d == dst => found,
            _ => {
                let found = t.l2_lookup(network, dst);
                self.l2 = Some((network, dst, found));
                found
            }
        }
    }
}

/// Runs the whole pipeline over a burst: `pkts[i]` came in on port `p` and `meta[i]` is `Meta::new(p)`;
/// returns the burst decided, whose [`Decided::fates`] say where each packet goes. The caller counts the
/// drops and has set `w.now_ms` to the time of the burst.
/// One pass over the burst: packets with the Ethernet header of the first plain IPv4 packet take the
/// burst fast path (`burst.rs`), the others go through the stages in order (see [`decide_per_packet`]).
#[inline]
pub fn decide<'m, B: PacketBuf>(t: &Tables, w: &mut WorkerState, pkts: &mut [B], meta: &'m mut [Meta]) -> Decided<'m> {
    debug_assert_eq!(pkts.len(), meta.len());
    debug_assert!(meta.iter().all(Meta::pending), "fresh metadata (Meta::new)");
    let mut memo = BurstMemo::default();
    w.conntrack.sweep(w.now_ms, SWEEP);
    w.nat.sweep(w.now_ms, SWEEP);
    if t.tracking && w.conntrack.is_large() {
        security_groups::ahead(t, &mut memo, w, pkts, meta);
    }
    if t.large_routers {
        routes_ahead(t, &mut memo, &mut w.ahead, pkts, meta);
    }
    let mut template: Option<burst::Template<'_>> = None;
    for (i, (p, m)) in pkts.iter_mut().zip(meta.iter_mut()).enumerate() {
        memo.at = i;
        if let Some(tpl) = &template {
            if tpl.packet(t, &mut memo, w, p, m) {
                continue;
            }
        }
        if template.is_none() {
            let header = burst::Template::header(p);
            packet(t, &mut memo, w, p, m);
            template = header.and_then(|h| burst::Template::of(t, &mut memo, h, m));
        } else {
            packet(t, &mut memo, w, p, m);
        }
    }
    Decided::new(meta)
}

/// Looks up, before any packet of the burst is decided, the route of every packet sent to a large
/// router's MAC (IPv4 or IPv6, untagged), in one batch per family ([`Router::hops_v4`]): one packet at a
/// time, a table that outgrows the caches costs its misses one after the other; in a batch they
/// overlap. [`decide`] calls it only when the tables hold a large router ([`Router::is_large`]), and it
/// batches the packets of the first large router it meets (a burst mostly goes to one; the others look
/// up as they are routed). Only the lookups: `l3_route` still decides each packet, and takes the answer
/// found here when it routes that packet with that router to that destination
/// ([`BurstMemo::ahead_v4`]); a packet the stages before it drop or answer wastes its lookup, nothing
/// else.
fn routes_ahead<'t, B: PacketBuf>(
    t: &'t Tables,
    memo: &mut BurstMemo<'t>,
    ahead: &mut Ahead,
    pkts: &[B],
    meta: &[Meta],
) {
    use crate::wire::ethernet::EtherType;
    let mut batch: Option<(u32, &'t Router)> = None;
    let (mut v4, mut v6) = ([0u8; BURST_AHEAD], [0u8; BURST_AHEAD]);
    let (mut n4, mut n6) = (0, 0);
    for i in 0..pkts.len().min(BURST_AHEAD) {
        let d = pkts[i].data();
        let kind = if d.len() >= 14 { EtherType::from(u16::from_be_bytes([d[12], d[13]])) } else { continue };
        if !matches!((kind, d.len()), (EtherType::Ipv4, 34..) | (EtherType::Ipv6, 54..)) {
            continue;
        }
        let Some(port) = memo.port(t, meta[i].in_port) else { continue };
        let dst = Mac(d[0..6].try_into().expect("length checked"));
        let Some((key, r)) = memo.router(t, port.network, dst) else { continue };
        match batch {
            None if r.is_large() => batch = Some((key, r)),
            Some((k, _)) if k == key => {}
            _ => continue,
        }
        if kind == EtherType::Ipv4 {
            ahead.v4[i] = (key, d[30..34].try_into().expect("length checked"), 0);
            v4[n4] = i as u8;
            n4 += 1;
        } else {
            ahead.v6[i] = (key, d[38..54].try_into().expect("length checked"), 0);
            v6[n6] = i as u8;
            n6 += 1;
        }
    }
    let Some((_, r)) = batch else { return };
    memo.ahead |= look_up(&v4[..n4], &mut ahead.v4, |a, ids| r.hops_v4(a, ids));
    memo.ahead |= look_up(&v6[..n6], &mut ahead.v6, |a, ids| r.hops_v6(a, ids));
}

/// Looks up the destinations of the packets `at` (indexes into `entries`, one family's) in one batch,
/// writes each answer in its entry; returns the packets' bits.
fn look_up<const N: usize>(
    at: &[u8],
    entries: &mut [(u32, [u8; N], HopId); BURST_AHEAD],
    batch: impl FnOnce(&[[u8; N]], &mut [HopId]),
) -> u64 {
    if at.is_empty() {
        return 0;
    }
    let mut addrs = [[0u8; N]; BURST_AHEAD];
    let mut ids = [0 as HopId; BURST_AHEAD];
    for (a, &i) in addrs.iter_mut().zip(at) {
        *a = entries[i as usize].1;
    }
    batch(&addrs[..at.len()], &mut ids[..at.len()]);
    let mut bits = 0;
    for (&id, &i) in ids.iter().zip(at) {
        entries[i as usize].2 = id;
        bits |= 1 << i;
    }
    bits
}

/// [`decide`] without the burst fast path: every packet through every stage. The reference the fast
/// path is tested against.
pub fn decide_per_packet<'m, B: PacketBuf>(
    t: &Tables,
    w: &mut WorkerState,
    pkts: &mut [B],
    meta: &'m mut [Meta],
) -> Decided<'m> {
    debug_assert!(meta.iter().all(Meta::pending), "fresh metadata (Meta::new)");
    let mut memo = BurstMemo::default();
    w.conntrack.sweep(w.now_ms, SWEEP);
    w.nat.sweep(w.now_ms, SWEEP);
    for (p, m) in pkts.iter_mut().zip(meta.iter_mut()) {
        packet(t, &mut memo, w, p, m);
    }
    Decided::new(meta)
}

/// One packet through the stages: the pipeline's order, top to bottom. A packet `classify` drops goes
/// no further (`egress` has nothing to check on a drop); each later stage looks at it only while it is
/// pending, and `egress` at the decided ones.
#[inline(always)]
fn packet<'t, B: PacketBuf>(t: &'t Tables, memo: &mut BurstMemo<'t>, w: &mut WorkerState, p: &mut B, m: &mut Meta) {
    if let Some(u) = t.underlay.as_ref().filter(|u| u.port == m.in_port) {
        // From another node: decapsulated, then only switched to this node's ports (or, sent to a router
        // whose gateway this node serves, routed out of it).
        tunnel_decap::packet(t, u, p, m);
        nat::from_tunnel(t, memo, w, p, m);
        l2_switch::packet(t, memo, p, m);
        egress::packet(t, w, p, m);
        return;
    }
    if t.is_uplink(m.in_port) {
        // From a physical network: into its provider network; to a router's gateway there, translated
        // and routed; else only switched to this node's ports.
        provider::ingress(t, p, m);
        nat::from_uplink(t, memo, w, p, m);
        l2_switch::packet(t, memo, p, m);
        egress::packet(t, w, p, m);
        return;
    }
    classify::packet(t, memo, p, m);
    if !m.pending() {
        return;
    }
    port_security::packet(t, memo, p, m);
    arp_responder::packet(t, p, m);
    nd_responder::packet(t, p, m);
    punt::packet(t, w, p, m);
    security_groups::from_port(t, memo, w, p, m);
    l3_route::packet(t, memo, w, p, m);
    l2_switch::packet(t, memo, p, m);
    egress::packet(t, w, p, m);
    debug_assert!(!matches!(m.action, Action::Continue | Action::Remote), "see fate::Decided");
}

/// [`decide`], counting the drops in `drops`.
pub fn run<'m, B: PacketBuf>(
    t: &Tables,
    w: &mut WorkerState,
    pkts: &mut [B],
    meta: &'m mut [Meta],
    drops: &mut DropCounters,
) -> Decided<'m> {
    let decided = decide(t, w, pkts, meta);
    for m in decided.meta() {
        if m.action == Action::Drop {
            drops.count(m.reason);
        }
    }
    decided
}
