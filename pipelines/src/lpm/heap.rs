//! The trie's memory: fixed-size blocks carved from 2 MiB regions that the kernel is asked to back with
//! transparent huge pages (`madvise(MADV_HUGEPAGE)`).
//!
//! Why not the global allocator: a lookup in a table of 100,000 routes lands on a random chunk among tens
//! of thousands, and with 4 KiB pages nearly every step also misses the TLB (12.7 MB is about 3,100
//! pages; a core's second-level TLB holds 1,500 to 2,000). In 2 MiB pages the same table is 7 pages.
//! Measured with `lpm_lookup` at 100,000 IPv4 routes: 176 ns per lookup one at a time with glibc's
//! heap, 60 ns with glibc told to use huge pages (`GLIBC_TUNABLES=glibc.malloc.hugetlb=1`), which a
//! switch cannot ask of its users' environment. DPDK's `rte_lpm` gets the same from its hugepage heap.
//!
//! Where the kernel gives no huge page (THP off, or memory too fragmented) the regions are plain 4 KiB
//! pages and everything works the same, slower. Blocks are never returned to the kernel: a freed block
//! is kept on its size's free list for the next chunk of that size (as a mempool keeps its objects), so
//! the heap holds its high-water mark. [`reserved`] says how much that is.
//!
//! Thread-safety: one lock over the free lists and the current region, taken by allocations and frees
//! only. They happen where tries are edited or dropped: the control thread, and never a worker (the
//! publisher frees retired snapshots, `publish.rs`). A lookup takes no lock.

use std::alloc::Layout;
use std::ptr::NonNull;
use std::sync::Mutex;

/// The size of a region, and of a huge page.
const REGION: usize = 2 << 20;

/// How many block sizes the heap serves at most (the trie asks for two: a sparse and a plain chunk).
const SIZES: usize = 8;

struct Heap {
    /// Per block size in use: the size and the head of its free list (a freed block holds the address of
    /// the next one in its first word; 0 ends the list).
    free: [(usize, usize); SIZES],
    /// The unused rest of the current region.
    next: usize,
    end: usize,
    /// Regions mapped so far.
    regions: usize,
}

static HEAP: Mutex<Heap> = Mutex::new(Heap { free: [(0, 0); SIZES], next: 0, end: 0, regions: 0 });

/// A block for `layout` (size at most a region, a multiple of its alignment; alignment at most 4096).
/// Aborts, as the global allocator does, if the kernel has no memory left.
pub(super) fn alloc(layout: Layout) -> NonNull<u8> {
    let size = layout.size();
    assert!(
        size > 0 && size <= REGION && layout.align() <= 4096 && size.is_multiple_of(layout.align()),
        "heap block {layout:?}"
    );
    let mut h = HEAP.lock().unwrap_or_else(|e| e.into_inner());
    let slot = match h.free.iter().position(|&(s, _)| s == size) {
        Some(i) => i,
        None => {
            let i = h.free.iter().position(|&(s, _)| s == 0).expect("at most SIZES block sizes");
            h.free[i] = (size, 0);
            i
        }
    };
    let head = h.free[slot].1;
    if head != 0 {
        // SAFETY: `head` is a block of this size that `free` put on the list; its first word holds the
        // next one's address (`free` wrote it), and nothing else refers to the block.
        h.free[slot].1 = unsafe { *(head as *const usize) };
        // SAFETY: not null, checked above.
        return unsafe { NonNull::new_unchecked(head as *mut u8) };
    }
    let at = (h.next + layout.align() - 1) & !(layout.align() - 1);
    if h.next == 0 || at + size > h.end {
        let region = map_region();
        (h.next, h.end) = (region, region + REGION);
        h.regions += 1;
    }
    let at = (h.next + layout.align() - 1) & !(layout.align() - 1);
    h.next = at + size;
    // SAFETY: a region's address is not null.
    unsafe { NonNull::new_unchecked(at as *mut u8) }
}

/// Returns a block to the heap.
///
/// # Safety
/// `block` came from [`alloc`] with a layout of the same size, is not freed yet, and nothing uses it
/// any more.
pub(super) unsafe fn free(block: NonNull<u8>, layout: Layout) {
    let mut h = HEAP.lock().unwrap_or_else(|e| e.into_inner());
    let slot = h.free.iter().position(|&(s, _)| s == layout.size()).expect("a size alloc served");
    // SAFETY: the block is at least a word, aligned to 8 at least (its layout's size is a multiple of
    // its alignment, and blocks are carved aligned), and the caller gave it up.
    unsafe { *(block.as_ptr() as *mut usize) = h.free[slot].1 };
    h.free[slot].1 = block.as_ptr() as usize;
}

/// How many bytes the heap has taken from the kernel (regions mapped, in use or free).
pub fn reserved() -> usize {
    HEAP.lock().unwrap_or_else(|e| e.into_inner()).regions * REGION
}

/// A fresh region, aligned to its size so that the kernel can back it with one huge page.
fn map_region() -> usize {
    let len = 2 * REGION;
    // SAFETY: an anonymous private mapping at an address of the kernel's choice; no Rust memory is
    // involved.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        std::alloc::handle_alloc_error(Layout::from_size_align(REGION, REGION).expect("a valid layout"));
    }
    let start = p as usize;
    let aligned = (start + REGION - 1) & !(REGION - 1);
    // SAFETY: both ranges lie inside the mapping just made, which nothing uses yet; unmapping the
    // unaligned head and the tail leaves exactly [aligned, aligned + REGION) mapped.
    unsafe {
        if aligned > start {
            libc::munmap(p, aligned - start);
        }
        let tail = start + len - (aligned + REGION);
        if tail > 0 {
            libc::munmap((aligned + REGION) as *mut libc::c_void, tail);
        }
        // Advice only: without THP the region stays in 4 KiB pages.
        libc::madvise(aligned as *mut libc::c_void, REGION, libc::MADV_HUGEPAGE);
    }
    aligned
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_do_not_overlap_and_a_freed_one_is_served_again() {
        // A size no other user of the heap asks for, so that other tests running at the same time do
        // not take the freed block first.
        let odd = Layout::from_size_align(192, 64).unwrap();
        let blocks: Vec<NonNull<u8>> = (0..25_000).map(|_| alloc(odd)).collect();
        let mut starts: Vec<usize> = blocks.iter().map(|b| b.as_ptr() as usize).collect();
        starts.sort_unstable();
        assert!(starts.windows(2).all(|w| w[1] - w[0] >= 192), "no two blocks overlap");
        assert!(starts.iter().all(|s| s % 64 == 0), "aligned");
        assert!(reserved() >= 3 * REGION, "25,000 blocks of 192 bytes span three regions");
        // SAFETY: from `alloc` with this layout, freed once, not used after.
        unsafe { free(blocks[7], odd) };
        let again = alloc(odd);
        assert_eq!(again, blocks[7]);
        // SAFETY: a block of 192 bytes, ours.
        unsafe { std::ptr::write_bytes(again.as_ptr(), 0xab, 192) };
        for &b in &blocks {
            // SAFETY: from `alloc`, each freed once (`again` is `blocks[7]`).
            unsafe { free(b, odd) };
        }
    }
}
