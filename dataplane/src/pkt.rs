//! The DPDK mbuf as the pipeline's packet buffer: [`Pkt`] is an [`Mbuf`] that implements
//! [`PacketBuf`], and [`as_pkts`] views a burst's mbufs as `Pkt`s without copying.

use dpdk::Mbuf;
use pipelines::buf::PacketBuf;

/// An mbuf, seen by the pipeline.
#[repr(transparent)]
pub struct Pkt(pub Mbuf);

/// The mbufs of a burst as pipeline packets.
#[inline(always)]
pub fn as_pkts(m: &mut [Mbuf]) -> &mut [Pkt] {
    // SAFETY: Pkt is repr(transparent) over Mbuf, so the slices have the same layout; the borrow is
    // carried over unchanged.
    unsafe { &mut *(m as *mut [Mbuf] as *mut [Pkt]) }
}

impl PacketBuf for Pkt {
    #[inline(always)]
    fn data(&self) -> &[u8] {
        self.0.data()
    }

    #[inline(always)]
    fn data_mut(&mut self) -> &mut [u8] {
        self.0.data_mut()
    }

    fn headroom(&self) -> usize {
        self.0.headroom()
    }

    fn tailroom(&self) -> usize {
        self.0.tailroom()
    }

    fn prepend(&mut self, n: usize) -> Option<&mut [u8]> {
        self.0.prepend(u16::try_from(n).ok()?)
    }

    fn append(&mut self, n: usize) -> Option<&mut [u8]> {
        self.0.append(u16::try_from(n).ok()?)
    }

    fn adj(&mut self, n: usize) -> bool {
        u16::try_from(n).is_ok_and(|n| self.0.adj(n))
    }

    fn trim(&mut self, n: usize) -> bool {
        u16::try_from(n).is_ok_and(|n| self.0.trim(n))
    }
}
