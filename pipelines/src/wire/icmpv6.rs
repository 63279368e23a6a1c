//! ICMPv6 (RFC 4443) and neighbour discovery (RFC 4861): echo, errors, RS, RA, NS, NA and their options.

use super::{checksum, get_u16, get_u32, set_u16, set_u32, Field, Ipv6Addr, Mac, Result, WireError};

mod field {
    use super::Field;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Field = 2..4;
    /// Neighbour solicitation and advertisement: the target address, then the options.
    pub const ND_TARGET: Field = 8..24;
    pub const ND_OPTIONS: usize = 24;
}

pub const HEADER_LEN: usize = 4;
/// The fixed part of a neighbour solicitation or advertisement (up to its options).
pub const ND_HEADER_LEN: usize = field::ND_OPTIONS;

pub const DST_UNREACHABLE: u8 = 1;
pub const PACKET_TOO_BIG: u8 = 2;
pub const TIME_EXCEEDED: u8 = 3;
pub const ECHO_REQUEST: u8 = 128;
pub const ECHO_REPLY: u8 = 129;
pub const ROUTER_SOLICIT: u8 = 133;
pub const ROUTER_ADVERT: u8 = 134;
pub const NEIGHBOR_SOLICIT: u8 = 135;
pub const NEIGHBOR_ADVERT: u8 = 136;

/// NA flags.
pub const NA_ROUTER: u8 = 0x80;
pub const NA_SOLICITED: u8 = 0x40;
pub const NA_OVERRIDE: u8 = 0x20;
/// RA flags.
pub const RA_MANAGED: u8 = 0x80;
pub const RA_OTHER: u8 = 0x40;
/// Prefix information flags.
pub const PREFIX_ON_LINK: u8 = 0x80;
pub const PREFIX_AUTONOMOUS: u8 = 0x40;
/// Neighbour-discovery option types (RFC 4861 4.6).
pub const OPT_SOURCE_LINK_ADDR: u8 = 1;
pub const OPT_TARGET_LINK_ADDR: u8 = 2;

/// A view of an ICMPv6 message.
#[derive(Debug, Clone)]
pub struct Icmpv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv6Packet<T> {
    pub const fn new_unchecked(buffer: T) -> Self {
        Icmpv6Packet { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Self> {
        if buffer.as_ref().len() < 8 {
            return Err(WireError::Truncated);
        }
        Ok(Icmpv6Packet { buffer })
    }

    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// True if the checksum is right for the pseudo-header sum (`checksum::pseudo_v6`).
    pub fn verify_checksum(&self, pseudo: u32) -> bool {
        checksum::fold(checksum::sum(pseudo, self.buffer.as_ref())) == 0xffff
    }

    /// The target address of a neighbour solicitation or advertisement; `None` if the message is shorter
    /// than [`ND_HEADER_LEN`].
    pub fn nd_target(&self) -> Option<Ipv6Addr> {
        Some(Ipv6Addr(self.buffer.as_ref().get(field::ND_TARGET)?.try_into().expect("16")))
    }

    /// The options of a neighbour solicitation or advertisement, walked in place (empty if the message is
    /// shorter than [`ND_HEADER_LEN`]).
    pub fn nd_options(&self) -> NdOptions<'_> {
        NdOptions::new(self.buffer.as_ref().get(field::ND_OPTIONS..).unwrap_or_default())
    }
}

/// A walk over neighbour-discovery options that allocates nothing, for the fast path: each item is one
/// option's type and its bytes (type and length included). A zero length or an option past the end
/// (RFC 4861 4.6: the message is then to be discarded) yields one error and ends the walk.
#[derive(Debug, Clone)]
pub struct NdOptions<'a> {
    rest: &'a [u8],
}

impl<'a> NdOptions<'a> {
    /// The options in `b` (the bytes after a message's fixed part).
    pub fn new(b: &'a [u8]) -> NdOptions<'a> {
        NdOptions { rest: b }
    }

    /// The MAC of a source or target link-layer address option (`option`: its bytes, as the walk yields
    /// them); `None` for another length than Ethernet's 8 bytes.
    pub fn link_addr(option: &[u8]) -> Option<Mac> {
        (option.len() == 8).then(|| Mac(option[2..8].try_into().expect("6")))
    }
}

impl<'a> Iterator for NdOptions<'a> {
    type Item = Result<(u8, &'a [u8])>;

    fn next(&mut self) -> Option<Self::Item> {
        let b = self.rest;
        if b.is_empty() {
            return None;
        }
        let len = b.get(1).map(|l| *l as usize * 8);
        let err = match len {
            None => WireError::Truncated,
            Some(0) => WireError::Malformed,
            Some(len) if len > b.len() => WireError::Truncated,
            Some(len) => {
                self.rest = &b[len..];
                return Some(Ok((b[0], &b[..len])));
            }
        };
        self.rest = &[];
        Some(Err(err))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv6Packet<T> {
    pub fn fill_checksum(&mut self, pseudo: u32) {
        set_u16(self.buffer.as_mut(), field::CHECKSUM.start, 0);
        let c = !checksum::fold(checksum::sum(pseudo, self.buffer.as_ref()));
        set_u16(self.buffer.as_mut(), field::CHECKSUM.start, c);
    }
}

/// A neighbour-discovery option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NdOption {
    SourceLinkAddr(Mac),
    TargetLinkAddr(Mac),
    PrefixInfo {
        prefix_len: u8,
        flags: u8,
        valid_lifetime: u32,
        preferred_lifetime: u32,
        prefix: Ipv6Addr,
    },
    Mtu(u32),
    /// Recursive DNS servers (RFC 8106, type 25): at most three here (Neutron's radvd sends at most three).
    Rdnss {
        lifetime: u32,
        servers: [Ipv6Addr; 3],
        count: u8,
    },
    /// Carried but not interpreted: its type and length in units of 8 bytes.
    Unknown {
        kind: u8,
        len8: u8,
    },
}

impl NdOption {
    fn len(&self) -> usize {
        match self {
            NdOption::SourceLinkAddr(_) | NdOption::TargetLinkAddr(_) | NdOption::Mtu(_) => 8,
            NdOption::PrefixInfo { .. } => 32,
            NdOption::Rdnss { count, .. } => 8 + 16 * (*count).min(3) as usize,
            NdOption::Unknown { len8, .. } => *len8 as usize * 8,
        }
    }

    /// Parses the options in `b`; a zero length or one past the end is malformed (RFC 4861 4.6).
    pub fn parse_all(b: &[u8]) -> Result<Vec<NdOption>> {
        NdOptions::new(b).map(|o| o.and_then(|(kind, o)| NdOption::parse(kind, o))).collect()
    }

    /// One option of type `kind`, `o` its bytes as [`NdOptions`] yields them.
    fn parse(kind: u8, o: &[u8]) -> Result<NdOption> {
        Ok(match (kind, o.len()) {
            (OPT_SOURCE_LINK_ADDR, 8) => NdOption::SourceLinkAddr(NdOptions::link_addr(o).expect("8 bytes")),
            (OPT_TARGET_LINK_ADDR, 8) => NdOption::TargetLinkAddr(NdOptions::link_addr(o).expect("8 bytes")),
            (3, 32) => NdOption::PrefixInfo {
                prefix_len: o[2],
                flags: o[3],
                valid_lifetime: get_u32(o, 4),
                preferred_lifetime: get_u32(o, 8),
                prefix: Ipv6Addr(o[16..32].try_into().expect("16")),
            },
            (5, 8) => NdOption::Mtu(get_u32(o, 4)),
            (25, 24 | 40 | 56) => {
                let count = ((o.len() - 8) / 16) as u8;
                let mut servers = [Ipv6Addr::UNSPECIFIED; 3];
                for (i, s) in servers.iter_mut().take(count as usize).enumerate() {
                    *s = Ipv6Addr(o[8 + 16 * i..24 + 16 * i].try_into().expect("16"));
                }
                NdOption::Rdnss { lifetime: get_u32(o, 4), servers, count }
            }
            (1 | 2 | 3 | 5, _) => return Err(WireError::Malformed),
            (kind, _) => NdOption::Unknown { kind, len8: o[1] },
        })
    }

    fn emit(&self, o: &mut [u8]) {
        o.fill(0);
        o[1] = (self.len() / 8) as u8;
        match *self {
            NdOption::SourceLinkAddr(m) => {
                o[0] = 1;
                o[2..8].copy_from_slice(&m.0);
            }
            NdOption::TargetLinkAddr(m) => {
                o[0] = 2;
                o[2..8].copy_from_slice(&m.0);
            }
            NdOption::PrefixInfo { prefix_len, flags, valid_lifetime, preferred_lifetime, prefix } => {
                o[0] = 3;
                o[2] = prefix_len;
                o[3] = flags;
                set_u32(o, 4, valid_lifetime);
                set_u32(o, 8, preferred_lifetime);
                o[16..32].copy_from_slice(&prefix.0);
            }
            NdOption::Mtu(mtu) => {
                o[0] = 5;
                set_u32(o, 4, mtu);
            }
            NdOption::Rdnss { lifetime, servers, count } => {
                o[0] = 25;
                set_u32(o, 4, lifetime);
                for (i, s) in servers.iter().take(count.min(3) as usize).enumerate() {
                    o[8 + 16 * i..24 + 16 * i].copy_from_slice(&s.0);
                }
            }
            NdOption::Unknown { kind, .. } => o[0] = kind,
        }
    }
}

/// An ICMPv6 message, owned but for echo and error data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Icmpv6Repr<'a> {
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
    DstUnreachable {
        code: u8,
        data: &'a [u8],
    },
    PacketTooBig {
        mtu: u32,
        data: &'a [u8],
    },
    TimeExceeded {
        code: u8,
        data: &'a [u8],
    },
    RouterSolicit {
        options: Vec<NdOption>,
    },
    RouterAdvert {
        hop_limit: u8,
        flags: u8,
        router_lifetime: u16,
        reachable_time: u32,
        retrans_time: u32,
        options: Vec<NdOption>,
    },
    NeighborSolicit {
        target: Ipv6Addr,
        options: Vec<NdOption>,
    },
    NeighborAdvert {
        flags: u8,
        target: Ipv6Addr,
        options: Vec<NdOption>,
    },
    Other {
        msg_type: u8,
        code: u8,
    },
}

impl<'a> Icmpv6Repr<'a> {
    /// Parses a message whose checksum is right for `pseudo`. ND messages must have code 0 (RFC 4861).
    pub fn parse<T: AsRef<[u8]> + ?Sized>(p: &Icmpv6Packet<&'a T>, pseudo: u32) -> Result<Icmpv6Repr<'a>> {
        if !p.verify_checksum(pseudo) {
            return Err(WireError::Malformed);
        }
        let buf: &'a T = p.buffer;
        let b = buf.as_ref();
        let (t, code) = (p.msg_type(), p.code());
        let need = |n: usize| {
            if b.len() < n {
                Err(WireError::Truncated)
            } else {
                Ok(())
            }
        };
        let nd_code = || {
            if code != 0 {
                Err(WireError::Malformed)
            } else {
                Ok(())
            }
        };
        Ok(match t {
            ECHO_REQUEST | ECHO_REPLY => {
                let (ident, seq, data) = (get_u16(b, 4), get_u16(b, 6), &b[8..]);
                if t == ECHO_REQUEST {
                    Icmpv6Repr::EchoRequest { ident, seq, data }
                } else {
                    Icmpv6Repr::EchoReply { ident, seq, data }
                }
            }
            DST_UNREACHABLE => Icmpv6Repr::DstUnreachable { code, data: &b[8..] },
            PACKET_TOO_BIG => Icmpv6Repr::PacketTooBig { mtu: get_u32(b, 4), data: &b[8..] },
            TIME_EXCEEDED => Icmpv6Repr::TimeExceeded { code, data: &b[8..] },
            ROUTER_SOLICIT => {
                nd_code()?;
                Icmpv6Repr::RouterSolicit { options: NdOption::parse_all(&b[8..])? }
            }
            ROUTER_ADVERT => {
                nd_code()?;
                need(16)?;
                Icmpv6Repr::RouterAdvert {
                    hop_limit: b[4],
                    flags: b[5],
                    router_lifetime: get_u16(b, 6),
                    reachable_time: get_u32(b, 8),
                    retrans_time: get_u32(b, 12),
                    options: NdOption::parse_all(&b[16..])?,
                }
            }
            NEIGHBOR_SOLICIT | NEIGHBOR_ADVERT => {
                nd_code()?;
                need(ND_HEADER_LEN)?;
                let target = p.nd_target().expect("length checked");
                let options = NdOption::parse_all(&b[field::ND_OPTIONS..])?;
                if t == NEIGHBOR_SOLICIT {
                    Icmpv6Repr::NeighborSolicit { target, options }
                } else {
                    Icmpv6Repr::NeighborAdvert { flags: b[4], target, options }
                }
            }
            msg_type => Icmpv6Repr::Other { msg_type, code },
        })
    }

    fn options(&self) -> &[NdOption] {
        match self {
            Icmpv6Repr::RouterSolicit { options }
            | Icmpv6Repr::RouterAdvert { options, .. }
            | Icmpv6Repr::NeighborSolicit { options, .. }
            | Icmpv6Repr::NeighborAdvert { options, .. } => options,
            _ => &[],
        }
    }

    fn body_len(&self) -> usize {
        match self {
            Icmpv6Repr::EchoRequest { data, .. }
            | Icmpv6Repr::EchoReply { data, .. }
            | Icmpv6Repr::DstUnreachable { data, .. }
            | Icmpv6Repr::PacketTooBig { data, .. }
            | Icmpv6Repr::TimeExceeded { data, .. } => 8 + data.len(),
            Icmpv6Repr::RouterSolicit { .. } => 8,
            Icmpv6Repr::RouterAdvert { .. } => 16,
            Icmpv6Repr::NeighborSolicit { .. } | Icmpv6Repr::NeighborAdvert { .. } => 24,
            Icmpv6Repr::Other { .. } => 8,
        }
    }

    pub fn buffer_len(&self) -> usize {
        self.body_len() + self.options().iter().map(NdOption::len).sum::<usize>()
    }

    /// Writes the message and its checksum into a buffer of exactly `buffer_len()` bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Icmpv6Packet<T>, pseudo: u32) {
        let body = self.body_len();
        {
            let b = p.buffer.as_mut();
            b[..body].fill(0);
            let (t, code) = match *self {
                Icmpv6Repr::EchoRequest { ident, seq, data } | Icmpv6Repr::EchoReply { ident, seq, data } => {
                    set_u16(b, 4, ident);
                    set_u16(b, 6, seq);
                    b[8..8 + data.len()].copy_from_slice(data);
                    (if matches!(self, Icmpv6Repr::EchoRequest { .. }) { ECHO_REQUEST } else { ECHO_REPLY }, 0)
                }
                Icmpv6Repr::DstUnreachable { code, data } => {
                    b[8..8 + data.len()].copy_from_slice(data);
                    (DST_UNREACHABLE, code)
                }
                Icmpv6Repr::PacketTooBig { mtu, data } => {
                    set_u32(b, 4, mtu);
                    b[8..8 + data.len()].copy_from_slice(data);
                    (PACKET_TOO_BIG, 0)
                }
                Icmpv6Repr::TimeExceeded { code, data } => {
                    b[8..8 + data.len()].copy_from_slice(data);
                    (TIME_EXCEEDED, code)
                }
                Icmpv6Repr::RouterSolicit { .. } => (ROUTER_SOLICIT, 0),
                Icmpv6Repr::RouterAdvert {
                    hop_limit, flags, router_lifetime, reachable_time, retrans_time, ..
                } => {
                    b[4] = hop_limit;
                    b[5] = flags;
                    set_u16(b, 6, router_lifetime);
                    set_u32(b, 8, reachable_time);
                    set_u32(b, 12, retrans_time);
                    (ROUTER_ADVERT, 0)
                }
                Icmpv6Repr::NeighborSolicit { target, .. } => {
                    b[8..24].copy_from_slice(&target.0);
                    (NEIGHBOR_SOLICIT, 0)
                }
                Icmpv6Repr::NeighborAdvert { flags, target, .. } => {
                    b[4] = flags;
                    b[8..24].copy_from_slice(&target.0);
                    (NEIGHBOR_ADVERT, 0)
                }
                Icmpv6Repr::Other { msg_type, code } => (msg_type, code),
            };
            b[field::TYPE] = t;
            b[field::CODE] = code;
            let mut at = body;
            for o in self.options() {
                o.emit(&mut b[at..at + o.len()]);
                at += o.len();
            }
        }
        p.fill_checksum(pseudo);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(last: u8) -> Ipv6Addr {
        let mut a = [0u8; 16];
        a[0] = 0xfe;
        a[1] = 0x80;
        a[15] = last;
        Ipv6Addr(a)
    }

    fn round_trip(r: &Icmpv6Repr<'_>) -> Vec<u8> {
        let pseudo = checksum::pseudo_v6(addr(1).0, addr(2).0, 58, r.buffer_len() as u32);
        let mut b = vec![0u8; r.buffer_len()];
        r.emit(&mut Icmpv6Packet::new_unchecked(&mut b[..]), pseudo);
        let p = Icmpv6Packet::new_checked(&b[..]).unwrap();
        assert_eq!(&Icmpv6Repr::parse(&p, pseudo).unwrap(), r);
        b
    }

    #[test]
    fn neighbor_solicit_and_advert() {
        let mac = Mac([0xfa, 0x16, 0x3e, 0, 0, 1]);
        let ns = Icmpv6Repr::NeighborSolicit { target: addr(2), options: vec![NdOption::SourceLinkAddr(mac)] };
        let b = round_trip(&ns);
        assert_eq!((b[0], b.len(), b[24], b[25]), (135, 32, 1, 1));
        let na = Icmpv6Repr::NeighborAdvert {
            flags: NA_SOLICITED | NA_OVERRIDE,
            target: addr(2),
            options: vec![NdOption::TargetLinkAddr(mac)],
        };
        assert_eq!(round_trip(&na)[4], 0x60);
    }

    #[test]
    fn router_solicit_and_advert() {
        round_trip(&Icmpv6Repr::RouterSolicit { options: vec![] });
        let ra = Icmpv6Repr::RouterAdvert {
            hop_limit: 64,
            flags: RA_MANAGED,
            router_lifetime: 1800,
            reachable_time: 0,
            retrans_time: 0,
            options: vec![
                NdOption::SourceLinkAddr(Mac([2, 0, 0, 0, 0, 0xfe])),
                NdOption::Mtu(1450),
                NdOption::PrefixInfo {
                    prefix_len: 64,
                    flags: PREFIX_ON_LINK | PREFIX_AUTONOMOUS,
                    valid_lifetime: 86400,
                    preferred_lifetime: 14400,
                    prefix: addr(0),
                },
            ],
        };
        assert_eq!(round_trip(&ra).len(), 16 + 8 + 8 + 32);
    }

    #[test]
    fn echo_and_errors() {
        round_trip(&Icmpv6Repr::EchoRequest { ident: 1, seq: 2, data: b"xyz" });
        round_trip(&Icmpv6Repr::EchoReply { ident: 1, seq: 2, data: b"" });
        round_trip(&Icmpv6Repr::TimeExceeded { code: 0, data: &[0x60; 48] });
        round_trip(&Icmpv6Repr::PacketTooBig { mtu: 1280, data: &[0x60; 48] });
    }

    #[test]
    fn nd_options_are_walked_in_place() {
        let mac = Mac([0xfa, 0x16, 0x3e, 0, 0, 1]);
        let ns = Icmpv6Repr::NeighborSolicit {
            target: addr(2),
            options: vec![NdOption::Unknown { kind: 14, len8: 2 }, NdOption::SourceLinkAddr(mac)],
        };
        let b = round_trip(&ns);
        let p = Icmpv6Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.nd_target(), Some(addr(2)));
        let walked: Vec<_> = p.nd_options().map(|o| o.unwrap()).collect();
        assert_eq!(walked.iter().map(|(kind, o)| (*kind, o.len())).collect::<Vec<_>>(), vec![(14, 16), (1, 8)]);
        assert_eq!(NdOptions::link_addr(walked[1].1), Some(mac));
        assert_eq!(NdOptions::link_addr(walked[0].1), None);
        // A zero length, or an option past the end, ends the walk with one error.
        let bad: Vec<_> = NdOptions::new(&[1, 1, 0, 0, 0, 0, 0, 0, 2, 0, 9, 9]).collect();
        assert_eq!(bad, vec![Ok((1, &[1u8, 1, 0, 0, 0, 0, 0, 0][..])), Err(WireError::Malformed)]);
        assert_eq!(NdOptions::new(&[2, 2, 0, 0]).collect::<Vec<_>>(), vec![Err(WireError::Truncated)]);
        assert_eq!(NdOptions::new(&[2]).collect::<Vec<_>>(), vec![Err(WireError::Truncated)]);
        assert_eq!(Icmpv6Packet::new_unchecked(&b[..20]).nd_target(), None);
        assert_eq!(Icmpv6Packet::new_unchecked(&b[..20]).nd_options().count(), 0);
    }

    #[test]
    fn bad_options_and_checksums_are_refused() {
        assert_eq!(NdOption::parse_all(&[1, 0, 0, 0, 0, 0, 0, 0]), Err(WireError::Malformed));
        assert_eq!(NdOption::parse_all(&[1, 2, 0, 0, 0, 0, 0, 0]), Err(WireError::Truncated));
        assert_eq!(NdOption::parse_all(&[1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), Err(WireError::Malformed));
        assert_eq!(
            NdOption::parse_all(&[99, 1, 0, 0, 0, 0, 0, 0]).unwrap(),
            vec![NdOption::Unknown { kind: 99, len8: 1 }]
        );
        let mut b = round_trip(&Icmpv6Repr::NeighborSolicit { target: addr(9), options: vec![] });
        let pseudo = checksum::pseudo_v6(addr(1).0, addr(2).0, 58, b.len() as u32);
        b[1] = 1; // ND with a non-zero code
        Icmpv6Packet::new_unchecked(&mut b[..]).fill_checksum(pseudo);
        assert_eq!(Icmpv6Repr::parse(&Icmpv6Packet::new_checked(&b[..]).unwrap(), pseudo), Err(WireError::Malformed));
        b[1] = 0;
        assert_eq!(Icmpv6Repr::parse(&Icmpv6Packet::new_checked(&b[..]).unwrap(), pseudo), Err(WireError::Malformed));
    }
}
