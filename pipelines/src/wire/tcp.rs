//! TCP (RFC 9293): the header fields a switch reads or rewrites (ports, flags, checksum); options are
//! carried, not interpreted.

use super::{checksum, get_u16, get_u32, set_u16, set_u32, Field, Result, WireError};

mod field {
    use super::Field;
    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const SEQ: Field = 4..8;
    pub const ACK: Field = 8..12;
    pub const OFF_FLAGS: Field = 12..14;
    pub const WINDOW: Field = 14..16;
    pub const CHECKSUM: Field = 16..18;
    pub const URGENT: Field = 18..20;
}

pub const HEADER_LEN: usize = 20;

pub const FIN: u16 = 0x001;
pub const SYN: u16 = 0x002;
pub const RST: u16 = 0x004;
pub const PSH: u16 = 0x008;
pub const ACK: u16 = 0x010;

/// A view of a TCP segment.
#[derive(Debug, Clone)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    pub const fn new_unchecked(buffer: T) -> Self {
        TcpPacket { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = TcpPacket { buffer };
        let len = p.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if p.header_len() < HEADER_LEN {
            return Err(WireError::Malformed);
        }
        if p.header_len() > len {
            return Err(WireError::Truncated);
        }
        Ok(p)
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    pub fn src_port(&self) -> u16 {
        get_u16(self.b(), field::SRC_PORT.start)
    }

    pub fn dst_port(&self) -> u16 {
        get_u16(self.b(), field::DST_PORT.start)
    }

    pub fn seq(&self) -> u32 {
        get_u32(self.b(), field::SEQ.start)
    }

    pub fn ack(&self) -> u32 {
        get_u32(self.b(), field::ACK.start)
    }

    pub fn header_len(&self) -> usize {
        ((self.b()[field::OFF_FLAGS.start] >> 4) as usize) * 4
    }

    /// The 9 flag bits (NS … FIN).
    pub fn flags(&self) -> u16 {
        get_u16(self.b(), field::OFF_FLAGS.start) & 0x01ff
    }

    pub fn window(&self) -> u16 {
        get_u16(self.b(), field::WINDOW.start)
    }

    pub fn checksum(&self) -> u16 {
        get_u16(self.b(), field::CHECKSUM.start)
    }

    pub fn payload(&self) -> &[u8] {
        &self.b()[self.header_len()..]
    }

    /// True if the checksum over the whole buffer (header and payload) is right for this pseudo-header.
    pub fn verify_checksum(&self, pseudo: u32) -> bool {
        checksum::fold(checksum::sum(pseudo, self.b())) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    fn bm(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }

    pub fn set_src_port(&mut self, v: u16) {
        set_u16(self.bm(), field::SRC_PORT.start, v);
    }

    pub fn set_dst_port(&mut self, v: u16) {
        set_u16(self.bm(), field::DST_PORT.start, v);
    }

    pub fn set_checksum(&mut self, v: u16) {
        set_u16(self.bm(), field::CHECKSUM.start, v);
    }

    /// Computes the checksum over the whole buffer.
    pub fn fill_checksum(&mut self, pseudo: u32) {
        self.set_checksum(0);
        let c = !checksum::fold(checksum::sum(pseudo, self.buffer.as_ref()));
        self.set_checksum(c);
    }
}

/// A TCP header without options, owned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpRepr {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u16,
    pub window: u16,
}

impl TcpRepr {
    pub fn parse<T: AsRef<[u8]>>(p: &TcpPacket<T>) -> Result<TcpRepr> {
        Ok(TcpRepr {
            src_port: p.src_port(),
            dst_port: p.dst_port(),
            seq: p.seq(),
            ack: p.ack(),
            flags: p.flags(),
            window: p.window(),
        })
    }

    pub const fn buffer_len(&self, payload_len: usize) -> usize {
        HEADER_LEN + payload_len
    }

    /// Writes the header (payload already in place after it) and the checksum.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut TcpPacket<T>, pseudo: u32) {
        p.set_src_port(self.src_port);
        p.set_dst_port(self.dst_port);
        let b = p.bm();
        set_u32(b, field::SEQ.start, self.seq);
        set_u32(b, field::ACK.start, self.ack);
        set_u16(b, field::OFF_FLAGS.start, (5 << 12) | (self.flags & 0x01ff));
        set_u16(b, field::WINDOW.start, self.window);
        set_u16(b, field::URGENT.start, 0);
        p.fill_checksum(pseudo);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emit_parse_and_checksum() {
        let mut b = [0u8; 24];
        b[20..].copy_from_slice(b"data");
        let pseudo = checksum::pseudo_v4([10, 0, 0, 1], [10, 0, 0, 2], 6, 24);
        let r = TcpRepr { src_port: 40000, dst_port: 22, seq: 1, ack: 2, flags: SYN | ACK, window: 65535 };
        r.emit(&mut TcpPacket::new_unchecked(&mut b[..]), pseudo);
        let p = TcpPacket::new_checked(&b[..]).unwrap();
        assert_eq!(TcpRepr::parse(&p).unwrap(), r);
        assert_eq!((p.header_len(), p.payload()), (20, &b"data"[..]));
        assert!(p.verify_checksum(pseudo));
    }

    #[test]
    fn bad_offsets() {
        let mut b = [0u8; 20];
        b[12] = 0x40;
        assert_eq!(TcpPacket::new_checked(&b[..]).unwrap_err(), WireError::Malformed);
        b[12] = 0x60;
        assert_eq!(TcpPacket::new_checked(&b[..]).unwrap_err(), WireError::Truncated);
    }
}
