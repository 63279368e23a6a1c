//! The packet buffer the stages work on. The DPDK mbuf implements it in the `dataplane` crate; [`HeapBuf`]
//! implements it on the heap, so every stage is tested (and fuzzed, and benchmarked) without DPDK.
//! Headroom and tailroom are there for encapsulation (VXLAN, Geneve, GRE) and for replies built in place
//! (ICMP errors carry the invoking packet behind new headers).

/// A contiguous packet with room to grow at both ends.
pub trait PacketBuf {
    fn data(&self) -> &[u8];
    fn data_mut(&mut self) -> &mut [u8];
    /// Free bytes in front of the data.
    fn headroom(&self) -> usize;
    /// Free bytes after the data.
    fn tailroom(&self) -> usize;
    /// Grows the data by `n` bytes at the front; returns them, or `None` (and changes nothing) without room.
    fn prepend(&mut self, n: usize) -> Option<&mut [u8]>;
    /// Grows the data by `n` bytes at the end; returns them, or `None` without room.
    fn append(&mut self, n: usize) -> Option<&mut [u8]>;
    /// Removes `n` bytes from the front; false (and no change) if the data is shorter.
    fn adj(&mut self, n: usize) -> bool;
    /// Removes `n` bytes from the end; false (and no change) if the data is shorter.
    fn trim(&mut self, n: usize) -> bool;

    fn len(&self) -> usize {
        self.data().len()
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Headroom of a fresh [`HeapBuf`], as DPDK's `RTE_PKTMBUF_HEADROOM`.
pub const DEFAULT_HEADROOM: usize = 128;
/// Total size of a [`HeapBuf`]'s storage, as DPDK's default mbuf data room.
pub const DEFAULT_ROOM: usize = 2048 + DEFAULT_HEADROOM;

/// A packet on the heap, laid out as an mbuf: headroom, data, tailroom in one fixed allocation.
#[derive(Clone, PartialEq, Eq)]
pub struct HeapBuf {
    storage: Box<[u8]>,
    start: usize,
    end: usize,
}

impl std::fmt::Debug for HeapBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeapBuf").field("len", &self.len()).field("headroom", &self.start).finish()
    }
}

impl HeapBuf {
    /// `bytes` with the default headroom and room (longer frames get a bigger allocation).
    pub fn new(bytes: &[u8]) -> HeapBuf {
        let room = DEFAULT_ROOM.max(DEFAULT_HEADROOM + bytes.len());
        let mut storage = vec![0u8; room].into_boxed_slice();
        storage[DEFAULT_HEADROOM..DEFAULT_HEADROOM + bytes.len()].copy_from_slice(bytes);
        HeapBuf { storage, start: DEFAULT_HEADROOM, end: DEFAULT_HEADROOM + bytes.len() }
    }

    /// `bytes` with exactly `headroom` bytes in front and `tailroom` after.
    pub fn with_room(bytes: &[u8], headroom: usize, tailroom: usize) -> HeapBuf {
        let mut storage = vec![0u8; headroom + bytes.len() + tailroom].into_boxed_slice();
        storage[headroom..headroom + bytes.len()].copy_from_slice(bytes);
        HeapBuf { storage, start: headroom, end: headroom + bytes.len() }
    }

    /// Makes this buffer hold `bytes` after the default headroom again, reusing its storage (benchmarks
    /// replay bursts this way); false, and no change, if the storage is too small.
    pub fn refill(&mut self, bytes: &[u8]) -> bool {
        let (start, end) = (DEFAULT_HEADROOM, DEFAULT_HEADROOM + bytes.len());
        if end > self.storage.len() {
            return false;
        }
        self.storage[start..end].copy_from_slice(bytes);
        (self.start, self.end) = (start, end);
        true
    }

    pub fn into_vec(self) -> Vec<u8> {
        self.storage[self.start..self.end].to_vec()
    }
}

impl PacketBuf for HeapBuf {
    #[inline]
    fn data(&self) -> &[u8] {
        &self.storage[self.start..self.end]
    }

    #[inline]
    fn data_mut(&mut self) -> &mut [u8] {
        &mut self.storage[self.start..self.end]
    }

    #[inline]
    fn headroom(&self) -> usize {
        self.start
    }

    #[inline]
    fn tailroom(&self) -> usize {
        self.storage.len() - self.end
    }

    #[inline]
    fn prepend(&mut self, n: usize) -> Option<&mut [u8]> {
        if n > self.start {
            return None;
        }
        self.start -= n;
        Some(&mut self.storage[self.start..self.start + n])
    }

    #[inline]
    fn append(&mut self, n: usize) -> Option<&mut [u8]> {
        if n > self.tailroom() {
            return None;
        }
        self.end += n;
        Some(&mut self.storage[self.end - n..self.end])
    }

    #[inline]
    fn adj(&mut self, n: usize) -> bool {
        if n > self.len() {
            return false;
        }
        self.start += n;
        true
    }

    #[inline]
    fn trim(&mut self, n: usize) -> bool {
        if n > self.len() {
            return false;
        }
        self.end -= n;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_shrinks_like_an_mbuf() {
        let mut b = HeapBuf::new(&[1, 2, 3]);
        assert_eq!((b.len(), b.headroom(), b.tailroom()), (3, 128, 2048 - 3));
        b.prepend(2).unwrap().copy_from_slice(&[8, 9]);
        b.append(1).unwrap()[0] = 4;
        assert_eq!(b.data(), &[8, 9, 1, 2, 3, 4]);
        assert!(b.adj(2) && b.trim(1));
        assert_eq!(b.data(), &[1, 2, 3]);
        assert!(!b.adj(4) && !b.trim(4));
        assert!(b.prepend(129).is_none() && b.append(2046).is_none());
        assert_eq!(b.data(), &[1, 2, 3]);
        let t = HeapBuf::with_room(&[5; 10], 0, 0);
        assert_eq!((t.headroom(), t.tailroom(), t.into_vec()), (0, 0, vec![5; 10]));
        assert_eq!(HeapBuf::new(&[0; 3000]).len(), 3000);
    }
}
