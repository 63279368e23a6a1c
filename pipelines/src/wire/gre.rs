//! GRE (RFC 2784) with the key and sequence number extensions (RFC 2890): flags, protocol type, then an
//! optional checksum (+ reserved), key and sequence number, in that order.

use super::{checksum, get_u16, get_u32, set_u16, set_u32, EtherType, Result, WireError};

pub const FLAG_CHECKSUM: u16 = 0x8000;
pub const FLAG_KEY: u16 = 0x2000;
pub const FLAG_SEQ: u16 = 0x1000;
const VERSION_MASK: u16 = 0x0007;
/// Reserved0 bits 1, 4 and 5 (RFC 1701's routing present, strict source route, recursion): a receiver
/// discards packets with any of them set (RFC 2784 2.3); bits 6-12 are ignored.
const RESERVED0: u16 = 0x4000 | 0x0800 | 0x0400;

/// A view of a GRE header and its payload.
#[derive(Debug, Clone)]
pub struct GrePacket<T: AsRef<[u8]>> {
    buffer: T,
}

/// The header's length for these flags.
pub const fn header_len(flags: u16) -> usize {
    4 + if flags & FLAG_CHECKSUM != 0 { 4 } else { 0 }
        + if flags & FLAG_KEY != 0 { 4 } else { 0 }
        + if flags & FLAG_SEQ != 0 { 4 } else { 0 }
}

impl<T: AsRef<[u8]>> GrePacket<T> {
    pub const fn new_unchecked(buffer: T) -> Self {
        GrePacket { buffer }
    }

    /// Checks the length the flags call for, version 0 (`Unsupported` otherwise: version 1 is PPTP) and
    /// the reserved bits (`Malformed`).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = GrePacket { buffer };
        let len = p.buffer.as_ref().len();
        if len < 4 {
            return Err(WireError::Truncated);
        }
        let f = p.flags();
        if f & VERSION_MASK != 0 {
            return Err(WireError::Unsupported);
        }
        if f & RESERVED0 != 0 {
            return Err(WireError::Malformed);
        }
        if len < header_len(f) {
            return Err(WireError::Truncated);
        }
        Ok(p)
    }

    pub fn flags(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 0)
    }

    pub fn protocol(&self) -> EtherType {
        EtherType::from(get_u16(self.buffer.as_ref(), 2))
    }

    pub fn header_len(&self) -> usize {
        header_len(self.flags())
    }

    pub fn checksum(&self) -> Option<u16> {
        (self.flags() & FLAG_CHECKSUM != 0).then(|| get_u16(self.buffer.as_ref(), 4))
    }

    fn key_at(&self) -> usize {
        if self.flags() & FLAG_CHECKSUM != 0 {
            8
        } else {
            4
        }
    }

    pub fn key(&self) -> Option<u32> {
        (self.flags() & FLAG_KEY != 0).then(|| get_u32(self.buffer.as_ref(), self.key_at()))
    }

    pub fn seq(&self) -> Option<u32> {
        let at = self.key_at() + if self.flags() & FLAG_KEY != 0 { 4 } else { 0 };
        (self.flags() & FLAG_SEQ != 0).then(|| get_u32(self.buffer.as_ref(), at))
    }

    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }

    /// True if there is no checksum, or if it is right over the header and payload.
    pub fn verify_checksum(&self) -> bool {
        self.checksum().is_none() || checksum::fold(checksum::sum(0, self.buffer.as_ref())) == 0xffff
    }
}

/// A GRE header, owned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GreRepr {
    pub protocol: EtherType,
    pub key: Option<u32>,
    pub seq: Option<u32>,
    /// Whether the header carries a checksum (computed by `emit`).
    pub checksum: bool,
}

impl GreRepr {
    pub fn parse<T: AsRef<[u8]>>(p: &GrePacket<T>) -> Result<GreRepr> {
        Ok(GreRepr { protocol: p.protocol(), key: p.key(), seq: p.seq(), checksum: p.checksum().is_some() })
    }

    fn flags(&self) -> u16 {
        (if self.checksum { FLAG_CHECKSUM } else { 0 })
            | (if self.key.is_some() { FLAG_KEY } else { 0 })
            | (if self.seq.is_some() { FLAG_SEQ } else { 0 })
    }

    pub fn buffer_len(&self, payload_len: usize) -> usize {
        header_len(self.flags()) + payload_len
    }

    /// Writes the header in front of the payload already in place (the buffer is header + payload) and,
    /// if asked, the checksum over both.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut GrePacket<T>) {
        let f = self.flags();
        let b = p.buffer.as_mut();
        set_u16(b, 0, f);
        set_u16(b, 2, self.protocol.into());
        let mut at = 4;
        if self.checksum {
            b[4..8].fill(0);
            at = 8;
        }
        if let Some(k) = self.key {
            set_u32(b, at, k);
            at += 4;
        }
        if let Some(s) = self.seq {
            set_u32(b, at, s);
        }
        if self.checksum {
            let c = !checksum::fold(checksum::sum(0, b));
            set_u16(b, 4, c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_gre_as_linux_gretap_sends_it() {
        // K set, protocol 0x6558 (an Ethernet frame follows), key 0x0000_0064.
        let b = [0x20, 0x00, 0x65, 0x58, 0, 0, 0, 0x64, 0xfa];
        let p = GrePacket::new_checked(&b[..]).unwrap();
        let r = GreRepr::parse(&p).unwrap();
        assert_eq!(r, GreRepr { protocol: EtherType::TransparentEthernet, key: Some(100), seq: None, checksum: false });
        assert_eq!(p.payload(), &[0xfa]);
        let mut out = [0u8; 8];
        r.emit(&mut GrePacket::new_unchecked(&mut out[..]));
        assert_eq!(out, b[..8]);
    }

    #[test]
    fn checksum_key_and_sequence() {
        let r = GreRepr { protocol: EtherType::Ipv4, key: Some(7), seq: Some(9), checksum: true };
        let mut b = vec![0u8; r.buffer_len(3)];
        b[16..].copy_from_slice(b"abc");
        r.emit(&mut GrePacket::new_unchecked(&mut b[..]));
        let p = GrePacket::new_checked(&b[..]).unwrap();
        assert_eq!((GreRepr::parse(&p).unwrap(), p.payload()), (r, &b"abc"[..]));
        assert!(p.verify_checksum());
        b[17] ^= 1;
        assert!(!GrePacket::new_checked(&b[..]).unwrap().verify_checksum());
    }

    #[test]
    fn versions_reserved_bits_and_lengths() {
        assert_eq!(GrePacket::new_checked(&[0u8, 1, 8, 0][..]).unwrap_err(), WireError::Unsupported);
        assert_eq!(GrePacket::new_checked(&[0x40u8, 0, 8, 0][..]).unwrap_err(), WireError::Malformed);
        assert_eq!(GrePacket::new_checked(&[0x20u8, 0, 8, 0, 0][..]).unwrap_err(), WireError::Truncated);
        assert_eq!(GrePacket::new_checked(&[0u8; 3][..]).unwrap_err(), WireError::Truncated);
    }
}
