//! The fragments a set of tables holds, by owner, and the one routine that builds tables from fragments
//! ([`Fragments::rebuild`]): the full compilation calls it once, on empty tables, with every port and
//! router of the model; the controller calls it on its last tables with the ports and routers a change
//! touched.

use std::collections::{BTreeSet, HashMap, HashSet};

use pipelines::tables::{Tables, TablesBuilder};

use super::fragment::{Held, PortFragment, RouterFragment, View};
use super::neighbors::{Neighbors, Owner};
use super::tunnels::Tunnels;
use super::Summary;

/// The fragments in a set of tables, and every claim on their ARP/ND entries.
#[derive(Debug, Default)]
pub(crate) struct Fragments {
    /// Port id → its network's id and its fragment; network id → the ports with a fragment on it.
    ports: HashMap<String, (String, PortFragment)>,
    by_net: HashMap<String, HashSet<String>>,
    routers: HashMap<String, RouterFragment>,
    neighbors: Neighbors,
    /// How many of the ports are local, how many remote.
    local: usize,
    remote: usize,
    /// The tunnels' part of the tables, settled after the fragments.
    pub(crate) tunnels: Tunnels,
}

impl Fragments {
    pub(crate) fn new(tunnels: Tunnels) -> Fragments {
        Fragments { tunnels, ..Fragments::default() }
    }

    /// Builds the fragments of `ports` and `routers` (ids, each list in id order) into `b` again, as
    /// `view` says they are now. Every old fragment goes out before any new one comes in: a key moving
    /// between two of them (a MAC from one port to another) is never removed after it was added. Then each
    /// ARP/ND entry they touched is set to its winner ([`super::neighbors`]), and the tunnels of
    /// `networks` and of the ports' networks (before and after) computed again ([`super::tunnels`]). True
    /// if the tunnels' part of the tables changed (the fragments' part is compared by the caller,
    /// [`Fragments::held`]).
    pub(crate) fn rebuild(
        &mut self,
        view: &mut View<'_>,
        networks: BTreeSet<String>,
        ports: &[String],
        routers: &[String],
        b: &mut TablesBuilder,
    ) -> bool {
        let mut nets = networks;
        for id in ports {
            nets.extend(view.model.ports.get(id).map(|p| p.network_id.clone()));
            let Some((network, f)) = self.ports.remove(id) else { continue };
            nets.insert(network.clone());
            if let Some(set) = self.by_net.get_mut(&network) {
                set.remove(id);
                if set.is_empty() {
                    self.by_net.remove(&network);
                }
            }
            self.neighbors.remove(&Owner::Port(id.clone()), &f.claims());
            f.take(b);
            match f {
                PortFragment::Local(_) => self.local -= 1,
                PortFragment::Remote(_) => self.remote -= 1,
                PortFragment::Dhcp(_) => {}
            }
        }
        for id in routers {
            if let Some(f) = self.routers.remove(id) {
                f.take(b);
                self.neighbors.remove(&Owner::Router(id.clone()), &f.claims());
            }
        }
        for id in ports {
            let Some(f) = view.port(id) else { continue };
            f.put(b);
            match f {
                PortFragment::Local(_) => self.local += 1,
                PortFragment::Remote(_) => self.remote += 1,
                PortFragment::Dhcp(_) => {}
            }
            self.neighbors.add(&Owner::Port(id.clone()), &f.claims());
            let network = view.model.ports[id].network_id.clone();
            self.by_net.entry(network.clone()).or_default().insert(id.clone());
            self.ports.insert(id.clone(), (network, f));
        }
        for id in routers {
            if let Some(f) = view.router(id) {
                f.put(b);
                self.neighbors.add(&Owner::Router(id.clone()), &f.claims());
                self.routers.insert(id.clone(), f);
            }
        }
        self.neighbors.settle(b);
        // The routers' networks, whose flood lists hold the node their gateway is redirected to.
        for id in routers {
            nets.extend(view.index.networks_of(id).cloned());
        }
        let mut redirects: HashMap<String, Vec<String>> = HashMap::new();
        for net in &nets {
            let hosts = view.index.routers_on(net).filter_map(|r| self.routers.get(r)?.redirect_host());
            redirects.insert(net.clone(), hosts.map(str::to_owned).collect());
        }
        let ports = &self.ports;
        let remote = |net: &str| -> Vec<&str> {
            let on = self.by_net.get(net).into_iter().flatten();
            let hosts = on.filter_map(|id| match ports.get(id) {
                Some((_, PortFragment::Remote(r))) => Some(r.host.as_str()),
                _ => None,
            });
            hosts.chain(redirects.get(net).into_iter().flatten().map(String::as_str)).collect()
        };
        self.tunnels.settle(view, &nets, remote, b)
    }

    /// What the fragments of `ports` and `routers` hold in `t`, in a fixed order.
    pub(crate) fn held(&self, t: &Tables, ports: &[String], routers: &[String]) -> Vec<Held> {
        let ports = ports.iter().filter_map(|id| self.ports.get(id)).map(|(_, f)| f.held(t));
        let routers = routers.iter().filter_map(|id| self.routers.get(id)).map(|f| f.held(t));
        ports.chain(routers).collect()
    }

    /// The ports with a fragment on network `net`.
    pub(crate) fn ports_on(&self, net: &str) -> impl Iterator<Item = &String> {
        self.by_net.get(net).into_iter().flatten()
    }

    /// Whether the tables hold anything of network `net`: a port's fragment, its segment or flood list.
    pub(crate) fn has_network(&self, net: &str) -> bool {
        self.by_net.contains_key(net) || self.tunnels.has_network(net)
    }

    pub(crate) fn has_port(&self, id: &str) -> bool {
        self.ports.contains_key(id)
    }

    pub(crate) fn has_router(&self, id: &str) -> bool {
        self.routers.contains_key(id)
    }

    /// What the tables hold, with `networks` the size of the node's network set.
    pub(crate) fn summary(&self, networks: usize) -> Summary {
        Summary { networks, local_ports: self.local, remote_ports: self.remote, routers: self.routers.len() }
    }
}
