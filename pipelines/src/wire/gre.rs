//! GRE (RFC 2784) with the key and sequence number extensions (RFC 2890): flags, protocol type, then an
//! optional checksum (+ reserved), key and sequence number, in that order.

use super::{checksum, get_u16, get_u32, set_u16, set_u32, EtherType, Field, Result, WireError};

mod field {
    use super::Field;
    /// C, reserved, K, S, reserved, version (3 bits).
    pub const FLAGS: Field = 0..2;
    pub const PROTOCOL: Field = 2..4;
    /// Present if C: the checksum, then 16 reserved bits.
    pub const CHECKSUM: Field = 4..6;
    /// Where the optional fields start; key (if K) then sequence number (if S), 4 bytes each.
    pub const OPTIONAL: usize = 4;
}

/// The header without optional fields.
pub const HEADER_LEN: usize = field::OPTIONAL;

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
    HEADER_LEN
        + if flags & FLAG_CHECKSUM != 0 { 4 } else { 0 }
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
        if len < HEADER_LEN {
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
        get_u16(self.buffer.as_ref(), field::FLAGS.start)
    }

    pub fn version(&self) -> u8 {
        (self.flags() & VERSION_MASK) as u8
    }

    pub fn protocol(&self) -> EtherType {
        EtherType::from(get_u16(self.buffer.as_ref(), field::PROTOCOL.start))
    }

    pub fn header_len(&self) -> usize {
        header_len(self.flags())
    }

    pub fn checksum(&self) -> Option<u16> {
        (self.flags() & FLAG_CHECKSUM != 0).then(|| get_u16(self.buffer.as_ref(), field::CHECKSUM.start))
    }

    fn key_at(&self) -> usize {
        header_len(self.flags() & FLAG_CHECKSUM)
    }

    fn seq_at(&self) -> usize {
        header_len(self.flags() & (FLAG_CHECKSUM | FLAG_KEY))
    }

    pub fn key(&self) -> Option<u32> {
        (self.flags() & FLAG_KEY != 0).then(|| get_u32(self.buffer.as_ref(), self.key_at()))
    }

    pub fn seq(&self) -> Option<u32> {
        (self.flags() & FLAG_SEQ != 0).then(|| get_u32(self.buffer.as_ref(), self.seq_at()))
    }

    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }

    /// True if there is no checksum, or if it is right over the header and payload.
    pub fn verify_checksum(&self) -> bool {
        self.checksum().is_none() || checksum::fold(checksum::sum(0, self.buffer.as_ref())) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> GrePacket<T> {
    /// Sets the flags word (C, K, S and version): it decides where the optional fields are, so set it first.
    pub fn set_flags(&mut self, f: u16) {
        set_u16(self.buffer.as_mut(), field::FLAGS.start, f);
    }

    pub fn set_protocol(&mut self, t: EtherType) {
        set_u16(self.buffer.as_mut(), field::PROTOCOL.start, t.into());
    }

    /// Writes the checksum and zeroes the reserved field after it; the C flag must be set.
    pub fn set_checksum(&mut self, c: u16) {
        let b = self.buffer.as_mut();
        set_u16(b, field::CHECKSUM.start, c);
        set_u16(b, field::CHECKSUM.end, 0);
    }

    /// The K flag must be set.
    pub fn set_key(&mut self, k: u32) {
        let at = self.key_at();
        set_u32(self.buffer.as_mut(), at, k);
    }

    /// The S flag must be set.
    pub fn set_seq(&mut self, s: u32) {
        let at = self.seq_at();
        set_u32(self.buffer.as_mut(), at, s);
    }

    /// Computes the checksum over the whole buffer (header and payload); the C flag must be set.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = !checksum::fold(checksum::sum(0, self.buffer.as_ref()));
        self.set_checksum(c);
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let at = self.header_len();
        &mut self.buffer.as_mut()[at..]
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
        p.set_flags(self.flags());
        p.set_protocol(self.protocol);
        if let Some(k) = self.key {
            p.set_key(k);
        }
        if let Some(s) = self.seq {
            p.set_seq(s);
        }
        if self.checksum {
            p.fill_checksum();
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
    fn sequence_without_key_sits_right_after_the_base_header() {
        // RFC 2890: S only, IPv4 inside, sequence 0x01020304.
        let b = [0x10, 0x00, 0x08, 0x00, 1, 2, 3, 4];
        let p = GrePacket::new_checked(&b[..]).unwrap();
        assert_eq!((p.version(), p.header_len(), p.key(), p.seq(), p.checksum()), (0, 8, None, Some(0x01020304), None));
        assert!(p.verify_checksum());
        assert_eq!(GrePacket::new_checked(&b[..7]).unwrap_err(), WireError::Truncated);
    }

    #[test]
    fn checksum_key_and_sequence() {
        let r = GreRepr { protocol: EtherType::Ipv4, key: Some(7), seq: Some(9), checksum: true };
        let mut b = vec![0u8; r.buffer_len(3)];
        b[16..].copy_from_slice(b"abc");
        r.emit(&mut GrePacket::new_unchecked(&mut b[..]));
        assert_eq!(&b[..16], &[0xb0, 0x00, 0x08, 0x00, b[4], b[5], 0, 0, 0, 0, 0, 7, 0, 0, 0, 9]);
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
