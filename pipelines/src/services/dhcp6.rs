//! The DHCPv6 server (RFC 8415), stateful (an address on a `dhcpv6-stateful` subnet: IA_NA) and
//! stateless (information only: DNS servers and search domain), for the port's address the API fixed, as
//! Neutron's dnsmasq and OVN's `put_dhcpv6_opts`.
//!
//! - Solicit → Advertise (Reply with rapid commit when the client asks for it, 18.3.1), with the port's
//!   address in each IA_NA the client sent, or `NoAddrsAvail` on a stateless subnet.
//! - Request, Renew (to this server) and Rebind → Reply with the address; an address the client holds
//!   that is not the port's comes back with lifetimes 0 (18.3.4).
//! - Confirm → Reply: `Success` if every address is the port's, else `NotOnLink`.
//! - Release, Decline → Reply `Success` (a Decline counted).
//! - Information-request → Reply with the options.
//!
//! A message for another server (its Server Identifier not ours) is left alone. The server's DUID is
//! DUID-LL of the network's DHCP port's MAC; replies come from that MAC's link-local address.

use super::{frame, Dhcp6, PortServices, SlowPath};
use crate::wire::dhcpv6::Dhcpv6MessageType as T;
use crate::wire::dhcpv6::{opt, IaAddress, IaNa, CLIENT_PORT, SERVER_PORT};
use crate::wire::{Dhcpv6Packet, Dhcpv6Repr, Ipv6Addr, Mac};

/// The options the server writes itself, which no extra option may add to (RFC 8415 21: the identifiers,
/// the identity associations and their addresses, the option request, elapsed time, relay and
/// authentication, server unicast, status, rapid commit, reconfiguration, prefix delegation).
pub const SERVERS_OWN: [u16; 18] = [1, 2, 3, 4, 5, 6, 8, 9, 11, 12, 13, 14, 18, 19, 20, 25, 26, 36];

/// RFC 8415 21.13 status codes.
const SUCCESS: u16 = 0;
const NO_ADDRS_AVAIL: u16 = 2;
const NOT_ON_LINK: u16 = 4;

/// The server's DUID: DUID-LL (type 3), hardware type 1 (Ethernet), the MAC.
pub(super) fn duid(mac: Mac) -> Vec<u8> {
    [&[0, 3, 0, 1][..], &mac.0].concat()
}

/// A domain name in DNS wire format (RFC 1035 3.1), for the domain search list (RFC 3646).
fn dns_name(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for label in name.trim_end_matches('.').split('.').filter(|l| !l.is_empty()) {
        let l = &label.as_bytes()[..label.len().min(63)];
        out.push(l.len() as u8);
        out.extend_from_slice(l);
    }
    out.push(0);
    out
}

/// The answer to the DHCPv6 message `payload` from `(src_mac, src)` on a port with `svc`: a whole frame,
/// or `None` (counted).
pub(super) fn answer(
    sp: &mut SlowPath,
    svc: &PortServices,
    d: &Dhcp6,
    src_mac: Mac,
    src: Ipv6Addr,
    payload: &[u8],
) -> Option<Vec<u8>> {
    let req = match Dhcpv6Packet::new_checked(payload).and_then(|p| Dhcpv6Repr::parse(&p)) {
        Ok(r) => r,
        Err(_) => {
            sp.stats.bump("dhcp6.malformed");
            return None;
        }
    };
    if src_mac != svc.mac || src.is_unspecified() || src.is_multicast() {
        sp.stats.bump("dhcp6.unknown_client");
        return None;
    }
    let server = duid(d.server_mac);
    // A client identifier is required of everything but an Information-request (16.x).
    if req.client_id.is_none() && req.msg_type != T::InformationRequest {
        sp.stats.bump("dhcp6.malformed");
        return None;
    }
    if req.server_id.as_ref().is_some_and(|s| *s != server) {
        sp.stats.bump("dhcp6.other_server");
        return None;
    }
    let needs_server = matches!(req.msg_type, T::Request | T::Renew | T::Release | T::Decline);
    if needs_server && req.server_id.is_none()
        || matches!(req.msg_type, T::Solicit | T::Confirm | T::Rebind) && req.server_id.is_some()
    {
        // RFC 8415 16.x: these are discarded.
        sp.stats.bump("dhcp6.malformed");
        return None;
    }
    let mut r = Dhcpv6Repr::new(T::Reply, req.transaction_id);
    r.client_id = req.client_id.clone();
    r.server_id = Some(server);
    match req.msg_type {
        T::Solicit => {
            sp.stats.bump("dhcp6.solicit");
            r.ia_na = leases(d, &req.ia_na, false);
            if d.address.is_none() {
                r.status = Some((NO_ADDRS_AVAIL, "no addresses on this subnet: stateless".into()));
            }
            if req.rapid_commit && d.address.is_some() {
                r.rapid_commit = true;
            } else {
                r.msg_type = T::Advertise;
            }
        }
        T::Request | T::Renew | T::Rebind => {
            sp.stats.bump(match req.msg_type {
                T::Request => "dhcp6.request",
                T::Renew => "dhcp6.renew",
                _ => "dhcp6.rebind",
            });
            r.ia_na = leases(d, &req.ia_na, true);
        }
        T::Confirm => {
            sp.stats.bump("dhcp6.confirm");
            // Nothing to confirm: no reply (18.3.3). The port's address is the only one of this link the
            // server knows to be the client's.
            if req.ia_na.iter().all(|ia| ia.addresses.is_empty()) {
                return None;
            }
            let on_link = req.ia_na.iter().flat_map(|ia| &ia.addresses).all(|a| Some(a.addr) == d.address);
            r.status = Some(if on_link && d.address.is_some() {
                (SUCCESS, "all addresses on link".into())
            } else {
                (NOT_ON_LINK, "not this link's".into())
            });
        }
        T::Release | T::Decline => {
            if req.msg_type == T::Decline {
                sp.stats.bump("dhcp6.decline");
            } else {
                sp.stats.bump("dhcp6.release");
            }
            r.status = Some((SUCCESS, "done".into()));
            return emit(sp, d, src_mac, src, &r);
        }
        T::InformationRequest => sp.stats.bump("dhcp6.information_request"),
        _ => {
            sp.stats.bump("dhcp6.unexpected");
            return None;
        }
    }
    r.dns_servers = d.dns.clone();
    r.domain_list = d.domain.as_deref().map(dns_name);
    for (code, data) in d.extra.iter().filter(|(c, _)| !SERVERS_OWN.contains(c)) {
        match *code {
            opt::DNS_SERVERS => r.dns_servers.clear(),
            opt::DOMAIN_LIST => r.domain_list = None,
            _ => {}
        }
        r.other.retain(|(c, _)| c != code);
        r.other.push((*code, data.clone()));
    }
    emit(sp, d, src_mac, src, &r)
}

/// One IA_NA per IA the client sent, with the port's address (or, stateless, `NoAddrsAvail`); with
/// `renewing`, the client's other addresses come back with lifetimes 0.
fn leases(d: &Dhcp6, asked: &[IaNa], renewing: bool) -> Vec<IaNa> {
    let (t1, t2) = (d.lease_secs / 2, (d.lease_secs as u64 * 4 / 5) as u32);
    asked
        .iter()
        .map(|ia| match d.address {
            Some(addr) => {
                let mut addresses = vec![IaAddress { addr, preferred: d.lease_secs, valid: d.lease_secs }];
                if renewing {
                    let stale = ia.addresses.iter().filter(|a| a.addr != addr);
                    addresses.extend(stale.map(|a| IaAddress { addr: a.addr, preferred: 0, valid: 0 }));
                }
                IaNa { iaid: ia.iaid, t1, t2, addresses, status: None }
            }
            None => IaNa {
                iaid: ia.iaid,
                t1: 0,
                t2: 0,
                addresses: vec![],
                status: Some((NO_ADDRS_AVAIL, "stateless subnet".into())),
            },
        })
        .collect()
}

/// The reply frame: from the DHCP port's link-local address to the client's; `None` if the message does
/// not encode (an extra option over 65,535 bytes).
fn emit(sp: &mut SlowPath, d: &Dhcp6, client_mac: Mac, client: Ipv6Addr, r: &Dhcpv6Repr) -> Option<Vec<u8>> {
    let mut bytes = vec![0u8; r.buffer_len()];
    if r.emit(&mut Dhcpv6Packet::new_unchecked(&mut bytes[..])).is_err() {
        sp.stats.bump("dhcp6.unencodable");
        return None;
    }
    sp.stats.bump(if r.msg_type == T::Advertise { "dhcp6.advertise" } else { "dhcp6.reply" });
    let server = Ipv6Addr::link_local_from_mac(d.server_mac);
    Some(frame::udp6((d.server_mac, client_mac), (server, client), (SERVER_PORT, CLIENT_PORT), &bytes))
}
