//! The local controller's compiler: the model, as one node sees it, into the pipeline's tables.
//!
//! Selective, as Dragonflow's topology distribution: a node compiles the networks that have a port bound
//! to it, the routers attached to those, and the networks on the other side of those routers (reachable
//! in one routed hop); nothing else of the cloud. In them:
//! - a port bound here and plumbed (the caller maps it to a dataplane port) is a local port: its MAC and
//!   addresses are switched to it and answered for, its port security checked;
//! - a port bound to another node is a remote port: its MAC goes to that node (the tunnel stage), its
//!   addresses are answered for by the ARP/ND responders;
//! - a router interface port is the router's interface on its network (gateway address, MAC), and the
//!   router's extra routes are its routes.
//!
//! Keys: networks, ports, nodes and routers are known to the tables by the keys of [`crate::keys`], given
//! by a [`Keys`] that lives as long as the controller, so that two compilations agree.

use std::collections::{HashMap, HashSet};

use pipelines::routing::RouterIface;
use pipelines::tables::{IpNet, PortEntry, RemotePort, Tables, TablesBuilder};
use pipelines::wire::Mac;

use crate::cidr::Cidr;
use crate::keys::{Keys, LportKey, NetworkKey};
use crate::model::{FixedIp, Network, Port, Router, Subnet, ROUTER_INTERFACE};

/// The model objects a node compiles from.
#[derive(Debug, Clone, Default)]
pub struct Model {
    pub networks: HashMap<String, Network>,
    pub subnets: HashMap<String, Subnet>,
    pub ports: HashMap<String, Port>,
    pub routers: HashMap<String, Router>,
}

/// What a compilation holds, for the caller to log or check.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub networks: usize,
    pub local_ports: usize,
    pub remote_ports: usize,
    pub routers: usize,
}

pub(crate) fn host_net(ip: &str) -> Option<IpNet> {
    Some(Cidr::parse(ip)?.to_host().into())
}

/// A router interface's address: the interface port `p`'s fixed IP `f` with the prefix length of its
/// subnet. `None` if the subnet is unknown or on another network than the port (Neutron never makes one;
/// a node holds the subnets of its networks only).
pub(crate) fn iface_ip(subnets: &HashMap<String, Subnet>, p: &Port, f: &FixedIp) -> Option<IpNet> {
    let cidr = &subnets.get(&f.subnet_id).filter(|s| s.network_id == p.network_id)?.cidr;
    let (a, subnet) = (Cidr::parse(&f.ip_address)?, Cidr::parse(cidr)?);
    if a.is_v6() != subnet.is_v6() {
        return None;
    }
    Some(a.with_prefix_len(subnet.prefix_len())?.into())
}

/// The entry of a port bound and plumbed here: what it may send from (its MAC with each fixed IP, and
/// its allowed address pairs), its security and state (the network's where the port does not say).
pub(crate) fn local_entry(
    p: &Port,
    net: &Network,
    mac: Mac,
    ips: &[IpNet],
    lport: LportKey,
    network: NetworkKey,
) -> PortEntry {
    let mut allowed: Vec<(Mac, IpNet)> = ips.iter().map(|ip| (mac, *ip)).collect();
    for pair in &p.allowed_address_pairs {
        let pair_mac = pair.mac_address.as_deref().and_then(Mac::parse).unwrap_or(mac);
        if let Some(net) = Cidr::parse(&pair.ip_address) {
            allowed.push((pair_mac, net.into()));
        }
    }
    let security = p.port_security_enabled.unwrap_or(net.port_security_enabled);
    let up = p.admin_state_up && net.admin_state_up;
    PortEntry { lport: lport.into(), network: network.into(), mac, up, security, allowed }
}

/// The networks node `chassis` needs: those with a port bound to it, and one routed hop from them.
pub fn networks_needed(m: &Model, chassis: &str) -> HashSet<String> {
    let mut nets: HashSet<String> =
        m.ports.values().filter(|p| p.host_id == chassis).map(|p| p.network_id.clone()).collect();
    let routers: HashSet<&str> = m
        .ports
        .values()
        .filter(|p| p.device_owner == ROUTER_INTERFACE && nets.contains(&p.network_id))
        .map(|p| p.device_id.as_str())
        .collect();
    for p in m.ports.values().filter(|p| p.device_owner == ROUTER_INTERFACE && routers.contains(p.device_id.as_str())) {
        nets.insert(p.network_id.clone());
    }
    nets
}

/// Compiles what `chassis` needs of `m`; `local(port)` is the dataplane index a port bound here is
/// plumbed on (`None`: not plumbed yet, left out).
pub fn compile(m: &Model, chassis: &str, keys: &mut Keys, local: &dyn Fn(&Port) -> Option<u16>) -> (Tables, Summary) {
    let nets = networks_needed(m, chassis);
    let mut b = TablesBuilder::new();
    let mut sum = Summary { networks: nets.len(), ..Summary::default() };
    // Ports in id order, so that keys and tables do not depend on the hash map's order.
    let mut ports: Vec<&Port> = m.ports.values().filter(|p| nets.contains(&p.network_id)).collect();
    ports.sort_by(|a, b| a.id.cmp(&b.id));
    let mut ifaces: HashMap<&str, Vec<RouterIface>> = HashMap::new();
    for p in ports {
        let Some(net) = m.networks.get(&p.network_id) else { continue };
        let Some(mac) = Mac::parse(&p.mac_address) else { continue };
        let network = keys.network(&net.id);
        let ips: Vec<IpNet> = p.fixed_ips.iter().filter_map(|f| host_net(&f.ip_address)).collect();
        if p.device_owner == ROUTER_INTERFACE {
            for f in &p.fixed_ips {
                let Some(ip) = iface_ip(&m.subnets, p, f) else { continue };
                ifaces.entry(p.device_id.as_str()).or_default().push(RouterIface { network: network.into(), mac, ip });
            }
            continue;
        }
        let lport = keys.lport(&p.id);
        if p.host_id == chassis {
            let Some(index) = local(p) else { continue };
            b.local_port(index, local_entry(p, net, mac, &ips, lport, network));
            sum.local_ports += 1;
        } else if !p.host_id.is_empty() {
            let chassis = keys.chassis(&p.host_id);
            b.remote_port(network.into(), mac, &ips, RemotePort { lport: lport.into(), chassis: chassis.into() });
            sum.remote_ports += 1;
        }
    }
    let mut routers: Vec<&Router> = m.routers.values().filter(|r| ifaces.contains_key(r.id.as_str())).collect();
    routers.sort_by(|a, b| a.id.cmp(&b.id));
    for r in routers {
        let routes: Vec<(IpNet, IpNet)> = r
            .routes
            .iter()
            .filter_map(|x| Some((Cidr::parse(&x.destination)?.into(), host_net(&x.nexthop)?)))
            .collect();
        let key = keys.router(&r.id);
        b.router(key.into(), &ifaces[r.id.as_str()], &routes);
        sum.routers += 1;
    }
    (b.build(), sum)
}
