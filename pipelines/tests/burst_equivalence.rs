//! Whatever a burst shares (the burst fast path of `stages/burst.rs`, the per-burst memos of the port,
//! L2, router, neighbour and leaf-route lookups) changes no decision: on random bursts of plain, spoofed,
//! routed (to routes with and without longer prefixes inside), expiring, fragmented, DHCP, ARP, IPv6,
//! neighbour solicitations and advertisements (for the port's own and others' addresses and MACs),
//! VLAN-tagged and corrupted frames, with or without security groups (stateful or not), `decide` over the
//! burst gives the same metadata and bytes as each packet decided alone by `decide_per_packet`.

use std::sync::Arc;

use pipelines::acl::{Acl, Rule, L4};
use pipelines::fixtures::*;
use pipelines::tables::PortSg;
use pipelines::wire::icmpv6::NA_SOLICITED;
use pipelines::wire::{Icmpv6Repr, IpNet, Ipv4Addr, Mac, NdOption};
use proptest::prelude::*;

const ROUTER: Mac = Mac([0xfa, 0x16, 0x3e, 0, 0, 0xfe]);

/// One frame: a kind, then optional header tweaks and one random byte change.
fn frame() -> impl Strategy<Value = Vec<u8>> {
    let kind = 0u8..13;
    let tweak = (any::<u16>(), any::<u16>(), any::<u8>(), any::<u8>());
    let corrupt = proptest::option::weighted(0.15, (0usize..60, any::<u8>()));
    (kind, tweak, corrupt).prop_map(|(kind, (sport, dport, ttl, low), corrupt)| {
        let mut f = match kind {
            0 | 1 => udp4(VM1, VM2, IP1, IP2),
            2 => udp4(VM1, VM2, Ipv4Addr::new(10, 0, 0, low), IP2),
            3 => udp4(VM1, ROUTER, IP1, Ipv4Addr::new(10, 2, 0, low % 8)),
            4 => udp4(VM1, ROUTER, IP1, Ipv4Addr::new(10, 1, low % 10, 1)),
            5 => udp4(VM1, ROUTER, IP1, Ipv4Addr::new(10, 0, 0, 254)),
            6 => arp_request(VM1, IP1, Ipv4Addr::new(10, 0, 0, low)),
            7 => udp6(VM1, VM2, ip6(1), ip6(2)),
            8 => udp4(VM1, Mac([2, 0, 0, 0, 0, low]), IP1, IP2),
            // Neighbour discovery: the target and the link-layer option the port's own (1), another
            // port's (2) or nobody's (0).
            9 => neighbor_solicit(VM1, ip6(1), ip6(low % 4)),
            10 => {
                let options = vec![NdOption::SourceLinkAddr(Mac([0xfa, 0x16, 0x3e, 0, 0, low % 3]))];
                let target = ip6(2);
                let group = target.solicited_node();
                let ns = Icmpv6Repr::NeighborSolicit { target, options };
                icmp6_frame(VM1, Mac::ipv6_multicast(&group.0), ip6(1), group, &ns)
            }
            11 => {
                // 802.1Q-tagged, to a VM or to the router.
                let mut f = udp4(VM1, if low % 2 == 0 { VM2 } else { ROUTER }, IP1, IP2);
                f.splice(12..12, [0x81, 0x00, 0x00, low]);
                f
            }
            _ => {
                let options = vec![NdOption::TargetLinkAddr(Mac([0xfa, 0x16, 0x3e, 0, 0, low % 3]))];
                let na = Icmpv6Repr::NeighborAdvert { flags: NA_SOLICITED, target: ip6(low / 3 % 3), options };
                icmp6_frame(VM1, VM2, ip6(1), ip6(2), &na)
            }
        };
        if f.len() >= 38 && f[12..14] == [8, 0] {
            f[34..36].copy_from_slice(&(sport % 80).to_be_bytes());
            f[36..38].copy_from_slice(&(dport % 80).to_be_bytes());
            f[22] = ttl % 4 + if ttl > 128 { 60 } else { 0 };
            match ttl % 16 {
                0 => f[20] |= 0x20,                            // more fragments
                1 => f[21] = 1,                                // a later fragment
                2 => f[14] = 0x46,                             // options
                3 => f[16..18].copy_from_slice(&[0, 0x0f]),    // an IPv4 total length shorter than the header
                4 => f[16..18].copy_from_slice(&[0x03, 0xe8]), // an IPv4 total length past the frame
                5 => f[16..18].copy_from_slice(&[0, 28]),      // shorter than the frame: the rest is padding
                _ => {}
            }
        }
        if let Some((at, b)) = corrupt {
            if at < f.len() {
                f[at] = b;
            }
        }
        f
    })
}

fn burst() -> impl Strategy<Value = (Vec<Vec<u8>>, Vec<u16>)> {
    proptest::collection::vec((frame(), prop_oneof![8 => Just(0u16), 1 => 0u16..4]), 1..33)
        .prop_map(|v| v.into_iter().unzip())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn fast_path_decides_as_the_per_packet_path((frames, ports) in burst(), security in any::<bool>(), sg in 0u8..3) {
        let mut t = routed_tables();
        t.ports[0].as_mut().unwrap().security = security;
        if sg != 0 {
            // Security groups (1: stateful, 2: stateless) on VM1 and VM2: half the UDP ports in, three in
            // four out.
            let udp = |hi| Rule { v6: false, proto: Some(17), l4: L4::Ports(0, hi), remote: None };
            let groups = Arc::new(PortSg::new(sg == 1, Acl::compile(&[udp(39)]), Acl::compile(&[udp(59)])));
            for p in &mut t.ports[..2] {
                p.as_mut().unwrap().sg = Some(groups.clone());
            }
        }
        // A longer prefix inside the extra route 10.1.0.0/16, via a gateway with no known MAC.
        let r = t.routers.get_mut(&1).unwrap();
        r.add_route(IpNet::V4(Ipv4Addr::new(10, 1, 7, 0), 24), IpNet::host_v4(Ipv4Addr::new(10, 2, 0, 9)));
        let frames: Vec<(u16, &[u8])> = ports.iter().copied().zip(frames.iter().map(Vec::as_slice)).collect();
        let (fast_meta, fast_bytes) = decide_burst(&t, 0, &frames, true);
        let (slow_meta, slow_bytes) = decide_burst(&t, 0, &frames, false);
        for i in 0..frames.len() {
            prop_assert_eq!(fast_meta[i], slow_meta[i], "packet {} of {:02x?}", i, frames[i].1);
            prop_assert_eq!(&fast_bytes[i], &slow_bytes[i], "packet {}", i);
        }
    }
}

/// A frame of a node with tunnels ([`tunnel_tables`]) and the port it comes in by: to and from ports on
/// the other node (switched and routed), floods, and what the other node sends through the underlay
/// (tunnelled frames of known and unknown segments, from known and unknown endpoints, ARP), some
/// corrupted.
fn tunnel_frame() -> impl Strategy<Value = (Vec<u8>, u16)> {
    use pipelines::tunnel::{Encap, Segment};
    let corrupt = proptest::option::weighted(0.15, (0usize..90, any::<u8>()));
    let vm3 = Mac([0xfa, 0x16, 0x3e, 0, 0, 3]);
    let tagged = |mut f: Vec<u8>, vid: u8| {
        f.splice(12..12, [0x81, 0x00, 0x00, vid]);
        f
    };
    (0u8..14, any::<u8>(), corrupt).prop_map(move |(kind, low, corrupt)| {
        let vxlan = |id| Segment { encap: Encap::Vxlan, id };
        let (mut f, port) = match kind {
            0 => (udp4(VM1, REMOTE_VM, IP1, Ipv4Addr::new(10, 0, 0, 9)), 0),
            1 => (udp4(VM1, ROUTER, IP1, Ipv4Addr::new(10, 2, 0, 9 - low % 2)), 0),
            2 => (udp4(VM1, Mac::BROADCAST, IP1, Ipv4Addr::BROADCAST), 0),
            3 => (arp_request(VM1, IP1, Ipv4Addr::new(10, 0, 0, 9)), 0),
            4 => (tunnelled(&udp4(REMOTE_VM, VM2, Ipv4Addr::new(10, 0, 0, 9), IP2), vxlan(101)), 3),
            5 => (tunnelled(&udp4(REMOTE_VM, Mac::BROADCAST, Ipv4Addr::new(10, 0, 0, 9), IP2), vxlan(101)), 3),
            6 => {
                (tunnelled(&udp4(REMOTE_VM, VM2, Ipv4Addr::new(10, 0, 0, 9), IP2), vxlan(100 + u32::from(low % 4))), 3)
            }
            7 => (
                tunnelled(
                    &udp4(REMOTE_VM, ROUTER, Ipv4Addr::new(10, 0, 0, 9), IP2),
                    Segment { encap: Encap::Geneve, id: 102 },
                ),
                3,
            ),
            8 => (arp_request(PEER_CHASSIS.mac, PEER_CHASSIS.ip, Ipv4Addr::new(192, 168, 100, low % 3)), 3),
            // The provider variant's uplink (port 4, network 2 in VLAN 200): in, tagged or not, to VM3, the
            // router or everyone; and VM3 to a port on another node (out of the uplink there).
            10 => {
                let dst = [vm3, ROUTER, Mac::BROADCAST, REMOTE_VM2][usize::from(low % 4)];
                let f = udp4(REMOTE_VM2, dst, Ipv4Addr::new(10, 2, 0, 9), Ipv4Addr::new(10, 2, 0, 3));
                (tagged(f, [200, 200, 201, 0][usize::from(low / 4 % 4)]), 4)
            }
            11 => (udp4(REMOTE_VM2, vm3, Ipv4Addr::new(10, 2, 0, 9), Ipv4Addr::new(10, 2, 0, 3)), 4),
            12 | 13 => (udp4(vm3, REMOTE_VM2, Ipv4Addr::new(10, 2, 0, 3), Ipv4Addr::new(10, 2, 0, 9)), 2),
            _ => (udp4(VM1, VM2, IP1, IP2), low as u16 % 4),
        };
        if let Some((at, b)) = corrupt {
            if at < f.len() {
                f[at] = b;
            }
        }
        (f, port)
    })
}

/// [`tunnel_tables`] with network 2 a provider network instead: VLAN 200 on uplink port 4.
fn provider_tables() -> pipelines::tables::Tables {
    use pipelines::tables::{TablesBuilder, Uplink};
    let mut b = TablesBuilder::from_tables(tunnel_tables());
    b.remove_segment(2).flood_chassis(2, vec![]).uplink(2, Uplink { port: 4, vlan: Some(200) });
    b.build()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn fast_path_decides_as_the_per_packet_path_with_tunnels(burst in proptest::collection::vec(tunnel_frame(), 1..33)) {
        // Each path its own tables: the next hops' MACs are learned from the burst's ARP as it goes. Twice:
        // network 2 tunnelled, then network 2 a provider network on uplink port 4 (VLAN 200).
        let frames: Vec<(u16, &[u8])> = burst.iter().map(|(f, p)| (*p, f.as_slice())).collect();
        for provider in [false, true] {
            let tables = || if provider { provider_tables() } else { tunnel_tables() };
            let (fast_meta, fast_bytes) = decide_burst(&tables(), 0, &frames, true);
            let (slow_meta, slow_bytes) = decide_burst(&tables(), 0, &frames, false);
            for i in 0..frames.len() {
                prop_assert_eq!(fast_meta[i], slow_meta[i], "packet {} of {:02x?} (provider {})", i, frames[i].1, provider);
                prop_assert_eq!(&fast_bytes[i], &slow_bytes[i], "packet {}", i);
            }
        }
    }
}
