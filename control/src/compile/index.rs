//! What a node holds of the model, indexed: ports by network, router interface ports by network and by
//! router, ports bound here by network; and from them the node's network set ([`Index::needed`]), the
//! rule of [`super::networks_needed`]. The full compilation builds one from every port of the model; the
//! controller keeps one up to date port by port ([`Index::port`]), so that a change does not scan every
//! port.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::model::{Port, DHCP_OWNER, ROUTER_GATEWAY, ROUTER_INTERFACE};

/// Whether node `chassis`, which needs the networks `needed`, holds port `p`: bound to it, a router
/// interface or gateway, or on a network it needs.
pub(crate) fn holds(p: &Port, chassis: &str, needed: &HashSet<String>) -> bool {
    p.host_id == chassis || is_router_port(p) || needed.contains(&p.network_id)
}

/// Whether the node `chassis` plugs port `p` (a TAP, a vhost-user socket, ...): bound to it, and not a
/// router's gateway (which the node serves in its tables, with no device of its own).
pub(crate) fn plugged_here(p: &Port, chassis: &str) -> bool {
    p.host_id == chassis && p.device_owner != ROUTER_GATEWAY
}

/// A router's interface or gateway port: its router's, on its network (the networks on both sides of a
/// router are one routed hop apart).
pub(crate) fn is_router_port(p: &Port) -> bool {
    p.device_owner == ROUTER_INTERFACE || p.device_owner == ROUTER_GATEWAY
}

/// Counts of (a, b) pairs: router interface ports per (network, router) and (router, network).
#[derive(Debug, Default)]
struct PairIndex(HashMap<String, HashMap<String, usize>>);

impl PairIndex {
    fn add(&mut self, a: &str, b: &str) {
        *self.0.entry(a.to_owned()).or_default().entry(b.to_owned()).or_default() += 1;
    }

    fn remove(&mut self, a: &str, b: &str) {
        if let Some(m) = self.0.get_mut(a) {
            if let Some(n) = m.get_mut(b) {
                *n -= 1;
                if *n == 0 {
                    m.remove(b);
                }
            }
            if m.is_empty() {
                self.0.remove(a);
            }
        }
    }

    fn of(&self, a: &str) -> impl Iterator<Item = &String> {
        self.0.get(a).into_iter().flat_map(|m| m.keys())
    }
}

/// The indexes the network set and the fragments are computed from.
#[derive(Debug, Default)]
pub(crate) struct Index {
    ports_by_net: HashMap<String, BTreeSet<String>>,
    /// Ports bound to this chassis, per network.
    local_by_net: HashMap<String, usize>,
    /// Router interface and gateway ports: network → router, router → network, router → port ids.
    router_of_net: PairIndex,
    net_of_router: PairIndex,
    iface_ports: HashMap<String, BTreeSet<String>>,
    /// DHCP ports (`network:dhcp`) by network.
    dhcp_ports: HashMap<String, BTreeSet<String>>,
}

impl Index {
    /// The index of `ports`, as node `chassis` sees them.
    pub(crate) fn of<'a>(ports: impl IntoIterator<Item = &'a Port>, chassis: &str) -> Index {
        let mut index = Index::default();
        for p in ports {
            index.port(p, chassis, true);
        }
        index
    }

    /// Adds port `p` (`add`) or takes it out (as it was added) of the index of node `chassis`.
    pub(crate) fn port(&mut self, p: &Port, chassis: &str, add: bool) {
        let net = p.network_id.as_str();
        if add {
            self.ports_by_net.entry(net.to_owned()).or_default().insert(p.id.clone());
        } else if let Some(s) = self.ports_by_net.get_mut(net) {
            s.remove(&p.id);
            if s.is_empty() {
                self.ports_by_net.remove(net);
            }
        }
        if p.host_id == chassis {
            let n = self.local_by_net.entry(net.to_owned()).or_default();
            if add {
                *n += 1;
            } else {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.local_by_net.remove(net);
                }
            }
        }
        if p.device_owner == DHCP_OWNER {
            let set = self.dhcp_ports.entry(net.to_owned()).or_default();
            if add {
                set.insert(p.id.clone());
            } else {
                set.remove(&p.id);
                if set.is_empty() {
                    self.dhcp_ports.remove(net);
                }
            }
        }
        if is_router_port(p) {
            let r = p.device_id.as_str();
            if add {
                self.router_of_net.add(net, r);
                self.net_of_router.add(r, net);
                self.iface_ports.entry(r.to_owned()).or_default().insert(p.id.clone());
            } else {
                self.router_of_net.remove(net, r);
                self.net_of_router.remove(r, net);
                if let Some(s) = self.iface_ports.get_mut(r) {
                    s.remove(&p.id);
                    if s.is_empty() {
                        self.iface_ports.remove(r);
                    }
                }
            }
        }
    }

    /// The networks with a port bound here, and those one router away from them.
    pub(crate) fn needed(&self) -> HashSet<String> {
        let mut nets: HashSet<String> = self.local_by_net.keys().cloned().collect();
        let routers: HashSet<&String> = self.local_by_net.keys().flat_map(|n| self.router_of_net.of(n)).collect();
        for r in routers {
            nets.extend(self.net_of_router.of(r).cloned());
        }
        nets
    }

    /// The ports of network `net`, in id order.
    pub(crate) fn ports_of(&self, net: &str) -> impl Iterator<Item = &String> {
        self.ports_by_net.get(net).into_iter().flatten()
    }

    /// The routers with an interface on network `net`.
    pub(crate) fn routers_on(&self, net: &str) -> impl Iterator<Item = &String> {
        self.router_of_net.of(net)
    }

    /// The networks router `router` has an interface on.
    pub(crate) fn networks_of(&self, router: &str) -> impl Iterator<Item = &String> {
        self.net_of_router.of(router)
    }

    /// Router `router`'s interface ports, in id order.
    pub(crate) fn ifaces_of(&self, router: &str) -> impl Iterator<Item = &String> {
        self.iface_ports.get(router).into_iter().flatten()
    }

    /// The DHCP ports of network `net`, in id order.
    pub(crate) fn dhcp_ports_of(&self, net: &str) -> impl Iterator<Item = &String> {
        self.dhcp_ports.get(net).into_iter().flatten()
    }

    /// The routers with an interface port.
    pub(crate) fn routers(&self) -> impl Iterator<Item = &String> {
        self.iface_ports.keys()
    }
}
