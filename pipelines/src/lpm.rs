//! Longest-prefix match in a time that does not grow with the number of prefixes: a multibit trie of
//! 8-bit strides over the address's bytes (IPv4: at most 4 steps; IPv6: at most 16), each step one
//! 256-entry chunk indexed by one byte of the address, each chunk stored compressed (as poptrie does).
//!
//! Why this structure, and not the others the field uses:
//! - DPDK's `rte_lpm` (DIR-24-8) answers most IPv4 lookups in one memory read, but its first table is
//!   2^24 entries (64 MiB) per table, and a node holds one table per router: too much for a cloud node
//!   with tens of routers, and it cannot be shared between two published snapshots, so a route change
//!   would have to write into the table the workers are reading (as `rte_lpm` does, with its own
//!   ordering rules) or copy it. `rte_lpm6` has the same shape.
//! - Poptrie and DXR compress best, but are built for a table that is rebuilt, not edited: a route
//!   change recomputes a whole subtree or the whole table. This trie takes poptrie's compression of a
//!   chunk (below), not its 6-bit strides and contiguous arrays, so that it stays editable chunk by chunk.
//! - A trie of chunks is edited by path copying: a snapshot the workers hold is never written, and a
//!   route change copies at most the chunks on its path (4 for IPv4), whatever the table holds; every
//!   other chunk is shared, by reference count, between the old and the new snapshot.
//!
//! Each of a chunk's 256 entries stands for the best prefix of that chunk's level that covers it (a
//! prefix whose length ends inside the level covers a range of entries, the longest one winning) and
//! may lead to a next-level chunk. A lookup walks down from the root, keeping the last prefix it met, and
//! stops at the first entry without a next level: a prefix found deeper is always longer. So a shorter
//! prefix is never copied into the chunks below it, and changing it touches one chunk.
//!
//! A chunk is stored as runs: a 256-bit map of where a run of entries with the same prefix starts, one
//! hop per run, and a 256-bit map of the entries with a next level with one pointer per such entry; an
//! entry's run (or next level) is the number of bits set up to it (one `popcnt`, as in poptrie). A chunk
//! holding one /28 has 3 runs: with the maps, 192 bytes where 256 plain entries would take 4 KiB, so a
//! table of 100,000 routes of mixed lengths takes about 20 MB instead of 320 MB, mostly inside the
//! last-level cache. A lookup in a chunk without a next level reads its first cache line and its hops.
//!
//! The prefixes a chunk's level holds are listed in the chunk itself, so that removing one finds the
//! next best without a table of every prefix; a chunk left with neither prefix nor next level is freed.
//!
//! Thread-safety: a [`Trie`] is a plain value. Clone it (the root's reference count) and edit the clone
//! while readers keep using the original; `&Trie` is `Sync` and a lookup allocates nothing and locks
//! nothing.

use std::sync::Arc;

/// A next hop's number in the trie: whatever the owner numbers its next hops by. 0 is "no route".
pub type HopId = u32;

/// The number of bits set in `bits` at positions `0..=i`, `before[w]` being the number set in the words
/// before word `w`.
#[inline(always)]
fn rank(bits: &[u64; 4], before: &[u8; 4], i: u8) -> usize {
    let w = usize::from(i >> 6);
    usize::from(before[w]) + (bits[w] & (u64::MAX >> (63 - (i & 63)))).count_ones() as usize
}

#[inline(always)]
fn bit(bits: &[u64; 4], i: u8) -> bool {
    bits[usize::from(i >> 6)] >> (i & 63) & 1 != 0
}

/// The `before` counts of a 256-bit map (see [`rank`]).
fn counts_before(bits: &[u64; 4]) -> [u8; 4] {
    let mut before = [0u8; 4];
    for w in 1..4 {
        before[w] = before[w - 1] + bits[w - 1].count_ones() as u8;
    }
    before
}

/// One level's 256 entries, compressed (module doc). The first cache line holds what a lookup reads in
/// a chunk without a next level.
#[derive(Clone)]
#[repr(C, align(64))]
struct Chunk {
    /// Bit `i`: entry `i` starts a run of entries with the same prefix (bit 0 is always set).
    starts: [u64; 4],
    /// Each run's hop: the best prefix of this level over the run (0: none).
    hops: Box<[HopId]>,
    starts_before: [u8; 4],
    kids_before: [u8; 4],
    /// Any bit of `kids` set.
    has_kids: bool,
    /// Bit `i`: entry `i` has a next-level chunk, `next[rank(kids, i) - 1]`.
    kids: [u64; 4],
    next: Box<[Arc<Chunk>]>,
    /// Each run's prefix length (0: none), for edits: a longer prefix overrides a shorter one.
    lens: Box<[u8]>,
    /// (first byte of the prefix at this level, masked; prefix length; hop).
    prefixes: Vec<(u8, u8, HopId)>,
}

impl Chunk {
    fn new() -> Chunk {
        Chunk {
            starts: [1, 0, 0, 0],
            hops: Box::new([0]),
            starts_before: [0, 1, 1, 1],
            kids_before: [0; 4],
            has_kids: false,
            kids: [0; 4],
            next: Box::new([]),
            lens: Box::new([0]),
            prefixes: Vec::new(),
        }
    }

    /// The hop entry `b` holds (0: none).
    #[inline(always)]
    fn hop(&self, b: u8) -> HopId {
        self.hops[rank(&self.starts, &self.starts_before, b) - 1]
    }

    /// Entry `b`'s next-level chunk.
    #[inline(always)]
    fn kid(&self, b: u8) -> Option<&Chunk> {
        if self.has_kids && bit(&self.kids, b) {
            Some(&self.next[rank(&self.kids, &self.kids_before, b) - 1])
        } else {
            None
        }
    }

    fn kid_mut(&mut self, b: u8) -> Option<&mut Arc<Chunk>> {
        if bit(&self.kids, b) {
            Some(&mut self.next[rank(&self.kids, &self.kids_before, b) - 1])
        } else {
            None
        }
    }

    /// Gives entry `b` next-level chunk `kid`, or none.
    fn set_kid(&mut self, b: u8, kid: Option<Arc<Chunk>>) {
        let at = rank(&self.kids, &self.kids_before, b) - usize::from(bit(&self.kids, b));
        let mut next = std::mem::take(&mut self.next).into_vec();
        let (w, m) = (usize::from(b >> 6), 1u64 << (b & 63));
        match (bit(&self.kids, b), kid) {
            (true, Some(k)) => next[at] = k,
            (true, None) => {
                next.remove(at);
                self.kids[w] &= !m;
            }
            (false, Some(k)) => {
                next.insert(at, k);
                self.kids[w] |= m;
            }
            (false, None) => {}
        }
        self.next = next.into_boxed_slice();
        self.kids_before = counts_before(&self.kids);
        self.has_kids = !self.next.is_empty();
    }

    /// The 256 entries, uncompressed: (hop, prefix length).
    fn entries(&self) -> [(HopId, u8); 256] {
        let mut out = [(0, 0); 256];
        let mut run = 0;
        for (i, e) in out.iter_mut().enumerate() {
            run += usize::from(bit(&self.starts, i as u8));
            *e = (self.hops[run - 1], self.lens[run - 1]);
        }
        out
    }

    /// Stores `entries` as runs; returns how many runs the chunk had before and has now.
    fn set_entries(&mut self, entries: &[(HopId, u8); 256]) -> (usize, usize) {
        let mut starts = [0u64; 4];
        let (mut hops, mut lens) = (Vec::new(), Vec::new());
        for (i, &e) in entries.iter().enumerate() {
            if i == 0 || e != entries[i - 1] {
                starts[i >> 6] |= 1 << (i & 63);
                hops.push(e.0);
                lens.push(e.1);
            }
        }
        let was = self.hops.len();
        self.starts = starts;
        self.starts_before = counts_before(&starts);
        self.hops = hops.into_boxed_slice();
        self.lens = lens.into_boxed_slice();
        (was, self.hops.len())
    }

    fn is_empty(&self) -> bool {
        self.prefixes.is_empty() && !self.has_kids
    }

    /// The longest prefix of this level (length in `level_start + 1 ..= level_start + 8`) covering byte
    /// `b`, shorter than `below` bits: (hop, length), or (0, 0).
    fn best_covering(&self, b: u8, below: u8, level_start: u8) -> (HopId, u8) {
        self.prefixes
            .iter()
            .filter(|&&(base, len, _)| len < below && b & mask8(len - level_start) == base)
            .max_by_key(|&&(_, len, _)| len)
            .map_or((0, 0), |&(_, len, hop)| (hop, len))
    }
}

/// The top `bits` (0..=8) of a byte.
fn mask8(bits: u8) -> u8 {
    if bits == 0 {
        0
    } else {
        0xffu8 << (8 - bits.min(8))
    }
}

/// A longest-prefix-match table over `N`-byte addresses (4: IPv4, 16: IPv6), in network byte order.
#[derive(Clone)]
pub struct Trie<const N: usize> {
    /// The hop of the zero-length prefix (0: none).
    default: HopId,
    root: Arc<Chunk>,
    /// How many prefixes the trie holds.
    len: usize,
    /// How many chunks it holds, the root included, and how many runs they hold in all (kept as they
    /// come and go: [`Trie::chunks`], [`Trie::bytes`]).
    chunks: usize,
    runs: usize,
}

impl<const N: usize> std::fmt::Debug for Trie<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Trie {{ prefixes: {}, chunks: {}, bytes: {} }}", self.len, self.chunks, self.bytes())
    }
}

impl<const N: usize> Default for Trie<N> {
    fn default() -> Self {
        Trie { default: 0, root: Arc::new(Chunk::new()), len: 0, chunks: 1, runs: 1 }
    }
}

impl<const N: usize> Trie<N> {
    /// The hop of the longest prefix holding `addr`; 0 if none does.
    #[inline]
    pub fn lookup(&self, addr: &[u8; N]) -> HopId {
        let mut best = self.default;
        let mut c: &Chunk = &self.root;
        for &b in addr {
            let hop = c.hop(b);
            if hop != 0 {
                best = hop;
            }
            match c.kid(b) {
                Some(n) => c = n,
                None => break,
            }
        }
        best
    }

    /// [`Trie::lookup`] of up to 64 addresses at once, level by level: the loads of one level are
    /// independent of each other, so their cache misses overlap (a large table does not fit in a core's
    /// own caches; one address at a time, its misses come one after the other). `out[i]` gets the
    /// answer for `addrs[i]`.
    pub fn lookup_batch(&self, addrs: &[[u8; N]], out: &mut [HopId]) {
        let n = addrs.len().min(out.len()).min(64);
        let mut at: [&Chunk; 64] = [&*self.root; 64];
        out[..n].fill(self.default);
        let mut live: u64 = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
        // `level` indexes the byte of every address in turn, not one slice: a range is what it is.
        #[allow(clippy::needless_range_loop)]
        for level in 0..N {
            let mut next = 0u64;
            let mut bits = live;
            while bits != 0 {
                let i = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let (c, b) = (at[i], addrs[i][level]);
                let hop = c.hop(b);
                if hop != 0 {
                    out[i] = hop;
                }
                if let Some(k) = c.kid(b) {
                    at[i] = k;
                    next |= 1 << i;
                }
            }
            live = next;
            if live == 0 {
                break;
            }
        }
    }

    /// How many prefixes the trie holds.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Sets the hop of prefix `addr/len` (bits past `len` are ignored), adding the prefix or replacing
    /// its hop; `hop` must not be 0. Copies the chunks on the prefix's path that a clone of this trie
    /// still shares, and no other.
    pub fn insert(&mut self, addr: &[u8; N], len: u8, hop: HopId) {
        assert!(hop != 0, "hop 0 means no route");
        let len = len.min(8 * N as u8);
        if len == 0 {
            self.len += usize::from(self.default == 0);
            self.default = hop;
            return;
        }
        let level = usize::from((len - 1) / 8);
        let start = 8 * level as u8;
        let mut c = Arc::make_mut(&mut self.root);
        for &b in &addr[..level] {
            if c.kid_mut(b).is_none() {
                c.set_kid(b, Some(Arc::new(Chunk::new())));
                self.chunks += 1;
                self.runs += 1;
            }
            c = Arc::make_mut(c.kid_mut(b).expect("made above"));
        }
        let base = addr[level] & mask8(len - start);
        match c.prefixes.iter_mut().find(|p| p.0 == base && p.1 == len) {
            Some(p) => p.2 = hop,
            None => {
                c.prefixes.push((base, len, hop));
                self.len += 1;
            }
        }
        let span = 1usize << (start + 8 - len);
        let mut e = c.entries();
        for e in &mut e[base as usize..base as usize + span] {
            if e.1 <= len {
                *e = (hop, len);
            }
        }
        let (was, now) = c.set_entries(&e);
        self.runs = self.runs + now - was;
    }

    /// Removes prefix `addr/len`; true if the trie held it. Its entries fall back to the next longest
    /// prefix of the same level that covers them (or to none: then the levels above answer), and chunks
    /// left empty are freed.
    pub fn remove(&mut self, addr: &[u8; N], len: u8) -> bool {
        let len = len.min(8 * N as u8);
        if len == 0 {
            let had = self.default != 0;
            self.default = 0;
            self.len -= usize::from(had);
            return had;
        }
        // Nothing to copy if the prefix is not there.
        if self.get(addr, len).is_none() {
            return false;
        }
        let level = usize::from((len - 1) / 8);
        let mut gone = Gone::default();
        remove_at(Arc::make_mut(&mut self.root), addr, len, level, 0, &mut gone);
        self.chunks -= gone.chunks;
        self.runs = self.runs + gone.runs_now - gone.runs_was;
        self.len -= 1;
        true
    }

    /// The hop of exactly prefix `addr/len`, if the trie holds that prefix.
    pub fn get(&self, addr: &[u8; N], len: u8) -> Option<HopId> {
        let len = len.min(8 * N as u8);
        if len == 0 {
            return (self.default != 0).then_some(self.default);
        }
        let level = usize::from((len - 1) / 8);
        let mut c: &Chunk = &self.root;
        for &b in &addr[..level] {
            c = c.kid(b)?;
        }
        let base = addr[level] & mask8(len - 8 * level as u8);
        c.prefixes.iter().find(|p| p.0 == base && p.1 == len).map(|p| p.2)
    }

    /// How many chunks the trie holds.
    pub fn chunks(&self) -> usize {
        self.chunks
    }

    /// About how many bytes the trie takes: its chunks, their runs, their next-level pointers and
    /// their prefix lists (allocator overhead aside).
    pub fn bytes(&self) -> usize {
        let run = std::mem::size_of::<HopId>() + 1;
        let per_prefix = std::mem::size_of::<(u8, u8, HopId)>();
        let per_kid = std::mem::size_of::<Arc<Chunk>>();
        self.chunks * std::mem::size_of::<Chunk>() + self.runs * run + self.len * per_prefix + (self.chunks - 1) * per_kid
    }
}

/// What a removal changed: chunks freed, runs before and after in the chunks it edited.
#[derive(Default)]
struct Gone {
    chunks: usize,
    runs_was: usize,
    runs_now: usize,
}

/// Removes `addr/len` from the chunk at `depth` on its path (which holds it); frees the chunks below
/// left empty, counting them in `gone`. Returns whether `c` itself is now empty.
fn remove_at(c: &mut Chunk, addr: &[u8], len: u8, level: usize, depth: usize, gone: &mut Gone) -> bool {
    if depth < level {
        let b = addr[depth];
        let child = Arc::make_mut(c.kid_mut(b).expect("get found the path"));
        if remove_at(child, addr, len, level, depth + 1, gone) {
            gone.chunks += 1;
            gone.runs_was += child.hops.len();
            c.set_kid(b, None);
        }
        return c.is_empty();
    }
    let start = 8 * level as u8;
    let base = addr[level] & mask8(len - start);
    c.prefixes.retain(|p| !(p.0 == base && p.1 == len));
    let (hop, plen) = c.best_covering(base, len, start);
    let span = 1usize << (start + 8 - len);
    let mut e = c.entries();
    for e in &mut e[base as usize..base as usize + span] {
        if e.1 == len {
            *e = (hop, plen);
        }
    }
    let (was, now) = c.set_entries(&e);
    gone.runs_was += was;
    gone.runs_now += now;
    c.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference: every prefix, scanned.
    fn linear(prefixes: &[([u8; 4], u8, HopId)], a: [u8; 4]) -> HopId {
        let a = u32::from_be_bytes(a);
        prefixes
            .iter()
            .filter(|(p, l, _)| *l == 0 || (a ^ u32::from_be_bytes(*p)) >> (32 - u32::from(*l)) == 0)
            .max_by_key(|(_, l, _)| *l)
            .map_or(0, |p| p.2)
    }

    #[test]
    fn the_longest_prefix_wins_at_every_level() {
        let mut t = Trie::<4>::default();
        let routes = [([0, 0, 0, 0], 0, 1), ([10, 0, 0, 0], 8, 2), ([10, 1, 0, 0], 16, 3), ([10, 1, 2, 0], 24, 4)];
        for (a, l, h) in routes {
            t.insert(&a, l, h);
        }
        t.insert(&[10, 1, 2, 3], 32, 5);
        t.insert(&[10, 1, 2, 128], 25, 6);
        assert_eq!(t.lookup(&[10, 1, 2, 3]), 5);
        assert_eq!(t.lookup(&[10, 1, 2, 4]), 4);
        assert_eq!(t.lookup(&[10, 1, 2, 200]), 6);
        assert_eq!(t.lookup(&[10, 1, 3, 1]), 3);
        assert_eq!(t.lookup(&[10, 2, 3, 1]), 2);
        assert_eq!(t.lookup(&[11, 0, 0, 1]), 1);
        assert_eq!(t.len(), 6);
        assert!(t.remove(&[10, 1, 2, 0], 24));
        assert_eq!(t.lookup(&[10, 1, 2, 4]), 3, "falls back to the /16 above");
        assert_eq!(t.lookup(&[10, 1, 2, 3]), 5);
        assert!(!t.remove(&[10, 1, 2, 0], 24));
        assert!(t.remove(&[0, 0, 0, 0], 0));
        assert_eq!(t.lookup(&[11, 0, 0, 1]), 0);
    }

    #[test]
    fn a_removed_prefix_gives_way_to_a_shorter_one_of_its_level() {
        let mut t = Trie::<4>::default();
        t.insert(&[10, 0, 0, 0], 9, 1);
        t.insert(&[10, 0, 0, 0], 12, 2);
        t.insert(&[10, 0, 0, 0], 16, 3);
        assert_eq!(t.lookup(&[10, 0, 9, 9]), 3);
        t.remove(&[10, 0, 0, 0], 16);
        assert_eq!(t.lookup(&[10, 0, 9, 9]), 2);
        t.remove(&[10, 0, 0, 0], 12);
        assert_eq!(t.lookup(&[10, 0, 9, 9]), 1);
        assert_eq!(t.lookup(&[10, 127, 9, 9]), 1);
        assert_eq!(t.lookup(&[10, 128, 9, 9]), 0);
    }

    #[test]
    fn an_edit_copies_only_its_path_and_leaves_the_clone_as_it_was() {
        let mut t = Trie::<4>::default();
        for i in 0..=255u8 {
            t.insert(&[10, i, 0, 0], 24, 1 + u32::from(i));
        }
        let published = t.clone();
        t.insert(&[10, 7, 0, 0], 24, 999);
        t.remove(&[10, 8, 0, 0], 24);
        assert_eq!(published.lookup(&[10, 7, 0, 1]), 8);
        assert_eq!(published.lookup(&[10, 8, 0, 1]), 9);
        assert_eq!(t.lookup(&[10, 7, 0, 1]), 999);
        assert_eq!(t.lookup(&[10, 8, 0, 1]), 0);
        // The root, 10's chunk and the two /16 chunks are copies; the 254 other /16 chunks are shared.
        let (a, b) = (published.root.kid(10).unwrap(), t.root.kid(10).unwrap());
        let shared = (0..=255u8).filter(|&i| match (a.kid(i), b.kid(i)) {
            (Some(x), Some(y)) => std::ptr::eq(x, y),
            _ => false,
        });
        assert_eq!(shared.count(), 254);
        assert_eq!(t.chunks(), 1 + 1 + 255);
        fn count(c: &Chunk) -> (usize, usize) {
            (0..=255u8).filter_map(|i| c.kid(i)).map(count).fold((1, c.hops.len()), |s, k| (s.0 + k.0, s.1 + k.1))
        }
        assert_eq!(count(&t.root), (t.chunks(), t.runs));
    }

    #[test]
    fn a_chunk_is_stored_as_runs() {
        let mut t = Trie::<4>::default();
        t.insert(&[10, 0, 0, 16], 28, 7);
        let c = t.root.kid(10).unwrap().kid(0).unwrap().kid(0).unwrap();
        assert_eq!((&*c.hops, &*c.lens), (&[0, 7, 0][..], &[0, 28, 0][..]));
        assert_eq!(c.starts, [1 | 1 << 16 | 1 << 32, 0, 0, 0]);
        assert_eq!((t.lookup(&[10, 0, 0, 15]), t.lookup(&[10, 0, 0, 16]), t.lookup(&[10, 0, 0, 31])), (0, 7, 7));
        assert_eq!(t.lookup(&[10, 0, 0, 32]), 0);
        assert!(std::mem::size_of::<Chunk>() <= 192, "{}", std::mem::size_of::<Chunk>());
        assert!(t.bytes() < 4 * 256, "{}", t.bytes());
        t.remove(&[10, 0, 0, 16], 28);
        assert_eq!((t.chunks(), t.runs), (1, 1));
    }

    #[test]
    fn emptied_chunks_are_freed() {
        let mut t = Trie::<16>::default();
        let mut a = [0u8; 16];
        a[..2].copy_from_slice(&[0x20, 0x01]);
        t.insert(&a, 128, 1);
        assert_eq!(t.chunks(), 16);
        t.remove(&a, 128);
        assert_eq!(t.chunks(), 1);
        assert!(t.is_empty());
    }

    #[test]
    fn a_batch_answers_as_one_at_a_time() {
        let mut t = Trie::<4>::default();
        t.insert(&[0, 0, 0, 0], 0, 9);
        for i in 0..200u8 {
            t.insert(&[10, i, 0, 0], 16 + (i % 17), 1 + u32::from(i));
        }
        let addrs: Vec<[u8; 4]> = (0..64u8).map(|i| [if i % 5 == 0 { 11 } else { 10 }, i * 3, i, i]).collect();
        let mut out = [0; 64];
        for n in [0, 1, 7, 63, 64] {
            out.fill(12345);
            t.lookup_batch(&addrs[..n], &mut out);
            for i in 0..n {
                assert_eq!(out[i], t.lookup(&addrs[i]), "{n}: {:?}", addrs[i]);
            }
            assert!(out[n..].iter().all(|&o| o == 12345), "nothing written past the batch");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 300, ..Default::default() })]
        /// Random inserts, replacements and removals, then every probe answered as a linear scan would.
        #[test]
        fn equals_a_linear_scan(
            ops in proptest::collection::vec((proptest::prelude::any::<[u8; 4]>(), 0u8..=32, 0u32..4, proptest::prelude::any::<bool>()), 1..120),
            probes in proptest::collection::vec(proptest::prelude::any::<[u8; 4]>(), 64),
        ) {
            let mut t = Trie::<4>::default();
            let mut reference: Vec<([u8; 4], u8, HopId)> = Vec::new();
            // Narrow the addresses so that prefixes overlap: 10.x.y.z with few x.
            for (mut a, len, hop, remove) in ops {
                a[0] = 10;
                a[1] &= 3;
                let m = if len == 0 { 0 } else { u32::MAX << (32 - u32::from(len)) };
                let a = (u32::from_be_bytes(a) & m).to_be_bytes();
                reference.retain(|(p, l, _)| !(*p == a && *l == len));
                if remove {
                    t.remove(&a, len);
                } else {
                    t.insert(&a, len, hop + 1);
                    reference.push((a, len, hop + 1));
                }
            }
            proptest::prop_assert_eq!(t.len(), reference.len());
            for mut p in probes.into_iter().chain(reference.iter().map(|r| r.0)) {
                p[0] = 10;
                p[1] &= 3;
                proptest::prop_assert_eq!(t.lookup(&p), linear(&reference, p), "{:?}", p);
            }
        }
    }
}
