use super::*;

/// A DHCPDISCOVER from ISC dhclient 4.4.3-P1 (Debian 12, `dhclient -4 -d v0` on a veth pair), as
/// tcpdump captured it (the UDP payload): xid 0x6189e654, client 52:54:00:12:34:56, options 53
/// (discover), 12 (host name "vm"), 55 (1, 28, 2, 3, 15, 6, 119, 12, 44, 47, 26, 121, 42), END, padding.
const DISCOVER: [u8; 300] = [
    0x01, 0x01, 0x06, 0x00, 0x61, 0x89, 0xe6, 0x54, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x52, 0x54, 0x00, 0x12, //
    0x34, 0x56, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x63, 0x82, 0x53, 0x63, //
    0x35, 0x01, 0x01, 0x0c, 0x02, 0x76, 0x6d, 0x37, 0x0d, 0x01, 0x1c, 0x02, 0x03, 0x0f, 0x06, 0x77, //
    0x0c, 0x2c, 0x2f, 0x1a, 0x79, 0x2a, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
];

#[test]
fn parses_what_dhclient_sends_and_emits_it_back() {
    let p = DhcpPacket::new_checked(&DISCOVER[..]).unwrap();
    assert_eq!((p.op(), p.htype(), p.hlen(), p.hops(), p.secs(), p.broadcast()), (1, 1, 6, 0, 0, false));
    let opts: Vec<_> = p.options().map(|o| o.unwrap().0).collect();
    assert_eq!(opts, vec![opt::MESSAGE_TYPE, opt::HOST_NAME, opt::PARAMETER_REQUEST]);
    let r = DhcpRepr::parse(&p).unwrap();
    assert_eq!((r.op, r.message_type, r.xid), (DhcpOp::Request, MessageType::Discover, 0x6189e654));
    assert_eq!((r.client_mac, r.ciaddr), (Mac([0x52, 0x54, 0, 0x12, 0x34, 0x56]), Ipv4Addr::UNSPECIFIED));
    assert_eq!((r.requested_ip, r.client_id.as_deref(), r.host_name.as_deref()), (None, None, Some("vm")));
    assert_eq!(r.parameter_request, vec![1, 28, 2, 3, 15, 6, 119, 12, 44, 47, 26, 121, 42]);
    // This module writes options in dhclient's order and pads to 300 bytes: the same bytes come out.
    let mut out = vec![0xa5u8; r.buffer_len()];
    r.emit(&mut DhcpPacket::new_unchecked(&mut out[..])).unwrap();
    assert_eq!(out, DISCOVER);
}

#[test]
fn an_ack_with_every_option_round_trips() {
    let mut r = DhcpRepr::new(DhcpOp::Reply, MessageType::Ack, 7, Mac([2, 0, 0, 0, 0, 1]));
    r.yiaddr = Ipv4Addr::new(10, 0, 0, 5);
    r.broadcast = true;
    r.server_id = Some(Ipv4Addr::new(10, 0, 0, 254));
    (r.lease_time, r.renewal_time, r.rebinding_time) = (Some(86400), Some(43200), Some(75600));
    r.subnet_mask = Some(Ipv4Addr::new(255, 255, 255, 0));
    r.routers = vec![Ipv4Addr::new(10, 0, 0, 254)];
    r.dns_servers = vec![Ipv4Addr::new(8, 8, 8, 8), Ipv4Addr::new(1, 1, 1, 1)];
    r.domain_name = Some("openstacklocal".into());
    r.interface_mtu = Some(1450);
    r.client_id = Some(vec![1, 2, 0, 0, 0, 0, 1]);
    r.classless_routes = vec![
        (Ipv4Addr::new(169, 254, 169, 254), 32, Ipv4Addr::new(10, 0, 0, 2)),
        (Ipv4Addr::new(0, 0, 0, 0), 0, Ipv4Addr::new(10, 0, 0, 254)),
        (Ipv4Addr::new(10, 1, 0, 0), 16, Ipv4Addr::new(10, 0, 0, 3)),
    ];
    let mut b = vec![0u8; r.buffer_len()];
    r.emit(&mut DhcpPacket::new_unchecked(&mut b[..])).unwrap();
    let p = DhcpPacket::new_checked(&b[..]).unwrap();
    assert_eq!((p.op(), p.flags(), p.yiaddr()), (2, FLAG_BROADCAST, Ipv4Addr::new(10, 0, 0, 5)));
    assert_eq!(DhcpRepr::parse(&p).unwrap(), r);
    // RFC 3442's own example encoding of 10.1.0.0/16 via 10.0.0.3: 16, 10, 1, then the router.
    let at = b.windows(7).position(|w| w == [16, 10, 1, 10, 0, 0, 3]);
    assert!(at.is_some());
    // Too small a buffer, an over-long option, a /33 route: errors, not panics.
    assert_eq!(r.emit(&mut DhcpPacket::new_unchecked(&mut b[..299])).unwrap_err(), WireError::Truncated);
    let mut long = r.clone();
    long.host_name = Some("h".repeat(256));
    assert_eq!(long.emit(&mut DhcpPacket::new_unchecked(&mut vec![0; 600][..])).unwrap_err(), WireError::Malformed);
    let mut r33 = r.clone();
    r33.classless_routes[0].1 = 33;
    assert_eq!(r33.emit(&mut DhcpPacket::new_unchecked(&mut b[..])).unwrap_err(), WireError::Malformed);
}

#[test]
fn bad_cookies_options_and_lengths() {
    assert_eq!(DhcpPacket::new_checked(&DISCOVER[..239]).unwrap_err(), WireError::Truncated);
    let mut no_cookie = DISCOVER;
    no_cookie[236] = 0;
    assert_eq!(DhcpPacket::new_checked(&no_cookie[..]).unwrap_err(), WireError::Malformed);
    // The host name claims 40 bytes where the message has 1: the walk ends with an error.
    let mut long = DISCOVER[..246].to_vec();
    long[244] = 40;
    let p = DhcpPacket::new_checked(&long[..]).unwrap();
    assert_eq!(p.options().last(), Some(Err(WireError::Truncated)));
    assert_eq!(DhcpRepr::parse(&p).unwrap_err(), WireError::Truncated);
    // An option code with no length byte after it.
    let p = DhcpPacket::new_checked(&DISCOVER[..244]).unwrap();
    assert_eq!(p.options().collect::<Vec<_>>(), vec![Ok((53, &[1u8][..])), Err(WireError::Truncated)]);
    // A two-byte message type; no message type at all (padded over); a hardware type other than Ethernet.
    let mut bad = DISCOVER;
    bad[241] = 2;
    assert_eq!(DhcpRepr::parse(&DhcpPacket::new_checked(&bad[..]).unwrap()).unwrap_err(), WireError::Malformed);
    let mut untyped = DISCOVER;
    untyped[240..243].fill(opt::PAD);
    assert_eq!(DhcpRepr::parse(&DhcpPacket::new_checked(&untyped[..]).unwrap()).unwrap_err(), WireError::Malformed);
    let mut token_ring = DISCOVER;
    token_ring[1] = 6;
    let p = DhcpPacket::new_checked(&token_ring[..]).unwrap();
    assert_eq!(DhcpRepr::parse(&p).unwrap_err(), WireError::Unsupported);
    let mut bad_op = DISCOVER;
    bad_op[0] = 3;
    assert_eq!(DhcpRepr::parse(&DhcpPacket::new_checked(&bad_op[..]).unwrap()).unwrap_err(), WireError::Malformed);
}
