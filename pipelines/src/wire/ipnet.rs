//! IP prefixes: an address of either family with a prefix length, as the tables hold fixed IPs (host
//! prefixes), allowed address pairs, subnets and routes.

use super::{Ipv4Addr, Ipv6Addr};

/// An IPv4 or IPv6 prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpNet {
    V4(Ipv4Addr, u8),
    V6(Ipv6Addr, u8),
}

impl IpNet {
    pub fn contains_v4(&self, a: Ipv4Addr) -> bool {
        match *self {
            IpNet::V4(net, len) => {
                let mask = if len == 0 { 0 } else { u32::MAX << (32 - len.min(32)) };
                a.to_u32() & mask == net.to_u32() & mask
            }
            IpNet::V6(..) => false,
        }
    }

    pub fn contains_v6(&self, a: Ipv6Addr) -> bool {
        match *self {
            IpNet::V6(net, len) => {
                let mask = if len == 0 { 0 } else { u128::MAX << (128 - len.min(128) as u32) };
                a.to_u128() & mask == net.to_u128() & mask
            }
            IpNet::V4(..) => false,
        }
    }

    /// The prefix with its host bits cleared (`10.0.0.254/24` -> `10.0.0.0/24`); a length past the
    /// family's width counts as the full width.
    pub fn network(self) -> IpNet {
        match self {
            IpNet::V4(a, len) => {
                let len = len.min(32);
                let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
                IpNet::V4(Ipv4Addr::from_u32(a.to_u32() & mask), len)
            }
            IpNet::V6(a, len) => {
                let len = len.min(128);
                let mask = if len == 0 { 0 } else { u128::MAX << (128 - u32::from(len)) };
                IpNet::V6(Ipv6Addr((a.to_u128() & mask).to_be_bytes()), len)
            }
        }
    }

    pub fn host_v4(a: Ipv4Addr) -> IpNet {
        IpNet::V4(a, 32)
    }

    pub fn host_v6(a: Ipv6Addr) -> IpNet {
        IpNet::V6(a, 128)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_contain_what_they_should() {
        let n = IpNet::V4(Ipv4Addr::new(10, 0, 0, 0), 24);
        assert!(n.contains_v4(Ipv4Addr::new(10, 0, 0, 200)));
        assert!(!n.contains_v4(Ipv4Addr::new(10, 0, 1, 1)));
        assert!(IpNet::V4(Ipv4Addr::UNSPECIFIED, 0).contains_v4(Ipv4Addr::new(1, 2, 3, 4)));
        let mut a = [0u8; 16];
        a[0] = 0x20;
        let six = IpNet::V6(Ipv6Addr(a), 8);
        a[15] = 9;
        assert!(six.contains_v6(Ipv6Addr(a)) && !six.contains_v4(Ipv4Addr::new(32, 0, 0, 0)));
    }
}
