//! ICMP for IPv4 (RFC 792): echo, destination unreachable, time exceeded.

use super::{checksum, get_u16, set_u16, Field, Result, WireError};

mod field {
    use super::Field;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Field = 2..4;
    pub const IDENT: Field = 4..6;
    pub const SEQ: Field = 6..8;
}

pub const HEADER_LEN: usize = 8;

pub const ECHO_REPLY: u8 = 0;
pub const DST_UNREACHABLE: u8 = 3;
pub const ECHO_REQUEST: u8 = 8;
pub const TIME_EXCEEDED: u8 = 11;

/// A view of an ICMPv4 message.
#[derive(Debug, Clone)]
pub struct Icmpv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv4Packet<T> {
    pub const fn new_unchecked(buffer: T) -> Self {
        Icmpv4Packet { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Self> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(Icmpv4Packet { buffer })
    }

    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    pub fn ident(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::IDENT.start)
    }

    pub fn seq(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::SEQ.start)
    }

    /// After the 8-byte header: echo data, or the invoking packet of an error.
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }

    pub fn verify_checksum(&self) -> bool {
        checksum::fold(checksum::sum(0, self.buffer.as_ref())) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv4Packet<T> {
    pub fn fill_checksum(&mut self) {
        set_u16(self.buffer.as_mut(), field::CHECKSUM.start, 0);
        let c = checksum::checksum(self.buffer.as_ref());
        set_u16(self.buffer.as_mut(), field::CHECKSUM.start, c);
    }

    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }
}

/// An ICMPv4 message, owned but for its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icmpv4Repr<'a> {
    EchoRequest {
        ident: u16,
        seq: u16,
        data: &'a [u8],
    },
    EchoReply {
        ident: u16,
        seq: u16,
        data: &'a [u8],
    },
    /// `data`: the invoking IP header and at least 8 bytes of its payload.
    DstUnreachable {
        code: u8,
        data: &'a [u8],
    },
    TimeExceeded {
        code: u8,
        data: &'a [u8],
    },
    Other {
        msg_type: u8,
        code: u8,
    },
}

impl<'a> Icmpv4Repr<'a> {
    pub fn parse<T: AsRef<[u8]> + ?Sized>(p: &Icmpv4Packet<&'a T>) -> Result<Icmpv4Repr<'a>> {
        if !p.verify_checksum() {
            return Err(WireError::Malformed);
        }
        let buf: &'a T = p.buffer;
        let data = &buf.as_ref()[HEADER_LEN..];
        Ok(match (p.msg_type(), p.code()) {
            (ECHO_REQUEST, 0) => Icmpv4Repr::EchoRequest { ident: p.ident(), seq: p.seq(), data },
            (ECHO_REPLY, 0) => Icmpv4Repr::EchoReply { ident: p.ident(), seq: p.seq(), data },
            (DST_UNREACHABLE, code) => Icmpv4Repr::DstUnreachable { code, data },
            (TIME_EXCEEDED, code) => Icmpv4Repr::TimeExceeded { code, data },
            (msg_type, code) => Icmpv4Repr::Other { msg_type, code },
        })
    }

    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
            + match self {
                Icmpv4Repr::EchoRequest { data, .. }
                | Icmpv4Repr::EchoReply { data, .. }
                | Icmpv4Repr::DstUnreachable { data, .. }
                | Icmpv4Repr::TimeExceeded { data, .. } => data.len(),
                Icmpv4Repr::Other { .. } => 0,
            }
    }

    /// Writes the message and its checksum into a buffer of exactly `buffer_len()` bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Icmpv4Packet<T>) {
        let (t, c, rest, data): (u8, u8, u32, &[u8]) = match *self {
            Icmpv4Repr::EchoRequest { ident, seq, data } => (ECHO_REQUEST, 0, (ident as u32) << 16 | seq as u32, data),
            Icmpv4Repr::EchoReply { ident, seq, data } => (ECHO_REPLY, 0, (ident as u32) << 16 | seq as u32, data),
            Icmpv4Repr::DstUnreachable { code, data } => (DST_UNREACHABLE, code, 0, data),
            Icmpv4Repr::TimeExceeded { code, data } => (TIME_EXCEEDED, code, 0, data),
            Icmpv4Repr::Other { msg_type, code } => (msg_type, code, 0, &[]),
        };
        let b = p.buffer.as_mut();
        b[field::TYPE] = t;
        b[field::CODE] = c;
        b[4..8].copy_from_slice(&rest.to_be_bytes());
        b[HEADER_LEN..HEADER_LEN + data.len()].copy_from_slice(data);
        p.fill_checksum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_round_trip() {
        let r = Icmpv4Repr::EchoRequest { ident: 0x1234, seq: 7, data: b"abcdefgh" };
        let mut b = vec![0u8; r.buffer_len()];
        r.emit(&mut Icmpv4Packet::new_unchecked(&mut b[..]));
        assert_eq!(&b[..2], &[8, 0]);
        let p = Icmpv4Packet::new_checked(&b[..]).unwrap();
        assert_eq!(Icmpv4Repr::parse(&p).unwrap(), r);
        b[9] ^= 1;
        let p = Icmpv4Packet::new_checked(&b[..]).unwrap();
        assert_eq!(Icmpv4Repr::parse(&p), Err(WireError::Malformed));
    }

    #[test]
    fn time_exceeded_carries_the_invoking_packet() {
        let invoking = [0x45u8; 28];
        let r = Icmpv4Repr::TimeExceeded { code: 0, data: &invoking };
        let mut b = vec![0u8; r.buffer_len()];
        r.emit(&mut Icmpv4Packet::new_unchecked(&mut b[..]));
        let p = Icmpv4Packet::new_checked(&b[..]).unwrap();
        assert_eq!(Icmpv4Repr::parse(&p).unwrap(), r);
        assert_eq!(Icmpv4Packet::new_checked(&b[..7]).unwrap_err(), WireError::Truncated);
    }
}
