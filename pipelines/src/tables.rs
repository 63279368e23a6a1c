//! The compiled tables: an immutable snapshot the control thread builds (with [`TablesBuilder`]) and
//! publishes to the workers (see `publish`). Lookups are hash probes on small integer keys (FxHash: one
//! multiply) or dense vector indexes; nothing here depends on how many flows cross the switch.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::acl::Acl;
use crate::nat::{Learned, Outside, RouterNat};
use crate::routing::{Router, RouterIface};
use crate::services::PortServices;
use crate::tunnel::{Chassis, NextHops, Segment, Underlay};
use crate::wire::{Ipv4Addr, Ipv6Addr, Mac};

/// The old path of [`IpNet`], which now lives in `wire` (`wire/ipnet.rs`), below the tables and the
/// routing tables that both use it. Kept for the crates that still import it from here (`control`, the
/// binary, the integration tests); new code imports `pipelines::wire::IpNet`.
pub use crate::wire::IpNet;

/// A local port bound to a logical (Neutron) port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortEntry {
    /// Logical port key.
    pub lport: u32,
    /// Network key.
    pub network: u32,
    pub mac: Mac,
    /// `admin_state_up`.
    pub up: bool,
    /// `port_security_enabled` (of the port, or of its network when the port does not say).
    pub security: bool,
    /// The (MAC, prefix) pairs the port may send from: its own MAC with each fixed IP (as a host prefix),
    /// and each allowed address pair.
    pub allowed: Vec<(Mac, IpNet)>,
    /// Its security groups, compiled (`stages/security_groups.rs`); `None`: not filtered (port security
    /// off, or a port of `dragonflow run`'s static topology, which has no groups).
    pub sg: Option<Arc<PortSg>>,
}

/// A port's security groups as the pipeline checks them: the union of its groups' rules for each
/// direction, compiled ([`Acl`]), and whether they are stateful (connection tracking: a reply is
/// allowed) or stateless (every packet checked against the rules alone). Neutron refuses a port with
/// both kinds of groups.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PortSg {
    pub stateful: bool,
    /// Packets to the port.
    pub ingress: Acl,
    /// Packets from the port.
    pub egress: Acl,
    /// A digest of the two (their [`Acl::digest`]s): a tracked connection remembers the digest of the
    /// rules that last allowed it, and checks its opening packet again when it changes.
    pub digest: u32,
}

impl PortSg {
    pub fn new(stateful: bool, ingress: Acl, egress: Acl) -> PortSg {
        let d = ingress.digest().rotate_left(17) ^ egress.digest() ^ u64::from(stateful);
        PortSg { stateful, ingress, egress, digest: (d ^ d >> 32) as u32 }
    }
}

impl PortEntry {
    #[inline]
    pub fn mac_allowed(&self, m: Mac) -> bool {
        m == self.mac || self.allowed.iter().any(|(am, _)| *am == m)
    }

    #[inline]
    pub fn v4_allowed(&self, m: Mac, a: Ipv4Addr) -> bool {
        self.allowed.iter().any(|(am, net)| *am == m && net.contains_v4(a))
    }

    #[inline]
    pub fn v6_allowed(&self, m: Mac, a: Ipv6Addr) -> bool {
        // The link-local address derived from the port's MAC is always the port's (as Neutron allows).
        (m == self.mac && a == Ipv6Addr::link_local_from_mac(self.mac))
            || self.allowed.iter().any(|(am, net)| *am == m && net.contains_v6(a))
    }
}

/// A network as one node sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkEntry {
    /// Dataplane port indexes of the network's local ports, for flooding.
    pub local_ports: Vec<u16>,
}

#[inline(always)]
pub(crate) fn l2_key(network: u32, mac: Mac) -> u64 {
    ((network as u64) << 48) ^ mac.to_u64()
}

#[inline(always)]
pub(crate) fn v4_key(network: u32, a: Ipv4Addr) -> u64 {
    ((network as u64) << 32) | a.to_u32() as u64
}

/// Keys (a segment, an uplink's VLAN) each network claims at most one of, as a map key → network. A key
/// that several networks claim (DB contents gone wrong: the API gives each network its own) belongs to
/// none, both ways: what comes in with it is dropped, and none of them sends with it ([`Exclusive::owns`]),
/// so that no other node can deliver one's packets to the other; it is the remaining network's again
/// when the others let go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exclusive {
    owner: FxHashMap<u64, u32>,
    /// The keys several networks claim, and how many.
    conflicts: FxHashMap<u64, u32>,
}

impl Exclusive {
    /// The network that owns `k`.
    #[inline]
    pub fn get(&self, k: u64) -> Option<u32> {
        self.owner.get(&k).copied()
    }

    /// Whether `network` may use key `k` (its segment, its uplink VLAN) on the way out: no other network
    /// claims it too. (One test of an empty map while no key is in conflict.)
    #[inline(always)]
    pub fn owns(&self, k: u64, network: u32) -> bool {
        self.conflicts.is_empty() || self.owner.get(&k) == Some(&network)
    }

    /// Every key with its network (not the conflicted ones).
    pub fn iter(&self) -> impl Iterator<Item = (u64, u32)> + '_ {
        self.owner.iter().map(|(&k, &n)| (k, n))
    }

    /// The keys several networks claim, with how many claims.
    pub fn conflicts(&self) -> impl Iterator<Item = (u64, u32)> + '_ {
        self.conflicts.iter().map(|(&k, &n)| (k, n))
    }

    fn claim(&mut self, k: u64, network: u32) {
        if let Some(n) = self.conflicts.get_mut(&k) {
            *n += 1;
        } else if self.owner.remove(&k).is_some() {
            self.conflicts.insert(k, 2);
        } else {
            self.owner.insert(k, network);
        }
    }

    /// `network` lets go of `k`; `remaining` finds the one claim left when a conflict ends.
    fn release(&mut self, k: u64, network: u32, remaining: impl FnOnce() -> Option<u32>) {
        match self.conflicts.get_mut(&k) {
            Some(n) if *n > 2 => *n -= 1,
            Some(_) => {
                self.conflicts.remove(&k);
                if let Some(other) = remaining() {
                    self.owner.insert(k, other);
                }
            }
            None => {
                if self.owner.get(&k) == Some(&network) {
                    self.owner.remove(&k);
                }
            }
        }
    }
}

/// A provider network's way out of the node (`stages/provider.rs`): the uplink port its physical network
/// is mapped to, and its VLAN there (`None`: flat, untagged).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uplink {
    pub port: u16,
    pub vlan: Option<u16>,
}

impl Uplink {
    /// The key of [`Tables::uplink_in`]: the port and the VLAN (0: untagged, or priority-tagged).
    #[inline(always)]
    pub fn key(self) -> u64 {
        uplink_key(self.port, self.vlan.unwrap_or(0))
    }
}

#[inline(always)]
pub(crate) fn uplink_key(port: u16, vid: u16) -> u64 {
    (u64::from(port) << 16) | u64::from(vid)
}

fn uplink_ports(uplinks: &FxHashMap<u32, Uplink>) -> u64 {
    uplinks.values().filter(|u| u.port < 64).fold(0, |bits, u| bits | 1 << u.port)
}

/// A logical port on another node: reached through a tunnel to that node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemotePort {
    pub lport: u32,
    pub chassis: u32,
}

/// The snapshot the workers read.
#[derive(Debug, Clone, Default)]
pub struct Tables {
    /// By dataplane port index; `None` for a port bound to nothing.
    pub ports: Vec<Option<PortEntry>>,
    pub networks: FxHashMap<u32, NetworkEntry>,
    /// (network, MAC) → dataplane port index.
    pub l2: FxHashMap<u64, u16>,
    /// (network, IPv4) → MAC, for the ARP responder.
    pub arp: FxHashMap<u64, Mac>,
    /// (network, IPv6) → MAC, for the ND responder.
    pub nd: FxHashMap<(u32, u128), Mac>,
    /// (network, router interface MAC) → router key: packets to it are routed.
    pub router_macs: FxHashMap<u64, u32>,
    pub routers: FxHashMap<u32, Router>,
    /// (network, MAC) → a port on another node, looked up when no local port has the MAC.
    pub remote: FxHashMap<u64, RemotePort>,
    /// Some router is large ([`Router::is_large`]): the workers batch route lookups. Set by
    /// [`TablesBuilder::build`].
    pub large_routers: bool,
    /// Tunnels (`tunnel.rs`): this node's underlay port, if it has one.
    pub underlay: Option<Underlay>,
    /// The other nodes this node shares a network with, by chassis key.
    pub chassis: FxHashMap<u32, Chassis>,
    /// The underlay's next hops toward them (`Chassis::hop` indexes it), with the MACs the workers
    /// resolved; shared with the tables published before while the addresses stay the same.
    pub hops: Arc<NextHops>,
    /// Tunnel endpoint (IPv4, as `u32`) → how many of `chassis` have it: the senders decapsulation
    /// accepts.
    pub chassis_ips: FxHashMap<u32, u32>,
    /// Network key → its segment on the wire.
    pub segments: FxHashMap<u32, Segment>,
    /// Segment (`Segment::key`) → network key: where decapsulated packets belong.
    pub decap: Exclusive,
    /// Provider networks (VLAN, flat: `stages/provider.rs`): network key → its uplink.
    pub uplinks: FxHashMap<u32, Uplink>,
    /// Uplink port and VLAN ([`Uplink::key`]) → network key: where a frame from an uplink belongs.
    pub uplink_in: Exclusive,
    /// The uplink ports, one bit per port index.
    pub uplink_ports: u64,
    /// Network key → the other nodes with a port on it, in key order: where its floods are replicated
    /// (head-end replication).
    pub flood_chassis: FxHashMap<u32, Vec<u32>>,
    /// Local port index → what the slow path serves on it (DHCP, router advertisements: `services`); the
    /// `punt` stage hands it the requests of the ports listed here only.
    pub services: FxHashMap<u16, Arc<PortServices>>,
    /// The networks with a local port that has security groups, sorted: their floods are checked against
    /// those ports' ingress rules (`security_groups::flood`). Set by [`TablesBuilder::build`].
    pub filtered_networks: Vec<u32>,
    /// Some local port has stateful security groups (connection tracking). Set by [`TablesBuilder::build`].
    pub tracking: bool,
    /// Router key → its NAT on its external network (`stages/nat.rs`), served here or redirected.
    pub nat: FxHashMap<u32, RouterNat>,
    /// (external network, IPv4) → the router that owns the address, and what it is to it.
    pub nat_in: FxHashMap<u64, (u32, Outside)>,
    /// Some router translates connections (SNAT): the workers steer their replies by port. Set by
    /// [`TablesBuilder::build`].
    pub snat: bool,
    /// The external networks' hosts, their MACs learned by the workers; shared by every version.
    pub learned: Arc<Learned>,
}

/// Equal if a worker could not tell them apart: the same entries, whatever order the flood lists were
/// built in, and free slots at the end of `ports` do not count.
impl PartialEq for Tables {
    fn eq(&self, o: &Tables) -> bool {
        fn bound(p: &[Option<PortEntry>]) -> &[Option<PortEntry>] {
            &p[..p.iter().rposition(Option::is_some).map_or(0, |i| i + 1)]
        }
        let same_floods = self.networks.len() == o.networks.len()
            && self.networks.iter().all(|(k, n)| {
                o.networks.get(k).is_some_and(|m| {
                    n.local_ports.len() == m.local_ports.len()
                        && n.local_ports.iter().all(|i| m.local_ports.contains(i))
                })
            });
        bound(&self.ports) == bound(&o.ports)
            && same_floods
            && self.l2 == o.l2
            && self.arp == o.arp
            && self.nd == o.nd
            && self.router_macs == o.router_macs
            && self.routers == o.routers
            && self.remote == o.remote
            && self.underlay == o.underlay
            && self.chassis == o.chassis
            && self.hops == o.hops
            && self.chassis_ips == o.chassis_ips
            && self.segments == o.segments
            && self.decap == o.decap
            && self.uplinks == o.uplinks
            && self.uplink_in == o.uplink_in
            && self.uplink_ports == o.uplink_ports
            && self.flood_chassis == o.flood_chassis
            && self.services == o.services
            && self.nat == o.nat
            && self.nat_in == o.nat_in
    }
}

impl Tables {
    #[inline(always)]
    pub fn port(&self, index: u16) -> Option<&PortEntry> {
        self.ports.get(index as usize).and_then(Option::as_ref)
    }

    #[inline(always)]
    pub fn l2_lookup(&self, network: u32, mac: Mac) -> Option<u16> {
        self.l2.get(&l2_key(network, mac)).copied()
    }

    /// The port on another node with MAC `mac` in `network`.
    #[inline]
    pub fn remote_lookup(&self, network: u32, mac: Mac) -> Option<RemotePort> {
        if self.remote.is_empty() {
            return None;
        }
        self.remote.get(&l2_key(network, mac)).copied()
    }

    /// The router whose interface on `network` has the MAC `mac`.
    #[inline(always)]
    pub fn router_for(&self, network: u32, mac: Mac) -> Option<u32> {
        if self.router_macs.is_empty() {
            return None;
        }
        self.router_macs.get(&l2_key(network, mac)).copied()
    }

    /// Whether dataplane port `port` is an uplink of provider networks.
    #[inline(always)]
    pub fn is_uplink(&self, port: u16) -> bool {
        port < 64 && self.uplink_ports & (1 << port) != 0
    }

    /// The router and meaning of `ip` on external network `network`, if a router owns it.
    #[inline]
    pub fn outside(&self, network: u32, ip: Ipv4Addr) -> Option<(u32, Outside)> {
        if self.nat_in.is_empty() {
            return None;
        }
        self.nat_in.get(&v4_key(network, ip)).copied()
    }

    /// The other nodes a flood of `network` is replicated to.
    #[inline]
    pub fn flood_chassis(&self, network: u32) -> &[u32] {
        if self.flood_chassis.is_empty() {
            return &[];
        }
        self.flood_chassis.get(&network).map_or(&[], Vec::as_slice)
    }

    /// What the slow path serves on local port `port`.
    #[inline]
    pub fn services_of(&self, port: u16) -> Option<&PortServices> {
        if self.services.is_empty() {
            return None;
        }
        self.services.get(&port).map(Arc::as_ref)
    }

    #[inline]
    pub fn arp_lookup(&self, network: u32, ip: Ipv4Addr) -> Option<Mac> {
        self.arp.get(&v4_key(network, ip)).copied()
    }

    #[inline]
    pub fn nd_lookup(&self, network: u32, ip: Ipv6Addr) -> Option<Mac> {
        self.nd.get(&(network, ip.to_u128())).copied()
    }
}

/// Builds [`Tables`] from ports and addresses (the local controller's output, or a test's fixture).
#[derive(Debug, Default)]
pub struct TablesBuilder {
    t: Tables,
    /// The routers taken out since this builder was made, by key: `router` edits one of them back in.
    taken: FxHashMap<u32, Router>,
}

impl TablesBuilder {
    pub fn new() -> TablesBuilder {
        TablesBuilder::default()
    }

    /// Binds dataplane port `index` to a logical port; its MAC is learnt for L2, its IPs for ARP/ND.
    pub fn local_port(&mut self, index: u16, entry: PortEntry) -> &mut Self {
        let i = index as usize;
        if self.t.ports.len() <= i {
            self.t.ports.resize(i + 1, None);
        }
        let net = self.t.networks.entry(entry.network).or_default();
        if !net.local_ports.contains(&index) {
            net.local_ports.push(index);
        }
        self.t.l2.insert(l2_key(entry.network, entry.mac), index);
        for (mac, ip) in &entry.allowed {
            match *ip {
                IpNet::V4(a, 32) => {
                    self.t.arp.insert(v4_key(entry.network, a), *mac);
                }
                IpNet::V6(a, 128) => {
                    self.t.nd.insert((entry.network, a.to_u128()), *mac);
                }
                _ => {}
            }
        }
        self.t.ports[i] = Some(entry);
        self
    }

    /// What the slow path serves on local port `index` (`None`: nothing); [`TablesBuilder::remove_local_port`]
    /// takes it out with the port.
    pub fn services(&mut self, index: u16, services: Option<Arc<PortServices>>) -> &mut Self {
        match services {
            Some(s) => self.t.services.insert(index, s),
            None => self.t.services.remove(&index),
        };
        self
    }

    /// An address the switch answers ARP/ND for without its owner being local (a port on another node,
    /// a router interface).
    pub fn neighbor(&mut self, network: u32, ip: IpNet, mac: Mac) -> &mut Self {
        match ip {
            IpNet::V4(a, _) => {
                self.t.arp.insert(v4_key(network, a), mac);
            }
            IpNet::V6(a, _) => {
                self.t.nd.insert((network, a.to_u128()), mac);
            }
        }
        self
    }

    /// A logical port bound on another node: its MAC is switched to that node, its addresses answered
    /// for by the ARP/ND responders.
    pub fn remote_port(&mut self, network: u32, mac: Mac, ips: &[IpNet], port: RemotePort) -> &mut Self {
        self.t.remote.insert(l2_key(network, mac), port);
        for ip in ips {
            self.neighbor(network, *ip, mac);
        }
        self
    }

    /// A router with its interfaces and extra routes; the switch answers ARP/ND for its gateway addresses.
    ///
    /// A router this builder took out ([`TablesBuilder::remove_router`]) with the same interfaces is put
    /// back with its routes changed by difference ([`Router::set_routes`]), not built again: the local
    /// controller takes a router out and puts it back for any change of it, and a change of one route
    /// among many then costs one route.
    pub fn router(
        &mut self,
        key: u32,
        ifaces: &[RouterIface],
        extra_routes: impl Into<Arc<[(IpNet, IpNet)]>>,
    ) -> &mut Self {
        let mut r = match self.taken.remove(&key) {
            Some(r) if r.ifaces == ifaces => r,
            _ => {
                let mut r = Router::default();
                for i in ifaces {
                    r.add_iface(*i);
                }
                r
            }
        };
        r.set_routes(extra_routes);
        r.external = 0;
        for i in ifaces {
            self.t.router_macs.insert(l2_key(i.network, i.mac), key);
            let host = match i.ip {
                IpNet::V4(a, _) => IpNet::host_v4(a),
                IpNet::V6(a, _) => IpNet::host_v6(a),
            };
            self.neighbor(i.network, host, i.mac);
        }
        self.t.routers.insert(key, r);
        self
    }

    /// This node's underlay port (`None`: none, and no tunnel).
    pub fn underlay(&mut self, u: Option<Underlay>) -> &mut Self {
        self.t.underlay = u;
        self
    }

    /// Another node, by chassis key: its tunnel endpoint and next hop (replaces what the key had).
    pub fn chassis(&mut self, key: u32, c: Chassis) -> &mut Self {
        self.remove_chassis(key);
        *self.t.chassis_ips.entry(c.ip.to_u32()).or_default() += 1;
        self.t.chassis.insert(key, c);
        self
    }

    /// The underlay's next hops, which [`Chassis::hop`] indexes.
    pub fn next_hops(&mut self, hops: Arc<NextHops>) -> &mut Self {
        self.t.hops = hops;
        self
    }

    /// Undoes [`TablesBuilder::chassis`].
    pub fn remove_chassis(&mut self, key: u32) -> &mut Self {
        if let Some(old) = self.t.chassis.remove(&key) {
            let ip = old.ip.to_u32();
            if let Some(n) = self.t.chassis_ips.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    self.t.chassis_ips.remove(&ip);
                }
            }
        }
        self
    }

    /// The segment of `network` on the wire (replaces the one it had).
    pub fn segment(&mut self, network: u32, seg: Segment) -> &mut Self {
        self.remove_segment(network);
        self.t.segments.insert(network, seg);
        self.t.decap.claim(seg.key(), network);
        self
    }

    /// Undoes [`TablesBuilder::segment`].
    pub fn remove_segment(&mut self, network: u32) -> &mut Self {
        if let Some(old) = self.t.segments.remove(&network) {
            let (k, segments) = (old.key(), &self.t.segments);
            self.t.decap.release(k, network, || segments.iter().find(|(_, s)| s.key() == k).map(|(&n, _)| n));
        }
        self
    }

    /// The uplink of provider network `network` (replaces the one it had).
    pub fn uplink(&mut self, network: u32, u: Uplink) -> &mut Self {
        self.remove_uplink(network);
        self.t.uplinks.insert(network, u);
        self.t.uplink_in.claim(u.key(), network);
        self.t.uplink_ports = uplink_ports(&self.t.uplinks);
        self
    }

    /// Undoes [`TablesBuilder::uplink`].
    pub fn remove_uplink(&mut self, network: u32) -> &mut Self {
        if let Some(old) = self.t.uplinks.remove(&network) {
            let (k, uplinks) = (old.key(), &self.t.uplinks);
            self.t.uplink_in.release(k, network, || uplinks.iter().find(|(_, u)| u.key() == k).map(|(&n, _)| n));
            self.t.uplink_ports = uplink_ports(&self.t.uplinks);
        }
        self
    }

    /// The other nodes with a port on `network` (none: the entry goes).
    pub fn flood_chassis(&mut self, network: u32, mut chassis: Vec<u32>) -> &mut Self {
        chassis.sort_unstable();
        chassis.dedup();
        if chassis.is_empty() {
            self.t.flood_chassis.remove(&network);
        } else {
            self.t.flood_chassis.insert(network, chassis);
        }
        self
    }

    pub fn build(mut self) -> Tables {
        self.t.large_routers = self.t.routers.values().any(Router::is_large);
        let filtered = || self.t.ports.iter().flatten().filter(|p| p.sg.is_some());
        let mut nets: Vec<u32> = filtered().map(|p| p.network).collect();
        nets.sort_unstable();
        nets.dedup();
        self.t.tracking = filtered().any(|p| p.sg.as_ref().is_some_and(|sg| sg.stateful));
        self.t.snat = self.t.nat.values().any(|n| n.snat.is_some() && n.is_local());
        self.t.filtered_networks = nets;
        self.t
    }

    /// Continues from existing tables: the local controller patches the last snapshot it published
    /// (removing what changed, adding it again) instead of building the whole node anew.
    pub fn from_tables(t: Tables) -> TablesBuilder {
        TablesBuilder { t, taken: FxHashMap::default() }
    }

    /// A fresh builder that reuses `prev`'s routers: [`TablesBuilder::router`] puts one back edited by
    /// difference when its interfaces are the same, as after [`TablesBuilder::remove_router`]. For a whole
    /// topology compiled again (`dragonflow run`'s SIGHUP), so that a change of one route among many
    /// costs one route there too, and the published trie keeps every other chunk.
    pub fn reusing_routers(prev: &Tables) -> TablesBuilder {
        let t = Tables { learned: prev.learned.clone(), ..Tables::default() };
        TablesBuilder { t, taken: prev.routers.clone() }
    }

    /// Undoes [`TablesBuilder::local_port`] for the port at `index` (its MAC, addresses and flood-list
    /// place; its network's entry once it has no local port left).
    pub fn remove_local_port(&mut self, index: u16) -> &mut Self {
        self.t.services.remove(&index);
        let Some(entry) = self.t.ports.get_mut(index as usize).and_then(Option::take) else { return self };
        if self.t.l2.get(&l2_key(entry.network, entry.mac)) == Some(&index) {
            self.t.l2.remove(&l2_key(entry.network, entry.mac));
        }
        for (_, ip) in &entry.allowed {
            if matches!(ip, IpNet::V4(_, 32) | IpNet::V6(_, 128)) {
                self.remove_neighbor(entry.network, *ip);
            }
        }
        if let Some(net) = self.t.networks.get_mut(&entry.network) {
            net.local_ports.retain(|&p| p != index);
            if net.local_ports.is_empty() {
                self.t.networks.remove(&entry.network);
            }
        }
        while self.t.ports.last().is_some_and(Option::is_none) {
            self.t.ports.pop();
        }
        self
    }

    /// Undoes [`TablesBuilder::neighbor`].
    pub fn remove_neighbor(&mut self, network: u32, ip: IpNet) -> &mut Self {
        match ip {
            IpNet::V4(a, _) => {
                self.t.arp.remove(&v4_key(network, a));
            }
            IpNet::V6(a, _) => {
                self.t.nd.remove(&(network, a.to_u128()));
            }
        }
        self
    }

    /// Undoes [`TablesBuilder::remote_port`].
    pub fn remove_remote_port(&mut self, network: u32, mac: Mac, ips: &[IpNet]) -> &mut Self {
        self.t.remote.remove(&l2_key(network, mac));
        for ip in ips {
            self.remove_neighbor(network, *ip);
        }
        self
    }

    /// Router `key`'s NAT on its external network (after [`TablesBuilder::router`]): its interfaces on that
    /// network route through NAT, and its SNAT address and floating IPs are its own there (answered for
    /// by ARP from the uplink, translated back).
    pub fn router_nat(&mut self, key: u32, nat: RouterNat) -> &mut Self {
        self.remove_router_nat(key);
        let Some(r) = self.t.routers.get_mut(&key) else { return self };
        let mut mac = None;
        for (i, iface) in r.ifaces.iter().enumerate().take(64) {
            if iface.network == nat.network && matches!(iface.ip, IpNet::V4(..)) {
                r.external |= 1 << i;
                mac = Some(iface.mac);
            }
        }
        let Some(mac) = mac else { return self };
        if !nat.is_local() {
            // Served by another node: its addresses are that node's to answer for and translate back.
            self.t.nat.insert(key, nat);
            return self;
        }
        let mut own = Vec::new();
        if let Some(a) = nat.snat {
            own.push((a, Outside::Snat));
        }
        own.extend(nat.fips.iter().map(|&(fixed, fip)| (fip, Outside::Fip(fixed))));
        for (a, what) in own {
            self.t.nat_in.insert(v4_key(nat.network, a), (key, what));
            self.neighbor(nat.network, IpNet::host_v4(a), mac);
        }
        self.t.nat.insert(key, nat);
        self
    }

    /// Undoes [`TablesBuilder::router_nat`].
    pub fn remove_router_nat(&mut self, key: u32) -> &mut Self {
        let Some(nat) = self.t.nat.remove(&key) else { return self };
        if let Some(r) = self.t.routers.get_mut(&key) {
            r.external = 0;
        }
        let own = nat.snat.into_iter().chain(nat.fips.iter().map(|f| f.1)).filter(|_| nat.is_local());
        for a in own {
            if self.t.nat_in.get(&v4_key(nat.network, a)).is_some_and(|(k, _)| *k == key) {
                self.t.nat_in.remove(&v4_key(nat.network, a));
                // (The SNAT address is the router's interface address too: its entry stays while the
                // interface does.)
                let iface = self.t.routers.get(&key).is_some_and(|r| {
                    r.ifaces.iter().any(|i| i.network == nat.network && matches!(i.ip, IpNet::V4(x, _) if x == a))
                });
                if !iface {
                    self.remove_neighbor(nat.network, IpNet::host_v4(a));
                }
            }
        }
        self
    }

    /// Undoes [`TablesBuilder::router`] for router `key`.
    pub fn remove_router(&mut self, key: u32) -> &mut Self {
        self.remove_router_nat(key);
        let Some(r) = self.t.routers.remove(&key) else { return self };
        for i in r.ifaces.clone() {
            self.t.router_macs.remove(&l2_key(i.network, i.mac));
            let host = match i.ip {
                IpNet::V4(a, _) => IpNet::host_v4(a),
                IpNet::V6(a, _) => IpNet::host_v6(a),
            };
            self.remove_neighbor(i.network, host);
        }
        self.taken.insert(key, r);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_router_taken_out_and_put_back_is_edited_to_what_a_fresh_build_gives() {
        let ifaces =
            [RouterIface { network: 1, mac: Mac([2, 0, 0, 0, 0, 1]), ip: IpNet::V4(Ipv4Addr::new(10, 0, 0, 1), 24) }];
        let r =
            |i: u8, gw: u8| (IpNet::V4(Ipv4Addr::new(11, i, 0, 0), 16), IpNet::host_v4(Ipv4Addr::new(10, 0, 0, gw)));
        let before = vec![r(1, 9), r(2, 9), r(2, 8), r(3, 9), r(1, 9)];
        let after = vec![r(2, 8), r(4, 9), r(3, 9), r(1, 9)];
        let mut b = TablesBuilder::new();
        b.router(7, &ifaces, before.as_slice());
        let published = b.build();
        let mut b = TablesBuilder::from_tables(published.clone());
        b.remove_router(7);
        b.router(7, &ifaces, after.as_slice());
        let edited = b.build();
        let mut fresh = TablesBuilder::new();
        fresh.router(7, &ifaces, after.as_slice());
        let fresh = fresh.build();
        assert_eq!(edited, fresh);
        assert_eq!(format!("{:?}", edited.routers[&7]), format!("{:?}", fresh.routers[&7]));
        let hop = |t: &Tables, i| t.routers[&7].route_v4(Ipv4Addr::new(11, i, 1, 1)).map(|h| h.neighbor);
        assert_eq!(hop(&edited, 2), Some(IpNet::host_v4(Ipv4Addr::new(10, 0, 0, 8))), "10.0.0.9 left the group");
        assert_eq!(hop(&edited, 4), Some(IpNet::host_v4(Ipv4Addr::new(10, 0, 0, 9))));
        assert_eq!(hop(&edited, 1), Some(IpNet::host_v4(Ipv4Addr::new(10, 0, 0, 9))), "named twice, removed once");
        assert_eq!(hop(&published, 4), None, "the published tables are not edited");
        assert!(hop(&published, 2).is_some());
    }

    #[test]
    fn builder_fills_l2_arp_and_flood_lists() {
        let mac = Mac([0xfa, 0x16, 0x3e, 0, 0, 1]);
        let mut b = TablesBuilder::new();
        b.local_port(
            3,
            PortEntry {
                lport: 7,
                network: 1,
                mac,
                up: true,
                security: true,
                allowed: vec![(mac, IpNet::host_v4(Ipv4Addr::new(10, 0, 0, 1)))],
                sg: None,
            },
        );
        let t = b.build();
        assert_eq!(t.port(3).unwrap().lport, 7);
        assert!(t.port(0).is_none() && t.port(9).is_none());
        assert_eq!(t.l2_lookup(1, mac), Some(3));
        assert_eq!(t.l2_lookup(2, mac), None, "networks are separate");
        assert_eq!(t.arp_lookup(1, Ipv4Addr::new(10, 0, 0, 1)), Some(mac));
        assert_eq!(t.networks[&1].local_ports, vec![3]);
    }

    #[test]
    fn tables_are_equal_by_content_not_by_build_order() {
        let entry = |i: u8| {
            let mac = Mac([0xfa, 0x16, 0x3e, 0, 0, i]);
            PortEntry {
                lport: i as u32,
                network: 1,
                mac,
                up: true,
                security: true,
                allowed: vec![(mac, IpNet::host_v4(Ipv4Addr::new(10, 0, 0, i)))],
                sg: None,
            }
        };
        let mut a = TablesBuilder::new();
        a.local_port(1, entry(1)).local_port(2, entry(2));
        let mut b = TablesBuilder::new();
        b.local_port(2, entry(2)).local_port(1, entry(1));
        let (a, b) = (a.build(), b.build());
        assert_ne!(a.networks[&1].local_ports, b.networks[&1].local_ports, "built in another order");
        assert_eq!(a, b);
        let mut c = b.clone();
        c.ports.push(None);
        assert_eq!(a, c, "a free slot at the end");
        let mut d = TablesBuilder::from_tables(b);
        d.neighbor(1, IpNet::host_v4(Ipv4Addr::new(10, 0, 0, 9)), Mac([2, 0, 0, 0, 0, 9]));
        assert_ne!(a, d.build());
    }
}
