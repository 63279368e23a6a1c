//! Chassis records in the DB: a node's own (its name, `--chassis` or the host name; its tunnel endpoint and
//! the encapsulations it takes, `--tunnel-types`), registered (or refreshed) at start, before the node
//! follows the DB, and taken out as it stops; and static ones, `dragonflow chassis` ([`ChassisCommand`]):
//! a tunnel endpoint no node of ours runs on (a hardware VTEP, a host with the kernel's own VXLAN, Geneve
//! or GRE devices: the need Neutron's L2 gateway serves). Ports bound to a chassis name it in
//! `binding:host_id`; the nodes tunnel their traffic to its endpoint.

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use control::db::{Db, DbError};
use control::model::{now_utc, Agent, Chassis, NetworkType, Object, Store, AGENT_REPORT_INTERVAL};

use crate::backoff::{sleep_unless, Backoff};

/// The chassis name unless --chassis says: the host name.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into())
}

/// What a chassis registers: its tunnel endpoint and the encapsulations it takes.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub ip: String,
    pub tunnel_types: Vec<NetworkType>,
}

/// Registers (or refreshes) this node's chassis, waiting for the DB (with backoff) if it does not answer
/// yet; `Ok(false)` if `stop` came first.
pub fn register_when_up(db: &dyn Db, chassis: &str, at: &Endpoint, stop: &AtomicBool) -> Result<bool> {
    let mut backoff = Backoff::new();
    while !stop.load(Ordering::Relaxed) {
        match register(db, chassis, at) {
            Ok(()) => return Ok(true),
            Err(e) if e.downcast_ref::<DbError>().is_some_and(|e| matches!(e, DbError::Unavailable(_))) => {
                let wait = backoff.next();
                tracing::warn!("registering chassis {chassis}: {e:#}; the DB does not answer: again in {wait:?}");
                sleep_unless(stop, wait);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}

/// Takes this node's chassis out of the DB as the node stops: the other nodes stop tunnelling to it (its
/// ports' traffic is dropped there, counted as `tunnel.no_chassis`) until it registers again. A node
/// that dies without stopping stays registered (no liveness yet).
pub fn deregister(db: &dyn Db, chassis: &str) {
    match Store::new(db).delete::<Chassis>(chassis, None) {
        Ok(_) | Err(DbError::NotFound) => tracing::info!(%chassis, "chassis deregistered"),
        Err(e) => tracing::warn!(%chassis, "deregistering the chassis: {e}"),
    }
}

/// Reports this node's agent (`control::model::Agent`: Neutron's `agent` extension shows it) now and
/// every [`AGENT_REPORT_INTERVAL`] until `stop`; a report the DB does not take is logged and tried at the
/// next. The agent stays when the node stops, its reports stale: Neutron's dead agent.
pub fn report(db: &dyn Db, chassis: &str, at: &Endpoint, stop: &AtomicBool) {
    let started = now_utc();
    while !stop.load(Ordering::Relaxed) {
        if let Err(e) = report_once(db, chassis, at, &started) {
            tracing::warn!(%chassis, "the agent's report: {e:#}");
        }
        sleep_unless(stop, AGENT_REPORT_INTERVAL);
    }
}

/// One report: the agent's heartbeat (and its endpoint), keeping what an admin set.
fn report_once(db: &dyn Db, chassis: &str, at: &Endpoint, started: &str) -> Result<()> {
    let now = now_utc();
    let new = || Agent {
        id: chassis.into(),
        tunnel_ip: at.ip.clone(),
        tunnel_types: at.tunnel_types.clone(),
        created_at: now.clone(),
        started_at: started.to_owned(),
        heartbeat_timestamp: now.clone(),
        admin_state_up: true,
        description: String::new(),
        revision_number: 0,
    };
    upsert(db, chassis, new, |a: &mut Agent| {
        (a.tunnel_ip, a.tunnel_types) = (at.ip.clone(), at.tunnel_types.clone());
        (a.started_at, a.heartbeat_timestamp) = (started.to_owned(), now.clone());
        true
    })
    .context("the agent's entry")
}

/// Object `id`: made by `new` if there is none, else changed by `change` (written if it says so),
/// again on the fresh object when another writer came first.
fn upsert<T: Object>(db: &dyn Db, id: &str, new: impl Fn() -> T, change: impl Fn(&mut T) -> bool) -> Result<()> {
    let store = Store::new(db);
    for _ in 0..10 {
        let result = match store.get::<T>(id)? {
            Some(mut o) => {
                if !change(&mut o) {
                    return Ok(());
                }
                store.update(o).map(drop)
            }
            None => store.create(new()).map(drop),
        };
        match result {
            Ok(()) => return Ok(()),
            Err(DbError::Conflict { .. } | DbError::AlreadyExists) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    bail!("{} {id}: the entry kept changing under us", T::TABLE)
}

/// `dragonflow chassis`: static chassis, for tunnel endpoints that are not nodes of ours.
#[derive(Subcommand, Debug)]
pub enum ChassisCommand {
    /// Register (or change) a chassis: ports bound to NAME (`binding:host_id`) are tunnelled to IP.
    Add {
        name: String,
        /// Its tunnel endpoint (IPv4).
        #[arg(long)]
        tunnel_ip: String,
        /// The encapsulations it takes, comma-separated (vxlan, geneve, gre).
        #[arg(long, default_value = "vxlan,geneve,gre", value_delimiter = ',')]
        tunnel_types: Vec<String>,
        #[command(flatten)]
        db: crate::db::DbArgs,
    },
    /// Take a chassis out: the nodes stop tunnelling to it (its ports' traffic is dropped, counted).
    Delete {
        name: String,
        #[command(flatten)]
        db: crate::db::DbArgs,
    },
    /// Every chassis, one per line: name, tunnel endpoint, encapsulations.
    List {
        #[command(flatten)]
        db: crate::db::DbArgs,
    },
}

/// The tunnel types named in `types` (vxlan, geneve, gre), or which one is not.
pub fn tunnel_types(types: &[String]) -> Result<Vec<NetworkType>> {
    types
        .iter()
        .filter(|t| !t.is_empty())
        .map(|t| match t.parse::<NetworkType>() {
            Ok(t @ (NetworkType::Vxlan | NetworkType::Geneve | NetworkType::Gre)) => Ok(t),
            _ => bail!("--tunnel-types: {t:?} is not a tunnel type (vxlan, geneve, gre)"),
        })
        .collect()
}

pub fn command(c: &ChassisCommand) -> Result<()> {
    match c {
        ChassisCommand::Add { name, tunnel_ip, tunnel_types: types, db } => {
            if name.is_empty() || name.contains('/') {
                bail!("chassis name {name:?}: not empty, no '/'");
            }
            tunnel_ip
                .parse::<std::net::Ipv4Addr>()
                .with_context(|| format!("--tunnel-ip {tunnel_ip:?}: an IPv4 address (no IPv6 underlay yet)"))?;
            let at = Endpoint { ip: tunnel_ip.clone(), tunnel_types: tunnel_types(types)? };
            register(&*db.open()?, name, &at)?;
            println!("chassis {name}: {tunnel_ip}");
        }
        ChassisCommand::Delete { name, db } => {
            Store::new(&*db.open()?).delete::<Chassis>(name, None).with_context(|| format!("chassis {name}"))?;
            println!("chassis {name} deleted");
        }
        ChassisCommand::List { db } => {
            let (mut all, _) = Store::new(&*db.open()?).list::<Chassis>()?;
            all.sort_by(|a, b| a.id.cmp(&b.id));
            for c in all {
                let types: Vec<String> = c.tunnel_types.iter().map(|t| format!("{t:?}").to_lowercase()).collect();
                println!("{} {} {}", c.id, c.ip, types.join(","));
            }
        }
    }
    Ok(())
}

/// Registers (or refreshes) this node's chassis.
fn register(db: &dyn Db, chassis: &str, at: &Endpoint) -> Result<()> {
    let new =
        || Chassis { id: chassis.into(), ip: at.ip.clone(), tunnel_types: at.tunnel_types.clone(), revision_number: 0 };
    upsert(db, chassis, new, |c: &mut Chassis| {
        let changed = c.ip != at.ip || c.tunnel_types != at.tunnel_types;
        (c.ip, c.tunnel_types) = (at.ip.clone(), at.tunnel_types.clone());
        changed
    })
    .with_context(|| format!("registering chassis {chassis}"))
}

#[cfg(test)]
mod tests {
    use control::db::embedded::EmbeddedDb;

    use super::*;

    #[test]
    fn registering_creates_the_chassis_then_follows_its_tunnel_ip_and_types() {
        let dir = std::env::temp_dir().join(format!("df-chassis-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let db = EmbeddedDb::open(&dir).unwrap();
        let stop = AtomicBool::new(false);
        let at =
            |ip: &str, tunnel_types: &[NetworkType]| Endpoint { ip: ip.into(), tunnel_types: tunnel_types.to_vec() };
        assert!(register_when_up(&db, "c1", &at("10.0.0.1", &[NetworkType::Vxlan]), &stop).unwrap());
        register(&db, "c1", &at("10.0.0.1", &[NetworkType::Vxlan])).unwrap();
        let got = |db: &EmbeddedDb| Store::new(db).get::<Chassis>("c1").unwrap().map(|c| (c.ip, c.tunnel_types));
        assert_eq!(got(&db), Some(("10.0.0.1".into(), vec![NetworkType::Vxlan])));
        register(&db, "c1", &at("10.0.0.2", &[NetworkType::Vxlan])).unwrap();
        assert_eq!(got(&db), Some(("10.0.0.2".into(), vec![NetworkType::Vxlan])));
        register(&db, "c1", &at("10.0.0.2", &[NetworkType::Geneve, NetworkType::Gre])).unwrap();
        assert_eq!(got(&db), Some(("10.0.0.2".into(), vec![NetworkType::Geneve, NetworkType::Gre])));
        drop(db);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_report_keeps_what_an_admin_set_and_moves_the_heartbeat() {
        let dir = std::env::temp_dir().join(format!("df-agent-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let db = EmbeddedDb::open(&dir).unwrap();
        let at = Endpoint { ip: "10.0.0.1".into(), tunnel_types: vec![NetworkType::Vxlan] };
        report_once(&db, "c1", &at, "2026-01-01T00:00:00Z").unwrap();
        let s = Store::new(&db);
        let mut a: Agent = s.get("c1").unwrap().unwrap();
        assert_eq!((a.tunnel_ip.as_str(), a.admin_state_up), ("10.0.0.1", true));
        (a.description, a.admin_state_up, a.heartbeat_timestamp) =
            ("rack 3".into(), false, "2000-01-01T00:00:00Z".into());
        s.update(a).unwrap();
        report_once(&db, "c1", &at, "2026-01-01T00:00:00Z").unwrap();
        let a: Agent = s.get("c1").unwrap().unwrap();
        assert_eq!((a.description.as_str(), a.admin_state_up), ("rack 3", false));
        assert!(a.heartbeat_timestamp.as_str() > "2026", "{}", a.heartbeat_timestamp);
        drop(db);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
