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
//!   router's extra routes are its routes;
//! - a router's gateway port, on the node it is bound to (the API binds it to a node, Neutron's L3
//!   scheduling) where its external network has an uplink, is the router's interface on the external
//!   network, with a default route to the external subnet's gateway and NAT (SNAT, floating IPs).
//!
//! Each rule is written once, in the modules below. [`compile`], the full compilation, puts every
//! fragment of the model into empty tables; the local controller ([`crate::controller`]) takes the
//! fragments a change touched out of its last tables and puts them in again, with the same routine. The
//! full one is the reference the incremental one is checked against (`tests/incremental.rs`).
//!
//! | module | what |
//! |---|---|
//! | `index` | what the node holds, indexed: its network set ([`networks_needed`]'s rule), ports by network, router interfaces by network and by router |
//! | `fragment` | what one port, one router becomes in the tables (its fragment), put in and taken out; where the keys become the tables' integers |
//! | `neighbors` | the ARP/ND entries several fragments claim, and which claim wins |
//! | `patch` | the fragments a set of tables holds, and the one routine that builds tables from them |
//! | `security_groups` | what a local port's security groups compile to, and whom a group's change concerns |
//! | `tunnels` | what the tunnels add: the underlay, each network's segment and flood list, the chassis and their next hops |
//!
//! Keys: networks, ports, nodes and routers are known to the tables by the keys of [`crate::keys`], given
//! by a [`Keys`] that lives as long as the controller, so that two compilations agree.

mod fragment;
mod index;
mod neighbors;
mod patch;
mod security_groups;
mod services;
mod tunnels;

use std::collections::{HashMap, HashSet};

use pipelines::tables::{Tables, TablesBuilder};

pub(crate) use self::fragment::View;
pub(crate) use self::index::{holds, is_router_port, plugged_here, Index};
pub(crate) use self::patch::Fragments;
pub(crate) use self::security_groups::{port_sg, ports_of_groups, protocol, referring_groups};
pub use self::services::{dhcp4_option, dhcp6_option, ServicesConfig};
pub(crate) use self::services::{port_services, Network as ServicedNetwork};
pub(crate) use self::tunnels::Tunnels;
pub use self::tunnels::{Links, TunnelConfig};
use crate::keys::Keys;
use crate::model::{Chassis, FloatingIp, Network, Port, Router, SecurityGroup, SecurityGroupRule, Subnet};

/// The model objects a node compiles from.
#[derive(Debug, Clone, Default)]
pub struct Model {
    pub networks: HashMap<String, Network>,
    pub subnets: HashMap<String, Subnet>,
    pub ports: HashMap<String, Port>,
    pub routers: HashMap<String, Router>,
    /// Every chassis (compute node), by name: where the tunnels to its ports go.
    pub chassis: HashMap<String, Chassis>,
    /// Every security group and rule (a node holds them all: they are few, and any may come to apply
    /// to a port bound here).
    pub security_groups: HashMap<String, SecurityGroup>,
    pub security_group_rules: HashMap<String, SecurityGroupRule>,
    /// Every floating IP (few; the router that carries one changes with its association).
    pub floating_ips: HashMap<String, FloatingIp>,
}

/// What a compilation holds, for the caller to log or check.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub networks: usize,
    pub local_ports: usize,
    pub remote_ports: usize,
    pub routers: usize,
}

/// The networks node `chassis` needs: those with a port bound to it, and one routed hop from them.
pub fn networks_needed(m: &Model, chassis: &str) -> HashSet<String> {
    Index::of(m.ports.values(), chassis).needed()
}

/// Compiles what `chassis` needs of `m`, reaching the other nodes by `links`; `local(port)` is the
/// dataplane index a port bound here is plumbed on (`None`: not plumbed yet, left out).
pub fn compile(
    m: &Model,
    chassis: &str,
    links: &Links,
    keys: &mut Keys,
    local: &dyn Fn(&Port) -> Option<u16>,
) -> (Tables, Summary) {
    let index = Index::of(m.ports.values(), chassis);
    let needed = index.needed();
    // Every port and router, in id order, as the controller rebuilds the dirty ones.
    let mut ports: Vec<String> = m.ports.keys().cloned().collect();
    ports.sort();
    let mut routers: Vec<String> = m.routers.keys().cloned().collect();
    routers.sort();
    let mut view = View {
        model: m,
        index: &index,
        needed: &needed,
        chassis,
        keys,
        local,
        services: &links.services,
        uplinks: &links.uplinks,
    };
    let mut b = TablesBuilder::new();
    let mut fragments = Fragments::new(Tunnels::new(links.clone(), Default::default()));
    let networks = needed.iter().cloned().collect();
    fragments.rebuild(&mut view, networks, &ports, &routers, &mut b);
    (b.build(), fragments.summary(needed.len()))
}
