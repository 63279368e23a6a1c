//! How the tables reach other nodes: this node's underlay, each tunnelled network's segment on the wire,
//! the other nodes a network's floods are replicated to (head-end replication), those nodes' tunnel
//! endpoints and the underlay's next hops toward them; and each provider network's uplink (VLAN, flat),
//! from the node's bridge mappings ([`Links`]).
//!
//! Selective and incremental, per network: a network's segment and flood list are computed again only
//! when a port fragment of it was rebuilt (a port of it changed, the network itself, or a chassis with a
//! port on it: the controller makes that chassis' ports dirty). A tunnelled network's flood list holds the
//! chassis with a remote port of it whose record (`chassis` table) gives a usable IPv4 tunnel endpoint
//! (unicast, not this node's) and takes the network's encapsulation; any other chassis is left out
//! (packets for its ports drop as `tunnel.no_chassis`, counted). The chassis entries are those the flood
//! lists name, put and taken by difference. A provider network floods out of its uplink instead.
//!
//! Next hops: a chassis in the underlay's subnet is reached directly, any other through the underlay's
//! gateway; the dataplane resolves their MACs (`pipelines::tunnel::NextHops`), and a new set of next hops
//! keeps the MACs learned for the addresses it shares with the old one.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use pipelines::tables::{TablesBuilder, Uplink};
use pipelines::tunnel::{Chassis, Encap, NextHops, Segment, Underlay};
use pipelines::wire::Ipv4Addr;

use super::fragment::View;
use crate::keys::ChassisKey;
use crate::model::{Network, NetworkType};

/// This node's underlay, as the node configures it: the port, MAC, tunnel endpoint and how outer headers
/// are written ([`Underlay`]), the subnet's prefix length and its gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TunnelConfig {
    pub underlay: Underlay,
    pub prefix_len: u8,
    pub gateway: Option<Ipv4Addr>,
}

impl TunnelConfig {
    /// The next hop toward tunnel endpoint `ip`: itself on the underlay's subnet, else the gateway.
    fn next_hop(&self, ip: Ipv4Addr) -> Ipv4Addr {
        let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix_len.min(32))).unwrap_or(0);
        let on_link = (ip.to_u32() ^ self.underlay.ip.to_u32()) & mask == 0;
        match self.gateway {
            Some(gw) if !on_link => gw,
            _ => ip,
        }
    }
}

/// How this node reaches the others: its underlay for tunnels (`None`: no tunnel leaves it), and its
/// bridge mappings, physical network → the dataplane port of its uplink, for provider networks; and,
/// beside them, what its DHCP serves that the model does not say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Links {
    pub tunnel: Option<TunnelConfig>,
    pub uplinks: BTreeMap<String, u16>,
    pub services: super::services::ServicesConfig,
}

/// A network's segment on the wire, if it is a tunnelled type with a segmentation ID in range.
pub(crate) fn segment(n: &Network) -> Option<Segment> {
    let encap = match n.network_type? {
        NetworkType::Vxlan => Encap::Vxlan,
        NetworkType::Geneve => Encap::Geneve,
        NetworkType::Gre => Encap::Gre,
        NetworkType::Vlan | NetworkType::Flat | NetworkType::Local => return None,
    };
    let id = n.segmentation_id.filter(|&id| id <= encap.max_id())?;
    Some(Segment { encap, id })
}

/// The [`Encap::bit`]s of a chassis' `tunnel_types` (none named: all).
fn encaps(types: &[NetworkType]) -> u8 {
    let bit = |t: &NetworkType| match t {
        NetworkType::Vxlan => Encap::Vxlan.bit(),
        NetworkType::Geneve => Encap::Geneve.bit(),
        NetworkType::Gre => Encap::Gre.bit(),
        _ => 0,
    };
    if types.is_empty() {
        Encap::ALL
    } else {
        types.iter().map(bit).fold(0, |a, b| a | b)
    }
}

/// A provider network's uplink on this node: its physical network mapped here, and its VLAN (1–4094) or
/// none (flat).
fn uplink(n: &Network, uplinks: &BTreeMap<String, u16>) -> Option<Uplink> {
    let port = *uplinks.get(n.physical_network.as_ref()?)?;
    let vlan = match n.network_type? {
        NetworkType::Vlan => Some(n.segmentation_id.filter(|id| (1..4095).contains(id))? as u16),
        NetworkType::Flat => None,
        _ => return None,
    };
    Some(Uplink { port, vlan })
}

/// What the tables hold of one network here.
#[derive(Debug, Default, PartialEq, Eq)]
struct Net {
    seg: Option<Segment>,
    uplink: Option<Uplink>,
    /// The chassis (host names) its floods go to.
    hosts: BTreeSet<String>,
}

/// The tunnels' and uplinks' part of a set of tables (see the module's doc).
#[derive(Debug, Default)]
pub(crate) struct Tunnels {
    links: Links,
    /// By network id, those that have anything here.
    nets: HashMap<String, Net>,
    /// Host → in how many flood lists.
    used: HashMap<String, usize>,
    /// The chassis entries in the tables, by host name.
    put: HashMap<String, (ChassisKey, Chassis)>,
    hops: Arc<NextHops>,
}

impl Tunnels {
    /// Tunnels and uplinks as `links` says (no underlay: segments and flood lists are compiled all the
    /// same), keeping the MACs `hops` learned.
    pub(crate) fn new(links: Links, hops: Arc<NextHops>) -> Tunnels {
        Tunnels { links, hops, ..Tunnels::default() }
    }

    /// The next hops the tables use (to carry their MACs over a restart of the compilation).
    pub(crate) fn hops(&self) -> Arc<NextHops> {
        self.hops.clone()
    }

    /// Whether the tables hold network `net`'s segment, uplink or flood list.
    pub(crate) fn has_network(&self, net: &str) -> bool {
        self.nets.contains_key(net)
    }

    /// Computes again the segments, uplinks and flood lists of `nets` (network ids; `remote(net)` lists
    /// the hosts of the remote ports the tables hold on it), then the chassis entries and next hops; true
    /// if the tables changed.
    pub(crate) fn settle<'h>(
        &mut self,
        view: &mut View<'_>,
        nets: &BTreeSet<String>,
        remote: impl Fn(&str) -> Vec<&'h str>,
        b: &mut TablesBuilder,
    ) -> bool {
        let mut changed = false;
        b.underlay(self.links.tunnel.map(|c| c.underlay));
        for net in nets {
            let key = view.keys.network(net);
            let n = view.model.networks.get(net).filter(|_| view.needed.contains(net));
            let seg = n.and_then(segment);
            match seg {
                Some(seg) => b.segment(key.into(), seg),
                None => b.remove_segment(key.into()),
            };
            let up = n.and_then(|n| uplink(n, &self.links.uplinks));
            match up {
                Some(u) => b.uplink(key.into(), u),
                None => b.remove_uplink(key.into()),
            };
            // A tunnelled network floods to the chassis with a port on it that take its encapsulation.
            let kind = n.and_then(|n| n.network_type);
            let hosts: BTreeSet<String> = match (seg, kind) {
                (Some(_), Some(kind)) => remote(net)
                    .into_iter()
                    .filter(|h| *h != view.chassis && self.endpoint(view, h, Some(kind)).is_some())
                    .map(str::to_owned)
                    .collect(),
                _ => BTreeSet::new(),
            };
            let keys = hosts.iter().map(|h| view.keys.chassis(h).into()).collect();
            b.flood_chassis(key.into(), keys);
            let now = Net { seg, uplink: up, hosts };
            let old = if now == Net::default() { self.nets.remove(net) } else { self.nets.insert(net.clone(), now) };
            let new = self.nets.get(net);
            if old.as_ref() != new {
                changed = true;
                for h in old.iter().flat_map(|o| &o.hosts) {
                    if let Some(c) = self.used.get_mut(h) {
                        *c -= 1;
                        if *c == 0 {
                            self.used.remove(h);
                        }
                    }
                }
                for h in new.iter().flat_map(|n| &n.hosts) {
                    *self.used.entry(h.clone()).or_default() += 1;
                }
            }
        }
        changed | self.settle_chassis(view, b)
    }

    /// The chassis entries the flood lists need, and their next hops, put by difference.
    fn settle_chassis(&mut self, view: &mut View<'_>, b: &mut TablesBuilder) -> bool {
        let mut endpoints: Vec<(&String, Ipv4Addr)> =
            self.used.keys().filter_map(|h| Some((h, self.endpoint(view, h, None)?))).collect();
        endpoints.sort();
        let next_hop = |ip| self.links.tunnel.map_or(ip, |c| c.next_hop(ip));
        let mut hop_ips: Vec<Ipv4Addr> = endpoints.iter().map(|&(_, ip)| next_hop(ip)).collect();
        hop_ips.sort_by_key(|ip| ip.to_u32());
        hop_ips.dedup();
        let mut changed = false;
        if !self.hops.ips().eq(hop_ips.iter().copied()) {
            self.hops = Arc::new(NextHops::carried_over(&hop_ips, &self.hops));
            changed = true;
        }
        b.next_hops(self.hops.clone());
        let index: HashMap<Ipv4Addr, u16> = hop_ips.iter().enumerate().map(|(i, &ip)| (ip, i as u16)).collect();
        let mut want: HashMap<String, (ChassisKey, Chassis)> = HashMap::new();
        for (host, ip) in endpoints {
            let hop = index[&next_hop(ip)];
            let encaps = encaps(&view.model.chassis[host.as_str()].tunnel_types);
            want.insert(host.clone(), (view.keys.chassis(host), Chassis { ip, hop, encaps }));
        }
        for (host, (key, _)) in &self.put {
            if !want.contains_key(host) {
                b.remove_chassis((*key).into());
                changed = true;
            }
        }
        for (host, (key, c)) in &want {
            if self.put.get(host) != Some(&(*key, *c)) {
                b.chassis((*key).into(), *c);
                changed = true;
            }
        }
        self.put = want;
        changed
    }

    /// The tunnel endpoint host `h`'s chassis record gives, if it is one to tunnel to: an IPv4 unicast
    /// address (an IPv6 underlay is not offered yet) that is not this node's own; and, with `kind`, if
    /// the chassis takes that encapsulation (a record that names none takes all).
    fn endpoint(&self, view: &View<'_>, h: &str, kind: Option<NetworkType>) -> Option<Ipv4Addr> {
        let c = view.model.chassis.get(h)?;
        if kind.is_some_and(|k| !c.tunnel_types.is_empty() && !c.tunnel_types.contains(&k)) {
            return None;
        }
        let ip: std::net::Ipv4Addr = c.ip.parse().ok()?;
        let usable = !(ip.is_unspecified() || ip.is_loopback() || ip.is_multicast() || ip.is_broadcast());
        let ours = self.links.tunnel.is_some_and(|t| t.underlay.ip == ip.into());
        (usable && !ours).then(|| ip.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(gateway: Option<Ipv4Addr>) -> TunnelConfig {
        let underlay = Underlay {
            port: 3,
            mac: pipelines::wire::Mac([2, 0, 0, 0, 0, 1]),
            ip: Ipv4Addr::new(192, 168, 50, 1),
            dont_fragment: true,
            ttl: 64,
        };
        TunnelConfig { underlay, prefix_len: 24, gateway }
    }

    #[test]
    fn a_chassis_on_the_subnet_is_its_own_next_hop_others_go_by_the_gateway() {
        let gw = Ipv4Addr::new(192, 168, 50, 254);
        let c = config(Some(gw));
        assert_eq!(c.next_hop(Ipv4Addr::new(192, 168, 50, 7)), Ipv4Addr::new(192, 168, 50, 7));
        assert_eq!(c.next_hop(Ipv4Addr::new(192, 168, 51, 7)), gw);
        assert_eq!(config(None).next_hop(Ipv4Addr::new(10, 0, 0, 1)), Ipv4Addr::new(10, 0, 0, 1), "no gateway");
        let all = TunnelConfig { prefix_len: 0, ..c };
        assert_eq!(all.next_hop(Ipv4Addr::new(10, 0, 0, 1)), Ipv4Addr::new(10, 0, 0, 1), "/0: all on link");
    }

    #[test]
    fn only_tunnelled_types_with_an_id_in_range_have_a_segment() {
        let n = |t, id| Network {
            network_type: Some(t),
            segmentation_id: id,
            ..serde_json::from_str::<Network>(r#"{"id": "n"}"#).unwrap()
        };
        assert_eq!(segment(&n(NetworkType::Vxlan, Some(7))), Some(Segment { encap: Encap::Vxlan, id: 7 }));
        assert_eq!(segment(&n(NetworkType::Gre, Some(u32::MAX))), Some(Segment { encap: Encap::Gre, id: u32::MAX }));
        assert_eq!(segment(&n(NetworkType::Geneve, Some(1 << 24))), None, "a VNI is 24 bits");
        assert_eq!(segment(&n(NetworkType::Vxlan, None)), None);
        assert_eq!(segment(&n(NetworkType::Vlan, Some(7))), None);
    }
}
