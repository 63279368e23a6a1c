//! UDP (RFC 768), with the checksum over the IPv4 or IPv6 pseudo-header.

use super::{checksum, get_u16, set_u16, Field, Result, WireError};

mod field {
    use super::Field;
    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const LENGTH: Field = 4..6;
    pub const CHECKSUM: Field = 6..8;
}

pub const HEADER_LEN: usize = 8;

/// A view of a UDP datagram.
#[derive(Debug, Clone)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    pub const fn new_unchecked(buffer: T) -> Self {
        UdpPacket { buffer }
    }

    /// Checks that the header fits and that the length field is within the buffer and covers the header.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = UdpPacket { buffer };
        let len = p.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let l = p.len() as usize;
        if l < HEADER_LEN {
            return Err(WireError::Malformed);
        }
        if l > len {
            return Err(WireError::Truncated);
        }
        Ok(p)
    }

    pub fn src_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::SRC_PORT.start)
    }

    pub fn dst_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::DST_PORT.start)
    }

    pub fn len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::LENGTH.start)
    }

    pub fn is_empty(&self) -> bool {
        self.len() as usize == HEADER_LEN
    }

    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.len() as usize]
    }

    /// True if the checksum is right for this pseudo-header sum (see `checksum::pseudo_v4`/`pseudo_v6`);
    /// a zero checksum (none, IPv4 only) is accepted when `zero_ok`.
    pub fn verify_checksum(&self, pseudo: u32, zero_ok: bool) -> bool {
        if self.checksum() == 0 {
            return zero_ok;
        }
        checksum::fold(checksum::sum(pseudo, &self.buffer.as_ref()[..self.len() as usize])) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    pub fn set_src_port(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::SRC_PORT.start, v);
    }

    pub fn set_dst_port(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::DST_PORT.start, v);
    }

    pub fn set_len(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::LENGTH.start, v);
    }

    pub fn set_checksum(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::CHECKSUM.start, v);
    }

    /// Computes the checksum with this pseudo-header sum (0 is sent as 0xffff, as RFC 768 says).
    pub fn fill_checksum(&mut self, pseudo: u32) {
        self.set_checksum(0);
        let l = self.len() as usize;
        let c = !checksum::fold(checksum::sum(pseudo, &self.buffer.as_ref()[..l]));
        self.set_checksum(if c == 0 { 0xffff } else { c });
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let l = self.len() as usize;
        &mut self.buffer.as_mut()[HEADER_LEN..l]
    }
}

/// A UDP header, owned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpRepr {
    pub src_port: u16,
    pub dst_port: u16,
}

impl UdpRepr {
    pub fn parse<T: AsRef<[u8]>>(p: &UdpPacket<T>) -> Result<UdpRepr> {
        Ok(UdpRepr { src_port: p.src_port(), dst_port: p.dst_port() })
    }

    pub const fn buffer_len(&self, payload_len: usize) -> usize {
        HEADER_LEN + payload_len
    }

    /// Writes the header for `payload_len` bytes of payload (already in place) and the checksum.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut UdpPacket<T>, payload_len: usize, pseudo: u32) {
        p.set_src_port(self.src_port);
        p.set_dst_port(self.dst_port);
        p.set_len((HEADER_LEN + payload_len) as u16);
        p.fill_checksum(pseudo);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emit_parse_and_checksum() {
        let pseudo = checksum::pseudo_v4([10, 0, 0, 1], [10, 0, 0, 2], 17, 12);
        let mut b = [0u8; 12];
        b[8..].copy_from_slice(b"ping");
        let r = UdpRepr { src_port: 68, dst_port: 67 };
        r.emit(&mut UdpPacket::new_unchecked(&mut b[..]), 4, pseudo);
        let p = UdpPacket::new_checked(&b[..]).unwrap();
        assert_eq!(UdpRepr::parse(&p).unwrap(), r);
        assert_eq!((p.len(), p.payload()), (12, &b"ping"[..]));
        assert!(p.verify_checksum(pseudo, false));
        let mut bad = b;
        bad[9] ^= 0x40;
        assert!(!UdpPacket::new_checked(&bad[..]).unwrap().verify_checksum(pseudo, false));
    }

    #[test]
    fn bad_lengths() {
        let mut b = [0u8; 12];
        b[5] = 20;
        assert_eq!(UdpPacket::new_checked(&b[..]).unwrap_err(), WireError::Truncated);
        b[5] = 4;
        assert_eq!(UdpPacket::new_checked(&b[..]).unwrap_err(), WireError::Malformed);
        assert_eq!(UdpPacket::new_checked(&b[..7]).unwrap_err(), WireError::Truncated);
    }
}
