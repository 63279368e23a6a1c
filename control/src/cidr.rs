//! [`Cidr`]: an IP address with a prefix length, the one type the control plane takes for one (subnets
//! and IPAM, the API's checks, the compiler, the static topology file). The pipelines' tables take
//! [`IpNet`]; `IpNet::from(cidr)` is the only conversion, at the edge.
//!
//! Two readers, because the inputs are of two kinds:
//!
//! | reader | accepts | refuses | used for |
//! |---|---|---|---|
//! | [`Cidr::parse_network`] | `10.0.0.0/24`, `2001:db8::/64` | no length; host bits set (`10.0.0.1/24`) | what Neutron's API calls a CIDR: a subnet's `cidr`, a rule's `remote_ip_prefix`, an extra route's `destination` |
//! | [`Cidr::parse`] | the same, `10.0.0.5/24` (host bits kept), and `10.0.0.5` (a host prefix: /32, /128) | a length past the family's width | addresses that may carry a length: fixed IPs, allowed address pairs, routes as the compiler reads them from the DB, the topology file's `ips`, interface `ip` and route fields |
//!
//! Both refuse what is not an address (`bogus`, `10.0.0.0/`, `10.0.0.0/33`). Neither trims spaces.
//!
//! ```
//! use control::cidr::Cidr;
//! use pipelines::tables::IpNet;
//! use pipelines::wire::Ipv4Addr;
//!
//! let subnet = Cidr::parse_network("10.0.0.0/24").unwrap();
//! assert!(subnet.contains("10.0.0.77".parse().unwrap()));
//! assert_eq!(Cidr::parse_network("10.0.0.1/24"), None, "host bits set: not a subnet");
//! assert_eq!(Cidr::parse_network("10.0.0.1"), None, "no length: not a subnet");
//!
//! // A router interface: the port's fixed IP with its subnet's length, for the tables.
//! let gateway = Cidr::parse("10.0.0.1").unwrap();
//! assert_eq!(gateway.to_string(), "10.0.0.1/32");
//! let iface = gateway.with_prefix_len(subnet.prefix_len()).unwrap();
//! assert_eq!(IpNet::from(iface), IpNet::V4(Ipv4Addr::new(10, 0, 0, 1), 24));
//! ```

use std::fmt;
use std::net::IpAddr;

use pipelines::tables::IpNet;

/// An address and a prefix length. The address is kept as written (host bits included: `10.0.0.5/24` is
/// the address 10.0.0.5 on the /24); [`Cidr::base`] is the network's first address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    v6: bool,
    /// The address, IPv4 in the low 32 bits.
    bits: u128,
    len: u8,
}

/// An address as a family and its bits (IPv4 in the low 32).
pub fn ip_bits(a: IpAddr) -> (bool, u128) {
    match a {
        IpAddr::V4(a) => (false, u32::from(a) as u128),
        IpAddr::V6(a) => (true, u128::from(a)),
    }
}

/// The address of `bits` in the family `v6` (IPv4: the low 32 bits).
pub fn ip_from_bits(v6: bool, bits: u128) -> IpAddr {
    if v6 {
        IpAddr::V6(bits.into())
    } else {
        IpAddr::V4((bits as u32).into())
    }
}

impl Cidr {
    /// `10.0.0.5` (a host prefix), `10.0.0.0/24`, `10.0.0.5/24`, `2001:db8::1`, `2001:db8::/64`.
    pub fn parse(s: &str) -> Option<Cidr> {
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l.parse::<u8>().ok()?)),
            None => (s, None),
        };
        let a: IpAddr = addr.parse().ok()?;
        let c = Cidr::host(a);
        match len {
            Some(len) => c.with_prefix_len(len),
            None => Some(c),
        }
    }

    /// A network as Neutron's API takes one: `10.0.0.0/24`, `2001:db8::/64`; the length is required and
    /// host bits must be zero.
    pub fn parse_network(s: &str) -> Option<Cidr> {
        if !s.contains('/') {
            return None;
        }
        Cidr::parse(s).filter(|c| c.bits == c.base())
    }

    /// `a` as a host prefix (/32, /128).
    pub fn host(a: IpAddr) -> Cidr {
        let (v6, bits) = ip_bits(a);
        Cidr { v6, bits, len: if v6 { 128 } else { 32 } }
    }

    /// The same address with the length `len`; `None` past the family's width.
    pub fn with_prefix_len(self, len: u8) -> Option<Cidr> {
        (len <= self.width()).then_some(Cidr { len, ..self })
    }

    /// The network this address is in (host bits zero): `10.0.0.5/24` is `10.0.0.0/24`.
    pub fn to_network(self) -> Cidr {
        Cidr { bits: self.base(), ..self }
    }

    /// This address as a host prefix.
    pub fn to_host(self) -> Cidr {
        Cidr { len: self.width(), ..self }
    }

    pub fn addr(&self) -> IpAddr {
        ip_from_bits(self.v6, self.bits)
    }

    pub fn is_v6(&self) -> bool {
        self.v6
    }

    pub fn ip_version(&self) -> u8 {
        if self.v6 {
            6
        } else {
            4
        }
    }

    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// The family's address width: 32 or 128.
    pub fn width(&self) -> u8 {
        if self.v6 {
            128
        } else {
            32
        }
    }

    fn all(&self) -> u128 {
        if self.v6 {
            u128::MAX
        } else {
            u32::MAX as u128
        }
    }

    fn mask(&self) -> u128 {
        let host = (self.width() - self.len) as u32;
        if host >= 128 {
            0
        } else {
            self.all() & !((1u128 << host) - 1)
        }
    }

    /// The network's first address (the address with the host bits cleared).
    pub fn base(&self) -> u128 {
        self.bits & self.mask()
    }

    /// The network's last address (broadcast for IPv4).
    pub fn last(&self) -> u128 {
        self.base() | (!self.mask() & self.all())
    }

    pub fn contains(&self, a: IpAddr) -> bool {
        let (v6, b) = ip_bits(a);
        v6 == self.v6 && b & self.mask() == self.base()
    }

    pub fn overlaps(&self, o: &Cidr) -> bool {
        let (short, long) = if self.len <= o.len { (self, o) } else { (o, self) };
        short.v6 == long.v6 && long.bits & short.mask() == short.base()
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr(), self.len)
    }
}

/// The tables' prefix: the same address (host bits kept) and length.
impl From<Cidr> for IpNet {
    fn from(c: Cidr) -> IpNet {
        match c.addr() {
            IpAddr::V4(a) => IpNet::V4(a.into(), c.len),
            IpAddr::V6(a) => IpNet::V6(a.into(), c.len),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_need_a_length_and_no_host_bits() {
        let c = Cidr::parse_network("10.0.0.0/24").unwrap();
        assert_eq!((c.ip_version(), c.prefix_len(), c.to_string().as_str()), (4, 24, "10.0.0.0/24"));
        for bad in ["10.0.0.1/24", "10.0.0.0", "10.0.0.0/33", "10.0.0.0/", "/24", "bogus", " 10.0.0.0/24"] {
            assert_eq!(Cidr::parse_network(bad), None, "{bad}");
        }
        assert_eq!(Cidr::parse_network("2001:db8::/64").unwrap().ip_version(), 6);
        assert_eq!(Cidr::parse_network("2001:db8::1/64"), None);
        assert!(Cidr::parse_network("0.0.0.0/0").unwrap().contains("8.8.8.8".parse().unwrap()));
        assert!(Cidr::parse_network("::/0").unwrap().contains("2001:db8::1".parse().unwrap()));
        assert!(!Cidr::parse_network("::/0").unwrap().contains("8.8.8.8".parse().unwrap()), "families differ");
    }

    #[test]
    fn addresses_may_go_without_a_length_and_keep_their_host_bits() {
        let h = Cidr::parse("10.0.0.5").unwrap();
        assert_eq!((h.prefix_len(), h.addr()), (32, "10.0.0.5".parse::<IpAddr>().unwrap()));
        assert_eq!(Cidr::parse("2001:db8::1").unwrap().prefix_len(), 128);
        let a = Cidr::parse("10.0.0.5/24").unwrap();
        assert_eq!((a.addr().to_string(), a.base(), a.last()), ("10.0.0.5".into(), 0x0a00_0000, 0x0a00_00ff));
        assert_eq!(IpNet::from(a), IpNet::V4(pipelines::wire::Ipv4Addr::new(10, 0, 0, 5), 24), "host bits kept");
        assert_eq!(a.to_host().to_string(), "10.0.0.5/32");
        for bad in ["10.0.0.0/33", "2001:db8::/129", "10.0.0.0/", "bogus", "10.0.0.256"] {
            assert_eq!(Cidr::parse(bad), None, "{bad}");
        }
        assert_eq!(Cidr::parse("10.0.0.5").unwrap().with_prefix_len(33), None);
    }

    #[test]
    fn containment_and_overlap() {
        let c = Cidr::parse_network("10.0.0.0/24").unwrap();
        assert!(c.contains("10.0.0.77".parse().unwrap()) && !c.contains("10.0.1.1".parse().unwrap()));
        assert!(c.overlaps(&Cidr::parse_network("10.0.0.128/25").unwrap()));
        assert!(Cidr::parse_network("10.0.0.128/25").unwrap().overlaps(&c), "either way round");
        assert!(!c.overlaps(&Cidr::parse_network("10.0.1.0/24").unwrap()));
        assert!(!c.overlaps(&Cidr::parse_network("::/0").unwrap()));
        let top = Cidr::parse_network("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fff0/124").unwrap();
        assert_eq!(top.last(), u128::MAX);
        assert_eq!(Cidr::parse_network("0.0.0.0/0").unwrap().last(), u32::MAX as u128);
    }
}
