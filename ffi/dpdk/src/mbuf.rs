//! Owned packet buffers and fixed-size bursts of them.
//!
//! Ownership at the edge: an [`Mbuf`] owns one buffer and frees it on drop; [`Mbuf::into_raw`] hands it
//! to DPDK. A [`Burst`] owns up to `N` mbufs in a fixed array (no allocation); after a transmit exactly the
//! sent ones leave it, the unsent tail stays in the burst for the caller to retry or free.
//!
//! Thread-safety: an `Mbuf` is `Send` (ownership moves with it) and not `Sync`.

use std::mem::MaybeUninit;
use std::ptr::NonNull;

/// One owned packet buffer (first segment; chained segments are freed with it).
#[repr(transparent)]
pub struct Mbuf(NonNull<dpdk_sys::rte_mbuf>);

// SAFETY: an Mbuf is the unique owner of its buffer; moving it to another thread moves that ownership,
// and mempool frees are thread-safe.
unsafe impl Send for Mbuf {}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: we own the mbuf; it is freed exactly once, here.
        unsafe { dpdk_sys::vs_rte_pktmbuf_free(self.0.as_ptr()) }
    }
}

impl std::fmt::Debug for Mbuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mbuf").field("len", &self.len()).field("port", &self.port()).finish()
    }
}

impl Mbuf {
    /// Takes ownership of a raw mbuf.
    ///
    /// # Safety
    /// `m` must be a valid mbuf that nobody else owns or will free.
    #[inline]
    pub unsafe fn from_raw(m: NonNull<dpdk_sys::rte_mbuf>) -> Mbuf {
        Mbuf(m)
    }

    /// Gives up ownership; the caller (or DPDK) must free the mbuf.
    #[inline]
    pub fn into_raw(self) -> NonNull<dpdk_sys::rte_mbuf> {
        let m = self.0;
        std::mem::forget(self);
        m
    }

    #[inline]
    pub fn as_ptr(&self) -> *mut dpdk_sys::rte_mbuf {
        self.0.as_ptr()
    }

    #[inline]
    fn raw(&self) -> &dpdk_sys::rte_mbuf {
        // SAFETY: we own a valid mbuf; shared access through &self.
        unsafe { self.0.as_ref() }
    }

    /// Length of the first segment's data.
    #[inline]
    pub fn len(&self) -> usize {
        self.raw().data_len as usize
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Length of the whole packet (all segments).
    #[inline]
    pub fn pkt_len(&self) -> usize {
        self.raw().pkt_len as usize
    }

    /// The port the packet was received on.
    #[inline]
    pub fn port(&self) -> u16 {
        self.raw().port
    }

    /// The first segment's data (`rte_pktmbuf_mtod`).
    #[inline]
    pub fn data(&self) -> &[u8] {
        let m = self.raw();
        // SAFETY: buf_addr + data_off .. + data_len lies inside the mbuf's buffer, which we own.
        unsafe { std::slice::from_raw_parts(m.buf_addr.cast::<u8>().add(m.data_off as usize), m.data_len as usize) }
    }

    /// Asks the CPU to bring the first cache line of the data into its caches, without waiting for it
    /// (`rte_prefetch0` of `rte_pktmbuf_mtod`): called for a whole burst as it arrives, the misses of its
    /// packets overlap instead of stalling the pipeline one after the other (a pcap of many frames, or a
    /// NIC's DMA, leaves the data out of the cache). A hint: no effect on what the program computes.
    #[inline(always)]
    pub fn prefetch_data(&self) {
        let m = self.raw();
        let p = m.buf_addr.cast::<u8>().wrapping_add(m.data_off as usize);
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch reads nothing the program sees and cannot fault, whatever the address.
        unsafe {
            core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>());
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = p;
    }

    /// The first segment's data, writable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `data`, and &mut self gives exclusive access to the buffer.
        unsafe {
            let m = self.0.as_mut();
            std::slice::from_raw_parts_mut(m.buf_addr.cast::<u8>().add(m.data_off as usize), m.data_len as usize)
        }
    }

    /// Free bytes in front of the data.
    #[inline]
    pub fn headroom(&self) -> usize {
        // SAFETY: valid mbuf.
        unsafe { dpdk_sys::vs_rte_pktmbuf_headroom(self.0.as_ptr()) as usize }
    }

    /// Free bytes after the data in the last segment.
    #[inline]
    pub fn tailroom(&self) -> usize {
        // SAFETY: valid mbuf.
        unsafe { dpdk_sys::vs_rte_pktmbuf_tailroom(self.0.as_ptr()) as usize }
    }

    /// Grows the data by `len` bytes at the end; returns the new bytes, or `None` without room.
    #[inline]
    pub fn append(&mut self, len: u16) -> Option<&mut [u8]> {
        // SAFETY: we own the mbuf exclusively; a non-null result points to `len` writable bytes in it.
        unsafe {
            let p = dpdk_sys::vs_rte_pktmbuf_append(self.0.as_ptr(), len);
            NonNull::new(p.cast::<u8>()).map(|p| std::slice::from_raw_parts_mut(p.as_ptr(), len as usize))
        }
    }

    /// Grows the data by `len` bytes at the front (into the headroom); returns the new bytes.
    #[inline]
    pub fn prepend(&mut self, len: u16) -> Option<&mut [u8]> {
        // SAFETY: as in `append`.
        unsafe {
            let p = dpdk_sys::vs_rte_pktmbuf_prepend(self.0.as_ptr(), len);
            NonNull::new(p.cast::<u8>()).map(|p| std::slice::from_raw_parts_mut(p.as_ptr(), len as usize))
        }
    }

    /// Removes `len` bytes from the front; false if the first segment is shorter.
    #[inline]
    pub fn adj(&mut self, len: u16) -> bool {
        // SAFETY: we own the mbuf exclusively.
        unsafe { !dpdk_sys::vs_rte_pktmbuf_adj(self.0.as_ptr(), len).is_null() }
    }

    /// Removes `len` bytes from the end; false if the last segment is shorter.
    #[inline]
    pub fn trim(&mut self, len: u16) -> bool {
        // SAFETY: we own the mbuf exclusively.
        unsafe { dpdk_sys::vs_rte_pktmbuf_trim(self.0.as_ptr(), len) == 0 }
    }

    /// Copies `bytes` into a freshly allocated mbuf of `pool`.
    pub fn from_bytes(pool: &crate::Mempool, bytes: &[u8]) -> Option<Mbuf> {
        let len = u16::try_from(bytes.len()).ok()?;
        let mut m = pool.alloc()?;
        m.append(len)?.copy_from_slice(bytes);
        Some(m)
    }
}

/// Number of packets in a burst, as testpmd and VPP use.
pub const BURST_SIZE: usize = 32;

/// Up to `N` owned mbufs in a fixed array. Live mbufs are `slots[head..head + len]`.
pub struct Burst<const N: usize = BURST_SIZE> {
    slots: [MaybeUninit<Mbuf>; N],
    head: usize,
    len: usize,
}

impl<const N: usize> Default for Burst<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Drop for Burst<N> {
    fn drop(&mut self) {
        self.free_all();
    }
}

impl<const N: usize> Burst<N> {
    pub const fn new() -> Self {
        Burst { slots: [const { MaybeUninit::uninit() }; N], head: 0, len: 0 }
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline]
    /// No slot left: a push would fail.
    pub fn is_full(&self) -> bool {
        self.len == N
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    pub const fn capacity(&self) -> usize {
        N
    }

    /// The live mbufs.
    #[inline]
    pub fn as_slice(&self) -> &[Mbuf] {
        // SAFETY: slots[head..head+len] are initialised (the struct invariant); MaybeUninit<Mbuf> has Mbuf's layout.
        unsafe { std::slice::from_raw_parts(self.slots.as_ptr().add(self.head).cast::<Mbuf>(), self.len) }
    }

    /// The live mbufs, writable (to edit packets; ownership stays with the burst).
    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [Mbuf] {
        // SAFETY: as in `as_slice`, with exclusive access through &mut self.
        unsafe { std::slice::from_raw_parts_mut(self.slots.as_mut_ptr().add(self.head).cast::<Mbuf>(), self.len) }
    }

    /// Adds an mbuf at the end; gives it back when the burst is full.
    #[inline]
    pub fn push(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        self.compact();
        if self.len == N {
            return Err(m);
        }
        self.slots[self.len].write(m);
        self.len += 1;
        Ok(())
    }

    /// Takes the first mbuf out.
    #[inline]
    pub fn pop_front(&mut self) -> Option<Mbuf> {
        if self.len == 0 {
            return None;
        }
        // SAFETY: slots[head] is initialised; it leaves the live range right after, so it is read once.
        let m = unsafe { self.slots[self.head].assume_init_read() };
        self.head += 1;
        self.len -= 1;
        if self.len == 0 {
            self.head = 0;
        }
        Some(m)
    }

    /// Frees every mbuf in the burst (one bulk call) and returns how many there were.
    #[inline]
    pub fn free_all(&mut self) -> usize {
        let n = self.len;
        if n > 0 {
            // SAFETY: the n live slots are owned mbufs (Mbuf is a transparent NonNull<rte_mbuf>); after the bulk
            // free they leave the live range, so none is freed twice.
            unsafe {
                dpdk_sys::rte_pktmbuf_free_bulk(self.slots.as_mut_ptr().add(self.head).cast(), n as u32);
            }
        }
        self.head = 0;
        self.len = 0;
        n
    }

    /// Moves the live range to the front, so the free slots are contiguous at the end.
    #[inline]
    fn compact(&mut self) {
        if self.head != 0 {
            // SAFETY: both ranges are inside `slots`; `copy` handles overlap; the moved-from slots leave the
            // live range, so no mbuf is owned twice.
            unsafe {
                std::ptr::copy(self.slots.as_ptr().add(self.head), self.slots.as_mut_ptr(), self.len);
            }
            self.head = 0;
        }
    }

    /// Raw pointer to the free slots at the end, and how many there are, for an rx or dequeue call.
    #[inline]
    pub(crate) fn spare_raw(&mut self) -> (*mut *mut dpdk_sys::rte_mbuf, usize) {
        self.compact();
        // SAFETY: len <= N, so the pointer stays within (or one past) the array.
        (unsafe { self.slots.as_mut_ptr().add(self.len).cast() }, N - self.len)
    }

    /// Records that `n` mbufs were written into the spare slots.
    ///
    /// # Safety
    /// The first `n` spare slots must now hold owned mbufs, and `n` must not exceed the spare count.
    #[inline]
    pub(crate) unsafe fn commit_spare(&mut self, n: usize) {
        debug_assert!(self.len + n <= N);
        self.len += n;
    }

    /// Raw pointer to the live range, for a tx or enqueue call.
    #[inline]
    pub(crate) fn live_raw(&mut self) -> *mut *mut dpdk_sys::rte_mbuf {
        // SAFETY: head <= N.
        unsafe { self.slots.as_mut_ptr().add(self.head).cast() }
    }

    /// Records that the first `n` live mbufs were handed to DPDK.
    ///
    /// # Safety
    /// DPDK must have taken ownership of exactly the first `n` live mbufs.
    #[inline]
    pub(crate) unsafe fn consume_front(&mut self, n: usize) {
        debug_assert!(n <= self.len);
        self.head += n;
        self.len -= n;
        if self.len == 0 {
            self.head = 0;
        }
    }
}
