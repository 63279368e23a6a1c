//! Lock-free publication of immutable table snapshots to the workers (quiescent-state-based reclamation).
//!
//! Protocol. One [`Publisher`] (the control thread) and N [`Reader`]s (one per worker) share:
//! - `current`: an atomic pointer to the live snapshot (a leaked `Box<T>`);
//! - `version`: a counter incremented after every swap;
//! - one `seen` slot per reader, on its own cache line.
//!
//! A worker, at each burst boundary (a quiescent point: it holds no reference into any snapshot), calls
//! [`Reader::enter`]: it loads `version` (Acquire), stores it into its `seen` slot (Release), then loads
//! `current` (Acquire) and uses that snapshot until its next `enter`. An idle or stopping worker calls
//! [`Reader::offline`] (`seen` = ∞) and holds no snapshot.
//!
//! The publisher [`Publisher::publish`]es a new snapshot with one `swap` of `current` (AcqRel) followed
//! by `version += 1` (Release, giving version V), and retires the old snapshot with the tag V. A retired
//! snapshot is freed by the publisher, never by a worker, once every reader's `seen` is ≥ V
//! ([`Publisher::reclaim`]). Why that is safe: a reader that stored `seen ≥ V` had loaded `version ≥ V`
//! with Acquire, which synchronises with the publisher's Release increment, which follows the swap; so
//! that reader's next load of `current` returns the new snapshot (or a newer one), and the only snapshot it
//! could have held from before is the one it dropped at that quiescent point. Readers never block and
//! never free; the publisher never waits on a reader (it retries `reclaim` later). One more case needs
//! care: a reader coming back from offline stores a finite `seen` and then loads `current`; a SeqCst fence
//! between the two on the reader, and one between the swap and the loads of `seen` on the publisher,
//! guarantee that either the reader gets the new snapshot or the publisher sees its `seen`.
//!
//! The end. When the publisher is dropped, a reader may still be using a snapshot it retired (a worker not
//! yet stopped, a start that failed half way): the publisher reclaims what it can one last time and hands
//! what is left to the shared state (`orphans`), which is freed with `current` by the last owner of that
//! state: the last of the publisher and the readers to be dropped. A reader is dropped after its last
//! `Snapshot` (it borrows the reader), so no snapshot in use is freed, and no snapshot is ever freed on a
//! burst: a worker frees the leftovers only if it outlives the publisher, once, when its reader is dropped.
//!
//! Thread-safety: `Publisher` is `Send` but not `Clone` (one writer); `Reader` is `Send`, one per thread.
//! `Snapshot<'_, T>` borrows the reader mutably, so it cannot outlive the next `enter`/`offline`.
//!
//! Checked two ways: a stress test (20,000 publications under three readers that verify every snapshot
//! they use), and a model check with loom over every interleaving of a reader and the publisher, the
//! publisher's drop included
//! (`RUSTFLAGS="--cfg loom" cargo test -p pipelines --lib --release publish::loom_model`, run by CI).

use std::marker::PhantomData;

#[cfg(loom)]
use loom::sync::{
    atomic::{fence, AtomicPtr, AtomicU64, Ordering},
    Arc, Mutex,
};
#[cfg(not(loom))]
use std::sync::{
    atomic::{fence, AtomicPtr, AtomicU64, Ordering},
    Arc, Mutex,
};

const OFFLINE: u64 = u64::MAX;

#[repr(align(64))]
struct Slot {
    seen: AtomicU64,
}

struct Shared<T> {
    current: AtomicPtr<T>,
    version: AtomicU64,
    slots: Box<[Slot]>,
    /// Retired snapshots a reader may still have used when the publisher was dropped; freed here, with
    /// the shared state, by its last owner. Touched twice: by the publisher's drop, and by this drop.
    orphans: Mutex<Vec<Box<T>>>,
}

impl<T> Drop for Shared<T> {
    fn drop(&mut self) {
        // The orphans (dropped with the fields, after this) are as dead as `current`: no reader is left.
        let p = self.current.load(Ordering::Acquire);
        if !p.is_null() {
            // SAFETY: the last owner of the shared state: no reader or publisher is left, and `current`
            // always holds a pointer leaked from a Box by `Publisher::new`/`publish`.
            drop(unsafe { Box::from_raw(p) });
        }
    }
}

// SAFETY: the raw pointer is only dereferenced as &T by readers (T: Sync) and freed by the one owner that
// retired it (T: Send).
unsafe impl<T: Send + Sync> Send for Shared<T> {}
// SAFETY: as above.
unsafe impl<T: Send + Sync> Sync for Shared<T> {}

/// The writer side: publishes snapshots and frees retired ones.
pub struct Publisher<T: Send + Sync> {
    shared: Arc<Shared<T>>,
    retired: Vec<(u64, Box<T>)>,
    readers_taken: usize,
}

/// One worker's side.
pub struct Reader<T: Send + Sync> {
    shared: Arc<Shared<T>>,
    slot: usize,
    _not_sync: PhantomData<std::cell::Cell<()>>,
}

/// The snapshot a reader uses until its next `enter`.
pub struct Snapshot<'r, T> {
    tables: &'r T,
}

impl<T> std::ops::Deref for Snapshot<'_, T> {
    type Target = T;
    #[inline(always)]
    fn deref(&self) -> &T {
        self.tables
    }
}

impl<T: Send + Sync> Publisher<T> {
    /// Starts with `initial` live and room for `readers` readers (all offline until they enter).
    pub fn new(initial: T, readers: usize) -> Publisher<T> {
        let shared = Arc::new(Shared {
            current: AtomicPtr::new(Box::into_raw(Box::new(initial))),
            version: AtomicU64::new(0),
            slots: (0..readers).map(|_| Slot { seen: AtomicU64::new(OFFLINE) }).collect(),
            orphans: Mutex::new(Vec::new()),
        });
        Publisher { shared, retired: Vec::new(), readers_taken: 0 }
    }

    /// The next reader handle; `None` once all `readers` are taken.
    pub fn reader(&mut self) -> Option<Reader<T>> {
        if self.readers_taken == self.shared.slots.len() {
            return None;
        }
        self.readers_taken += 1;
        Some(Reader { shared: self.shared.clone(), slot: self.readers_taken - 1, _not_sync: PhantomData })
    }

    /// Makes `next` the live snapshot (one atomic swap); the old one is retired, freed by a later
    /// `reclaim` once every reader has passed a quiescent point. Returns the new version.
    pub fn publish(&mut self, next: T) -> u64 {
        let new = Box::into_raw(Box::new(next));
        let old = self.shared.current.swap(new, Ordering::AcqRel);
        let v = self.shared.version.fetch_add(1, Ordering::AcqRel) + 1;
        // SAFETY: `old` was leaked from a Box by new/publish and is no longer reachable through `current`;
        // readers may still use it, so it is only kept here until `reclaim` proves they are done.
        self.retired.push((v, unsafe { Box::from_raw(old) }));
        self.reclaim();
        v
    }

    /// The live snapshot, as the publisher sees it (to build the next one from).
    pub fn current(&self) -> &T {
        // SAFETY: only the publisher (&self) swaps `current`, and it frees retired snapshots only, never
        // the live one; so the pointer is valid for the borrow of self.
        unsafe { &*self.shared.current.load(Ordering::Acquire) }
    }

    /// Frees the retired snapshots every reader is done with; returns how many are still waiting.
    pub fn reclaim(&mut self) -> usize {
        // Pairs with the fence in `Reader::enter` (see there); orders the swaps before the loads of `seen`.
        fence(Ordering::SeqCst);
        let min_seen = self.shared.slots.iter().map(|s| s.seen.load(Ordering::Acquire)).min().unwrap_or(OFFLINE);
        self.retired.retain(|(v, _)| *v > min_seen);
        self.retired.len()
    }

    /// Snapshots retired and not yet freed.
    pub fn pending(&self) -> usize {
        self.retired.len()
    }

    pub fn version(&self) -> u64 {
        self.shared.version.load(Ordering::Acquire)
    }
}

impl<T: Send + Sync> Drop for Publisher<T> {
    /// Frees the retired snapshots every reader is done with; the others may still be in use, so they go
    /// to the shared state, freed by its last owner (see "The end" above).
    fn drop(&mut self) {
        if self.reclaim() == 0 {
            return;
        }
        let mut orphans = self.shared.orphans.lock().unwrap_or_else(|e| e.into_inner());
        orphans.extend(self.retired.drain(..).map(|(_, snapshot)| snapshot));
    }
}

impl<T: Send + Sync> Reader<T> {
    /// A quiescent point: drops whatever snapshot was held and takes the live one. Call at every burst
    /// boundary; three atomic accesses, no lock, no allocation.
    #[inline(always)]
    pub fn enter(&mut self) -> Snapshot<'_, T> {
        let s = &*self.shared;
        let v = s.version.load(Ordering::Acquire);
        s.slots[self.slot].seen.store(v, Ordering::Release);
        // Store-load order, paired with the fence in `reclaim`: a reader coming back from offline (seen =
        // ∞) must not load `current` while the publisher still reads its stale ∞ and frees that snapshot.
        // With both fences, either this load sees the publisher's swap or the publisher sees this store.
        fence(Ordering::SeqCst);
        let p = s.current.load(Ordering::Acquire);
        // SAFETY: p was live after we announced version v; it is retired with a tag > v at the earliest,
        // and freed only once our `seen` passes that tag, which happens at our next enter/offline, after
        // the returned Snapshot (which borrows self mutably) is gone.
        let tables = unsafe { &*p };
        Snapshot { tables }
    }

    /// Leaves: holds no snapshot until the next `enter`, and blocks no reclamation meanwhile.
    #[inline]
    pub fn offline(&mut self) {
        self.shared.slots[self.slot].seen.store(OFFLINE, Ordering::Release);
    }
}

impl<T: Send + Sync> Drop for Reader<T> {
    fn drop(&mut self) {
        self.offline();
    }
}

#[cfg(all(test, loom))]
mod loom_model {
    use super::*;
    use loom::cell::UnsafeCell;

    /// A snapshot whose drop writes its memory: a reader still reading it after the publisher freed it
    /// is a data race, which loom reports.
    struct Probe(UnsafeCell<u64>);

    // SAFETY: readers only read the cell; the one write is in Drop, which loom checks against them.
    unsafe impl Sync for Probe {}

    impl Drop for Probe {
        fn drop(&mut self) {
            // SAFETY: loom's cell checks this write against every read it did not happen after.
            self.0.with_mut(|v| unsafe { *v = 0 });
        }
    }

    fn read(p: &Probe) -> u64 {
        // SAFETY: as above, checked by loom.
        p.0.with(|v| unsafe { *v })
    }

    /// A reader taking snapshots at two burst boundaries while the publisher swaps twice and reclaims.
    #[test]
    fn an_online_reader_never_uses_a_freed_snapshot() {
        loom::model(|| {
            let mut p = Publisher::new(Probe(UnsafeCell::new(1)), 1);
            let mut r = p.reader().unwrap();
            let _ = r.enter();
            let t = loom::thread::spawn(move || {
                for _ in 0..2 {
                    let s = r.enter();
                    assert_ne!(read(&s), 0);
                }
            });
            p.publish(Probe(UnsafeCell::new(2)));
            p.publish(Probe(UnsafeCell::new(3)));
            t.join().unwrap();
            assert_eq!(p.reclaim(), 0, "the reader left: nothing may stay retired");
        });
    }

    /// A reader coming back from offline while the publisher swaps and reclaims: the case the SeqCst
    /// fences in `enter` and `reclaim` are for.
    #[test]
    fn a_reader_coming_back_online_never_uses_a_freed_snapshot() {
        loom::model(|| {
            let mut p = Publisher::new(Probe(UnsafeCell::new(1)), 1);
            let mut r = p.reader().unwrap();
            let t = loom::thread::spawn(move || {
                let s = r.enter();
                assert_ne!(read(&s), 0);
            });
            p.publish(Probe(UnsafeCell::new(2)));
            t.join().unwrap();
        });
    }

    /// The publisher dropped (the control thread gone, or a start that failed) while a reader still uses
    /// the snapshot it retired: the snapshot must outlive the reader's use, whoever frees it.
    #[test]
    fn dropping_the_publisher_never_frees_a_snapshot_in_use() {
        loom::model(|| {
            let mut p = Publisher::new(Probe(UnsafeCell::new(1)), 1);
            let mut r = p.reader().unwrap();
            let t = loom::thread::spawn(move || {
                let s = r.enter();
                assert_ne!(read(&s), 0);
            });
            p.publish(Probe(UnsafeCell::new(2)));
            drop(p);
            t.join().unwrap();
        });
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    #[test]
    fn retired_snapshot_waits_for_every_reader() {
        let mut p = Publisher::new(1u64, 2);
        let (mut a, mut b) = (p.reader().unwrap(), p.reader().unwrap());
        assert!(p.reader().is_none());
        assert_eq!(*a.enter(), 1);
        assert_eq!(*b.enter(), 1);
        p.publish(2);
        assert_eq!(p.pending(), 1, "both readers may still hold 1");
        assert_eq!(*a.enter(), 2);
        assert_eq!(p.reclaim(), 1, "b may still hold 1");
        b.offline();
        assert_eq!(p.reclaim(), 0);
        assert_eq!(*b.enter(), 2);
        assert_eq!(*p.current(), 2);
    }

    #[test]
    fn offline_readers_do_not_block_reclamation() {
        let mut p = Publisher::new(String::from("a"), 1);
        let r = p.reader().unwrap();
        for i in 0..100 {
            p.publish(i.to_string());
        }
        assert_eq!(p.pending(), 0);
        drop(r);
    }

    /// A snapshot whose checksum a reader verifies on every use: freed or torn memory would show.
    struct Checked {
        values: Vec<u64>,
        sum: u64,
        alive: Arc<AtomicU64>,
    }

    impl Checked {
        fn new(seed: u64, alive: &Arc<AtomicU64>) -> Checked {
            alive.fetch_add(1, Ordering::SeqCst);
            let values: Vec<u64> = (0..64).map(|i| seed.wrapping_mul(6364136223846793005).wrapping_add(i)).collect();
            Checked { sum: values.iter().fold(0u64, |a, v| a.wrapping_add(*v)), values, alive: alive.clone() }
        }
    }

    impl Drop for Checked {
        fn drop(&mut self) {
            self.values.iter_mut().for_each(|v| *v = 0xdead);
            self.alive.fetch_sub(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_snapshot_in_use_outlives_the_publisher() {
        let alive = Arc::new(AtomicU64::new(0));
        let mut p = Publisher::new(Checked::new(1, &alive), 2);
        let (mut r, idle) = (p.reader().unwrap(), p.reader().unwrap());
        let s = r.enter();
        p.publish(Checked::new(2, &alive));
        p.publish(Checked::new(3, &alive));
        drop(p);
        let sum = s.values.iter().fold(0u64, |a, v| a.wrapping_add(*v));
        assert_eq!(sum, s.sum, "the snapshot in use was freed with the publisher");
        assert_eq!(alive.load(Ordering::SeqCst), 3, "every retired snapshot waits for the last reader");
        drop(idle);
        assert_eq!(alive.load(Ordering::SeqCst), 3);
        drop(r);
        assert_eq!(alive.load(Ordering::SeqCst), 0, "the last reader frees them all");
    }

    #[test]
    fn stress_many_publications_under_readers() {
        let alive = Arc::new(AtomicU64::new(0));
        let mut p = Publisher::new(Checked::new(0, &alive), 3);
        let stop = Arc::new(AtomicBool::new(false));
        let handles: Vec<_> = (0..3)
            .map(|_| {
                let mut r = p.reader().unwrap();
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut uses = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let s = r.enter();
                        let sum = s.values.iter().fold(0u64, |a, v| a.wrapping_add(*v));
                        assert_eq!(sum, s.sum, "a reader saw a freed or torn snapshot");
                        uses += 1;
                        if uses.is_multiple_of(1000) {
                            r.offline();
                            std::thread::yield_now();
                        }
                    }
                    uses
                })
            })
            .collect();
        for i in 1..=20_000u64 {
            p.publish(Checked::new(i, &alive));
        }
        stop.store(true, Ordering::Relaxed);
        let uses: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert!(uses > 0);
        assert_eq!(p.reclaim(), 0, "every reader is offline now");
        // Only the live snapshot is left.
        assert_eq!(alive.load(Ordering::SeqCst), 1);
        drop(p);
        assert_eq!(alive.load(Ordering::SeqCst), 0);
    }
}
