//! Connection tracking: one worker's table of the connections its ports' security groups let through
//! (`stages/security_groups.rs` decides; this file only remembers). Per worker, never shared: a worker
//! owns its [`Conntrack`] in its `WorkerState` and is its only reader and writer, so there are no locks
//! and no atomics. Both directions of a connection meet on one worker: see the security groups stage.
//!
//! A connection is a [`Key`]: the zone (the logical port whose rules it passed, as OVN gives each port
//! its zone), the protocol and the two ends, each an address and a port, in a canonical order (the lower
//! end first), so that a packet and its reply find the same entry with one lookup. The entry remembers
//! which end opened it ([`Entry::opener`]) and in which direction of the port's rules ([`Dir`]), the
//! protocol state and when it expires, and the digest of the rules it was last allowed by: when the
//! port's rules change (a rule removed, a remote group member gone), the next packet of the connection
//! checks the opening packet against the new rules and closes the connection if they no longer allow it.
//!
//! The table is bounded (`capacity` connections, given once) and never allocates after it is made: the
//! entries are one array, found through buckets of eight 32-bit signatures (one cache line), each
//! connection in one of two buckets (two-choice hashing: the emptier one on insert). An expired entry is
//! gone for lookups at once and is reclaimed when a lookup or an insert meets it in its bucket, or by the
//! sweep, which visits a few entries per burst ([`Conntrack::sweep`]): no stop-the-world expiry. When
//! every entry is live, or both buckets of a new connection are full, the new connection is refused
//! (the caller drops the packet: `conntrack.full`) and established ones keep flowing.
//!
//! Timeouts are OVS's userspace defaults, Linux's where OVS has none ([`timeout_ms`]). TCP follows the handshake and the closing
//! (SYN, SYN-ACK, ACK; FIN each way; RST), without window tracking: sequence numbers are not checked
//! (see [`TcpState`]).

/// A direction of a port's security group rules: the port sends (`Egress`) or receives (`Ingress`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Dir {
    Egress = 0,
    Ingress = 1,
}

/// A connection: the zone (a logical port key), the protocol, and its two ends (address and port, IPv4
/// addresses as `u128` values below 2^32) in canonical order: `(a, pa) <= (b, pb)`. For ICMP echo both
/// ports are the echo identifier; for protocols without ports both are 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
pub struct Key {
    pub zone: u32,
    pub proto: u8,
    pub v6: bool,
    /// For ICMP echo: which end asks (1: `a`, 2: `b`); 0 otherwise.
    pub tag: u8,
    pub pa: u16,
    pub pb: u16,
    pub a: u128,
    pub b: u128,
}

impl Key {
    /// The connection of a packet from `(src, sport)` to `(dst, dport)`, and whether the sender is the
    /// key's `b` end.
    #[inline(always)]
    pub fn of(zone: u32, proto: u8, v6: bool, src: u128, sport: u16, dst: u128, dport: u16) -> (Key, bool) {
        if (src, sport) <= (dst, dport) {
            (Key { zone, proto, v6, tag: 0, pa: sport, pb: dport, a: src, b: dst }, false)
        } else {
            (Key { zone, proto, v6, tag: 0, pa: dport, pb: sport, a: dst, b: src }, true)
        }
    }

    /// Its hash under the table's `seed` (random per worker, so that a VM cannot aim its connections at
    /// one bucket): two multiplies.
    #[inline(always)]
    fn hash(&self, seed: u64) -> u64 {
        let fold = |a: u128| a as u64 ^ ((a >> 64) as u64).rotate_left(21);
        let ends = u64::from(self.zone) << 32 | u64::from(self.pa) << 16 | u64::from(self.pb);
        let kind = u64::from(self.proto) | u64::from(self.tag) << 8 | u64::from(self.v6) << 16;
        let h = (fold(self.a) ^ seed).wrapping_mul(0x9e37_79b9_7f4a_7c15)
            ^ (fold(self.b).rotate_left(32) ^ ends ^ kind << 40).wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
        h ^ h >> 29
    }
}

/// A TCP connection's state: the handshake and the closing as the two ends' flags show them. No window
/// tracking: checking that sequence numbers fall in the peer's window (as Linux and OVS do) needs each
/// direction's sequence, acknowledgement and scaled window, and catches injected segments and stale RSTs;
/// it is left for later, and said in the note.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum TcpState {
    /// The opener's SYN.
    SynSent = 0,
    /// The other end's SYN-ACK.
    SynRecv,
    /// The opener's ACK of it: open.
    Established,
    /// A FIN from one end.
    Closing,
    /// FINs from both ends.
    TimeWait,
    /// A RST.
    Closed,
}

/// Protocol state of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Tcp(TcpState),
    /// UDP, ICMP echo and other protocols: has the other end answered yet.
    Other {
        replied: bool,
    },
    /// Closed by a rule change (its port's rules no longer allow its opening packet): its packets are
    /// dropped until it expires (each refreshes it), so that it is not picked up again in the middle, as
    /// OVN marks such a connection `ct_label.blocked`. A packet that opens a connection the current rules
    /// allow (a SYN, a datagram) replaces it.
    Blocked,
}

/// Timeouts (milliseconds): OVS's userspace defaults (SYN 30 s, established 24 h, closed 30 s), Linux's
/// where OVS has none (`nf_conntrack_*_timeout_*`: FIN wait 120 s, UDP replied 120 s, generic 600 s).
#[inline(always)]
pub fn timeout_ms(proto: u8, s: State) -> u64 {
    const S: u64 = 1000;
    match s {
        State::Tcp(TcpState::SynSent | TcpState::SynRecv) => 30 * S,
        State::Tcp(TcpState::Established) => 24 * 3600 * S,
        State::Tcp(TcpState::Closing) => 120 * S,
        State::Tcp(TcpState::TimeWait) => 30 * S,
        State::Tcp(TcpState::Closed) => 10 * S,
        State::Blocked if proto == 6 => 120 * S,
        State::Blocked => 30 * S,
        State::Other { replied } => match proto {
            1 | 58 => 30 * S,
            17 | 136 if replied => 120 * S,
            17 | 136 => 30 * S,
            // A fragment's permit (the security groups stage): while the rest of the datagram arrives.
            FRAGMENT => 2 * S,
            _ => 600 * S,
        },
    }
}

/// The protocol number a fragment permit is tracked under (IPv6's fragment header, never a real
/// upper-layer protocol of a tracked packet).
pub const FRAGMENT: u8 = 44;

/// One connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub key: Key,
    /// When it expires (the worker's clock, ms); 0: a free entry.
    pub expires_ms: u64,
    /// The digest (low 32 bits) of the port's rules that last allowed it.
    pub digest: u32,
    pub state: State,
    /// The end that opened it: `false` the key's `a`, `true` its `b`.
    pub opener: bool,
    /// The direction of the zone's port's rules the opening packet took.
    pub dir: Dir,
}

const EMPTY: Entry = Entry {
    key: Key { zone: 0, proto: 0, v6: false, tag: 0, pa: 0, pb: 0, a: 0, b: 0 },
    expires_ms: 0,
    digest: 0,
    state: State::Other { replied: false },
    opener: false,
    dir: Dir::Egress,
};

/// Eight entries' signatures (0: empty slot), then their indexes: one cache line (64 bytes; the array of
/// buckets is one large allocation, page-aligned, so each bucket is one line). Plain `u32`s so that the
/// array is asked for zeroed (`vec![[0; 16]; n]`) and the system gives its pages as they are touched.
type Bucket = [u32; 16];
const SLOTS: usize = 8;

/// The slots of bucket `b` whose signature is `sig`, one bit each: eight compares without a branch (two
/// SSE2 compares where there is SSE2), so that where the match is costs no misprediction. Walk them with
/// [`next_match`].
#[inline(always)]
fn matches(b: &Bucket, sig: u32) -> u32 {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_castsi128_ps, _mm_cmpeq_epi32, _mm_loadu_si128, _mm_movemask_ps, _mm_set1_epi32};
        let p = b.as_ptr() as *const std::arch::x86_64::__m128i;
        // SAFETY: SSE2 is part of x86_64; the two unaligned 16-byte loads read the bucket's first 8 `u32`s
        // (its signatures), in bounds.
        unsafe {
            let want = _mm_set1_epi32(sig as i32);
            let lo = _mm_movemask_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(_mm_loadu_si128(p), want)));
            let hi = _mm_movemask_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(_mm_loadu_si128(p.add(1)), want)));
            (lo | hi << 4) as u32
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        (0..SLOTS).fold(0, |bits, s| bits | u32::from(b[s] == sig) << s)
    }
}

/// The first slot of `hits` ([`matches`]), taken out of it.
#[inline(always)]
fn next_match(hits: &mut u32) -> usize {
    let s = hits.trailing_zeros() as usize;
    *hits &= *hits - 1;
    s
}

/// Counters of one worker's table, read by the dataplane's report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections made.
    pub created: u64,
    /// Connections that expired (reclaimed).
    pub expired: u64,
    /// Connections closed because the port's rules no longer allow them.
    pub revoked: u64,
    /// New connections refused: the table, or both of its buckets, full of established connections.
    pub full: u64,
    /// Connections not yet answered (a SYN, a datagram without reply) taken out for a new one when the
    /// table or both buckets were full, as Linux's `early_drop`.
    pub evicted: u64,
}

/// One worker's connections. See the module documentation.
#[derive(Clone)]
pub struct Conntrack {
    /// The entries used so far (it grows, up to its capacity, reserved at start, before any entry is
    /// reused): the memory a table takes is that of the most connections it held at once.
    entries: Vec<Entry>,
    /// Entries freed (a stack of indexes), used before new ones; reserved for every entry (virtual memory
    /// until used), so that no packet waits for it to grow.
    free: Vec<u32>,
    buckets: Vec<Bucket>,
    mask: usize,
    /// The next entry the sweep visits.
    cursor: usize,
    capacity: usize,
    /// The hash's key.
    seed: u64,
    pub stats: Stats,
}

impl std::fmt::Debug for Conntrack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conntrack").field("capacity", &self.capacity).field("live", &self.live()).finish()
    }
}

/// Connections past which a table (about 84 bytes each) no longer fits a core's L2 cache (512 KiB to
/// 2 MiB on current x86): [`Conntrack::is_large`].
pub const CACHED: usize = 8192;

/// A connection found: its index in the table (valid until the next insert or removal).
pub type Slot = u32;

impl Conntrack {
    /// Room for `capacity` connections (at least 8), hashed under `seed`. Reserved, not touched: the
    /// system gives the pages as connections first use them.
    pub fn new(capacity: usize, seed: u64) -> Conntrack {
        let capacity = capacity.clamp(8, u32::MAX as usize / 2);
        // Buckets for twice the entries: two choices keep overflows rare up to full.
        let buckets = (capacity / 4).next_power_of_two().max(2);
        Conntrack {
            entries: Vec::with_capacity(capacity),
            free: Vec::with_capacity(capacity),
            buckets: vec![[0; 16]; buckets],
            mask: buckets - 1,
            cursor: 0,
            capacity,
            seed,
            stats: Stats::default(),
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Connections held (expired ones not yet reclaimed included).
    pub fn live(&self) -> usize {
        self.entries.len() - self.free.len()
    }

    /// Bytes of memory per connection of a full table (its entry, its share of the buckets, and of the
    /// free list when all are freed).
    pub fn bytes_per_connection(&self) -> usize {
        let b = self.buckets.len() * std::mem::size_of::<Bucket>();
        (self.capacity * (std::mem::size_of::<Entry>() + 4) + b) / self.capacity
    }

    #[inline(always)]
    fn places(&self, h: u64) -> (usize, usize, u32) {
        let sig = (h >> 32) as u32 | 1;
        let b1 = h as usize & self.mask;
        let b2 = (b1 ^ (sig.wrapping_mul(0x5bd1_e995) as usize)) & self.mask;
        (b1, b2, sig)
    }

    /// The live connection `k` at time `now_ms`; an expired one found on the way is reclaimed.
    #[inline(always)]
    pub fn find(&mut self, k: &Key, now_ms: u64) -> Option<Slot> {
        let (b1, b2, sig) = self.places(k.hash(self.seed));
        for b in [b1, b2] {
            let mut hits = matches(&self.buckets[b], sig);
            while hits != 0 {
                let s = next_match(&mut hits);
                let i = self.buckets[b][SLOTS + s];
                let e = &self.entries[i as usize];
                if e.key == *k {
                    if e.expires_ms <= now_ms {
                        self.reclaim(b, s);
                        self.stats.expired += 1;
                        return None;
                    }
                    return Some(i);
                }
            }
        }
        None
    }

    /// The table's two arrays (address, bytes reserved): entries and buckets. Their addresses never change
    /// (reserved whole at start). The dataplane asks the system to back them with huge pages: a lookup
    /// reads two random lines of them, and with 4 KiB pages each would also miss the TLB.
    pub fn regions(&self) -> [(usize, usize); 2] {
        [
            (self.entries.as_ptr() as usize, self.capacity * std::mem::size_of::<Entry>()),
            (self.buckets.as_ptr() as usize, self.buckets.len() * std::mem::size_of::<Bucket>()),
        ]
    }

    /// Asks for the bucket line a lookup of `k` reads first (a hint: no effect on what it finds).
    #[inline(always)]
    pub fn prefetch(&self, k: &Key) {
        let (b1, _, _) = self.places(k.hash(self.seed));
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch is a hint; it does not fault, and the address is inside the live bucket array.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(self.buckets[b1].as_ptr() as *const i8)
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = b1;
    }

    /// Whether the table is past what a core's caches hold (more than [`CACHED`] connections): the
    /// worker then prefetches each burst's lookups (`security_groups::ahead`).
    #[inline(always)]
    pub fn is_large(&self) -> bool {
        self.live() > CACHED
    }

    #[inline(always)]
    pub fn entry(&self, s: Slot) -> &Entry {
        &self.entries[s as usize]
    }

    #[inline(always)]
    pub fn entry_mut(&mut self, s: Slot) -> &mut Entry {
        &mut self.entries[s as usize]
    }

    /// Adds a connection (not already in the table: the caller looked); `None` when it is full.
    pub fn insert(&mut self, e: Entry, now_ms: u64) -> Option<Slot> {
        let (b1, b2, sig) = self.places(e.key.hash(self.seed));
        // A free slot in the emptier of the two buckets, read from the buckets alone (their empty slots'
        // signature is 0); only when both are full, their expired connections are reclaimed (reading each
        // entry), which the sweep does anyway.
        let free = |t: &Conntrack, b: usize| matches(&t.buckets[b], 0);
        let (f1, f2) = (free(self, b1), free(self, b2));
        let mut best = match (f1, f2) {
            (0, 0) => None,
            _ if f2.count_ones() > f1.count_ones() => Some((b2, f2.trailing_zeros() as usize)),
            _ => Some((b1, f1.trailing_zeros() as usize)),
        };
        let no_entry = self.free.is_empty() && self.entries.len() == self.capacity;
        if best.is_none() || no_entry {
            for b in [b1, b2] {
                for s in 0..SLOTS {
                    if self.buckets[b][s] != 0 && self.entries[self.buckets[b][SLOTS + s] as usize].expires_ms <= now_ms
                    {
                        self.reclaim(b, s);
                        self.stats.expired += 1;
                        best = best.or(Some((b, s)));
                    }
                }
            }
        }
        if no_entry && self.free.is_empty() {
            // Every entry in use: look further for expired ones (bounded: a full table's new connection).
            self.sweep(now_ms, 64);
        }
        if best.is_none() || (no_entry && self.free.is_empty()) {
            // Still full: a connection of the two buckets that nobody answered yet makes room (an
            // answered one is never taken out for a new one), so that a flood of new connections cannot
            // lock out the others.
            let unanswered =
                |e: &Entry| matches!(e.state, State::Tcp(TcpState::SynSent) | State::Other { replied: false });
            let victim = [b1, b2].into_iter().find_map(|b| {
                (0..SLOTS)
                    .find(|&s| {
                        self.buckets[b][s] != 0 && unanswered(&self.entries[self.buckets[b][SLOTS + s] as usize])
                    })
                    .map(|s| (b, s))
            });
            if let Some((b, s)) = victim {
                self.reclaim(b, s);
                self.stats.evicted += 1;
                best = Some((b, s));
            }
        }
        let Some((b, s)) = best else {
            self.stats.full += 1;
            return None;
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.entries[i as usize] = e;
                i
            }
            None if self.entries.len() < self.capacity => {
                self.entries.push(e);
                self.entries.len() as u32 - 1
            }
            None => {
                self.stats.full += 1;
                return None;
            }
        };
        self.buckets[b][s] = sig;
        self.buckets[b][SLOTS + s] = i;
        self.stats.created += 1;
        Some(i)
    }

    /// Removes connection `s` (closed by a rule change).
    pub fn remove(&mut self, s: Slot) {
        let k = self.entries[s as usize].key;
        let (b1, b2, sig) = self.places(k.hash(self.seed));
        for b in [b1, b2] {
            for j in 0..SLOTS {
                if self.buckets[b][j] == sig && self.buckets[b][SLOTS + j] == s {
                    self.reclaim(b, j);
                    return;
                }
            }
        }
    }

    fn reclaim(&mut self, b: usize, s: usize) {
        let i = self.buckets[b][SLOTS + s];
        self.buckets[b][s] = 0;
        self.entries[i as usize] = EMPTY;
        self.free.push(i);
    }

    /// Visits the next `n` entries and reclaims the expired ones: a worker calls it once per burst, so
    /// that expired connections leave the table even when no packet of theirs comes (the table's count
    /// of live connections stays true, and a full table frees up) without ever pausing for a sweep.
    pub fn sweep(&mut self, now_ms: u64, n: usize) {
        if self.free.len() == self.entries.len() {
            return;
        }
        for _ in 0..n.min(self.entries.len()) {
            let i = self.cursor;
            self.cursor = if i + 1 == self.entries.len() { 0 } else { i + 1 };
            let e = &self.entries[i];
            if e.expires_ms != 0 && e.expires_ms <= now_ms {
                self.remove(i as u32);
                self.stats.expired += 1;
            }
        }
    }
}

/// TCP flags.
pub mod tcp {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const ACK: u8 = 0x10;
}

/// Whether a TCP segment with `flags` opens a connection: a SYN alone (no ACK, RST or FIN). A segment
/// without SYN or RST, of no known connection, picks one up in the middle ([`tcp_picks_up`]); anything
/// else without a connection is invalid.
#[inline(always)]
pub fn tcp_opens(flags: u8) -> bool {
    flags & (tcp::SYN | tcp::ACK | tcp::RST | tcp::FIN) == tcp::SYN
}

/// Whether a TCP segment with `flags`, of no known connection, is taken as one already open (established,
/// its sender as the opener), as Linux (`nf_conntrack_tcp_loose`) and OVS's conntrack do: connections
/// survive a restart of the switch or a lost table, if the rules allow them. Not a SYN (which opens) nor
/// a RST.
#[inline(always)]
pub fn tcp_picks_up(flags: u8) -> bool {
    flags & (tcp::SYN | tcp::RST) == 0
}

/// The state after a segment with `flags` from the opener (`from_opener`) or the other end; `None`: the
/// segment is invalid in that state (and is dropped, the state unchanged).
#[inline]
pub fn tcp_next(s: TcpState, from_opener: bool, flags: u8) -> Option<TcpState> {
    use TcpState::*;
    let (syn, ack, rst, fin) =
        (flags & tcp::SYN != 0, flags & tcp::ACK != 0, flags & tcp::RST != 0, flags & tcp::FIN != 0);
    if syn && (rst || fin) {
        return None;
    }
    if rst {
        return Some(Closed);
    }
    Some(match (s, from_opener) {
        // A retransmitted SYN.
        (SynSent, true) if syn && !ack => SynSent,
        (SynSent, true) => return None,
        (SynSent, false) if syn && ack => SynRecv,
        (SynSent, false) => return None,
        // The SYN-ACK again, or the other end's data before the opener's ACK (TCP Fast Open).
        (SynRecv, false) if syn || ack => SynRecv,
        // The opener's SYN again (its SYN-ACK was lost after this switch).
        (SynRecv, true) if syn && !ack => SynRecv,
        (SynRecv, true) if ack && !syn => {
            if fin {
                Closing
            } else {
                Established
            }
        }
        (SynRecv, _) => return None,
        // A SYN on an open connection (a peer that lost its state): passed, the state unchanged, as Linux
        // does; the other end's challenge ACK and the RST that follows close it.
        (Established | Closing, _) if syn && !ack => s,
        (Established | Closing | TimeWait, _) if syn => return None,
        (Established, _) if fin => Closing,
        (Established, _) => Established,
        (Closing, _) if fin => TimeWait,
        (Closing, _) => Closing,
        (TimeWait, _) => TimeWait,
        // Reopened by the caller (a new SYN); anything else after a RST is left alone.
        (Closed, _) if syn => return None,
        (Closed, _) => Closed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(zone: u32, n: u128) -> Key {
        Key::of(zone, 17, false, 0x0a00_0001, 1000, 0x0a00_0000 + n, 53).0
    }

    fn entry(k: Key, expires_ms: u64) -> Entry {
        Entry { key: k, expires_ms, ..EMPTY }
    }

    /// A connection its other end answered.
    fn answered(k: Key, expires_ms: u64) -> Entry {
        Entry { state: State::Other { replied: true }, ..entry(k, expires_ms) }
    }

    #[test]
    fn both_directions_find_one_connection() {
        let (k1, b1) = Key::of(7, 6, false, 10, 40000, 20, 80);
        let (k2, b2) = Key::of(7, 6, false, 20, 80, 10, 40000);
        assert_eq!(k1, k2);
        assert_ne!(b1, b2);
        let (k3, _) = Key::of(8, 6, false, 10, 40000, 20, 80);
        assert_ne!(k1, k3, "zones apart");
        let mut ct = Conntrack::new(64, 1);
        let s = ct.insert(entry(k1, 100), 0).unwrap();
        assert_eq!(ct.find(&k2, 10), Some(s));
        assert_eq!(ct.find(&k3, 10), None);
        assert_eq!(ct.find(&k2, 100), None, "expired");
        assert_eq!((ct.live(), ct.stats.expired), (0, 1));
    }

    #[test]
    fn full_tables_refuse_new_connections_and_keep_the_old() {
        let mut ct = Conntrack::new(100, 1);
        let mut made = 0;
        for n in 0..1000 {
            if ct.insert(answered(key(1, n), 1_000), 0).is_some() {
                made += 1;
            }
        }
        assert_eq!(made, 100, "every entry used before refusing");
        assert_eq!(ct.stats.full, 900);
        let kept = (0..1000).filter(|&n| ct.find(&key(1, n), 10).is_some()).count();
        assert_eq!(kept, 100);
        // Once they expire, room again.
        assert!(ct.insert(entry(key(2, 1), 5_000), 2_000).is_some());
    }

    #[test]
    fn a_full_table_makes_room_from_unanswered_connections_only() {
        let mut ct = Conntrack::new(100, 1);
        for n in 0..100 {
            ct.insert(answered(key(1, n), 1_000), 0).unwrap();
        }
        assert_eq!(ct.insert(entry(key(2, 0), 1_000), 0), None, "all answered: refused");
        let mut ct = Conntrack::new(100, 1);
        for n in 0..100 {
            ct.insert(entry(key(1, n), 1_000), 0).unwrap();
        }
        let made = (0..50).filter(|&n| ct.insert(answered(key(2, n), 1_000), 0).is_some()).count();
        assert_eq!((made, ct.stats.evicted), (50, 50), "unanswered ones make room");
        assert_eq!((0..50).filter(|&n| ct.find(&key(2, n), 10).is_some()).count(), 50);
    }

    #[test]
    fn the_sweep_reclaims_what_no_packet_visits() {
        let mut ct = Conntrack::new(64, 1);
        for n in 0..50 {
            ct.insert(entry(key(1, n), 10 + n as u64), 0).unwrap();
        }
        ct.sweep(30, 16);
        assert!(ct.live() < 50 && ct.live() > 20);
        ct.sweep(30, 64);
        assert_eq!(ct.live(), 29, "expired at 10 + n <= 30: n = 0..=20");
        ct.sweep(1_000, 1_000);
        assert_eq!((ct.live(), ct.stats.expired), (0, 50));
    }

    #[test]
    fn removal_frees_the_entry() {
        let mut ct = Conntrack::new(8, 1);
        let s = ct.insert(entry(key(1, 1), 100), 0).unwrap();
        ct.remove(s);
        assert_eq!((ct.live(), ct.find(&key(1, 1), 0)), (0, None));
    }

    #[test]
    fn tcp_handshake_and_close() {
        use tcp::*;
        use TcpState::*;
        assert!(tcp_opens(SYN) && !tcp_opens(SYN | ACK) && !tcp_opens(ACK) && !tcp_opens(SYN | FIN));
        let mut s = SynSent;
        for (from_opener, flags, want) in [
            (true, SYN, SynSent),
            (false, SYN | ACK, SynRecv),
            (true, ACK, Established),
            (false, ACK, Established),
            (true, FIN | ACK, Closing),
            (false, FIN | ACK, TimeWait),
            (true, ACK, TimeWait),
        ] {
            s = tcp_next(s, from_opener, flags).unwrap();
            assert_eq!(s, want);
        }
        assert_eq!(tcp_next(SynSent, false, ACK), None, "an ACK before the SYN-ACK");
        assert_eq!(tcp_next(SynSent, true, ACK), None);
        assert_eq!(tcp_next(Established, true, SYN), Some(Established), "a peer that lost its state");
        assert_eq!(tcp_next(SynRecv, true, SYN), Some(SynRecv), "the SYN again");
        assert_eq!(tcp_next(SynRecv, false, ACK), Some(SynRecv), "data before the ACK");
        assert_eq!(tcp_next(TimeWait, true, SYN | ACK), None);
        assert_eq!(tcp_next(Established, false, RST | ACK), Some(Closed));
        assert_eq!(tcp_next(Established, false, SYN | RST), None);
    }
}
