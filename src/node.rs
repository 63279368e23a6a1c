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

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use control::compile::{Links, ServicesConfig, TunnelConfig};
use control::controller::Controller;
use control::db::Db;
use dataplane::{Dataplane, DataplaneOptions, Mode, Report};
use pipelines::tables::Tables;
use pipelines::tunnel::Underlay;
use pipelines::wire::Mac;

use crate::api_args::{ApiSettingsArgs, AuthArgs};
use crate::backoff::{sleep_unless, Backoff};
use crate::binding::BindingAgent;
use crate::chassis::{deregister, host_name, register_when_up, report, Endpoint};
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
    /// The tunnel endpoint address this chassis registers (default: --underlay-ip's address, else
    /// 127.0.0.1: no tunnels).
    #[arg(long)]
    tunnel_ip: Option<String>,
    /// The underlay port tunnels leave and arrive by, as DPDK devargs (`net_tap_ul,iface=dful0`,
    /// `net_af_packet0,iface=eth1`, a PCI address); the switch owns it and answers ARP for --underlay-ip.
    #[arg(long, requires = "underlay_ip")]
    underlay: Option<String>,
    /// The underlay port's address and prefix (CIDR), the tunnel endpoint.
    #[arg(long, requires = "underlay")]
    underlay_ip: Option<String>,
    /// The underlay's gateway, the next hop toward tunnel endpoints outside --underlay-ip's subnet.
    #[arg(long, requires = "underlay")]
    underlay_gateway: Option<String>,
    /// A bridge mapping PHYSNET:DEVARGS (repeatable): provider networks (VLAN, flat) of physical network
    /// PHYSNET leave and arrive by that DPDK port, plugged at start (`physnet1:net_af_packet0,iface=eth2`).
    #[arg(long = "bridge-mapping", value_name = "PHYSNET:DEVARGS")]
    bridge_mappings: Vec<String>,
    /// Set DF on the outer IPv4 header (the networks' MTU leaves room for the tunnel headers).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    underlay_df: bool,
    /// The encapsulations this chassis takes, comma-separated (vxlan, geneve, gre).
    #[arg(long, default_value = "vxlan,geneve,gre", value_delimiter = ',')]
    tunnel_types: Vec<String>,
    /// The DHCP lease time the node's DHCP gives, in seconds (Neutron's dhcp_lease_duration); clients
    /// renew at half of it.
    #[arg(long, default_value_t = 86_400, value_parser = clap::value_parser!(u32).range(10..))]
    dhcp_lease_time: u32,
    /// The DNS domain DHCP gives (option 15, DHCPv6 domain search; Neutron's dns_domain; "" for none).
    #[arg(long, default_value = "openstacklocal")]
    dns_domain: String,
    #[command(flatten)]
    db: DbArgs,
    /// Serve the Neutron API on this address too (all-in-one: 127.0.0.1:9696 unless "none").
    #[arg(long)]
    listen: Option<String>,
    #[command(flatten)]
    auth: AuthArgs,
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

/// The underlay the flags give: devargs, address, prefix length, gateway.
#[derive(Debug, Clone)]
struct UnderlayArgs {
    devargs: String,
    ip: Ipv4Addr,
    prefix_len: u8,
    gateway: Option<Ipv4Addr>,
    dont_fragment: bool,
}

fn underlay(a: &NodeArgs) -> Result<Option<UnderlayArgs>> {
    let (Some(devargs), Some(cidr)) = (&a.underlay, &a.underlay_ip) else { return Ok(None) };
    let bad = || anyhow::anyhow!("--underlay-ip {cidr:?}: give an IPv4 address and prefix, as 192.168.50.1/24");
    let (ip, len) = cidr.split_once('/').ok_or_else(bad)?;
    let ip: Ipv4Addr = ip.parse().map_err(|_| bad())?;
    let prefix_len: u8 = len.parse().ok().filter(|&l| l <= 32).ok_or_else(bad)?;
    let gateway = match &a.underlay_gateway {
        Some(g) => Some(g.parse::<Ipv4Addr>().with_context(|| format!("--underlay-gateway {g:?}"))?),
        None => None,
    };
    if let Some(t) = &a.tunnel_ip {
        if t.parse::<Ipv4Addr>().ok() != Some(ip) {
            bail!("--tunnel-ip {t} is not --underlay-ip's address {ip}: the tunnel endpoint is the underlay's");
        }
    }
    Ok(Some(UnderlayArgs { devargs: devargs.clone(), ip, prefix_len, gateway, dont_fragment: a.underlay_df }))
}

/// The tunnel endpoint the flags give: an IP address and tunnel types.
fn endpoint(a: &NodeArgs) -> Result<Endpoint> {
    let ip = match (&a.tunnel_ip, underlay(a)?) {
        (_, Some(u)) => u.ip.to_string(),
        (Some(t), None) => t.clone(),
        (None, None) => "127.0.0.1".to_owned(),
    };
    ip.parse::<std::net::IpAddr>().with_context(|| format!("--tunnel-ip {ip}"))?;
    let tunnel_types = crate::chassis::tunnel_types(&a.tunnel_types)?;
    Ok(Endpoint { ip, tunnel_types })
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
            let (db, auth, stop) = (db.clone(), a.auth.auth(), stop.clone());
            let settings = settings.clone();
            let th = std::thread::Builder::new().name("api".into()).spawn(move || {
                let r = control::api::serve_until(&listen, db, settings, auth, stop.clone());
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
            serve(&life, dp, a, (&chassis, &endpoint), db.clone())
        })
    };
    stop.store(true, Ordering::Relaxed);
    if let Some(th) = api {
        let _ = th.join();
    }
    outcome.map(drop)
}

/// Plugs the underlay port into the dataplane: the tunnels' side of the tables.
fn plug_underlay(dp: &Mutex<Dataplane>, u: &UnderlayArgs) -> Result<TunnelConfig> {
    let mut dp = dp.lock().expect("poisoned");
    let port = dp.plug(&u.devargs).with_context(|| format!("plugging the underlay {}", u.devargs))?;
    let mac = dp.ports().find(|(i, _)| *i == port).and_then(|(_, s)| Mac::parse(&s.mac));
    let Some(mac) = mac else { bail!("the underlay {} has no MAC address", u.devargs) };
    tracing::info!(port, %mac, ip = %u.ip, "underlay plugged");
    let underlay = Underlay { port, mac, ip: u.ip.into(), dont_fragment: u.dont_fragment, ttl: 64 };
    Ok(TunnelConfig { underlay, prefix_len: u.prefix_len, gateway: u.gateway.map(Into::into) })
}

/// How long a stopping node waits for its ports' DOWN status to reach the DB.
const STATUS_GRACE: Duration = Duration::from_secs(3);

fn serve(
    life: &Lifecycle,
    dp: Dataplane,
    a: &NodeArgs,
    (chassis, endpoint): (&str, &Endpoint),
    db: Arc<dyn Db>,
) -> Result<Report> {
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
    let reporter = {
        let (db, chassis, at, stop) = (db.clone(), chassis.to_owned(), endpoint.clone(), stop.clone());
        std::thread::Builder::new().name("report".into()).spawn(move || report(&*db, &chassis, &at, &stop))?
    };
    let controller = {
        let vifs = Vifs { default: Vif::from_name(&a.vif_type).unwrap_or(Vif::Tap), vhost_dir: a.vhost_dir.clone() };
        let agent = BindingAgent::new(dp.clone(), vifs, status_tx);
        let mut links = Links {
            services: ServicesConfig { lease_secs: a.dhcp_lease_time, dns_domain: a.dns_domain.clone() },
            ..Links::default()
        };
        if let Some(u) = underlay(a)? {
            links.tunnel = Some(plug_underlay(&dp, &u)?);
        }
        for m in &a.bridge_mappings {
            let Some((physnet, devargs)) = m.split_once(':').filter(|(p, d)| !p.is_empty() && !d.is_empty()) else {
                bail!("--bridge-mapping {m:?}: PHYSNET:DEVARGS, as physnet1:net_tap_up0,iface=dfup0");
            };
            if links.uplinks.contains_key(physnet) {
                bail!("--bridge-mapping: physical network {physnet} is mapped twice");
            }
            let port = dp.lock().expect("poisoned").plug(devargs).with_context(|| format!("plugging {devargs}"))?;
            if port >= 64 {
                bail!("--bridge-mapping {m}: port index {port}: an uplink must be one of the first 64 ports");
            }
            tracing::info!(physnet, port, devargs, "uplink plugged");
            links.uplinks.insert(physnet.to_owned(), port);
        }
        let (db, chassis, stop) = (db.clone(), chassis.to_owned(), stop.clone());
        std::thread::Builder::new().name("controller".into()).spawn(move || {
            let mut agent = agent;
            let mut c = Controller::new(&*db, &chassis).with_links(links);
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
    while !(status.is_finished() && reporter.is_finished()) && stopped.elapsed() < STATUS_GRACE {
        std::thread::sleep(Duration::from_millis(20));
    }
    if reporter.is_finished() {
        let _ = reporter.join();
    }
    if status.is_finished() {
        let _ = status.join();
        // (Only with a DB that answered the status writes: a stopping node does not wait on one that is down.)
        deregister(&*db, chassis);
    } else {
        tracing::warn!("the DB did not take the ports' DOWN status within {STATUS_GRACE:?}; not waiting longer");
    }
    // The controller thread held the only other reference, and it is joined (its captures dropped, also
    // if it panicked).
    let dp = Arc::into_inner(dp).expect("the dataplane is shared with a joined thread only");
    life.finish(dp.into_inner().expect("poisoned"))
}
