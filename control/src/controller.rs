//! The local controller: keeps this node's view of the model in step with the DB (a full list, then a
//! watch from the list's revision; a lost or compacted watch means list again), tells the node which ports
//! to plumb ([`Node::bind`]), and, whenever a change concerns the node, hands it new tables
//! ([`Node::publish`], the dataplane's lock-free swap).
//!
//! Incremental: one port change does not rebuild the node, nor its network. The controller keeps, per
//! port and per router, what it put into the tables (a fragment); a change marks the fragments it touches
//! dirty (a port change its port and the routers it is an interface of; a network change, or a network
//! entering or leaving the node's set, every port of it and the routers on it; a subnet change the
//! routers on its network; a port the node plumbed anew its port), and the next tables are the last ones
//! with the dirty fragments taken out and built again. Where fragments share an ARP/ND entry (a VIP in
//! several ports' allowed address pairs) every claim is kept, and the entry goes to the one a full
//! compilation would leave there. If every dirty fragment comes back the same, nothing is published.
//! Indexes (ports by network, router interfaces by network and by router, ports bound here by network)
//! keep the node's network set ([`crate::compile::networks_needed`]'s rule) without a scan of every
//! port. The full [`compile`](crate::compile::compile) stays the reference: the incremental tables
//! equal it after every batch (`tests/incremental.rs`).
//!
//! Selective: the node holds only what it needs (Dragonflow's selective topology distribution): the
//! networks it needs with their subnets and ports, the ports bound to it and every router interface port
//! (which say which networks a router joins), and the routers with an interface on its networks. A change
//! to anything else is dropped on arrival; a network entering the set is fetched from the DB (its object,
//! subnets and ports, and the routers it brings), one leaving it is forgotten. Objects carry their
//! revision, so an event older than what a fetch already gave is ignored.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pipelines::tables::{Tables, TablesBuilder};
use serde::de::DeserializeOwned;

use crate::compile::{Fragments, Index, Model, Summary, View};
use crate::db::{Db, DbError, Event, Revision};
use crate::keys::Keys;
use crate::model::{Network, Object, Port, Router, Subnet, ROUTER_INTERFACE};

/// A port bound to this chassis, as the node must plumb it.
#[derive(Debug)]
pub enum Binding<'a> {
    /// Bound here, new or changed in what the plumbing depends on (`binding:profile`, admin state).
    Bound(&'a Port),
    /// No longer bound here (deleted, or bound elsewhere): the port id.
    Unbound(&'a str),
}

/// What the controller drives: the node's dataplane.
pub trait Node {
    /// Ports bound to this chassis that appeared or changed (`Bound`) or went (`Unbound`) since the last
    /// call. After a (re)sync `resync` is true and `changes` lists every port bound here: the node
    /// unplugs whatever else it has. The node plumbs and unplumbs before returning.
    fn bind(&mut self, changes: &[Binding<'_>], resync: bool);
    /// The dataplane port index a port bound here is plumbed on (`None`: not plumbed, left out).
    fn local(&self, port: &Port) -> Option<u16>;
    /// New tables for the dataplane.
    fn publish(&mut self, tables: Tables, summary: Summary);
}

pub struct Controller<'d, D: Db + ?Sized> {
    db: &'d D,
    chassis: String,
    model: Model,
    keys: Keys,
    revision: Revision,
    index: Index,
    needed: HashSet<String>,
    /// The fragments in `tables`, the last tables built.
    fragments: Fragments,
    tables: Tables,
    dirty_nets: HashSet<String>,
    dirty_ports: HashSet<String>,
    dirty_routers: HashSet<String>,
    /// Ports whose binding here changed since the node was last told (bound or unbound here, or what
    /// its plumbing depends on): id → whether it was bound here then.
    bindings: HashMap<String, bool>,
    /// Networks that entered the set and routers that became relevant: fetched before the next tables.
    fetch_nets: HashSet<String>,
    /// A fetch failed: the view may be incomplete, list everything again.
    must_sync: bool,
    /// Started over ([`Controller::reset`]) since the last [`Controller::step`]: the node is told every
    /// port bound here, and gets tables unless they equal the ones it has.
    resync: bool,
    /// The tables the node had before the last reset (`None` before the first publication): a resync
    /// after a DB outage publishes only if they changed.
    before_reset: Option<Tables>,
    /// The node got tables at least once.
    published: bool,
}

fn decode<T: Object + DeserializeOwned>(e: &crate::db::Entry) -> Result<T, DbError> {
    let mut o: T =
        serde_json::from_slice(&e.value).map_err(|x| DbError::Storage(format!("{}/{}: {x}", e.table, e.key)))?;
    o.set_revision(e.revision);
    Ok(o)
}

/// Every decodable object of `T`'s table into `into`; the list's revision.
fn load<T: Object + DeserializeOwned, D: Db + ?Sized>(
    db: &D,
    into: &mut HashMap<String, T>,
) -> Result<Revision, DbError> {
    let (entries, revision) = db.list(T::TABLE)?;
    for e in &entries {
        match decode::<T>(e) {
            Ok(o) => {
                into.insert(o.id().to_owned(), o);
            }
            Err(err) => tracing::error!("skipping an undecodable entry: {err}"),
        }
    }
    Ok(revision)
}

/// What the node's plumbing depends on: a change of anything else of a bound port is not re-sent.
fn plumbing_changed(old: &Port, new: &Port) -> bool {
    old.profile != new.profile || old.admin_state_up != new.admin_state_up || old.network_id != new.network_id
}

/// True if `old` and `new` differ only in what the nodes write back (`status`, `binding:vif_*`) or the
/// revision: nothing any node compiles.
fn only_status_changed(old: &Port, new: &Port) -> bool {
    let blank = |p: &Port| Port {
        status: String::new(),
        vif_type: String::new(),
        vif_details: Default::default(),
        revision_number: 0,
        ..p.clone()
    };
    blank(old) == blank(new)
}

/// How long a watch may stay quiet before the controller checks that the DB still answers.
pub const LIVENESS: Duration = Duration::from_secs(3);

/// Objects added, removed and changed (another revision) between two views of one table.
struct Changes(usize, usize, usize);

impl Changes {
    fn of<T: Object>(old: &HashMap<String, T>, new: &HashMap<String, T>) -> Changes {
        let added = new.keys().filter(|k| !old.contains_key(*k)).count();
        let removed = old.keys().filter(|k| !new.contains_key(*k)).count();
        let changed = new.iter().filter(|(k, o)| old.get(*k).is_some_and(|x| x.revision() != o.revision())).count();
        Changes(added, removed, changed)
    }
}

impl std::fmt::Display for Changes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "+{} -{} ~{}", self.0, self.1, self.2)
    }
}

impl<'d, D: Db + ?Sized> Controller<'d, D> {
    pub fn new(db: &'d D, chassis: &str) -> Self {
        Controller {
            db,
            chassis: chassis.into(),
            model: Model::default(),
            keys: Keys::default(),
            revision: 0,
            index: Index::default(),
            needed: HashSet::new(),
            fragments: Fragments::default(),
            tables: Tables::default(),
            dirty_nets: HashSet::new(),
            dirty_ports: HashSet::new(),
            dirty_routers: HashSet::new(),
            bindings: HashMap::new(),
            fetch_nets: HashSet::new(),
            must_sync: false,
            resync: false,
            before_reset: None,
            published: false,
        }
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The keys given so far (for comparing with a full compilation).
    pub fn keys_mut(&mut self) -> &mut Keys {
        &mut self.keys
    }

    /// Loads the tables the compiler reads. An entry that does not decode is logged and skipped.
    pub fn sync(&mut self) -> Result<(), DbError> {
        let mut model = Model::default();
        let revision = [
            load(self.db, &mut model.networks)?,
            load(self.db, &mut model.subnets)?,
            load(self.db, &mut model.ports)?,
            load(self.db, &mut model.routers)?,
        ]
        .into_iter()
        .min()
        .unwrap_or(0);
        // Events after the oldest list's revision are replayed by the watch; applying one twice is
        // harmless (puts and deletes are idempotent).
        let old = std::mem::take(&mut self.model);
        let first = !self.published;
        self.reset(model);
        self.revision = revision;
        if !first {
            // After a lost watch (a DB outage, a compaction): what changed meanwhile, as the node holds it.
            let m = &self.model;
            tracing::info!(
                revision,
                networks = %Changes::of(&old.networks, &m.networks),
                subnets = %Changes::of(&old.subnets, &m.subnets),
                ports = %Changes::of(&old.ports, &m.ports),
                routers = %Changes::of(&old.routers, &m.routers),
                "resync: the DB listed again (+added -removed ~changed)"
            );
        }
        Ok(())
    }

    /// Whether this node holds a port: bound here, a router interface, or in a network it needs.
    fn holds_port(&self, p: &Port) -> bool {
        p.host_id == self.chassis || p.device_owner == ROUTER_INTERFACE || self.needed.contains(&p.network_id)
    }

    fn holds_router(&self, id: &str) -> bool {
        self.index.networks_of(id).any(|n| self.needed.contains(n))
    }

    /// Drops what this node does not need from its model (and the ports from the indexes).
    fn forget_unneeded(&mut self) {
        let needed = &self.needed;
        self.model.networks.retain(|id, _| needed.contains(id));
        self.model.subnets.retain(|_, s| needed.contains(&s.network_id));
        let gone: Vec<Port> = self
            .model
            .ports
            .values()
            .filter(|p| {
                !(p.host_id == self.chassis || p.device_owner == ROUTER_INTERFACE || needed.contains(&p.network_id))
            })
            .cloned()
            .collect();
        for p in gone {
            self.index.port(&p, &self.chassis, false);
            self.model.ports.remove(&p.id);
        }
        let keep: HashSet<String> = self.model.routers.keys().filter(|r| self.holds_router(r)).cloned().collect();
        self.model.routers.retain(|id, _| keep.contains(id));
    }

    /// Fetches the networks that entered the set since the last call (one list per table for all of them).
    /// A failed read is logged and asks for a full sync.
    fn fetch(&mut self) {
        if self.fetch_nets.is_empty() {
            return;
        }
        let nets: HashSet<String> = self.fetch_nets.drain().filter(|n| self.needed.contains(n)).collect();
        let fetched = (|| -> Result<(), DbError> {
            let mut model = Model::default();
            load(self.db, &mut model.networks)?;
            load(self.db, &mut model.subnets)?;
            load(self.db, &mut model.ports)?;
            for (id, n) in model.networks.into_iter().filter(|(id, _)| nets.contains(id)) {
                self.hold(id, n, |m| &mut m.networks);
            }
            for (id, s) in model.subnets.into_iter().filter(|(_, s)| nets.contains(&s.network_id)) {
                self.hold(id, s, |m| &mut m.subnets);
            }
            for (id, p) in model.ports.into_iter().filter(|(_, p)| nets.contains(&p.network_id)) {
                if self.model.ports.get(&id).is_none_or(|h| h.revision_number < p.revision_number) {
                    self.port(&id, Some(p));
                }
            }
            Ok(())
        })();
        if let Err(e) = fetched {
            tracing::error!("fetching networks {nets:?}: {e}; listing everything again");
            self.must_sync = true;
        }
        for n in nets {
            self.dirty_nets.insert(n.clone());
            self.routers_on(&n);
        }
    }

    /// Fetches the dirty routers this node needs but does not hold (an interface on one of its networks
    /// just appeared: the router's own changes were dropped on arrival until then).
    fn fetch_routers(&mut self) {
        let missing: Vec<String> = self
            .dirty_routers
            .iter()
            .filter(|r| !self.model.routers.contains_key(*r) && self.holds_router(r))
            .cloned()
            .collect();
        for r in missing {
            match self.db.get("router", &r) {
                Ok(Some(e)) => match decode::<Router>(&e) {
                    Ok(o) => self.hold(r, o, |m| &mut m.routers),
                    Err(err) => tracing::error!("skipping an undecodable router: {err}"),
                },
                Ok(None) => {}
                Err(e) => {
                    tracing::error!("fetching router {r}: {e}; listing everything again");
                    self.must_sync = true;
                }
            }
        }
    }

    /// Holds `o` unless an equal or newer revision of it is held already.
    fn hold<T: Object>(&mut self, id: String, o: T, map: impl Fn(&mut Model) -> &mut HashMap<String, T>) {
        let m = map(&mut self.model);
        if m.get(&id).is_none_or(|h| h.revision() < o.revision()) {
            m.insert(id, o);
        }
    }

    /// Starts over from `model`: indexes rebuilt, every fragment dirty, empty tables to patch.
    pub fn reset(&mut self, model: Model) {
        self.model = model;
        self.index = Index::of(self.model.ports.values(), &self.chassis);
        self.needed = self.index.needed();
        self.fragments = Fragments::default();
        self.dirty_ports.clear();
        let published = std::mem::take(&mut self.tables);
        if self.published && !self.resync {
            // (Reset twice before a step: the node still has the first one's tables.)
            self.before_reset = Some(published);
        }
        self.dirty_nets = self.needed.clone();
        self.dirty_routers = self.model.routers.keys().chain(self.index.routers()).cloned().collect();
        self.bindings.clear();
        self.fetch_nets.clear();
        self.must_sync = false;
        self.resync = true;
        self.forget_unneeded();
    }

    /// Applies one change; true if it may change this node's tables or plumbing.
    pub fn apply(&mut self, ev: &Event) -> bool {
        let (table, key) = match ev {
            Event::Put(e) => (e.table.as_str(), e.key.as_str()),
            Event::Delete { table, key, .. } => (table.as_str(), key.as_str()),
        };
        // Decode first: bad DB contents are logged and the object left as it was; never a crash.
        fn put<T: Object + DeserializeOwned>(ev: &Event) -> Result<Option<T>, DbError> {
            match ev {
                Event::Put(e) => decode(e).map(Some),
                Event::Delete { .. } => Ok(None),
            }
        }
        // An object held at this revision or a newer one (a fetch listed it after this event): stale.
        let held = match table {
            "network" => self.model.networks.get(key).map(Object::revision),
            "subnet" => self.model.subnets.get(key).map(Object::revision),
            "port" => self.model.ports.get(key).map(Object::revision),
            "router" => self.model.routers.get(key).map(Object::revision),
            _ => return false,
        };
        if held.is_some_and(|r| r >= ev.revision()) {
            return false;
        }
        // What this node does not hold is dropped on arrival (a held object that leaves the node's view
        // is removed, as if deleted).
        let result = match table {
            "network" => put::<Network>(ev).map(|n| self.network(key, n.filter(|_| self.needed.contains(key)))),
            "subnet" => put::<Subnet>(ev).map(|s| {
                let s = s.filter(|s| self.needed.contains(&s.network_id));
                self.subnet(key, s)
            }),
            "port" => put::<Port>(ev).map(|p| {
                let p = p.filter(|p| self.holds_port(p));
                self.port(key, p)
            }),
            "router" => put::<Router>(ev).map(|r| self.router(key, r.filter(|_| self.holds_router(key)))),
            _ => return false,
        };
        if let Err(e) = result {
            tracing::error!("ignoring an undecodable {table}/{key}: {e}");
            return false;
        }
        self.revision = self.revision.max(ev.revision());
        self.renew_needed();
        // Only networks this node needs (or had) and routers with an interface on one may change its tables.
        let (needed, fragments, index, ports) = (&self.needed, &self.fragments, &self.index, &self.model.ports);
        self.dirty_nets.retain(|n| needed.contains(n) || fragments.has_network(n));
        self.dirty_ports
            .retain(|p| fragments.has_port(p) || ports.get(p).is_some_and(|p| needed.contains(&p.network_id)));
        self.dirty_routers.retain(|r| fragments.has_router(r) || index.networks_of(r).any(|n| needed.contains(n)));
        !self.dirty_nets.is_empty()
            || !self.dirty_ports.is_empty()
            || !self.dirty_routers.is_empty()
            || !self.bindings.is_empty()
    }

    fn routers_on(&mut self, net: &str) {
        let rs: Vec<String> = self.index.routers_on(net).cloned().collect();
        self.dirty_routers.extend(rs);
    }

    fn network(&mut self, id: &str, n: Option<Network>) {
        match n {
            Some(n) => self.model.networks.insert(id.to_owned(), n),
            None => self.model.networks.remove(id),
        };
        self.dirty_nets.insert(id.to_owned());
        self.routers_on(id);
    }

    fn subnet(&mut self, id: &str, s: Option<Subnet>) {
        let old = self.model.subnets.remove(id).map(|s| s.network_id);
        let new = s.as_ref().map(|s| s.network_id.clone());
        if let Some(s) = s {
            self.model.subnets.insert(id.to_owned(), s);
        }
        // Subnets shape router interfaces (their prefix) only, and only on their own network
        // (`compile::fragment`'s `iface_ip`): the routers on it.
        for n in [old, new].into_iter().flatten() {
            self.routers_on(&n);
        }
    }

    fn port(&mut self, id: &str, p: Option<Port>) {
        if let (Some(old), Some(new)) = (self.model.ports.get(id), &p) {
            if only_status_changed(old, new) {
                self.model.ports.insert(id.to_owned(), p.expect("checked"));
                return;
            }
        }
        let old = self.model.ports.remove(id);
        let here = |p: &Option<Port>, chassis: &str| p.as_ref().is_some_and(|p| p.host_id == chassis);
        let (was, is) = (here(&old, &self.chassis), here(&p, &self.chassis));
        if (is && (!was || old.as_ref().zip(p.as_ref()).is_some_and(|(o, n)| plumbing_changed(o, n)))) || (was && !is) {
            // The first change since the node was told says what the node has.
            self.bindings.entry(id.to_owned()).or_insert(was);
        }
        self.dirty_ports.insert(id.to_owned());
        for v in [&old, &p].into_iter().flatten() {
            if v.device_owner == ROUTER_INTERFACE {
                self.dirty_routers.insert(v.device_id.clone());
            }
        }
        if let Some(o) = &old {
            self.index.port(o, &self.chassis, false);
        }
        if let Some(p) = p {
            self.index.port(&p, &self.chassis, true);
            self.model.ports.insert(id.to_owned(), p);
        }
    }

    fn router(&mut self, id: &str, r: Option<Router>) {
        match r {
            Some(r) => self.model.routers.insert(id.to_owned(), r),
            None => self.model.routers.remove(id),
        };
        self.dirty_routers.insert(id.to_owned());
    }

    /// The network set after a change: networks that enter or leave it are dirty, and their routers; the
    /// ones entering are fetched before the next tables, the ones leaving forgotten now.
    fn renew_needed(&mut self) {
        let needed = self.index.needed();
        if needed == self.needed {
            return;
        }
        let changed: Vec<String> = needed.symmetric_difference(&self.needed).cloned().collect();
        for n in &changed {
            self.dirty_nets.insert(n.clone());
            self.routers_on(n);
            if needed.contains(n) {
                self.fetch_nets.insert(n.clone());
            }
        }
        let shrunk = self.needed.iter().any(|n| !needed.contains(n));
        self.needed = needed;
        if shrunk {
            self.forget_unneeded();
        }
    }

    /// Fetches the networks that entered the set and the routers that became relevant. Before the node is
    /// told what to plumb: a fetch may bring a newer version of a port bound here (its events then stale).
    fn fetch_pending(&mut self) {
        // A fetch may bring router interfaces newer than the events seen: the set may grow again.
        while !self.fetch_nets.is_empty() {
            self.fetch();
            self.renew_needed();
        }
        self.fetch_routers();
    }

    /// Tells the node what to plumb: the bindings that changed, or (`resync`) every port bound here.
    fn bind(&mut self, node: &mut dyn Node, resync: bool) {
        let pending = std::mem::take(&mut self.bindings);
        let ports = &self.model.ports;
        let changes: Vec<Binding<'_>> = if resync {
            let mut bound: Vec<&Port> = ports.values().filter(|p| p.host_id == self.chassis).collect();
            bound.sort_by(|a, b| a.id.cmp(&b.id));
            bound.into_iter().map(Binding::Bound).collect()
        } else {
            let mut ids: Vec<(&String, &bool)> = pending.iter().collect();
            ids.sort();
            // Bound here now: (re)plumb. Not now: unplug, if the node had it (a port bound and gone
            // again since it was last told is none of its business).
            ids.into_iter()
                .filter_map(|(id, &told)| match ports.get(id).filter(|p| p.host_id == self.chassis) {
                    Some(p) => Some(Binding::Bound(p)),
                    None => told.then_some(Binding::Unbound(id.as_str())),
                })
                .collect()
        };
        if changes.is_empty() && !resync {
            return;
        }
        // A port (re)plugged may have a new index: it is dirty.
        let plugged: Vec<String> = changes
            .iter()
            .filter_map(|c| match c {
                Binding::Bound(p) => Some(p.id.clone()),
                Binding::Unbound(_) => None,
            })
            .collect();
        node.bind(&changes, resync);
        self.dirty_ports.extend(plugged);
    }

    /// This node's tables now: the dirty fragments rebuilt into the last tables; `None` if they are
    /// unchanged (nothing was dirty, or every dirty fragment came back the same).
    pub fn tables(&mut self, local: &dyn Fn(&Port) -> Option<u16>) -> Option<(Tables, Summary)> {
        self.fetch_pending();
        // A network's change (or its entering or leaving the set) is a change of each of its ports.
        for n in std::mem::take(&mut self.dirty_nets) {
            self.dirty_ports.extend(self.index.ports_of(&n).cloned());
            self.dirty_ports.extend(self.fragments.ports_on(&n).cloned());
        }
        if self.dirty_ports.is_empty() && self.dirty_routers.is_empty() {
            return None;
        }
        let mut dirty_ports: Vec<String> = self.dirty_ports.drain().collect();
        dirty_ports.sort();
        let mut dirty_routers: Vec<String> = self.dirty_routers.drain().collect();
        dirty_routers.sort();
        let before = self.fragments.held(&self.tables, &dirty_ports, &dirty_routers);
        let mut b = TablesBuilder::from_tables(std::mem::take(&mut self.tables));
        let mut view = View {
            model: &self.model,
            index: &self.index,
            needed: &self.needed,
            chassis: &self.chassis,
            keys: &mut self.keys,
            local,
        };
        self.fragments.rebuild(&mut view, &dirty_ports, &dirty_routers, &mut b);
        self.tables = b.build();
        // (ARP/ND entries follow the fragments: the same fragments, the same claims and winners.)
        if self.fragments.held(&self.tables, &dirty_ports, &dirty_routers) == before {
            return None;
        }
        Some((self.tables.clone(), self.summary()))
    }

    fn summary(&self) -> Summary {
        self.fragments.summary(self.needed.len())
    }

    /// Binds and compiles what [`Controller::sync`] and [`Controller::apply`] left pending, and publishes
    /// if the tables changed (after a sync, always: the node starts over too). [`Controller::run`] calls
    /// it once per batch of events; a caller that feeds events itself calls it the same way.
    pub fn step(&mut self, node: &mut dyn Node) {
        let resync = std::mem::take(&mut self.resync);
        self.fetch_pending();
        self.bind(node, resync);
        let next = self.tables(&|p| node.local(p));
        if !resync {
            if let Some((t, s)) = next {
                node.publish(t, s);
                self.published = true;
            }
            return;
        }
        // Started over: the tables were built anew; the node keeps its own if they are the same (a
        // resync after an outage in which nothing changed touches no table).
        match self.before_reset.take() {
            Some(old) if old == self.tables => {
                tracing::info!("resync: the tables are unchanged; nothing published");
            }
            old => {
                if old.is_some() {
                    tracing::info!("resync: the tables changed; publishing them");
                }
                let t = next.map_or_else(|| self.tables.clone(), |(t, _)| t);
                node.publish(t, self.summary());
                self.published = true;
            }
        }
    }

    /// Syncs, binds and publishes, then follows the DB until `stop`: every batch of changes is applied,
    /// then bound and compiled once. A watch that ends or cannot resume means a fresh sync.
    pub fn run(&mut self, node: &mut dyn Node, stop: &AtomicBool) -> Result<(), DbError> {
        'sync: while !stop.load(Ordering::Relaxed) {
            self.sync()?;
            self.step(node);
            let watch = match self.db.watch(None, self.revision) {
                Ok(w) => w,
                Err(DbError::Compacted { .. }) => continue 'sync,
                Err(e) => return Err(e),
            };
            let mut heard = std::time::Instant::now();
            while !stop.load(Ordering::Relaxed) {
                let first = match watch.events.recv_timeout(Duration::from_millis(100)) {
                    Ok(ev) => ev,
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                        // A quiet watch may be a dead one (a frozen server keeps the connection open): ask
                        // the DB something now and then; no answer is a lost DB.
                        if heard.elapsed() >= LIVENESS {
                            self.db.revision()?;
                            heard = std::time::Instant::now();
                        }
                        continue;
                    }
                    Err(crossbeam_channel::RecvTimeoutError::Disconnected) => continue 'sync,
                };
                heard = std::time::Instant::now();
                let mut changed = self.apply(&first);
                // Everything already queued goes into the same compilation.
                while let Ok(ev) = watch.events.try_recv() {
                    changed |= self.apply(&ev);
                }
                if changed {
                    self.step(node);
                }
                if self.must_sync {
                    continue 'sync;
                }
            }
        }
        Ok(())
    }
}
