//! `dragonflow`: the switch and the local controller in one process, and the Neutron API beside them:
//! the roles `all-in-one`, `api` and `node`, and `run` (the switch alone on static ports).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use config::{RunConfig, SwitchArgs};
use control::static_topology;
use dataplane::{Dataplane, Mode, Report};

mod config;
mod node;
mod stats_log;

/// DPDK userspace virtual switch with the Dragonflow SDN control plane built in.
///
/// Every setting can come from a TOML file (--config) and be overridden by the flag of the same name.
/// DPDK EAL arguments go after `--`, exactly as testpmd takes them.
#[derive(Parser, Debug)]
#[command(version, about, long_about = None, after_help = EXAMPLES)]
struct Cli {
    /// TOML configuration file (see dragonflow.example.toml).
    #[arg(short, long, global = true, env = "DRAGONFLOW_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

const EXAMPLES: &str = "Examples:
  # two TAP ports cross-connected, 4 KiB pages, control on lcore 0 and one worker on lcore 1
  dragonflow run --port net_tap0,iface=dtap0 --port net_tap1,iface=dtap1 \\
      -- -l 0-1 --no-huge -m 512 --no-pci --file-prefix df0
  # replay a pcap into a sink for 10 seconds and write the counters as JSON
  dragonflow run --duration 10 --stats-json out.json -- -l 0-1 --no-huge -m 1024 --no-pci \\
      --file-prefix df1 --vdev=net_pcap0,rx_pcap=in.pcap,infinite_rx=1 --vdev=net_null0,no-rx=1";

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the switch alone on static ports (no DB, no API), until SIGINT/SIGTERM.
    ///
    /// Patch mode (every packet leaves by its peer port, untouched, as testpmd's io mode) or pipeline mode
    /// over the config file's [[port]] and [[router]] bindings: the benchmarks' mode. `all-in-one` and
    /// `node` are the roles that take their ports from the DB.
    Run(RunArgs),
    /// Parse and check the configuration (file and flags) and print it as TOML.
    CheckConfig(RunArgs),
    /// Serve the Neutron API (the API-only role) over a DB: the embedded one in --data-dir, or etcd.
    Api(ApiArgs),
    /// API + embedded DB + node in one process (the Neutron API on 127.0.0.1:9696).
    ///
    /// Every port bound to this chassis is plumbed as a TAP (or vhost-user) port of the dataplane.
    AllInOne(node::NodeArgs),
    /// The node role: the local controller and dataplane, following a DB (etcd: --etcd URL).
    Node(node::NodeArgs),
    /// The embedded DB's data directory, while no process has it open.
    #[command(subcommand)]
    Db(DbCommand),
}

#[derive(Subcommand, Debug)]
enum DbCommand {
    /// Mend a log the embedded DB refuses to start on: keep every record before the first corrupt one,
    /// move the rest to log.corrupt-<offset> beside it (nothing is deleted), and print what was done.
    Repair {
        /// The embedded DB's data directory.
        #[arg(long, default_value = node::DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
    },
}

fn db(c: &DbCommand) -> Result<()> {
    match c {
        DbCommand::Repair { data_dir } => {
            let report = control::db::embedded::EmbeddedDb::repair(data_dir)
                .with_context(|| format!("repairing the embedded DB in {}", data_dir.display()))?;
            println!("{report}");
            Ok(())
        }
    }
}

#[derive(Args, Debug)]
struct ApiArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9696")]
    listen: String,
    #[command(flatten)]
    db: node::DbArgs,
    /// A static token every request must carry in X-Auth-Token (for an API not on loopback).
    #[arg(long, env = "DRAGONFLOW_API_TOKEN")]
    token: Option<String>,
}

fn api(a: &ApiArgs) -> Result<()> {
    tracing_subscriber::fmt().with_writer(std::io::stderr).init();
    let db = a.db.open()?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).context("installing the signal handler")?;
    }
    control::api::serve_until(&a.listen, db, a.token.clone(), stop).with_context(|| format!("serving on {}", a.listen))
}

#[derive(Args, Debug, Default)]
struct RunArgs {
    /// A port as DPDK devargs (net_tap0,iface=dtap0 | net_pcap0,rx_pcap=F,tx_pcap=G | net_null0 |
    /// net_ring0 | net_memif0,… | net_vhost0,iface=SOCK,… | a PCI address). Repeatable. Without any,
    /// every port the EAL probed (--vdev, PCI) is used.
    #[arg(long = "port", value_name = "DEVARGS")]
    ports: Vec<String>,
    /// Patch pair "A,B" by port name or index (repeatable). Default: 0 and 1, 2 and 3, ...
    #[arg(long, value_name = "A,B", value_parser = parse_pair)]
    patch: Vec<(String, String)>,
    /// Forwarding: "patch" (port pairs, untouched) or "pipeline" (Dragonflow's tables over the ports
    /// bound in the config file's [[port]] sections). Default patch.
    #[arg(long, value_parser = ["patch", "pipeline"])]
    mode: Option<String>,
    #[command(flatten)]
    switch: SwitchArgs,
}

fn parse_pair(s: &str) -> Result<(String, String), String> {
    match s.split_once(',') {
        Some((a, b)) if !a.is_empty() && !b.is_empty() && !b.contains(',') => Ok((a.to_owned(), b.to_owned())),
        _ => Err(format!("expected A,B (two port names or indexes), got {s:?}")),
    }
}

/// The configuration file with the flags applied over it.
fn resolve(file: Option<&PathBuf>, a: &RunArgs) -> Result<RunConfig> {
    let mut cfg = match file {
        Some(p) => RunConfig::load(p)?,
        None => RunConfig::default(),
    };
    let d = &mut cfg.dataplane;
    if !a.ports.is_empty() {
        d.ports = a.ports.clone();
    }
    if !a.patch.is_empty() {
        d.patch = a.patch.clone();
    }
    match a.mode.as_deref() {
        Some("pipeline") => d.mode = Mode::Pipeline,
        Some("patch") => d.mode = Mode::Patch,
        _ => {}
    }
    a.switch.apply(&mut cfg.dataplane, &mut cfg.log);
    cfg.validate()?;
    Ok(cfg)
}

fn main() {
    let cli = Cli::parse();
    let role = match &cli.command {
        Command::Api(_) => Some("api"),
        Command::AllInOne(_) => Some("all-in-one"),
        Command::Node(_) => Some("node"),
        Command::Db(_) => Some("db"),
        Command::Run(_) | Command::CheckConfig(_) => None,
    };
    if let (Some(role), Some(file)) = (role, &cli.config) {
        // Refused rather than ignored: a file the user believes in and the switch never reads is worse.
        eprintln!(
            "dragonflow: error: --config {} (or DRAGONFLOW_CONFIG) is read by `run` and `check-config`; the {role} \
             role takes its settings as flags (dragonflow {role} --help)",
            file.display()
        );
        std::process::exit(2);
    }
    let result = match &cli.command {
        Command::Run(a) => run(cli.config.as_ref(), a),
        Command::Api(a) => api(a),
        Command::AllInOne(a) => node::run(a, true),
        Command::Node(a) => node::run(a, false),
        Command::Db(c) => db(c),
        Command::CheckConfig(a) => resolve(cli.config.as_ref(), a).and_then(|c| {
            print!("{}", toml::to_string_pretty(&c)?);
            Ok(())
        }),
    };
    if let Err(e) = result {
        eprintln!("dragonflow: error: {e:#}");
        std::process::exit(1);
    }
}

fn run(file: Option<&PathBuf>, args: &RunArgs) -> Result<()> {
    let cfg = resolve(file, args)?;
    let filter = tracing_subscriber::EnvFilter::try_new(&cfg.log.level)
        .with_context(|| format!("log level {:?}", cfg.log.level))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();

    // Signal handlers first: the EAL installs none. The signals are blocked in this thread before the EAL
    // starts its threads (they inherit the mask) and taken by the signal thread only.
    set_signal_mask(libc::SIG_BLOCK);
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).context("installing the signal handler")?;
    }
    let events = signal_events()?;

    let eal_args = cfg.dataplane.eal_args();
    tracing::info!(version = %dpdk::version(), eal = ?eal_args.as_slice(), "starting the EAL");
    let eal = dpdk::Eal::init("dragonflow", eal_args.as_slice())?;
    let tables = |names: &[String]| {
        let t = static_topology::compile(&cfg.ports, &cfg.routers, names).map_err(|e| e.to_string())?;
        tracing::info!(bound = t.ports.iter().flatten().count(), "tables compiled from the [[port]] bindings");
        Ok(t)
    };
    let reload = Reload { file: file.cloned(), args, names: Vec::new() };
    let outcome = dpdk::MainLcore::here(&eal)
        .map_err(anyhow::Error::from)
        .and_then(|main| Ok(Dataplane::start(&main, &cfg.dataplane, tables)?))
        .map(|dp| serve(dp, &cfg, args.switch.duration, &stop, &events, reload));
    // SAFETY: every port, queue and mempool was dropped and every worker joined by `serve`'s shutdown, or by
    // `start` on its error path (or none was made); nothing of DPDK follows.
    unsafe { eal.cleanup() };
    let report = outcome?;
    if let Some(path) = &args.switch.stats_json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?).with_context(|| format!("{}", path.display()))?;
    }
    if report.mempool.in_use != 0 {
        bail!("{} mbufs did not come back to the pool after the ports were closed", report.mempool.in_use);
    }
    Ok(())
}

/// Signals the main loop waits on: SIGINT/SIGTERM (stop, also set in the `stop` flag) and SIGHUP (reload).
fn signal_events() -> Result<std::sync::mpsc::Receiver<i32>> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]).context("signal handlers")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new().name("signals".into()).spawn(move || {
        set_signal_mask(libc::SIG_UNBLOCK);
        for s in signals.forever() {
            if tx.send(s).is_err() {
                break;
            }
        }
    })?;
    Ok(rx)
}

/// Blocks or unblocks SIGINT, SIGTERM and SIGHUP in the calling thread. Only the signal thread unblocks
/// them, so they never land on a DPDK thread, whose calls SA_RESTART does not always restart (epoll_wait
/// in the EAL's interrupt thread, the workers' busy loop is unaffected either way).
fn set_signal_mask(how: libc::c_int) {
    // SAFETY: a sigset_t is plain data, initialised by sigemptyset before use; pthread_sigmask changes only
    // the calling thread's mask and accepts a null old-set pointer.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaddset(&mut set, s);
        }
        libc::pthread_sigmask(how, &set, std::ptr::null_mut());
    }
}

/// What a SIGHUP re-reads: the topology ([[port]], [[router]]) of the configuration file, with the same
/// flags over it. The [dataplane] section takes a restart; a change there is reported and ignored.
struct Reload<'a> {
    file: Option<PathBuf>,
    args: &'a RunArgs,
    names: Vec<String>,
}

impl Reload<'_> {
    fn apply(&self, dp: &mut Dataplane, running: &RunConfig) -> Result<u64> {
        let cfg = resolve(self.file.as_ref(), self.args)?;
        if cfg.dataplane != running.dataplane {
            tracing::warn!("the [dataplane] section changed: it takes effect at the next start");
        }
        let t = static_topology::compile(&cfg.ports, &cfg.routers, &self.names)?;
        dp.publish(t).context("patch mode has no tables to reload")
    }
}

/// Runs until a signal or the duration, logging counters every `stats_interval`; SIGHUP re-reads the
/// topology and publishes it. Returns the final report.
fn serve(
    mut dp: Dataplane,
    cfg: &RunConfig,
    duration: Option<f64>,
    stop: &AtomicBool,
    events: &std::sync::mpsc::Receiver<i32>,
    mut reload: Reload<'_>,
) -> Report {
    let names: Vec<&str> = dp.ports().map(|(_, p)| p.name.as_str()).collect();
    eprintln!("dragonflow: forwarding on {} (Ctrl-C to stop)", names.join(", "));
    reload.names = dp.ports().map(|(_, p)| p.name.clone()).collect();
    let started = Instant::now();
    let deadline = duration.map(|s| started + Duration::from_secs_f64(s.max(0.0)));
    let interval = Duration::from_secs(cfg.log.stats_interval);
    let mut next_stats = started + interval;
    let mut next_latency = started + Duration::from_secs(1);
    let mut reloads = 0u64;
    let mut stats = stats_log::StatsLog::default();
    while !stop.load(Ordering::Relaxed) && deadline.is_none_or(|d| Instant::now() < d) {
        if let Ok(signal_hook::consts::SIGHUP) = events.recv_timeout(Duration::from_millis(50)) {
            match reload.apply(&mut dp, cfg) {
                Ok(v) => {
                    reloads += 1;
                    // Logged at debug past the first few: a benchmark reloads thousands of times.
                    if reloads <= 3 {
                        tracing::info!(version = v, "SIGHUP: topology reloaded and published");
                    } else {
                        tracing::debug!(version = v, "SIGHUP: topology reloaded and published");
                    }
                }
                Err(e) => tracing::error!("SIGHUP: reload failed, the tables in use stay: {e:#}"),
            }
            dp.reclaim();
        }
        let now = Instant::now();
        if now >= next_latency {
            dp.collect_latency();
            dp.reclaim();
            next_latency = now + Duration::from_secs(1);
        }
        if !interval.is_zero() && now >= next_stats {
            stats.tick(&dp.report());
            next_stats = now + interval;
        }
    }
    dp.collect_latency();
    let report = dp.shutdown();
    stats_log::full(&report);
    report
}
