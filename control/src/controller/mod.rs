//! The local controller: keeps this node's view of the model in step with the DB (a full list, then a
//! watch from the list's revision; a lost or compacted watch means list again), tells the node which ports
//! to plumb ([`Node::bind`]), and, whenever a change concerns the node, hands it new tables
//! ([`Node::publish`], the dataplane's lock-free swap).
//!
//! Incremental: one port change does not rebuild the node, nor its network. The controller keeps, per
//! port and per router, what it put into the tables (a fragment); a change marks the fragments it touches
//! dirty (a port change its port and the routers it is an interface of; a network change, or a network
//! entering or leaving the node's set, every port of it and the routers on it; a subnet change, or a
//! change of a network's DHCP port or of a router interface on it, the network (its ports' DHCP and
//! router advertisements depend on them); a port the node plumbed anew its port), and the next tables are the last ones
//! with the dirty fragments taken out and built again. Where fragments share an ARP/ND entry (a VIP in
//! several ports' allowed address pairs) every claim is kept, and the entry goes to the one a full
//! compilation would leave there. If every dirty fragment comes back the same, nothing is published.
//! Indexes (ports by network, router interfaces by network and by router, ports bound here by network)
//! keep the node's network set ([`crate::compile::networks_needed`]'s rule) without a scan of every
//! port. The full [`compile`](crate::compile::compile) stays the reference: the incremental tables
//! equal it after every batch (`tests/incremental.rs`). Both are built by the same code: the fragments,
//! the claims and the index are [`crate::compile`]'s, and the full compilation is the same rebuild with
//! every port and router dirty on empty tables.
//!
//! Selective: the node holds only what it needs (Dragonflow's selective topology distribution): the
//! networks it needs with their subnets and ports, the ports bound to it and every router interface port
//! (which say which networks a router joins), and the routers with an interface on its networks. A change
//! to anything else is dropped on arrival; a network entering the set is fetched from the DB (its object,
//! subnets and ports, and the routers it brings), one leaving it is forgotten. Objects carry their
//! revision, so an event older than what a fetch already gave is ignored.
//!
//! | where | what |
//! |---|---|
//! | here | the [`Node`] it drives, the [`Controller`]'s state, its loop ([`Controller::run`], [`Controller::step`]), the bindings it tells the node, and the patch ([`Controller::tables`]) |
//! | `sync` | its reads of the DB: the full list it starts over from ([`Controller::sync`], [`Controller::reset`]), the fetches of networks entering its set |
//! | `apply` | one change from the watch ([`Controller::apply`]): what the node holds of it, what it makes dirty, the network set after it |
//! | [`crate::compile`] | the index, the fragments and the ARP/ND claims, shared with the full compilation |

mod apply;
mod sync;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pipelines::tables::{Tables, TablesBuilder};

use crate::compile::{plugged_here, Fragments, Index, Links, Model, Summary, View};
use crate::db::{Db, DbError, Revision};
use crate::keys::Keys;
use crate::model::Port;

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
    /// The node's underlay and uplinks.
    links: Links,
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

/// How long a watch may stay quiet before the controller checks that the DB still answers.
pub const LIVENESS: Duration = Duration::from_secs(3);

impl<'d, D: Db + ?Sized> Controller<'d, D> {
    pub fn new(db: &'d D, chassis: &str) -> Self {
        Controller {
            db,
            chassis: chassis.into(),
            links: Links::default(),
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

    /// Tunnels leave and arrive by `links`' underlay, provider networks by its uplinks (before the first
    /// sync).
    pub fn with_links(mut self, links: Links) -> Self {
        self.links = links;
        self
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The keys given so far (for comparing with a full compilation).
    pub fn keys_mut(&mut self) -> &mut Keys {
        &mut self.keys
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

    /// Tells the node what to plumb: the bindings that changed, or (`resync`) every port bound here.
    fn bind(&mut self, node: &mut dyn Node, resync: bool) {
        let pending = std::mem::take(&mut self.bindings);
        let ports = &self.model.ports;
        let changes: Vec<Binding<'_>> = if resync {
            let mut bound: Vec<&Port> = ports.values().filter(|p| plugged_here(p, &self.chassis)).collect();
            bound.sort_by(|a, b| a.id.cmp(&b.id));
            bound.into_iter().map(Binding::Bound).collect()
        } else {
            let mut ids: Vec<(&String, &bool)> = pending.iter().collect();
            ids.sort();
            // Bound here now: (re)plumb. Not now: unplug, if the node had it (a port bound and gone
            // again since it was last told is none of its business).
            ids.into_iter()
                .filter_map(|(id, &told)| match ports.get(id).filter(|p| plugged_here(p, &self.chassis)) {
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
        let dirty_nets: std::collections::BTreeSet<String> = self.dirty_nets.drain().collect();
        for n in &dirty_nets {
            self.dirty_ports.extend(self.index.ports_of(n).cloned());
            self.dirty_ports.extend(self.fragments.ports_on(n).cloned());
        }
        // (The first tables of a node with tunnels have its underlay, whatever else they have.)
        let underlay_pending = self.links.tunnel.is_some() && self.tables.underlay.is_none();
        if dirty_nets.is_empty() && self.dirty_ports.is_empty() && self.dirty_routers.is_empty() && !underlay_pending {
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
            services: &self.links.services,
            uplinks: &self.links.uplinks,
        };
        let tunnels_changed = self.fragments.rebuild(&mut view, dirty_nets, &dirty_ports, &dirty_routers, &mut b);
        self.tables = b.build();
        // (ARP/ND entries follow the fragments: the same fragments, the same claims and winners.)
        if !tunnels_changed && self.fragments.held(&self.tables, &dirty_ports, &dirty_routers) == before {
            return None;
        }
        Some((self.tables.clone(), self.summary()))
    }

    fn summary(&self) -> Summary {
        self.fragments.summary(self.needed.len())
    }
}
