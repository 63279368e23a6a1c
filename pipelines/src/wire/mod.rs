//! Zero-copy packet views, one protocol per file, in smoltcp's style: a view `Xxx<T: AsRef<[u8]>>` over
//! any byte buffer, made with `new_checked` (length checked once, so getters never panic) or
//! `new_unchecked`; field ranges in `mod field`; getters on `AsRef<[u8]>`, setters on `AsMut<[u8]>`; an
//! owned `XxxRepr` with `parse`, `emit` and `buffer_len` for slow paths and test fixtures. Unknown code
//! points are values (`EtherType::Unknown(u16)`), never errors.

pub mod arp;
pub mod checksum;
pub mod dhcpv4;
pub mod dhcpv6;
pub mod ethernet;
pub mod geneve;
pub mod gre;
pub mod icmpv4;
pub mod icmpv6;
pub mod ipnet;
pub mod ipv4;
pub mod ipv6;
pub mod tcp;
pub mod udp;
pub mod vlan;
pub mod vxlan;

pub use arp::{ArpOperation, ArpPacket, ArpRepr};
pub use dhcpv4::{DhcpPacket, DhcpRepr};
pub use dhcpv6::{Dhcpv6Packet, Dhcpv6Repr};
pub use ethernet::{EtherType, EthernetFrame, EthernetRepr, Mac};
pub use geneve::{GeneveOption, GenevePacket, GeneveRepr};
pub use gre::{GrePacket, GreRepr};
pub use icmpv4::{Icmpv4Packet, Icmpv4Repr};
pub use icmpv6::{Icmpv6Packet, Icmpv6Repr, NdOption, NdOptions};
pub use ipnet::IpNet;
pub use ipv4::{Ipv4Addr, Ipv4Packet, Ipv4Repr};
pub use ipv6::{Ipv6Addr, Ipv6Packet, Ipv6Repr};
pub use tcp::{TcpPacket, TcpRepr};
pub use udp::{UdpPacket, UdpRepr};
pub use vlan::{VlanRepr, VlanTag};
pub use vxlan::{VxlanPacket, VxlanRepr};

/// Why bytes are not a valid packet of some protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Shorter than the header (or than the length the header claims).
    #[error("truncated")]
    Truncated,
    /// A field holds a value the protocol forbids (bad version, header length, checksum, ...).
    #[error("malformed")]
    Malformed,
    /// Well-formed, but a variant this code does not handle (e.g. ARP over something else than Ethernet/IPv4).
    #[error("unsupported")]
    Unsupported,
}

pub type Result<T> = core::result::Result<T, WireError>;

/// A byte range of a header.
pub(crate) type Field = core::ops::Range<usize>;

/// IP protocol numbers (and IPv6 next-header values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpProtocol {
    HopByHop,
    Icmp,
    Tcp,
    Udp,
    Ipv6Route,
    Ipv6Frag,
    Gre,
    Icmpv6,
    Ipv6NoNxt,
    Ipv6Opts,
    Unknown(u8),
}

impl From<u8> for IpProtocol {
    #[inline]
    fn from(v: u8) -> Self {
        match v {
            0 => IpProtocol::HopByHop,
            1 => IpProtocol::Icmp,
            6 => IpProtocol::Tcp,
            17 => IpProtocol::Udp,
            43 => IpProtocol::Ipv6Route,
            44 => IpProtocol::Ipv6Frag,
            47 => IpProtocol::Gre,
            58 => IpProtocol::Icmpv6,
            59 => IpProtocol::Ipv6NoNxt,
            60 => IpProtocol::Ipv6Opts,
            v => IpProtocol::Unknown(v),
        }
    }
}

impl IpProtocol {
    /// The protocol's number: a constant for a named protocol (`IpProtocol::Udp.number()` is 17, and
    /// costs nothing), to compare with a number read from a header or kept in `Meta::ip_proto`.
    #[inline(always)]
    pub const fn number(self) -> u8 {
        match self {
            IpProtocol::HopByHop => 0,
            IpProtocol::Icmp => 1,
            IpProtocol::Tcp => 6,
            IpProtocol::Udp => 17,
            IpProtocol::Ipv6Route => 43,
            IpProtocol::Ipv6Frag => 44,
            IpProtocol::Gre => 47,
            IpProtocol::Icmpv6 => 58,
            IpProtocol::Ipv6NoNxt => 59,
            IpProtocol::Ipv6Opts => 60,
            IpProtocol::Unknown(v) => v,
        }
    }
}

impl From<IpProtocol> for u8 {
    #[inline]
    fn from(p: IpProtocol) -> u8 {
        p.number()
    }
}

#[inline]
pub(crate) fn get_u16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline]
pub(crate) fn set_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

#[inline]
pub(crate) fn get_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[inline]
pub(crate) fn set_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_protocol_round_trips_every_value() {
        for v in 0..=255u8 {
            assert_eq!(u8::from(IpProtocol::from(v)), v);
        }
        assert_eq!(IpProtocol::from(200), IpProtocol::Unknown(200));
    }
}
