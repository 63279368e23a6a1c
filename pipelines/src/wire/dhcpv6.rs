//! DHCPv6 (RFC 8415): message type, 24-bit transaction id and TLV options (16-bit code and length), or,
//! for relay messages, hop count, link and peer addresses before the options. [`Dhcpv6Repr`] holds what a
//! stateful or stateless DHCPv6 server reads and writes: DUIDs, IA_NA with addresses, rapid commit, DNS.

use super::{get_u16, get_u32, set_u16, Field, Ipv6Addr, Result, WireError};

mod field {
    use super::Field;
    pub const MSG_TYPE: usize = 0;
    /// 24 bits, after the type (client/server messages).
    pub const TRANSACTION_ID: Field = 1..4;
    pub const OPTIONS: usize = 4;
    /// Relay messages (RFC 8415 9).
    pub const HOP_COUNT: usize = 1;
    pub const LINK_ADDR: Field = 2..18;
    pub const PEER_ADDR: Field = 18..34;
    pub const RELAY_OPTIONS: usize = 34;
}

pub const CLIENT_PORT: u16 = 546;
pub const SERVER_PORT: u16 = 547;
pub const HEADER_LEN: usize = field::OPTIONS;
pub const RELAY_HEADER_LEN: usize = field::RELAY_OPTIONS;

pub mod opt {
    pub const CLIENT_ID: u16 = 1;
    pub const SERVER_ID: u16 = 2;
    pub const IA_NA: u16 = 3;
    pub const IA_ADDR: u16 = 5;
    pub const ORO: u16 = 6;
    pub const ELAPSED_TIME: u16 = 8;
    pub const STATUS_CODE: u16 = 13;
    pub const RAPID_COMMIT: u16 = 14;
    pub const DNS_SERVERS: u16 = 23;
    pub const DOMAIN_LIST: u16 = 24;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dhcpv6MessageType {
    Solicit,
    Advertise,
    Request,
    Confirm,
    Renew,
    Rebind,
    Reply,
    Release,
    Decline,
    Reconfigure,
    InformationRequest,
    RelayForw,
    RelayRepl,
    Unknown(u8),
}

impl From<u8> for Dhcpv6MessageType {
    fn from(v: u8) -> Self {
        use Dhcpv6MessageType::*;
        match v {
            1 => Solicit,
            2 => Advertise,
            3 => Request,
            4 => Confirm,
            5 => Renew,
            6 => Rebind,
            7 => Reply,
            8 => Release,
            9 => Decline,
            10 => Reconfigure,
            11 => InformationRequest,
            12 => RelayForw,
            13 => RelayRepl,
            v => Unknown(v),
        }
    }
}

impl From<Dhcpv6MessageType> for u8 {
    fn from(t: Dhcpv6MessageType) -> u8 {
        use Dhcpv6MessageType::*;
        match t {
            Solicit => 1,
            Advertise => 2,
            Request => 3,
            Confirm => 4,
            Renew => 5,
            Rebind => 6,
            Reply => 7,
            Release => 8,
            Decline => 9,
            Reconfigure => 10,
            InformationRequest => 11,
            RelayForw => 12,
            RelayRepl => 13,
            Unknown(v) => v,
        }
    }
}

impl Dhcpv6MessageType {
    pub fn is_relay(self) -> bool {
        matches!(self, Dhcpv6MessageType::RelayForw | Dhcpv6MessageType::RelayRepl)
    }
}

/// A view of a DHCPv6 message (the UDP payload).
#[derive(Debug, Clone)]
pub struct Dhcpv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Dhcpv6Packet<T> {
    pub const fn new_unchecked(buffer: T) -> Self {
        Dhcpv6Packet { buffer }
    }

    /// Checks that the header (the relay header for relay messages) fits.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Dhcpv6Packet { buffer };
        let len = p.buffer.as_ref().len();
        if len < HEADER_LEN || (p.msg_type().is_relay() && len < RELAY_HEADER_LEN) {
            return Err(WireError::Truncated);
        }
        Ok(p)
    }

    pub fn msg_type(&self) -> Dhcpv6MessageType {
        Dhcpv6MessageType::from(self.buffer.as_ref()[field::MSG_TYPE])
    }

    /// The transaction id (0 for relay messages, which have none).
    pub fn transaction_id(&self) -> u32 {
        if self.msg_type().is_relay() {
            0
        } else {
            get_u32(self.buffer.as_ref(), field::MSG_TYPE) & 0x00ff_ffff
        }
    }

    /// A relay message's hop count, link address and peer address.
    pub fn relay_header(&self) -> Option<(u8, Ipv6Addr, Ipv6Addr)> {
        let b = self.buffer.as_ref();
        let addr = |f: Field| Ipv6Addr(b[f].try_into().expect("16 bytes"));
        self.msg_type().is_relay().then(|| (b[field::HOP_COUNT], addr(field::LINK_ADDR), addr(field::PEER_ADDR)))
    }

    fn options_at(&self) -> usize {
        if self.msg_type().is_relay() {
            field::RELAY_OPTIONS
        } else {
            field::OPTIONS
        }
    }

    pub fn options(&self) -> Dhcpv6Options<'_> {
        Dhcpv6Options { rest: &self.buffer.as_ref()[self.options_at()..] }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Dhcpv6Packet<T> {
    pub fn set_msg_type(&mut self, t: Dhcpv6MessageType) {
        self.buffer.as_mut()[field::MSG_TYPE] = t.into();
    }

    /// The low 24 bits of `xid` (client/server messages only).
    pub fn set_transaction_id(&mut self, xid: u32) {
        self.buffer.as_mut()[field::TRANSACTION_ID].copy_from_slice(&xid.to_be_bytes()[1..]);
    }

    /// Sets a relay message's hop count, link address and peer address (the type must be set first).
    pub fn set_relay_header(&mut self, hop_count: u8, link: Ipv6Addr, peer: Ipv6Addr) {
        let b = self.buffer.as_mut();
        b[field::HOP_COUNT] = hop_count;
        b[field::LINK_ADDR].copy_from_slice(&link.0);
        b[field::PEER_ADDR].copy_from_slice(&peer.0);
    }

    /// The bytes after the header, where the options go (the type must be set first).
    pub fn options_mut(&mut self) -> &mut [u8] {
        let at = self.options_at();
        &mut self.buffer.as_mut()[at..]
    }
}

/// TLV options `(code, data)`, of a message or nested in an option (IA_NA); an option running past its
/// container is an error.
#[derive(Debug, Clone)]
pub struct Dhcpv6Options<'a> {
    rest: &'a [u8],
}

impl<'a> Dhcpv6Options<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Dhcpv6Options { rest: bytes }
    }
}

impl<'a> Iterator for Dhcpv6Options<'a> {
    type Item = Result<(u16, &'a [u8])>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        if self.rest.len() < 4 {
            self.rest = &[];
            return Some(Err(WireError::Truncated));
        }
        let (code, len) = (get_u16(self.rest, 0), get_u16(self.rest, 2) as usize);
        if self.rest.len() < 4 + len {
            self.rest = &[];
            return Some(Err(WireError::Truncated));
        }
        let data = &self.rest[4..4 + len];
        self.rest = &self.rest[4 + len..];
        Some(Ok((code, data)))
    }
}

/// An address of an IA_NA (option 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IaAddress {
    pub addr: Ipv6Addr,
    pub preferred: u32,
    pub valid: u32,
}

/// An identity association for non-temporary addresses (option 3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IaNa {
    pub iaid: u32,
    pub t1: u32,
    pub t2: u32,
    pub addresses: Vec<IaAddress>,
    pub status: Option<(u16, String)>,
}

/// A (non-relay) DHCPv6 message, owned; options not listed here are skipped by `parse`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dhcpv6Repr {
    pub msg_type: Dhcpv6MessageType,
    pub transaction_id: u32,
    pub client_id: Option<Vec<u8>>,
    pub server_id: Option<Vec<u8>>,
    pub ia_na: Vec<IaNa>,
    pub option_request: Vec<u16>,
    pub elapsed_time: Option<u16>,
    pub rapid_commit: bool,
    pub dns_servers: Vec<Ipv6Addr>,
    /// RFC 1035 wire format, as carried.
    pub domain_list: Option<Vec<u8>>,
    pub status: Option<(u16, String)>,
    /// Other options, `(code, data)`, written last (a server's configured extra options); `parse` leaves
    /// it empty.
    pub other: Vec<(u16, Vec<u8>)>,
}

fn status(d: &[u8]) -> Result<(u16, String)> {
    if d.len() < 2 {
        return Err(WireError::Malformed);
    }
    Ok((get_u16(d, 0), String::from_utf8_lossy(&d[2..]).into_owned()))
}

fn ia_na(d: &[u8]) -> Result<IaNa> {
    if d.len() < 12 {
        return Err(WireError::Malformed);
    }
    let mut ia = IaNa { iaid: get_u32(d, 0), t1: get_u32(d, 4), t2: get_u32(d, 8), addresses: vec![], status: None };
    for o in Dhcpv6Options::new(&d[12..]) {
        match o? {
            (opt::IA_ADDR, a) if a.len() >= 24 => ia.addresses.push(IaAddress {
                addr: Ipv6Addr(a[..16].try_into().expect("16 bytes")),
                preferred: get_u32(a, 16),
                valid: get_u32(a, 20),
            }),
            (opt::IA_ADDR, _) => return Err(WireError::Malformed),
            (opt::STATUS_CODE, s) => ia.status = Some(status(s)?),
            _ => {}
        }
    }
    Ok(ia)
}

impl Dhcpv6Repr {
    /// A message of this type and transaction id with no options.
    pub fn new(msg_type: Dhcpv6MessageType, transaction_id: u32) -> Dhcpv6Repr {
        Dhcpv6Repr {
            msg_type,
            transaction_id,
            client_id: None,
            server_id: None,
            ia_na: Vec::new(),
            option_request: Vec::new(),
            elapsed_time: None,
            rapid_commit: false,
            dns_servers: Vec::new(),
            domain_list: None,
            status: None,
            other: Vec::new(),
        }
    }

    /// Relay messages are `Unsupported` here (the view reads their header); a malformed option of a kind
    /// this type holds is `Malformed`.
    pub fn parse<T: AsRef<[u8]>>(p: &Dhcpv6Packet<T>) -> Result<Dhcpv6Repr> {
        if p.msg_type().is_relay() {
            return Err(WireError::Unsupported);
        }
        let mut r = Dhcpv6Repr::new(p.msg_type(), p.transaction_id());
        for o in p.options() {
            let (code, d) = o?;
            match code {
                opt::CLIENT_ID => r.client_id = Some(d.to_vec()),
                opt::SERVER_ID => r.server_id = Some(d.to_vec()),
                opt::IA_NA => r.ia_na.push(ia_na(d)?),
                opt::ORO if d.len() % 2 == 0 => r.option_request.extend(d.chunks_exact(2).map(|c| get_u16(c, 0))),
                opt::ELAPSED_TIME if d.len() == 2 => r.elapsed_time = Some(get_u16(d, 0)),
                opt::RAPID_COMMIT if d.is_empty() => r.rapid_commit = true,
                opt::DNS_SERVERS if d.len() % 16 == 0 => {
                    r.dns_servers.extend(d.chunks_exact(16).map(|c| Ipv6Addr(c.try_into().expect("16 bytes"))))
                }
                opt::DOMAIN_LIST => r.domain_list = Some(d.to_vec()),
                opt::STATUS_CODE => r.status = Some(status(d)?),
                opt::ORO | opt::ELAPSED_TIME | opt::RAPID_COMMIT | opt::DNS_SERVERS => {
                    return Err(WireError::Malformed)
                }
                _ => {}
            }
        }
        Ok(r)
    }

    /// The options as `(code, data)`, in the order ISC dhclient sends them.
    fn option_list(&self) -> Vec<(u16, Vec<u8>)> {
        let mut o = Vec::new();
        let status_bytes = |(code, msg): &(u16, String)| [&code.to_be_bytes()[..], msg.as_bytes()].concat();
        if let Some(c) = &self.client_id {
            o.push((opt::CLIENT_ID, c.clone()));
        }
        if let Some(s) = &self.server_id {
            o.push((opt::SERVER_ID, s.clone()));
        }
        if !self.option_request.is_empty() {
            o.push((opt::ORO, self.option_request.iter().flat_map(|c| c.to_be_bytes()).collect()));
        }
        if let Some(t) = self.elapsed_time {
            o.push((opt::ELAPSED_TIME, t.to_be_bytes().to_vec()));
        }
        for ia in &self.ia_na {
            let mut d = [ia.iaid.to_be_bytes(), ia.t1.to_be_bytes(), ia.t2.to_be_bytes()].concat();
            for a in &ia.addresses {
                d.extend_from_slice(&opt::IA_ADDR.to_be_bytes());
                d.extend_from_slice(&24u16.to_be_bytes());
                d.extend_from_slice(&a.addr.0);
                d.extend_from_slice(&a.preferred.to_be_bytes());
                d.extend_from_slice(&a.valid.to_be_bytes());
            }
            if let Some(s) = &ia.status {
                let s = status_bytes(s);
                d.extend_from_slice(&opt::STATUS_CODE.to_be_bytes());
                d.extend_from_slice(&(s.len() as u16).to_be_bytes());
                d.extend_from_slice(&s);
            }
            o.push((opt::IA_NA, d));
        }
        if self.rapid_commit {
            o.push((opt::RAPID_COMMIT, Vec::new()));
        }
        if !self.dns_servers.is_empty() {
            o.push((opt::DNS_SERVERS, self.dns_servers.iter().flat_map(|a| a.0).collect()));
        }
        if let Some(d) = &self.domain_list {
            o.push((opt::DOMAIN_LIST, d.clone()));
        }
        if let Some(s) = &self.status {
            o.push((opt::STATUS_CODE, status_bytes(s)));
        }
        o.extend(self.other.iter().cloned());
        o
    }

    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.option_list().iter().map(|(_, d)| 4 + d.len()).sum::<usize>()
    }

    /// Writes the message into a buffer of `buffer_len()` bytes: `Unsupported` for a relay type (as in
    /// `parse`), `Malformed` for a transaction id over 24 bits or an option over 65,535 bytes, `Truncated`
    /// if the buffer is too short.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Dhcpv6Packet<T>) -> Result<()> {
        if self.msg_type.is_relay() {
            return Err(WireError::Unsupported);
        }
        let options = self.option_list();
        if self.transaction_id > 0x00ff_ffff || options.iter().any(|(_, d)| d.len() > u16::MAX as usize) {
            return Err(WireError::Malformed);
        }
        if p.buffer.as_ref().len() < self.buffer_len() {
            return Err(WireError::Truncated);
        }
        p.set_msg_type(self.msg_type);
        p.set_transaction_id(self.transaction_id);
        let b = p.options_mut();
        let mut at = 0;
        for (code, d) in options {
            set_u16(b, at, code);
            set_u16(b, at + 2, d.len() as u16);
            b[at + 4..at + 4 + d.len()].copy_from_slice(&d);
            at += 4 + d.len();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A SOLICIT from ISC dhclient 4.4.3-P1 (Debian 12, `dhclient -6 -d v0` on a veth pair), as tcpdump
    /// captured it (the UDP payload): transaction 0x24f3db, client id (DUID-LLT of 52:54:00:12:34:56), ORO
    /// (23 DNS, 24 domain list, 39 FQDN, 31 SNTP), elapsed time 0, IA_NA iaid 0x00123456 t1 3600 t2 5400.
    const SOLICIT: [u8; 56] = [
        0x01, 0x24, 0xf3, 0xdb, 0x00, 0x01, 0x00, 0x0e, 0x00, 0x01, 0x00, 0x01, 0x32, 0x98, 0xf4, 0x4d, //
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x00, 0x06, 0x00, 0x08, 0x00, 0x17, 0x00, 0x18, 0x00, 0x27, //
        0x00, 0x1f, 0x00, 0x08, 0x00, 0x02, 0x00, 0x00, 0x00, 0x03, 0x00, 0x0c, 0x00, 0x12, 0x34, 0x56, //
        0x00, 0x00, 0x0e, 0x10, 0x00, 0x00, 0x15, 0x18,
    ];

    #[test]
    fn parses_a_dhclient_solicit_and_emits_it_back() {
        let p = Dhcpv6Packet::new_checked(&SOLICIT[..]).unwrap();
        assert_eq!((p.msg_type(), p.transaction_id(), p.relay_header()), (Dhcpv6MessageType::Solicit, 0x24f3db, None));
        let codes: Vec<_> = p.options().map(|o| o.unwrap().0).collect();
        assert_eq!(codes, vec![opt::CLIENT_ID, opt::ORO, opt::ELAPSED_TIME, opt::IA_NA]);
        let r = Dhcpv6Repr::parse(&p).unwrap();
        assert_eq!(r.client_id.as_deref(), Some(&SOLICIT[8..22]));
        assert_eq!(r.ia_na, vec![IaNa { iaid: 0x123456, t1: 3600, t2: 5400, addresses: vec![], status: None }]);
        assert_eq!((r.elapsed_time, &r.option_request[..], r.rapid_commit), (Some(0), &[23, 24, 39, 31][..], false));
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(&mut Dhcpv6Packet::new_unchecked(&mut out[..])).unwrap();
        assert_eq!(out, SOLICIT);
    }

    #[test]
    fn a_reply_with_an_address_round_trips() {
        let addr = Ipv6Addr([0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5]);
        let r = Dhcpv6Repr {
            client_id: Some(vec![0, 3, 0, 1, 0xfa, 0x16, 0x3e, 0, 0, 1]),
            server_id: Some(vec![0, 3, 0, 1, 0xfa, 0x16, 0x3e, 0, 0, 0xfe]),
            ia_na: vec![IaNa {
                iaid: 1,
                t1: 3600,
                t2: 5400,
                addresses: vec![IaAddress { addr, preferred: 7200, valid: 7200 }],
                status: Some((0, "ok".into())),
            }],
            rapid_commit: true,
            dns_servers: vec![addr],
            domain_list: Some(b"\x07example\x00".to_vec()),
            status: Some((0, "all addresses assigned".into())),
            other: Vec::new(),
            ..Dhcpv6Repr::new(Dhcpv6MessageType::Reply, 0x24f3db)
        };
        let mut b = vec![0u8; r.buffer_len()];
        r.emit(&mut Dhcpv6Packet::new_unchecked(&mut b[..])).unwrap();
        assert_eq!(Dhcpv6Repr::parse(&Dhcpv6Packet::new_checked(&b[..]).unwrap()).unwrap(), r);
        let short = r.emit(&mut Dhcpv6Packet::new_unchecked(&mut b[..10]));
        assert_eq!(short.unwrap_err(), WireError::Truncated);
        let big_xid =
            Dhcpv6Repr::new(Dhcpv6MessageType::Reply, 1 << 24).emit(&mut Dhcpv6Packet::new_unchecked(&mut b[..]));
        assert_eq!(big_xid.unwrap_err(), WireError::Malformed);
        let relay = Dhcpv6Repr::new(Dhcpv6MessageType::RelayRepl, 0).emit(&mut Dhcpv6Packet::new_unchecked(&mut b[..]));
        assert_eq!(relay.unwrap_err(), WireError::Unsupported);
    }

    #[test]
    fn a_relay_header_is_read_and_written() {
        let (link, peer) = (
            Ipv6Addr([0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
            Ipv6Addr([0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]),
        );
        let mut b = [0u8; RELAY_HEADER_LEN + 8];
        let mut p = Dhcpv6Packet::new_unchecked(&mut b[..]);
        p.set_msg_type(Dhcpv6MessageType::RelayForw);
        p.set_relay_header(1, link, peer);
        p.options_mut().copy_from_slice(&[0, 9, 0, 4, 1, 2, 3, 4]); // relay message option
        let p = Dhcpv6Packet::new_checked(&b[..]).unwrap();
        assert_eq!(
            (p.msg_type(), p.transaction_id(), p.relay_header()),
            (Dhcpv6MessageType::RelayForw, 0, Some((1, link, peer)))
        );
        assert_eq!(p.options().collect::<Vec<_>>(), vec![Ok((9, &[1u8, 2, 3, 4][..]))]);
        assert_eq!(Dhcpv6Repr::parse(&p).unwrap_err(), WireError::Unsupported);
    }

    #[test]
    fn truncated_and_malformed() {
        assert_eq!(Dhcpv6Packet::new_checked(&SOLICIT[..3]).unwrap_err(), WireError::Truncated);
        assert_eq!(Dhcpv6Packet::new_checked(&[12u8; 33][..]).unwrap_err(), WireError::Truncated);
        // Cut inside the IA_NA: the walk ends with an error, and so does parse.
        let p = Dhcpv6Packet::new_checked(&SOLICIT[..50]).unwrap();
        assert_eq!(p.options().last(), Some(Err(WireError::Truncated)));
        assert_eq!(Dhcpv6Repr::parse(&p).unwrap_err(), WireError::Truncated);
        // Cut inside an option header.
        let p = Dhcpv6Packet::new_checked(&SOLICIT[..24]).unwrap();
        assert_eq!(p.options().last(), Some(Err(WireError::Truncated)));
        let mut odd_oro = SOLICIT;
        odd_oro[25] = 7; // ORO length 7
        assert!(Dhcpv6Repr::parse(&Dhcpv6Packet::new_checked(&odd_oro[..]).unwrap()).is_err());
        let mut short_ia = SOLICIT;
        short_ia[43] = 8; // IA_NA of 8 bytes (needs 12), and 4 bytes left over after it
        let r = Dhcpv6Repr::parse(&Dhcpv6Packet::new_checked(&short_ia[..]).unwrap());
        assert_eq!(r.unwrap_err(), WireError::Malformed);
    }
}
