//! Which worker a packet belongs to when several workers track connections: both directions of a
//! connection must meet the same worker's table (`conntrack.rs`), whatever rx queue the device, the
//! kernel or a guest's driver put each direction on. The dataplane asks [`owner`] for every packet it
//! receives while the tables track connections and hands the packets of another worker to it (VPP's
//! worker hand-off), before any stage has looked at them.
//!
//! The owner is a symmetric hash of the packet's IP address pair, so a connection and its replies, a
//! datagram and all its fragments (which carry no ports), and an ICMP error and the connection it
//! quotes (hashed by the quoted addresses) all meet one worker. A frame from the underlay is hashed by
//! its inner frame, one from a provider uplink past its VLAN tag. Frames without IP (ARP, a tunnel this
//! node does not take, a malformed header) stay on the worker that received them: no stage keeps state
//! for them. The cost of hashing addresses only is spread: all connections of one pair of hosts go to one
//! worker, as with RSS over IP addresses alone.

use crate::nat::{self, Outside};
use crate::stages::security_groups::{addr4, addr6, be16};
use crate::tables::{uplink_key, Tables};
use crate::tunnel::{self, Outer};
use crate::wire::Ipv4Addr;

/// Ethernet's header, and the EtherTypes the walk takes.
const ETH: usize = 14;
const IPV4: u16 = 0x0800;
const IPV6: u16 = 0x86dd;
const VLAN: u16 = 0x8100;
const QINQ: u16 = 0x88a8;

/// The worker, of `workers`, that owns the connection of the frame that came in on port `in_port`;
/// `None`: no connection (the receiving worker keeps it).
#[inline]
pub fn owner(t: &Tables, in_port: u16, frame: &[u8], workers: usize) -> Option<usize> {
    let frame = match t.underlay {
        Some(u) if u.port == in_port => match tunnel::outer(&u, frame) {
            Outer::Tunnel { inner, end, .. } => frame.get(inner..end)?,
            _ => return None,
        },
        _ => frame,
    };
    if !t.nat_in.is_empty() && t.is_uplink(in_port) {
        if let Some(w) = translated(t, in_port, frame, workers) {
            return Some(w);
        }
    }
    let h = pair_hash(addresses(frame)?);
    Some(((u64::from(h) * workers as u64) >> 32) as usize)
}

/// The owner of a frame from an uplink to an address a router translates (`nat.rs`): a reply to its SNAT
/// address belongs to the worker whose range holds its destination port (ICMP: the echo identifier); a
/// packet to a floating IP, to the worker of the pair it becomes (the fixed address's: a connection of
/// the VM's hashes the same both ways); an ICMP error about a packet that left translated, to the owner
/// of that packet's connection (by the quoted source port; the remote end the quote names). `None`:
/// hashed as any other.
fn translated(t: &Tables, in_port: u16, f: &[u8], workers: usize) -> Option<usize> {
    let (mut l3, mut vid) = (ETH, 0);
    let mut et = be16(f, 12)?;
    if et == VLAN {
        vid = be16(f, 14)? & 0x0fff;
        et = be16(f, 16)?;
        l3 += 4;
    }
    if et != IPV4 {
        return None;
    }
    let network = t.uplink_in.get(uplink_key(in_port, vid))?;
    let dst = Ipv4Addr::from_u32(addr4(f, l3 + 16)? as u32);
    let l4 = l3 + usize::from(*f.get(l3)? & 0x0f) * 4;
    // An ICMP error about a packet the router sent out: owned as that packet's connection (`quote`: the
    // quoted header's offset, then its L4 header's).
    let quote = match (*f.get(l3 + 9)?, f.get(l4)) {
        (1, Some(3 | 11 | 12)) => Some((l4 + 8, l4 + 8 + usize::from(*f.get(l4 + 8)? & 0x0f) * 4)),
        _ => None,
    };
    match t.outside(network, dst)?.1 {
        Outside::Snat => {
            let port = match quote {
                // (Its source port, the echo's identifier.)
                Some((q, ql4)) => match *f.get(q + 9)? {
                    6 | 17 => be16(f, ql4)?,
                    1 if f.get(ql4) == Some(&8) => be16(f, ql4 + 4)?,
                    _ => return None,
                },
                None => match *f.get(l3 + 9)? {
                    6 | 17 => be16(f, l4 + 2)?,
                    1 if f.get(l4) == Some(&0) => be16(f, l4 + 4)?,
                    _ => return None,
                },
            };
            Some(nat::port_owner(port, workers))
        }
        Outside::Fip(fixed) => {
            let remote = match quote {
                Some((q, _)) => addr4(f, q + 16)?,
                None => addr4(f, l3 + 12)?,
            };
            let h = pair_hash((remote, u128::from(fixed.to_u32())));
            Some(((u64::from(h) * workers as u64) >> 32) as usize)
        }
    }
}

/// The address pair a frame's connection is known by: its IP header's, or for an ICMP error the
/// quoted header's.
fn addresses(f: &[u8]) -> Option<(u128, u128)> {
    let mut l3 = ETH;
    let mut et = be16(f, 12)?;
    // At most two tags (an uplink's provider networks; classify refuses more).
    for _ in 0..2 {
        if et != VLAN && et != QINQ {
            break;
        }
        et = be16(f, l3 + 2)?;
        l3 += 4;
    }
    let (pair, error_at) = match et {
        IPV4 => v4(f, l3)?,
        IPV6 => v6(f, l3)?,
        _ => return None,
    };
    // The quoted header of an ICMP error; a quote cut short keeps the outer pair.
    Some(error_at.and_then(|at| quoted(f, at)).unwrap_or(pair))
}

/// An IPv4 header's pair, and where the quoted header of an ICMP error starts.
fn v4(f: &[u8], ip: usize) -> Option<((u128, u128), Option<usize>)> {
    let pair = (addr4(f, ip + 12)?, addr4(f, ip + 16)?);
    let later_fragment = be16(f, ip + 6)? & 0x1fff != 0;
    let l4 = ip + usize::from(*f.get(ip)? & 0x0f) * 4;
    let error = !later_fragment && f[ip + 9] == 1 && matches!(f.get(l4), Some(3 | 4 | 5 | 11 | 12));
    Some((pair, error.then_some(l4 + 8)))
}

/// An IPv6 header's pair, and where the quoted header of an ICMPv6 error starts (past the extension
/// headers a host may put before ICMPv6, up to four of them).
fn v6(f: &[u8], ip: usize) -> Option<((u128, u128), Option<usize>)> {
    let pair = (addr6(f, ip + 8)?, addr6(f, ip + 24)?);
    let (mut next, mut at) = (*f.get(ip + 6)?, ip + 40);
    for _ in 0..4 {
        match next {
            // Hop-by-hop, routing, destination options: 8-byte units past the first 8.
            0 | 43 | 60 => {
                let len = (usize::from(*f.get(at + 1)?) + 1) * 8;
                next = *f.get(at)?;
                at += len;
            }
            // Fragment: only a first fragment holds the ICMPv6 header.
            44 => {
                if be16(f, at + 2)? & 0xfff8 != 0 {
                    return Some((pair, None));
                }
                next = *f.get(at)?;
                at += 8;
            }
            _ => break,
        }
    }
    let error = next == 58 && matches!(f.get(at), Some(1..=4));
    Some((pair, error.then_some(at + 8)))
}

/// The address pair of the IP header an ICMP error quotes.
fn quoted(f: &[u8], at: usize) -> Option<(u128, u128)> {
    match *f.get(at)? >> 4 {
        4 => Some((addr4(f, at + 12)?, addr4(f, at + 16)?)),
        6 => Some((addr6(f, at + 8)?, addr6(f, at + 24)?)),
        _ => None,
    }
}

/// A hash of an address pair that does not depend on its order, with every bit of both addresses in
/// the high 32 bits it returns.
fn pair_hash((a, b): (u128, u128)) -> u32 {
    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
    let fold = |x: u128| (x as u64) ^ ((x >> 64) as u64).rotate_left(17);
    let x = fold(lo).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ fold(hi);
    (x.wrapping_mul(0xff51_afd7_ed55_8ccd) >> 32) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::*;
    use crate::tables::TablesBuilder;
    use crate::tunnel::{Encap, Segment};
    use crate::wire::{IpProtocol, Ipv4Addr, Ipv6Addr};
    use proptest::prelude::*;

    fn owner_of(f: &[u8], workers: usize) -> Option<usize> {
        owner(&TablesBuilder::new().build(), 0, f, workers)
    }

    /// An ICMP (`v6`: ICMPv6) error of type `ty` from `r` to the sender of `f`, quoting its IP header
    /// and 8 bytes.
    fn error(f: &[u8], ty: u8, v6: bool) -> Vec<u8> {
        let mut icmp = vec![ty, 0, 0, 0, 0, 0, 0, 0];
        if v6 {
            icmp.extend_from_slice(&f[ETH..ETH + 48]);
            let to = Ipv6Addr(f[ETH + 8..ETH + 24].try_into().unwrap());
            ethernet(VM2, VM1, 0x86dd, &ipv6(ip6(99), to, IpProtocol::Icmpv6, 64, &icmp))
        } else {
            icmp.extend_from_slice(&f[ETH..ETH + 28]);
            let to = Ipv4Addr(f[ETH + 12..ETH + 16].try_into().unwrap());
            ethernet(VM2, VM1, 0x0800, &ipv4(Ipv4Addr::new(192, 0, 2, 1), to, IpProtocol::Icmp, 64, &icmp))
        }
    }

    proptest! {
        /// Both directions of any TCP or UDP flow, and an ICMP error about it from a third host, have one
        /// owner, inside the worker range.
        #[test]
        fn a_connection_and_its_replies_have_one_owner(
            a in any::<[u8; 4]>(), b in any::<[u8; 4]>(), sp in any::<u16>(), dp in any::<u16>(), workers in 1usize..9,
        ) {
            let (a, b) = (Ipv4Addr(a), Ipv4Addr(b));
            let out = tcp4(VM1, VM2, a, b, sp, dp, 0x02);
            let o = owner_of(&out, workers).unwrap();
            prop_assert!(o < workers);
            prop_assert_eq!(owner_of(&tcp4(VM2, VM1, b, a, dp, sp, 0x12), workers), Some(o));
            prop_assert_eq!(owner_of(&udp4_ports(VM2, VM1, b, a, dp, sp), workers), Some(o));
            prop_assert_eq!(owner_of(&error(&out, 3, false), workers), Some(o));
            prop_assert_eq!(owner_of(&error(&out, 11, false), workers), Some(o));
        }

        #[test]
        fn ipv6_too(a in any::<[u8; 16]>(), b in any::<[u8; 16]>(), sp in any::<u16>(), workers in 2usize..9) {
            let (a, b) = (Ipv6Addr(a), Ipv6Addr(b));
            let out = tcp6(VM1, VM2, a, b, sp, 80, 0x02);
            let o = owner_of(&out, workers);
            prop_assert_eq!(owner_of(&tcp6(VM2, VM1, b, a, 80, sp, 0x12), workers), o);
            prop_assert_eq!(owner_of(&error(&out, 1, true), workers), o);
        }
    }

    #[test]
    fn pairs_spread_over_the_workers() {
        let mut per = [0usize; 4];
        for i in 0..4000u32 {
            let f = udp4(VM1, VM2, Ipv4Addr::new(10, 0, (i >> 8) as u8, i as u8), Ipv4Addr::new(10, 1, 0, 1));
            per[owner_of(&f, 4).unwrap()] += 1;
        }
        assert!(per.iter().all(|&n| (800..1200).contains(&n)), "{per:?}");
    }

    #[test]
    fn an_error_is_hashed_by_what_it_quotes_not_by_its_sender() {
        // Many routers report on one connection; the error's own pair differs from it each time.
        let out = udp4_ports(VM1, VM2, IP1, Ipv4Addr::new(172, 16, 0, 1), 5000, 53);
        let moved = (0..64u8).filter(|&r| {
            let mut e = error(&out, 11, false);
            e[ETH + 15] = r; // another router
            owner_of(&e, 8) != owner_of(&out, 8)
        });
        assert_eq!(moved.count(), 0);
        // Informational ICMP (an echo) is hashed by its own pair.
        let echo = echo4(VM1, VM2, IP1, IP2, true, 7);
        assert_eq!(owner_of(&echo, 8), owner_of(&udp4(VM2, VM1, IP2, IP1), 8));
    }

    #[test]
    fn fragments_follow_the_addresses_and_frames_without_ip_stay() {
        let f = udp4(VM1, VM2, IP1, IP2);
        let mut later = f.clone();
        later[ETH + 6] = 0x00;
        later[ETH + 7] = 0x10; // offset 128 bytes
        assert_eq!(owner_of(&later, 7), owner_of(&f, 7));
        assert_eq!(owner_of(&arp_request(VM1, IP1, IP2), 4), None);
        assert_eq!(owner_of(&f[..20], 4), None);
        assert_eq!(owner_of(&[], 4), None);
    }

    #[test]
    fn tagged_and_tunnelled_frames_are_hashed_by_what_they_carry() {
        let f = udp4(VM1, VM2, IP1, IP2);
        let mut tagged = f[..12].to_vec();
        tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x64]);
        tagged.extend_from_slice(&f[12..]);
        assert_eq!(owner_of(&tagged, 5), owner_of(&f, 5));
        let t = tunnel_tables();
        for encap in [Encap::Vxlan, Encap::Geneve, Encap::Gre] {
            let outer = tunnelled(&f, Segment { encap, id: 101 });
            let o = owner(&t, UNDERLAY.port, &outer, 5);
            assert_eq!(o, owner_of(&f, 5), "{encap:?}");
        }
        // The same frame on another port is hashed by its outer pair (the two nodes').
        let outer = tunnelled(&f, Segment { encap: Encap::Vxlan, id: 101 });
        let outer_pair = udp4(VM1, VM2, PEER_CHASSIS.ip, UNDERLAY.ip);
        assert_eq!(owner(&t, 0, &outer, 64), owner_of(&outer_pair, 64));
        // Not a tunnel this node takes: kept.
        assert_eq!(owner(&t, UNDERLAY.port, &f, 5), None);
    }
}
