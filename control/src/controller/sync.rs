//! The controller's reads of the DB: a full list ([`Controller::sync`], from which it starts over:
//! [`Controller::reset`]), and the fetches that complete the node's view when its network set grows (a
//! network's object, subnets and ports; a router that got an interface on one of the node's networks).

use std::collections::{HashMap, HashSet};

use serde::de::DeserializeOwned;

use super::Controller;
use crate::compile::{Fragments, Index, Model, Tunnels};
use crate::db::{Db, DbError, Revision};
use crate::model::{Object, Router};

pub(super) fn decode<T: Object + DeserializeOwned>(e: &crate::db::Entry) -> Result<T, DbError> {
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

impl<D: Db + ?Sized> Controller<'_, D> {
    /// Loads the tables the compiler reads. An entry that does not decode is logged and skipped.
    pub fn sync(&mut self) -> Result<(), DbError> {
        let mut model = Model::default();
        let revision = [
            load(self.db, &mut model.networks)?,
            load(self.db, &mut model.subnets)?,
            load(self.db, &mut model.ports)?,
            load(self.db, &mut model.routers)?,
            load(self.db, &mut model.chassis)?,
            load(self.db, &mut model.security_groups)?,
            load(self.db, &mut model.security_group_rules)?,
            load(self.db, &mut model.floating_ips)?,
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

    /// Starts over from `model`: indexes rebuilt, every fragment dirty, empty tables to patch.
    pub fn reset(&mut self, model: Model) {
        self.model = model;
        self.index = Index::of(self.model.ports.values(), &self.chassis);
        self.needed = self.index.needed();
        let hops = self.fragments.tunnels.hops();
        self.fragments = Fragments::new(Tunnels::new(self.links.clone(), hops));
        self.dirty_ports.clear();
        let published = std::mem::take(&mut self.tables);
        // (What the workers learned of the external networks' hosts stays.)
        self.tables.learned = published.learned.clone();
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

    /// Fetches the networks that entered the set and the routers that became relevant. Before the node is
    /// told what to plumb: a fetch may bring a newer version of a port bound here (its events then stale).
    pub(super) fn fetch_pending(&mut self) {
        // A fetch may bring router interfaces newer than the events seen: the set may grow again.
        while !self.fetch_nets.is_empty() {
            self.fetch();
            self.renew_needed();
        }
        self.fetch_routers();
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
    pub(super) fn fetch_routers(&mut self) {
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
}
