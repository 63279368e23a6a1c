//! Router advertisements (RFC 4861 6.2), as Neutron's radvd sends them for a router interface on subnets
//! with an `ipv6_ra_mode`: from the interface's link-local address and MAC, hop limit 64, router lifetime
//! 300 s (radvd's 3 × `MaxRtrAdvInterval`, 100 s in Neutron), the M flag for `dhcpv6-stateful`, the O
//! flag for `dhcpv6-stateless`, the source link-layer address, the network's MTU (from 1280 up), one
//! prefix option per subnet (on-link; autonomous for `slaac` and `dhcpv6-stateless`; valid 86400 s,
//! preferred 14400 s, radvd's defaults), and the `slaac` subnets' DNS servers (RDNSS, at most three,
//! lifetime 200 s).
//!
//! Each node advertises to its own ports only: solicited (a router solicitation from a port is answered
//! to that port, unicast to its sender when the sender has an address, else to all nodes), and
//! unsolicited, out of each port with advertisements: the first within a second of the port appearing,
//! two more at most 16 s apart (RFC 4861 6.2.4's initial advertisements), then every 30 to 100 s at
//! random (Neutron's `min_rtr_adv_interval`/`max_rtr_adv_interval`).

use super::{frame, Answer, PortServices, RouterAdvert, SlowPath};
use crate::tables::Tables;
use crate::wire::icmpv6::{NdOption, PREFIX_AUTONOMOUS, PREFIX_ON_LINK, RA_MANAGED, RA_OTHER};
use crate::wire::{Icmpv6Packet, Icmpv6Repr, Ipv6Addr, Mac};

/// Router lifetime, s.
const ROUTER_LIFETIME: u16 = 300;
/// RDNSS lifetime, s (radvd's 2 × `MaxRtrAdvInterval`).
const RDNSS_LIFETIME: u32 = 200;
/// IPv6's minimum link MTU: a smaller one is not advertised.
const MIN_MTU: u32 = 1280;
const VALID_LIFETIME: u32 = 86_400;
const PREFERRED_LIFETIME: u32 = 14_400;
/// Unsolicited advertisements: how many come at the faster initial rate, and the intervals (ms).
const INITIAL_ADVERTS: u8 = 3;
const MAX_INITIAL_INTERVAL_MS: u64 = 16_000;
const MIN_INTERVAL_MS: u64 = 30_000;
const MAX_INTERVAL_MS: u64 = 100_000;

/// One port's unsolicited advertisements.
#[derive(Debug, Clone, Copy)]
pub(super) struct Advertising {
    /// The logical port it advertises to (a port index taken by another port starts over).
    lport: u32,
    next_ms: u64,
    initial_left: u8,
}

/// The advertisement of `r`, to `(dst_mac, dst)`.
fn advert(r: &RouterAdvert, dst_mac: Mac, dst: Ipv6Addr) -> Vec<u8> {
    let mut options = vec![NdOption::SourceLinkAddr(r.router_mac)];
    if r.mtu >= MIN_MTU {
        options.push(NdOption::Mtu(r.mtu));
    }
    for &(prefix, prefix_len, autonomous) in &r.prefixes {
        options.push(NdOption::PrefixInfo {
            prefix_len,
            flags: PREFIX_ON_LINK | if autonomous { PREFIX_AUTONOMOUS } else { 0 },
            valid_lifetime: VALID_LIFETIME,
            preferred_lifetime: PREFERRED_LIFETIME,
            prefix,
        });
    }
    if !r.dns.is_empty() {
        let mut servers = [Ipv6Addr::UNSPECIFIED; 3];
        let count = r.dns.len().min(3);
        servers[..count].copy_from_slice(&r.dns[..count]);
        options.push(NdOption::Rdnss { lifetime: RDNSS_LIFETIME, servers, count: count as u8 });
    }
    let flags = if r.managed { RA_MANAGED } else { 0 } | if r.other { RA_OTHER } else { 0 };
    let repr = Icmpv6Repr::RouterAdvert {
        hop_limit: 64,
        flags,
        router_lifetime: ROUTER_LIFETIME,
        reachable_time: 0,
        retrans_time: 0,
        options,
    };
    frame::icmp6((r.router_mac, dst_mac), (Ipv6Addr::link_local_from_mac(r.router_mac), dst), &repr)
}

/// The answer to an ICMPv6 message `l4` from `(src_mac, src)` to `dst` on a port with `svc`: a valid
/// router solicitation (RFC 4861 6.1.1) gets the first router's advertisement; the others' (a network
/// with several routers advertising) come with the port's next unsolicited ones, moved to now.
#[allow(clippy::too_many_arguments)]
pub(super) fn solicited(
    sp: &mut SlowPath,
    svc: &PortServices,
    src_mac: Mac,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_limit: u8,
    l4: &[u8],
    now_ms: u64,
    port: u16,
) -> Option<Vec<u8>> {
    let pseudo = crate::wire::checksum::pseudo_v6(src.0, dst.0, 58, l4.len() as u32);
    let repr = Icmpv6Packet::new_checked(l4).ok().and_then(|p| Icmpv6Repr::parse(&p, pseudo).ok());
    let Some(Icmpv6Repr::RouterSolicit { options }) = repr else {
        sp.stats.bump("ra.malformed");
        return None;
    };
    // From :: there may be no source link-layer address option.
    let lla_from_unspecified = src.is_unspecified() && options.iter().any(|o| matches!(o, NdOption::SourceLinkAddr(_)));
    if hop_limit != 255 || lla_from_unspecified || src_mac != svc.mac {
        sp.stats.bump("ra.malformed");
        return None;
    }
    sp.stats.bump("ra.solicit");
    let (first, rest) = svc.ra.split_first().or_else(|| {
        sp.stats.bump("ra.no_router");
        None
    })?;
    if !rest.is_empty() {
        // The other routers' advertisements go with the next tick.
        if let Some(a) = sp.adverts.get_mut(&port) {
            a.next_ms = now_ms;
        }
    }
    let (dst_mac, dst) = if src.is_unspecified() {
        (Mac::ipv6_multicast(&Ipv6Addr::ALL_NODES.0), Ipv6Addr::ALL_NODES)
    } else {
        (src_mac, src)
    };
    sp.stats.bump("ra.solicited");
    Some(advert(first, dst_mac, dst))
}

/// The unsolicited advertisements due at `now_ms`, out of every port of `t` with advertisements.
pub(super) fn tick(sp: &mut SlowPath, t: &Tables, now_ms: u64, out: &mut Vec<Answer>) {
    sp.adverts.retain(|port, a| t.services_of(*port).is_some_and(|s| s.lport == a.lport && !s.ra.is_empty()));
    let all_nodes = (Mac::ipv6_multicast(&Ipv6Addr::ALL_NODES.0), Ipv6Addr::ALL_NODES);
    // (Not to a port that is down: what the slow path sends does not go through `egress`.)
    let up = |port: u16| t.port(port).is_some_and(|e| e.up);
    for (&port, svc) in t.services.iter().filter(|(&p, s)| !s.ra.is_empty() && up(p)) {
        let first = now_ms + sp.random(0, 1000);
        let a = *sp.adverts.entry(port).or_insert(Advertising {
            lport: svc.lport,
            next_ms: first,
            initial_left: INITIAL_ADVERTS,
        });
        if now_ms < a.next_ms {
            continue;
        }
        for r in &svc.ra {
            out.push(Answer { port, frame: advert(r, all_nodes.0, all_nodes.1) });
            sp.stats.bump("ra.unsolicited");
        }
        let (next_ms, initial_left) = if a.initial_left > 1 {
            (now_ms + sp.random(MAX_INITIAL_INTERVAL_MS / 4, MAX_INITIAL_INTERVAL_MS), a.initial_left - 1)
        } else {
            (now_ms + sp.random(MIN_INTERVAL_MS, MAX_INTERVAL_MS), 0)
        };
        sp.adverts.insert(port, Advertising { lport: svc.lport, next_ms, initial_left });
    }
}
