//! The status write-back: what the node reports about each port bound here (`status`, `binding:vif_type`,
//! `binding:vif_details`), written into the port in the DB the way Neutron's agents report it, so that an
//! operator (and Nova) sees `ACTIVE` once the port is plugged.
//!
//! Threads: [`write_back`] is the `status` thread's body. The binding agent (on the controller thread)
//! sends it a [`PortStatus`] per port on a channel and never waits for the DB; the thread keeps the latest
//! wish per port, writes compare-and-swap, and ends when the channel closes (the agent gone). Nothing else
//! is shared but the stop flag, which it only reads.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use control::db::{Db, DbError};
use control::model::{Port, Store};

use crate::backoff::sleep_unless;
use crate::vif::Vif;

/// What the node writes back into a port.
#[derive(Debug, Clone, PartialEq)]
pub struct PortStatus {
    pub status: &'static str,
    pub vif_type: String,
    pub vif_details: serde_json::Map<String, serde_json::Value>,
    /// Write only if the port is still bound to this chassis (else: only if bound to no chassis).
    pub bound_here: bool,
}

impl PortStatus {
    /// Plugged as `vif`: `ACTIVE`, or `DOWN` if the port is administratively down.
    pub fn plugged(p: &Port, vif: Vif, details: serde_json::Map<String, serde_json::Value>) -> PortStatus {
        let status = if p.admin_state_up { "ACTIVE" } else { "DOWN" };
        PortStatus { status, vif_type: vif.name().into(), vif_details: details, bound_here: true }
    }

    /// Bound here, but the dataplane could not plug it.
    pub fn failed() -> PortStatus {
        PortStatus {
            status: "DOWN",
            vif_type: "binding_failed".into(),
            vif_details: Default::default(),
            bound_here: true,
        }
    }

    /// Still bound here, and the node is stopping: its device goes with the node.
    pub fn stopped(vif: Vif) -> PortStatus {
        PortStatus { status: "DOWN", vif_type: vif.name().into(), vif_details: Default::default(), bound_here: true }
    }

    /// Bound here no more: written only if no other chassis took it meanwhile.
    pub fn unbound() -> PortStatus {
        PortStatus { status: "DOWN", vif_type: "unbound".into(), vif_details: Default::default(), bound_here: false }
    }
}

/// Writes the ports' status back, compare-and-swap, retried on a conflict; a port deleted or bound
/// elsewhere meanwhile is left alone.
///
/// When the node stops, each port gets one try and no wait: the DB may be down, and a stopping node does
/// not wait for it (the caller stops waiting for this thread after a deadline, too).
pub fn write_back(
    db: Arc<dyn Db>,
    chassis: String,
    rx: crossbeam_channel::Receiver<(String, PortStatus)>,
    stop: Arc<AtomicBool>,
) {
    let store = Store::new(&*db);
    let backoff = |attempt: u32| {
        if !stop.load(Ordering::Relaxed) {
            sleep_unless(&stop, Duration::from_millis(100 << attempt.min(4)));
        }
    };
    while let Ok(first) = rx.recv() {
        // The latest wish per port, for everything already queued.
        let mut batch: HashMap<String, PortStatus> = HashMap::from([first]);
        while let Ok((id, s)) = rx.try_recv() {
            batch.insert(id, s);
        }
        for (id, want) in batch {
            let tries = if stop.load(Ordering::Relaxed) { 1 } else { 10 };
            for attempt in 0..tries {
                let port: Port = match store.get(&id) {
                    Ok(Some(p)) => p,
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(port = %id, "reading for a status update: {e}");
                        backoff(attempt);
                        continue;
                    }
                };
                let ours = if want.bound_here { port.host_id == chassis } else { port.host_id.is_empty() };
                let same = port.status == want.status
                    && port.vif_type == want.vif_type
                    && port.vif_details == want.vif_details;
                if !ours || same {
                    break;
                }
                let mut next = port.clone();
                next.status = want.status.into();
                next.vif_type = want.vif_type.clone();
                next.vif_details = want.vif_details.clone();
                match store.update(next) {
                    Ok(_) => break,
                    Err(DbError::Conflict { .. }) => continue,
                    Err(e) => {
                        tracing::warn!(port = %id, "status update: {e}");
                        backoff(attempt);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use control::db::embedded::EmbeddedDb;

    use super::*;

    #[test]
    fn only_ports_bound_as_expected_are_written() {
        let dir = std::env::temp_dir().join(format!("df-port-status-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let db: Arc<dyn Db> = Arc::new(EmbeddedDb::open(&dir).unwrap());
        let store = Store::new(&*db);
        let port = |id: &str, host: &str| {
            let mut p = Port::new(id.into(), "net".into());
            p.host_id = host.into();
            store.create(p).unwrap()
        };
        let (here, elsewhere, unbound) = (port("p-here", "c1"), port("p-else", "c2"), port("p-unbound", ""));
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut details = serde_json::Map::new();
        details.insert("tap_name".into(), "tapp-here".into());
        tx.send((here.id.clone(), PortStatus::failed())).unwrap();
        tx.send((here.id.clone(), PortStatus::plugged(&here, Vif::Tap, details.clone()))).unwrap();
        tx.send((elsewhere.id.clone(), PortStatus::plugged(&elsewhere, Vif::Tap, details.clone()))).unwrap();
        tx.send((unbound.id.clone(), PortStatus::unbound())).unwrap();
        tx.send(("p-gone".into(), PortStatus::unbound())).unwrap();
        drop(tx);
        write_back(db.clone(), "c1".into(), rx, Arc::new(AtomicBool::new(false)));
        let get = |id: &str| store.get::<Port>(id).unwrap().unwrap();
        let p = get("p-here");
        assert_eq!(
            (p.status.as_str(), p.vif_type.as_str(), &p.vif_details),
            ("ACTIVE", "tap", &details),
            "the last wish"
        );
        assert_eq!(get("p-else").status, elsewhere.status, "bound to another chassis: not ours to write");
        assert_eq!(get("p-unbound").vif_type, "unbound");
        drop(db);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
