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
pub(super) const RUNS: usize = 4;

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
/// Everything a lookup reads is in the first cache line.
#[repr(C, align(64))]
pub(super) struct Sparse {
    /// Bit `i` says entry `i` starts a run (bit 0 always does); the run's hop is
    /// `hops[rank(starts, i) - 1]`.
    pub starts: [u64; 4],
    pub hops: [HopId; RUNS],
    /// Entry `kid_at`'s next level, if any.
    pub kid: Option<Kid>,
    /// `before[w]`: the bits set in the words of `starts` before word `w`.
    pub before: [u8; 4],
    pub kid_at: u8,
    /// Each run's prefix length (0: none), for edits.
    pub lens: [u8; RUNS],
    refs: AtomicUsize,
    pub prefixes: Vec<Prefix>,
}

/// A chunk of 256 entries, read one entry per lookup.
#[repr(C, align(64))]
pub(super) struct Plain {
    refs: AtomicUsize,
    pub prefixes: Vec<Prefix>,
    pub entries: [Entry; 256],
}

const _: () = assert!(std::mem::size_of::<Entry>() == 16, "an entry is a quarter of a cache line");
const _: () = assert!(std::mem::offset_of!(Sparse, kid_at) < 64, "a sparse lookup reads one line");
const _: () = assert!(std::mem::size_of::<Sparse>() == 128);
const _: () = assert!(std::mem::offset_of!(Plain, entries) % 16 == 0, "no entry spans two lines");

/// The number of bits set in `bits` at positions `0..=i`, `before[w]` being the number set in the words
/// before word `w`.
#[inline(always)]
fn rank(bits: &[u64; 4], before: &[u8; 4], i: u8) -> usize {
    let w = usize::from(i >> 6);
    usize::from(before[w]) + (bits[w] & (u64::MAX >> (63 - (i & 63)))).count_ones() as usize
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
            starts: [1, 0, 0, 0],
            hops: [0; RUNS],
            kid: None,
            before: [0, 1, 1, 1],
            kid_at: 0,
            lens: [0; RUNS],
            refs: AtomicUsize::new(1),
            prefixes: Vec::new(),
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

    pub fn node(&self) -> Node<'_> {
        // A Kid's address is not null.
        Node { bits: NonZeroUsize::new(self.0.as_ptr() as usize).expect("not null"), life: PhantomData }
    }

    pub fn is_plain(&self) -> bool {
        self.node().is_plain()
    }

    fn refs(&self) -> &AtomicUsize {
        match self.node().plain() {
            Some(p) => &p.refs,
            None => &self.node().sparse().expect("not plain").refs,
        }
    }

    /// Makes this the only reference to its chunk, copying the chunk if it is shared (the copy shares
    /// the chunk's next levels).
    fn unique(&mut self) {
        if self.refs().load(Ordering::Acquire) == 1 {
            return;
        }
        let copy = match (self.node().plain(), self.node().sparse()) {
            (Some(p), _) => Kid::plain(Plain {
                refs: AtomicUsize::new(1),
                prefixes: p.prefixes.clone(),
                entries: p.entries.clone(),
            }),
            (None, Some(s)) => Kid::sparse(Sparse {
                refs: AtomicUsize::new(1),
                prefixes: s.prefixes.clone(),
                kid: s.kid.clone(),
                ..*s
            }),
            (None, None) => unreachable!("a chunk is plain or sparse"),
        };
        *self = copy;
    }

    /// Entry `b`'s next level, for an edit below it: this chunk is made the only reference to itself
    /// first (copied if shared).
    pub fn kid_mut(&mut self, b: u8) -> Option<&mut Kid> {
        self.unique();
        let at = self.0.as_ptr().wrapping_sub(self.0.as_ptr() as usize & PLAIN);
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

    /// Edits the chunk's entries and prefixes with `f`, copying the chunk first if it is shared, then
    /// stores it sparse if it can be and plain if not. Returns `f`'s result and whether the chunk was
    /// plain before and is now.
    pub fn edit<R>(&mut self, f: impl FnOnce(&mut [Entry; 256], &mut Vec<Prefix>) -> R) -> (R, (bool, bool)) {
        self.unique();
        let was = self.is_plain();
        let at = self.0.as_ptr().wrapping_sub(self.0.as_ptr() as usize & PLAIN);
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
        let mut run = 0;
        for (i, e) in entries.iter_mut().enumerate() {
            run += (s.starts[i >> 6] >> (i & 63) & 1) as usize;
            (e.hop, e.len) = (s.hops[run - 1], s.lens[run - 1]);
        }
        entries[usize::from(s.kid_at)].next = s.kid.take();
        let r = f(&mut entries, &mut s.prefixes);
        match compress(&mut entries) {
            Some(c) => {
                let prefixes = std::mem::take(&mut s.prefixes);
                *s = Sparse { prefixes, refs: AtomicUsize::new(1), ..c };
            }
            None => {
                let prefixes = std::mem::take(&mut s.prefixes);
                *self = Kid::plain(Plain { refs: AtomicUsize::new(1), prefixes, entries });
            }
        }
        (r, (false, self.is_plain()))
    }
}

/// The sparse form of `entries` (their one next level moved into it; refs and prefixes left for the
/// caller), if they have at most one next level and at most [`RUNS`] runs.
fn compress(entries: &mut [Entry; 256]) -> Option<Sparse> {
    let mut starts = [0u64; 4];
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
            starts[i >> 6] |= 1 << (i & 63);
            (hops[runs], lens[runs]) = (e.hop, e.len);
            runs += 1;
        }
    }
    let mut before = [0u8; 4];
    for w in 1..4 {
        before[w] = before[w - 1] + starts[w - 1].count_ones() as u8;
    }
    Some(Sparse {
        starts,
        hops,
        kid: kid.and_then(|i| entries[i].next.take()),
        before,
        kid_at: kid.unwrap_or(0) as u8,
        lens,
        refs: AtomicUsize::new(1),
        prefixes: Vec::new(),
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
        let at = self.0.as_ptr().wrapping_sub(self.0.as_ptr() as usize & PLAIN);
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

impl<'a> Node<'a> {
    #[inline(always)]
    pub fn is_plain(self) -> bool {
        self.bits.get() & PLAIN != 0
    }

    #[inline(always)]
    pub fn plain(self) -> Option<&'a Plain> {
        // SAFETY: a plain Kid's address less its tag is a live Plain chunk, kept alive and unchanged
        // (shared or borrowed) for 'a by the Kid this Node was copied from.
        self.is_plain().then(|| unsafe { &*((self.bits.get() - PLAIN) as *const Plain) })
    }

    #[inline(always)]
    pub fn sparse(self) -> Option<&'a Sparse> {
        // SAFETY: as for `plain`, untagged.
        (!self.is_plain()).then(|| unsafe { &*(self.bits.get() as *const Sparse) })
    }

    /// Entry `b`: its hop (0: none) and its next-level chunk.
    #[inline(always)]
    pub fn step(self, b: u8) -> (HopId, Option<Node<'a>>) {
        if self.is_plain() {
            // SAFETY: as in `plain`.
            let p = unsafe { &*((self.bits.get() - PLAIN) as *const Plain) };
            let e = &p.entries[usize::from(b)];
            (e.hop, e.next.as_ref().map(Kid::node))
        } else {
            // SAFETY: as in `plain`.
            let s = unsafe { &*(self.bits.get() as *const Sparse) };
            let hop = s.hops[rank(&s.starts, &s.before, b) - 1];
            (hop, if s.kid_at == b { s.kid.as_ref().map(Kid::node) } else { None })
        }
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

    /// Entry `b`'s next-level chunk.
    pub fn kid(self, b: u8) -> Option<Node<'a>> {
        self.step(b).1
    }

    pub fn prefixes(self) -> &'a [Prefix] {
        match (self.plain(), self.sparse()) {
            (Some(p), _) => &p.prefixes,
            (None, Some(s)) => &s.prefixes,
            (None, None) => unreachable!("a chunk is plain or sparse"),
        }
    }

    /// Neither a prefix nor a next level.
    pub fn is_empty(self) -> bool {
        self.prefixes().is_empty()
            && match (self.plain(), self.sparse()) {
                (Some(p), _) => p.entries.iter().all(|e| e.next.is_none()),
                (None, Some(s)) => s.kid.is_none(),
                (None, None) => unreachable!("a chunk is plain or sparse"),
            }
    }

    /// Whether two nodes are the same chunk.
    #[cfg(test)]
    pub fn same(self, other: Node<'_>) -> bool {
        self.bits == other.bits
    }
}

impl Sparse {
    pub fn size() -> usize {
        std::mem::size_of::<Sparse>()
    }
}

impl Plain {
    pub fn size() -> usize {
        std::mem::size_of::<Plain>()
    }
}
