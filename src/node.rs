//! The node roles: the local controller driving the dataplane from the DB, with the Neutron API in the same
//! process (`all-in-one`, over the embedded DB by default) or without it (`node`, pointed at etcd). The
//! pieces have their own modules: the chassis record ([`crate::chassis`]), the binding agent that plugs
//! the ports bound here ([`crate::binding`], [`crate::vif`]), the status write-back
//! ([`crate::port_status`]); the process around them is the [`Lifecycle`].
//!
//! Threads: the `controller` thread follows the DB and drives the binding agent (plugging ports, publishing
//! the compiled tables); the `status` thread writes each port's `status`/`binding:vif_*` back to the DB;
//! the `api` thread (all-in-one) serves the Neutron API on its own runtime; the main thread runs the
//! lifecycle (signals, latency, counters). The dataplane sits behind a mutex only the controller and main
//! threads take; the workers never see it.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use control::controller::Controller;
use control::db::Db;
use dataplane::{Dataplane, DataplaneOptions, Mode, Report};
use pipelines::tables::Tables;

use crate::api_args::ApiSettingsArgs;
use crate::backoff::{sleep_unless, Backoff};
use crate::binding::BindingAgent;
use crate::chassis::{host_name, register_when_up, Endpoint};
use crate::config::{LogConfig, SwitchArgs};
use crate::db::DbArgs;
use crate::lifecycle::{Lifecycle, StatsJson};
use crate::port_status;
use crate::vif::{short, Vif, Vifs};

#[derive(Args, Debug, Clone)]
pub struct NodeArgs {
    /// This node's chassis name: ports bound here name it in `binding:host_id` (default: the host name).
    #[arg(long)]
    chassis: Option<String>,
    /// The tunnel endpoint address this chassis registers.
    #[arg(long, default_value = "127.0.0.1")]
    tunnel_ip: String,
    /// The encapsulations this chassis takes, comma-separated (vxlan, geneve, gre).
    #[arg(long, default_value = "vxlan,geneve,gre", value_delimiter = ',')]
    tunnel_types: Vec<String>,
    #[command(flatten)]
    db: DbArgs,
    /// Serve the Neutron API on this address too (all-in-one: 127.0.0.1:9696 unless "none").
    #[arg(long)]
    listen: Option<String>,
    /// A static token every API request must carry in X-Auth-Token.
    #[arg(long, env = "DRAGONFLOW_API_TOKEN")]
    token: Option<String>,
    /// The API's settings (when this node serves it).
    #[command(flatten)]
    api: ApiSettingsArgs,
    /// How ports bound here are plugged in unless their `binding:profile` says (`{"vif_type": "vhostuser"}`):
    /// a TAP device `tap` + the port id's first 11 characters, or a vhost-user socket in --vhost-dir.
    #[arg(long, default_value = "tap", value_parser = ["tap", "vhostuser"])]
    vif_type: String,
    /// Where vhost-user sockets are made (`vhu` + 11 characters of the port id).
    #[arg(long, default_value = "/var/run/dragonflow")]
    vhost_dir: PathBuf,
    #[command(flatten)]
    switch: SwitchArgs,
}

/// The tunnel endpoint the flags give: an IP address and tunnel types.
fn endpoint(a: &NodeArgs) -> Result<Endpoint> {
    use control::model::NetworkType;
    a.tunnel_ip.parse::<std::net::IpAddr>().with_context(|| format!("--tunnel-ip {}", a.tunnel_ip))?;
    let tunnel_types = a
        .tunnel_types
        .iter()
        .filter(|t| !t.is_empty())
        .map(|t| match t.parse::<NetworkType>() {
            Ok(t @ (NetworkType::Vxlan | NetworkType::Geneve | NetworkType::Gre)) => Ok(t),
            _ => bail!("--tunnel-types: {t:?} is not a tunnel type (vxlan, geneve, gre)"),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Endpoint { ip: a.tunnel_ip.clone(), tunnel_types })
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

    let settings = a.api.settings()?;
    let endpoint = endpoint(a)?;
    let db = a.db.open()?;
    if !register_when_up(&*db, &chassis, &endpoint, &stop)? {
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
            let settings = settings.clone();
            let th = std::thread::Builder::new().name("api".into()).spawn(move || {
                let r = control::api::serve_until(&listen, db, settings, token, stop.clone());
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
        std::thread::Builder::new()
            .name("status".into())
            .spawn(move || port_status::write_back(db, chassis, status_rx, stop))?
    };
    let controller = {
        let vifs = Vifs { default: Vif::from_name(&a.vif_type).unwrap_or(Vif::Tap), vhost_dir: a.vhost_dir.clone() };
        let agent = BindingAgent::new(dp.clone(), vifs, status_tx);
        let (db, chassis, stop) = (db.clone(), chassis.to_owned(), stop.clone());
        std::thread::Builder::new().name("controller".into()).spawn(move || {
            let mut agent = agent;
            let mut c = Controller::new(&*db, &chassis);
            // A DB that fails (etcd down, frozen, restarting) is retried with backoff; the dataplane keeps
            // forwarding on the tables it has meanwhile, and the next sync patches in what changed.
            let mut backoff = Backoff::new();
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                match c.run(&mut agent, &stop) {
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
            agent.stopping();
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
