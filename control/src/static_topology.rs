//! Tables from the configuration file's `[[port]]` and `[[router]]` sections, for `dragonflow run`: the
//! switch alone, without DB or API (the benchmarks' and the golden pcap tests' mode; SIGHUP compiles
//! the file again). The roles with a DB (`node`, `all-in-one`) bind ports from the DB through the local
//! controller ([`crate::controller`]) instead. A `[[port]]` names its dataplane port by name or index;
//! its logical port key is that index + 1; its `ips` are what it may send from (an address without a
//! length is a host: [`crate::cidr::Cidr::parse`]).
//!
//! ```
//! let cfg = control::config::StaticTopology::from_toml_str(r#"
//!     [[port]]
//!     name = "net_tap1"
//!     mac = "fa:16:3e:00:00:01"
//!     network = 1
//!     ips = ["10.0.0.1"]
//! "#).unwrap();
//! let names = ["net_tap0".to_owned(), "net_tap1".to_owned()];
//! let tables = control::static_topology::compile(&cfg.ports, &cfg.routers, &names).unwrap();
//! assert_eq!(tables.port(1).unwrap().lport, 2);
//! assert!(tables.port(0).is_none(), "net_tap0 is bound to nothing");
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use pipelines::tables::{IpNet, PortEntry, RemotePort, Tables, TablesBuilder};
use pipelines::tunnel::{Chassis, Encap, NextHops, Underlay};
use pipelines::wire::{Ipv6Addr, Mac};

use crate::cidr::Cidr;
use crate::compile::{port_services, port_sg, protocol, Model, ServicedNetwork, ServicesConfig};
use crate::config::{
    ConfigError, StaticPort, StaticRouter, StaticSecurityGroup, StaticServices, StaticTopology, StaticTunnels,
};
use crate::model::{FixedIp, Port, Route, SecurityGroupRule, Standard, Subnet};

/// Tables for `ports` and `routers`, where `names` are the dataplane's port names in index order (a
/// `[[port]]` may name its port by name or by index). Logical port keys are the dataplane index + 1.
pub fn compile(ports: &[StaticPort], routers: &[StaticRouter], names: &[String]) -> Result<Tables, ConfigError> {
    let topology = StaticTopology { ports: ports.to_vec(), routers: routers.to_vec(), ..Default::default() };
    compile_over(None, &topology, names)
}

/// [`compile`], reusing the routers of `prev` (the tables in use) where their interfaces are the same:
/// their routes are edited by difference ([`TablesBuilder::reusing_routers`]), not built again.
pub fn compile_over(prev: Option<&Tables>, topology: &StaticTopology, names: &[String]) -> Result<Tables, ConfigError> {
    let StaticTopology { ports, routers, tunnels, services, security_groups } = topology;
    let mut b = prev.map_or_else(TablesBuilder::new, TablesBuilder::reusing_routers);
    put_tunnels(&mut b, tunnels, names)?;
    let groups = groups_model(ports, security_groups)?;
    for r in routers {
        let (ifaces, routes) = r.parse()?;
        b.router(r.key, &ifaces, routes);
        // An interface on an IPv6 subnet answers for its link-local address too (the source of its router
        // advertisements), as in the node roles (`compile::fragment`).
        for i in ifaces.iter().filter(|i| matches!(i.ip, IpNet::V6(..))) {
            b.neighbor(i.network, IpNet::host_v6(Ipv6Addr::link_local_from_mac(i.mac)), i.mac);
        }
    }
    for p in ports {
        let index = index_of(&p.name, names)?;
        let (mac, ips) = p.parse()?;
        b.local_port(
            index as u16,
            PortEntry {
                lport: index as u32 + 1,
                network: p.network,
                mac,
                up: p.admin_state_up,
                security: p.port_security,
                allowed: ips.into_iter().map(|ip| (mac, ip)).collect(),
                sg: p.security_groups.as_ref().and_then(|g| {
                    let port = Port { security_groups: g.clone(), ..groups.ports[&p.name].clone() };
                    port_sg(&groups, &|_| true, &port, p.port_security)
                }),
            },
        );
    }
    put_services(&mut b, ports, routers, services, names)?;
    Ok(b.build())
}

/// The static ports and `[[security_group]]`s as a model for `compile::port_sg`: each port (by its
/// `name`) with its addresses and groups, each group with its rules (a rule's `remote_group` by name).
fn groups_model(ports: &[StaticPort], groups: &[StaticSecurityGroup]) -> Result<Model, ConfigError> {
    let mut m = Model::default();
    let invalid = |group: &str, value: &str, why| ConfigError::InvalidPort {
        port: format!("security_group {group}"),
        field: "rules",
        value: value.to_owned(),
        why,
    };
    for (i, g) in groups.iter().enumerate() {
        if groups[..i].iter().any(|o| o.name == g.name) {
            return Err(invalid(&g.name, &g.name, "a second [[security_group]] of that name"));
        }
        let group = serde_json::json!({"id": g.name, "name": g.name, "stateful": g.stateful});
        let group = serde_json::from_value(group).map_err(|_| invalid(&g.name, &g.name, "not a group"))?;
        m.security_groups.insert(g.name.clone(), group);
        for (i, r) in g.rules.iter().enumerate() {
            if let Some(other) = r.remote_group.as_ref().filter(|o| !groups.iter().any(|x| &x.name == *o)) {
                return Err(invalid(&g.name, other, "remote_group names no [[security_group]]"));
            }
            let v6 = r.ethertype == crate::model::EtherType::IPv6;
            let Some(proto) = protocol(r.protocol.as_deref(), v6) else {
                return Err(invalid(&g.name, r.protocol.as_deref().unwrap_or(""), "not a protocol"));
            };
            // What the API refuses would widen the rule here: a port range without a protocol that has
            // ports or types, a range upside down, an ICMP code without a type, a prefix that does not parse.
            let ranged = r.port_range_min.is_some() || r.port_range_max.is_some();
            let icmp = matches!(proto, Some(1 | 58));
            if ranged && !icmp && !proto.is_some_and(pipelines::acl::has_ports) {
                return Err(invalid(
                    &g.name,
                    &format!("{:?}", r.protocol),
                    "a port range needs tcp, udp, sctp, dccp, udplite or icmp",
                ));
            }
            if icmp && r.port_range_min.is_none() && r.port_range_max.is_some() {
                return Err(invalid(&g.name, "port_range_max", "an ICMP code needs a type (port_range_min)"));
            }
            if !icmp && r.port_range_min.zip(r.port_range_max).is_some_and(|(a, b)| a > b) {
                return Err(invalid(&g.name, "port_range_min", "above port_range_max"));
            }
            if r.remote_ip_prefix.is_some() && r.remote_group.is_some() {
                return Err(invalid(&g.name, "remote_ip_prefix", "a rule takes a prefix or a remote group, not both"));
            }
            if let Some(prefix) =
                r.remote_ip_prefix.as_deref().filter(|p| Cidr::parse(p).is_none_or(|c| c.is_v6() != v6))
            {
                return Err(invalid(&g.name, prefix, "not a prefix of the rule's ethertype"));
            }
            let rule = SecurityGroupRule {
                id: format!("{}-{i}", g.name),
                security_group_id: g.name.clone(),
                direction: r.direction,
                ethertype: r.ethertype,
                protocol: r.protocol.clone(),
                port_range_min: r.port_range_min,
                port_range_max: r.port_range_max,
                remote_ip_prefix: r.remote_ip_prefix.clone(),
                remote_group_id: r.remote_group.clone(),
                ..serde_json::from_value(
                    serde_json::json!({"id": "", "security_group_id": "", "direction": "ingress", "ethertype": "IPv4"}),
                )
                .expect("a rule")
            };
            m.security_group_rules.insert(rule.id.clone(), rule);
        }
    }
    for p in ports {
        for g in p.security_groups.iter().flatten() {
            if !m.security_groups.contains_key(g) {
                return Err(ConfigError::InvalidPort {
                    port: p.name.clone(),
                    field: "security_groups",
                    value: g.clone(),
                    why: "names no [[security_group]]",
                });
            }
        }
        let mut port = Port::new(p.name.clone(), p.network.to_string());
        port.fixed_ips = p.ips.iter().map(|ip| FixedIp { subnet_id: String::new(), ip_address: ip.clone() }).collect();
        port.security_groups = p.security_groups.clone().unwrap_or_default();
        m.ports.insert(p.name.clone(), port);
    }
    Ok(m)
}

/// `[services]` into `b`: each port's DHCP and router advertisements, by the node roles' rules
/// (`compile::services`), from its network's subnets, DHCP server (one per network: the subnets'
/// `dhcp_server`s, one MAC) and the `[[router]]` interfaces on it.
fn put_services(
    b: &mut TablesBuilder,
    ports: &[StaticPort],
    routers: &[StaticRouter],
    services: &StaticServices,
    names: &[String],
) -> Result<(), ConfigError> {
    if services.subnets.is_empty() {
        return Ok(());
    }
    let cfg = ServicesConfig { lease_secs: services.lease_time, dns_domain: services.dns_domain.clone() };
    // The DHCP servers' addresses are answered for (a client renews by unicast), as the node roles do.
    for s in &services.subnets {
        let Some(d) = &s.dhcp_server else { continue };
        if let (Some(mac), Some(ip)) = (Mac::parse(&d.mac), Cidr::parse(&d.ip)) {
            b.neighbor(s.network, ip.to_host().into(), mac);
        }
    }
    let subnets: Vec<Subnet> = services
        .subnets
        .iter()
        .enumerate()
        .map(|(i, s)| Subnet {
            standard: Standard::default(),
            id: format!("s{i:04}"),
            name: String::new(),
            project_id: String::new(),
            network_id: s.network.to_string(),
            ip_version: if s.cidr.contains(':') { 6 } else { 4 },
            cidr: s.cidr.clone(),
            gateway_ip: s.gateway_ip.clone(),
            allocation_pools: Vec::new(),
            dns_nameservers: s.dns_nameservers.clone(),
            host_routes: s
                .host_routes
                .iter()
                .map(|r| Route { destination: r.destination.clone(), nexthop: r.nexthop.clone() })
                .collect(),
            enable_dhcp: s.dhcp_server.is_some(),
            ipv6_ra_mode: s.ipv6_ra_mode,
            ipv6_address_mode: s.ipv6_address_mode,
            subnetpool_id: None,
            revision_number: 0,
        })
        .collect();
    // A port of network `n` with these addresses (each on the subnet of `n` that holds it).
    let port = |id: String, n: u32, mac: &str, ips: &mut dyn Iterator<Item = &str>| {
        let mut p = Port::new(id, n.to_string());
        p.mac_address = mac.to_owned();
        for ip in ips {
            // (Fixed IPs are host addresses; a prefix a port may send from is no address of its own.)
            let Some(a) = Cidr::parse(ip).filter(|a| a.prefix_len() == a.width()) else { continue };
            let on = subnets
                .iter()
                .find(|s| s.network_id == p.network_id && Cidr::parse(&s.cidr).is_some_and(|c| c.contains(a.addr())));
            if let Some(s) = on {
                p.fixed_ips.push(FixedIp { subnet_id: s.id.clone(), ip_address: a.addr().to_string() });
            }
        }
        p
    };
    for sp in ports {
        let index = index_of(&sp.name, names)?;
        let (mac, _) = sp.parse()?;
        let n = sp.network;
        let on: Vec<(&crate::config::StaticSubnet, &Subnet)> =
            services.subnets.iter().zip(&subnets).filter(|(s, _)| s.network == n).collect();
        let servers: Vec<&crate::config::StaticDhcpServer> =
            on.iter().filter_map(|(s, _)| s.dhcp_server.as_ref()).collect();
        if servers.windows(2).any(|w| w[0].mac != w[1].mac) {
            let bad = ConfigError::InvalidService {
                what: "dhcp_server mac",
                value: servers[1].mac.clone(),
                why: "a network's DHCP server has one MAC",
            };
            return Err(bad);
        }
        let dhcp = servers.first().map(|d| {
            let mut ips = on.iter().filter_map(|(s, _)| s.dhcp_server.as_ref().map(|d| d.ip.as_str()));
            port(format!("dhcp-{n}"), n, &d.mac, &mut ips)
        });
        let ifaces: Vec<Port> = routers
            .iter()
            .flat_map(|r| r.interfaces.iter().enumerate().map(move |(i, f)| (r.key, i, f)))
            .filter(|(_, _, f)| f.network == n)
            .map(|(key, i, f)| {
                let ip = f.ip.split('/').next().unwrap_or_default();
                port(format!("router-{key}-{i:04}"), n, &f.mac, &mut std::iter::once(ip))
            })
            .collect();
        let vm = port(format!("port-{index:04}"), n, &sp.mac, &mut sp.ips.iter().map(String::as_str));
        let net = ServicedNetwork {
            subnets: on.iter().map(|(_, s)| *s).collect(),
            dhcp: dhcp.as_ref(),
            ifaces: ifaces.iter().collect(),
            mtu: on.first().map_or(1500, |(s, _)| s.mtu),
        };
        if let Some(svc) = port_services(&vm, &net, &cfg, index as u32 + 1, mac) {
            b.services(index as u16, Some(Arc::new(svc)));
        }
    }
    Ok(())
}

/// The index of the dataplane port named `name` (or numbered so).
fn index_of(name: &str, names: &[String]) -> Result<usize, ConfigError> {
    names.iter().position(|n| n == name).or_else(|| name.parse::<usize>().ok().filter(|&i| i < names.len())).ok_or_else(
        || ConfigError::InvalidPort {
            port: name.to_owned(),
            field: "name",
            value: name.to_owned(),
            why: "no dataplane port has this name or index",
        },
    )
}

/// `[tunnels]` into `b`: the underlay, each chassis with its static next hop, the segments, the remote
/// ports (logical port keys from 100,001 on, apart from the local ones) and, per network, the chassis of
/// its remote ports as its flood list.
fn put_tunnels(b: &mut TablesBuilder, tunnels: &StaticTunnels, names: &[String]) -> Result<(), ConfigError> {
    let t = tunnels.parse()?;
    if let Some((port, mac, ip, dont_fragment)) = t.underlay.clone() {
        let port = index_of(&port, names)? as u16;
        b.underlay(Some(Underlay { port, mac, ip, dont_fragment, ttl: 64 }));
    }
    // Each chassis its own next hop, on the underlay's link.
    b.next_hops(Arc::new(NextHops::new(t.chassis.iter().map(|&(_, ip, mac)| (ip, Some(mac))))));
    for (hop, &(key, ip, _)) in t.chassis.iter().enumerate() {
        b.chassis(key, Chassis { ip, hop: hop as u16, encaps: Encap::ALL });
    }
    for &(network, seg) in &t.segments {
        b.segment(network, seg);
    }
    let mut floods: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    let bad = |what, value: String, why| ConfigError::InvalidTunnel { what, value, why };
    for (_, ip, _) in &t.chassis {
        if t.underlay.as_ref().is_some_and(|u| u.2 == *ip) {
            return Err(bad("chassis ip", ip.to_string(), "this node's own underlay address"));
        }
    }
    for (i, (mac, network, chassis, ips)) in t.remote_ports.iter().enumerate() {
        if !t.chassis.iter().any(|c| c.0 == *chassis) {
            return Err(bad("remote port chassis", chassis.to_string(), "no [tunnels] chassis has this key"));
        }
        if !t.segments.iter().any(|s| s.0 == *network) {
            return Err(bad("remote port network", network.to_string(), "no [tunnels] segment for this network"));
        }
        b.remote_port(*network, *mac, ips, RemotePort { lport: 100_001 + i as u32, chassis: *chassis });
        floods.entry(*network).or_default().push(*chassis);
    }
    for (network, chassis) in floods {
        b.flood_chassis(network, chassis);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tunnels_compile_and_dangling_references_are_refused() {
        let base = r#"
            [tunnels]
            underlay = { port = "net_null0", mac = "02:00:00:00:00:01", ip = "192.168.100.1" }
            chassis = [{ key = 2, ip = "192.168.100.2", mac = "02:00:00:00:00:02" }]
            segments = [{ network = 1, type = "vxlan", id = 100 }]
        "#;
        let names = ["net_pcap0".to_owned(), "net_null0".to_owned()];
        let compile_with = |extra: &str| {
            let c = StaticTopology::from_toml_str(&format!("{base}\n{extra}")).unwrap();
            compile_over(None, &c, &names)
        };
        let t = compile_with(r#"remote_ports = [{ mac = "fa:16:3e:00:00:02", network = 1, chassis = 2 }]"#).unwrap();
        assert_eq!(t.underlay.map(|u| u.port), Some(1));
        assert_eq!(t.flood_chassis(1), [2]);
        assert_eq!(t.hops.mac(t.chassis[&2].hop).map(|m| m.to_string()), Some("02:00:00:00:00:02".into()));
        for (extra, why) in [
            (r#"remote_ports = [{ mac = "fa:16:3e:00:00:02", network = 1, chassis = 3 }]"#, "no [tunnels] chassis"),
            (r#"remote_ports = [{ mac = "fa:16:3e:00:00:02", network = 7, chassis = 2 }]"#, "no [tunnels] segment"),
        ] {
            let e = compile_with(extra).unwrap_err().to_string();
            assert!(e.contains(why), "{e}");
        }
        let e = StaticTopology::from_toml_str(&base.replace("vxlan", "stt")).unwrap_err().to_string();
        assert!(e.contains("not vxlan, geneve or gre"), "{e}");
    }
    use crate::config::StaticTopology;

    #[test]
    fn binds_by_name_or_index() {
        let c = StaticTopology::from_toml_str(
            r#"
            [[port]]
            name = "net_pcap0"
            mac = "fa:16:3e:00:00:01"
            network = 1
            ips = ["10.0.0.0/24"]
            [[port]]
            name = "1"
            mac = "fa:16:3e:00:00:02"
            network = 2
            ips = ["10.2.0.2"]
            [[router]]
            key = 7
            interfaces = [
                { network = 1, mac = "fa:16:3e:00:00:fe", ip = "10.0.0.254/24" },
                { network = 2, mac = "fa:16:3e:00:00:fd", ip = "10.2.0.254/24" },
            ]
            routes = [{ destination = "10.1.0.0/16", nexthop = "10.2.0.2" }]
            "#,
        )
        .unwrap();
        let names = vec!["net_pcap0".to_owned(), "net_null0".to_owned()];
        let t = compile(&c.ports, &c.routers, &names).unwrap();
        let router_mac = pipelines::wire::Mac::parse("fa:16:3e:00:00:fe").unwrap();
        assert_eq!(t.router_for(1, router_mac), Some(7));
        assert_eq!(t.router_for(2, router_mac), None);
        let hop = t.routers[&7].route_v4(pipelines::wire::Ipv4Addr::new(10, 1, 2, 3)).unwrap();
        assert_eq!(hop.iface, 1);
        assert_eq!(t.port(0).unwrap().lport, 1);
        assert_eq!(t.port(1).unwrap().mac.to_string(), "fa:16:3e:00:00:02");
        let e = compile(&c.ports, &c.routers, &names[..1]).unwrap_err().to_string();
        assert!(e.contains("no dataplane port"), "{e}");

        // Compiled again over the tables in use (SIGHUP), with a route changed: the router is edited, and
        // the result is what a compilation from nothing gives.
        let mut changed = c.routers.clone();
        changed[0].routes[0].destination = "10.9.0.0/16".into();
        let changed_topology =
            StaticTopology { ports: c.ports.clone(), routers: changed.clone(), ..Default::default() };
        let over = compile_over(Some(&t), &changed_topology, &names).unwrap();
        assert_eq!(over, compile(&c.ports, &changed, &names).unwrap());
        let to = |t: &Tables, b| t.routers[&7].route_v4(pipelines::wire::Ipv4Addr::new(10, b, 2, 3)).is_some();
        assert!(to(&over, 9) && !to(&over, 1), "the new route replaced the old one");
        assert!(to(&t, 1) && !to(&t, 9), "the tables in use are not edited");
    }

    #[test]
    fn security_groups_filter_the_ports_that_name_them() {
        use pipelines::acl::Query;
        use pipelines::wire::Ipv4Addr;
        let toml = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../benches/sg.toml")).unwrap();
        let c = StaticTopology::from_toml_str(&toml).unwrap();
        let names = vec!["net_pcap0".to_owned(), "net_null0".to_owned()];
        let t = compile_over(None, &c, &names).unwrap();
        let (vm1, vm2) = (t.port(0).unwrap().sg.clone().unwrap(), t.port(1).unwrap().sg.clone().unwrap());
        assert!(vm1.stateful);
        let outside = Ipv4Addr::new(192, 168, 1, 1);
        assert!(vm2.ingress.allows(&Query::udp4(5003, Ipv4Addr::new(10, 0, 0, 7))), "a member");
        assert!(vm2.ingress.allows(&Query::tcp4(22, outside)) && !vm2.ingress.allows(&Query::tcp4(23, outside)));
        assert!(!vm1.ingress.allows(&Query::tcp4(443, outside)) && vm2.ingress.allows(&Query::tcp4(443, outside)));
        assert!(vm1.egress.allows(&Query::tcp4(1, outside)));
        // A port that names no group is not filtered; a group that names no group is refused.
        let mut plain = c.clone();
        plain.ports[0].security_groups = None;
        assert!(compile_over(None, &plain, &names).unwrap().port(0).unwrap().sg.is_none());
        let mut bad = c.clone();
        bad.security_groups[0].rules[0].remote_group = Some("nobody".into());
        let e = compile_over(None, &bad, &names).unwrap_err().to_string();
        assert!(e.contains("remote_group names no [[security_group]]"), "{e}");
        bad.ports[1].security_groups = Some(vec!["nobody".into()]);
        assert!(compile_over(None, &bad, &names).is_err());
        // What would widen a rule is refused: a port range without a protocol that has ports, a second
        // group of one name.
        let mut wide = c.clone();
        wide.security_groups[1].rules[0].protocol = None;
        let e = compile_over(None, &wide, &names).unwrap_err().to_string();
        assert!(e.contains("a port range needs"), "{e}");
        let mut twice = c.clone();
        twice.security_groups.push(c.security_groups[0].clone());
        assert!(compile_over(None, &twice, &names).unwrap_err().to_string().contains("a second"));
    }
}
