//! `rte_ring`: lock-free FIFO of mbuf pointers, used for `net_ring` ports and punt/inject paths.
//!
//! Thread-safety: created multi-producer/multi-consumer, so `Ring` is `Send` and `Sync`; a `Clone` handle.
//! The ring is freed with its last handle; mbufs still in it are freed first.

use std::ffi::CString;
use std::ptr::NonNull;
use std::sync::Arc;

use crate::error::{DpdkError, Errno, Result};
use crate::mbuf::Burst;

struct RingInner(NonNull<dpdk_sys::rte_ring>);

// SAFETY: an MP/MC rte_ring is safe to use from any thread.
unsafe impl Send for RingInner {}
// SAFETY: as above.
unsafe impl Sync for RingInner {}

impl Drop for RingInner {
    fn drop(&mut self) {
        let mut b: Burst<32> = Burst::new();
        loop {
            let (ptr, room) = b.spare_raw();
            // SAFETY: valid ring, room free slots; the dequeued pointers are mbufs put there by `enqueue`.
            let n = unsafe { dpdk_sys::vs_rte_ring_dequeue_burst(self.0.as_ptr(), ptr.cast(), room as u32) };
            if n == 0 {
                break;
            }
            // SAFETY: n owned mbufs were written.
            unsafe { b.commit_spare(n as usize) };
            b.free_all();
        }
        // SAFETY: last handle; no port uses it any more (ports keep a clone).
        unsafe { dpdk_sys::rte_ring_free(self.0.as_ptr()) }
    }
}

/// A ring of mbufs.
#[derive(Clone)]
pub struct Ring(Arc<RingInner>);

impl Ring {
    /// A ring of `count` slots (a power of two; one is kept empty by DPDK).
    pub fn new(_eal: &crate::Eal, name: &str, count: u32) -> Result<Ring> {
        let c = CString::new(name).map_err(|_| DpdkError::Devargs(name.to_owned()))?;
        // SAFETY: the EAL is initialised; flags 0 = MP/MC.
        let r = unsafe { dpdk_sys::rte_ring_create(c.as_ptr(), count, dpdk_sys::rte_socket_id() as i32, 0) };
        NonNull::new(r)
            .map(|r| Ring(Arc::new(RingInner(r))))
            .ok_or_else(|| DpdkError::RingCreate { name: name.to_owned(), errno: Errno::last() })
    }

    pub fn as_ptr(&self) -> *mut dpdk_sys::rte_ring {
        self.0 .0.as_ptr()
    }

    /// Moves as many mbufs as fit from the front of the burst into the ring; returns how many.
    pub fn enqueue<const N: usize>(&self, burst: &mut Burst<N>) -> usize {
        let n = burst.len();
        // SAFETY: the live range holds n owned mbufs; the ring takes ownership of those it accepts.
        let done = unsafe { dpdk_sys::vs_rte_ring_enqueue_burst(self.as_ptr(), burst.live_raw().cast(), n as u32) };
        // SAFETY: exactly `done` mbufs from the front now belong to the ring.
        unsafe { burst.consume_front(done as usize) };
        done as usize
    }

    /// Moves mbufs from the ring into the burst's free slots; returns how many.
    pub fn dequeue<const N: usize>(&self, burst: &mut Burst<N>) -> usize {
        let (ptr, room) = burst.spare_raw();
        // SAFETY: room free slots; everything in the ring is an owned mbuf (only `enqueue` and net_ring put
        // mbufs there).
        let n = unsafe { dpdk_sys::vs_rte_ring_dequeue_burst(self.as_ptr(), ptr.cast(), room as u32) } as usize;
        // SAFETY: n mbufs were written.
        unsafe { burst.commit_spare(n) };
        n
    }

    /// Entries in the ring now.
    pub fn count(&self) -> u32 {
        // SAFETY: valid ring; racy snapshot.
        unsafe { dpdk_sys::vs_rte_ring_count(self.as_ptr()) }
    }
}
