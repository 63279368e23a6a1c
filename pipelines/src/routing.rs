//! The distributed router's tables: each router's interfaces (one per attached subnet: network, MAC,
//! gateway address) and its routes (the attached subnets plus extra routes), looked up by longest prefix.
//! Every node holds the routers of its networks, so routing happens on the node the packet enters.
//!
//! A lookup takes the same steps with one route or a million: the prefixes live in a [`Trie`] per family
//! (`lpm.rs`: at most 4 steps for IPv4, 16 for IPv6, whatever the count; what grows with the count is
//! the memory those steps touch, hence the batched lookups of `stages::routes_ahead`, prefetched so that
//! their cache misses overlap), and every prefix's answer is resolved when the router is built, not per
//! packet: the router's own addresses are host prefixes whose answer is "local" (so "is it for the
//! router?" is the same lookup), an attached subnet's answer is its interface, and an extra route's is
//! its gateway with the gateway's interface. Several extra routes to one destination (Neutron allows it)
//! are one equal-cost group: a packet's flow (its addresses, protocol and ports) picks the member, so a
//! flow keeps one path.
//!
//! Precedence for one prefix, as Linux and Neutron have it: the router's own address, then the attached
//! subnet, then the extra routes. A gateway resolves through the attached subnets only (the longest
//! that holds it, as Linux's link-scope check of a next hop), never through another extra route.
//!
//! A [`Router`] is a plain value that clones in time independent of its routes (the tries and the route
//! map are persistent structures, shared by reference count), and an edit copies only its own path in
//! them: the local controller patches tables without copying routes ([`Router::set_routes`]).

use std::sync::Arc;

use rustc_hash::FxHashMap;

pub use crate::lpm::HopId;
use crate::lpm::Trie;
use crate::wire::{IpNet, Ipv4Addr, Ipv6Addr, Mac};

/// Above this many bytes of tries (half a core's L2 cache here), a router's lookups are batched per
/// burst.
pub const LARGE_BYTES: usize = 256 << 10;

/// A router interface: the router's port on one network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouterIface {
    pub network: u32,
    pub mac: Mac,
    /// The gateway address, with the subnet's prefix length.
    pub ip: IpNet,
}

/// One router: its interfaces and routes, and the lookup structures built from them.
#[derive(Clone, Default)]
pub struct Router {
    pub ifaces: Vec<RouterIface>,
    /// The interfaces on the router's external network (bit `i`: `ifaces[i]`): what is routed out of one
    /// goes through NAT (`stages/nat.rs`). Set with the router's NAT ([`crate::tables::TablesBuilder::router_nat`]).
    pub external: u64,
    /// Per prefix (host bits cleared), what was configured for it: the source of everything below. A
    /// persistent map: a clone shares it, an edit copies a path of it, never all of it.
    routes: imbl::HashMap<IpNet, Configured>,
    v4: Trie<4>,
    v6: Trie<16>,
    /// The tries' answers, numbered from 1 (`HopId` n is `hops[n - 1]`).
    hops: Vec<Hop>,
    /// The members of the equal-cost groups.
    members: Vec<Resolved>,
    /// Interned answers: one `HopId` per distinct answer, whatever the number of prefixes sharing it.
    /// An answer no prefix uses any more keeps its number (and a group its members) until the router is
    /// built again: few in practice (interfaces and gateway sets), but not reclaimed.
    ids: FxHashMap<Answer, HopId>,
    /// The extra routes as last set ([`Router::set_routes`]), the reference its next call differs from.
    extra: Arc<[(IpNet, IpNet)]>,
}

/// Two routers are equal when they were configured alike: same interfaces, same routes.
impl PartialEq for Router {
    fn eq(&self, other: &Router) -> bool {
        self.ifaces == other.ifaces && self.routes == other.routes
    }
}

impl Eq for Router {}

/// The interfaces, then every prefix (sorted) with what was configured for it and the answer a lookup
/// gives: the same text for two routers configured alike, however they were built.
impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut routes: Vec<String> = self
            .routes
            .iter()
            .map(|(net, c)| {
                let id = match *net {
                    IpNet::V4(a, l) => self.v4.get(&a.0, l),
                    IpNet::V6(a, l) => self.v6.get(&a.0, l),
                };
                let hop = id.and_then(|id| self.hops.get(id as usize - 1));
                let hop = match hop {
                    Some(Hop::Group { first, count }) => {
                        format!("{:?}", &self.members[*first as usize..(*first + *count) as usize])
                    }
                    other => format!("{other:?}"),
                };
                format!("{net:?} {c:?} -> {hop}")
            })
            .collect();
        routes.sort();
        f.debug_struct("Router").field("ifaces", &self.ifaces).field("routes", &routes).finish()
    }
}

/// What was configured for one prefix.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Configured {
    /// One of the router's own addresses (a host prefix).
    own: bool,
    /// An attached subnet: the first interface on it.
    connected: Option<u16>,
    /// Extra routes' gateways, sorted (so that a group is the same whatever order its routes came in),
    /// each with how many times the route list names it.
    via: Vec<(IpNet, u32)>,
}

/// A prefix's answer, before resolution to interfaces.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Answer {
    Local,
    Connected(u16),
    /// Gateways, sorted (a group is the same whatever order its routes came in).
    Via(Vec<IpNet>),
}

/// A prefix's answer, resolved: what a lookup returns without further work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hop {
    Local,
    /// To the destination itself, out of this interface.
    Direct(u16),
    /// To one gateway.
    Via(Resolved),
    /// To one of `count` gateways, `members[first..]`, by flow.
    Group {
        first: u32,
        count: u32,
    },
    /// Gateways on no attached subnet.
    Unreachable,
}

/// What a route lookup decided for a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// One of the router's own addresses.
    Local,
    /// Out of `iface`, to `neighbor`.
    Next(Resolved),
    NoRoute,
}

/// The result of a route lookup: out of `iface`, to the neighbour whose address is `neighbor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolved {
    pub iface: u16,
    pub neighbor: IpNet,
}

/// The order of gateways in a group.
fn gw_order(g: IpNet) -> (u8, u128) {
    match g {
        IpNet::V4(a, _) => (4, u128::from(a.to_u32())),
        IpNet::V6(a, _) => (6, a.to_u128()),
    }
}

/// An extra route as the router keys it: the destination without host bits, the gateway as a host.
fn norm(&(net, gw): &(IpNet, IpNet)) -> (IpNet, IpNet) {
    (net.network(), host(gw))
}

/// `a` as a host prefix (an interface's or a gateway's address, whatever length it came with).
fn host(a: IpNet) -> IpNet {
    match a {
        IpNet::V4(a, _) => IpNet::host_v4(a),
        IpNet::V6(a, _) => IpNet::host_v6(a),
    }
}

impl Router {
    /// Adds an interface: its address is the router's own, its subnet an attached one.
    pub fn add_iface(&mut self, iface: RouterIface) {
        let i = self.ifaces.len() as u16;
        self.ifaces.push(iface);
        self.configure(host(iface.ip), |c| c.own = true);
        self.configure(iface.ip.network(), |c| {
            c.connected.get_or_insert(i);
        });
        // A gateway may resolve now, or to a longer subnet.
        self.resolve_all();
    }

    /// Adds an extra route: `net` via `gateway` (to the end of the route list). A second gateway for the
    /// same `net` makes them an equal-cost group. Copies the route list: for tests and single edits; a
    /// new list is [`Router::set_routes`]'s.
    pub fn add_route(&mut self, net: IpNet, gateway: IpNet) {
        let mut v = self.extra.to_vec();
        v.push((net, gateway));
        self.set_routes(v);
    }

    /// Removes extra route `net` via `gateway` from the route list; true if the list had it.
    pub fn remove_route(&mut self, net: IpNet, gateway: IpNet) -> bool {
        let key = (net.network(), host(gateway));
        let Some(at) = self.extra.iter().position(|r| norm(r) == key) else { return false };
        let mut v = self.extra.to_vec();
        v.remove(at);
        self.set_routes(v);
        true
    }

    /// The extra routes (destination, gateway) as last set, in their order.
    pub fn extra_routes(&self) -> &[(IpNet, IpNet)] {
        &self.extra
    }

    /// Makes the extra routes `routes` (destination, gateway; Neutron's list, repeats allowed), by
    /// difference with the list last set, position by position: a route at the same place in both lists
    /// costs one comparison and is not touched, so a change of one route among a million edits one
    /// path of the trie and of the route map. The list is kept by reference (an `Arc` passed in is not
    /// copied).
    pub fn set_routes(&mut self, routes: impl Into<Arc<[(IpNet, IpNet)]>>) {
        let new: Arc<[(IpNet, IpNet)]> = routes.into();
        let old = std::mem::replace(&mut self.extra, new.clone());
        if Arc::ptr_eq(&old, &new) {
            return;
        }
        let common = old.len().min(new.len());
        let mut gone = Vec::new();
        // Additions first: a route that only moved in the list never leaves the trie.
        for (o, n) in old[..common].iter().zip(&new[..common]) {
            if o == n {
                continue;
            }
            let (o, n) = (norm(o), norm(n));
            if o != n {
                self.count(n, 1);
                gone.push(o);
            }
        }
        for r in &new[common..] {
            self.count(norm(r), 1);
        }
        gone.extend(old[common..].iter().map(norm));
        for r in gone {
            self.count(r, -1);
        }
    }

    /// Counts one more (or one less) mention of route `net` via `gw`; the route map and the trie change
    /// only when the route appears or disappears.
    fn count(&mut self, (net, gw): (IpNet, IpNet), delta: i32) {
        let cur = self.routes.get(&net).and_then(|c| c.via.iter().find(|v| v.0 == gw)).map_or(0, |v| v.1);
        let next = cur.saturating_add_signed(delta);
        if cur == next {
            return;
        }
        if cur > 0 && next > 0 {
            if let Some(v) = self.routes.get_mut(&net).and_then(|c| c.via.iter_mut().find(|v| v.0 == gw)) {
                v.1 = next;
            }
            return;
        }
        self.configure(net, |c| {
            if next == 0 {
                c.via.retain(|v| v.0 != gw);
            } else {
                let at = c.via.partition_point(|v| gw_order(v.0) < gw_order(gw));
                c.via.insert(at, (gw, next));
            }
        });
    }

    /// How many prefixes the router holds (its own addresses, attached subnets, extra routes'
    /// destinations).
    pub fn prefixes(&self) -> usize {
        self.routes.len()
    }

    /// Edits what is configured for one prefix and puts its new answer in the trie (or takes the prefix
    /// out, when nothing is left configured for it).
    fn configure(&mut self, net: IpNet, edit: impl FnOnce(&mut Configured)) {
        let routes = &mut self.routes;
        let c = routes.entry(net).or_default();
        edit(c);
        let answer = if c.own {
            Some(Answer::Local)
        } else if let Some(i) = c.connected {
            Some(Answer::Connected(i))
        } else if !c.via.is_empty() {
            Some(Answer::Via(c.via.iter().map(|v| v.0).collect()))
        } else {
            routes.remove(&net);
            None
        };
        let id = answer.map(|a| self.intern(a));
        match (net, id) {
            (IpNet::V4(a, len), Some(id)) => self.v4.insert(&a.0, len, id),
            (IpNet::V6(a, len), Some(id)) => self.v6.insert(&a.0, len, id),
            (IpNet::V4(a, len), None) => {
                self.v4.remove(&a.0, len);
            }
            (IpNet::V6(a, len), None) => {
                self.v6.remove(&a.0, len);
            }
        }
    }

    /// The id of an answer, resolved and numbered the first time it is seen. An answer no prefix uses
    /// any more keeps its number: a router's distinct answers are its interfaces and its sets of
    /// gateways, few whatever the number of routes.
    fn intern(&mut self, a: Answer) -> HopId {
        if let Some(&id) = self.ids.get(&a) {
            return id;
        }
        let hop = self.resolve(&a);
        self.hops.push(hop);
        let id = self.hops.len() as HopId;
        self.ids.insert(a, id);
        id
    }

    fn resolve(&mut self, a: &Answer) -> Hop {
        match a {
            Answer::Local => Hop::Local,
            Answer::Connected(i) => Hop::Direct(*i),
            Answer::Via(gws) => {
                let up: Vec<Resolved> =
                    gws.iter().filter_map(|gw| Some(Resolved { iface: self.attached(*gw)?, neighbor: *gw })).collect();
                match up.as_slice() {
                    [] => Hop::Unreachable,
                    [one] => Hop::Via(*one),
                    many => {
                        let first = self.members.len() as u32;
                        self.members.extend_from_slice(many);
                        Hop::Group { first, count: many.len() as u32 }
                    }
                }
            }
        }
    }

    /// Resolves every answer again (the attached subnets changed).
    fn resolve_all(&mut self) {
        self.members.clear();
        let mut answers: Vec<(Answer, HopId)> = self.ids.iter().map(|(a, id)| (a.clone(), *id)).collect();
        answers.sort_by_key(|(_, id)| *id);
        for (a, id) in answers {
            self.hops[id as usize - 1] = self.resolve(&a);
        }
    }

    /// The interface of the longest attached subnet holding gateway `gw` (not as the router's own
    /// address).
    fn attached(&self, gw: IpNet) -> Option<u16> {
        let holds = |i: &RouterIface| match gw {
            IpNet::V4(a, _) => i.ip.contains_v4(a),
            IpNet::V6(a, _) => i.ip.contains_v6(a),
        };
        let len = |i: &RouterIface| match i.ip {
            IpNet::V4(_, l) | IpNet::V6(_, l) => l,
        };
        let own = self.ifaces.iter().any(|i| host(i.ip) == gw);
        let best =
            self.ifaces.iter().enumerate().filter(|(_, i)| holds(i)).max_by_key(|(n, i)| (len(i), usize::MAX - n));
        best.filter(|_| !own).map(|(n, _)| n as u16)
    }

    #[inline(always)]
    fn answer(&self, id: HopId, dst: IpNet, flow: impl FnOnce() -> u32) -> Lookup {
        let Some(hop) = (id as usize).checked_sub(1).and_then(|i| self.hops.get(i)) else { return Lookup::NoRoute };
        match *hop {
            Hop::Local => Lookup::Local,
            Hop::Direct(iface) => Lookup::Next(Resolved { iface, neighbor: dst }),
            Hop::Via(r) => Lookup::Next(r),
            Hop::Group { first, count } => Lookup::Next(self.members[(first + flow() % count) as usize]),
            Hop::Unreachable => Lookup::NoRoute,
        }
    }

    /// Longest-prefix match of an IPv4 destination: the router's own address, or the interface and the
    /// neighbour to send to. `flow` hashes the packet's flow; it is called only for an equal-cost group.
    #[inline]
    pub fn lookup_v4(&self, dst: Ipv4Addr, flow: impl FnOnce() -> u32) -> Lookup {
        self.answer(self.v4.lookup(&dst.0), IpNet::host_v4(dst), flow)
    }

    /// As [`Router::lookup_v4`] for IPv6.
    #[inline]
    pub fn lookup_v6(&self, dst: Ipv6Addr, flow: impl FnOnce() -> u32) -> Lookup {
        self.answer(self.v6.lookup(&dst.0), IpNet::host_v6(dst), flow)
    }

    /// The trie's answer for an IPv4 destination, to resolve with [`Router::answer_v4`]: what
    /// [`Router::lookup_v4`] does in two steps, so that a burst's lookups can be made in one batch
    /// ([`Router::hops_v4`]) before its packets are routed one by one.
    #[inline]
    pub fn hop_v4(&self, dst: Ipv4Addr) -> HopId {
        self.v4.lookup(&dst.0)
    }

    /// [`Router::hop_v4`] of several destinations at once (their cache misses overlap).
    pub fn hops_v4(&self, dsts: &[[u8; 4]], out: &mut [HopId]) {
        self.v4.lookup_batch(dsts, out);
    }

    /// The lookup result of trie answer `id` for `dst` (see [`Router::lookup_v4`]).
    #[inline]
    pub fn answer_v4(&self, id: HopId, dst: Ipv4Addr, flow: impl FnOnce() -> u32) -> Lookup {
        self.answer(id, IpNet::host_v4(dst), flow)
    }

    /// As [`Router::hop_v4`] for IPv6.
    #[inline]
    pub fn hop_v6(&self, dst: Ipv6Addr) -> HopId {
        self.v6.lookup(&dst.0)
    }

    /// As [`Router::hops_v4`] for IPv6.
    pub fn hops_v6(&self, dsts: &[[u8; 16]], out: &mut [HopId]) {
        self.v6.lookup_batch(dsts, out);
    }

    /// As [`Router::answer_v4`] for IPv6.
    #[inline]
    pub fn answer_v6(&self, id: HopId, dst: Ipv6Addr, flow: impl FnOnce() -> u32) -> Lookup {
        self.answer(id, IpNet::host_v6(dst), flow)
    }

    /// The next hop of an IPv4 destination the router forwards (`None`: its own address, or no route);
    /// a group's first member.
    pub fn route_v4(&self, dst: Ipv4Addr) -> Option<Resolved> {
        match self.lookup_v4(dst, || 0) {
            Lookup::Next(r) => Some(r),
            _ => None,
        }
    }

    /// As [`Router::route_v4`] for IPv6.
    pub fn route_v6(&self, dst: Ipv6Addr) -> Option<Resolved> {
        match self.lookup_v6(dst, || 0) {
            Lookup::Next(r) => Some(r),
            _ => None,
        }
    }

    /// True if `ip` is one of the router's own (gateway) addresses.
    pub fn owns_v4(&self, ip: Ipv4Addr) -> bool {
        self.lookup_v4(ip, || 0) == Lookup::Local
    }

    pub fn owns_v6(&self, ip: Ipv6Addr) -> bool {
        self.lookup_v6(ip, || 0) == Lookup::Local
    }

    /// The tries' chunks, IPv4 and IPv6, for benchmarks.
    pub fn trie_chunks(&self) -> (usize, usize) {
        (self.v4.chunks(), self.v6.chunks())
    }

    /// The tries' memory in bytes, IPv4 and IPv6 ([`Trie::bytes`]).
    pub fn trie_bytes(&self) -> (usize, usize) {
        (self.v4.bytes(), self.v6.bytes())
    }

    /// True when its tries outgrow a core's own caches (more than [`LARGE_BYTES`]): then a
    /// burst's lookups are worth making in one batch (`stages::routes_ahead`); below, they hit the cache
    /// one by one anyway, and the batch would only add work.
    pub fn is_large(&self) -> bool {
        self.v4.bytes() + self.v6.bytes() > LARGE_BYTES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(a: u8, b: u8, c: u8, d: u8) -> Ipv4Addr {
        Ipv4Addr::new(a, b, c, d)
    }

    fn two_subnets() -> Router {
        let mut r = Router::default();
        r.add_iface(RouterIface { network: 1, mac: Mac([2, 0, 0, 0, 0, 1]), ip: IpNet::V4(v4(10, 0, 0, 254), 24) });
        r.add_iface(RouterIface { network: 2, mac: Mac([2, 0, 0, 0, 0, 2]), ip: IpNet::V4(v4(10, 2, 0, 254), 24) });
        r
    }

    #[test]
    fn longest_prefix_wins_and_gateways_resolve() {
        let mut r = two_subnets();
        r.add_route(IpNet::V4(v4(10, 1, 0, 0), 16), IpNet::host_v4(v4(10, 2, 0, 2)));
        r.add_route(IpNet::V4(v4(0, 0, 0, 0), 0), IpNet::host_v4(v4(10, 0, 0, 1)));
        assert_eq!(r.route_v4(v4(10, 0, 0, 7)), Some(Resolved { iface: 0, neighbor: IpNet::host_v4(v4(10, 0, 0, 7)) }));
        assert_eq!(r.route_v4(v4(10, 1, 3, 4)), Some(Resolved { iface: 1, neighbor: IpNet::host_v4(v4(10, 2, 0, 2)) }));
        assert_eq!(r.route_v4(v4(8, 8, 8, 8)), Some(Resolved { iface: 0, neighbor: IpNet::host_v4(v4(10, 0, 0, 1)) }));
        assert!(r.owns_v4(v4(10, 2, 0, 254)) && !r.owns_v4(v4(10, 2, 0, 2)));
        assert_eq!(r.lookup_v4(v4(10, 2, 0, 254), || unreachable!()), Lookup::Local);
        let mut bare = Router::default();
        bare.add_route(IpNet::V4(v4(10, 9, 0, 0), 16), IpNet::host_v4(v4(192, 168, 0, 1)));
        assert_eq!(bare.route_v4(v4(10, 9, 0, 1)), None, "a gateway on no attached subnet does not resolve");
        assert_eq!(bare.route_v4(v4(1, 1, 1, 1)), None);
    }

    #[test]
    fn a_gateway_resolves_once_its_subnet_is_attached_and_through_attached_subnets_only() {
        let mut r = Router::default();
        r.add_route(IpNet::V4(v4(10, 9, 0, 0), 16), IpNet::host_v4(v4(10, 2, 0, 2)));
        // A more specific extra route holding the gateway does not carry it.
        r.add_route(IpNet::V4(v4(10, 2, 0, 0), 28), IpNet::host_v4(v4(10, 0, 0, 9)));
        assert_eq!(r.route_v4(v4(10, 9, 1, 1)), None);
        r = {
            let mut with = two_subnets();
            with.add_route(IpNet::V4(v4(10, 9, 0, 0), 16), IpNet::host_v4(v4(10, 2, 0, 2)));
            with.add_route(IpNet::V4(v4(10, 2, 0, 0), 28), IpNet::host_v4(v4(10, 0, 0, 9)));
            with
        };
        assert_eq!(r.route_v4(v4(10, 9, 1, 1)).map(|h| h.iface), Some(1));
        // Attached later: resolved then.
        let mut late = Router::default();
        late.add_route(IpNet::V4(v4(10, 9, 0, 0), 16), IpNet::host_v4(v4(10, 2, 0, 2)));
        late.add_iface(RouterIface { network: 2, mac: Mac([2, 0, 0, 0, 0, 2]), ip: IpNet::V4(v4(10, 2, 0, 254), 24) });
        assert_eq!(late.route_v4(v4(10, 9, 1, 1)).map(|h| h.iface), Some(0));
        // Via the router's own address: no route.
        late.add_route(IpNet::V4(v4(10, 8, 0, 0), 16), IpNet::host_v4(v4(10, 2, 0, 254)));
        assert_eq!(late.route_v4(v4(10, 8, 1, 1)), None);
    }

    #[test]
    fn own_address_then_attached_subnet_then_extra_route() {
        let mut r = two_subnets();
        r.add_route(IpNet::V4(v4(10, 0, 0, 254), 32), IpNet::host_v4(v4(10, 2, 0, 2)));
        r.add_route(IpNet::V4(v4(10, 0, 0, 0), 24), IpNet::host_v4(v4(10, 2, 0, 2)));
        assert!(r.owns_v4(v4(10, 0, 0, 254)));
        assert_eq!(r.route_v4(v4(10, 0, 0, 5)).map(|h| h.iface), Some(0));
        assert_eq!(r.prefixes(), 4, "two own addresses, two subnets; the extra routes share their prefixes");
    }

    #[test]
    fn several_gateways_are_an_equal_cost_group_picked_by_flow() {
        let mut r = two_subnets();
        let net = IpNet::V4(v4(10, 9, 0, 0), 16);
        for gw in [3, 1, 2] {
            r.add_route(net, IpNet::host_v4(v4(10, 2, 0, gw)));
        }
        let via = |r: &Router, flow: u32| match r.lookup_v4(v4(10, 9, 0, 1), || flow) {
            Lookup::Next(h) => h.neighbor,
            other => panic!("{other:?}"),
        };
        // Members sorted by address: the order routes came in does not matter.
        assert_eq!(via(&r, 0), IpNet::host_v4(v4(10, 2, 0, 1)));
        assert_eq!(via(&r, 1), IpNet::host_v4(v4(10, 2, 0, 2)));
        assert_eq!(via(&r, 5), IpNet::host_v4(v4(10, 2, 0, 3)));
        assert!(r.remove_route(net, IpNet::host_v4(v4(10, 2, 0, 2))));
        assert!(!r.remove_route(net, IpNet::host_v4(v4(10, 2, 0, 2))));
        assert_eq!(via(&r, 1), IpNet::host_v4(v4(10, 2, 0, 3)));
        r.remove_route(net, IpNet::host_v4(v4(10, 2, 0, 1)));
        assert_eq!(r.lookup_v4(v4(10, 9, 0, 1), || panic!("one gateway: no hash")), {
            Lookup::Next(Resolved { iface: 1, neighbor: IpNet::host_v4(v4(10, 2, 0, 3)) })
        });
        r.remove_route(net, IpNet::host_v4(v4(10, 2, 0, 3)));
        assert_eq!(r.route_v4(v4(10, 9, 0, 1)), None);
        assert_eq!(r.prefixes(), 4);
    }

    #[test]
    fn equal_when_configured_alike_and_a_clone_is_not_edited_by_its_original() {
        let mut a = two_subnets();
        let b = two_subnets();
        assert_eq!(a, b);
        let published = a.clone();
        a.add_route(IpNet::V4(v4(10, 9, 0, 0), 16), IpNet::host_v4(v4(10, 2, 0, 2)));
        assert_ne!(a, b);
        assert_eq!(published, b);
        assert_eq!(published.route_v4(v4(10, 9, 0, 1)), None);
    }
}
