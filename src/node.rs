//! The node roles: the local controller driving the dataplane from the DB, with the Neutron API in the same
//! process (`all-in-one`, over the embedded DB by default) or without it (`node`, pointed at etcd).
//!
//! Threads: the controller thread follows the DB, plumbs the ports bound to this chassis (DPDK hot-plug of
//! a TAP or vhost-user port) and publishes the compiled tables; the status thread writes each port's
//! `status`/`binding:vif_*` back to the DB; the API (all-in-one) serves on its own runtime; the main
//! thread waits for signals, collects latency and logs counters. The dataplane sits behind a mutex only
//! the control threads take; the workers never see it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use control::compile::Summary;
use control::controller::{Binding, Controller, Node};
use control::db::{Db, DbError};
use control::model::{Chassis, Port, Store};
use dataplane::{Dataplane, DataplaneOptions, Mode, Report};
use pipelines::tables::Tables;

use crate::config::{LogConfig, SwitchArgs};
use crate::lifecycle::{Lifecycle, StatsJson};

/// The embedded DB's data directory unless --data-dir says.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/dragonflow";

/// Which DB: the embedded one in a data directory, or etcd.
#[derive(Args, Debug, Clone)]
pub struct DbArgs {
    /// The embedded DB's data directory (ignored with --etcd).
    #[arg(long, default_value = DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// etcd endpoints (http://127.0.0.1:2379, repeatable) instead of the embedded DB.
    #[arg(long)]
    etcd: Vec<String>,
    /// The key prefix in etcd.
    #[arg(long, default_value = "dragonflow")]
    etcd_prefix: String,
}

impl DbArgs {
    pub fn open(&self) -> Result<Arc<dyn Db>> {
        Ok(if self.etcd.is_empty() {
            std::fs::create_dir_all(&self.data_dir).with_context(|| format!("{}", self.data_dir.display()))?;
            Arc::new(control::db::embedded::EmbeddedDb::open(&self.data_dir).context("opening the embedded DB")?)
        } else {
            Arc::new(control::db::etcd::EtcdDb::connect(&self.etcd, &self.etcd_prefix).context("connecting to etcd")?)
        })
    }
}

#[derive(Args, Debug, Clone)]
pub struct NodeArgs {
    /// This node's chassis name: ports bound here name it in `binding:host_id` (default: the host name).
    #[arg(long)]
    chassis: Option<String>,
    /// The tunnel endpoint address this chassis registers.
    #[arg(long, default_value = "127.0.0.1")]
    tunnel_ip: String,
    #[command(flatten)]
    db: DbArgs,
    /// Serve the Neutron API on this address too (all-in-one: 127.0.0.1:9696 unless "none").
    #[arg(long)]
    listen: Option<String>,
    /// A static token every API request must carry in X-Auth-Token.
    #[arg(long, env = "DRAGONFLOW_API_TOKEN")]
    token: Option<String>,
    /// How ports bound here are plumbed unless their `binding:profile` says (`{"vif_type": "vhostuser"}`):
    /// a TAP device `tap` + the port id's first 11 characters, or a vhost-user socket in --vhost-dir.
    #[arg(long, default_value = "tap", value_parser = ["tap", "vhostuser"])]
    vif_type: String,
    /// Where vhost-user sockets are made (`vhu` + 11 characters of the port id).
    #[arg(long, default_value = "/var/run/dragonflow")]
    vhost_dir: PathBuf,
    #[command(flatten)]
    switch: SwitchArgs,
}

/// How a port is plumbed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Vif {
    Tap,
    VhostUser,
}

impl Vif {
    fn name(self) -> &'static str {
        match self {
            Vif::Tap => "tap",
            Vif::VhostUser => "vhostuser",
        }
    }
}

/// A port's device names: the first 11 characters of its id, as Neutron's agents name them.
fn short(id: &str) -> String {
    id.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').take(11).collect()
}

/// What the node writes back into a port.
#[derive(Debug, Clone, PartialEq)]
struct Status {
    status: &'static str,
    vif_type: String,
    vif_details: serde_json::Map<String, serde_json::Value>,
    /// Write only if the port is still bound to this chassis (else: only if bound to no chassis).
    bound_here: bool,
}

struct Plugged {
    index: u16,
    vif: Vif,
}

/// The controller's view of the dataplane: plugs what is bound here, publishes the tables.
struct Plumber {
    dp: Arc<Mutex<Dataplane>>,
    default_vif: Vif,
    vhost_dir: PathBuf,
    plugged: HashMap<String, Plugged>,
    /// Unplugged from the tables, still on the dataplane until tables without them are published.
    unplug: Vec<u16>,
    status: crossbeam_channel::Sender<(String, Status)>,
}

impl Plumber {
    fn wanted_vif(&self, p: &Port) -> Vif {
        match p.profile.get("vif_type").and_then(|v| v.as_str()) {
            Some("vhostuser") => Vif::VhostUser,
            Some("tap") => Vif::Tap,
            _ => self.default_vif,
        }
    }

    /// The port's device, as DPDK devargs.
    fn devargs(&self, p: &Port, vif: Vif, workers: usize) -> String {
        let s = short(&p.id);
        match vif {
            Vif::Tap => format!("net_tap_{s},iface=tap{s}"),
            // A queue pair per worker: every worker sends to the VM on a queue of its own.
            Vif::VhostUser => format!("net_vhost_{s},iface={},queues={workers}", self.socket(p).display()),
        }
    }

    fn socket(&self, p: &Port) -> PathBuf {
        self.vhost_dir.join(format!("vhu{}", short(&p.id)))
    }

    /// `binding:vif_details`, as Neutron's agents write them.
    fn details(&self, p: &Port, vif: Vif) -> serde_json::Map<String, serde_json::Value> {
        let mut d = serde_json::Map::new();
        d.insert("port_filter".into(), true.into());
        match vif {
            Vif::Tap => d.insert("tap_name".into(), format!("tap{}", short(&p.id)).into()),
            Vif::VhostUser => {
                // Neutron's mode is the VM's: the switch is the server, QEMU connects as the client.
                d.insert("vhostuser_mode".into(), "client".into());
                d.insert("vhostuser_socket".into(), self.socket(p).display().to_string().into())
            }
        };
        d
    }

    fn plug(&mut self, p: &Port) {
        let vif = self.wanted_vif(p);
        if let Some(old) = self.plugged.get(&p.id) {
            if old.vif == vif {
                self.report(p, vif);
                return;
            }
            self.unplug_later(&p.id);
        }
        if vif == Vif::VhostUser {
            // A socket left by an earlier run would make the probe fail.
            let _ = std::fs::remove_file(self.socket(p));
        }
        let mut dp = self.dp.lock().expect("poisoned");
        let devargs = self.devargs(p, vif, dp.worker_count());
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
                let status = Status {
                    status: "DOWN",
                    vif_type: "binding_failed".into(),
                    vif_details: Default::default(),
                    bound_here: true,
                };
                let _ = self.status.send((p.id.clone(), status));
            }
        }
    }

    /// Tells the status thread what `p` is now: ACTIVE when it is plugged and up.
    fn report(&self, p: &Port, vif: Vif) {
        let status = if p.admin_state_up { "ACTIVE" } else { "DOWN" };
        let s = Status { status, vif_type: vif.name().into(), vif_details: self.details(p, vif), bound_here: true };
        let _ = self.status.send((p.id.clone(), s));
    }

    /// Takes the port out of the tables now and off the dataplane once tables without it are published.
    fn unplug_later(&mut self, id: &str) {
        if let Some(p) = self.plugged.remove(id) {
            self.unplug.push(p.index);
        }
    }

    /// The node is stopping and its devices go with it: every plugged port is DOWN (still bound here).
    fn stopping(&mut self) {
        for (id, p) in self.plugged.drain() {
            let s = Status {
                status: "DOWN",
                vif_type: p.vif.name().into(),
                vif_details: Default::default(),
                bound_here: true,
            };
            let _ = self.status.send((id, s));
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

impl Node for Plumber {
    fn bind(&mut self, changes: &[Binding<'_>], resync: bool) {
        if resync {
            let bound: std::collections::HashSet<&str> = changes
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
                .filter(|c| matches!(c, Binding::Bound(p) if self.plugged.get(&p.id).is_some_and(|x| x.vif == self.wanted_vif(p))))
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
                        let status = Status {
                            status: "DOWN",
                            vif_type: "unbound".into(),
                            vif_details: Default::default(),
                            bound_here: false,
                        };
                        let _ = self.status.send(((*id).to_owned(), status));
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

/// Writes the ports' status back, compare-and-swap, retried on a conflict; a port deleted or bound
/// elsewhere meanwhile is left alone.
///
/// When the node stops, each port gets one try and no wait: the DB may be down, and a stopping node does
/// not wait for it (the caller stops waiting for this thread after a deadline, too).
fn status_writer(
    db: Arc<dyn Db>,
    chassis: String,
    rx: crossbeam_channel::Receiver<(String, Status)>,
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
        let mut batch: HashMap<String, Status> = HashMap::from([first]);
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

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into())
}

/// Sleeps `d`, or less if `stop` is set meanwhile.
fn sleep_unless(stop: &AtomicBool, d: Duration) {
    let end = Instant::now() + d;
    while !stop.load(Ordering::Relaxed) {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

/// Exponential backoff for a DB that does not answer: 100 ms, doubling, up to 5 s.
struct Backoff(Duration);

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(5);

    fn new() -> Backoff {
        Backoff(Backoff::FIRST)
    }

    /// The next wait.
    fn next(&mut self) -> Duration {
        let d = self.0;
        self.0 = (self.0 * 2).min(Backoff::MAX);
        d
    }
}

/// Registers (or refreshes) this node's chassis, waiting for the DB (with backoff) if it does not answer
/// yet; `Ok(false)` if `stop` came first.
fn register_when_up(db: &dyn Db, chassis: &str, ip: &str, stop: &AtomicBool) -> Result<bool> {
    let mut backoff = Backoff::new();
    while !stop.load(Ordering::Relaxed) {
        match register(db, chassis, ip) {
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

/// Registers (or refreshes) this node's chassis.
fn register(db: &dyn Db, chassis: &str, ip: &str) -> Result<()> {
    let store = Store::new(db);
    for _ in 0..10 {
        let current: Option<Chassis> = store.get(chassis)?;
        let result = match current {
            Some(c) if c.ip == ip => return Ok(()),
            Some(mut c) => {
                c.ip = ip.into();
                store.update(c).map(drop)
            }
            None => store
                .create(Chassis { id: chassis.into(), ip: ip.into(), tunnel_types: Vec::new(), revision_number: 0 })
                .map(drop),
        };
        match result {
            Ok(()) => return Ok(()),
            Err(DbError::Conflict { .. } | DbError::AlreadyExists) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    bail!("registering chassis {chassis}: the entry kept changing under us")
}

/// Runs a node until a signal or the duration: `all_in_one` adds the Neutron API (on 127.0.0.1:9696
/// unless --listen says otherwise).
pub fn run(a: &NodeArgs, all_in_one: bool) -> Result<()> {
    // The dataplane of a node: the tables' pipeline, on ports plugged as they are bound here.
    let mut opts = DataplaneOptions {
        mode: Mode::Pipeline,
        hotplug_ports: dataplane::MAX_PORTS as u16,
        ..DataplaneOptions::default()
    };
    let mut log = LogConfig::default();
    a.switch.apply(&mut opts, &mut log);
    opts.validate()?;
    let life = Lifecycle::start(&log, &a.switch, StatsJson::EverySecond)?;
    let chassis = a.chassis.clone().unwrap_or_else(host_name);
    if chassis.is_empty() || chassis.contains('/') {
        bail!("chassis name {chassis:?}: give one with --chassis");
    }
    let stop = life.stop_flag().clone();

    let db = a.db.open()?;
    if !register_when_up(&*db, &chassis, &a.tunnel_ip, &stop)? {
        tracing::info!("stopped before the DB answered");
        return Ok(());
    }
    tracing::info!(%chassis, "chassis registered");

    let listen = match (&a.listen, all_in_one) {
        (Some(l), _) if l == "none" => None,
        (Some(l), _) => Some(l.clone()),
        (None, true) => Some("127.0.0.1:9696".to_owned()),
        (None, false) => None,
    };
    let api = match listen {
        Some(listen) => {
            let (db, token, stop) = (db.clone(), a.token.clone(), stop.clone());
            let th = std::thread::Builder::new().name("api".into()).spawn(move || {
                let r = control::api::serve_until(&listen, db, token, stop.clone());
                if let Err(e) = &r {
                    tracing::error!("the Neutron API on {listen} failed: {e}");
                    stop.store(true, Ordering::Relaxed);
                }
                r
            })?;
            Some(th)
        }
        None => None,
    };

    if opts.eal.is_empty() {
        let prefix = format!("dragonflow-{}", short(&chassis));
        opts.eal = ["-l", "0-1", "--main-lcore", "0", "--no-huge", "-m", "1024", "--no-pci", "--file-prefix", &prefix]
            .map(String::from)
            .to_vec();
    }
    if a.vif_type == "vhostuser" {
        std::fs::create_dir_all(&a.vhost_dir).with_context(|| format!("{}", a.vhost_dir.display()))?;
    }
    // SAFETY: the dataplane is the only DPDK object made, and `serve` shuts it down (joining its workers)
    // before it returns: by `finish`, or by dropping it on an error path, as `start` does on its own.
    let outcome = unsafe {
        life.with_eal(&opts.eal_args(), |main| {
            let dp = Dataplane::start(main, &opts, |_| Ok(Tables::default()))?;
            serve(&life, dp, a, &chassis, db.clone())
        })
    };
    stop.store(true, Ordering::Relaxed);
    if let Some(th) = api {
        let _ = th.join();
    }
    outcome.map(drop)
}

/// How long a stopping node waits for its ports' DOWN status to reach the DB.
const STATUS_GRACE: Duration = Duration::from_secs(3);

fn serve(life: &Lifecycle, dp: Dataplane, a: &NodeArgs, chassis: &str, db: Arc<dyn Db>) -> Result<Report> {
    let stop = life.stop_flag();
    let dp = Arc::new(Mutex::new(dp));
    let (status_tx, status_rx) = crossbeam_channel::unbounded();
    let status = {
        let (db, chassis) = (db.clone(), chassis.to_owned());
        let stop = stop.clone();
        std::thread::Builder::new().name("status".into()).spawn(move || status_writer(db, chassis, status_rx, stop))?
    };
    let controller = {
        let plumber = Plumber {
            dp: dp.clone(),
            default_vif: if a.vif_type == "vhostuser" { Vif::VhostUser } else { Vif::Tap },
            vhost_dir: a.vhost_dir.clone(),
            plugged: HashMap::new(),
            unplug: Vec::new(),
            status: status_tx,
        };
        let (db, chassis, stop) = (db.clone(), chassis.to_owned(), stop.clone());
        std::thread::Builder::new().name("controller".into()).spawn(move || {
            let mut plumber = plumber;
            let mut c = Controller::new(&*db, &chassis);
            // A DB that fails (etcd down, frozen, restarting) is retried with backoff; the dataplane keeps
            // forwarding on the tables it has meanwhile, and the next sync patches in what changed.
            let mut backoff = Backoff::new();
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                match c.run(&mut plumber, &stop) {
                    Ok(()) => break,
                    Err(e) => {
                        if started.elapsed() > Backoff::MAX * 2 {
                            backoff = Backoff::new(); // it was up for a while: a new outage
                        }
                        let wait = backoff.next();
                        tracing::error!(
                            "the controller lost the DB: {e}; the dataplane keeps its tables; again in {wait:?}"
                        );
                        sleep_unless(&stop, wait);
                    }
                }
            }
            plumber.stopping();
        })?
    };
    eprintln!("dragonflow: node {chassis} running (Ctrl-C to stop)");
    // SIGHUP means nothing to a node: its topology follows the DB.
    life.watch(&dp, |_| {});
    stop.store(true, Ordering::Relaxed);
    let stopped = Instant::now();
    // The controller gives the dataplane back; a DB call it is in ends within the DB's request deadline.
    let _ = controller.join();
    // The status writer marks the ports DOWN if the DB lets it, but a stopping node does not wait on a DB
    // that is down: past the deadline the thread is left behind (it holds nothing of the dataplane).
    while !status.is_finished() && stopped.elapsed() < STATUS_GRACE {
        std::thread::sleep(Duration::from_millis(20));
    }
    if status.is_finished() {
        let _ = status.join();
    } else {
        tracing::warn!("the DB did not take the ports' DOWN status within {STATUS_GRACE:?}; not waiting longer");
    }
    // The controller thread held the only other reference, and it is joined (its captures dropped, also
    // if it panicked).
    let dp = Arc::into_inner(dp).expect("the dataplane is shared with a joined thread only");
    life.finish(dp.into_inner().expect("poisoned"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn device_names_take_eleven_characters_of_the_port_id() {
        assert_eq!(super::short("3f2a9c1e-77d1-4c2b-9d7e-0123456789ab"), "3f2a9c1e-77");
        assert_eq!(format!("tap{}", super::short("3f2a9c1e-77d1-4c2b")).len(), 14, "fits IFNAMSIZ");
    }
}
