//! Longest-prefix match in a time that does not grow with the number of prefixes: a multibit trie of
//! 8-bit strides over the address's bytes (IPv4: at most 4 steps; IPv6: at most 16), each step one
//! 256-entry chunk indexed by one byte of the address; sparse chunks are stored compressed.
//!
//! Why this structure, and not the others the field uses:
//! - DPDK's `rte_lpm` (DIR-24-8) answers most IPv4 lookups in one memory read, but its first table is
//!   2^24 entries (64 MiB) per table, and a node holds one table per router: too much for a cloud node
//!   with tens of routers, and it cannot be shared between two published snapshots, so a route change
//!   would have to write into the table the workers are reading (as `rte_lpm` does, with its own
//!   ordering rules) or copy it. `rte_lpm6` has the same shape.
//! - Poptrie and DXR compress best, but are built for a table that is rebuilt, not edited: a route
//!   change recomputes a whole subtree or the whole table. This trie takes their idea of storing a sparse
//!   level as its runs of equal entries (below), not their strides and contiguous arrays, so that it
//!   stays editable chunk by chunk. (Tried here: every chunk as poptrie-style bitmaps, with next levels
//!   behind a pointer array or side by side; both read more cache lines per step and were slower.)
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
//! A chunk is plain (256 entries of 16 bytes inline: hop, length, next level) or, when it has at most one
//! next level and at most 6 runs of entries with the same prefix, sparse: where its runs start, their
//! hops and the pointer to its one next level, all in one cache line (an entry's run is the number of
//! starts at or below it: one SSE2 compare of eight). Most chunks of a large table are sparse: the last
//! level under a /24 holding one /28 is 3 runs; the chain of chunks down to an IPv6 /64 has one next
//! level each. 100,000 routes of mixed lengths take 12.7 MB instead of 320 MB with plain chunks only
//! (IPv6: 54 MB instead of 1.4 GB). So every step of a lookup reads one cache line: the sparse chunk's
//! first, or the plain chunk's entry.
//!
//! Path compression. A chunk with no prefix and one next level (a pass-through: every chunk of the chain
//! from a /64 down to an IPv6 host route, and the top of a table whose prefixes share their first bytes)
//! only tells a lookup "go on if the byte is this one". A sparse chunk whose next level starts a chain of
//! them keeps, in its lookup line, the bytes of up to 8 of them and a pointer past them: the lookup
//! compares those bytes of the address at once and jumps, or stops if they differ (a pass-through holds
//! no prefix, so nothing below it can match). The chunks stay in the trie as they are, for edits; an
//! edit resets the shortcuts of the chunks on its path, the only ones whose chains it can change
//! (`Kid::relink`). An IPv6 host route under a /64 takes 3 reads instead of 9.
//!
//! What a lookup in a large table waits for is memory, and three choices keep it short (`chunk.rs`,
//! `heap.rs`): a reference to a chunk says in its low bit whether the chunk is plain or sparse, so the
//! line the next step reads is known before the chunk is; batched lookups prefetch that line and go on
//! with the other addresses while it comes ([`Trie::lookup_batch`]); and chunks live in 2 MiB huge pages,
//! so that steps do not also miss the TLB. At 100,000 IPv4 routes, a batched lookup takes 24 ns instead
//! of 120 ns with chunks behind `Arc`s and `Box`es from the global heap (`lpm_lookup`,
//! `benches/RESULTS.md`).
//!
//! The prefixes a chunk's level holds are listed in the chunk itself, so that removing one finds the
//! next best without a table of every prefix; a chunk left with neither prefix nor next level is freed.
//!
//! Thread-safety: a [`Trie`] is a plain value. Clone it (the root's reference count) and edit the clone
//! while readers keep using the original; `&Trie` is `Sync` and a lookup allocates nothing and locks
//! nothing. Edits and drops allocate and free chunks under the heap's lock (`heap.rs`).

mod chunk;
pub mod heap;

use chunk::{Kid, Node, Plain, Prefix, Sparse};

/// A next hop's number in the trie: whatever the owner numbers its next hops by. 0 is "no route".
pub type HopId = u32;

/// The longest prefix of a chunk's level (its `prefixes`; length in `level_start + 1 ..= level_start +
/// 8`) covering byte `b`, shorter than `below` bits: (hop, length), or (0, 0).
fn best_covering(prefixes: &[Prefix], b: u8, below: u8, level_start: u8) -> (HopId, u8) {
    prefixes
        .iter()
        .filter(|&&(base, len, _)| len < below && b & mask8(len - level_start) == base)
        .max_by_key(|&&(_, len, _)| len)
        .map_or((0, 0), |&(_, len, hop)| (hop, len))
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
    root: Kid,
    /// How many prefixes the trie holds.
    len: usize,
    /// How many chunks it holds, the root included, and how many of them are plain (kept as they come
    /// and go: [`Trie::chunks`], [`Trie::bytes`]).
    chunks: usize,
    plain: usize,
}

impl<const N: usize> std::fmt::Debug for Trie<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Trie {{ prefixes: {}, chunks: {}, bytes: {} }}", self.len, self.chunks, self.bytes())
    }
}

impl<const N: usize> Default for Trie<N> {
    fn default() -> Self {
        Trie { default: 0, root: Kid::empty(), len: 0, chunks: 1, plain: 0 }
    }
}

impl<const N: usize> Trie<N> {
    /// The hop of the longest prefix holding `addr`; 0 if none does.
    #[inline]
    pub fn lookup(&self, addr: &[u8; N]) -> HopId {
        let mut best = self.default;
        let (mut c, mut level) = (self.root.node(), 0);
        while level < N {
            let (hop, next) = c.step(addr, level);
            if hop != 0 {
                best = hop;
            }
            match next {
                Some((n, l)) => (c, level) = (n, l),
                None => break,
            }
        }
        best
    }

    /// [`Trie::lookup`] of up to 64 addresses at once, a step of each in turn: each step, as soon as it
    /// knows the next chunk, prefetches the line the address's next step will read there (a reference
    /// says whether its chunk is plain or sparse, so that line is known before the chunk is read), and
    /// the other addresses' steps run while it arrives. One address at a time, a large table's cache
    /// misses come one after the other. `out[i]` gets the answer for `addrs[i]`.
    pub fn lookup_batch(&self, addrs: &[[u8; N]], out: &mut [HopId]) {
        let n = addrs.len().min(out.len()).min(64);
        let (addrs, out) = (&addrs[..n], &mut out[..n]);
        let mut at: [Node<'_>; 64] = [self.root.node(); 64];
        let mut levels = [0u8; 64];
        out.fill(self.default);
        let mut live: u64 = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
        while live != 0 {
            let mut next = 0u64;
            let mut bits = live;
            while bits != 0 {
                let i = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let (hop, kid) = at[i].step(&addrs[i], usize::from(levels[i]));
                if hop != 0 {
                    out[i] = hop;
                }
                // A chunk sits at a level below N: the filter only spares the index its check.
                if let Some((k, l)) = kid.filter(|&(_, l)| l < N) {
                    k.prefetch(addrs[i][l]);
                    (at[i], levels[i]) = (k, l as u8);
                    next |= 1 << i;
                }
            }
            live = next;
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
        let mut c = &mut self.root;
        for &b in &addr[..level] {
            if c.node().child(b).is_none() {
                let ((), change) = c.edit(|e, _| e[usize::from(b)].next = Some(Kid::empty()));
                count(&mut self.plain, change);
                self.chunks += 1;
            }
            c = c.kid_mut(b).expect("made above");
        }
        let base = addr[level] & mask8(len - start);
        let span = 1usize << (start + 8 - len);
        let (added, change) = c.edit(|e, prefixes| {
            for e in &mut e[base as usize..base as usize + span] {
                if e.len <= len {
                    (e.hop, e.len) = (hop, len);
                }
            }
            match prefixes.iter_mut().find(|p| p.0 == base && p.1 == len) {
                Some(p) => {
                    p.2 = hop;
                    false
                }
                None => {
                    prefixes.push((base, len, hop));
                    true
                }
            }
        });
        self.len += usize::from(added);
        count(&mut self.plain, change);
        relink_path(&mut self.root, &addr[..level]);
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
        remove_at(&mut self.root, addr, len, level, 0, &mut gone);
        relink_path(&mut self.root, &addr[..level]);
        self.chunks -= gone.chunks;
        self.plain = self.plain + gone.plain_now - gone.plain_was;
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
        let mut c = self.root.node();
        for &b in &addr[..level] {
            c = c.child(b)?;
        }
        let base = addr[level] & mask8(len - 8 * level as u8);
        c.prefixes().iter().find(|p| p.0 == base && p.1 == len).map(|p| p.2)
    }

    /// How many chunks the trie holds.
    pub fn chunks(&self) -> usize {
        self.chunks
    }

    /// About how many bytes the trie takes: its chunks and their prefix lists (allocator overhead aside;
    /// the heap's regions, [`heap::reserved`], hold every trie's chunks and the free ones).
    pub fn bytes(&self) -> usize {
        (self.chunks - self.plain) * std::mem::size_of::<Sparse>()
            + self.plain * std::mem::size_of::<Plain>()
            + self.len * std::mem::size_of::<Prefix>()
    }
}

/// Resets the shortcuts of the chunks on the path `path` leads down from `c` (as far as it goes), from
/// the bottom up: after an edit of that path, before the trie is read ([`Kid::relink`]).
fn relink_path(c: &mut Kid, path: &[u8]) {
    if let Some((&b, rest)) = path.split_first() {
        if let Some(k) = c.kid_mut(b) {
            relink_path(k, rest);
        }
    }
    c.relink();
}

/// Keeps a count of plain chunks as one turns plain or sparse.
fn count(plain: &mut usize, (was, now): (bool, bool)) {
    *plain = *plain + usize::from(now) - usize::from(was);
}

/// What a removal changed: chunks freed, plain chunks before and after among those it edited.
#[derive(Default)]
struct Gone {
    chunks: usize,
    plain_was: usize,
    plain_now: usize,
}

impl Gone {
    fn count(&mut self, (was, now): (bool, bool)) {
        self.plain_was += usize::from(was);
        self.plain_now += usize::from(now);
    }
}

/// Removes `addr/len` from the chunk at `depth` on its path (which holds it); frees the chunks below
/// left empty, counting them in `gone`. Returns whether `c` itself is now empty.
fn remove_at(c: &mut Kid, addr: &[u8], len: u8, level: usize, depth: usize, gone: &mut Gone) -> bool {
    if depth < level {
        let b = addr[depth];
        let child = c.kid_mut(b).expect("get found the path");
        if !remove_at(child, addr, len, level, depth + 1, gone) {
            // The child changed in place (its reference too, if it turned plain or sparse): this chunk's
            // entries did not.
            return false;
        }
        gone.count((child.is_plain(), false));
        gone.chunks += 1;
        let ((), change) = c.edit(|e, _| e[usize::from(b)].next = None);
        gone.count(change);
    } else {
        let start = 8 * level as u8;
        let base = addr[level] & mask8(len - start);
        let span = 1usize << (start + 8 - len);
        let ((), change) = c.edit(|e, prefixes| {
            prefixes.retain(|p| !(p.0 == base && p.1 == len));
            let (hop, plen) = best_covering(prefixes, base, len, start);
            for e in &mut e[base as usize..base as usize + span] {
                if e.len == len {
                    (e.hop, e.len) = (hop, plen);
                }
            }
        });
        gone.count(change);
    }
    c.node().is_empty()
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

    /// The chunks under `c`, itself included, and how many of them are plain.
    fn walk(c: Node<'_>) -> (usize, usize) {
        let own = (1, usize::from(c.is_plain()));
        (0..=255u8).filter_map(|i| c.child(i)).map(walk).fold(own, |s, k| (s.0 + k.0, s.1 + k.1))
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
        let (a, b) = (published.root.node().child(10).unwrap(), t.root.node().child(10).unwrap());
        let shared = (0..=255u8).filter(|&i| match (a.child(i), b.child(i)) {
            (Some(x), Some(y)) => x.same(y),
            _ => false,
        });
        assert_eq!(shared.count(), 254);
        assert_eq!(t.chunks(), 1 + 1 + 255);
        assert_eq!(walk(t.root.node()), (t.chunks(), t.plain));
    }

    #[test]
    fn a_chunk_with_few_runs_and_one_next_level_is_stored_compressed() {
        let mut t = Trie::<4>::default();
        let at = |t: &Trie<4>, path: &[u8]| path.iter().fold(t.root.node(), |c, &b| c.child(b).unwrap()).is_plain();
        let leaf = |t: &Trie<4>| at(t, &[10, 0, 0]);
        t.insert(&[10, 0, 0, 16], 28, 7);
        let c = t.root.node().child(10).unwrap().child(0).unwrap().child(0).unwrap().sparse().unwrap();
        assert_eq!((c.hops, c.lens), ([0, 7, 0, 0, 0, 0], [0, 28, 0, 0, 0, 0]));
        assert_eq!(c.bounds, [16, 32, 256, 256, 256, 256, 256, 256]);
        assert_eq!((t.lookup(&[10, 0, 0, 15]), t.lookup(&[10, 0, 0, 16]), t.lookup(&[10, 0, 0, 31])), (0, 7, 7));
        assert_eq!(t.lookup(&[10, 0, 0, 32]), 0);
        assert_eq!(t.plain, 0, "the root and the chunks on the way have one next level each");
        // Another prefix beside it: 4 runs, a third: 6 runs, still compressed; a fourth: 8 runs, plain.
        t.insert(&[10, 0, 0, 32], 28, 8);
        t.insert(&[10, 0, 0, 200], 32, 9);
        assert!(!leaf(&t));
        t.insert(&[10, 0, 0, 220], 32, 11);
        assert!(leaf(&t));
        assert_eq!((t.lookup(&[10, 0, 0, 220]), t.lookup(&[10, 0, 0, 221])), (11, 0));
        assert_eq!((t.lookup(&[10, 0, 0, 200]), t.lookup(&[10, 0, 0, 201]), t.lookup(&[10, 0, 0, 40])), (9, 0, 8));
        // A second next level makes the chunk above plain.
        t.insert(&[10, 0, 1, 0], 32, 10);
        assert!(at(&t, &[10, 0]));
        assert_eq!((t.lookup(&[10, 0, 1, 0]), t.lookup(&[10, 0, 0, 17])), (10, 7));
        t.remove(&[10, 0, 1, 0], 32);
        t.remove(&[10, 0, 0, 220], 32);
        assert!(!leaf(&t), "compressed again");
        t.remove(&[10, 0, 0, 200], 32);
        assert_eq!(t.plain, 0);
        t.remove(&[10, 0, 0, 16], 28);
        t.remove(&[10, 0, 0, 32], 28);
        assert_eq!((t.chunks(), t.plain), (1, 0));
        // A host route of IPv6: 16 chunks in a chain, none plain.
        let mut t = Trie::<16>::default();
        t.insert(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 128, 3);
        assert_eq!((t.chunks(), t.plain), (16, 0));
        assert!(t.bytes() < 16 * 256, "{}", t.bytes());
    }

    #[test]
    fn lookups_skip_chunks_that_hold_no_prefix_and_stop_where_an_address_leaves_them() {
        let mut t = Trie::<16>::default();
        let host = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        t.insert(&host, 128, 3);
        // The root skips the 8 chunks below its next level (the most a shortcut holds).
        let root = t.root.node().sparse().unwrap();
        assert_eq!((root.skip, root.kid_at), (8, 0x20));
        assert_eq!(t.lookup(&host), 3);
        for i in 1..16 {
            let mut off = host;
            off[i] ^= 0x40;
            assert_eq!(t.lookup(&off), 0, "byte {i} leaves the path");
        }
        // A prefix inside the chain ends a shortcut there; the lookups still find the longest prefix.
        t.insert(&host, 48, 4);
        t.insert(&[0x20, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 16, 5);
        let mut off = host;
        off[10] = 9;
        assert_eq!((t.lookup(&host), t.lookup(&off)), (3, 4));
        off[5] = 9;
        assert_eq!(t.lookup(&off), 5);
        let mut out = [0; 3];
        t.lookup_batch(&[host, off, [0; 16]], &mut out);
        assert_eq!(out, [3, 5, 0]);
        // A clone keeps its shortcuts while the original is edited along them.
        let before = t.clone();
        assert!(t.remove(&host, 48));
        off[5] = 0;
        assert_eq!((before.lookup(&off), t.lookup(&off)), (4, 5));
        assert!(t.remove(&host, 128));
        assert_eq!((before.lookup(&host), t.lookup(&host)), (3, 5));
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

    /// The reference for IPv6: every prefix, scanned.
    fn linear6(prefixes: &[(u128, u8, HopId)], a: u128) -> HopId {
        prefixes
            .iter()
            .filter(|(p, l, _)| *l == 0 || (a ^ p) >> (128 - u32::from(*l)) == 0)
            .max_by_key(|(_, l, _)| *l)
            .map_or(0, |p| p.2)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 200, ..Default::default() })]
        /// IPv6, where long chains of chunks with no prefix are skipped: addresses of few distinct bytes
        /// (so that prefixes share paths and leave them at every level), random edits, then probes on,
        /// beside and off the prefixes' paths, one at a time and in batches.
        #[test]
        fn ipv6_equals_a_linear_scan(
            ops in proptest::collection::vec((proptest::collection::vec(0u8..3, 16), 0u8..=128, 0u32..4, proptest::prelude::any::<bool>()), 1..60),
            flips in proptest::collection::vec((0usize..16, 0u8..3), 64),
        ) {
            let mut t = Trie::<16>::default();
            let mut reference: Vec<(u128, u8, HopId)> = Vec::new();
            for (bytes, len, hop, remove) in ops {
                let a: [u8; 16] = std::array::from_fn(|i| [0, 1, 0xff][usize::from(bytes[i])]);
                let m = if len == 0 { 0 } else { u128::MAX << (128 - u32::from(len)) };
                let a = u128::from_be_bytes(a) & m;
                reference.retain(|(p, l, _)| !(*p == a && *l == len));
                if remove {
                    t.remove(&a.to_be_bytes(), len);
                } else {
                    t.insert(&a.to_be_bytes(), len, hop + 1);
                    reference.push((a, len, hop + 1));
                }
            }
            proptest::prop_assert_eq!(t.len(), reference.len());
            proptest::prop_assert_eq!(walk(t.root.node()), (t.chunks(), t.plain), "chunk counts kept");
            let probes: Vec<[u8; 16]> = reference
                .iter()
                .zip(flips.iter().cycle())
                .flat_map(|(r, &(at, v))| {
                    let mut off = r.0.to_be_bytes();
                    off[at] = [0, 1, 0xff][usize::from(v)];
                    [r.0.to_be_bytes(), off]
                })
                .collect();
            for p in &probes {
                proptest::prop_assert_eq!(t.lookup(p), linear6(&reference, u128::from_be_bytes(*p)), "{:?}", p);
            }
            let mut out = [0; 64];
            for batch in probes.chunks(64) {
                t.lookup_batch(batch, &mut out);
                for (p, o) in batch.iter().zip(out) {
                    proptest::prop_assert_eq!(o, t.lookup(p));
                }
            }
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
            proptest::prop_assert_eq!(walk(t.root.node()), (t.chunks(), t.plain), "chunk counts kept");
            let probes: Vec<[u8; 4]> = probes.into_iter().chain(reference.iter().map(|r| r.0)).map(|mut p| {
                p[0] = 10;
                p[1] &= 3;
                p
            }).collect();
            for &p in &probes {
                proptest::prop_assert_eq!(t.lookup(&p), linear(&reference, p), "{:?}", p);
            }
            let mut out = [0; 64];
            for batch in probes.chunks(64) {
                t.lookup_batch(batch, &mut out);
                for (p, o) in batch.iter().zip(out) {
                    proptest::prop_assert_eq!(o, t.lookup(p));
                }
            }
        }
    }
}
