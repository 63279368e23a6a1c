//! The binding agent: the node's side of Neutron's port binding, and the dataplane as the local controller
//! sees it (`control::controller::Node`). A port whose `binding:host_id` names this chassis is plugged into
//! the dataplane (DPDK hot-plug of a TAP or vhost-user device, [`crate::vif`]) and reported `ACTIVE`
//! ([`crate::port_status`]); one unbound or deleted is taken out of the tables first and off the dataplane
//! once tables without it are published. The tables the controller compiles are published from here.
//!
//! Thread-safety: the [`BindingAgent`] is owned by the controller thread, which alone plugs, unplugs and
//! publishes. The [`Dataplane`] is shared with the main thread (latency, reclamation, counters, once a
//! second) behind a mutex that only these two control threads take, never across a DB call; the workers
//! never see it (they read the published tables). Status reports go to the `status` thread on a channel
//! and never wait for the DB.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use control::compile::Summary;
use control::controller::{Binding, Node};
use control::model::Port;
use dataplane::Dataplane;
use pipelines::tables::Tables;

use crate::port_status::PortStatus;
use crate::vif::{Vif, Vifs};

/// A port plugged into the dataplane.
struct Plugged {
    /// Its port index (slot) in the dataplane and the tables.
    index: u16,
    vif: Vif,
}

/// Plugs what is bound here, unplugs what is not, publishes the tables (see the module's doc).
pub struct BindingAgent {
    dp: Arc<Mutex<Dataplane>>,
    vifs: Vifs,
    /// By port id.
    plugged: HashMap<String, Plugged>,
    /// Unplugged from the tables, still on the dataplane until tables without them are published.
    unplug: Vec<u16>,
    status: crossbeam_channel::Sender<(String, PortStatus)>,
}

impl BindingAgent {
    pub fn new(
        dp: Arc<Mutex<Dataplane>>,
        vifs: Vifs,
        status: crossbeam_channel::Sender<(String, PortStatus)>,
    ) -> BindingAgent {
        BindingAgent { dp, vifs, plugged: HashMap::new(), unplug: Vec::new(), status }
    }

    fn plug(&mut self, p: &Port) {
        let vif = self.vifs.wanted(p);
        if let Some(old) = self.plugged.get(&p.id) {
            if old.vif == vif {
                self.report(p, vif);
                return;
            }
            self.unplug_later(&p.id);
        }
        if vif == Vif::VhostUser {
            // A socket left by an earlier run would make the probe fail.
            let _ = std::fs::remove_file(self.vifs.socket(p));
        }
        let mut dp = self.dp.lock().expect("poisoned");
        let devargs = self.vifs.devargs(p, vif, dp.worker_count());
        let plugged = dp.plug(&devargs);
        drop(dp);
        match plugged {
            Ok(index) => {
                tracing::info!(port = %p.id, index, devargs, "port plugged");
                self.plugged.insert(p.id.clone(), Plugged { index, vif });
                self.report(p, vif);
            }
            Err(e) => {
                tracing::error!(port = %p.id, devargs, "plugging failed: {e}");
                let _ = self.status.send((p.id.clone(), PortStatus::failed()));
            }
        }
    }

    /// Tells the status thread what `p` is now: ACTIVE when it is plugged and up.
    fn report(&self, p: &Port, vif: Vif) {
        let _ = self.status.send((p.id.clone(), PortStatus::plugged(p, vif, self.vifs.details(p, vif))));
    }

    /// Takes the port out of the tables now and off the dataplane once tables without it are published.
    fn unplug_later(&mut self, id: &str) {
        if let Some(p) = self.plugged.remove(id) {
            self.unplug.push(p.index);
        }
    }

    /// The node is stopping and its devices go with it: every plugged port is DOWN (still bound here).
    pub fn stopping(&mut self) {
        for (id, p) in self.plugged.drain() {
            let _ = self.status.send((id, PortStatus::stopped(p.vif)));
        }
    }

    /// Unplugs what the published tables no longer name.
    fn unplug_unused(&mut self) {
        let mut dp = self.dp.lock().expect("poisoned");
        let named = |dp: &Dataplane, i: u16| dp.tables().is_some_and(|t| t.port(i).is_some());
        let (now, later): (Vec<u16>, Vec<u16>) = self.unplug.drain(..).partition(|&i| !named(&dp, i));
        self.unplug = later;
        for i in now {
            if let Err(e) = dp.unplug(i) {
                tracing::error!(index = i, "unplugging failed: {e}");
            }
        }
    }
}

impl Node for BindingAgent {
    fn bind(&mut self, changes: &[Binding<'_>], resync: bool) {
        if resync {
            let bound: HashSet<&str> = changes
                .iter()
                .filter_map(|c| match c {
                    Binding::Bound(p) => Some(p.id.as_str()),
                    Binding::Unbound(_) => None,
                })
                .collect();
            let gone: Vec<String> = self.plugged.keys().filter(|id| !bound.contains(id.as_str())).cloned().collect();
            // Started over (the first sync, or after a lost DB): only what changed is plugged or unplugged.
            let kept = changes
                .iter()
                .filter(|c| matches!(c, Binding::Bound(p) if self.plugged.get(&p.id).is_some_and(|x| x.vif == self.vifs.wanted(p))))
                .count();
            tracing::info!(
                kept,
                plug = bound.len() - kept,
                unplug = gone.len(),
                "resync: ports bound here (kept: plugged already, as they are)"
            );
            for id in gone {
                self.unplug_later(&id);
            }
        }
        for c in changes {
            match c {
                Binding::Bound(p) => self.plug(p),
                Binding::Unbound(id) => {
                    if self.plugged.contains_key(*id) {
                        self.unplug_later(id);
                        let _ = self.status.send(((*id).to_owned(), PortStatus::unbound()));
                    }
                }
            }
        }
        // Ports the tables never named can go at once; the others after the next publication.
        self.unplug_unused();
    }

    fn local(&self, port: &Port) -> Option<u16> {
        self.plugged.get(&port.id).map(|p| p.index)
    }

    fn publish(&mut self, tables: Tables, summary: Summary) {
        {
            let mut dp = self.dp.lock().expect("poisoned");
            let version = dp.publish(tables);
            tracing::debug!(?version, ?summary, "tables published");
            dp.reclaim();
        }
        self.unplug_unused();
    }
}
