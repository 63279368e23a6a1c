//! The DHCPv4 server (RFC 2131, options RFC 2132 and RFC 3442), for a port whose address the API fixed:
//! the server never picks an address, it confirms the one it was given, as Neutron's dnsmasq with one
//! static host per port, and OVN's `put_dhcp_opts`.
//!
//! - DISCOVER → OFFER of the port's address.
//! - REQUEST → ACK, or NAK when the address it asks for is not the port's: selecting (server identifier
//!   ours, requested address), init-reboot (requested address, no server identifier), renewing (unicast,
//!   `ciaddr`) and rebinding (broadcast, `ciaddr`). A REQUEST that chose another server is left alone.
//! - INFORM → ACK with the options and no lease (RFC 2131 3.4).
//! - RELEASE ends the lease; DECLINE is counted (the dataplane logs it) (the address is the port's: there is no other
//!   one to give).
//!
//! Replies go where RFC 2131 4.1 says: a NAK broadcast; to `ciaddr` when the client has one; broadcast when
//! the client asks for it (the broadcast bit); else unicast to the offered address and the client's MAC.
//! They come from the network's DHCP port (its MAC and its address on the subnet), as Neutron's.

use super::{frame, Dhcp4, PortServices, SlowPath};
use crate::wire::dhcpv4::{opt, DhcpOp, MessageType, CLIENT_PORT, SERVER_PORT};
use crate::wire::{DhcpPacket, DhcpRepr, Ipv4Addr, Mac};

/// The options the server writes itself, which no extra option may add to (RFC 2132: pad, requested
/// address, overload, message type, server identifier, parameter list, maximum size, client identifier,
/// end; and RFC 3046's relay agent information).
pub const SERVERS_OWN: [u8; 10] = [0, 50, 52, 53, 54, 55, 57, 61, 82, 255];

/// The answer to the DHCP message `payload` from `src_mac` on a port with `svc`, sent to `dst` (its IPv4
/// destination): a whole frame, or `None` (counted in the stats).
#[allow(clippy::too_many_arguments)]
pub(super) fn answer(
    sp: &mut SlowPath,
    svc: &PortServices,
    d: &Dhcp4,
    src_mac: Mac,
    dst: Ipv4Addr,
    payload: &[u8],
    now_ms: u64,
    ident: u16,
) -> Option<Vec<u8>> {
    let req = match DhcpPacket::new_checked(payload).and_then(|p| DhcpRepr::parse(&p)) {
        Ok(r) if r.op == DhcpOp::Request => r,
        _ => {
            sp.stats.bump("dhcp4.malformed");
            return None;
        }
    };
    if req.client_mac != svc.mac || src_mac != svc.mac || req.giaddr != Ipv4Addr::UNSPECIFIED {
        // Another client behind the port (its MAC is not the port's), or a relay: not the port's lease.
        sp.stats.bump("dhcp4.unknown_client");
        return None;
    }
    let kind = match req.message_type {
        MessageType::Discover => {
            sp.stats.bump("dhcp4.discover");
            MessageType::Offer
        }
        MessageType::Request => request(sp, d, &req, dst)?,
        MessageType::Inform => {
            sp.stats.bump("dhcp4.inform");
            MessageType::Ack
        }
        MessageType::Release => {
            sp.stats.bump("dhcp4.release");
            if req.ciaddr == d.address {
                sp.leases.remove(&svc.lport);
            }
            return None;
        }
        MessageType::Decline => {
            // (The dataplane logs it: the address is in use by somebody else on the network.)
            sp.stats.bump("dhcp4.decline");
            sp.leases.remove(&svc.lport);
            return None;
        }
        _ => {
            sp.stats.bump("dhcp4.unexpected");
            return None;
        }
    };
    let inform = req.message_type == MessageType::Inform;
    let reply = reply(d, &req, kind, inform);
    match kind {
        MessageType::Offer => sp.stats.bump("dhcp4.offer"),
        MessageType::Nak => sp.stats.bump("dhcp4.nak"),
        _ => sp.stats.bump("dhcp4.ack"),
    }
    if kind == MessageType::Ack && !inform {
        let lease = reply.lease_time.unwrap_or(d.lease_secs);
        sp.leases.insert(svc.lport, (d.address, now_ms + u64::from(lease) * 1000));
    }
    let mut bytes = vec![0u8; reply.buffer_len()];
    if reply.emit(&mut DhcpPacket::new_unchecked(&mut bytes[..])).is_err() {
        // An extra option over 255 bytes (the API refuses those; the DB may hold anything).
        sp.stats.bump("dhcp4.unencodable");
        return None;
    }
    let (dst_mac, dst_ip) = destination(&req, &reply, kind);
    Some(frame::udp4((d.server_mac, dst_mac), (d.server_ip, dst_ip), (SERVER_PORT, CLIENT_PORT), ident, &bytes))
}

/// A REQUEST: ACK, NAK, or `None` for one that chose another server; counts its state.
fn request(sp: &mut SlowPath, d: &Dhcp4, req: &DhcpRepr, dst: Ipv4Addr) -> Option<MessageType> {
    let asked = match (req.server_id, req.requested_ip) {
        (Some(server), _) if server != d.server_ip => {
            sp.stats.bump("dhcp4.other_server");
            return None;
        }
        (Some(_), asked) => {
            sp.stats.bump("dhcp4.request");
            asked.unwrap_or(req.ciaddr)
        }
        (None, Some(asked)) => {
            sp.stats.bump("dhcp4.init_reboot");
            asked
        }
        (None, None) => {
            // RENEWING is unicast to the server, REBINDING broadcast.
            sp.stats.bump(if dst == Ipv4Addr::BROADCAST { "dhcp4.rebind" } else { "dhcp4.renew" });
            req.ciaddr
        }
    };
    Some(if asked == d.address { MessageType::Ack } else { MessageType::Nak })
}

/// The reply of type `kind` to `req`: a NAK says only that; an OFFER or ACK carries the lease (an INFORM's
/// ACK, no lease nor address) and every option.
fn reply(d: &Dhcp4, req: &DhcpRepr, kind: MessageType, inform: bool) -> DhcpRepr {
    let mut r = DhcpRepr::new(DhcpOp::Reply, kind, req.xid, req.client_mac);
    r.broadcast = req.broadcast;
    r.server_id = Some(d.server_ip);
    // RFC 6842: the client identifier comes back.
    r.client_id = req.client_id.clone();
    if kind == MessageType::Nak {
        return r;
    }
    r.siaddr = d.server_ip;
    if inform {
        r.ciaddr = req.ciaddr;
    } else {
        r.ciaddr = if kind == MessageType::Ack { req.ciaddr } else { Ipv4Addr::UNSPECIFIED };
        r.yiaddr = d.address;
        r.lease_time = Some(d.lease_secs);
        r.renewal_time = Some(d.lease_secs / 2);
        r.rebinding_time = Some((d.lease_secs as u64 * 7 / 8) as u32);
    }
    let mask = if d.prefix_len == 0 { 0 } else { u32::MAX << (32 - d.prefix_len.min(32) as u32) };
    r.subnet_mask = Some(Ipv4Addr::from_u32(mask));
    r.routers = d.router.into_iter().collect();
    r.dns_servers = d.dns.clone();
    r.domain_name = d.domain.clone();
    r.host_name = d.host_name.clone();
    r.interface_mtu = Some(d.mtu);
    r.classless_routes = d.routes.clone();
    // The port's extra options: one the server writes itself takes its place (RFC 2132's order stays: the
    // mask before the router), any other comes after them; a value that does not fit its option is left
    // out (the control plane encodes them; the tables may still be wrong).
    let mut timers = false;
    for (code, data) in d.extra.iter().filter(|(c, _)| !SERVERS_OWN.contains(c)) {
        timers |= matches!(*code, opt::RENEWAL_TIME | opt::REBINDING_TIME);
        if !typed(&mut r, *code, data) {
            r.other.retain(|(c, _)| c != code);
            r.other.push((*code, data.clone()));
        }
    }
    if inform {
        (r.lease_time, r.renewal_time, r.rebinding_time) = (None, None, None);
    } else if let (Some(lease), false) = (r.lease_time, timers) {
        // T1 and T2 follow the lease in force (an extra lease time), as dnsmasq's.
        r.renewal_time = Some(lease / 2);
        r.rebinding_time = Some((lease as u64 * 7 / 8) as u32);
    }
    if !r.other.iter().any(|(c, _)| *c == opt::BROADCAST) {
        let mask = r.subnet_mask.map_or(mask, Ipv4Addr::to_u32);
        r.other.insert(0, (opt::BROADCAST, Ipv4Addr::from_u32(d.address.to_u32() | !mask).0.to_vec()));
    }
    r
}

/// Puts an extra option whose field the server writes itself in that field: true if `code` is one of
/// those (a value of the wrong shape leaves the server's own).
fn typed(r: &mut DhcpRepr, code: u8, d: &[u8]) -> bool {
    let addr = || <[u8; 4]>::try_from(d).ok().map(Ipv4Addr);
    let addrs = || {
        (!d.is_empty() && d.len().is_multiple_of(4))
            .then(|| d.chunks_exact(4).map(|c| Ipv4Addr(c.try_into().expect("4"))).collect())
    };
    let u32v = || <[u8; 4]>::try_from(d).ok().map(u32::from_be_bytes);
    let text = || Some(String::from_utf8_lossy(d).into_owned());
    match code {
        opt::SUBNET_MASK => r.subnet_mask = addr().or(r.subnet_mask),
        opt::ROUTER => r.routers = addrs().unwrap_or_else(|| r.routers.clone()),
        opt::DNS_SERVER => r.dns_servers = addrs().unwrap_or_else(|| r.dns_servers.clone()),
        opt::HOST_NAME => r.host_name = text(),
        opt::DOMAIN_NAME => r.domain_name = text(),
        opt::INTERFACE_MTU => r.interface_mtu = <[u8; 2]>::try_from(d).ok().map(u16::from_be_bytes).or(r.interface_mtu),
        opt::LEASE_TIME => r.lease_time = r.lease_time.and(u32v()).or(r.lease_time),
        opt::RENEWAL_TIME => r.renewal_time = r.renewal_time.and(u32v()).or(r.renewal_time),
        opt::REBINDING_TIME => r.rebinding_time = r.rebinding_time.and(u32v()).or(r.rebinding_time),
        opt::CLASSLESS_ROUTES => {
            if let Ok(routes) = crate::wire::dhcpv4::parse_routes(d) {
                r.classless_routes = routes;
            }
        }
        _ => return false,
    }
    true
}

/// Where a reply goes (RFC 2131 4.1): its destination MAC and IPv4 address (broadcast too for an INFORM
/// without `ciaddr`, which has nowhere else to go).
fn destination(req: &DhcpRepr, reply: &DhcpRepr, kind: MessageType) -> (Mac, Ipv4Addr) {
    let unaddressed = req.ciaddr == Ipv4Addr::UNSPECIFIED && (req.broadcast || reply.yiaddr == Ipv4Addr::UNSPECIFIED);
    if kind == MessageType::Nak || unaddressed {
        (Mac::BROADCAST, Ipv4Addr::BROADCAST)
    } else if req.ciaddr != Ipv4Addr::UNSPECIFIED {
        (req.client_mac, req.ciaddr)
    } else {
        (req.client_mac, reply.yiaddr)
    }
}
