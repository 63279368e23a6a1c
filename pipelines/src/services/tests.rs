use std::sync::Arc;

use super::*;
use crate::buf::HeapBuf;
use crate::drop::Reason;
use crate::fixtures::*;
use crate::meta::{Action, Meta};
use crate::stages::{self, WorkerState};
use crate::tables::TablesBuilder;
use crate::wire::checksum::{pseudo_v4, pseudo_v6};
use crate::wire::dhcpv4::{opt, DhcpOp, MessageType};
use crate::wire::dhcpv6::{Dhcpv6MessageType as T6, IaNa};
use crate::wire::icmpv6::{NdOption, RA_MANAGED};
use crate::wire::{DhcpPacket, DhcpRepr, Dhcpv6Packet, Dhcpv6Repr, Icmpv6Repr, IpNet, IpProtocol, UdpRepr};

const SERVER_MAC: Mac = Mac([0xfa, 0x16, 0x3e, 0, 0, 0xdd]);
const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const GW: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 254);
const ROUTER_MAC: Mac = Mac([0xfa, 0x16, 0x3e, 0, 0, 0xfe]);

fn dhcp4() -> Dhcp4 {
    Dhcp4 {
        server_mac: SERVER_MAC,
        server_ip: SERVER_IP,
        address: IP1,
        prefix_len: 24,
        router: Some(GW),
        dns: vec![Ipv4Addr::new(8, 8, 8, 8)],
        domain: Some("openstacklocal".into()),
        host_name: Some("host-10-0-0-1".into()),
        lease_secs: 600,
        mtu: 1450,
        routes: vec![(Ipv4Addr::new(10, 9, 0, 0), 16, Ipv4Addr::new(10, 0, 0, 5)), (Ipv4Addr::UNSPECIFIED, 0, GW)],
        extra: vec![],
    }
}

fn dhcp6(stateful: bool) -> Dhcp6 {
    Dhcp6 {
        server_mac: SERVER_MAC,
        address: stateful.then(|| ip6(1)),
        dns: vec![ip6(53)],
        domain: Some("openstacklocal".into()),
        lease_secs: 600,
        extra: vec![],
    }
}

fn advert() -> RouterAdvert {
    let mut prefix = ip6(0);
    prefix.0[15] = 0;
    RouterAdvert {
        router_mac: ROUTER_MAC,
        managed: true,
        other: false,
        prefixes: vec![(prefix, 64, false)],
        mtu: 1450,
        dns: vec![],
    }
}

/// VM1 on port 0 with every service, VM2 on port 1 with none.
fn tables_with(svc: PortServices) -> Tables {
    let mut b = TablesBuilder::new();
    b.local_port(0, vm_port(101, 1, VM1, IP1, ip6(1), true));
    b.local_port(1, vm_port(102, 1, VM2, IP2, ip6(2), true));
    b.services(0, Some(Arc::new(svc)));
    b.build()
}

fn all_services() -> PortServices {
    PortServices { lport: 101, mac: VM1, dhcp4: Some(dhcp4()), dhcp6: Some(dhcp6(true)), ra: vec![advert()] }
}

/// A DHCP message from VM1 (broadcast unless `to` says otherwise), as a frame.
fn client4(r: &DhcpRepr, to: (Mac, Ipv4Addr)) -> Vec<u8> {
    let mut d = vec![0u8; r.buffer_len()];
    r.emit(&mut DhcpPacket::new_unchecked(&mut d[..])).unwrap();
    let src = if r.ciaddr == Ipv4Addr::UNSPECIFIED { Ipv4Addr::UNSPECIFIED } else { r.ciaddr };
    let mut u = vec![0u8; 8 + d.len()];
    u[8..].copy_from_slice(&d);
    let pseudo = pseudo_v4(src.0, to.1 .0, 17, u.len() as u16);
    UdpRepr { src_port: 68, dst_port: 67 }.emit(&mut UdpPacket::new_unchecked(&mut u[..]), d.len(), pseudo);
    ethernet(VM1, to.0, 0x0800, &ipv4(src, to.1, IpProtocol::Udp, 64, &u))
}

fn request(kind: MessageType) -> DhcpRepr {
    let mut r = DhcpRepr::new(DhcpOp::Request, kind, 0x1234, VM1);
    r.client_id = Some(vec![1, 0xfa, 0x16, 0x3e, 0, 0, 1]);
    r
}

const BCAST: (Mac, Ipv4Addr) = (Mac::BROADCAST, Ipv4Addr::BROADCAST);

/// The answer's DHCP message and its frame's destination (MAC, IPv4).
fn reply4(a: &Answer) -> (DhcpRepr, Mac, Ipv4Addr, Ipv4Addr) {
    let f = &a.frame;
    let ip = Ipv4Packet::new_checked(&f[14..]).unwrap();
    assert!(ip.verify_checksum());
    let udp = UdpPacket::new_checked(&f[34..34 + ip.total_len() as usize - 20]).unwrap();
    assert!(udp.verify_checksum(pseudo_v4(ip.src().0, ip.dst().0, 17, udp.len()), false), "UDP checksum");
    assert_eq!((udp.src_port(), udp.dst_port()), (67, 68));
    let r = DhcpRepr::parse(&DhcpPacket::new_checked(udp.payload()).unwrap()).unwrap();
    (r, Mac(f[0..6].try_into().unwrap()), ip.src(), ip.dst())
}

#[test]
fn dhcpv4_offers_acks_and_naks_the_ports_address() {
    let t = tables_with(all_services());
    let mut sp = SlowPath::new(1);
    // DISCOVER → OFFER, unicast to the offered address and the client's MAC.
    let a = sp.handle(&t, 0, &client4(&request(MessageType::Discover), BCAST), 0).unwrap();
    let (r, dst_mac, src, dst) = reply4(&a);
    assert_eq!((a.port, r.message_type, r.yiaddr, r.xid), (0, MessageType::Offer, IP1, 0x1234));
    assert_eq!((dst_mac, src, dst), (VM1, SERVER_IP, IP1));
    assert_eq!(a.frame[6..12], SERVER_MAC.0, "from the DHCP port's MAC");
    assert_eq!(
        (r.server_id, r.subnet_mask, r.routers.clone()),
        (Some(SERVER_IP), Some(Ipv4Addr::new(255, 255, 255, 0)), vec![GW])
    );
    assert_eq!((r.lease_time, r.renewal_time, r.rebinding_time), (Some(600), Some(300), Some(525)));
    assert_eq!((r.interface_mtu, r.dns_servers.clone()), (Some(1450), vec![Ipv4Addr::new(8, 8, 8, 8)]));
    assert_eq!((r.domain_name.as_deref(), r.host_name.as_deref()), (Some("openstacklocal"), Some("host-10-0-0-1")));
    assert_eq!(r.classless_routes, dhcp4().routes);
    assert_eq!(r.client_id, request(MessageType::Discover).client_id, "RFC 6842");
    // REQUEST (selecting) → ACK; the broadcast bit → broadcast.
    let mut req = request(MessageType::Request);
    req.server_id = Some(SERVER_IP);
    req.requested_ip = Some(IP1);
    req.broadcast = true;
    let (r, dst_mac, _, dst) = reply4(&sp.handle(&t, 0, &client4(&req, BCAST), 5).unwrap());
    assert_eq!((r.message_type, r.yiaddr, dst_mac, dst), (MessageType::Ack, IP1, Mac::BROADCAST, Ipv4Addr::BROADCAST));
    assert_eq!(sp.lease(101), Some((IP1, 5 + 600_000)));
    // Another address → NAK, broadcast, without a lease.
    req.requested_ip = Some(Ipv4Addr::new(10, 0, 0, 77));
    req.broadcast = false;
    let (r, dst_mac, _, _) = reply4(&sp.handle(&t, 0, &client4(&req, BCAST), 6).unwrap());
    assert_eq!(
        (r.message_type, r.yiaddr, r.lease_time, dst_mac),
        (MessageType::Nak, Ipv4Addr::UNSPECIFIED, None, Mac::BROADCAST)
    );
    // Another server chosen: left alone.
    req.server_id = Some(Ipv4Addr::new(10, 0, 0, 3));
    assert!(sp.handle(&t, 0, &client4(&req, BCAST), 7).is_none());
    // INIT-REBOOT (no server id, requested address): ACK or NAK.
    let mut reboot = request(MessageType::Request);
    reboot.requested_ip = Some(IP1);
    assert_eq!(reply4(&sp.handle(&t, 0, &client4(&reboot, BCAST), 8).unwrap()).0.message_type, MessageType::Ack);
    reboot.requested_ip = Some(IP2);
    assert_eq!(reply4(&sp.handle(&t, 0, &client4(&reboot, BCAST), 8).unwrap()).0.message_type, MessageType::Nak);
    // RENEWING (unicast to the server, ciaddr) and REBINDING (broadcast): ACK to ciaddr.
    let mut renew = request(MessageType::Request);
    renew.ciaddr = IP1;
    let (r, dst_mac, _, dst) = reply4(&sp.handle(&t, 0, &client4(&renew, (SERVER_MAC, SERVER_IP)), 9).unwrap());
    assert_eq!((r.message_type, r.ciaddr, r.yiaddr, dst_mac, dst), (MessageType::Ack, IP1, IP1, VM1, IP1));
    assert!(sp.handle(&t, 0, &client4(&renew, BCAST), 10).is_some());
    assert_eq!((sp.stats().get("dhcp4.renew"), sp.stats().get("dhcp4.rebind")), (1, 1));
    // INFORM: the options, no lease, no address given.
    let mut inform = request(MessageType::Inform);
    inform.ciaddr = IP1;
    let (r, _, _, dst) = reply4(&sp.handle(&t, 0, &client4(&inform, BCAST), 11).unwrap());
    assert_eq!(
        (r.message_type, r.yiaddr, r.lease_time, r.routers.clone(), dst),
        (MessageType::Ack, Ipv4Addr::UNSPECIFIED, None, vec![GW], IP1)
    );
    // RELEASE ends the lease; DECLINE is counted; neither is answered.
    let mut release = request(MessageType::Release);
    release.ciaddr = IP1;
    assert!(sp.handle(&t, 0, &client4(&release, (SERVER_MAC, SERVER_IP)), 12).is_none());
    assert_eq!(sp.lease(101), None);
    assert!(sp.handle(&t, 0, &client4(&request(MessageType::Decline), BCAST), 13).is_none());
    assert_eq!(sp.stats().get("dhcp4.decline"), 1);
    let counted =
        ["dhcp4.discover", "dhcp4.offer", "dhcp4.request", "dhcp4.ack", "dhcp4.nak", "dhcp4.inform", "dhcp4.release"];
    for c in counted {
        assert!(sp.stats().get(c) > 0, "{c}");
    }
}

#[test]
fn dhcpv4_answers_only_the_port_and_what_parses() {
    let mut t = tables_with(all_services());
    let mut sp = SlowPath::new(1);
    // Another client MAC behind the port.
    let mut other = request(MessageType::Discover);
    other.client_mac = VM2;
    assert!(sp.handle(&t, 0, &client4(&other, BCAST), 0).is_none());
    // A port without services, a DHCP message cut short, a bad UDP checksum.
    assert!(sp.handle(&t, 1, &client4(&request(MessageType::Discover), BCAST), 0).is_none());
    let good = client4(&request(MessageType::Discover), BCAST);
    assert!(sp.handle(&t, 0, &good[..60], 0).is_none());
    let mut bad = good.clone();
    bad[60] ^= 1;
    assert!(sp.handle(&t, 0, &bad, 0).is_none());
    for f in [vec![], vec![0u8; 13], udp4(VM1, VM2, IP1, IP2)] {
        assert!(sp.handle(&t, 0, &f, 0).is_none());
    }
    assert_eq!(
        (
            sp.stats().get("dhcp4.unknown_client"),
            sp.stats().get("slowpath.no_service"),
            sp.stats().get("slowpath.malformed")
        ),
        (1, 1, 5)
    );
    // An extra option replaces the subnet's (the MTU), another is added.
    let mut svc = all_services();
    let d = svc.dhcp4.as_mut().unwrap();
    d.extra = vec![(opt::INTERFACE_MTU, 1400u16.to_be_bytes().to_vec()), (67, b"pxelinux.0".to_vec())];
    t = tables_with(svc);
    let a = sp.handle(&t, 0, &good, 0).unwrap();
    let f = &a.frame;
    let payload = &f[42..];
    let opts: Vec<(u8, Vec<u8>)> =
        DhcpPacket::new_checked(payload).unwrap().options().map(|o| o.map(|(c, d)| (c, d.to_vec())).unwrap()).collect();
    assert_eq!(opts.iter().filter(|(c, _)| *c == opt::INTERFACE_MTU).collect::<Vec<_>>(), [&(26, vec![0x05, 0x78])]);
    assert!(opts.contains(&(67, b"pxelinux.0".to_vec())));
}

/// A DHCPv6 message from VM1's link-local address to the servers' group.
fn client6(r: &Dhcpv6Repr) -> Vec<u8> {
    let mut d = vec![0u8; r.buffer_len()];
    r.emit(&mut Dhcpv6Packet::new_unchecked(&mut d[..])).unwrap();
    let (s, g) = (Ipv6Addr::link_local_from_mac(VM1), Ipv6Addr([0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2]));
    let mut u = vec![0u8; 8 + d.len()];
    u[8..].copy_from_slice(&d);
    let pseudo = pseudo_v6(s.0, g.0, 17, u.len() as u32);
    UdpRepr { src_port: 546, dst_port: 547 }.emit(&mut UdpPacket::new_unchecked(&mut u[..]), d.len(), pseudo);
    ethernet(VM1, Mac::ipv6_multicast(&g.0), 0x86dd, &ipv6(s, g, IpProtocol::Udp, 1, &u))
}

fn reply6(a: &Answer) -> Dhcpv6Repr {
    let f = &a.frame;
    let ip = Ipv6Packet::new_checked(&f[14..]).unwrap();
    assert_eq!((ip.src(), ip.dst()), (Ipv6Addr::link_local_from_mac(SERVER_MAC), Ipv6Addr::link_local_from_mac(VM1)));
    let udp = UdpPacket::new_checked(&f[54..]).unwrap();
    assert!(udp.verify_checksum(pseudo_v6(ip.src().0, ip.dst().0, 17, udp.len().into()), false));
    Dhcpv6Repr::parse(&Dhcpv6Packet::new_checked(udp.payload()).unwrap()).unwrap()
}

fn solicit6() -> Dhcpv6Repr {
    let mut r = Dhcpv6Repr::new(T6::Solicit, 0xabcdef);
    r.client_id = Some(vec![0, 3, 0, 1, 0xfa, 0x16, 0x3e, 0, 0, 1]);
    r.ia_na = vec![IaNa { iaid: 7, t1: 0, t2: 0, addresses: vec![], status: None }];
    r
}

#[test]
fn dhcpv6_gives_the_stateful_address_and_stateless_information() {
    let t = tables_with(all_services());
    let mut sp = SlowPath::new(1);
    let r = reply6(&sp.handle(&t, 0, &client6(&solicit6()), 0).unwrap());
    assert_eq!(
        (r.msg_type, r.transaction_id, r.server_id.clone()),
        (T6::Advertise, 0xabcdef, Some(dhcp6::duid(SERVER_MAC)))
    );
    assert_eq!(r.ia_na[0].iaid, 7);
    assert_eq!(r.ia_na[0].addresses[0].addr, ip6(1));
    assert_eq!(
        (r.dns_servers.clone(), r.domain_list.clone()),
        (vec![ip6(53)], Some(b"\x0eopenstacklocal\x00".to_vec()))
    );
    // Rapid commit: a Reply at once.
    let mut rapid = solicit6();
    rapid.rapid_commit = true;
    let r = reply6(&sp.handle(&t, 0, &client6(&rapid), 0).unwrap());
    assert_eq!((r.msg_type, r.rapid_commit), (T6::Reply, true));
    // Request with our server id → Reply; with another's → nothing; without → discarded.
    let mut req = solicit6();
    req.msg_type = T6::Request;
    req.server_id = Some(dhcp6::duid(SERVER_MAC));
    assert_eq!(reply6(&sp.handle(&t, 0, &client6(&req), 0).unwrap()).ia_na[0].addresses[0].addr, ip6(1));
    req.server_id = Some(dhcp6::duid(VM2));
    assert!(sp.handle(&t, 0, &client6(&req), 0).is_none());
    req.server_id = None;
    assert!(sp.handle(&t, 0, &client6(&req), 0).is_none());
    // Renew of a stale address: ours, and the stale one with lifetimes 0.
    let mut renew = solicit6();
    renew.msg_type = T6::Renew;
    renew.server_id = Some(dhcp6::duid(SERVER_MAC));
    renew.ia_na[0].addresses = vec![crate::wire::dhcpv6::IaAddress { addr: ip6(9), preferred: 1, valid: 1 }];
    let r = reply6(&sp.handle(&t, 0, &client6(&renew), 0).unwrap());
    assert_eq!(
        r.ia_na[0].addresses.iter().map(|a| (a.addr, a.valid)).collect::<Vec<_>>(),
        [(ip6(1), 600), (ip6(9), 0)]
    );
    // Stateless: information only.
    let mut svc = all_services();
    svc.dhcp6 = Some(dhcp6(false));
    let t = tables_with(svc);
    let mut info = Dhcpv6Repr::new(T6::InformationRequest, 5);
    info.client_id = solicit6().client_id;
    let r = reply6(&sp.handle(&t, 0, &client6(&info), 0).unwrap());
    assert_eq!((r.msg_type, r.dns_servers.clone(), r.ia_na.len()), (T6::Reply, vec![ip6(53)], 0));
    let r = reply6(&sp.handle(&t, 0, &client6(&solicit6()), 0).unwrap());
    assert_eq!(r.ia_na[0].status.as_ref().map(|s| s.0), Some(2), "NoAddrsAvail");
}

fn solicit_router(src: Ipv6Addr) -> Vec<u8> {
    let options = if src.is_unspecified() { vec![] } else { vec![NdOption::SourceLinkAddr(VM1)] };
    icmp6_frame(
        VM1,
        Mac::ipv6_multicast(&Ipv6Addr::ALL_ROUTERS.0),
        src,
        Ipv6Addr::ALL_ROUTERS,
        &Icmpv6Repr::RouterSolicit { options },
    )
}

fn parse_ra(f: &[u8]) -> (Mac, Ipv6Addr, u8, Vec<NdOption>) {
    let ip = Ipv6Packet::new_checked(&f[14..]).unwrap();
    let pseudo = pseudo_v6(ip.src().0, ip.dst().0, 58, ip.payload_len().into());
    let p = crate::wire::Icmpv6Packet::new_checked(&f[54..]).unwrap();
    let Ok(Icmpv6Repr::RouterAdvert { flags, options, .. }) = Icmpv6Repr::parse(&p, pseudo) else { panic!("an RA") };
    assert_eq!(ip.src(), Ipv6Addr::link_local_from_mac(ROUTER_MAC));
    (Mac(f[0..6].try_into().unwrap()), ip.dst(), flags, options)
}

#[test]
fn router_advertisements_answer_solicitations_and_come_unsolicited() {
    let t = tables_with(all_services());
    let mut sp = SlowPath::new(1);
    let ll = Ipv6Addr::link_local_from_mac(VM1);
    let a = sp.handle(&t, 0, &solicit_router(ll), 0).unwrap();
    let (dst_mac, dst, flags, options) = parse_ra(&a.frame);
    assert_eq!((dst_mac, dst, flags), (VM1, ll, RA_MANAGED));
    assert!(options.contains(&NdOption::Mtu(1450)) && options.contains(&NdOption::SourceLinkAddr(ROUTER_MAC)));
    assert!(
        options.iter().any(|o| matches!(o, NdOption::PrefixInfo { prefix_len: 64, flags: 0x80, .. })),
        "on-link, not autonomous"
    );
    // From :: → to all nodes.
    let (dst_mac, dst, _, _) = parse_ra(&sp.handle(&t, 0, &solicit_router(Ipv6Addr::UNSPECIFIED), 0).unwrap().frame);
    assert_eq!((dst_mac, dst), (Mac::ipv6_multicast(&Ipv6Addr::ALL_NODES.0), Ipv6Addr::ALL_NODES));
    // Unsolicited: the first within a second, then not again for a while; only to ports with adverts.
    let mut out = Vec::new();
    sp.tick(&t, 0, &mut out);
    sp.tick(&t, 1000, &mut out);
    assert_eq!(out.iter().map(|a| a.port).collect::<Vec<_>>(), [0]);
    sp.tick(&t, 3000, &mut out);
    assert_eq!(out.len(), 1, "the next one at least 4 s later");
    sp.tick(&t, 20_000, &mut out);
    assert_eq!(out.len(), 2);
    assert_eq!(parse_ra(&out[1].frame).1, Ipv6Addr::ALL_NODES);
}

#[test]
fn the_punt_stage_hands_requests_over_within_each_ports_rate() {
    let t = tables_with(all_services());
    let discover = client4(&request(MessageType::Discover), BCAST);
    let rs = solicit_router(Ipv6Addr::link_local_from_mac(VM1));
    let mut w = WorkerState::new(1);
    w.punt = stages::punt::PuntLimiter::new(10, 3, 4);
    let decide = |w: &mut WorkerState, port: u16, frames: &[Vec<u8>]| -> Vec<(Action, Reason)> {
        let mut pkts: Vec<HeapBuf> = frames.iter().map(|f| HeapBuf::new(f)).collect();
        let mut meta = vec![Meta::new(port); frames.len()];
        stages::decide(&t, w, &mut pkts, &mut meta);
        meta.iter().map(|m| (m.action, m.reason)).collect()
    };
    let punt = (Action::Punt, Reason::None);
    let limited = (Action::Drop, Reason::PuntRateLimited);
    // Three at once (the burst), then refused until the bucket fills again (10 a second: 100 ms each).
    let got = decide(&mut w, 0, &[discover.clone(), rs.clone(), discover.clone(), discover.clone()]);
    assert_eq!(got, [punt, punt, punt, limited]);
    assert_eq!(w.punt.take_refused(), 1);
    w.now_ms = 100;
    assert_eq!(decide(&mut w, 0, &[discover.clone(), discover.clone()]), [punt, limited]);
    // Port 1 has no services: its DISCOVER is switched as any broadcast.
    let mut vm2_discover = discover.clone();
    vm2_discover[6..12].copy_from_slice(&VM2.0);
    assert_eq!(decide(&mut w, 1, &[vm2_discover])[0].0, Action::Flood);
    // Plain traffic is not punted.
    assert_eq!(decide(&mut w, 0, &[udp4(VM1, VM2, IP1, IP2)])[0].0, Action::Output);
}

#[test]
fn eui64_is_neutrons() {
    let mut prefix = [0u8; 16];
    prefix[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    let a = eui64(Ipv6Addr(prefix), Mac([0xfa, 0x16, 0x3e, 0x12, 0x34, 0x56]));
    assert_eq!(a.to_string(), "2001:db8::f816:3eff:fe12:3456");
    let _ = IpNet::host_v6(a);
}

#[test]
fn extra_options_take_the_servers_fields_never_its_own_options() {
    let mut sp = SlowPath::new(1);
    let mut svc = all_services();
    let d = svc.dhcp4.as_mut().unwrap();
    d.extra = vec![
        (opt::LEASE_TIME, 600u32.to_be_bytes().to_vec()), // T1/T2 follow it
        (opt::SUBNET_MASK, vec![255, 255, 0, 0]),         // in the mask's place, the broadcast follows
        (opt::MESSAGE_TYPE, vec![5]),                     // the server's own: ignored
        (opt::SERVER_ID, vec![10, 0, 0, 99]),
    ];
    svc.dhcp4.as_mut().unwrap().lease_secs = 86_400;
    let t = tables_with(svc);
    let a = sp.handle(&t, 0, &client4(&request(MessageType::Discover), BCAST), 0).unwrap();
    let (r, ..) = reply4(&a);
    assert_eq!((r.message_type, r.server_id), (MessageType::Offer, Some(SERVER_IP)));
    assert_eq!((r.lease_time, r.renewal_time, r.rebinding_time), (Some(600), Some(300), Some(525)));
    assert_eq!(r.subnet_mask, Some(Ipv4Addr::new(255, 255, 0, 0)));
    let opts: Vec<(u8, Vec<u8>)> = DhcpPacket::new_checked(&a.frame[42..])
        .unwrap()
        .options()
        .map(|o| o.map(|(c, d)| (c, d.to_vec())).unwrap())
        .collect();
    assert_eq!(opts.iter().filter(|(c, _)| *c == opt::MESSAGE_TYPE || *c == opt::SERVER_ID).count(), 2, "once each");
    assert!(opts.contains(&(opt::BROADCAST, vec![10, 0, 255, 255])));
    let mask_at = opts.iter().position(|(c, _)| *c == opt::SUBNET_MASK).unwrap();
    let router_at = opts.iter().position(|(c, _)| *c == opt::ROUTER).unwrap();
    assert!(mask_at < router_at, "RFC 2132 3.3: the mask before the router");
}

#[test]
fn requests_to_another_server_are_not_punted_and_confirm_needs_an_address() {
    let t = tables_with(all_services());
    let mut w = WorkerState::new(1);
    let mut relayed = request(MessageType::Request);
    relayed.ciaddr = IP1;
    let to_other = client4(&relayed, (VM2, Ipv4Addr::new(10, 0, 0, 77)));
    let to_ours = client4(&relayed, (SERVER_MAC, SERVER_IP));
    let mut pkts = vec![HeapBuf::new(&to_other), HeapBuf::new(&to_ours)];
    let mut meta = vec![Meta::new(0); 2];
    stages::decide(&t, &mut w, &mut pkts, &mut meta);
    assert_eq!((meta[0].action, meta[1].action), (Action::Output, Action::Punt));
    let mut sp = SlowPath::new(1);
    let mut confirm = solicit6();
    confirm.msg_type = T6::Confirm;
    assert!(sp.handle(&t, 0, &client6(&confirm), 0).is_none(), "no address to confirm: no reply (RFC 8415 18.3.3)");
}

#[test]
fn advertisements_carry_slaac_dns_skip_small_mtus_and_down_ports() {
    let mut svc = all_services();
    svc.ra[0].dns = vec![ip6(53), ip6(54)];
    svc.ra[0].mtu = 1000;
    let mut t = tables_with(svc);
    let mut sp = SlowPath::new(1);
    let a = sp.handle(&t, 0, &solicit_router(Ipv6Addr::link_local_from_mac(VM1)), 0).unwrap();
    let (.., options) = parse_ra(&a.frame);
    assert!(!options.iter().any(|o| matches!(o, NdOption::Mtu(_))), "no MTU under 1280");
    let mut servers = [Ipv6Addr::UNSPECIFIED; 3];
    servers[..2].copy_from_slice(&[ip6(53), ip6(54)]);
    assert!(options.contains(&NdOption::Rdnss { lifetime: 200, servers, count: 2 }));
    t.ports[0].as_mut().unwrap().up = false;
    let mut out = Vec::new();
    sp.tick(&t, 0, &mut out);
    sp.tick(&t, 2000, &mut out);
    assert!(out.is_empty(), "nothing unsolicited to a port that is down");
}
