//! Packet-buffer pools (`rte_pktmbuf_pool_create`).
//!
//! Thread-safety: a DPDK mempool is multi-producer/multi-consumer safe; `Mempool` is a cheap `Clone`
//! handle (`Arc`), `Send` and `Sync`. Each EAL lcore gets its own cache of `cache_size` mbufs; threads that
//! are not EAL lcores go to the shared ring directly.
//!
//! The pool is freed when the last handle is dropped, and only if every mbuf has come back: an `Mbuf`
//! does not keep its pool alive (that would cost a reference count per packet), so a pool with mbufs still
//! out is leaked rather than freed under them.

use std::ffi::CString;
use std::ptr::NonNull;
use std::sync::Arc;

use crate::error::{DpdkError, Errno, Result};
use crate::mbuf::Mbuf;

struct PoolInner {
    raw: NonNull<dpdk_sys::rte_mempool>,
    name: String,
}

// SAFETY: rte_mempool is designed for concurrent use from many threads (MP/MC ring, per-lcore caches).
unsafe impl Send for PoolInner {}
// SAFETY: as above; &PoolInner only reads the pool pointer.
unsafe impl Sync for PoolInner {}

impl Drop for PoolInner {
    fn drop(&mut self) {
        // SAFETY: raw is a valid pool until freed here.
        let in_use = unsafe { dpdk_sys::rte_mempool_in_use_count(self.raw.as_ptr()) };
        if in_use == 0 {
            // SAFETY: no mbuf of the pool is out, and no other handle exists (last Arc).
            unsafe { dpdk_sys::rte_mempool_free(self.raw.as_ptr()) };
        } else {
            eprintln!("dpdk: mempool {:?} dropped with {in_use} mbufs still out: leaked, not freed", self.name);
        }
    }
}

/// A pool of packet buffers.
#[derive(Clone)]
pub struct Mempool(Arc<PoolInner>);

impl std::fmt::Debug for Mempool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mempool").field("name", &self.0.name).field("size", &self.size()).finish()
    }
}

/// Default data room: 2 KiB of frame plus DPDK's headroom, as testpmd uses.
pub const DEFAULT_DATA_ROOM: u16 = dpdk_sys::RTE_MBUF_DEFAULT_BUF_SIZE as u16;

impl Mempool {
    /// Creates a pool of `size` mbufs with a per-lcore cache of `cache_size` on the caller's NUMA socket.
    /// The EAL must be initialised (the `Eal` token).
    pub fn new(_eal: &crate::Eal, name: &str, size: u32, cache_size: u32, data_room: u16) -> Result<Mempool> {
        let cname = CString::new(name).map_err(|_| DpdkError::Devargs(name.to_owned()))?;
        // SAFETY: the EAL is initialised (token); cname is a valid C string for the call.
        let raw = unsafe {
            dpdk_sys::rte_pktmbuf_pool_create(
                cname.as_ptr(),
                size,
                cache_size,
                0,
                data_room,
                dpdk_sys::rte_socket_id() as i32,
            )
        };
        let raw = NonNull::new(raw).ok_or_else(|| DpdkError::MempoolCreate {
            name: name.to_owned(),
            size,
            errno: Errno::last(),
        })?;
        Ok(Mempool(Arc::new(PoolInner { raw, name: name.to_owned() })))
    }

    pub fn name(&self) -> &str {
        &self.0.name
    }

    pub fn as_ptr(&self) -> *mut dpdk_sys::rte_mempool {
        self.0.raw.as_ptr()
    }

    /// Total number of mbufs.
    pub fn size(&self) -> u32 {
        // SAFETY: the pool is valid while self lives; `size` is immutable after creation.
        unsafe { (*self.0.raw.as_ptr()).size }
    }

    /// Mbufs available (in the ring and in the lcore caches).
    pub fn avail_count(&self) -> u32 {
        // SAFETY: valid pool; the count is a racy snapshot by design.
        unsafe { dpdk_sys::rte_mempool_avail_count(self.0.raw.as_ptr()) }
    }

    /// Mbufs out of the pool: held by ports' rings, by the application, or leaked.
    pub fn in_use_count(&self) -> u32 {
        // SAFETY: valid pool; a racy snapshot by design.
        unsafe { dpdk_sys::rte_mempool_in_use_count(self.0.raw.as_ptr()) }
    }

    /// One mbuf, reset, with the default headroom; `None` when the pool is empty.
    #[inline]
    pub fn alloc(&self) -> Option<Mbuf> {
        // SAFETY: valid pool; a non-null result is a fresh mbuf that we own.
        let m = unsafe { dpdk_sys::vs_rte_pktmbuf_alloc(self.0.raw.as_ptr()) };
        // SAFETY: m is a fresh mbuf owned by nobody else.
        NonNull::new(m).map(|m| unsafe { Mbuf::from_raw(m) })
    }
}
