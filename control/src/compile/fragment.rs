//! What one port and one router become in the tables: a fragment, built from what the node holds
//! ([`View::port`], [`View::router`]), put into a set of tables and taken out again. The full compilation
//! and the controller both build their tables from these builders; the rules are here, once:
//! - a port bound here and plumbed (the node maps it to a dataplane port) is a local port: what it may
//!   send from (its MAC with each fixed IP, and its allowed address pairs), its security and state (the
//!   network's where the port does not say), its security groups (`security_groups`);
//! - a port bound to another node is a remote port: its MAC goes to that node, its fixed IPs are answered
//!   for;
//! - a router interface port makes no port of its own: its fixed IPs, with their subnet's prefix, are its
//!   router's interfaces on its network, and the router's extra routes are its routes.
//!
//! The tables' side (each fragment's `put`, `take` and `held`, and [`set_neighbor`]) is the one place the
//! keys of [`crate::keys`] become the tables' integers.

use std::collections::{HashMap, HashSet};

use std::sync::Arc;

use pipelines::nat::RouterNat;
use pipelines::routing::{Router, RouterIface};
use pipelines::services::PortServices;
use pipelines::tables::{self, IpNet, PortEntry, PortSg, Tables, TablesBuilder};
use pipelines::wire::{Ipv4Addr, Mac};

use super::index::{self, Index};
use super::security_groups;
use super::services::ServicesConfig;
use super::Model;
use crate::cidr::Cidr;
use crate::keys::{ChassisKey, Keys, LportKey, NetworkKey, RouterKey};
use crate::model::{FixedIp, Port, Subnet, DHCP_OWNER, ROUTER_GATEWAY};

/// What the fragment builders read: the model as the node holds it, its index and network set, the node's
/// name; the keys they give out, and where the node plumbed the ports bound to it (`None`: not plumbed,
/// left out).
pub(crate) struct View<'a> {
    pub(crate) model: &'a Model,
    pub(crate) index: &'a Index,
    pub(crate) needed: &'a HashSet<String>,
    pub(crate) chassis: &'a str,
    pub(crate) keys: &'a mut Keys,
    pub(crate) local: &'a dyn Fn(&Port) -> Option<u16>,
    /// The node's DHCP settings.
    pub(crate) services: &'a ServicesConfig,
    /// The node's bridge mappings (physical network → uplink port): a router's gateway is served where
    /// its external network has an uplink.
    pub(crate) uplinks: &'a std::collections::BTreeMap<String, u16>,
}

/// What one port puts into the tables.
#[derive(Debug)]
pub(crate) enum PortFragment {
    Local(LocalPort),
    Remote(RemotePort),
    /// The network's DHCP port (unbound, `network:dhcp`): its addresses are answered for on every node (a
    /// client renews by unicast to the server), and the slow path answers from it.
    Dhcp(DhcpPort),
}

/// A network's DHCP port: its MAC and addresses.
#[derive(Debug)]
pub(crate) struct DhcpPort {
    network: NetworkKey,
    mac: Mac,
    ips: Vec<IpNet>,
}

/// A port bound here, at dataplane index `index`: its entry.
#[derive(Debug)]
pub(crate) struct LocalPort {
    index: u16,
    lport: LportKey,
    network: NetworkKey,
    mac: Mac,
    up: bool,
    security: bool,
    /// What it may send from: (MAC, address or prefix).
    allowed: Vec<(Mac, IpNet)>,
    /// What the slow path serves on it.
    services: Option<Arc<PortServices>>,
    /// Its security groups, compiled.
    sg: Option<Arc<PortSg>>,
}

/// A port bound to another node.
#[derive(Debug)]
pub(crate) struct RemotePort {
    network: NetworkKey,
    mac: Mac,
    ips: Vec<IpNet>,
    lport: LportKey,
    chassis: ChassisKey,
    /// The chassis' name (`binding:host_id`).
    pub(crate) host: String,
}

/// What one router puts into the tables: its interfaces on the networks the node needs, its extra routes.
#[derive(Debug)]
pub(crate) struct RouterFragment {
    key: RouterKey,
    ifaces: Vec<Iface>,
    /// (destination, next hop).
    routes: std::sync::Arc<[(IpNet, IpNet)]>,
    /// Its NAT, where this node serves its gateway.
    nat: Option<Nat>,
}

/// A router's NAT on its external network, as this node serves it (`pipelines::nat::RouterNat`).
#[derive(Debug)]
struct Nat {
    network: NetworkKey,
    /// The gateway address connections are translated to (`enable_snat`).
    snat: Option<Ipv4Addr>,
    /// (fixed address, floating IP), sorted.
    fips: Vec<(Ipv4Addr, Ipv4Addr)>,
    /// The gateway MAC: the floating IPs are answered for with it.
    mac: Mac,
    /// The node that serves the gateway, when not this one (its key and name).
    redirect: Option<(ChassisKey, String)>,
}

#[derive(Debug)]
struct Iface {
    network: NetworkKey,
    mac: Mac,
    /// The gateway address, with the subnet's prefix length.
    ip: IpNet,
}

/// The link-local address of a router interface's MAC on an IPv6 subnet: the source of its router
/// advertisements, so the hosts' default router; answered for by the ND responder (never routed).
fn link_local(i: &Iface) -> Option<Claim> {
    matches!(i.ip, IpNet::V6(..))
        .then(|| ((i.network, IpNet::host_v6(pipelines::wire::Ipv6Addr::link_local_from_mac(i.mac))), i.mac))
}

/// An ARP/ND entry a fragment answers for: (network, host address) and the MAC.
pub(crate) type Claim = ((NetworkKey, IpNet), Mac);

/// An address as a host prefix (/32, /128).
fn host_net(ip: &str) -> Option<IpNet> {
    Some(Cidr::parse(ip)?.to_host().into())
}

fn host_of(ip: IpNet) -> IpNet {
    match ip {
        IpNet::V4(a, _) => IpNet::host_v4(a),
        IpNet::V6(a, _) => IpNet::host_v6(a),
    }
}

/// A router interface's address: the interface port `p`'s fixed IP `f` with the prefix length of its
/// subnet. `None` if the subnet is unknown or on another network than the port (Neutron never makes one;
/// a node holds the subnets of its networks only).
fn iface_ip(subnets: &HashMap<String, Subnet>, p: &Port, f: &FixedIp) -> Option<IpNet> {
    let cidr = &subnets.get(&f.subnet_id).filter(|s| s.network_id == p.network_id)?.cidr;
    let (a, subnet) = (Cidr::parse(&f.ip_address)?, Cidr::parse(cidr)?);
    if a.is_v6() != subnet.is_v6() {
        return None;
    }
    Some(a.with_prefix_len(subnet.prefix_len())?.into())
}

impl View<'_> {
    /// Port `id`'s fragment: a local port if it is bound and plumbed here, a remote one if bound
    /// elsewhere; `None` for a router interface, an unbound port, or a port of a network the node does not
    /// need.
    pub(crate) fn port(&mut self, id: &str) -> Option<PortFragment> {
        let p = self.model.ports.get(id)?;
        if index::is_router_port(p) || !self.needed.contains(&p.network_id) {
            return None;
        }
        let net = self.model.networks.get(&p.network_id)?;
        let mac = Mac::parse(&p.mac_address)?;
        let network = self.keys.network(&net.id);
        let ips: Vec<IpNet> = p.fixed_ips.iter().filter_map(|f| host_net(&f.ip_address)).collect();
        if p.device_owner == DHCP_OWNER && p.host_id.is_empty() {
            return Some(PortFragment::Dhcp(DhcpPort { network, mac, ips }));
        }
        let lport = self.keys.lport(&p.id);
        if p.host_id == self.chassis {
            let index = (self.local)(p)?;
            let mut allowed: Vec<(Mac, IpNet)> = ips.iter().map(|ip| (mac, *ip)).collect();
            for pair in &p.allowed_address_pairs {
                let pair_mac = pair.mac_address.as_deref().and_then(Mac::parse).unwrap_or(mac);
                if let Some(net) = Cidr::parse(&pair.ip_address) {
                    allowed.push((pair_mac, net.into()));
                }
            }
            let security = p.port_security_enabled.unwrap_or(net.port_security_enabled);
            let up = p.admin_state_up && net.admin_state_up;
            let services = self.services(p, net, lport.into(), mac);
            let (chassis, needed) = (self.chassis, self.needed);
            let sg = security_groups::port_sg(self.model, &|q| index::holds(q, chassis, needed), p, security);
            Some(PortFragment::Local(LocalPort { index, lport, network, mac, up, security, allowed, services, sg }))
        } else if !p.host_id.is_empty() {
            let chassis = self.keys.chassis(&p.host_id);
            Some(PortFragment::Remote(RemotePort { network, mac, ips, lport, chassis, host: p.host_id.clone() }))
        } else {
            None
        }
    }

    /// Router `id`'s fragment: its interfaces on the networks the node needs (its interface ports in id
    /// order), its extra routes; `None` if it has no interface here.
    pub(crate) fn router(&mut self, id: &str) -> Option<RouterFragment> {
        let r = self.model.routers.get(id)?;
        let mut ifaces = Vec::new();
        let mut gateway = None;
        for pid in self.index.ifaces_of(id) {
            let Some(p) = self.model.ports.get(pid) else { continue };
            if !self.needed.contains(&p.network_id) {
                continue;
            }
            if p.device_owner == ROUTER_GATEWAY {
                gateway = gateway.or(Some(p));
                continue;
            }
            let Some(net) = self.model.networks.get(&p.network_id) else { continue };
            let Some(mac) = Mac::parse(&p.mac_address) else { continue };
            let network = self.keys.network(&net.id);
            for f in &p.fixed_ips {
                let Some(ip) = iface_ip(&self.model.subnets, p, f) else { continue };
                ifaces.push(Iface { network, mac, ip });
            }
        }
        if ifaces.is_empty() {
            return None;
        }
        let mut routes: Vec<(IpNet, IpNet)> = r
            .routes
            .iter()
            .filter_map(|x| Some((Cidr::parse(&x.destination)?.into(), host_net(&x.nexthop)?)))
            .collect();
        let nat = gateway.and_then(|g| self.gateway(r, g, &mut ifaces, &mut routes));
        let key = self.keys.router(id);
        Some(RouterFragment { key, ifaces, routes: routes.into(), nat })
    }

    /// Router `r`'s gateway port `g`: its IPv4 addresses become the router's interfaces on the external
    /// network, the subnet's gateway its default route, and its NAT: SNAT to its first address unless
    /// `enable_snat` is off, and the floating IPs the router carries. Served here if the port is bound
    /// here and the external network has an uplink here; redirected to the node it is bound to
    /// otherwise; none if it is bound to no node.
    fn gateway(
        &mut self,
        r: &crate::model::Router,
        g: &Port,
        ifaces: &mut Vec<Iface>,
        routes: &mut Vec<(IpNet, IpNet)>,
    ) -> Option<Nat> {
        if g.host_id.is_empty() {
            return None;
        }
        let net = self.model.networks.get(&g.network_id)?;
        let redirect = (g.host_id != self.chassis).then(|| (self.keys.chassis(&g.host_id), g.host_id.clone()));
        if redirect.is_none() && !self.uplinks.contains_key(net.physical_network.as_deref()?) {
            tracing::warn!(
                router = %r.id,
                network = %net.id,
                "the router's gateway is bound here, but its external network's physical network has no uplink here"
            );
            return None;
        }
        let mac = Mac::parse(&g.mac_address)?;
        let network = self.keys.network(&net.id);
        let mut snat = None;
        for f in &g.fixed_ips {
            let Some(ip @ IpNet::V4(a, _)) = iface_ip(&self.model.subnets, g, f) else { continue };
            ifaces.push(Iface { network, mac, ip });
            snat = snat.or(Some(a));
            let gw = self.model.subnets.get(&f.subnet_id).and_then(|s| s.gateway_ip.as_deref()).and_then(host_net);
            if let Some(gw @ IpNet::V4(..)) = gw {
                if !routes.iter().any(|(d, _)| *d == IpNet::V4(Ipv4Addr::UNSPECIFIED, 0)) {
                    routes.push((IpNet::V4(Ipv4Addr::UNSPECIFIED, 0), gw));
                }
            }
        }
        snat?;
        let enable_snat = r.external_gateway_info.as_ref().is_none_or(|i| i.enable_snat);
        let v4 = |a: &str| match host_net(a)? {
            IpNet::V4(a, _) => Some(a),
            IpNet::V6(..) => None,
        };
        let mut fips: Vec<(Ipv4Addr, Ipv4Addr)> = self
            .model
            .floating_ips
            .values()
            .filter(|f| f.router_id.as_deref() == Some(r.id.as_str()) && f.floating_network_id == net.id)
            .filter(|f| f.port_id.is_some())
            .filter_map(|f| Some((v4(f.fixed_ip_address.as_deref()?)?, v4(&f.floating_ip_address)?)))
            .collect();
        fips.sort();
        fips.dedup_by_key(|f| f.0);
        Some(Nat { network, snat: snat.filter(|_| enable_snat), fips, mac, redirect })
    }
}

impl PortFragment {
    /// The ARP/ND entries it answers for, in the order it adds them: a local port's host addresses it may
    /// send from, a remote port's fixed IPs.
    pub(crate) fn claims(&self) -> Vec<Claim> {
        match self {
            PortFragment::Local(l) => l
                .allowed
                .iter()
                .filter(|(_, ip)| matches!(ip, IpNet::V4(_, 32) | IpNet::V6(_, 128)))
                .map(|(mac, ip)| ((l.network, *ip), *mac))
                .collect(),
            PortFragment::Remote(r) => r.ips.iter().map(|ip| ((r.network, *ip), r.mac)).collect(),
            PortFragment::Dhcp(d) => d.ips.iter().map(|ip| ((d.network, *ip), d.mac)).collect(),
        }
    }
}

impl RouterFragment {
    /// The node its gateway is redirected to (a member of the router's networks' flood lists, so that
    /// the tunnels reach it), if another serves it.
    pub(crate) fn redirect_host(&self) -> Option<&str> {
        self.nat.as_ref()?.redirect.as_ref().map(|(_, h)| h.as_str())
    }

    /// The ARP/ND entries it answers for: its interface addresses, in interface order, then the
    /// link-local addresses of its interfaces on IPv6 subnets.
    pub(crate) fn claims(&self) -> Vec<Claim> {
        let ips = self.ifaces.iter().map(|i| ((i.network, host_of(i.ip)), i.mac));
        let served = self.nat.iter().filter(|n| n.redirect.is_none());
        let fips = served.flat_map(|n| n.fips.iter().map(|f| ((n.network, IpNet::host_v4(f.1)), n.mac)));
        let mut claims: Vec<Claim> = ips.chain(self.ifaces.iter().filter_map(link_local)).chain(fips).collect();
        // (One link-local address per interface MAC and network, however many subnets it has.)
        let mut seen = std::collections::HashSet::new();
        claims.retain(|c| seen.insert(*c));
        claims
    }
}

// The tables' side: where the keys become the tables' integers (`u32::from`), here only. The tables will
// take the key types too.

/// What a fragment holds in the tables (read back from them): the same before and after a rebuild of
/// every dirty fragment means the tables did not change.
#[derive(Debug, PartialEq)]
pub(crate) enum Held {
    Local(u16, Option<PortEntry>, Option<Arc<PortServices>>),
    /// A DHCP port: its network, its addresses and their ARP/ND entries as the tables hold them. The
    /// addresses themselves too: one moving (to the other address family, another subnet) is answered for
    /// with the same MAC, and the entries alone would compare equal though the tables changed.
    Dhcp(NetworkKey, Vec<IpNet>, Vec<Option<Mac>>),
    Remote(NetworkKey, Mac, Vec<IpNet>, Option<tables::RemotePort>),
    /// A router: what the tables hold of it and of its NAT (boxed: the largest by far).
    Router(RouterKey, Box<(Option<Router>, Option<RouterNat>)>),
}

impl PortFragment {
    /// Adds it to `b`, its ARP/ND entries with it (overwriting whoever had them).
    pub(crate) fn put(&self, b: &mut TablesBuilder) {
        match self {
            PortFragment::Local(l) => {
                let entry = PortEntry {
                    lport: l.lport.into(),
                    network: l.network.into(),
                    mac: l.mac,
                    up: l.up,
                    security: l.security,
                    allowed: l.allowed.clone(),
                    sg: l.sg.clone(),
                };
                b.local_port(l.index, entry);
                b.services(l.index, l.services.clone());
            }
            PortFragment::Remote(r) => {
                let port = tables::RemotePort { lport: r.lport.into(), chassis: r.chassis.into() };
                b.remote_port(r.network.into(), r.mac, &r.ips, port);
            }
            // Its ARP/ND entries are its claims, settled with the others.
            PortFragment::Dhcp(_) => {}
        }
    }

    /// Takes it out of `b`, its ARP/ND entries with it (whoever else claims them).
    pub(crate) fn take(&self, b: &mut TablesBuilder) {
        match self {
            PortFragment::Local(l) => b.remove_local_port(l.index),
            PortFragment::Remote(r) => b.remove_remote_port(r.network.into(), r.mac, &r.ips),
            PortFragment::Dhcp(_) => b,
        };
    }

    pub(crate) fn held(&self, t: &Tables) -> Held {
        match self {
            PortFragment::Local(l) => Held::Local(l.index, t.port(l.index).cloned(), t.services.get(&l.index).cloned()),
            PortFragment::Dhcp(d) => Held::Dhcp(
                d.network,
                d.ips.clone(),
                d.ips
                    .iter()
                    .map(|ip| match *ip {
                        IpNet::V4(a, _) => t.arp_lookup(d.network.into(), a),
                        IpNet::V6(a, _) => t.nd_lookup(d.network.into(), a),
                    })
                    .collect(),
            ),
            PortFragment::Remote(r) => {
                Held::Remote(r.network, r.mac, r.ips.clone(), t.remote_lookup(r.network.into(), r.mac))
            }
        }
    }
}

impl RouterFragment {
    /// Adds it to `b`, its interface addresses' ARP/ND entries with it (overwriting whoever had them).
    pub(crate) fn put(&self, b: &mut TablesBuilder) {
        let ifaces: Vec<RouterIface> =
            self.ifaces.iter().map(|i| RouterIface { network: i.network.into(), mac: i.mac, ip: i.ip }).collect();
        b.router(self.key.into(), &ifaces, self.routes.clone());
        if let Some(n) = &self.nat {
            let redirect = n.redirect.as_ref().map(|(k, _)| (*k).into());
            let nat = RouterNat { network: n.network.into(), snat: n.snat, fips: n.fips.clone(), redirect };
            b.router_nat(self.key.into(), nat);
        }
    }

    /// Takes it out of `b`, its ARP/ND entries with it (whoever else claims them).
    pub(crate) fn take(&self, b: &mut TablesBuilder) {
        b.remove_router(self.key.into());
    }

    pub(crate) fn held(&self, t: &Tables) -> Held {
        let key = self.key.into();
        Held::Router(self.key, Box::new((t.routers.get(&key).cloned(), t.nat.get(&key).cloned())))
    }
}

/// Sets ARP/ND entry `(network, ip)` to `mac`, or removes it (`None`).
pub(crate) fn set_neighbor(b: &mut TablesBuilder, (network, ip): (NetworkKey, IpNet), mac: Option<Mac>) {
    match mac {
        Some(mac) => b.neighbor(network.into(), ip, mac),
        None => b.remove_neighbor(network.into(), ip),
    };
}
