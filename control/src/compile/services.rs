//! What the slow path serves on a local port (`pipelines::services::PortServices`), from the model, as
//! Neutron's DHCP agent (dnsmasq) and L3 agent (radvd) would serve it:
//! - DHCPv4 for the port's address on a subnet with `enable_dhcp`, from the network's DHCP port (its
//!   address on that subnet is the server identifier): mask, gateway, the subnet's DNS servers, the
//!   node's DNS domain, host name `host-<a-b-c-d>` (Neutron's), lease time, the network's MTU, and the
//!   subnet's host routes as classless static routes, with the default route among them (Neutron's
//!   dnsmasq options); then the port's `extra_dhcp_opts` for IPv4.
//! - DHCPv6 for the port's address on an IPv6 subnet with `enable_dhcp` and address mode
//!   `dhcpv6-stateful` (the address) or `dhcpv6-stateless` (information only); SLAAC subnets get none.
//! - Router advertisements: one per router interface on the port's network whose IPv6 subnets have an
//!   `ipv6_ra_mode`, with the `slaac` subnets' DNS servers (RDNSS, at most three), as Neutron's radvd.
//!
//! A port's services change when it does, when its network or a subnet of it does, or when the network's
//! DHCP port or a router interface on it does: the controller rebuilds the network's ports then.

use std::net::IpAddr;
use std::sync::Arc;

use pipelines::services::{Dhcp4, Dhcp6, PortServices, RouterAdvert, DHCP4_SERVERS_OWN, DHCP6_SERVERS_OWN};
use pipelines::wire::{Ipv4Addr, Ipv6Addr, Mac};

use super::fragment::View;

use crate::cidr::Cidr;
use crate::model::{dhcp_device_id, ExtraDhcpOpt, Ipv6Mode, Network as NetworkObject, Port, Subnet, DHCP_OWNER};

/// What the node's DHCP says that the model does not: Neutron's `dhcp_lease_duration` and `dns_domain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicesConfig {
    pub lease_secs: u32,
    /// Option 15 and the DHCPv6 domain search list (empty: none).
    pub dns_domain: String,
}

impl Default for ServicesConfig {
    fn default() -> Self {
        ServicesConfig { lease_secs: 86_400, dns_domain: "openstacklocal".into() }
    }
}

fn v4(s: &str) -> Option<Ipv4Addr> {
    s.parse::<std::net::Ipv4Addr>().ok().map(|a| Ipv4Addr(a.octets()))
}

fn v6(s: &str) -> Option<Ipv6Addr> {
    s.parse::<std::net::Ipv6Addr>().ok().map(|a| Ipv6Addr(a.octets()))
}

/// The port's fixed IP on `subnet`.
fn ip_on<'p>(p: &'p Port, subnet: &Subnet) -> Option<&'p str> {
    p.fixed_ips.iter().find(|f| f.subnet_id == subnet.id).map(|f| f.ip_address.as_str())
}

impl View<'_> {
    /// The services of local port `p` on network `net` (`None`: nothing to serve).
    pub(crate) fn services(&self, p: &Port, net: &NetworkObject, lport: u32, mac: Mac) -> Option<Arc<PortServices>> {
        let subnets: Vec<&Subnet> = self.model.subnets.values().filter(|s| s.network_id == net.id).collect();
        // The API's DHCP port of the network, else any (in id order).
        let candidates = || self.index.dhcp_ports_of(&net.id).filter_map(|id| self.model.ports.get(id));
        let dhcp = candidates()
            .find(|d| d.device_id == dhcp_device_id(&net.id))
            .or_else(|| candidates().find(|d| d.device_owner == DHCP_OWNER));
        let ifaces: Vec<&Port> = self
            .index
            .routers_on(&net.id)
            .flat_map(|r| self.index.ifaces_of(r))
            .filter_map(|id| self.model.ports.get(id))
            // (A router's gateway is no router of the external network's hosts.)
            .filter(|i| i.network_id == net.id && i.device_owner == crate::model::ROUTER_INTERFACE)
            .collect();
        let on = Network { subnets, dhcp, ifaces, mtu: net.mtu };
        port_services(p, &on, self.services, lport, mac).map(Arc::new)
    }
}

/// What a port's services are made of: its network's subnets, DHCP port, router interface ports and MTU.
pub(crate) struct Network<'a> {
    pub subnets: Vec<&'a Subnet>,
    pub dhcp: Option<&'a Port>,
    pub ifaces: Vec<&'a Port>,
    pub mtu: u32,
}

/// The services of port `p` (logical key `lport`, MAC `mac`) on `net`, by the rules of this module's
/// documentation; `None`: nothing to serve. The node roles' controller and `dragonflow run`'s static
/// topology both build them here.
pub(crate) fn port_services(
    p: &Port,
    net: &Network<'_>,
    cfg: &ServicesConfig,
    lport: u32,
    mac: Mac,
) -> Option<PortServices> {
    let mut subnets = net.subnets.clone();
    subnets.sort_by(|a, b| a.id.cmp(&b.id));
    let svc = PortServices {
        lport,
        mac,
        dhcp4: net.dhcp.and_then(|d| dhcp4(p, net.mtu, &subnets, d, cfg)),
        dhcp6: net.dhcp.and_then(|d| dhcp6(p, &subnets, d, cfg)),
        ra: adverts(net, &subnets),
    };
    (svc.dhcp4.is_some() || svc.dhcp6.is_some() || !svc.ra.is_empty()).then_some(svc)
}

fn dhcp4(p: &Port, mtu: u32, subnets: &[&Subnet], dhcp: &Port, cfg: &ServicesConfig) -> Option<Dhcp4> {
    let (s, address) =
        subnets.iter().filter(|s| s.ip_version == 4 && s.enable_dhcp).find_map(|s| Some((*s, v4(ip_on(p, s)?)?)))?;
    let server_ip = v4(ip_on(dhcp, s)?)?;
    let prefix_len = Cidr::parse(&s.cidr)?.prefix_len();
    // Neutron's dnsmasq options: a 0.0.0.0/0 host route is the gateway when the subnet has none; the
    // other host routes go in option 121 with the default route among them.
    let mut router = s.gateway_ip.as_deref().and_then(v4);
    let mut routes = Vec::new();
    for r in &s.host_routes {
        let (Some(dst), Some(hop)) = (Cidr::parse(&r.destination), v4(&r.nexthop)) else { continue };
        let IpAddr::V4(a) = dst.addr() else { continue };
        if dst.prefix_len() == 0 {
            router = router.or(Some(hop));
        } else {
            routes.push((Ipv4Addr(a.octets()), dst.prefix_len(), hop));
        }
    }
    if let (Some(gw), false) = (router, routes.is_empty()) {
        routes.push((Ipv4Addr::UNSPECIFIED, 0, gw));
    }
    Some(Dhcp4 {
        server_mac: Mac::parse(&dhcp.mac_address)?,
        server_ip,
        address,
        prefix_len,
        router,
        dns: s.dns_nameservers.iter().filter_map(|d| v4(d)).collect(),
        domain: (!cfg.dns_domain.is_empty()).then(|| cfg.dns_domain.clone()),
        host_name: Some(format!("host-{}", address.to_string().replace('.', "-"))),
        lease_secs: cfg.lease_secs,
        mtu: mtu.clamp(68, 65535) as u16,
        routes,
        extra: extra(p, 4, dhcp4_option),
    })
}

fn dhcp6(p: &Port, subnets: &[&Subnet], dhcp: &Port, cfg: &ServicesConfig) -> Option<Dhcp6> {
    let modes = [Some(Ipv6Mode::Dhcpv6Stateful), Some(Ipv6Mode::Dhcpv6Stateless)];
    let s = subnets.iter().find(|s| {
        s.ip_version == 6 && s.enable_dhcp && modes.contains(&s.ipv6_address_mode) && ip_on(p, s).is_some()
    })?;
    let address = match s.ipv6_address_mode {
        Some(Ipv6Mode::Dhcpv6Stateful) => Some(v6(ip_on(p, s)?)?),
        _ => None,
    };
    Some(Dhcp6 {
        server_mac: Mac::parse(&dhcp.mac_address)?,
        address,
        dns: s.dns_nameservers.iter().filter_map(|d| v6(d)).collect(),
        domain: (!cfg.dns_domain.is_empty()).then(|| cfg.dns_domain.clone()),
        lease_secs: cfg.lease_secs,
        extra: extra(p, 6, dhcp6_option),
    })
}

/// The router advertisements on a network: per router interface port on it (in id order), its IPv6
/// subnets with an RA mode.
fn adverts(net: &Network<'_>, subnets: &[&Subnet]) -> Vec<RouterAdvert> {
    let mut ifaces = net.ifaces.clone();
    ifaces.sort_by(|a, b| a.id.cmp(&b.id));
    ifaces.dedup_by(|a, b| a.id == b.id);
    let mut out = Vec::new();
    for i in ifaces {
        let Some(router_mac) = Mac::parse(&i.mac_address) else { continue };
        let mut ra = RouterAdvert {
            router_mac,
            managed: false,
            other: false,
            prefixes: Vec::new(),
            mtu: net.mtu,
            dns: Vec::new(),
        };
        for s in subnets.iter().filter(|s| s.ip_version == 6 && ip_on(i, s).is_some()) {
            let (Some(mode), Some(c)) = (s.ipv6_ra_mode, Cidr::parse(&s.cidr)) else { continue };
            let IpAddr::V6(prefix) = c.addr() else { continue };
            ra.managed |= mode == Ipv6Mode::Dhcpv6Stateful;
            ra.other |= mode == Ipv6Mode::Dhcpv6Stateless;
            ra.prefixes.push((Ipv6Addr(prefix.octets()), c.prefix_len(), mode != Ipv6Mode::Dhcpv6Stateful));
            if mode == Ipv6Mode::Slaac {
                ra.dns.extend(s.dns_nameservers.iter().filter_map(|d| v6(d)));
            }
        }
        if !ra.prefixes.is_empty() {
            ra.dns.truncate(3);
            out.push(ra);
        }
    }
    out
}

/// The port's `extra_dhcp_opts` of `version`, encoded by `encode`; an option that does not encode is
/// left out (and logged: the API checks names and values, the DB may hold anything).
#[allow(clippy::type_complexity)]
fn extra<C>(p: &Port, version: u8, encode: fn(&str, &str) -> Result<(C, Vec<u8>), String>) -> Vec<(C, Vec<u8>)> {
    p.extra_dhcp_opts
        .iter()
        .filter(|o| o.ip_version == version)
        .filter_map(|ExtraDhcpOpt { opt_name, opt_value, .. }| match encode(opt_name, opt_value) {
            Ok(o) => Some(o),
            Err(e) => {
                tracing::warn!(port = %p.id, option = %opt_name, "extra DHCP option left out: {e}");
                None
            }
        })
        .collect()
}

/// How an option's value is written.
#[derive(Clone, Copy)]
enum Kind {
    Addrs,
    U8,
    U16,
    U32,
    Text,
    Routes,
    Names,
}

/// dnsmasq's DHCPv4 option names (`dnsmasq --help dhcp`), which Neutron passes through, with their codes
/// and value types.
const V4_NAMES: &[(&str, u8, Kind)] = &[
    ("netmask", 1, Kind::Addrs),
    ("time-offset", 2, Kind::U32),
    ("router", 3, Kind::Addrs),
    ("dns-server", 6, Kind::Addrs),
    ("log-server", 7, Kind::Addrs),
    ("lpr-server", 9, Kind::Addrs),
    ("hostname", 12, Kind::Text),
    ("boot-file-size", 13, Kind::U16),
    ("domain-name", 15, Kind::Text),
    ("swap-server", 16, Kind::Addrs),
    ("root-path", 17, Kind::Text),
    ("extension-path", 18, Kind::Text),
    ("ip-forward-enable", 19, Kind::U8),
    ("non-local-source-routing", 20, Kind::U8),
    ("max-datagram-reassembly", 22, Kind::U16),
    ("default-ttl", 23, Kind::U8),
    ("mtu", 26, Kind::U16),
    ("all-subnets-local", 27, Kind::U8),
    ("broadcast", 28, Kind::Addrs),
    ("router-discovery", 31, Kind::U8),
    ("router-solicitation", 32, Kind::Addrs),
    ("arp-timeout", 35, Kind::U32),
    ("ethernet-encap", 36, Kind::U8),
    ("tcp-ttl", 37, Kind::U8),
    ("tcp-keepalive", 38, Kind::U32),
    ("nis-domain", 40, Kind::Text),
    ("nis-server", 41, Kind::Addrs),
    ("ntp-server", 42, Kind::Addrs),
    ("netbios-ns", 44, Kind::Addrs),
    ("netbios-dd", 45, Kind::Addrs),
    ("netbios-nodetype", 46, Kind::U8),
    ("netbios-scope", 47, Kind::Text),
    ("x-windows-fs", 48, Kind::Addrs),
    ("x-windows-dm", 49, Kind::Addrs),
    ("lease-time", 51, Kind::U32),
    ("T1", 58, Kind::U32),
    ("T2", 59, Kind::U32),
    ("nis+-domain", 64, Kind::Text),
    ("nis+-server", 65, Kind::Addrs),
    ("tftp-server", 66, Kind::Text),
    ("bootfile-name", 67, Kind::Text),
    ("mobile-ip-home", 68, Kind::Addrs),
    ("smtp-server", 69, Kind::Addrs),
    ("pop3-server", 70, Kind::Addrs),
    ("nntp-server", 71, Kind::Addrs),
    ("irc-server", 74, Kind::Addrs),
    ("domain-search", 119, Kind::Names),
    ("classless-static-route", 121, Kind::Routes),
];

/// DHCPv6 option names (`dnsmasq --help dhcp6`).
const V6_NAMES: &[(&str, u16, Kind)] = &[
    ("dns-server", 23, Kind::Addrs),
    ("domain-search", 24, Kind::Names),
    ("ntp-server", 56, Kind::Addrs),
    ("sntp-server", 31, Kind::Addrs),
];

/// A name as Neutron and dnsmasq take it: `mtu`, `option:mtu`, `26`, `option:26`, or `tag:…,mtu` (the
/// tag is dnsmasq's, not ours: ignored).
fn bare(name: &str) -> &str {
    let name = name.rsplit(',').next().unwrap_or(name).trim();
    name.strip_prefix("option6:").or_else(|| name.strip_prefix("option:")).unwrap_or(name)
}

/// An option's value written as `kind`; IPv6 addresses for `v6`.
fn encode(kind: Kind, value: &str, v6_addrs: bool) -> Result<Vec<u8>, String> {
    let parts = || value.split(',').map(str::trim).filter(|s| !s.is_empty());
    let num = |max: u64| {
        value.trim().parse::<u64>().ok().filter(|&n| n <= max).ok_or(format!("{value:?} is not a number up to {max}"))
    };
    Ok(match kind {
        Kind::Addrs if v6_addrs => parts()
            .map(|a| v6(a).map(|a| a.0.to_vec()).ok_or(format!("{a:?} is not an IPv6 address")))
            .collect::<Result<Vec<_>, _>>()?
            .concat(),
        Kind::Addrs => parts()
            .map(|a| v4(a).map(|a| a.0.to_vec()).ok_or(format!("{a:?} is not an IPv4 address")))
            .collect::<Result<Vec<_>, _>>()?
            .concat(),
        Kind::U8 => vec![num(u8::MAX.into())? as u8],
        Kind::U16 => (num(u16::MAX.into())? as u16).to_be_bytes().to_vec(),
        Kind::U32 => (num(u32::MAX.into())? as u32).to_be_bytes().to_vec(),
        Kind::Text => value.as_bytes().to_vec(),
        Kind::Names => parts()
            .flat_map(|n| {
                let mut out = Vec::new();
                for label in n.trim_end_matches('.').split('.').filter(|l| !l.is_empty()) {
                    out.push(label.len().min(63) as u8);
                    out.extend_from_slice(&label.as_bytes()[..label.len().min(63)]);
                }
                out.push(0);
                out
            })
            .collect(),
        Kind::Routes => {
            // dnsmasq's form: destination/len,router[,destination/len,router…]
            let p: Vec<&str> = parts().collect();
            if !p.len().is_multiple_of(2) {
                return Err(format!("{value:?}: destination,router pairs expected"));
            }
            let mut out = Vec::new();
            for pair in p.chunks(2) {
                let c = Cidr::parse(pair[0])
                    .filter(|c| !c.is_v6())
                    .ok_or(format!("{:?} is not an IPv4 prefix", pair[0]))?;
                let gw = v4(pair[1]).ok_or(format!("{:?} is not an IPv4 address", pair[1]))?;
                let IpAddr::V4(a) = c.addr() else { unreachable!("checked IPv4") };
                out.push(c.prefix_len());
                out.extend_from_slice(&a.octets()[..usize::from(c.prefix_len()).div_ceil(8)]);
                out.extend_from_slice(&gw.0);
            }
            out
        }
    })
}

/// An option of one DHCP version from its Neutron `extra_dhcp_opts` name and value: `(code, data)`, by
/// that version's `names`, with codes in `codes`, the server's own refused, at most `max` bytes. A number
/// with no known type takes addresses if every part is one, else the text (dnsmasq's guess).
fn option<C: Copy + PartialEq + std::str::FromStr + std::fmt::Display>(
    (name, value): (&str, &str),
    names: &[(&str, C, Kind)],
    codes: impl Fn(&C) -> bool,
    own: &[C],
    (v6_addrs, max): (bool, usize),
) -> Result<(C, Vec<u8>), String> {
    let n = bare(name);
    let (code, kind) = match names.iter().find(|(k, _, _)| *k == n) {
        Some(&(_, code, kind)) => (code, kind),
        None => {
            let code = n.parse::<C>().ok().filter(&codes).ok_or(format!("unknown DHCP option {name:?}"))?;
            let kind = names.iter().find(|(_, c, _)| *c == code).map(|&(_, _, k)| k);
            let addrs =
                value.split(',').all(|a| if v6_addrs { v6(a.trim()).is_some() } else { v4(a.trim()).is_some() });
            (code, kind.unwrap_or(if addrs { Kind::Addrs } else { Kind::Text }))
        }
    };
    if own.contains(&code) {
        return Err(format!("option {code} is the server's own"));
    }
    let data = encode(kind, value, v6_addrs)?;
    if data.len() > max {
        return Err(format!("option {name:?} is longer than {max} bytes"));
    }
    Ok((code, data))
}

/// A DHCPv4 option (codes 1 to 254, at most 255 bytes).
pub fn dhcp4_option(name: &str, value: &str) -> Result<(u8, Vec<u8>), String> {
    option((name, value), V4_NAMES, |c| (1..255).contains(c), &DHCP4_SERVERS_OWN, (false, 255))
}

/// A DHCPv6 option (codes from 1, at most 1,024 bytes here).
pub fn dhcp6_option(name: &str, value: &str) -> Result<(u16, Vec<u8>), String> {
    option((name, value), V6_NAMES, |&c| c > 0, &DHCP6_SERVERS_OWN, (true, 1024))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_options_encode_as_dnsmasq_reads_them() {
        assert_eq!(dhcp4_option("mtu", "1400"), Ok((26, vec![0x05, 0x78])));
        assert_eq!(dhcp4_option("option:26", "1400"), Ok((26, vec![0x05, 0x78])));
        assert_eq!(dhcp4_option("tag:x,router", "10.0.0.9"), Ok((3, vec![10, 0, 0, 9])));
        assert_eq!(dhcp4_option("dns-server", "8.8.8.8, 1.1.1.1"), Ok((6, vec![8, 8, 8, 8, 1, 1, 1, 1])));
        assert_eq!(dhcp4_option("bootfile-name", "pxelinux.0"), Ok((67, b"pxelinux.0".to_vec())));
        assert_eq!(
            dhcp4_option("classless-static-route", "10.9.0.0/16,10.0.0.5"),
            Ok((121, vec![16, 10, 9, 10, 0, 0, 5]))
        );
        assert_eq!(dhcp4_option("150", "10.0.0.1"), Ok((150, vec![10, 0, 0, 1])), "a number: addresses");
        assert_eq!(dhcp4_option("224", "hello"), Ok((224, b"hello".to_vec())), "a number: text");
        assert!(dhcp4_option("mtu", "big").is_err());
        assert!(dhcp4_option("mtu", "70000").is_err());
        assert!(dhcp4_option("router", "fe80::1").is_err());
        assert!(dhcp4_option("no-such-option", "1").is_err());
        assert!(dhcp4_option("0", "1").is_err());
        assert!(dhcp4_option("53", "1").is_err(), "the message type is the server's");
        assert!(dhcp4_option("option:54", "10.0.0.1").is_err(), "so is its identifier");
        assert!(dhcp6_option("2", "x").is_err() && dhcp6_option("13", "x").is_err());
        assert!(dhcp4_option("domain-name", &"x".repeat(300)).is_err());
        assert_eq!(dhcp6_option("dns-server", "2001:db8::53"), Ok((23, v6("2001:db8::53").unwrap().0.to_vec())));
        assert_eq!(dhcp6_option("domain-search", "example.org"), Ok((24, b"\x07example\x03org\x00".to_vec())));
        assert!(dhcp6_option("dns-server", "10.0.0.1").is_err());
    }
}
