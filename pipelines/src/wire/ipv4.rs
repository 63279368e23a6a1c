//! IPv4 (RFC 791). Options are carried, not interpreted.

use super::{checksum, get_u16, set_u16, Field, IpProtocol, Result, WireError};

/// An IPv4 address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Ipv4Addr(pub [u8; 4]);

impl Ipv4Addr {
    pub const UNSPECIFIED: Ipv4Addr = Ipv4Addr([0; 4]);
    pub const BROADCAST: Ipv4Addr = Ipv4Addr([255; 4]);

    pub const fn new(a: u8, b: u8, c: u8, d: u8) -> Ipv4Addr {
        Ipv4Addr([a, b, c, d])
    }

    #[inline]
    pub fn to_u32(self) -> u32 {
        u32::from_be_bytes(self.0)
    }

    #[inline]
    pub fn from_u32(v: u32) -> Ipv4Addr {
        Ipv4Addr(v.to_be_bytes())
    }

    pub fn is_multicast(&self) -> bool {
        self.0[0] & 0xf0 == 0xe0
    }
}

impl From<std::net::Ipv4Addr> for Ipv4Addr {
    fn from(a: std::net::Ipv4Addr) -> Self {
        Ipv4Addr(a.octets())
    }
}

impl From<Ipv4Addr> for std::net::Ipv4Addr {
    fn from(a: Ipv4Addr) -> Self {
        std::net::Ipv4Addr::from(a.0)
    }
}

impl core::fmt::Display for Ipv4Addr {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        std::net::Ipv4Addr::from(*self).fmt(f)
    }
}

impl core::fmt::Debug for Ipv4Addr {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Display::fmt(self, f)
    }
}

mod field {
    use super::Field;
    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: Field = 2..4;
    pub const IDENT: Field = 4..6;
    pub const FLG_OFF: Field = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Field = 10..12;
    pub const SRC: Field = 12..16;
    pub const DST: Field = 16..20;
}

/// Length of a header without options.
pub const HEADER_LEN: usize = field::DST.end;
/// The first byte of a header without options: version 4, five 32-bit words.
pub const VER_IHL_NO_OPTIONS: u8 = 0x45;
/// In the flags and fragment offset word: do not fragment.
pub const FLAG_DONT_FRAG: u16 = 0x4000;
/// In the flags and fragment offset word: more fragments follow.
pub const FLAG_MORE_FRAGS: u16 = 0x2000;
/// In the flags and fragment offset word: the fragment offset (in 8-byte units).
pub const FRAG_OFFSET: u16 = 0x1fff;

/// A view of an IPv4 packet.
#[derive(Debug, Clone)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    /// Checks the version, that the header and the total length fit in the buffer, and that the total
    /// length covers the header. Bytes past the total length (Ethernet padding) are allowed.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Ipv4Packet { buffer };
        let len = p.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if p.version() != 4 || p.header_len() < HEADER_LEN {
            return Err(WireError::Malformed);
        }
        if len < p.header_len() || len < p.total_len() as usize {
            return Err(WireError::Truncated);
        }
        if (p.total_len() as usize) < p.header_len() {
            return Err(WireError::Malformed);
        }
        Ok(p)
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    pub fn version(&self) -> u8 {
        self.b()[field::VER_IHL] >> 4
    }

    /// Header length in bytes.
    pub fn header_len(&self) -> usize {
        ((self.b()[field::VER_IHL] & 0x0f) as usize) * 4
    }

    pub fn dscp_ecn(&self) -> u8 {
        self.b()[field::DSCP_ECN]
    }

    pub fn total_len(&self) -> u16 {
        get_u16(self.b(), field::LENGTH.start)
    }

    pub fn ident(&self) -> u16 {
        get_u16(self.b(), field::IDENT.start)
    }

    pub fn dont_frag(&self) -> bool {
        get_u16(self.b(), field::FLG_OFF.start) & FLAG_DONT_FRAG != 0
    }

    pub fn more_frags(&self) -> bool {
        get_u16(self.b(), field::FLG_OFF.start) & FLAG_MORE_FRAGS != 0
    }

    /// Fragment offset in bytes.
    pub fn frag_offset(&self) -> u16 {
        (get_u16(self.b(), field::FLG_OFF.start) & FRAG_OFFSET) * 8
    }

    /// A fragment, the first or a later one: more fragments follow, or it has an offset.
    #[inline]
    pub fn is_fragment(&self) -> bool {
        get_u16(self.b(), field::FLG_OFF.start) & (FLAG_MORE_FRAGS | FRAG_OFFSET) != 0
    }

    /// A fragment other than the first: it has an offset (and no upper-layer header).
    #[inline]
    pub fn is_later_fragment(&self) -> bool {
        get_u16(self.b(), field::FLG_OFF.start) & FRAG_OFFSET != 0
    }

    pub fn ttl(&self) -> u8 {
        self.b()[field::TTL]
    }

    pub fn protocol(&self) -> IpProtocol {
        self.protocol_number().into()
    }

    /// The protocol field as a number, for a fast path that keeps or compares the number itself
    /// (against `IpProtocol::number()`) rather than convert it to an `IpProtocol` and back.
    #[inline]
    pub fn protocol_number(&self) -> u8 {
        self.b()[field::PROTOCOL]
    }

    pub fn checksum(&self) -> u16 {
        get_u16(self.b(), field::CHECKSUM.start)
    }

    pub fn src(&self) -> Ipv4Addr {
        Ipv4Addr(self.b()[field::SRC].try_into().expect("4"))
    }

    pub fn dst(&self) -> Ipv4Addr {
        Ipv4Addr(self.b()[field::DST].try_into().expect("4"))
    }

    /// True if the header checksum is correct.
    pub fn verify_checksum(&self) -> bool {
        checksum::fold(checksum::sum(0, &self.b()[..self.header_len()])) == 0xffff
    }

    /// The payload, up to the total length.
    pub fn payload(&self) -> &[u8] {
        &self.b()[self.header_len()..self.total_len() as usize]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    fn bm(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }

    pub fn set_ttl(&mut self, ttl: u8) {
        self.bm()[field::TTL] = ttl;
    }

    pub fn set_checksum(&mut self, c: u16) {
        set_u16(self.bm(), field::CHECKSUM.start, c);
    }

    pub fn set_src(&mut self, a: Ipv4Addr) {
        self.bm()[field::SRC].copy_from_slice(&a.0);
    }

    pub fn set_dst(&mut self, a: Ipv4Addr) {
        self.bm()[field::DST].copy_from_slice(&a.0);
    }

    /// Recomputes the header checksum.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let hl = self.header_len();
        let c = checksum::checksum(&self.buffer.as_ref()[..hl]);
        self.set_checksum(c);
    }

    /// Decrements the TTL and updates the checksum incrementally; returns the new TTL. The caller checks
    /// for TTL ≤ 1 first (time exceeded); a TTL of 0 wraps to 255, its checksum still right.
    #[inline(always)]
    pub fn decrement_ttl(&mut self) -> u8 {
        let b = self.bm();
        let ttl = b[field::TTL];
        if ttl == 0 {
            let old = u16::from_be_bytes([0, b[field::PROTOCOL]]);
            b[field::TTL] = 255;
            let c = checksum::update16(get_u16(b, field::CHECKSUM.start), old, old | 0xff00);
            set_u16(b, field::CHECKSUM.start, c);
            return 255;
        }
        b[field::TTL] = ttl - 1;
        // The TTL is the high byte of its 16-bit word: the sum drops by 0x0100, so the checksum (its
        // complement) grows by 0x0100, with the end-around carry; 0xffff folds to 0 as a full
        // computation would give (as Linux's ip_decrease_ttl).
        let c = get_u16(b, field::CHECKSUM.start) as u32 + 0x0100;
        set_u16(b, field::CHECKSUM.start, (c + (c >= 0xffff) as u32) as u16);
        ttl - 1
    }

    /// Rewrites the source address, updating the header checksum incrementally; returns the old one
    /// (for the transport checksum, whose pseudo-header covers it too).
    pub fn rewrite_src(&mut self, a: Ipv4Addr) -> Ipv4Addr {
        let old = self.src();
        let c = checksum::update32(self.checksum(), old.to_u32(), a.to_u32());
        self.set_src(a);
        self.set_checksum(c);
        old
    }

    /// As [`Ipv4Packet::rewrite_src`] for the destination.
    pub fn rewrite_dst(&mut self, a: Ipv4Addr) -> Ipv4Addr {
        let old = self.dst();
        let c = checksum::update32(self.checksum(), old.to_u32(), a.to_u32());
        self.set_dst(a);
        self.set_checksum(c);
        old
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (h, t) = (self.header_len(), self.total_len() as usize);
        &mut self.bm()[h..t]
    }
}

/// An IPv4 header without options, owned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Repr {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: IpProtocol,
    pub payload_len: usize,
    pub ttl: u8,
    pub dscp_ecn: u8,
    pub ident: u16,
    pub dont_frag: bool,
}

impl Ipv4Repr {
    /// Parses a header; the checksum must be right. Fragments other than the first and options are
    /// accepted (the fields say so).
    pub fn parse<T: AsRef<[u8]>>(p: &Ipv4Packet<T>) -> Result<Ipv4Repr> {
        if !p.verify_checksum() {
            return Err(WireError::Malformed);
        }
        Ok(Ipv4Repr {
            src: p.src(),
            dst: p.dst(),
            protocol: p.protocol(),
            payload_len: p.total_len() as usize - p.header_len(),
            ttl: p.ttl(),
            dscp_ecn: p.dscp_ecn(),
            ident: p.ident(),
            dont_frag: p.dont_frag(),
        })
    }

    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header (no options) with its checksum; the buffer holds at least the header.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Ipv4Packet<T>) {
        let b = p.bm();
        b[field::VER_IHL] = 0x45;
        b[field::DSCP_ECN] = self.dscp_ecn;
        set_u16(b, field::LENGTH.start, (HEADER_LEN + self.payload_len) as u16);
        set_u16(b, field::IDENT.start, self.ident);
        set_u16(b, field::FLG_OFF.start, if self.dont_frag { FLAG_DONT_FRAG } else { 0 });
        b[field::TTL] = self.ttl;
        b[field::PROTOCOL] = self.protocol.into();
        p.set_src(self.src);
        p.set_dst(self.dst);
        p.fill_checksum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 10.0.0.1 -> 10.1.0.5, UDP, TTL 64, 8 bytes of payload, DF.
    static PACKET: [u8; 28] = [
        0x45, 0x00, 0x00, 0x1c, 0x12, 0x34, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 10, 0, 0, 1, 10, 1, 0, 5, //
        1, 2, 3, 4, 5, 6, 7, 8,
    ];

    fn packet() -> [u8; 28] {
        let mut b = PACKET;
        Ipv4Packet::new_unchecked(&mut b[..]).fill_checksum();
        b
    }

    #[test]
    fn parse_and_emit() {
        let b = packet();
        let p = Ipv4Packet::new_checked(&b[..]).unwrap();
        let r = Ipv4Repr::parse(&p).unwrap();
        assert_eq!(r.src, Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!((r.protocol, r.payload_len, r.ttl, r.dont_frag, r.ident), (IpProtocol::Udp, 8, 64, true, 0x1234));
        assert_eq!(p.payload(), &[1, 2, 3, 4, 5, 6, 7, 8]);
        let mut out = [0u8; 28];
        out[20..].copy_from_slice(&PACKET[20..]);
        r.emit(&mut Ipv4Packet::new_unchecked(&mut out[..]));
        assert_eq!(out, b);
    }

    #[test]
    fn ttl_decrement_keeps_the_checksum_valid() {
        let mut b = packet();
        let mut p = Ipv4Packet::new_unchecked(&mut b[..]);
        for expect in (0..64).rev() {
            assert_eq!(p.decrement_ttl(), expect);
            assert!(p.verify_checksum(), "ttl {expect}");
        }
    }

    #[test]
    fn address_rewrite_keeps_the_checksum_valid() {
        let mut b = packet();
        let mut p = Ipv4Packet::new_unchecked(&mut b[..]);
        assert_eq!(p.rewrite_src(Ipv4Addr::new(172, 24, 4, 10)), Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(p.rewrite_dst(Ipv4Addr::new(255, 255, 255, 255)), Ipv4Addr::new(10, 1, 0, 5));
        assert!(p.verify_checksum());
    }

    #[test]
    fn fragments_first_and_later() {
        let b = packet();
        let p = Ipv4Packet::new_unchecked(&b[..]);
        assert_eq!(b[0], VER_IHL_NO_OPTIONS);
        assert!(p.dont_frag() && !p.more_frags() && !p.is_fragment() && !p.is_later_fragment());
        let mut first = b;
        first[6..8].copy_from_slice(&FLAG_MORE_FRAGS.to_be_bytes()); // MF, offset 0
        let p = Ipv4Packet::new_unchecked(&first[..]);
        assert!(p.more_frags() && p.is_fragment() && !p.is_later_fragment() && !p.dont_frag());
        let mut last = b;
        last[6..8].copy_from_slice(&[0x00, 0xb9]); // no MF, offset 185 * 8
        let p = Ipv4Packet::new_unchecked(&last[..]);
        assert!(!p.more_frags() && p.is_fragment() && p.is_later_fragment());
        assert_eq!(p.frag_offset(), 1480);
    }

    #[test]
    fn bad_headers_are_refused() {
        let b = packet();
        assert_eq!(Ipv4Packet::new_checked(&b[..19]).unwrap_err(), WireError::Truncated);
        assert_eq!(Ipv4Packet::new_checked(&b[..27]).unwrap_err(), WireError::Truncated); // total length 28
        let mut v = b;
        v[0] = 0x65;
        assert_eq!(Ipv4Packet::new_checked(&v[..]).unwrap_err(), WireError::Malformed);
        let mut ihl = b;
        ihl[0] = 0x44;
        assert_eq!(Ipv4Packet::new_checked(&ihl[..]).unwrap_err(), WireError::Malformed);
        let mut short_total = b;
        short_total[3] = 10;
        assert_eq!(Ipv4Packet::new_checked(&short_total[..]).unwrap_err(), WireError::Malformed);
        let mut bad_sum = b;
        bad_sum[10] ^= 1;
        assert_eq!(Ipv4Repr::parse(&Ipv4Packet::new_checked(&bad_sum[..]).unwrap()), Err(WireError::Malformed));
    }
}
