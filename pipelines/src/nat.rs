//! NAT on a router's external network (Neutron's `ext-gw-mode`: `enable_snat`, and floating IPs): what the
//! tables hold of it ([`RouterNat`], [`Outside`]), the neighbours of the external network learned by ARP
//! ([`Learned`]), and one worker's table of translated connections ([`Nat`]). `stages/nat.rs` decides;
//! this file only remembers.
//!
//! SNAT is endpoint-dependent (Linux's and OVS's `ct(nat)`): a connection from `(inside, iport)` to
//! `(remote, rport)` leaves from the router's gateway address and a port of the worker's range, kept if
//! it is free (port preservation), else another; a reply from `(remote, rport)` to that address and port
//! finds it. ICMP echo is translated by its identifier. Each worker owns a range of ports
//! ([`port_range`]), so that the reply of a connection, which comes in from outside and carries only the
//! translated address, is steered to the worker that made it by its port alone ([`port_owner`]).
//!
//! A floating IP is 1:1 and stateless: a fixed address's packets leave from its floating IP, and what
//! comes to the floating IP goes to the fixed address, whatever the ports.

use core::sync::atomic::{AtomicU64, Ordering};

use rustc_hash::FxHashMap;

use crate::wire::{Ipv4Addr, Mac};

/// A router's NAT on its external network.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RouterNat {
    /// The external network's key.
    pub network: u32,
    /// The gateway address connections are translated to (`enable_snat`), if SNAT is on.
    pub snat: Option<Ipv4Addr>,
    /// Fixed address → floating IP, sorted by fixed address.
    pub fips: Vec<(Ipv4Addr, Ipv4Addr)>,
    /// The chassis (its key) that serves the gateway, when it is not this node: what is routed out goes
    /// there, as it is, in a tunnel of its network (OVN's chassis-redirect port); `None`: served here.
    pub redirect: Option<u32>,
}

impl RouterNat {
    /// Whether this node serves the gateway (translates, answers for its addresses outside).
    #[inline]
    pub fn is_local(&self) -> bool {
        self.redirect.is_none()
    }

    /// The floating IP of fixed address `a`.
    #[inline]
    pub fn fip_of(&self, a: Ipv4Addr) -> Option<Ipv4Addr> {
        if self.fips.is_empty() {
            return None;
        }
        self.fips.binary_search_by_key(&a, |f| f.0).ok().map(|i| self.fips[i].1)
    }
}

/// What an address of an external network is to the router that owns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outside {
    /// Its SNAT address: replies of translated connections come to it.
    Snat,
    /// A floating IP, of this fixed address.
    Fip(Ipv4Addr),
}

/// The first port SNAT gives (below it: the well-known and registered low ports).
pub const FIRST_PORT: u16 = 1024;

/// The ports worker `i` of `n` gives, `lo..=hi`: equal shares of `FIRST_PORT..=65535`.
pub fn port_range(i: usize, n: usize) -> (u16, u16) {
    let n = n.max(1) as u32;
    let span = (65536 - u32::from(FIRST_PORT)) / n;
    let lo = u32::from(FIRST_PORT) + span * (i as u32).min(n - 1);
    let hi = if i as u32 + 1 >= n { 65535 } else { lo + span - 1 };
    (lo as u16, hi as u16)
}

/// The worker, of `n`, whose range holds `port` (a port below [`FIRST_PORT`]: the first).
pub fn port_owner(port: u16, n: usize) -> usize {
    let n = n.max(1) as u32;
    let span = (65536 - u32::from(FIRST_PORT)) / n;
    (u32::from(port.saturating_sub(FIRST_PORT)) / span).min(n - 1) as usize
}

/// The MACs of the external networks' hosts (the routers' next hops there), learned by ARP in the
/// dataplane, as [`crate::tunnel::NextHops`] are on the underlay: a packet routed to a next hop whose MAC
/// is not known becomes an ARP request for it (at most one a second per address over every worker,
/// [`Learned::try_ask`]), and the ARP reply to a router's MAC teaches it; so does a request for a router's
/// address, and a gratuitous ARP updates an address already known (as Linux's `arp_accept=0`). Not
/// forgotten: a host whose MAC changes without telling (no gratuitous ARP) is unreachable until it sends
/// ARP to a router address.
///
/// Shared by every worker and every tables version (the builder carries it over): a fixed array of slots,
/// open addressing over [`PROBE`] slots, no allocation after it is made; a slot is claimed with a
/// compare-and-swap and never freed, and when a probe window is full its first slot is taken over (the
/// address it held is asked for again when next used).
#[derive(Debug)]
pub struct Learned {
    slots: Box<[Slot]>,
}

#[derive(Debug)]
struct Slot {
    /// `(network << 32) | address`, [`EMPTY`] or [`BUSY`] (being written).
    key: AtomicU64,
    /// The MAC with [`KNOWN`] set, or 0.
    mac: AtomicU64,
    /// When it was last asked for, of [`crate::tunnel::now_ms`].
    asked: AtomicU64,
}

const EMPTY: u64 = u64::MAX;
const BUSY: u64 = u64::MAX - 1;
const KNOWN: u64 = 1 << 63;
/// How many slots a lookup visits.
pub const PROBE: usize = 8;
/// How many addresses the table holds.
pub const LEARNED_SLOTS: usize = 1024;
/// At most one ARP request a second per address.
const ASK_EVERY_MS: u64 = 1000;

impl Default for Learned {
    fn default() -> Self {
        let slots = (0..LEARNED_SLOTS).map(|_| Slot {
            key: AtomicU64::new(EMPTY),
            mac: AtomicU64::new(0),
            asked: AtomicU64::new(0),
        });
        Learned { slots: slots.collect() }
    }
}

impl Learned {
    fn key(network: u32, ip: Ipv4Addr) -> u64 {
        (u64::from(network) << 32) | u64::from(ip.to_u32())
    }

    fn home(key: u64) -> usize {
        (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40) as usize % LEARNED_SLOTS
    }

    fn find(&self, key: u64) -> Option<&Slot> {
        let home = Self::home(key);
        (0..PROBE).map(|i| &self.slots[(home + i) % LEARNED_SLOTS]).find(|s| s.key.load(Ordering::Acquire) == key)
    }

    /// The slot of `key`, claimed if it has none.
    fn claim(&self, key: u64) -> &Slot {
        let home = Self::home(key);
        for i in 0..PROBE {
            let s = &self.slots[(home + i) % LEARNED_SLOTS];
            match s.key.load(Ordering::Acquire) {
                k if k == key => return s,
                EMPTY if s.key.compare_exchange(EMPTY, BUSY, Ordering::AcqRel, Ordering::Acquire).is_ok() => {
                    s.mac.store(0, Ordering::Relaxed);
                    s.asked.store(0, Ordering::Relaxed);
                    s.key.store(key, Ordering::Release);
                    return s;
                }
                _ => {}
            }
        }
        // The window is full: its first slot is taken over.
        let s = &self.slots[home];
        let old = s.key.swap(BUSY, Ordering::AcqRel);
        if old == BUSY {
            // Another worker is writing it; this one's answer is dropped (asked again later).
            return s;
        }
        s.mac.store(0, Ordering::Relaxed);
        s.asked.store(0, Ordering::Relaxed);
        s.key.store(key, Ordering::Release);
        s
    }

    /// The MAC of `ip` on `network`, if learned.
    #[inline]
    pub fn get(&self, network: u32, ip: Ipv4Addr) -> Option<Mac> {
        let key = Self::key(network, ip);
        let s = self.find(key)?;
        let w = s.mac.load(Ordering::Acquire);
        (w & KNOWN != 0 && s.key.load(Ordering::Acquire) == key).then(|| Mac::from_u64(w & !KNOWN))
    }

    /// ARP said `ip` on `network` has `mac` (a unicast MAC only); `only_known`: update an address already
    /// held, never add one (gratuitous ARP).
    pub fn learn(&self, network: u32, ip: Ipv4Addr, mac: Mac, only_known: bool) {
        if !mac.is_unicast() || ip.0 == [0; 4] {
            return;
        }
        let key = Self::key(network, ip);
        let s = match self.find(key) {
            Some(s) => s,
            None if only_known => return,
            None => self.claim(key),
        };
        let w = mac.to_u64() | KNOWN;
        if s.mac.load(Ordering::Relaxed) != w && s.key.load(Ordering::Acquire) == key {
            s.mac.store(w, Ordering::Release);
        }
    }

    /// Whether a worker may ask for `ip` on `network` now (`now`: of [`crate::tunnel::now_ms`]): the first
    /// caller in a second may.
    pub fn try_ask(&self, network: u32, ip: Ipv4Addr, now: u64) -> bool {
        let key = Self::key(network, ip);
        let s = self.find(key).unwrap_or_else(|| self.claim(key));
        let last = s.asked.load(Ordering::Relaxed);
        if last != 0 && now.saturating_sub(last) < ASK_EVERY_MS {
            return false;
        }
        s.asked.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    }

    /// The addresses learned, with their MACs, for the operator.
    pub fn entries(&self) -> Vec<(u32, Ipv4Addr, Mac)> {
        let mut v: Vec<(u32, Ipv4Addr, Mac)> = self
            .slots
            .iter()
            .filter_map(|s| {
                let k = s.key.load(Ordering::Acquire);
                let w = s.mac.load(Ordering::Acquire);
                (k < BUSY && w & KNOWN != 0)
                    .then(|| ((k >> 32) as u32, Ipv4Addr::from_u32(k as u32), Mac::from_u64(w & !KNOWN)))
            })
            .collect();
        v.sort();
        v
    }
}

/// A translated connection as it leaves: its router, protocol, inside end and remote end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct OutKey {
    router: u32,
    proto: u8,
    inside: Ipv4Addr,
    iport: u16,
    remote: Ipv4Addr,
    rport: u16,
}

/// A translated connection as its replies come: the external network, protocol, the router's address
/// and port, the remote end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct InKey {
    network: u32,
    proto: u8,
    outside: Ipv4Addr,
    oport: u16,
    remote: Ipv4Addr,
    rport: u16,
}

/// A key's fields hashed as two words (the derived `Hash` feeds each address as a length and its bytes:
/// eight rounds of the hasher instead of two); the protocol shares the first word's top byte with the
/// router's or network's key, which only costs a collision, never a wrong match (`Eq` compares fields).
fn hash_key<H: core::hash::Hasher>(h: &mut H, id: u32, proto: u8, a: Ipv4Addr, ap: u16, b: Ipv4Addr, bp: u16) {
    h.write_u64((u64::from(id) << 32 | u64::from(a.to_u32())) ^ u64::from(proto) << 56);
    h.write_u64(u64::from(b.to_u32()) << 32 | u64::from(ap) << 16 | u64::from(bp));
}

impl core::hash::Hash for OutKey {
    fn hash<H: core::hash::Hasher>(&self, h: &mut H) {
        hash_key(h, self.router, self.proto, self.inside, self.iport, self.remote, self.rport);
    }
}

impl core::hash::Hash for InKey {
    fn hash<H: core::hash::Hasher>(&self, h: &mut H) {
        hash_key(h, self.network, self.proto, self.outside, self.oport, self.remote, self.rport);
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    out: OutKey,
    inb: InKey,
    expires_ms: u64,
    /// A reply came (TCP: past the handshake).
    replied: bool,
    live: bool,
}

/// How long an idle translation lives: TCP established (a reply seen) 24 h, as OVS's `tcp_established`;
/// TCP closing (FIN) 2 min; TCP reset 10 s; anything before a reply, and UDP and ICMP, 30 s.
pub mod timeout {
    pub const OPENING_MS: u64 = 30_000;
    pub const TCP_ESTABLISHED_MS: u64 = 24 * 3600 * 1000;
    pub const TCP_CLOSING_MS: u64 = 120_000;
    pub const TCP_RESET_MS: u64 = 10_000;
    pub const DATAGRAM_MS: u64 = 30_000;
}

/// TCP flags NAT follows.
const FIN: u8 = 0x01;
const RST: u8 = 0x04;

/// The translations one worker made, what they cost it and why some failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NatStats {
    pub made: u64,
    pub expired: u64,
    /// Refused: every entry in use.
    pub full: u64,
    /// Refused: no free port found for the connection's remote end.
    pub no_port: u64,
}

/// One worker's translated connections, bounded (`capacity`, given once; nothing allocated after): an
/// entry array with a free list, found from either side through two maps made large enough at the start
/// that they never grow (a map rehashes in place while it is at most half full, and it is made for twice
/// the entries). Expired entries are gone for lookups at once and reclaimed by the sweep, a few per burst.
#[derive(Debug, Clone)]
pub struct Nat {
    entries: Vec<Entry>,
    free: Vec<u32>,
    out: FxHashMap<OutKey, u32>,
    inb: FxHashMap<InKey, u32>,
    /// This worker's ports, `lo..=hi` ([`port_range`]).
    ports: (u16, u16),
    sweep_at: usize,
    rng: u32,
    pub stats: NatStats,
}

/// What a translation gives for a packet going out: the port it leaves from.
pub type OutPort = u16;

impl Nat {
    /// Room for `capacity` translations, giving ports `ports` ([`port_range`]).
    pub fn new(capacity: usize, ports: (u16, u16), seed: u32) -> Nat {
        let capacity = capacity.clamp(1, u32::MAX as usize);
        let mut m = FxHashMap::default();
        m.reserve(2 * capacity);
        let mut n = FxHashMap::default();
        n.reserve(2 * capacity);
        Nat {
            entries: Vec::with_capacity(capacity),
            free: Vec::with_capacity(capacity),
            out: m,
            inb: n,
            ports,
            sweep_at: 0,
            rng: seed | 1,
            stats: NatStats::default(),
        }
    }

    /// The translations live (expired ones not swept yet included).
    pub fn live(&self) -> usize {
        self.out.len()
    }

    /// The ports this worker gives.
    pub fn ports(&self) -> (u16, u16) {
        self.ports
    }

    /// Gives ports `ports` from now on ([`port_range`]: the worker's share), before any translation.
    pub fn set_ports(&mut self, ports: (u16, u16)) {
        debug_assert!(self.out.is_empty(), "set before the first translation");
        self.ports = ports;
    }

    fn random(&mut self) -> u32 {
        // xorshift32
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.rng = x;
        x
    }

    fn timeout(proto: u8, replied: bool, tcp_flags: u8) -> u64 {
        match proto {
            6 if tcp_flags & RST != 0 => timeout::TCP_RESET_MS,
            6 if tcp_flags & FIN != 0 => timeout::TCP_CLOSING_MS,
            6 if replied => timeout::TCP_ESTABLISHED_MS,
            6 => timeout::OPENING_MS,
            _ => timeout::DATAGRAM_MS,
        }
    }

    /// A FIN or RST shortens the entry's life from then on; nothing lengthens it back.
    fn touch(e: &mut Entry, now_ms: u64, proto: u8, tcp_flags: u8) {
        let closing = proto == 6 && tcp_flags & (FIN | RST) != 0;
        let t = Self::timeout(proto, e.replied, tcp_flags);
        e.expires_ms = if closing { (now_ms + t).min(e.expires_ms) } else { now_ms + t };
    }

    /// The port connection `(inside, iport) → (remote, rport)` of protocol `proto` through router
    /// `router` leaves from, as address `outside` on external network `network`: its translation's, or a
    /// new one's (`iport` kept if this worker gives it and it is free for that remote end). `None`: no
    /// room or no free port (counted).
    #[allow(clippy::too_many_arguments)]
    pub fn outbound(
        &mut self,
        now_ms: u64,
        router: u32,
        network: u32,
        outside: Ipv4Addr,
        proto: u8,
        (inside, iport): (Ipv4Addr, u16),
        (remote, rport): (Ipv4Addr, u16),
        tcp_flags: u8,
    ) -> Option<OutPort> {
        let out = OutKey { router, proto, inside, iport, remote, rport };
        if let Some(&i) = self.out.get(&out) {
            let e = &mut self.entries[i as usize];
            if e.live && e.expires_ms > now_ms && e.inb.outside == outside && e.inb.network == network {
                Self::touch(e, now_ms, proto, tcp_flags);
                return Some(e.inb.oport);
            }
            // Expired, or the router's address changed: made again.
            self.remove(i);
        }
        if self.out.len() >= self.entries.capacity() && self.free.is_empty() {
            self.stats.full += 1;
            return None;
        }
        let (lo, hi) = self.ports;
        let span = u32::from(hi - lo) + 1;
        let mut inb = InKey { network, proto, outside, oport: iport, remote, rport };
        let mut found = false;
        for attempt in 0..16 {
            if attempt > 0 || !(lo..=hi).contains(&iport) {
                inb.oport = lo + (self.random() % span) as u16;
            }
            match self.inb.get(&inb) {
                None => {
                    found = true;
                    break;
                }
                Some(&j) if self.entries[j as usize].expires_ms <= now_ms => {
                    self.remove(j);
                    found = true;
                    break;
                }
                Some(_) => {}
            }
        }
        if !found {
            self.stats.no_port += 1;
            return None;
        }
        let e =
            Entry { out, inb, expires_ms: now_ms + Self::timeout(proto, false, tcp_flags), replied: false, live: true };
        let i = match self.free.pop() {
            Some(i) => {
                self.entries[i as usize] = e;
                i
            }
            None => {
                self.entries.push(e);
                (self.entries.len() - 1) as u32
            }
        };
        self.out.insert(out, i);
        self.inb.insert(inb, i);
        self.stats.made += 1;
        Some(inb.oport)
    }

    /// The inside end of the translation a packet `(remote, rport) → (outside, oport)` of `proto` on
    /// external network `network` is a reply of, if one is live.
    #[allow(clippy::too_many_arguments)]
    pub fn inbound(
        &mut self,
        now_ms: u64,
        network: u32,
        proto: u8,
        (outside, oport): (Ipv4Addr, u16),
        (remote, rport): (Ipv4Addr, u16),
        tcp_flags: u8,
    ) -> Option<(Ipv4Addr, u16)> {
        let i = self.live_in(now_ms, InKey { network, proto, outside, oport, remote, rport })?;
        let e = &mut self.entries[i as usize];
        e.replied = true;
        Self::touch(e, now_ms, proto, tcp_flags);
        Some((e.out.inside, e.out.iport))
    }

    /// [`Nat::inbound`]'s inside end, the translation left as it is: for an ICMP error about the
    /// connection, which neither answers nor keeps it.
    pub fn find_inbound(
        &self,
        now_ms: u64,
        network: u32,
        proto: u8,
        (outside, oport): (Ipv4Addr, u16),
        (remote, rport): (Ipv4Addr, u16),
    ) -> Option<(Ipv4Addr, u16)> {
        let i = self.live_in(now_ms, InKey { network, proto, outside, oport, remote, rport })?;
        let e = &self.entries[i as usize];
        Some((e.out.inside, e.out.iport))
    }

    /// The address and port of the live translation of connection `(inside, iport) → (remote, rport)`
    /// through router `router`, if there is one (nothing made, nothing touched: for an ICMP error from
    /// inside about it).
    pub fn find_outbound(
        &self,
        now_ms: u64,
        router: u32,
        proto: u8,
        (inside, iport): (Ipv4Addr, u16),
        (remote, rport): (Ipv4Addr, u16),
    ) -> Option<(Ipv4Addr, u16)> {
        let i = *self.out.get(&OutKey { router, proto, inside, iport, remote, rport })?;
        let e = &self.entries[i as usize];
        (e.live && e.expires_ms > now_ms).then_some((e.inb.outside, e.inb.oport))
    }

    fn live_in(&self, now_ms: u64, key: InKey) -> Option<u32> {
        let i = *self.inb.get(&key)?;
        let e = &self.entries[i as usize];
        (e.live && e.expires_ms > now_ms).then_some(i)
    }

    fn remove(&mut self, i: u32) {
        let e = &mut self.entries[i as usize];
        if !e.live {
            return;
        }
        e.live = false;
        let (out, inb) = (e.out, e.inb);
        if self.out.get(&out) == Some(&i) {
            self.out.remove(&out);
        }
        if self.inb.get(&inb) == Some(&i) {
            self.inb.remove(&inb);
        }
        self.free.push(i);
    }

    /// Visits up to `n` entries, reclaiming the expired ones.
    pub fn sweep(&mut self, now_ms: u64, n: usize) {
        let len = self.entries.len();
        if len == 0 {
            return;
        }
        for _ in 0..n.min(len) {
            self.sweep_at = (self.sweep_at + 1) % len;
            let e = &self.entries[self.sweep_at];
            if e.live && e.expires_ms <= now_ms {
                self.remove(self.sweep_at as u32);
                self.stats.expired += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IN: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 5);
    const OUT: Ipv4Addr = Ipv4Addr::new(172, 24, 4, 10);
    const REMOTE: Ipv4Addr = Ipv4Addr::new(172, 24, 4, 1);

    #[test]
    fn port_ranges_cover_the_ports_once_and_own_their_ports() {
        for n in 1..=5 {
            let mut next = FIRST_PORT as u32;
            for i in 0..n {
                let (lo, hi) = port_range(i, n);
                assert_eq!(lo as u32, next);
                assert_eq!((port_owner(lo, n), port_owner(hi, n)), (i, i));
                next = hi as u32 + 1;
            }
            assert_eq!(next, 65536);
        }
    }

    #[test]
    fn a_connection_keeps_its_port_and_its_reply_finds_it() {
        let mut nat = Nat::new(16, port_range(0, 1), 7);
        let p = nat.outbound(0, 1, 9, OUT, 17, (IN, 5000), (REMOTE, 53), 0).unwrap();
        assert_eq!(p, 5000, "port preserved");
        assert_eq!(nat.outbound(10, 1, 9, OUT, 17, (IN, 5000), (REMOTE, 53), 0), Some(5000));
        assert_eq!(nat.inbound(20, 9, 17, (OUT, 5000), (REMOTE, 53), 0), Some((IN, 5000)));
        // Another remote end, another protocol, another router's address: no reply of this one.
        assert_eq!(nat.inbound(20, 9, 17, (OUT, 5000), (REMOTE, 54), 0), None);
        assert_eq!(nat.inbound(20, 9, 6, (OUT, 5000), (REMOTE, 53), 0), None);
        assert_eq!(nat.inbound(20, 9, 17, (IN, 5000), (REMOTE, 53), 0), None);
        // Two inside hosts with the same port to the same remote end: two ports.
        let other = Ipv4Addr::new(10, 0, 0, 6);
        let q = nat.outbound(30, 1, 9, OUT, 17, (other, 5000), (REMOTE, 53), 0).unwrap();
        assert_ne!(q, 5000);
        assert_eq!(nat.inbound(40, 9, 17, (OUT, q), (REMOTE, 53), 0), Some((other, 5000)));
    }

    #[test]
    fn translations_expire_and_are_reclaimed_and_the_table_is_bounded() {
        let mut nat = Nat::new(2, port_range(1, 2), 7);
        let (lo, hi) = nat.ports();
        let a = nat.outbound(0, 1, 9, OUT, 1, (IN, 77), (REMOTE, 77), 0).unwrap();
        assert!((lo..=hi).contains(&a), "a port of the worker's range");
        nat.outbound(0, 1, 9, OUT, 1, (IN, 78), (REMOTE, 78), 0).unwrap();
        assert_eq!(nat.outbound(0, 1, 9, OUT, 1, (IN, 79), (REMOTE, 79), 0), None);
        assert_eq!(nat.stats.full, 1);
        let later = timeout::DATAGRAM_MS + 1;
        assert_eq!(nat.inbound(later, 9, 1, (OUT, a), (REMOTE, 77), 0), None, "expired");
        nat.sweep(later, 8);
        assert_eq!((nat.live(), nat.stats.expired), (0, 2));
        assert!(nat.outbound(later, 1, 9, OUT, 1, (IN, 79), (REMOTE, 79), 0).is_some());
    }

    #[test]
    fn tcp_lives_long_once_replied_and_short_once_reset() {
        let mut nat = Nat::new(4, port_range(0, 1), 7);
        let p = nat.outbound(0, 1, 9, OUT, 6, (IN, 4000), (REMOTE, 80), 0x02).unwrap();
        assert!(nat.inbound(1, 9, 6, (OUT, p), (REMOTE, 80), 0x12).is_some());
        let hour = 3600 * 1000;
        assert!(nat.inbound(hour, 9, 6, (OUT, p), (REMOTE, 80), 0x10).is_some(), "established lives on");
        nat.outbound(hour, 1, 9, OUT, 6, (IN, 4000), (REMOTE, 80), RST).unwrap();
        assert!(nat.inbound(hour + timeout::TCP_RESET_MS + 1, 9, 6, (OUT, p), (REMOTE, 80), 0x10).is_none());
    }

    #[test]
    fn learned_macs_are_found_updated_and_asked_for_once_a_second() {
        let l = Learned::default();
        let ip = Ipv4Addr::new(172, 24, 4, 1);
        let mac = Mac([2, 0, 0, 0, 0, 1]);
        assert_eq!(l.get(3, ip), None);
        l.learn(3, ip, mac, true);
        assert_eq!(l.get(3, ip), None, "a gratuitous ARP adds nothing");
        assert!(l.try_ask(3, ip, 1000));
        assert!(!l.try_ask(3, ip, 1500));
        assert!(l.try_ask(3, ip, 2000));
        l.learn(3, ip, mac, false);
        assert_eq!(l.get(3, ip), Some(mac));
        assert_eq!(l.get(4, ip), None, "per network");
        let moved = Mac([2, 0, 0, 0, 0, 2]);
        l.learn(3, ip, moved, true);
        assert_eq!(l.get(3, ip), Some(moved), "a gratuitous ARP updates a known address");
        l.learn(3, ip, Mac::BROADCAST, false);
        assert_eq!(l.get(3, ip), Some(moved), "never a multicast MAC");
        // Many more addresses than slots: bounded, the last ones found.
        for i in 0..4 * LEARNED_SLOTS as u32 {
            l.learn(5, Ipv4Addr::from_u32(0x0a00_0000 + i), mac, false);
        }
        assert_eq!(l.get(5, Ipv4Addr::from_u32(0x0a00_0000 + 4 * LEARNED_SLOTS as u32 - 1)), Some(mac));
        assert!(l.entries().len() <= LEARNED_SLOTS);
    }
}
