//! The trie's chunks and the counted references between them (the layouts the `lpm` module doc
//! describes).
//!
//! A chunk is [`Sparse`] (one cache line for a lookup, one more for edits) or [`Plain`] (256 entries
//! inline). A reference to one, a [`Kid`], carries which of the two it is in its low bit, so that a
//! lookup knows before reading a chunk which line of it to read, and can prefetch exactly that line. A
//! `Kid` counts its references as an `Arc` does (`std`'s `Arc` can take neither the tag nor the trie's
//! own heap, `heap.rs`); [`Kid::edit`] copies a shared chunk before changing it (path copying).
//!
//! Thread-safety: a chunk is immutable while shared (more than one `Kid` to it): only a `&mut Kid`
//! holding the last reference edits it. Counts are atomic, as an `Arc`'s: clones Relaxed, the last drop
//! Release then Acquire. Chunks are read by any thread through `&Kid`/[`Node`].

use std::alloc::Layout;
use std::marker::PhantomData;
use std::num::NonZeroUsize;
use std::ptr::NonNull;
use std::sync::atomic::{fence, AtomicUsize, Ordering};

use super::{heap, HopId};

/// How many runs a chunk with at most one next level may have and still be sparse (its lookup line
/// holds them).
pub(super) const RUNS: usize = 6;

/// A prefix a chunk's level holds: (first byte of the prefix at this level, masked; length; hop).
pub(super) type Prefix = (u8, u8, HopId);

/// One entry of a chunk: the best prefix of the chunk's level covering it (hop 0: none; its length)
/// and its next-level chunk.
#[derive(Clone, Default)]
pub(super) struct Entry {
    pub hop: HopId,
    pub len: u8,
    pub next: Option<Kid>,
}

/// A chunk with at most one next level and at most [`RUNS`] runs of entries with the same prefix.
/// Everything a lookup reads is in the first cache line; the second holds what edits need.
#[repr(C, align(64))]
pub(super) struct Sparse {
    /// Where runs 1.. start, in order (256 from the last run on, and in the lanes past `RUNS - 1`):
    /// entry `b`'s run is the number of bounds `<= b`, eight compares in one SSE2 instruction.
    pub bounds: [u16; 8],
    /// Entry `kid_at` has the next level, if any.
    pub kid_at: u8,
    /// How many pass-through chunks below the next level a lookup skips (see `next`).
    pub skip: u8,
    /// Each run's hop.
    pub hops: [HopId; RUNS],
    /// Where a lookup through entry `kid_at` goes: the next level's chunk (a [`Kid`]'s address), or, when
    /// `skip` is not 0, the first chunk below the `skip` pass-through chunks under it (chunks with no
    /// prefix and one next level), which an address reaches only if its next `skip` bytes are `key`
    /// (path compression). 0 without a next level. Kept by [`Kid::relink`]; not an owner.
    next: usize,
    /// The bytes the skipped chunks lead through, the first in the highest byte used.
    key: u64,
    /// The next level (the owner of what `next` points to).
    pub kid: Option<Kid>,
    refs: AtomicUsize,
    pub prefixes: Vec<Prefix>,
    /// Each run's prefix length (0: none), for edits.
    pub lens: [u8; RUNS],
}

/// A chunk of 256 entries, read one entry per lookup.
#[repr(C, align(64))]
pub(super) struct Plain {
    refs: AtomicUsize,
    pub prefixes: Vec<Prefix>,
    pub entries: [Entry; 256],
}

const _: () = assert!(std::mem::size_of::<Entry>() == 16, "an entry is a quarter of a cache line");
const _: () = assert!(std::mem::offset_of!(Sparse, key) + 8 <= 64, "a sparse lookup reads one line");
const _: () = assert!(std::mem::size_of::<Sparse>() == 128);
const _: () = assert!(std::mem::offset_of!(Plain, entries) % 16 == 0, "no entry spans two lines");

/// Entry `b`'s run in a sparse chunk: how many of its run bounds are `<= b` (compares, no branch).
#[inline(always)]
fn run(bounds: &[u16; 8], b: u8) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_cmpgt_epi16, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi16};
        // SAFETY: SSE2 is part of x86_64; the load reads the 16 bytes of `bounds`. Bounds are at most
        // 256 and `b + 1` at most 256: the signed 16-bit compare is exact.
        unsafe {
            let gt = _mm_cmpgt_epi16(_mm_set1_epi16(i16::from(b) + 1), _mm_loadu_si128(bounds.as_ptr().cast()));
            // Two mask bits per 16-bit lane.
            (_mm_movemask_epi8(gt).count_ones() / 2) as usize
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        bounds.iter().map(|&x| usize::from(u16::from(b) >= x)).sum()
    }
}

/// `n` (1..=8) bytes of `addr` from byte `from`, the first in the highest byte used (`from + n <= N`).
#[inline(always)]
fn bytes<const N: usize>(addr: &[u8; N], from: usize, n: usize) -> u64 {
    let mut a = [0u8; 16];
    a[..N].copy_from_slice(addr);
    ((u128::from_be_bytes(a) << (8 * from)) >> (128 - 8 * n)) as u64
}

/// The tag of a plain chunk in a [`Kid`]'s address (chunks are aligned to 64).
const PLAIN: usize = 1;

/// An owned, counted reference to a chunk, plain or sparse (the low bit).
pub(super) struct Kid(NonNull<u8>);

// SAFETY: a Kid is a counted shared reference to a chunk that is immutable while shared; the count is
// atomic and the chunk's contents (integers, Vecs, Kids) are Send and Sync.
unsafe impl Send for Kid {}
// SAFETY: as above; `&Kid` gives only reads.
unsafe impl Sync for Kid {}

/// A borrowed reference to a chunk, for lookups: a copy of a [`Kid`]'s tagged address.
#[derive(Clone, Copy)]
pub(super) struct Node<'a> {
    bits: NonZeroUsize,
    life: PhantomData<&'a Kid>,
}

impl Kid {
    /// A new sparse chunk with no prefix and no next level.
    pub fn empty() -> Kid {
        Kid::sparse(Sparse {
            bounds: [256; 8],
            kid_at: 0,
            skip: 0,
            hops: [0; RUNS],
            next: 0,
            key: 0,
            kid: None,
            refs: AtomicUsize::new(1),
            prefixes: Vec::new(),
            lens: [0; RUNS],
        })
    }

    fn sparse(s: Sparse) -> Kid {
        let p = heap::alloc(Layout::new::<Sparse>());
        // SAFETY: a fresh block of Sparse's layout, written once before any use.
        unsafe { (p.as_ptr() as *mut Sparse).write(s) };
        Kid(p)
    }

    fn plain(p: Plain) -> Kid {
        let at = heap::alloc(Layout::new::<Plain>());
        // SAFETY: a fresh block of Plain's layout, written once before any use; the tagged address is
        // not null.
        unsafe {
            (at.as_ptr() as *mut Plain).write(p);
            Kid(NonNull::new_unchecked(at.as_ptr().wrapping_add(PLAIN)))
        }
    }

    #[inline(always)]
    pub fn node(&self) -> Node<'_> {
        Node { bits: self.0.addr(), life: PhantomData }
    }

    /// The chunk's address, untagged.
    fn chunk(&self) -> *mut u8 {
        self.0.as_ptr().wrapping_sub(self.0.as_ptr() as usize & PLAIN)
    }

    pub fn is_plain(&self) -> bool {
        self.node().is_plain()
    }

    fn refs(&self) -> &AtomicUsize {
        match self.node().view() {
            View::Plain(p) => &p.refs,
            View::Sparse(s) => &s.refs,
        }
    }

    /// Makes this the only reference to its chunk, copying the chunk if it is shared (the copy shares
    /// the chunk's next levels).
    fn unique(&mut self) {
        if self.refs().load(Ordering::Acquire) == 1 {
            return;
        }
        let copy = match self.node().view() {
            View::Plain(p) => Kid::plain(Plain {
                refs: AtomicUsize::new(1),
                prefixes: p.prefixes.clone(),
                entries: p.entries.clone(),
            }),
            View::Sparse(s) => Kid::sparse(Sparse {
                refs: AtomicUsize::new(1),
                prefixes: s.prefixes.clone(),
                kid: s.kid.clone(),
                ..*s
            }),
        };
        *self = copy;
    }

    /// Entry `b`'s next level, for an edit below it: this chunk is made the only reference to itself
    /// first (copied if shared).
    pub fn kid_mut(&mut self, b: u8) -> Option<&mut Kid> {
        self.unique();
        let at = self.chunk();
        if self.is_plain() {
            // SAFETY: this Kid is the only reference to the chunk (`unique`) and is borrowed mutably.
            let p = unsafe { &mut *(at as *mut Plain) };
            p.entries[usize::from(b)].next.as_mut()
        } else {
            // SAFETY: as above.
            let s = unsafe { &mut *(at as *mut Sparse) };
            if s.kid_at == b {
                s.kid.as_mut()
            } else {
                None
            }
        }
    }

    /// Sets a sparse chunk's lookup target (`Sparse::next`): its next level, or past the pass-through
    /// chunks below it (at most 8). Edits call it on every chunk of the path they changed, from the
    /// bottom up, before the trie is read again: a chunk's shortcut depends on its own descendants
    /// only, and every chunk whose descendants an edit changed is on that edit's path.
    pub fn relink(&mut self) {
        if self.is_plain() {
            return;
        }
        self.unique();
        // SAFETY: a sparse Kid's address is its chunk, of which this Kid is the only reference
        // (`unique`), borrowed mutably.
        let s = unsafe { &mut *(self.chunk() as *mut Sparse) };
        (s.next, s.skip, s.key) = (0, 0, 0);
        let Some(kid) = s.kid.as_ref() else { return };
        let mut to = kid.node();
        while s.skip < 8 {
            let Some((b, below)) = to.pass_through() else { break };
            s.key = s.key << 8 | u64::from(b);
            s.skip += 1;
            to = below;
        }
        s.next = to.bits.get();
    }

    /// Edits the chunk's entries and prefixes with `f`, copying the chunk first if it is shared, then
    /// stores it sparse if it can be and plain if not. Returns `f`'s result and whether the chunk was
    /// plain before and is now.
    pub fn edit<R>(&mut self, f: impl FnOnce(&mut [Entry; 256], &mut Vec<Prefix>) -> R) -> (R, (bool, bool)) {
        self.unique();
        let was = self.is_plain();
        let at = self.chunk();
        if was {
            // SAFETY: the only reference (`unique`), borrowed mutably.
            let p = unsafe { &mut *(at as *mut Plain) };
            let r = f(&mut p.entries, &mut p.prefixes);
            if let Some(mut s) = compress(&mut p.entries) {
                s.prefixes = std::mem::take(&mut p.prefixes);
                *self = Kid::sparse(s);
            }
            return (r, (true, self.is_plain()));
        }
        // SAFETY: as above.
        let s = unsafe { &mut *(at as *mut Sparse) };
        let mut entries: [Entry; 256] = std::array::from_fn(|_| Entry::default());
        for (i, e) in entries.iter_mut().enumerate() {
            let r = run(&s.bounds, i as u8);
            (e.hop, e.len) = (s.hops[r], s.lens[r]);
        }
        entries[usize::from(s.kid_at)].next = s.kid.take();
        let r = f(&mut entries, &mut s.prefixes);
        let prefixes = std::mem::take(&mut s.prefixes);
        match compress(&mut entries) {
            Some(c) => *s = Sparse { prefixes, refs: AtomicUsize::new(1), ..c },
            None => *self = Kid::plain(Plain { refs: AtomicUsize::new(1), prefixes, entries }),
        }
        (r, (false, self.is_plain()))
    }
}

/// The sparse form of `entries` (their one next level moved into it, no skip; refs and prefixes left for
/// the caller), if they have at most one next level and at most [`RUNS`] runs.
fn compress(entries: &mut [Entry; 256]) -> Option<Sparse> {
    let mut bounds = [256u16; 8];
    let (mut hops, mut lens) = ([0; RUNS], [0; RUNS]);
    let mut runs = 0;
    let mut kid = None;
    for (i, e) in entries.iter().enumerate() {
        if e.next.is_some() {
            if kid.is_some() {
                return None;
            }
            kid = Some(i);
        }
        if i == 0 || (e.hop, e.len) != (entries[i - 1].hop, entries[i - 1].len) {
            if runs == RUNS {
                return None;
            }
            if runs > 0 {
                bounds[runs - 1] = i as u16;
            }
            (hops[runs], lens[runs]) = (e.hop, e.len);
            runs += 1;
        }
    }
    let kid = kid.and_then(|i| Some((i as u8, entries[i].next.take()?)));
    Some(Sparse {
        bounds,
        kid_at: kid.as_ref().map_or(0, |k| k.0),
        skip: 0,
        hops,
        next: kid.as_ref().map_or(0, |k| k.1.node().bits.get()),
        key: 0,
        kid: kid.map(|k| k.1),
        refs: AtomicUsize::new(1),
        prefixes: Vec::new(),
        lens,
    })
}

impl Clone for Kid {
    fn clone(&self) -> Kid {
        // Relaxed, as `Arc::clone`: the new reference is made from an existing one.
        self.refs().fetch_add(1, Ordering::Relaxed);
        Kid(self.0)
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        if self.refs().fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        // Every other reference's uses happen before the chunk is freed (as `Arc`'s drop).
        fence(Ordering::Acquire);
        let at = self.chunk();
        // SAFETY: this was the last reference: nothing else reads the chunk; it was written by `sparse`
        // or `plain` with the layout given back here, and is dropped and freed once.
        unsafe {
            let block = NonNull::new_unchecked(at);
            if self.is_plain() {
                std::ptr::drop_in_place(at as *mut Plain);
                heap::free(block, Layout::new::<Plain>());
            } else {
                std::ptr::drop_in_place(at as *mut Sparse);
                heap::free(block, Layout::new::<Sparse>());
            }
        }
    }
}

/// A chunk, by kind.
pub(super) enum View<'a> {
    Plain(&'a Plain),
    Sparse(&'a Sparse),
}

impl<'a> Node<'a> {
    #[inline(always)]
    pub fn view(self) -> View<'a> {
        // SAFETY: a Kid's address less its tag is a live chunk of the kind the tag says, kept alive and
        // unchanged (shared or borrowed) for 'a by the Kid this Node was copied from.
        unsafe {
            if self.is_plain() {
                View::Plain(&*((self.bits.get() - PLAIN) as *const Plain))
            } else {
                View::Sparse(&*(self.bits.get() as *const Sparse))
            }
        }
    }

    #[inline(always)]
    pub fn is_plain(self) -> bool {
        self.bits.get() & PLAIN != 0
    }

    pub fn sparse(self) -> Option<&'a Sparse> {
        match self.view() {
            View::Sparse(s) => Some(s),
            View::Plain(_) => None,
        }
    }

    /// A lookup's step at `level`, where this chunk sits: entry `addr[level]`'s hop (0: none) and, if it
    /// leads further, the chunk to read next and its level (past the chunks a shortcut skips, if the
    /// address follows them).
    #[inline(always)]
    pub fn step<const N: usize>(self, addr: &[u8; N], level: usize) -> (HopId, Option<(Node<'a>, usize)>) {
        let b = addr[level];
        let s = match self.view() {
            View::Plain(p) => {
                let e = &p.entries[usize::from(b)];
                return (e.hop, e.next.as_ref().map(|k| (k.node(), level + 1)));
            }
            View::Sparse(s) => s,
        };
        let hop = s.hops[run(&s.bounds, b)];
        let Some(next) = NonZeroUsize::new(s.next).filter(|_| s.kid_at == b) else { return (hop, None) };
        let next = Node { bits: next, life: PhantomData };
        if s.skip == 0 {
            return (hop, Some((next, level + 1)));
        }
        // The skipped chunks sit at levels level + 1 ..= level + skip, and `next` one below: all < N.
        let n = usize::from(s.skip);
        if bytes(addr, level + 1, n) != s.key {
            // Off the skipped chunks' one path: they hold no prefix, nothing below matches.
            return (hop, None);
        }
        (hop, Some((next, level + 1 + n)))
    }

    /// Entry `b`'s next-level chunk (the trie as edits see it: no shortcut).
    pub fn child(self, b: u8) -> Option<Node<'a>> {
        match self.view() {
            View::Plain(p) => p.entries[usize::from(b)].next.as_ref().map(Kid::node),
            View::Sparse(s) => s.kid.as_ref().filter(|_| s.kid_at == b).map(Kid::node),
        }
    }

    /// A chunk with no prefix and one next level, which a lookup only passes through: its next level and
    /// the byte that leads there.
    fn pass_through(self) -> Option<(u8, Node<'a>)> {
        let s = self.sparse()?;
        if !s.prefixes.is_empty() {
            return None;
        }
        Some((s.kid_at, s.kid.as_ref()?.node()))
    }

    /// Asks the core to load the line that [`Node::step`] with `b` reads.
    #[inline(always)]
    pub fn prefetch(self, b: u8) {
        let line = if self.is_plain() {
            self.bits.get() - PLAIN + std::mem::offset_of!(Plain, entries) + 16 * usize::from(b)
        } else {
            self.bits.get()
        };
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch is a hint; it does not fault, and the address is inside a live chunk.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(line as *const i8)
        };
        #[cfg(not(target_arch = "x86_64"))]
        let _ = line;
    }

    pub fn prefixes(self) -> &'a [Prefix] {
        match self.view() {
            View::Plain(p) => &p.prefixes,
            View::Sparse(s) => &s.prefixes,
        }
    }

    /// Neither a prefix nor a next level.
    pub fn is_empty(self) -> bool {
        self.prefixes().is_empty()
            && match self.view() {
                View::Plain(p) => p.entries.iter().all(|e| e.next.is_none()),
                View::Sparse(s) => s.kid.is_none(),
            }
    }

    /// Whether two nodes are the same chunk.
    #[cfg(test)]
    pub fn same(self, other: Node<'_>) -> bool {
        self.bits == other.bits
    }
}
