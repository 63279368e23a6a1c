//! The distributed router's tables: each router's interfaces (one per attached subnet: network, MAC,
//! gateway address) and its routes (the attached subnets plus extra routes), looked up by longest prefix.
//! Every node holds the routers of its networks, so routing happens on the node the packet enters.

use crate::wire::{IpNet, Ipv4Addr, Ipv6Addr, Mac};

/// A router interface: the router's port on one network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouterIface {
    pub network: u32,
    pub mac: Mac,
    /// The gateway address, with the subnet's prefix length.
    pub ip: IpNet,
}

/// Where a prefix goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextHop {
    /// An attached subnet: to the destination itself, out of interface `iface`.
    Connected { iface: u16 },
    /// An extra route: to this gateway (on an attached subnet).
    Via(IpNet),
}

/// One router.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Router {
    pub ifaces: Vec<RouterIface>,
    /// Longest prefix first.
    pub routes: Vec<(IpNet, NextHop)>,
    /// The IPv4 routes again in the lookup's fast form, longest first, gateways resolved.
    v4: Vec<V4Route>,
    /// The router's own IPv4 addresses.
    own_v4: Vec<u32>,
}

/// An IPv4 route as the lookup scans it: the extra routes' gateways resolved to their interface when the
/// router is built, not per packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct V4Route {
    pub net: u32,
    pub mask: u32,
    /// Out of this interface; `u16::MAX`: the gateway is on no attached subnet (no route).
    pub iface: u16,
    /// To this gateway; 0 (never a gateway): to the destination itself.
    pub gateway: u32,
    /// No longer prefix and none of the router's own addresses lies inside this one: every destination
    /// it matches gets this very answer, so a burst may reuse it without a lookup.
    pub leaf: bool,
}

impl V4Route {
    /// The next hop for `dst` (which this route matches).
    #[inline(always)]
    pub fn resolve(&self, dst: Ipv4Addr) -> Option<Resolved> {
        if self.iface == u16::MAX {
            return None;
        }
        let neighbor = if self.gateway == 0 { dst } else { Ipv4Addr::from_u32(self.gateway) };
        Some(Resolved { iface: self.iface, neighbor: IpNet::host_v4(neighbor) })
    }

    #[inline(always)]
    pub fn matches(&self, dst: u32) -> bool {
        dst & self.mask == self.net
    }
}

/// The result of a route lookup: out of `iface`, to the neighbour whose address is `neighbor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolved {
    pub iface: u16,
    pub neighbor: IpNet,
}

fn prefix_len(n: &IpNet) -> u8 {
    match n {
        IpNet::V4(_, l) | IpNet::V6(_, l) => *l,
    }
}

impl Router {
    /// Adds an interface and its connected route.
    pub fn add_iface(&mut self, iface: RouterIface) {
        let i = self.ifaces.len() as u16;
        self.ifaces.push(iface);
        self.add_route(iface.ip, NextHop::Connected { iface: i });
    }

    /// Adds a route, keeping the longest prefixes first.
    pub fn add_route(&mut self, net: IpNet, hop: NextHop) {
        let at = self.routes.iter().position(|(n, _)| prefix_len(n) < prefix_len(&net)).unwrap_or(self.routes.len());
        self.routes.insert(at, (net, hop));
        self.compile_v4();
    }

    /// Rebuilds the IPv4 fast form from `routes` and `ifaces`.
    fn compile_v4(&mut self) {
        let lookup = |a: Ipv4Addr| self.lookup(|n| n.contains_v4(a)).copied();
        let v4 = self
            .routes
            .iter()
            .filter_map(|(n, h)| match *n {
                IpNet::V4(a, len) => {
                    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len.min(32)) };
                    let (iface, gateway) = match *h {
                        NextHop::Connected { iface } => (iface, 0),
                        NextHop::Via(IpNet::V4(gw, _)) => match lookup(gw) {
                            Some(NextHop::Connected { iface }) if gw.to_u32() != 0 => (iface, gw.to_u32()),
                            _ => (u16::MAX, 0),
                        },
                        NextHop::Via(IpNet::V6(..)) => (u16::MAX, 0),
                    };
                    Some(V4Route { net: a.to_u32() & mask, mask, iface, gateway, leaf: false })
                }
                IpNet::V6(..) => None,
            })
            .collect::<Vec<_>>();
        self.own_v4 = self
            .ifaces
            .iter()
            .filter_map(|i| match i.ip {
                IpNet::V4(a, _) => Some(a.to_u32()),
                IpNet::V6(..) => None,
            })
            .collect();
        self.v4 = v4
            .iter()
            .map(|r| {
                let longer_inside = v4.iter().any(|o| o.mask > r.mask && r.matches(o.net));
                let own_inside = self.own_v4.iter().any(|&a| r.matches(a));
                V4Route { leaf: !longer_inside && !own_inside, ..*r }
            })
            .collect();
    }

    fn lookup(&self, contains: impl Fn(&IpNet) -> bool) -> Option<&NextHop> {
        self.routes.iter().find(|(n, _)| contains(n)).map(|(_, h)| h)
    }

    /// Longest-prefix match of an IPv4 destination, resolved to an interface and a neighbour (one level
    /// of gateway recursion: an extra route's gateway must be on an attached subnet).
    #[inline]
    pub fn route_v4(&self, dst: Ipv4Addr) -> Option<Resolved> {
        self.lookup_v4(dst)?.resolve(dst)
    }

    /// The longest route matching `dst`.
    #[inline]
    pub fn lookup_v4(&self, dst: Ipv4Addr) -> Option<&V4Route> {
        let a = dst.to_u32();
        self.v4.iter().find(|r| r.matches(a))
    }

    /// As [`Router::route_v4`] for IPv6.
    pub fn route_v6(&self, dst: Ipv6Addr) -> Option<Resolved> {
        match *self.lookup(|n| n.contains_v6(dst))? {
            NextHop::Connected { iface } => Some(Resolved { iface, neighbor: IpNet::host_v6(dst) }),
            NextHop::Via(IpNet::V6(gw, _)) => match *self.lookup(|n| n.contains_v6(gw))? {
                NextHop::Connected { iface } => Some(Resolved { iface, neighbor: IpNet::host_v6(gw) }),
                NextHop::Via(_) => None,
            },
            NextHop::Via(IpNet::V4(..)) => None,
        }
    }

    /// True if `ip` is one of the router's own (gateway) addresses.
    #[inline]
    pub fn owns_v4(&self, ip: Ipv4Addr) -> bool {
        self.own_v4.contains(&ip.to_u32())
    }

    pub fn owns_v6(&self, ip: Ipv6Addr) -> bool {
        self.ifaces.iter().any(|i| matches!(i.ip, IpNet::V6(a, _) if a == ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(a: u8, b: u8, c: u8, d: u8) -> Ipv4Addr {
        Ipv4Addr::new(a, b, c, d)
    }

    #[test]
    fn longest_prefix_wins_and_gateways_resolve() {
        let mut r = Router::default();
        r.add_iface(RouterIface { network: 1, mac: Mac([2, 0, 0, 0, 0, 1]), ip: IpNet::V4(v4(10, 0, 0, 254), 24) });
        r.add_iface(RouterIface { network: 2, mac: Mac([2, 0, 0, 0, 0, 2]), ip: IpNet::V4(v4(10, 2, 0, 254), 24) });
        r.add_route(IpNet::V4(v4(10, 1, 0, 0), 16), NextHop::Via(IpNet::host_v4(v4(10, 2, 0, 2))));
        r.add_route(IpNet::V4(v4(0, 0, 0, 0), 0), NextHop::Via(IpNet::host_v4(v4(10, 0, 0, 1))));
        assert_eq!(r.route_v4(v4(10, 0, 0, 7)), Some(Resolved { iface: 0, neighbor: IpNet::host_v4(v4(10, 0, 0, 7)) }));
        assert_eq!(r.route_v4(v4(10, 1, 3, 4)), Some(Resolved { iface: 1, neighbor: IpNet::host_v4(v4(10, 2, 0, 2)) }));
        assert_eq!(r.route_v4(v4(8, 8, 8, 8)), Some(Resolved { iface: 0, neighbor: IpNet::host_v4(v4(10, 0, 0, 1)) }));
        assert!(r.owns_v4(v4(10, 2, 0, 254)) && !r.owns_v4(v4(10, 2, 0, 2)));
        let mut bare = Router::default();
        bare.add_route(IpNet::V4(v4(10, 9, 0, 0), 16), NextHop::Via(IpNet::host_v4(v4(192, 168, 0, 1))));
        assert_eq!(bare.route_v4(v4(10, 9, 0, 1)), None, "a gateway on no attached subnet does not resolve");
        assert_eq!(bare.route_v4(v4(1, 1, 1, 1)), None);
    }

    #[test]
    fn leaves_hold_no_longer_prefix_and_no_own_address() {
        let mut r = Router::default();
        r.add_iface(RouterIface { network: 1, mac: Mac([2, 0, 0, 0, 0, 1]), ip: IpNet::V4(v4(10, 0, 0, 254), 24) });
        r.add_iface(RouterIface { network: 2, mac: Mac([2, 0, 0, 0, 0, 2]), ip: IpNet::V4(v4(10, 2, 0, 254), 24) });
        r.add_route(IpNet::V4(v4(10, 1, 0, 0), 16), NextHop::Via(IpNet::host_v4(v4(10, 2, 0, 2))));
        r.add_route(IpNet::V4(v4(10, 1, 7, 0), 24), NextHop::Via(IpNet::host_v4(v4(10, 2, 0, 9))));
        r.add_route(IpNet::V4(v4(10, 3, 0, 0), 16), NextHop::Via(IpNet::host_v4(v4(10, 2, 0, 2))));
        let leaf = |a| r.lookup_v4(a).map(|route| route.leaf);
        assert_eq!(leaf(v4(10, 0, 0, 1)), Some(false), "holds the gateway 10.0.0.254");
        assert_eq!(leaf(v4(10, 1, 3, 1)), Some(false), "holds 10.1.7.0/24");
        assert_eq!(leaf(v4(10, 1, 7, 1)), Some(true));
        assert_eq!(leaf(v4(10, 3, 0, 1)), Some(true));
        assert_eq!(leaf(v4(8, 8, 8, 8)), None);
    }
}
