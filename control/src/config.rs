//! The static topology of the `run` role's configuration file: its `[[port]]` bindings and `[[router]]`s,
//! which [`crate::static_topology`] compiles into tables, checked here so that the binary, the tests and
//! the benchmarks see the same rules. The rest of that file (`[dataplane]`, `[log]`) is the binary's;
//! unknown keys are errors there, so a typo never passes silently. Addresses parse with
//! [`crate::cidr::Cidr`], as the API's do.

use std::path::Path;

use pipelines::routing::RouterIface;
use pipelines::tables::IpNet;
use pipelines::tunnel::{Encap, Segment};
use pipelines::wire::{Ipv4Addr, Mac};
use serde::{Deserialize, Serialize};

use crate::cidr::Cidr;

/// The `[[port]]` and `[[router]]` arrays of a configuration file; [`StaticTopology::load`] reads them
/// and leaves the file's other sections to their owner (the `dragonflow` binary parses and checks the
/// whole file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct StaticTopology {
    /// Static port bindings for `mode = "pipeline"`.
    #[serde(rename = "port")]
    pub ports: Vec<StaticPort>,
    /// Static routers for `mode = "pipeline"`.
    #[serde(rename = "router")]
    pub routers: Vec<StaticRouter>,
    /// Static tunnels for `mode = "pipeline"`.
    pub tunnels: StaticTunnels,
    /// Static DHCP and router advertisements for `mode = "pipeline"`.
    pub services: StaticServices,
    /// Security groups of the static ports.
    #[serde(rename = "security_group")]
    pub security_groups: Vec<StaticSecurityGroup>,
}

/// `[[security_group]]`: a security group the static ports may name in their `security_groups`, with
/// Neutron's rule attributes (a rule's `remote_group` names another group of the file). The node roles
/// compile the same way from the DB (`compile::security_groups`).
///
/// ```toml
/// [[security_group]]
/// name = "web"
/// rules = [
///   { direction = "egress" },
///   { direction = "ingress", protocol = "tcp", port_range_min = 80, port_range_max = 80 },
///   { direction = "ingress", ethertype = "IPv6", protocol = "icmp", remote_group = "web" },
/// ]
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticSecurityGroup {
    pub name: String,
    #[serde(default = "yes")]
    pub stateful: bool,
    #[serde(default)]
    pub rules: Vec<StaticSgRule>,
}

/// One rule of a `[[security_group]]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticSgRule {
    pub direction: crate::model::Direction,
    #[serde(default = "ipv4")]
    pub ethertype: crate::model::EtherType,
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default)]
    pub port_range_min: Option<u16>,
    #[serde(default)]
    pub port_range_max: Option<u16>,
    #[serde(default)]
    pub remote_ip_prefix: Option<String>,
    #[serde(default)]
    pub remote_group: Option<String>,
}

fn ipv4() -> crate::model::EtherType {
    crate::model::EtherType::IPv4
}

/// `[services]`: the subnets of the static networks, with Neutron's attribute names, and the DHCP the
/// switch serves on them (what the node roles compile from the DB: `compile::services`), for `dragonflow
/// run`'s golden tests and benchmarks. A subnet with a `dhcp_server` (the network's DHCP port: its MAC
/// and its address on the subnet) has DHCP; a router interface (`[[router]]`) in an IPv6 subnet with an
/// `ipv6_ra_mode` advertises it.
///
/// ```toml
/// [services]
/// lease_time = 86400
/// dns_domain = "openstacklocal"
///
/// [[services.subnets]]
/// network = 1
/// cidr = "10.0.0.0/24"
/// gateway_ip = "10.0.0.254"
/// dns_nameservers = ["10.0.0.53"]
/// dhcp_server = { mac = "fa:16:3e:00:00:dd", ip = "10.0.0.250" }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StaticServices {
    pub lease_time: u32,
    pub dns_domain: String,
    pub subnets: Vec<StaticSubnet>,
}

impl Default for StaticServices {
    fn default() -> Self {
        let d = crate::compile::ServicesConfig::default();
        StaticServices { lease_time: d.lease_secs, dns_domain: d.dns_domain, subnets: Vec::new() }
    }
}

/// A subnet of `[services]`: its network key, then Neutron's subnet attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticSubnet {
    pub network: u32,
    pub cidr: String,
    #[serde(default)]
    pub gateway_ip: Option<String>,
    #[serde(default)]
    pub dns_nameservers: Vec<String>,
    #[serde(default)]
    pub host_routes: Vec<StaticRoute>,
    #[serde(default)]
    pub ipv6_ra_mode: Option<crate::model::Ipv6Mode>,
    #[serde(default)]
    pub ipv6_address_mode: Option<crate::model::Ipv6Mode>,
    /// The network's MTU.
    #[serde(default = "mtu")]
    pub mtu: u32,
    /// The DHCP server on the subnet; none: no DHCP.
    #[serde(default)]
    pub dhcp_server: Option<StaticDhcpServer>,
}

fn mtu() -> u32 {
    1500
}

/// A network's DHCP port: its MAC and its address on the subnet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticDhcpServer {
    pub mac: String,
    pub ip: String,
}

/// `[tunnels]`: this node's underlay and, statically, the other nodes, the networks' segments and the
/// ports on other nodes (what the local controller compiles from the DB in the node roles): the
/// benchmarks' encapsulation and decapsulation.
///
/// ```toml
/// [tunnels]
/// underlay = { port = "net_null0", mac = "02:00:00:00:00:01", ip = "192.168.100.1" }
/// chassis = [{ key = 2, ip = "192.168.100.2", mac = "02:00:00:00:00:02" }]
/// segments = [{ network = 1, type = "vxlan", id = 100 }]
/// remote_ports = [{ mac = "fa:16:3e:00:00:02", network = 1, chassis = 2 }]
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct StaticTunnels {
    pub underlay: Option<StaticUnderlay>,
    pub chassis: Vec<StaticChassis>,
    pub segments: Vec<StaticSegment>,
    pub remote_ports: Vec<StaticRemotePort>,
}

/// The underlay port (name or index), its MAC and tunnel endpoint address; DF on the outer header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticUnderlay {
    pub port: String,
    pub mac: String,
    pub ip: String,
    #[serde(default = "yes")]
    pub dont_fragment: bool,
}

/// Another node: its key, tunnel endpoint and the MAC of the next hop toward it (static, as OVS's
/// `tnl/arp/set`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticChassis {
    pub key: u32,
    pub ip: String,
    pub mac: String,
}

/// A network's segment on the wire: `vxlan`, `geneve` or `gre`, and its VNI or key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticSegment {
    pub network: u32,
    #[serde(rename = "type")]
    pub kind: String,
    pub id: u32,
}

/// A port on another node: its MAC and addresses in its network, and its chassis' key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticRemotePort {
    pub mac: String,
    pub network: u32,
    pub chassis: u32,
    #[serde(default)]
    pub ips: Vec<String>,
}

/// `[[router]]`: a distributed router joining networks, by configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticRouter {
    pub key: u32,
    pub interfaces: Vec<StaticRouterIface>,
    #[serde(default)]
    pub routes: Vec<StaticRoute>,
}

/// One interface of a `[[router]]`: its network, MAC and gateway address with the subnet's prefix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticRouterIface {
    pub network: u32,
    pub mac: String,
    /// `10.0.0.254/24`, `2001:db8::fe/64`.
    pub ip: String,
}

/// An extra route of a `[[router]]` (Neutron's `routes`: destination and nexthop).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticRoute {
    pub destination: String,
    pub nexthop: String,
}

/// `[[port]]`: a dataplane port bound to a logical port, by configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticPort {
    /// The dataplane port: its DPDK name (`net_tap0`) or index.
    pub name: String,
    /// The VM's MAC (`fa:16:3e:00:00:01`).
    pub mac: String,
    /// Network key: ports of one network switch to each other, never to another network's.
    pub network: u32,
    /// Addresses the port owns or may send from: hosts (`10.0.0.1`, `2001:db8::1`) or prefixes.
    #[serde(default)]
    pub ips: Vec<String>,
    #[serde(default = "yes")]
    pub port_security: bool,
    #[serde(default = "yes")]
    pub admin_state_up: bool,
    /// Its security groups (`[[security_group]]` names). Absent: not filtered; empty: nothing allowed
    /// (Neutron's port with port security and no group).
    #[serde(default)]
    pub security_groups: Option<Vec<String>>,
}

fn yes() -> bool {
    true
}

/// A configuration that cannot be used, and why.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: {source}")]
    Parse { path: String, source: toml::de::Error },
    #[error("port {port:?}: {field} = {value:?}: {why}")]
    InvalidPort { port: String, field: &'static str, value: String, why: &'static str },
    #[error("[tunnels] {what}: {value:?}: {why}")]
    InvalidTunnel { what: &'static str, value: String, why: &'static str },
    #[error("[services] {what}: {value:?}: {why}")]
    InvalidService { what: &'static str, value: String, why: &'static str },
}

impl StaticTopology {
    /// The `[[port]]` and `[[router]]` of the file at `path`, checked.
    pub fn load(path: &Path) -> Result<StaticTopology, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
        Self::parse(&text, &path.display().to_string())
    }

    pub fn from_toml_str(text: &str) -> Result<StaticTopology, ConfigError> {
        Self::parse(text, "<config>")
    }

    fn parse(text: &str, path: &str) -> Result<StaticTopology, ConfigError> {
        let t: StaticTopology =
            toml::from_str(text).map_err(|source| ConfigError::Parse { path: path.to_owned(), source })?;
        t.validate()?;
        Ok(t)
    }

    /// Checks every port's, router's, tunnel's and subnet's addresses.
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate(&self.ports, &self.routers)?;
        self.tunnels.parse()?;
        self.services.validate()
    }
}

/// Checks every port's and router's addresses: the rule of [`StaticTopology::validate`], for a file whose
/// owner holds the two arrays in its own struct (the `run` role's whole file).
pub fn validate(ports: &[StaticPort], routers: &[StaticRouter]) -> Result<(), ConfigError> {
    for p in ports {
        p.parse()?;
    }
    for r in routers {
        r.parse()?;
    }
    Ok(())
}

impl StaticPort {
    /// The port's MAC and addresses, checked.
    pub fn parse(&self) -> Result<(Mac, Vec<IpNet>), ConfigError> {
        let bad = |field, value: &str, why| ConfigError::InvalidPort {
            port: self.name.clone(),
            field,
            value: value.to_owned(),
            why,
        };
        let mac =
            Mac::parse(&self.mac).filter(Mac::is_unicast).ok_or_else(|| bad("mac", &self.mac, "not a unicast MAC"))?;
        let ips = self
            .ips
            .iter()
            .map(|s| Cidr::parse(s).map(IpNet::from).ok_or_else(|| bad("ips", s, "not an IP address or prefix")))
            .collect::<Result<_, _>>()?;
        Ok((mac, ips))
    }
}

impl StaticServices {
    /// Checks each subnet's prefix, addresses and DHCP server (the parts the compilation would otherwise
    /// leave out silently).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |what, value: &str, why| ConfigError::InvalidService { what, value: value.to_owned(), why };
        if self.lease_time < 10 {
            return Err(bad("lease_time", &self.lease_time.to_string(), "at least 10 s"));
        }
        for s in &self.subnets {
            let c = Cidr::parse_network(&s.cidr).ok_or_else(|| bad("cidr", &s.cidr, "not a network prefix"))?;
            let in_subnet =
                |a: &str| Cidr::parse(a).is_some_and(|a| a.prefix_len() == a.width() && c.contains(a.addr()));
            for a in s.gateway_ip.iter().chain(s.dhcp_server.as_ref().map(|d| &d.ip)) {
                if !in_subnet(a) {
                    return Err(bad("address", a, "not an address of the subnet"));
                }
            }
            if let Some(d) = &s.dhcp_server {
                Mac::parse(&d.mac)
                    .filter(Mac::is_unicast)
                    .ok_or_else(|| bad("dhcp_server mac", &d.mac, "not a unicast MAC"))?;
            }
            for d in &s.dns_nameservers {
                d.parse::<std::net::IpAddr>().map_err(|_| bad("dns_nameservers", d, "not an IP address"))?;
            }
            for r in &s.host_routes {
                let ok = Cidr::parse_network(&r.destination).is_some_and(|d| d.is_v6() == c.is_v6())
                    && Cidr::parse(&r.nexthop).is_some_and(|h| h.is_v6() == c.is_v6());
                if !ok {
                    return Err(bad("host_routes", &r.destination, "not a prefix and next hop of the subnet's family"));
                }
            }
            if (s.ipv6_ra_mode.is_some() || s.ipv6_address_mode.is_some()) && !c.is_v6() {
                return Err(bad("ipv6 mode", &s.cidr, "on an IPv4 subnet"));
            }
        }
        Ok(())
    }
}

/// [`StaticTunnels`], checked: the underlay (port name, MAC, address), the chassis (key, endpoint, next
/// hop's MAC), the segments, the remote ports (MAC, network, chassis, addresses).
#[derive(Debug, Clone)]
pub struct ParsedTunnels {
    pub underlay: Option<(String, Mac, Ipv4Addr, bool)>,
    pub chassis: Vec<(u32, Ipv4Addr, Mac)>,
    pub segments: Vec<(u32, Segment)>,
    pub remote_ports: Vec<(Mac, u32, u32, Vec<IpNet>)>,
}

impl StaticTunnels {
    pub fn parse(&self) -> Result<ParsedTunnels, ConfigError> {
        let bad = |what, value: &str, why| ConfigError::InvalidTunnel { what, value: value.to_owned(), why };
        let mac =
            |what, s: &str| Mac::parse(s).filter(Mac::is_unicast).ok_or_else(|| bad(what, s, "not a unicast MAC"));
        let ip = |what, s: &str| {
            s.parse::<std::net::Ipv4Addr>().map(Ipv4Addr::from).map_err(|_| bad(what, s, "not an IPv4 address"))
        };
        let underlay = match &self.underlay {
            Some(u) => Some((u.port.clone(), mac("underlay mac", &u.mac)?, ip("underlay ip", &u.ip)?, u.dont_fragment)),
            None => None,
        };
        let chassis = self
            .chassis
            .iter()
            .map(|c| Ok((c.key, ip("chassis ip", &c.ip)?, mac("chassis mac", &c.mac)?)))
            .collect::<Result<_, ConfigError>>()?;
        let segments = self
            .segments
            .iter()
            .map(|s| {
                let encap = match s.kind.as_str() {
                    "vxlan" => Encap::Vxlan,
                    "geneve" => Encap::Geneve,
                    "gre" => Encap::Gre,
                    _ => return Err(bad("segment type", &s.kind, "not vxlan, geneve or gre")),
                };
                if s.id > encap.max_id() {
                    return Err(bad("segment id", &s.id.to_string(), "out of the encapsulation's range"));
                }
                Ok((s.network, Segment { encap, id: s.id }))
            })
            .collect::<Result<_, ConfigError>>()?;
        let remote_ports = self
            .remote_ports
            .iter()
            .map(|r| {
                let ips = r
                    .ips
                    .iter()
                    .map(|s| Cidr::parse(s).map(IpNet::from).ok_or_else(|| bad("remote port ips", s, "not an address")))
                    .collect::<Result<_, ConfigError>>()?;
                Ok((mac("remote port mac", &r.mac)?, r.network, r.chassis, ips))
            })
            .collect::<Result<_, ConfigError>>()?;
        Ok(ParsedTunnels { underlay, chassis, segments, remote_ports })
    }
}

impl StaticRouter {
    /// The router's interfaces and extra routes, checked.
    #[allow(clippy::type_complexity)]
    pub fn parse(&self) -> Result<(Vec<RouterIface>, Vec<(IpNet, IpNet)>), ConfigError> {
        let bad = |field, value: &str, why| ConfigError::InvalidPort {
            port: format!("router {}", self.key),
            field,
            value: value.to_owned(),
            why,
        };
        let ifaces = self
            .interfaces
            .iter()
            .map(|i| {
                let mac = Mac::parse(&i.mac)
                    .filter(Mac::is_unicast)
                    .ok_or_else(|| bad("mac", &i.mac, "not a unicast MAC"))?;
                let ip = Cidr::parse(&i.ip).ok_or_else(|| bad("ip", &i.ip, "not an address with a prefix length"))?;
                Ok(RouterIface { network: i.network, mac, ip: ip.into() })
            })
            .collect::<Result<_, ConfigError>>()?;
        let routes = self
            .routes
            .iter()
            .map(|r| {
                let d =
                    Cidr::parse(&r.destination).ok_or_else(|| bad("destination", &r.destination, "not a prefix"))?;
                let n = Cidr::parse(&r.nexthop).ok_or_else(|| bad("nexthop", &r.nexthop, "not an address"))?;
                Ok((d.into(), n.into()))
            })
            .collect::<Result<_, ConfigError>>()?;
        Ok((ifaces, routes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_ports_parse_and_bad_ones_are_refused() {
        let c = StaticTopology::from_toml_str(
            r#"
            [dataplane]
            mode = "pipeline"
            [[port]]
            name = "net_tap0"
            mac = "fa:16:3e:00:00:01"
            network = 1
            ips = ["10.0.0.1", "10.0.0.0/24", "2001:db8::1"]
            [[port]]
            name = "1"
            mac = "fa:16:3e:00:00:02"
            network = 1
            port_security = false
            "#,
        )
        .unwrap();
        let (mac, ips) = c.ports[0].parse().unwrap();
        assert_eq!(mac.to_string(), "fa:16:3e:00:00:01");
        assert_eq!(ips.len(), 3);
        assert!(ips[1].contains_v4(pipelines::wire::Ipv4Addr::new(10, 0, 0, 200)));
        assert!(!c.ports[1].port_security && c.ports[1].admin_state_up);
        for (field, bad) in [("mac", "mac = \"ff:ff:ff:ff:ff:ff\""), ("ips", "ips = [\"10.0.0.0/33\"]")] {
            let text = format!(
                "[[port]]\nname = \"x\"\nnetwork = 1\n{}\n{}",
                if field == "mac" { bad } else { "mac = \"fa:16:3e:00:00:01\"" },
                if field == "ips" { bad } else { "" }
            );
            let e = StaticTopology::from_toml_str(&text).unwrap_err().to_string();
            assert!(e.contains(field), "{e}");
        }
        let e = StaticTopology::from_toml_str("[[port]]\nname = \"x\"\nnetwork = 1\nmacc = \"\"").unwrap_err();
        assert!(e.to_string().contains("unknown field `macc`"), "{e}");
    }
}
