//! Longest-prefix match in a time that does not grow with the number of prefixes: a multibit trie of
//! 8-bit strides over the address's bytes (IPv4: at most 4 steps; IPv6: at most 16), each step one
//! 256-entry chunk indexed by one byte of the address.
//!
//! Why this structure, and not the others the field uses:
//! - DPDK's `rte_lpm` (DIR-24-8) answers most IPv4 lookups in one memory read, but its first table is
//!   2^24 entries (64 MiB) per table, and a node holds one table per router: too much for a cloud node
//!   with tens of routers, and it cannot be shared between two published snapshots, so a route change
//!   would have to write into the table the workers are reading (as `rte_lpm` does, with its own
//!   ordering rules) or copy it. `rte_lpm6` has the same shape.
//! - Poptrie and DXR compress better and read less, but are built for a table that is rebuilt, not
//!   edited: a route change recomputes a whole subtree or the whole table.
//! - A trie of 256-entry chunks is edited by path copying: a snapshot the workers hold is never written,
//!   and a route change copies at most the chunks on its path (4 of 4 KiB for IPv4), whatever the table
//!   holds; every other chunk is shared, by reference count, between the old and the new snapshot. Its
//!   memory grows with the prefixes' spread, not with a fixed 2^24.
//!
//! Each entry of a chunk holds the best prefix of that chunk's level that covers it (a prefix whose
//! length ends inside the level is expanded over the entries it covers, the longest one winning) and a
//! pointer to the next level's chunk. A lookup walks down from the root, keeping the last prefix it met,
//! and stops at the first entry without a next level: a prefix found deeper is always longer. So a
//! shorter prefix is never copied into the chunks below it, and changing it touches one chunk.
//!
//! The prefixes a chunk's level holds are listed in the chunk itself, so that removing one finds the
//! next best without a table of every prefix; a chunk left with neither prefix nor child is freed.
//!
//! Thread-safety: a [`Trie`] is a plain value. Clone it (the root's reference count) and edit the clone
//! while readers keep using the original; `&Trie` is `Sync` and a lookup allocates nothing and locks
//! nothing.

use std::sync::Arc;

/// A next hop's number in the trie: whatever the owner numbers its next hops by. 0 is "no route".
pub type HopId = u32;

#[derive(Debug, Clone, Default)]
struct Entry {
    /// The best prefix of this level covering the entry: its hop (0: none) and its length.
    hop: HopId,
    len: u8,
    next: Option<Arc<Chunk>>,
}

/// One level's 256 entries, and the prefixes that end in this level (so that a removal finds the next
/// best one without a table of every prefix).
#[derive(Debug, Clone)]
struct Chunk {
    e: [Entry; 256],
    /// (first byte of the prefix at this level, masked; prefix length; hop).
    prefixes: Vec<(u8, u8, HopId)>,
}

impl Chunk {
    fn new() -> Chunk {
        Chunk { e: std::array::from_fn(|_| Entry::default()), prefixes: Vec::new() }
    }

    fn is_empty(&self) -> bool {
        self.prefixes.is_empty() && self.e.iter().all(|e| e.next.is_none())
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
    /// How many chunks it holds, the root included (kept as they come and go: [`Trie::chunks`]).
    chunks: usize,
}

impl<const N: usize> std::fmt::Debug for Trie<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Trie {{ prefixes: {}, chunks: {} }}", self.len, self.chunks())
    }
}

impl<const N: usize> Default for Trie<N> {
    fn default() -> Self {
        Trie { default: 0, root: Arc::new(Chunk::new()), len: 0, chunks: 1 }
    }
}

impl<const N: usize> Trie<N> {
    /// The hop of the longest prefix holding `addr`; 0 if none does.
    #[inline]
    pub fn lookup(&self, addr: &[u8; N]) -> HopId {
        let mut best = self.default;
        let mut c: &Chunk = &self.root;
        for &b in addr {
            let e = &c.e[b as usize];
            if e.hop != 0 {
                best = e.hop;
            }
            match &e.next {
                Some(n) => c = n,
                None => break,
            }
        }
        best
    }

    /// [`Trie::lookup`] of up to 64 addresses at once, level by level: the loads of one level are
    /// independent of each other, so their cache misses overlap (a trie of 100,000 routes does not fit in
    /// a cache; one address at a time, its misses come one after the other). `out[i]` gets the answer
    /// for `addrs[i]`.
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
                let e = &at[i].e[addrs[i][level] as usize];
                if e.hop != 0 {
                    out[i] = e.hop;
                }
                if let Some(c) = &e.next {
                    at[i] = c;
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
            let slot = &mut c.e[b as usize].next;
            if slot.is_none() {
                self.chunks += 1;
            }
            c = Arc::make_mut(slot.get_or_insert_with(|| Arc::new(Chunk::new())));
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
        for e in &mut c.e[base as usize..base as usize + span] {
            if e.len <= len {
                e.hop = hop;
                e.len = len;
            }
        }
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
        let mut freed = 0;
        remove_at(Arc::make_mut(&mut self.root), addr, len, level, 0, &mut freed);
        self.chunks -= freed;
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
            c = c.e[b as usize].next.as_deref()?;
        }
        let base = addr[level] & mask8(len - 8 * level as u8);
        c.prefixes.iter().find(|p| p.0 == base && p.1 == len).map(|p| p.2)
    }

    /// How many chunks the trie holds (4 KiB each): its memory.
    pub fn chunks(&self) -> usize {
        self.chunks
    }
}

/// Removes `addr/len` from the chunk at `depth` on its path (which holds it); frees the chunks below
/// left empty, counting them in `freed`. Returns whether `c` itself is now empty.
fn remove_at(c: &mut Chunk, addr: &[u8], len: u8, level: usize, depth: usize, freed: &mut usize) -> bool {
    if depth < level {
        let slot = &mut c.e[addr[depth] as usize];
        let child = Arc::make_mut(slot.next.as_mut().expect("get found the path"));
        if remove_at(child, addr, len, level, depth + 1, freed) {
            slot.next = None;
            *freed += 1;
        }
        return c.is_empty();
    }
    let start = 8 * level as u8;
    let base = addr[level] & mask8(len - start);
    c.prefixes.retain(|p| !(p.0 == base && p.1 == len));
    let (hop, plen) = c.best_covering(base, len, start);
    let span = 1usize << (start + 8 - len);
    for e in &mut c.e[base as usize..base as usize + span] {
        if e.len == len {
            e.hop = hop;
            e.len = plen;
        }
    }
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
        let (a, b) = (&published.root.e[10], &t.root.e[10]);
        let (a, b) = (a.next.as_ref().unwrap(), b.next.as_ref().unwrap());
        let shared = (0..256).filter(|&i| match (&a.e[i].next, &b.e[i].next) {
            (Some(x), Some(y)) => Arc::ptr_eq(x, y),
            _ => false,
        });
        assert_eq!(shared.count(), 254);
        assert_eq!(t.chunks(), 1 + 1 + 255);
        fn count(c: &Chunk) -> usize {
            1 + c.e.iter().filter_map(|e| e.next.as_deref()).map(count).sum::<usize>()
        }
        assert_eq!(count(&t.root), t.chunks());
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
