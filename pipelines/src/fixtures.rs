//! Frame builders and a small topology, for stage tests, golden files and benchmarks: the VMs and
//! addresses of `../shared/bench`'s traffic (VM1 `fa:16:3e:00:00:01` 10.0.0.1, VM2 `…:02` 10.0.0.2).

use crate::routing::RouterIface;
use crate::tables::{PortEntry, Tables, TablesBuilder};
use crate::wire::checksum::{pseudo_v4, pseudo_v6};
use crate::wire::icmpv6::{NdOption, NA_OVERRIDE, NA_SOLICITED, RA_OTHER};
use crate::wire::*;

pub const VM1: Mac = Mac([0xfa, 0x16, 0x3e, 0, 0, 1]);
pub const VM2: Mac = Mac([0xfa, 0x16, 0x3e, 0, 0, 2]);
pub const IP1: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
pub const IP2: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

/// 2001:db8::N
pub fn ip6(n: u8) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    a[15] = n;
    Ipv6Addr(a)
}

/// An Ethernet frame around `payload`, padded to 60 bytes.
pub fn ethernet(src: Mac, dst: Mac, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; 14 + payload.len()];
    EthernetRepr { src, dst, ethertype: EtherType::from(ethertype) }
        .emit(&mut EthernetFrame::new_unchecked(&mut f[..]));
    f[14..].copy_from_slice(payload);
    if f.len() < 60 {
        f.resize(60, 0);
    }
    f
}

pub fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, protocol: IpProtocol, ttl: u8, payload: &[u8]) -> Vec<u8> {
    let r = Ipv4Repr { src, dst, protocol, payload_len: payload.len(), ttl, dscp_ecn: 0, ident: 1, dont_frag: true };
    let mut b = vec![0u8; 20 + payload.len()];
    b[20..].copy_from_slice(payload);
    r.emit(&mut Ipv4Packet::new_unchecked(&mut b[..]));
    b
}

pub fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, next: IpProtocol, hop_limit: u8, payload: &[u8]) -> Vec<u8> {
    let r = Ipv6Repr {
        src,
        dst,
        next_header: next,
        payload_len: payload.len(),
        hop_limit,
        traffic_class: 0,
        flow_label: 0,
    };
    let mut b = vec![0u8; 40 + payload.len()];
    b[40..].copy_from_slice(payload);
    r.emit(&mut Ipv6Packet::new_unchecked(&mut b[..]));
    b
}

pub fn udp4_ports(sm: Mac, dm: Mac, s: Ipv4Addr, d: Ipv4Addr, sp: u16, dp: u16) -> Vec<u8> {
    let mut u = vec![0u8; 8 + 18];
    let pseudo = pseudo_v4(s.0, d.0, 17, u.len() as u16);
    UdpRepr { src_port: sp, dst_port: dp }.emit(&mut UdpPacket::new_unchecked(&mut u[..]), 18, pseudo);
    ethernet(sm, dm, 0x0800, &ipv4(s, d, IpProtocol::Udp, 64, &u))
}

/// A TCP segment's header alone (no options, no payload; checksum not filled: no stage reads it).
fn tcp_header(sp: u16, dp: u16, flags: u8) -> Vec<u8> {
    let mut t = vec![0u8; 20];
    t[0..2].copy_from_slice(&sp.to_be_bytes());
    t[2..4].copy_from_slice(&dp.to_be_bytes());
    t[12] = 5 << 4;
    t[13] = flags;
    t[14..16].copy_from_slice(&8192u16.to_be_bytes());
    t
}

/// An IPv4/TCP segment with `flags` (`conntrack::tcp::*`).
pub fn tcp4(sm: Mac, dm: Mac, s: Ipv4Addr, d: Ipv4Addr, sp: u16, dp: u16, flags: u8) -> Vec<u8> {
    ethernet(sm, dm, 0x0800, &ipv4(s, d, IpProtocol::Tcp, 64, &tcp_header(sp, dp, flags)))
}

/// An IPv6/TCP segment with `flags`.
pub fn tcp6(sm: Mac, dm: Mac, s: Ipv6Addr, d: Ipv6Addr, sp: u16, dp: u16, flags: u8) -> Vec<u8> {
    ethernet(sm, dm, 0x86dd, &ipv6(s, d, IpProtocol::Tcp, 64, &tcp_header(sp, dp, flags)))
}

/// An ICMP echo request (`request`) or reply with identifier `id` (checksum not filled).
pub fn echo4(sm: Mac, dm: Mac, s: Ipv4Addr, d: Ipv4Addr, request: bool, id: u16) -> Vec<u8> {
    let mut i = vec![if request { 8 } else { 0 }, 0, 0, 0, 0, 0, 0, 1];
    i[4..6].copy_from_slice(&id.to_be_bytes());
    i.extend_from_slice(&[0xab; 16]);
    ethernet(sm, dm, 0x0800, &ipv4(s, d, IpProtocol::Icmp, 64, &i))
}

/// An ICMPv6 echo request (`request`) or reply with identifier `id` (checksum not filled).
pub fn echo6(sm: Mac, dm: Mac, s: Ipv6Addr, d: Ipv6Addr, request: bool, id: u16) -> Vec<u8> {
    let mut i = vec![if request { 128 } else { 129 }, 0, 0, 0, 0, 0, 0, 1];
    i[4..6].copy_from_slice(&id.to_be_bytes());
    ethernet(sm, dm, 0x86dd, &ipv6(s, d, IpProtocol::Icmpv6, 64, &i))
}

/// A 64-byte-on-the-wire IPv4/UDP frame, as the benchmark traffic.
pub fn udp4(sm: Mac, dm: Mac, s: Ipv4Addr, d: Ipv4Addr) -> Vec<u8> {
    udp4_ports(sm, dm, s, d, 1024, 5001)
}

pub fn udp6(sm: Mac, dm: Mac, s: Ipv6Addr, d: Ipv6Addr) -> Vec<u8> {
    let mut u = vec![0u8; 8 + 10];
    let pseudo = pseudo_v6(s.0, d.0, 17, u.len() as u32);
    UdpRepr { src_port: 1024, dst_port: 5001 }.emit(&mut UdpPacket::new_unchecked(&mut u[..]), 10, pseudo);
    ethernet(sm, dm, 0x86dd, &ipv6(s, d, IpProtocol::Udp, 64, &u))
}

pub fn arp(op: ArpOperation, sm: Mac, sip: Ipv4Addr, tm: Mac, tip: Ipv4Addr, eth_dst: Mac) -> Vec<u8> {
    let r = ArpRepr { operation: op, sender_mac: sm, sender_ip: sip, target_mac: tm, target_ip: tip };
    let mut a = [0u8; 28];
    r.emit(&mut ArpPacket::new_unchecked(&mut a[..]));
    ethernet(sm, eth_dst, 0x0806, &a)
}

pub fn arp_request(sm: Mac, sip: Ipv4Addr, tip: Ipv4Addr) -> Vec<u8> {
    arp(ArpOperation::Request, sm, sip, Mac::ZERO, tip, Mac::BROADCAST)
}

/// The ICMPv6 message `r` from `(sm, s)` to `(dm, d)`, hop limit 255 (as neighbour discovery wants).
pub fn icmp6_frame(sm: Mac, dm: Mac, s: Ipv6Addr, d: Ipv6Addr, r: &Icmpv6Repr<'_>) -> Vec<u8> {
    let mut b = vec![0u8; r.buffer_len()];
    let pseudo = pseudo_v6(s.0, d.0, 58, b.len() as u32);
    r.emit(&mut Icmpv6Packet::new_unchecked(&mut b[..]), pseudo);
    ethernet(sm, dm, 0x86dd, &ipv6(s, d, IpProtocol::Icmpv6, 255, &b))
}

/// A neighbour solicitation for `target`, to its solicited-node group (with a source link-layer option
/// unless the source is :: as in DAD).
pub fn neighbor_solicit(sm: Mac, s: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
    let group = target.solicited_node();
    let options = if s.is_unspecified() { vec![] } else { vec![NdOption::SourceLinkAddr(sm)] };
    icmp6_frame(sm, Mac::ipv6_multicast(&group.0), s, group, &Icmpv6Repr::NeighborSolicit { target, options })
}

/// The advertisement that answers [`neighbor_solicit`] from the owner `(tm, target)`.
pub fn neighbor_advert(tm: Mac, target: Ipv6Addr, dm: Mac, d: Ipv6Addr, router: bool) -> Vec<u8> {
    let flags = NA_SOLICITED | NA_OVERRIDE | if router { icmpv6::NA_ROUTER } else { 0 };
    let r = Icmpv6Repr::NeighborAdvert { flags, target, options: vec![NdOption::TargetLinkAddr(tm)] };
    icmp6_frame(tm, dm, target, d, &r)
}

pub fn router_advert(sm: Mac, s: Ipv6Addr) -> Vec<u8> {
    let r = Icmpv6Repr::RouterAdvert {
        hop_limit: 64,
        flags: RA_OTHER,
        router_lifetime: 1800,
        reachable_time: 0,
        retrans_time: 0,
        options: vec![NdOption::SourceLinkAddr(sm)],
    };
    icmp6_frame(sm, Mac::ipv6_multicast(&Ipv6Addr::ALL_NODES.0), s, Ipv6Addr::ALL_NODES, &r)
}

/// The port entry of a VM with one IPv4 and one IPv6 address.
pub fn vm_port(lport: u32, network: u32, mac: Mac, v4: Ipv4Addr, v6: Ipv6Addr, security: bool) -> PortEntry {
    PortEntry {
        lport,
        network,
        mac,
        up: true,
        security,
        allowed: vec![(mac, IpNet::host_v4(v4)), (mac, IpNet::host_v6(v6))],
        sg: None,
    }
}

/// Port 0 = VM1 (10.0.0.1, 2001:db8::1), port 1 = VM2 (10.0.0.2, 2001:db8::2), both in network 1.
pub fn two_port_tables(security: bool) -> Tables {
    let mut b = TablesBuilder::new();
    b.local_port(0, vm_port(101, 1, VM1, IP1, ip6(1), security));
    b.local_port(1, vm_port(102, 1, VM2, IP2, ip6(2), security));
    b.build()
}

/// The router's MAC on network 1, as the benchmark traffic's `l3-1kflows` destination.
pub const ROUTER_MAC: Mac = Mac([0xfa, 0x16, 0x3e, 0, 0, 0xfe]);
/// The router's MAC on network 2.
pub const ROUTER_MAC2: Mac = Mac([0xfa, 0x16, 0x3e, 0, 0, 0xfd]);

/// 2001:db8:2::N, on network 2.
pub fn ip6_net2(n: u8) -> Ipv6Addr {
    let mut a = ip6(n);
    a.0[5] = 2;
    a
}

/// [`two_port_tables`] plus VM3 (`fa:16:3e:00:00:03`, 10.2.0.3, 2001:db8:2::3) on port 2 in network 2,
/// and router 1 joining network 1 (10.0.0.254/24, 2001:db8::fe/64) and network 2 (10.2.0.254/24,
/// 2001:db8:2::fe/64), with the extra route 10.1.0.0/16 via 10.2.0.3.
pub fn routed_tables() -> Tables {
    let mut b = TablesBuilder::new();
    b.local_port(0, vm_port(101, 1, VM1, IP1, ip6(1), true));
    b.local_port(1, vm_port(102, 1, VM2, IP2, ip6(2), true));
    let vm3 = Mac([0xfa, 0x16, 0x3e, 0, 0, 3]);
    b.local_port(2, vm_port(103, 2, vm3, Ipv4Addr::new(10, 2, 0, 3), ip6_net2(3), true));
    let ifaces = [
        RouterIface { network: 1, mac: ROUTER_MAC, ip: IpNet::V4(Ipv4Addr::new(10, 0, 0, 254), 24) },
        RouterIface { network: 1, mac: ROUTER_MAC, ip: IpNet::V6(ip6(0xfe), 64) },
        RouterIface { network: 2, mac: ROUTER_MAC2, ip: IpNet::V4(Ipv4Addr::new(10, 2, 0, 254), 24) },
        RouterIface { network: 2, mac: ROUTER_MAC2, ip: IpNet::V6(ip6_net2(0xfe), 64) },
    ];
    let extra = [(IpNet::V4(Ipv4Addr::new(10, 1, 0, 0), 16), IpNet::host_v4(Ipv4Addr::new(10, 2, 0, 3)))];
    b.router(1, &ifaces, extra);
    b.build()
}

/// A VM on another node: `fa:16:3e:00:00:09`, 10.0.0.9 on network 1 (and [`REMOTE_VM2`], 10.2.0.9 on
/// network 2), on chassis 1 ([`PEER_CHASSIS`]) in [`tunnel_tables`].
pub const REMOTE_VM: Mac = Mac([0xfa, 0x16, 0x3e, 0, 0, 9]);
pub const REMOTE_VM2: Mac = Mac([0xfa, 0x16, 0x3e, 0, 0, 0x29]);
/// This node's underlay in [`tunnel_tables`]: port 3, 192.168.100.1.
pub const UNDERLAY: crate::tunnel::Underlay = crate::tunnel::Underlay {
    port: 3,
    mac: Mac([2, 0, 0, 0, 0, 1]),
    ip: Ipv4Addr::new(192, 168, 100, 1),
    dont_fragment: true,
    ttl: 64,
};
/// The other node of [`tunnel_tables`] (chassis key 1), 192.168.100.2, as it sends to this one.
pub const PEER_CHASSIS: crate::tunnel::Underlay =
    crate::tunnel::Underlay { port: 0, mac: Mac([2, 0, 0, 0, 0, 2]), ip: Ipv4Addr::new(192, 168, 100, 2), ..UNDERLAY };

/// [`routed_tables`] on a node with tunnels: its underlay on port 3 ([`UNDERLAY`]), networks 1 and 2
/// in VXLAN 101 and Geneve 102, [`REMOTE_VM`] and [`REMOTE_VM2`] on chassis 1 ([`PEER_CHASSIS`]), which
/// also has ports on both networks (floods are replicated to it).
pub fn tunnel_tables() -> Tables {
    use crate::tables::RemotePort;
    use crate::tunnel::{Chassis, Encap, NextHops, Segment};
    let mut b = TablesBuilder::from_tables(routed_tables());
    b.underlay(Some(UNDERLAY));
    b.chassis(1, Chassis { ip: PEER_CHASSIS.ip, hop: 0, encaps: Encap::ALL });
    b.next_hops(NextHops::new([(PEER_CHASSIS.ip, Some(PEER_CHASSIS.mac))]).into());
    b.segment(1, Segment { encap: Encap::Vxlan, id: 101 }).segment(2, Segment { encap: Encap::Geneve, id: 102 });
    b.remote_port(1, REMOTE_VM, &[IpNet::host_v4(Ipv4Addr::new(10, 0, 0, 9))], RemotePort { lport: 109, chassis: 1 });
    b.remote_port(2, REMOTE_VM2, &[IpNet::host_v4(Ipv4Addr::new(10, 2, 0, 9))], RemotePort { lport: 209, chassis: 1 });
    b.flood_chassis(1, vec![1]).flood_chassis(2, vec![1]);
    b.build()
}

/// `inner`, as [`PEER_CHASSIS`] sends it to [`UNDERLAY`] in `seg`.
pub fn tunnelled(inner: &[u8], seg: crate::tunnel::Segment) -> Vec<u8> {
    let mut p = crate::buf::HeapBuf::new(inner);
    assert!(crate::tunnel::encap(&PEER_CHASSIS, UNDERLAY.ip, UNDERLAY.mac, seg, &mut p), "headroom");
    p.into_vec()
}

/// One frame from port 0 through `classify` and then `stage` (a stage's burst `run`): its `Meta` and bytes.
pub fn classify_then(
    t: &Tables,
    frame: &[u8],
    stage: impl FnOnce(&Tables, &mut [crate::buf::HeapBuf], &mut [crate::meta::Meta]),
) -> (crate::meta::Meta, Vec<u8>) {
    let mut pkts = vec![crate::buf::HeapBuf::new(frame)];
    let mut meta = vec![crate::meta::Meta::new(0)];
    crate::stages::classify::run(t, &mut pkts, &mut meta);
    stage(t, &mut pkts, &mut meta);
    (meta[0], pkts.pop().expect("one packet").into_vec())
}

/// A burst of `frames` from port 0 through the whole pipeline, on a fresh worker at time 0: the
/// metadata, the bytes, the drops.
pub fn run_burst(t: &Tables, frames: &[Vec<u8>]) -> (Vec<crate::meta::Meta>, Vec<Vec<u8>>, crate::drop::DropCounters) {
    run_burst_on(t, &mut crate::stages::WorkerState::new(1), frames)
}

/// [`run_burst`] on the worker state `w` (its clock as the caller set it).
pub fn run_burst_on(
    t: &Tables,
    w: &mut crate::stages::WorkerState,
    frames: &[Vec<u8>],
) -> (Vec<crate::meta::Meta>, Vec<Vec<u8>>, crate::drop::DropCounters) {
    let mut pkts: Vec<crate::buf::HeapBuf> = frames.iter().map(|f| crate::buf::HeapBuf::new(f)).collect();
    let mut meta = vec![crate::meta::Meta::new(0); frames.len()];
    let mut drops = crate::drop::DropCounters::default();
    crate::stages::run(t, w, &mut pkts, &mut meta, &mut drops);
    (meta, pkts.into_iter().map(crate::buf::HeapBuf::into_vec).collect(), drops)
}

/// `frames` (each with the port it came in on) decided by a fresh worker at `now_ms`, as one burst
/// (`fast`: [`crate::stages::decide`], with its burst fast path) or each frame alone through every stage
/// ([`crate::stages::decide_per_packet`]): the metadata and the bytes. Equal for both is the oracle of the
/// burst fast path (`tests/burst_equivalence.rs`, the `pipeline` fuzz target). Reading every fate checks
/// that no packet is left pending or remote (`fate::Decided`).
pub fn decide_burst(
    t: &Tables,
    now_ms: u64,
    frames: &[(u16, &[u8])],
    fast: bool,
) -> (Vec<crate::meta::Meta>, Vec<Vec<u8>>) {
    use crate::stages::{decide, decide_per_packet, WorkerState};
    let mut pkts: Vec<crate::buf::HeapBuf> = frames.iter().map(|(_, f)| crate::buf::HeapBuf::new(f)).collect();
    let mut meta: Vec<crate::meta::Meta> = frames.iter().map(|(p, _)| crate::meta::Meta::new(*p)).collect();
    // A fresh worker for each run: the ICMP error limits see the same errors in the same order.
    let w = &mut WorkerState::new(1);
    w.now_ms = now_ms;
    if fast {
        decide(t, w, &mut pkts, &mut meta).fates(t).for_each(drop);
    } else {
        for (p, m) in pkts.iter_mut().zip(meta.iter_mut()) {
            decide_per_packet(t, w, core::slice::from_mut(p), core::slice::from_mut(m)).fates(t).for_each(drop);
        }
    }
    (meta, pkts.into_iter().map(crate::buf::HeapBuf::into_vec).collect())
}
