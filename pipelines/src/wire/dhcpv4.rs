//! DHCPv4 (RFC 2131, options RFC 2132, classless static routes RFC 3442): the BOOTP header, the magic
//! cookie and the options. The view walks options without copying; [`DhcpRepr`] holds what a DHCP server
//! reads from a client and writes back (message type, addresses, lease times, routers, DNS, routes, MTU).

use super::{get_u16, get_u32, set_u16, set_u32, Ipv4Addr, Mac, Result, WireError};

mod field {
    use super::super::Field;
    pub const OP: usize = 0;
    pub const HTYPE: usize = 1;
    pub const HLEN: usize = 2;
    pub const HOPS: usize = 3;
    pub const XID: usize = 4;
    pub const SECS: usize = 8;
    pub const FLAGS: usize = 10;
    pub const CIADDR: Field = 12..16;
    pub const YIADDR: Field = 16..20;
    pub const SIADDR: Field = 20..24;
    pub const GIADDR: Field = 24..28;
    pub const CHADDR: Field = 28..44;
    pub const COOKIE: Field = 236..240;
    pub const OPTIONS: usize = 240;
}

/// The fixed part and the magic cookie.
pub const HEADER_LEN: usize = field::OPTIONS;
/// The smallest BOOTP message (RFC 1542 2.1): `emit` pads up to it.
pub const MIN_MESSAGE_LEN: usize = 300;
pub const MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];
pub const SERVER_PORT: u16 = 67;
pub const CLIENT_PORT: u16 = 68;
pub const FLAG_BROADCAST: u16 = 0x8000;

pub mod opt {
    pub const PAD: u8 = 0;
    pub const SUBNET_MASK: u8 = 1;
    pub const ROUTER: u8 = 3;
    pub const DNS_SERVER: u8 = 6;
    pub const HOST_NAME: u8 = 12;
    pub const DOMAIN_NAME: u8 = 15;
    pub const INTERFACE_MTU: u8 = 26;
    pub const BROADCAST: u8 = 28;
    pub const REQUESTED_IP: u8 = 50;
    pub const LEASE_TIME: u8 = 51;
    pub const MESSAGE_TYPE: u8 = 53;
    pub const SERVER_ID: u8 = 54;
    pub const PARAMETER_REQUEST: u8 = 55;
    pub const RENEWAL_TIME: u8 = 58;
    pub const REBINDING_TIME: u8 = 59;
    pub const CLIENT_ID: u8 = 61;
    pub const CLASSLESS_ROUTES: u8 = 121;
    pub const END: u8 = 255;
}

/// BOOTP `op`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DhcpOp {
    Request,
    Reply,
}

/// Option 53.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    Discover,
    Offer,
    Request,
    Decline,
    Ack,
    Nak,
    Release,
    Inform,
    Unknown(u8),
}

impl From<u8> for MessageType {
    fn from(v: u8) -> Self {
        match v {
            1 => MessageType::Discover,
            2 => MessageType::Offer,
            3 => MessageType::Request,
            4 => MessageType::Decline,
            5 => MessageType::Ack,
            6 => MessageType::Nak,
            7 => MessageType::Release,
            8 => MessageType::Inform,
            v => MessageType::Unknown(v),
        }
    }
}

impl From<MessageType> for u8 {
    fn from(t: MessageType) -> u8 {
        match t {
            MessageType::Discover => 1,
            MessageType::Offer => 2,
            MessageType::Request => 3,
            MessageType::Decline => 4,
            MessageType::Ack => 5,
            MessageType::Nak => 6,
            MessageType::Release => 7,
            MessageType::Inform => 8,
            MessageType::Unknown(v) => v,
        }
    }
}

/// A view of a DHCP message (the UDP payload).
#[derive(Debug, Clone)]
pub struct DhcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

fn v4(b: &[u8], f: core::ops::Range<usize>) -> Ipv4Addr {
    Ipv4Addr(b[f].try_into().expect("4-byte field"))
}

impl<T: AsRef<[u8]>> DhcpPacket<T> {
    pub const fn new_unchecked(buffer: T) -> Self {
        DhcpPacket { buffer }
    }

    /// Checks that the fixed part fits and the magic cookie is there (`Malformed` if not: plain BOOTP).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if b[field::COOKIE] != MAGIC_COOKIE {
            return Err(WireError::Malformed);
        }
        Ok(DhcpPacket { buffer })
    }

    pub fn op(&self) -> u8 {
        self.buffer.as_ref()[field::OP]
    }
    pub fn htype(&self) -> u8 {
        self.buffer.as_ref()[field::HTYPE]
    }
    pub fn hlen(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }
    pub fn hops(&self) -> u8 {
        self.buffer.as_ref()[field::HOPS]
    }
    pub fn xid(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::XID)
    }
    pub fn secs(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::SECS)
    }
    pub fn flags(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::FLAGS)
    }
    pub fn broadcast(&self) -> bool {
        self.flags() & FLAG_BROADCAST != 0
    }
    pub fn ciaddr(&self) -> Ipv4Addr {
        v4(self.buffer.as_ref(), field::CIADDR)
    }
    pub fn yiaddr(&self) -> Ipv4Addr {
        v4(self.buffer.as_ref(), field::YIADDR)
    }
    pub fn siaddr(&self) -> Ipv4Addr {
        v4(self.buffer.as_ref(), field::SIADDR)
    }
    pub fn giaddr(&self) -> Ipv4Addr {
        v4(self.buffer.as_ref(), field::GIADDR)
    }
    /// The first six bytes of `chaddr` (the client's MAC for Ethernet, htype 1 / hlen 6).
    pub fn client_mac(&self) -> Mac {
        Mac(self.buffer.as_ref()[field::CHADDR][..6].try_into().expect("16-byte field"))
    }

    /// The options after the cookie, up to END (pads skipped).
    pub fn options(&self) -> DhcpOptions<'_> {
        DhcpOptions { rest: &self.buffer.as_ref()[field::OPTIONS..] }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> DhcpPacket<T> {
    pub fn set_op(&mut self, v: u8) {
        self.buffer.as_mut()[field::OP] = v;
    }
    /// Sets `htype` and `hlen`.
    pub fn set_hardware(&mut self, htype: u8, hlen: u8) {
        let b = self.buffer.as_mut();
        (b[field::HTYPE], b[field::HLEN]) = (htype, hlen);
    }
    pub fn set_hops(&mut self, v: u8) {
        self.buffer.as_mut()[field::HOPS] = v;
    }
    pub fn set_xid(&mut self, v: u32) {
        set_u32(self.buffer.as_mut(), field::XID, v);
    }
    pub fn set_secs(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::SECS, v);
    }
    pub fn set_flags(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::FLAGS, v);
    }
    pub fn set_ciaddr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::CIADDR].copy_from_slice(&a.0);
    }
    pub fn set_yiaddr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::YIADDR].copy_from_slice(&a.0);
    }
    pub fn set_siaddr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::SIADDR].copy_from_slice(&a.0);
    }
    pub fn set_giaddr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::GIADDR].copy_from_slice(&a.0);
    }
    /// Writes the MAC into `chaddr` and zeroes the rest of it.
    pub fn set_client_mac(&mut self, m: Mac) {
        let chaddr = &mut self.buffer.as_mut()[field::CHADDR];
        chaddr.fill(0);
        chaddr[..6].copy_from_slice(&m.0);
    }
    pub fn set_magic_cookie(&mut self) {
        self.buffer.as_mut()[field::COOKIE].copy_from_slice(&MAGIC_COOKIE);
    }
    /// The bytes after the cookie, where the options go.
    pub fn options_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::OPTIONS..]
    }
}

/// The options of a DHCP message: `(code, data)`; an option running past the message is an error.
#[derive(Debug, Clone)]
pub struct DhcpOptions<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for DhcpOptions<'a> {
    type Item = Result<(u8, &'a [u8])>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (&code, rest) = self.rest.split_first()?;
            match code {
                opt::PAD => self.rest = rest,
                opt::END => {
                    self.rest = &[];
                    return None;
                }
                _ => {
                    let Some((&len, rest)) = rest.split_first() else {
                        self.rest = &[];
                        return Some(Err(WireError::Truncated));
                    };
                    if rest.len() < len as usize {
                        self.rest = &[];
                        return Some(Err(WireError::Truncated));
                    }
                    let (data, rest) = rest.split_at(len as usize);
                    self.rest = rest;
                    return Some(Ok((code, data)));
                }
            }
        }
    }
}

/// A DHCP message, owned: the fields and options a DHCP server reads and writes. Options not listed
/// here are skipped by `parse`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpRepr {
    pub op: DhcpOp,
    pub message_type: MessageType,
    pub xid: u32,
    pub secs: u16,
    pub broadcast: bool,
    pub client_mac: Mac,
    pub ciaddr: Ipv4Addr,
    pub yiaddr: Ipv4Addr,
    pub siaddr: Ipv4Addr,
    pub giaddr: Ipv4Addr,
    pub requested_ip: Option<Ipv4Addr>,
    pub server_id: Option<Ipv4Addr>,
    pub lease_time: Option<u32>,
    pub renewal_time: Option<u32>,
    pub rebinding_time: Option<u32>,
    pub subnet_mask: Option<Ipv4Addr>,
    pub routers: Vec<Ipv4Addr>,
    pub dns_servers: Vec<Ipv4Addr>,
    pub domain_name: Option<String>,
    pub host_name: Option<String>,
    pub interface_mtu: Option<u16>,
    /// RFC 3442: (destination, prefix length, router).
    pub classless_routes: Vec<(Ipv4Addr, u8, Ipv4Addr)>,
    pub parameter_request: Vec<u8>,
    pub client_id: Option<Vec<u8>>,
    /// Other options, `(code, data)`, written after those above (a server's configured extra options);
    /// `parse` leaves it empty.
    pub other: Vec<(u8, Vec<u8>)>,
}

impl DhcpRepr {
    /// A message with the given type and addresses and no options beyond the type.
    pub fn new(op: DhcpOp, message_type: MessageType, xid: u32, client_mac: Mac) -> DhcpRepr {
        DhcpRepr {
            op,
            message_type,
            xid,
            secs: 0,
            broadcast: false,
            client_mac,
            ciaddr: Ipv4Addr::UNSPECIFIED,
            yiaddr: Ipv4Addr::UNSPECIFIED,
            siaddr: Ipv4Addr::UNSPECIFIED,
            giaddr: Ipv4Addr::UNSPECIFIED,
            requested_ip: None,
            server_id: None,
            lease_time: None,
            renewal_time: None,
            rebinding_time: None,
            subnet_mask: None,
            routers: Vec::new(),
            dns_servers: Vec::new(),
            domain_name: None,
            host_name: None,
            interface_mtu: None,
            classless_routes: Vec::new(),
            parameter_request: Vec::new(),
            client_id: None,
            other: Vec::new(),
        }
    }

    /// `Malformed` for a bad op, no message type, or an option whose length is wrong for it; `Truncated`
    /// for an option past the end; `Unsupported` for a hardware type other than Ethernet (htype 1, hlen 6).
    pub fn parse<T: AsRef<[u8]>>(p: &DhcpPacket<T>) -> Result<DhcpRepr> {
        let op = match p.op() {
            1 => DhcpOp::Request,
            2 => DhcpOp::Reply,
            _ => return Err(WireError::Malformed),
        };
        if p.htype() != 1 || p.hlen() != 6 {
            return Err(WireError::Unsupported);
        }
        let mut r = DhcpRepr::new(op, MessageType::Unknown(0), p.xid(), p.client_mac());
        (r.secs, r.broadcast) = (p.secs(), p.broadcast());
        (r.ciaddr, r.yiaddr, r.siaddr, r.giaddr) = (p.ciaddr(), p.yiaddr(), p.siaddr(), p.giaddr());
        let mut has_type = false;
        for o in p.options() {
            let (code, d) = o?;
            let addr = || -> Result<Ipv4Addr> { d.try_into().map(Ipv4Addr).map_err(|_| WireError::Malformed) };
            let u32v = || -> Result<u32> { (d.len() == 4).then(|| get_u32(d, 0)).ok_or(WireError::Malformed) };
            let addrs = |out: &mut Vec<Ipv4Addr>| -> Result<()> {
                if d.len() % 4 != 0 || d.is_empty() {
                    return Err(WireError::Malformed);
                }
                out.extend(d.chunks_exact(4).map(|c| Ipv4Addr(c.try_into().expect("4 bytes"))));
                Ok(())
            };
            match code {
                opt::MESSAGE_TYPE => {
                    let &[t] = d else { return Err(WireError::Malformed) };
                    r.message_type = MessageType::from(t);
                    has_type = true;
                }
                opt::REQUESTED_IP => r.requested_ip = Some(addr()?),
                opt::SERVER_ID => r.server_id = Some(addr()?),
                opt::SUBNET_MASK => r.subnet_mask = Some(addr()?),
                opt::LEASE_TIME => r.lease_time = Some(u32v()?),
                opt::RENEWAL_TIME => r.renewal_time = Some(u32v()?),
                opt::REBINDING_TIME => r.rebinding_time = Some(u32v()?),
                opt::ROUTER => addrs(&mut r.routers)?,
                opt::DNS_SERVER => addrs(&mut r.dns_servers)?,
                opt::DOMAIN_NAME => r.domain_name = Some(String::from_utf8_lossy(d).into_owned()),
                opt::HOST_NAME => r.host_name = Some(String::from_utf8_lossy(d).into_owned()),
                opt::INTERFACE_MTU => {
                    let &[a, b] = d else { return Err(WireError::Malformed) };
                    r.interface_mtu = Some(u16::from_be_bytes([a, b]));
                }
                opt::CLASSLESS_ROUTES => r.classless_routes.extend(parse_routes(d)?),
                opt::PARAMETER_REQUEST => r.parameter_request.extend_from_slice(d),
                opt::CLIENT_ID => r.client_id = Some(d.to_vec()),
                _ => {}
            }
        }
        if !has_type {
            return Err(WireError::Malformed);
        }
        Ok(r)
    }

    /// The options as `(code, data)`, message type first.
    fn option_list(&self) -> Vec<(u8, Vec<u8>)> {
        let mut o: Vec<(u8, Vec<u8>)> = vec![(opt::MESSAGE_TYPE, vec![self.message_type.into()])];
        let mut add = |code: u8, data: Vec<u8>| o.push((code, data));
        let addrs = |v: &[Ipv4Addr]| v.iter().flat_map(|a| a.0).collect::<Vec<u8>>();
        if let Some(a) = self.server_id {
            add(opt::SERVER_ID, a.0.to_vec());
        }
        if let Some(a) = self.requested_ip {
            add(opt::REQUESTED_IP, a.0.to_vec());
        }
        for (code, t) in [
            (opt::LEASE_TIME, self.lease_time),
            (opt::RENEWAL_TIME, self.renewal_time),
            (opt::REBINDING_TIME, self.rebinding_time),
        ] {
            if let Some(t) = t {
                add(code, t.to_be_bytes().to_vec());
            }
        }
        if let Some(m) = self.subnet_mask {
            add(opt::SUBNET_MASK, m.0.to_vec());
        }
        if !self.routers.is_empty() {
            add(opt::ROUTER, addrs(&self.routers));
        }
        if !self.dns_servers.is_empty() {
            add(opt::DNS_SERVER, addrs(&self.dns_servers));
        }
        if let Some(d) = &self.domain_name {
            add(opt::DOMAIN_NAME, d.as_bytes().to_vec());
        }
        if let Some(h) = &self.host_name {
            add(opt::HOST_NAME, h.as_bytes().to_vec());
        }
        if let Some(m) = self.interface_mtu {
            add(opt::INTERFACE_MTU, m.to_be_bytes().to_vec());
        }
        if !self.classless_routes.is_empty() {
            let mut d = Vec::new();
            for (dst, len, gw) in &self.classless_routes {
                d.push(*len);
                // A length over 32 is refused by `emit`; clamped here so that `buffer_len` cannot panic.
                d.extend_from_slice(&dst.0[..(*len as usize).div_ceil(8).min(4)]);
                d.extend_from_slice(&gw.0);
            }
            add(opt::CLASSLESS_ROUTES, d);
        }
        if !self.parameter_request.is_empty() {
            add(opt::PARAMETER_REQUEST, self.parameter_request.clone());
        }
        if let Some(c) = &self.client_id {
            add(opt::CLIENT_ID, c.clone());
        }
        o.extend(self.other.iter().cloned());
        o
    }

    pub fn buffer_len(&self) -> usize {
        let opts: usize = self.option_list().iter().map(|(_, d)| 2 + d.len()).sum();
        (HEADER_LEN + opts + 1).max(MIN_MESSAGE_LEN)
    }

    /// Writes the message into a buffer of `buffer_len()` bytes; `Malformed` if an option's data exceeds
    /// 255 bytes, a route's prefix length exceeds 32, or the buffer is too short.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut DhcpPacket<T>) -> Result<()> {
        let options = self.option_list();
        let need = self.buffer_len();
        if options.iter().any(|(_, d)| d.len() > 255) || self.classless_routes.iter().any(|r| r.1 > 32) {
            return Err(WireError::Malformed);
        }
        if p.buffer.as_ref().len() < need {
            return Err(WireError::Truncated);
        }
        p.buffer.as_mut()[..need].fill(0);
        p.set_op(if self.op == DhcpOp::Request { 1 } else { 2 });
        p.set_hardware(1, 6);
        p.set_xid(self.xid);
        p.set_secs(self.secs);
        p.set_flags(if self.broadcast { FLAG_BROADCAST } else { 0 });
        p.set_ciaddr(self.ciaddr);
        p.set_yiaddr(self.yiaddr);
        p.set_siaddr(self.siaddr);
        p.set_giaddr(self.giaddr);
        p.set_client_mac(self.client_mac);
        p.set_magic_cookie();
        let b = p.options_mut();
        let mut at = 0;
        for (code, d) in options {
            b[at] = code;
            b[at + 1] = d.len() as u8;
            b[at + 2..at + 2 + d.len()].copy_from_slice(&d);
            at += 2 + d.len();
        }
        b[at] = opt::END;
        Ok(())
    }
}

/// RFC 3442's encoding: per route, the prefix length, the significant bytes of the destination, the router.
pub(crate) fn parse_routes(mut d: &[u8]) -> Result<Vec<(Ipv4Addr, u8, Ipv4Addr)>> {
    let mut out = Vec::new();
    while let Some((&len, rest)) = d.split_first() {
        if len > 32 {
            return Err(WireError::Malformed);
        }
        let n = (len as usize).div_ceil(8);
        if rest.len() < n + 4 {
            return Err(WireError::Malformed);
        }
        let mut dst = [0u8; 4];
        dst[..n].copy_from_slice(&rest[..n]);
        let gw = Ipv4Addr(rest[n..n + 4].try_into().expect("4 bytes"));
        out.push((Ipv4Addr(dst), len, gw));
        d = &rest[n + 4..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
