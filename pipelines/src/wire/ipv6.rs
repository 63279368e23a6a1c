//! IPv6 (RFC 8200), with a walk over the extension headers to the upper-layer protocol.

use super::{get_u16, get_u32, set_u16, set_u32, Field, IpProtocol, Result, WireError};

/// An IPv6 address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Ipv6Addr(pub [u8; 16]);

impl Ipv6Addr {
    pub const UNSPECIFIED: Ipv6Addr = Ipv6Addr([0; 16]);
    /// ff02::1
    pub const ALL_NODES: Ipv6Addr = Ipv6Addr([0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    /// ff02::2
    pub const ALL_ROUTERS: Ipv6Addr = Ipv6Addr([0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);

    pub fn is_multicast(&self) -> bool {
        self.0[0] == 0xff
    }

    pub fn is_unspecified(&self) -> bool {
        *self == Ipv6Addr::UNSPECIFIED
    }

    pub fn is_link_local(&self) -> bool {
        self.0[0] == 0xfe && self.0[1] & 0xc0 == 0x80
    }

    /// The solicited-node multicast address ff02::1:ffXX:XXXX of this address.
    pub fn solicited_node(&self) -> Ipv6Addr {
        let mut a = [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, 0];
        a[13..].copy_from_slice(&self.0[13..]);
        Ipv6Addr(a)
    }

    /// The EUI-64 link-local address fe80::/64 of a MAC.
    pub fn link_local_from_mac(mac: super::Mac) -> Ipv6Addr {
        let m = mac.0;
        Ipv6Addr([0xfe, 0x80, 0, 0, 0, 0, 0, 0, m[0] ^ 2, m[1], m[2], 0xff, 0xfe, m[3], m[4], m[5]])
    }

    #[inline]
    pub fn to_u128(self) -> u128 {
        u128::from_be_bytes(self.0)
    }
}

impl From<std::net::Ipv6Addr> for Ipv6Addr {
    fn from(a: std::net::Ipv6Addr) -> Self {
        Ipv6Addr(a.octets())
    }
}

impl From<Ipv6Addr> for std::net::Ipv6Addr {
    fn from(a: Ipv6Addr) -> Self {
        std::net::Ipv6Addr::from(a.0)
    }
}

impl core::fmt::Display for Ipv6Addr {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        std::net::Ipv6Addr::from(*self).fmt(f)
    }
}

impl core::fmt::Debug for Ipv6Addr {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Display::fmt(self, f)
    }
}

mod field {
    use super::Field;
    pub const VER_TC_FLOW: Field = 0..4;
    pub const LENGTH: Field = 4..6;
    pub const NXT_HDR: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: Field = 8..24;
    pub const DST: Field = 24..40;
}

pub const HEADER_LEN: usize = field::DST.end;

/// At most this many extension headers are walked; more is treated as malformed (a bound against
/// crafted chains).
pub const MAX_EXT_HEADERS: usize = 8;

/// A view of an IPv6 packet.
#[derive(Debug, Clone)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv6Packet { buffer }
    }

    /// Checks the version and that the payload length fits in the buffer.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Ipv6Packet { buffer };
        let len = p.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if p.version() != 6 {
            return Err(WireError::Malformed);
        }
        if len < HEADER_LEN + p.payload_len() as usize {
            return Err(WireError::Truncated);
        }
        Ok(p)
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    pub fn version(&self) -> u8 {
        self.b()[0] >> 4
    }

    pub fn traffic_class(&self) -> u8 {
        ((get_u16(self.b(), 0) >> 4) & 0xff) as u8
    }

    pub fn flow_label(&self) -> u32 {
        get_u32(self.b(), 0) & 0x000f_ffff
    }

    pub fn payload_len(&self) -> u16 {
        get_u16(self.b(), field::LENGTH.start)
    }

    pub fn next_header(&self) -> IpProtocol {
        self.b()[field::NXT_HDR].into()
    }

    pub fn hop_limit(&self) -> u8 {
        self.b()[field::HOP_LIMIT]
    }

    pub fn src(&self) -> Ipv6Addr {
        Ipv6Addr(self.b()[field::SRC].try_into().expect("16"))
    }

    pub fn dst(&self) -> Ipv6Addr {
        Ipv6Addr(self.b()[field::DST].try_into().expect("16"))
    }

    /// Everything after the fixed header, up to the payload length.
    pub fn payload(&self) -> &[u8] {
        &self.b()[HEADER_LEN..HEADER_LEN + self.payload_len() as usize]
    }

    /// Walks the extension headers (hop-by-hop, routing, fragment, destination options) and returns the
    /// upper-layer protocol and its offset from the start of the packet. A non-first fragment yields
    /// `IpProtocol::Ipv6Frag` at the fragment header's payload: its upper layer is not there.
    pub fn upper_layer(&self) -> Result<(IpProtocol, usize)> {
        let end = HEADER_LEN + self.payload_len() as usize;
        let b = self.b();
        let mut next = self.next_header();
        let mut at = HEADER_LEN;
        for _ in 0..MAX_EXT_HEADERS {
            match next {
                IpProtocol::HopByHop | IpProtocol::Ipv6Route | IpProtocol::Ipv6Opts => {
                    if at + 2 > end {
                        return Err(WireError::Truncated);
                    }
                    let len = (b[at + 1] as usize + 1) * 8;
                    next = b[at].into();
                    at += len;
                    if at > end {
                        return Err(WireError::Truncated);
                    }
                }
                IpProtocol::Ipv6Frag => {
                    if at + 8 > end {
                        return Err(WireError::Truncated);
                    }
                    let offset = get_u16(b, at + 2) & 0xfff8;
                    next = b[at].into();
                    at += 8;
                    if offset != 0 {
                        return Ok((IpProtocol::Ipv6Frag, at));
                    }
                }
                proto => return Ok((proto, at)),
            }
        }
        Err(WireError::Malformed)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    fn bm(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }

    pub fn set_hop_limit(&mut self, h: u8) {
        self.bm()[field::HOP_LIMIT] = h;
    }

    pub fn set_src(&mut self, a: Ipv6Addr) {
        self.bm()[field::SRC].copy_from_slice(&a.0);
    }

    pub fn set_dst(&mut self, a: Ipv6Addr) {
        self.bm()[field::DST].copy_from_slice(&a.0);
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = HEADER_LEN + self.payload_len() as usize;
        &mut self.bm()[HEADER_LEN..end]
    }
}

/// An IPv6 fixed header, owned (extension headers are the payload's business).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Repr {
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub next_header: IpProtocol,
    pub payload_len: usize,
    pub hop_limit: u8,
    pub traffic_class: u8,
    pub flow_label: u32,
}

impl Ipv6Repr {
    pub fn parse<T: AsRef<[u8]>>(p: &Ipv6Packet<T>) -> Result<Ipv6Repr> {
        Ok(Ipv6Repr {
            src: p.src(),
            dst: p.dst(),
            next_header: p.next_header(),
            payload_len: p.payload_len() as usize,
            hop_limit: p.hop_limit(),
            traffic_class: p.traffic_class(),
            flow_label: p.flow_label(),
        })
    }

    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Ipv6Packet<T>) {
        let b = p.bm();
        let first = (6u32 << 28) | ((self.traffic_class as u32) << 20) | (self.flow_label & 0x000f_ffff);
        set_u32(b, field::VER_TC_FLOW.start, first);
        set_u16(b, field::LENGTH.start, self.payload_len as u16);
        b[field::NXT_HDR] = self.next_header.into();
        b[field::HOP_LIMIT] = self.hop_limit;
        p.set_src(self.src);
        p.set_dst(self.dst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(last: u8) -> Ipv6Addr {
        let mut a = [0u8; 16];
        a[0] = 0x20;
        a[1] = 0x01;
        a[2] = 0x0d;
        a[3] = 0xb8;
        a[15] = last;
        Ipv6Addr(a)
    }

    fn packet(next: IpProtocol, payload: &[u8]) -> Vec<u8> {
        let r = Ipv6Repr {
            src: addr(1),
            dst: addr(2),
            next_header: next,
            payload_len: payload.len(),
            hop_limit: 64,
            traffic_class: 0xb8,
            flow_label: 0x12345,
        };
        let mut b = vec![0u8; HEADER_LEN + payload.len()];
        r.emit(&mut Ipv6Packet::new_unchecked(&mut b[..]));
        b[HEADER_LEN..].copy_from_slice(payload);
        b
    }

    #[test]
    fn parse_and_emit() {
        let b = packet(IpProtocol::Udp, &[9; 8]);
        let p = Ipv6Packet::new_checked(&b[..]).unwrap();
        let r = Ipv6Repr::parse(&p).unwrap();
        assert_eq!((r.src, r.dst, r.hop_limit), (addr(1), addr(2), 64));
        assert_eq!((r.traffic_class, r.flow_label, r.payload_len), (0xb8, 0x12345, 8));
        assert_eq!(p.upper_layer().unwrap(), (IpProtocol::Udp, 40));
        assert_eq!(addr(1).to_string(), "2001:db8::1");
    }

    #[test]
    fn walks_extension_headers() {
        // hop-by-hop (8 bytes) -> destination options (16 bytes) -> fragment (offset 0) -> ICMPv6
        let mut ext = vec![60, 0, 1, 4, 0, 0, 0, 0];
        ext.extend_from_slice(&[44, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        ext.extend_from_slice(&[58, 0, 0, 0, 0, 0, 0, 1]);
        ext.extend_from_slice(&[128, 0, 0, 0]);
        let b = packet(IpProtocol::HopByHop, &ext);
        let p = Ipv6Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.upper_layer().unwrap(), (IpProtocol::Icmpv6, 40 + 32));
    }

    #[test]
    fn later_fragment_has_no_upper_layer() {
        let b = packet(IpProtocol::Ipv6Frag, &[17, 0, 0x05, 0x00, 0, 0, 0, 1, 1, 2, 3, 4]);
        let p = Ipv6Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.upper_layer().unwrap(), (IpProtocol::Ipv6Frag, 48));
    }

    #[test]
    fn truncated_and_endless_chains_are_refused() {
        let b = packet(IpProtocol::HopByHop, &[6, 3, 0, 0, 0, 0, 0, 0]); // claims 32 bytes, has 8
        assert_eq!(Ipv6Packet::new_checked(&b[..]).unwrap().upper_layer(), Err(WireError::Truncated));
        let chain: Vec<u8> = (0..10).flat_map(|_| [60u8, 0, 0, 0, 0, 0, 0, 0]).collect();
        let b = packet(IpProtocol::Ipv6Opts, &chain);
        assert_eq!(Ipv6Packet::new_checked(&b[..]).unwrap().upper_layer(), Err(WireError::Malformed));
        let b = packet(IpProtocol::Udp, &[0; 8]);
        assert_eq!(Ipv6Packet::new_checked(&b[..47]).unwrap_err(), WireError::Truncated);
        let mut v = b.clone();
        v[0] = 0x45;
        assert_eq!(Ipv6Packet::new_checked(&v[..]).unwrap_err(), WireError::Malformed);
    }

    #[test]
    fn special_addresses() {
        let a = addr(0x42);
        assert_eq!(a.solicited_node().to_string(), "ff02::1:ff00:42");
        let ll = Ipv6Addr::link_local_from_mac(super::super::Mac([0xfa, 0x16, 0x3e, 0x11, 0x22, 0x33]));
        assert_eq!(ll.to_string(), "fe80::f816:3eff:fe11:2233");
        assert!(ll.is_link_local() && Ipv6Addr::ALL_NODES.is_multicast());
    }
}
