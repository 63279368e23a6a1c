//! Property tests of the packet views: every `Repr` survives emit-then-parse unchanged, and no parser
//! panics on arbitrary bytes (the fuzz targets in `fuzz/` push the second property much further).

use pipelines::wire::checksum::{pseudo_v4, pseudo_v6};
use pipelines::wire::icmpv6::{NdOption, NA_OVERRIDE, NA_SOLICITED};
use pipelines::wire::*;
use proptest::prelude::*;

fn mac() -> impl Strategy<Value = Mac> {
    any::<[u8; 6]>().prop_map(Mac)
}
fn v4() -> impl Strategy<Value = Ipv4Addr> {
    any::<[u8; 4]>().prop_map(Ipv4Addr)
}
fn v6() -> impl Strategy<Value = Ipv6Addr> {
    any::<[u8; 16]>().prop_map(Ipv6Addr)
}
fn proto() -> impl Strategy<Value = IpProtocol> {
    any::<u8>().prop_map(IpProtocol::from)
}
fn words(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<[u8; 4]>(), 0..max).prop_map(|w| w.concat())
}
fn geneve_option() -> impl Strategy<Value = GeneveOption> {
    (any::<u16>(), any::<u8>(), words(8)).prop_map(|(class, typ, data)| GeneveOption { class, typ, data })
}
fn ascii(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[a-z0-9.-]{{1,{max}}}")).unwrap()
}
fn dhcpv4() -> impl Strategy<Value = DhcpRepr> {
    use pipelines::wire::dhcpv4::{DhcpOp, MessageType};
    let addrs = || proptest::collection::vec(v4(), 0..4);
    let route = (v4(), 0u8..=32, v4()).prop_map(|(d, len, gw)| {
        // Only the significant bits of the destination travel (RFC 3442).
        let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
        (Ipv4Addr::from_u32(d.to_u32() & mask), len, gw)
    });
    (
        (any::<bool>(), any::<u8>(), any::<u32>(), any::<u16>(), any::<bool>(), mac(), v4(), v4(), v4(), v4()),
        (
            proptest::option::of(v4()),
            proptest::option::of(v4()),
            proptest::option::of(any::<u32>()),
            proptest::option::of(any::<u32>()),
            proptest::option::of(any::<u32>()),
        ),
        (
            proptest::option::of(v4()),
            addrs(),
            addrs(),
            proptest::option::of(ascii(30)),
            proptest::option::of(ascii(30)),
        ),
        (
            proptest::option::of(any::<u16>()),
            proptest::collection::vec(route, 0..4),
            proptest::collection::vec(1u8..255, 0..8),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 1..20)),
        ),
    )
        .prop_map(
            |(
                (reply, ty, xid, secs, bcast, m, ci, yi, si, gi),
                (req, sid, lease, t1, t2),
                (mask, routers, dns, domain, host),
                (mtu, routes, prl, cid),
            )| {
                let op = if reply { DhcpOp::Reply } else { DhcpOp::Request };
                let mut r = DhcpRepr::new(op, MessageType::from(ty), xid, m);
                (r.secs, r.broadcast, r.ciaddr, r.yiaddr, r.siaddr, r.giaddr) = (secs, bcast, ci, yi, si, gi);
                (r.requested_ip, r.server_id, r.lease_time, r.renewal_time, r.rebinding_time) =
                    (req, sid, lease, t1, t2);
                (r.subnet_mask, r.routers, r.dns_servers, r.domain_name, r.host_name) =
                    (mask, routers, dns, domain, host);
                (r.interface_mtu, r.classless_routes, r.parameter_request, r.client_id) = (mtu, routes, prl, cid);
                r
            },
        )
}
fn dhcpv6() -> impl Strategy<Value = Dhcpv6Repr> {
    use pipelines::wire::dhcpv6::{Dhcpv6MessageType, IaAddress, IaNa};
    let msg_type =
        any::<u8>().prop_map(Dhcpv6MessageType::from).prop_filter("relays are not a Repr", |t| !t.is_relay());
    let duid = || proptest::option::of(proptest::collection::vec(any::<u8>(), 1..20));
    let ia = (
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        proptest::collection::vec((v6(), any::<u32>(), any::<u32>()), 0..3),
        proptest::option::of((any::<u16>(), ascii(10))),
    )
        .prop_map(|(iaid, t1, t2, a, status)| IaNa {
            iaid,
            t1,
            t2,
            addresses: a.into_iter().map(|(addr, preferred, valid)| IaAddress { addr, preferred, valid }).collect(),
            status,
        });
    (
        (msg_type, 0u32..0x100_0000, duid(), duid(), proptest::collection::vec(ia, 0..3)),
        (
            proptest::collection::vec(any::<u16>(), 0..5),
            proptest::option::of(any::<u16>()),
            any::<bool>(),
            proptest::collection::vec(v6(), 0..3),
        ),
        (
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20)),
            proptest::option::of((any::<u16>(), ascii(20))),
        ),
    )
        .prop_map(
            |(
                (msg_type, transaction_id, client_id, server_id, ia_na),
                (option_request, elapsed_time, rapid_commit, dns_servers),
                (domain_list, status),
            )| {
                Dhcpv6Repr {
                    msg_type,
                    transaction_id,
                    client_id,
                    server_id,
                    ia_na,
                    option_request,
                    elapsed_time,
                    rapid_commit,
                    dns_servers,
                    domain_list,
                    status,
                    other: Vec::new(),
                }
            },
        )
}

proptest! {
    #[test]
    fn ethernet_round_trip(src in mac(), dst in mac(), et in any::<u16>()) {
        let r = EthernetRepr { src, dst, ethertype: EtherType::from(et) };
        let mut b = [0u8; 14];
        r.emit(&mut EthernetFrame::new_unchecked(&mut b[..]));
        prop_assert_eq!(EthernetRepr::parse(&EthernetFrame::new_checked(&b[..]).unwrap()).unwrap(), r);
    }

    #[test]
    fn vlan_round_trip(pcp in 0u8..8, dei in any::<bool>(), vid in 0u16..4096, et in any::<u16>()) {
        let r = VlanRepr { pcp, dei, vid, ethertype: EtherType::from(et) };
        let mut b = [0u8; 4];
        r.emit(&mut VlanTag::new_unchecked(&mut b[..]));
        prop_assert_eq!(VlanRepr::parse(&VlanTag::new_checked(&b[..]).unwrap()).unwrap(), r);
    }

    #[test]
    fn arp_round_trip(op in any::<u16>(), sm in mac(), si in v4(), tm in mac(), ti in v4()) {
        let r = ArpRepr { operation: ArpOperation::from(op), sender_mac: sm, sender_ip: si, target_mac: tm, target_ip: ti };
        let mut b = [0u8; 28];
        r.emit(&mut ArpPacket::new_unchecked(&mut b[..]));
        prop_assert_eq!(ArpRepr::parse(&ArpPacket::new_checked(&b[..]).unwrap()).unwrap(), r);
    }

    #[test]
    fn ipv4_round_trip(src in v4(), dst in v4(), protocol in proto(), len in 0usize..200, ttl in any::<u8>(),
                       dscp_ecn in any::<u8>(), ident in any::<u16>(), dont_frag in any::<bool>()) {
        let r = Ipv4Repr { src, dst, protocol, payload_len: len, ttl, dscp_ecn, ident, dont_frag };
        let mut b = vec![0u8; 20 + len];
        r.emit(&mut Ipv4Packet::new_unchecked(&mut b[..]));
        let p = Ipv4Packet::new_checked(&b[..]).unwrap();
        prop_assert_eq!(Ipv4Repr::parse(&p).unwrap(), r);
    }

    #[test]
    fn ipv4_ttl_and_nat_rewrites_keep_the_checksum(src in v4(), dst in v4(), ttl in 2u8..=255, new in v4()) {
        let r = Ipv4Repr { src, dst, protocol: IpProtocol::Udp, payload_len: 0, ttl, dscp_ecn: 0, ident: 7, dont_frag: true };
        let mut b = [0u8; 20];
        r.emit(&mut Ipv4Packet::new_unchecked(&mut b[..]));
        let mut p = Ipv4Packet::new_unchecked(&mut b[..]);
        p.decrement_ttl();
        p.rewrite_src(new);
        p.rewrite_dst(new);
        prop_assert!(p.verify_checksum());
    }

    /// The incremental TTL update gives the very checksum a full computation gives, every TTL included.
    #[test]
    fn ttl_decrement_checksum_equals_a_full_computation(src in v4(), dst in v4(), ttl in any::<u8>(), ident in any::<u16>(),
                                                        dscp_ecn in any::<u8>(), protocol in proto()) {
        let r = Ipv4Repr { src, dst, protocol, payload_len: 0, ttl, dscp_ecn, ident, dont_frag: false };
        let mut b = [0u8; 20];
        r.emit(&mut Ipv4Packet::new_unchecked(&mut b[..]));
        let mut p = Ipv4Packet::new_unchecked(&mut b[..]);
        prop_assert_eq!(p.decrement_ttl(), ttl.wrapping_sub(1));
        let incremental = p.checksum();
        p.fill_checksum();
        prop_assert_eq!(incremental, p.checksum());
    }

    #[test]
    fn ipv6_round_trip(src in v6(), dst in v6(), nh in proto(), len in 0usize..200, hop in any::<u8>(),
                       tc in any::<u8>(), flow in 0u32..(1 << 20)) {
        let r = Ipv6Repr { src, dst, next_header: nh, payload_len: len, hop_limit: hop, traffic_class: tc, flow_label: flow };
        let mut b = vec![0u8; 40 + len];
        r.emit(&mut Ipv6Packet::new_unchecked(&mut b[..]));
        prop_assert_eq!(Ipv6Repr::parse(&Ipv6Packet::new_checked(&b[..]).unwrap()).unwrap(), r);
    }

    #[test]
    fn udp_round_trip(s in v4(), d in v4(), sp in any::<u16>(), dp in any::<u16>(), payload in proptest::collection::vec(any::<u8>(), 0..100)) {
        let r = UdpRepr { src_port: sp, dst_port: dp };
        let mut b = vec![0u8; 8 + payload.len()];
        b[8..].copy_from_slice(&payload);
        let pseudo = pseudo_v4(s.0, d.0, 17, b.len() as u16);
        r.emit(&mut UdpPacket::new_unchecked(&mut b[..]), payload.len(), pseudo);
        let p = UdpPacket::new_checked(&b[..]).unwrap();
        prop_assert_eq!(UdpRepr::parse(&p).unwrap(), r);
        prop_assert!(p.verify_checksum(pseudo, false));
        prop_assert_eq!(p.payload(), &payload[..]);
    }

    #[test]
    fn tcp_round_trip(s in v6(), d in v6(), sp in any::<u16>(), dp in any::<u16>(), seq in any::<u32>(), ack in any::<u32>(),
                      flags in 0u16..512, window in any::<u16>(), payload in proptest::collection::vec(any::<u8>(), 0..100)) {
        let r = TcpRepr { src_port: sp, dst_port: dp, seq, ack, flags, window };
        let mut b = vec![0u8; 20 + payload.len()];
        b[20..].copy_from_slice(&payload);
        let pseudo = pseudo_v6(s.0, d.0, 6, b.len() as u32);
        r.emit(&mut TcpPacket::new_unchecked(&mut b[..]), pseudo);
        let p = TcpPacket::new_checked(&b[..]).unwrap();
        prop_assert_eq!(TcpRepr::parse(&p).unwrap(), r);
        prop_assert!(p.verify_checksum(pseudo));
    }

    #[test]
    fn icmpv4_echo_round_trip(ident in any::<u16>(), seq in any::<u16>(), data in proptest::collection::vec(any::<u8>(), 0..64), reply in any::<bool>()) {
        let r = if reply { Icmpv4Repr::EchoReply { ident, seq, data: &data } } else { Icmpv4Repr::EchoRequest { ident, seq, data: &data } };
        let mut b = vec![0u8; r.buffer_len()];
        r.emit(&mut Icmpv4Packet::new_unchecked(&mut b[..]));
        prop_assert_eq!(Icmpv4Repr::parse(&Icmpv4Packet::new_checked(&b[..]).unwrap()).unwrap(), r);
    }

    #[test]
    fn icmpv6_nd_round_trip(s in v6(), d in v6(), target in v6(), m in mac(), advert in any::<bool>(), with_opt in any::<bool>()) {
        let options = if with_opt { vec![NdOption::SourceLinkAddr(m)] } else { vec![] };
        let r = if advert {
            Icmpv6Repr::NeighborAdvert { flags: NA_SOLICITED | NA_OVERRIDE, target, options }
        } else {
            Icmpv6Repr::NeighborSolicit { target, options }
        };
        let pseudo = pseudo_v6(s.0, d.0, 58, r.buffer_len() as u32);
        let mut b = vec![0u8; r.buffer_len()];
        r.emit(&mut Icmpv6Packet::new_unchecked(&mut b[..]), pseudo);
        prop_assert_eq!(Icmpv6Repr::parse(&Icmpv6Packet::new_checked(&b[..]).unwrap(), pseudo).unwrap(), r);
        let p = Icmpv6Packet::new_checked(&b[..]).unwrap();
        prop_assert_eq!(p.nd_target(), Some(target));
        let lladdrs: Vec<_> = p.nd_options().map(|o| NdOptions::link_addr(o.unwrap().1)).collect();
        prop_assert_eq!(lladdrs, if with_opt { vec![Some(m)] } else { vec![] });
    }

    /// The in-place walk (the fast path's) and `parse_all` (the slow path's) cut options the same way:
    /// where `parse_all` succeeds the walk yields as many options and no error, and a walk that fails
    /// makes `parse_all` fail.
    #[test]
    fn nd_option_walk_agrees_with_parse_all(b in proptest::collection::vec(any::<u8>(), 0..64)) {
        let walked: Vec<_> = NdOptions::new(&b).collect();
        match NdOption::parse_all(&b) {
            Ok(all) => {
                prop_assert_eq!(walked.len(), all.len());
                prop_assert!(walked.iter().all(Result::is_ok));
            }
            Err(_) => {
                // A known option of the wrong length is refused by `parse_all` alone.
                let wrong_length = |(kind, o): &(u8, &[u8])| match kind {
                    1 | 2 | 5 => o.len() != 8,
                    3 => o.len() != 32,
                    _ => false,
                };
                let explained = walked.iter().any(|o| o.as_ref().map_or(true, wrong_length));
                prop_assert!(explained);
            }
        }
    }

    #[test]
    fn vxlan_round_trip(vni in 0u32..0x100_0000) {
        let r = VxlanRepr { vni };
        let mut b = [0u8; 8];
        r.emit(&mut VxlanPacket::new_unchecked(&mut b[..])).unwrap();
        prop_assert_eq!(VxlanRepr::parse(&VxlanPacket::new_checked(&b[..]).unwrap()).unwrap(), r);
    }

    #[test]
    fn geneve_round_trip(oam in any::<bool>(), critical in any::<bool>(), et in any::<u16>(), vni in 0u32..0x100_0000,
                         options in proptest::collection::vec(geneve_option(), 0..4)) {
        let r = GeneveRepr { oam, critical, protocol: EtherType::from(et), vni, options };
        let mut b = vec![0u8; r.buffer_len(0)];
        r.emit(&mut GenevePacket::new_unchecked(&mut b[..])).unwrap();
        prop_assert_eq!(GeneveRepr::parse(&GenevePacket::new_checked(&b[..]).unwrap()).unwrap(), r);
    }

    #[test]
    fn gre_round_trip(et in any::<u16>(), key in proptest::option::of(any::<u32>()), seq in proptest::option::of(any::<u32>()),
                      checksum in any::<bool>(), payload in proptest::collection::vec(any::<u8>(), 0..64)) {
        let r = GreRepr { protocol: EtherType::from(et), key, seq, checksum };
        let mut b = vec![0u8; r.buffer_len(payload.len())];
        let at = b.len() - payload.len();
        b[at..].copy_from_slice(&payload);
        r.emit(&mut GrePacket::new_unchecked(&mut b[..]));
        let p = GrePacket::new_checked(&b[..]).unwrap();
        prop_assert_eq!(GreRepr::parse(&p).unwrap(), r);
        prop_assert!(p.verify_checksum());
        prop_assert_eq!(p.payload(), &payload[..]);
    }

    #[test]
    fn dhcpv4_round_trip(r in dhcpv4()) {
        let mut b = vec![0u8; r.buffer_len()];
        r.emit(&mut DhcpPacket::new_unchecked(&mut b[..])).unwrap();
        prop_assert_eq!(DhcpRepr::parse(&DhcpPacket::new_checked(&b[..]).unwrap()).unwrap(), r);
    }

    #[test]
    fn dhcpv6_round_trip(r in dhcpv6()) {
        let mut b = vec![0u8; r.buffer_len()];
        r.emit(&mut Dhcpv6Packet::new_unchecked(&mut b[..])).unwrap();
        prop_assert_eq!(Dhcpv6Repr::parse(&Dhcpv6Packet::new_checked(&b[..]).unwrap()).unwrap(), r);
    }

    /// Arbitrary bytes: every parser answers Ok or Err, never panics.
    #[test]
    fn parsers_never_panic(b in proptest::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(p) = VxlanPacket::new_checked(&b[..]) { let _ = (VxlanRepr::parse(&p), p.flags(), p.vni(), p.payload()); }
        if let Ok(p) = GenevePacket::new_checked(&b[..]) {
            let _ = (GeneveRepr::parse(&p), p.version(), p.oam(), p.critical(), p.protocol(), p.vni(), p.payload());
            let _ = p.options().collect::<Vec<_>>();
        }
        if let Ok(p) = GrePacket::new_checked(&b[..]) {
            let _ = (GreRepr::parse(&p), p.protocol(), p.checksum(), p.key(), p.seq(), p.payload(), p.verify_checksum());
        }
        // DHCP needs its cookie to get past the view: put it in.
        let mut d = b.clone();
        d.resize(d.len().max(240), 0);
        d[236..240].copy_from_slice(&pipelines::wire::dhcpv4::MAGIC_COOKIE);
        if let Ok(p) = DhcpPacket::new_checked(&d[..]) {
            let _ = (DhcpRepr::parse(&p), p.op(), p.hops(), p.xid(), p.secs(), p.flags(), p.client_mac());
            let _ = (p.ciaddr(), p.yiaddr(), p.siaddr(), p.giaddr(), p.options().collect::<Vec<_>>());
        }
        if let Ok(p) = Dhcpv6Packet::new_checked(&b[..]) {
            let _ = (Dhcpv6Repr::parse(&p), p.msg_type(), p.transaction_id(), p.relay_header(), p.options().collect::<Vec<_>>());
        }
        if let Ok(f) = EthernetFrame::new_checked(&b[..]) { let _ = EthernetRepr::parse(&f); }
        if let Ok(t) = VlanTag::new_checked(&b[..]) { let _ = VlanRepr::parse(&t); }
        if let Ok(p) = ArpPacket::new_checked(&b[..]) { let _ = ArpRepr::parse(&p); }
        if let Ok(p) = Ipv4Packet::new_checked(&b[..]) { let _ = Ipv4Repr::parse(&p); let _ = p.payload(); }
        if let Ok(p) = Ipv6Packet::new_checked(&b[..]) { let _ = Ipv6Repr::parse(&p); let _ = p.upper_layer(); }
        if let Ok(p) = UdpPacket::new_checked(&b[..]) { let _ = UdpRepr::parse(&p); let _ = p.payload(); let _ = p.verify_checksum(0, true); }
        if let Ok(p) = TcpPacket::new_checked(&b[..]) { let _ = TcpRepr::parse(&p); let _ = p.payload(); }
        if let Ok(p) = Icmpv4Packet::new_checked(&b[..]) { let _ = Icmpv4Repr::parse(&p); }
        if let Ok(p) = Icmpv6Packet::new_checked(&b[..]) {
            // Make the checksum right so the parser goes past it.
            let mut v = b.clone();
            Icmpv6Packet::new_unchecked(&mut v[..]).fill_checksum(0);
            let _ = Icmpv6Repr::parse(&Icmpv6Packet::new_checked(&v[..]).unwrap(), 0);
            let _ = Icmpv6Repr::parse(&p, 0);
        }
    }
}
