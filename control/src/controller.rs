//! The local controller: keeps this node's view of the model in step with the DB (a full list, then a
//! watch from the list's revision; a lost or compacted watch means list again) and, whenever a change
//! concerns the node, compiles its tables (`compile`) and hands them to `publish` (the dataplane's
//! lock-free swap). Changes to networks the node does not need are applied to the model but publish
//! nothing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pipelines::tables::Tables;
use serde::de::DeserializeOwned;

use crate::compile::{compile, networks_needed, Keys, Model, Summary};
use crate::db::{Db, DbError, Event, Revision};
use crate::model::{Network, Object, Port, Router, Subnet};

pub struct Controller<'d, D: Db + ?Sized> {
    db: &'d D,
    chassis: String,
    model: Model,
    keys: Keys,
    revision: Revision,
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
    into: &mut std::collections::HashMap<String, T>,
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

impl<'d, D: Db + ?Sized> Controller<'d, D> {
    pub fn new(db: &'d D, chassis: &str) -> Self {
        Controller { db, chassis: chassis.into(), model: Model::default(), keys: Keys::default(), revision: 0 }
    }

    pub fn model(&self) -> &Model {
        &self.model
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
        self.model = model;
        self.revision = revision;
        Ok(())
    }

    /// Applies one change; true if it may change this node's tables.
    pub fn apply(&mut self, ev: &Event) -> bool {
        let before = networks_needed(&self.model, &self.chassis);
        let network_of = |m: &Model, table: &str, key: &str| -> Option<String> {
            match table {
                "network" => Some(key.to_owned()),
                "subnet" => m.subnets.get(key).map(|s| s.network_id.clone()),
                "port" => m.ports.get(key).map(|p| p.network_id.clone()),
                _ => None,
            }
        };
        let (table, key) = match ev {
            Event::Put(e) => (e.table.as_str(), e.key.as_str()),
            Event::Delete { table, key, .. } => (table.as_str(), key.as_str()),
        };
        let old_net = network_of(&self.model, table, key);
        let result = match ev {
            Event::Put(e) => match table {
                "network" => decode::<Network>(e).map(|o| drop(self.model.networks.insert(o.id.clone(), o))),
                "subnet" => decode::<Subnet>(e).map(|o| drop(self.model.subnets.insert(o.id.clone(), o))),
                "port" => decode::<Port>(e).map(|o| drop(self.model.ports.insert(o.id.clone(), o))),
                "router" => decode::<Router>(e).map(|o| drop(self.model.routers.insert(o.id.clone(), o))),
                _ => return false,
            },
            Event::Delete { .. } => {
                match table {
                    "network" => drop(self.model.networks.remove(key)),
                    "subnet" => drop(self.model.subnets.remove(key)),
                    "port" => drop(self.model.ports.remove(key)),
                    "router" => drop(self.model.routers.remove(key)),
                    _ => return false,
                }
                Ok(())
            }
        };
        if let Err(e) = result {
            // Bad DB contents: counted in the log, the object left as it was; never a crash.
            tracing::error!("ignoring an undecodable {table}/{key}: {e}");
            return false;
        }
        self.revision = self.revision.max(ev.revision());
        let after = networks_needed(&self.model, &self.chassis);
        let new_net = network_of(&self.model, table, key);
        table == "router"
            || before != after
            || [old_net, new_net].iter().flatten().any(|n| after.contains(n) || before.contains(n))
    }

    /// This node's tables now.
    pub fn tables(&mut self, local: &dyn Fn(&Port) -> Option<u16>) -> (Tables, Summary) {
        compile(&self.model, &self.chassis, &mut self.keys, local)
    }

    /// Syncs, publishes, then follows the DB until `stop`: every batch of changes that concerns the node
    /// is compiled and published once. A watch that ends or cannot resume means a fresh sync.
    pub fn run(
        &mut self,
        local: &dyn Fn(&Port) -> Option<u16>,
        publish: &mut dyn FnMut(Tables, Summary),
        stop: &AtomicBool,
    ) -> Result<(), DbError> {
        'sync: while !stop.load(Ordering::Relaxed) {
            self.sync()?;
            let (t, s) = self.tables(local);
            publish(t, s);
            let watch = match self.db.watch(None, self.revision) {
                Ok(w) => w,
                Err(DbError::Compacted { .. }) => continue 'sync,
                Err(e) => return Err(e),
            };
            while !stop.load(Ordering::Relaxed) {
                let first = match watch.events.recv_timeout(Duration::from_millis(100)) {
                    Ok(ev) => ev,
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => continue,
                    Err(crossbeam_channel::RecvTimeoutError::Disconnected) => continue 'sync,
                };
                let mut changed = self.apply(&first);
                // Everything already queued goes into the same compilation.
                while let Ok(ev) = watch.events.try_recv() {
                    changed |= self.apply(&ev);
                }
                if changed {
                    let (t, s) = self.tables(local);
                    publish(t, s);
                }
            }
        }
        Ok(())
    }
}
