//! ARP for IPv4 over Ethernet (RFC 826); other hardware or protocol types are `Unsupported`.

use super::{get_u16, set_u16, Field, Ipv4Addr, Mac, Result, WireError};

mod field {
    use super::Field;
    pub const HTYPE: Field = 0..2;
    pub const PTYPE: Field = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Field = 6..8;
    pub const SHA: Field = 8..14;
    pub const SPA: Field = 14..18;
    pub const THA: Field = 18..24;
    pub const TPA: Field = 24..28;
}

pub const PACKET_LEN: usize = field::TPA.end;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArpOperation {
    Request,
    Reply,
    Unknown(u16),
}

impl From<u16> for ArpOperation {
    fn from(v: u16) -> Self {
        match v {
            1 => ArpOperation::Request,
            2 => ArpOperation::Reply,
            v => ArpOperation::Unknown(v),
        }
    }
}

impl From<ArpOperation> for u16 {
    fn from(o: ArpOperation) -> u16 {
        match o {
            ArpOperation::Request => 1,
            ArpOperation::Reply => 2,
            ArpOperation::Unknown(v) => v,
        }
    }
}

/// A view of an ARP packet.
#[derive(Debug, Clone)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    pub const fn new_unchecked(buffer: T) -> Self {
        ArpPacket { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Self> {
        if buffer.as_ref().len() < PACKET_LEN {
            return Err(WireError::Truncated);
        }
        Ok(ArpPacket { buffer })
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    pub fn htype(&self) -> u16 {
        get_u16(self.b(), field::HTYPE.start)
    }

    pub fn ptype(&self) -> u16 {
        get_u16(self.b(), field::PTYPE.start)
    }

    pub fn hlen(&self) -> u8 {
        self.b()[field::HLEN]
    }

    pub fn plen(&self) -> u8 {
        self.b()[field::PLEN]
    }

    pub fn operation(&self) -> ArpOperation {
        get_u16(self.b(), field::OPER.start).into()
    }

    pub fn sender_mac(&self) -> Mac {
        Mac(self.b()[field::SHA].try_into().expect("6"))
    }

    pub fn sender_ip(&self) -> Ipv4Addr {
        Ipv4Addr(self.b()[field::SPA].try_into().expect("4"))
    }

    pub fn target_mac(&self) -> Mac {
        Mac(self.b()[field::THA].try_into().expect("6"))
    }

    pub fn target_ip(&self) -> Ipv4Addr {
        Ipv4Addr(self.b()[field::TPA].try_into().expect("4"))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ArpPacket<T> {
    fn bm(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }

    pub fn set_operation(&mut self, o: ArpOperation) {
        set_u16(self.bm(), field::OPER.start, o.into());
    }

    pub fn set_sender(&mut self, mac: Mac, ip: Ipv4Addr) {
        self.bm()[field::SHA].copy_from_slice(&mac.0);
        self.bm()[field::SPA].copy_from_slice(&ip.0);
    }

    pub fn set_target(&mut self, mac: Mac, ip: Ipv4Addr) {
        self.bm()[field::THA].copy_from_slice(&mac.0);
        self.bm()[field::TPA].copy_from_slice(&ip.0);
    }
}

/// An Ethernet/IPv4 ARP packet, owned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpRepr {
    pub operation: ArpOperation,
    pub sender_mac: Mac,
    pub sender_ip: Ipv4Addr,
    pub target_mac: Mac,
    pub target_ip: Ipv4Addr,
}

impl ArpRepr {
    pub fn parse<T: AsRef<[u8]>>(p: &ArpPacket<T>) -> Result<ArpRepr> {
        if p.htype() != 1 || p.ptype() != 0x0800 || p.hlen() != 6 || p.plen() != 4 {
            return Err(WireError::Unsupported);
        }
        Ok(ArpRepr {
            operation: p.operation(),
            sender_mac: p.sender_mac(),
            sender_ip: p.sender_ip(),
            target_mac: p.target_mac(),
            target_ip: p.target_ip(),
        })
    }

    pub const fn buffer_len(&self) -> usize {
        PACKET_LEN
    }

    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut ArpPacket<T>) {
        let b = p.bm();
        set_u16(b, field::HTYPE.start, 1);
        set_u16(b, field::PTYPE.start, 0x0800);
        b[field::HLEN] = 6;
        b[field::PLEN] = 4;
        p.set_operation(self.operation);
        p.set_sender(self.sender_mac, self.sender_ip);
        p.set_target(self.target_mac, self.target_ip);
    }

    /// The reply a host owning `target_ip` at `mac` sends to this request.
    pub fn reply(&self, mac: Mac) -> ArpRepr {
        ArpRepr {
            operation: ArpOperation::Reply,
            sender_mac: mac,
            sender_ip: self.target_ip,
            target_mac: self.sender_mac,
            target_ip: self.sender_ip,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static REQUEST: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, // htype, ptype, hlen, plen, request
        0xfa, 0x16, 0x3e, 0x00, 0x00, 0x01, 10, 0, 0, 1, // sender
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 10, 0, 0, 2, // target
    ];

    #[test]
    fn parse_emit_and_reply() {
        let r = ArpRepr::parse(&ArpPacket::new_checked(&REQUEST[..]).unwrap()).unwrap();
        assert_eq!(r.operation, ArpOperation::Request);
        assert_eq!((r.sender_ip, r.target_ip), (Ipv4Addr([10, 0, 0, 1]), Ipv4Addr([10, 0, 0, 2])));
        let mut out = [0u8; 28];
        r.emit(&mut ArpPacket::new_unchecked(&mut out[..]));
        assert_eq!(out, REQUEST);
        let rep = r.reply(Mac([2, 0, 0, 0, 0, 2]));
        assert_eq!((rep.sender_ip, rep.target_mac, rep.operation), (r.target_ip, r.sender_mac, ArpOperation::Reply));
    }

    #[test]
    fn other_protocols_and_short_packets() {
        let mut b = REQUEST;
        b[2] = 0x86;
        assert_eq!(ArpRepr::parse(&ArpPacket::new_checked(&b[..]).unwrap()), Err(WireError::Unsupported));
        assert_eq!(ArpPacket::new_checked(&REQUEST[..27]).unwrap_err(), WireError::Truncated);
    }
}
