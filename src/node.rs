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
use dataplane::{Dataplane, DataplaneOptions, Report};
use pipelines::tables::Tables;

/// Which DB: the embedded one in a data directory, or etcd.
#[derive(Args, Debug, Clone)]
pub struct DbArgs {
    /// The embedded DB's data directory (ignored with --etcd).
    #[arg(long, default_value = "/var/lib/dragonflow")]
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
    /// Log filter (default info).
    #[arg(long, default_value = "info")]
    log_level: String,
    /// Seconds between two counter lines in the log (0: none).
    #[arg(long, default_value_t = 0)]
    stats_interval: u64,
    /// Write the counters as JSON to this file every second and on exit.
    #[arg(long, value_name = "FILE")]
    stats_json: Option<PathBuf>,
    /// Stop by itself after this many seconds.
    #[arg(long, value_name = "SECONDS")]
    duration: Option<f64>,
    /// DPDK EAL arguments, after `--` (default: -l 0-1 --main-lcore 0 --no-huge -m 1024 --no-pci
    /// --file-prefix dragonflow-CHASSIS).
    #[arg(last = true, value_name = "EAL")]
    eal: Vec<String>,
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
fn status_writer(db: Arc<dyn Db>, chassis: String, rx: crossbeam_channel::Receiver<(String, Status)>) {
    let store = Store::new(&*db);
    while let Ok(first) = rx.recv() {
        // The latest wish per port, for everything already queued.
        let mut batch: HashMap<String, Status> = HashMap::from([first]);
        while let Ok((id, s)) = rx.try_recv() {
            batch.insert(id, s);
        }
        for (id, want) in batch {
            for attempt in 0..10 {
                let port: Port = match store.get(&id) {
                    Ok(Some(p)) => p,
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(port = %id, "reading for a status update: {e}");
                        std::thread::sleep(Duration::from_millis(100 << attempt.min(4)));
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
                        std::thread::sleep(Duration::from_millis(100 << attempt.min(4)));
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
    let filter =
        tracing_subscriber::EnvFilter::try_new(&a.log_level).with_context(|| format!("log level {:?}", a.log_level))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let chassis = a.chassis.clone().unwrap_or_else(host_name);
    if chassis.is_empty() || chassis.contains('/') {
        bail!("chassis name {chassis:?}: give one with --chassis");
    }
    crate::set_signal_mask(libc::SIG_BLOCK);
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).context("installing the signal handler")?;
    }
    let _events = crate::signal_events()?;

    let db = a.db.open()?;
    register(&*db, &chassis, &a.tunnel_ip)?;
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

    let eal_args: Vec<String> = if a.eal.is_empty() {
        let prefix = format!("dragonflow-{}", short(&chassis));
        ["-l", "0-1", "--main-lcore", "0", "--no-huge", "-m", "1024", "--no-pci", "--file-prefix", &prefix]
            .map(String::from)
            .to_vec()
    } else {
        a.eal.clone()
    };
    if a.vif_type == "vhostuser" {
        std::fs::create_dir_all(&a.vhost_dir).with_context(|| format!("{}", a.vhost_dir.display()))?;
    }
    tracing::info!(version = %dpdk::version(), eal = ?eal_args, "starting the EAL");
    let eal = dpdk::Eal::init("dragonflow", &eal_args)?;
    let opts = DataplaneOptions {
        eal_vdevs: crate::eal_vdevs(&eal_args),
        pipeline: true,
        hotplug_ports: dataplane::MAX_PORTS as u16,
        ..DataplaneOptions::default()
    };
    let outcome = dpdk::MainLcore::here(&eal)
        .map_err(anyhow::Error::from)
        .and_then(|main| Ok(Dataplane::start(&main, &opts, |_| Ok(Tables::default()))?))
        .and_then(|dp| serve(dp, a, &chassis, db.clone(), &stop));
    stop.store(true, Ordering::Relaxed);
    if let Some(th) = api {
        let _ = th.join();
    }
    // SAFETY: `serve` dropped every port, queue and mempool and joined every worker (or `start` did on its
    // error path, or none was made); nothing of DPDK follows.
    unsafe { eal.cleanup() };
    crate::remove_runtime_dir(&eal_args);
    let report = outcome?;
    if report.mempool.in_use != 0 {
        bail!("{} mbufs did not come back to the pool after the ports were closed", report.mempool.in_use);
    }
    Ok(())
}

fn write_stats(path: &Option<PathBuf>, r: &Report) {
    if let Some(p) = path {
        let tmp = p.with_extension("tmp");
        if let Ok(s) = serde_json::to_string_pretty(r) {
            if std::fs::write(&tmp, s).is_ok() {
                let _ = std::fs::rename(&tmp, p);
            }
        }
    }
}

fn serve(dp: Dataplane, a: &NodeArgs, chassis: &str, db: Arc<dyn Db>, stop: &Arc<AtomicBool>) -> Result<Report> {
    let dp = Arc::new(Mutex::new(dp));
    let (status_tx, status_rx) = crossbeam_channel::unbounded();
    let status = {
        let (db, chassis) = (db.clone(), chassis.to_owned());
        std::thread::Builder::new().name("status".into()).spawn(move || status_writer(db, chassis, status_rx))?
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
            // A DB that fails (etcd down) is retried; the dataplane keeps forwarding on the tables it has.
            while !stop.load(Ordering::Relaxed) {
                match c.run(&mut plumber, &stop) {
                    Ok(()) => break,
                    Err(e) => {
                        tracing::error!("the controller lost the DB: {e}; retrying in 1 s");
                        std::thread::sleep(Duration::from_secs(1));
                    }
                }
            }
            plumber.stopping();
        })?
    };
    eprintln!("dragonflow: node {chassis} running (Ctrl-C to stop)");
    let started = Instant::now();
    let deadline = a.duration.map(|s| started + Duration::from_secs_f64(s.max(0.0)));
    let interval = Duration::from_secs(a.stats_interval);
    let mut next_stats = started + interval;
    let mut next_second = started + Duration::from_secs(1);
    while !stop.load(Ordering::Relaxed) && deadline.is_none_or(|d| Instant::now() < d) {
        std::thread::sleep(Duration::from_millis(50));
        let now = Instant::now();
        if now >= next_second {
            let mut dp = dp.lock().expect("poisoned");
            dp.collect_latency();
            dp.reclaim();
            write_stats(&a.stats_json, &dp.report());
            next_second = now + Duration::from_secs(1);
        }
        if !interval.is_zero() && now >= next_stats {
            crate::log_report(&dp.lock().expect("poisoned").report());
            next_stats = now + interval;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let _ = controller.join();
    let _ = status.join();
    let dp = Arc::into_inner(dp).context("the dataplane is still shared")?.into_inner().expect("poisoned");
    let mut dp = dp;
    dp.collect_latency();
    let report = dp.shutdown();
    crate::log_report(&report);
    write_stats(&a.stats_json, &report);
    Ok(report)
}

#[cfg(test)]
mod tests {
    #[test]
    fn device_names_take_eleven_characters_of_the_port_id() {
        assert_eq!(super::short("3f2a9c1e-77d1-4c2b-9d7e-0123456789ab"), "3f2a9c1e-77");
        assert_eq!(format!("tap{}", super::short("3f2a9c1e-77d1-4c2b")).len(), 14, "fits IFNAMSIZ");
    }
}
