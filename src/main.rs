//! `dragonflow`: the switch and the local controller in one process, and the Neutron API beside them:
//! the roles `all-in-one`, `api` and `node`, and `run` (the switch alone on static ports).

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

mod api_args;
mod backoff;
mod binding;
mod chassis;
mod config;
mod db;
mod lifecycle;
mod node;
mod port_status;
mod run;
mod stats_log;
mod vif;

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
    Run(run::RunArgs),
    /// Parse and check the configuration (file and flags) and print it as TOML.
    CheckConfig(run::RunArgs),
    /// Serve the Neutron API (the API-only role) over a DB: the embedded one in --data-dir, or etcd.
    Api(ApiArgs),
    /// API + embedded DB + node in one process (the Neutron API on 127.0.0.1:9696).
    ///
    /// Every port bound to this chassis is plugged in as a TAP (or vhost-user) port of the dataplane.
    AllInOne(node::NodeArgs),
    /// The node role: the local controller and dataplane, following a DB (etcd: --etcd URL).
    Node(node::NodeArgs),
    /// The embedded DB's data directory, while no process has it open.
    #[command(subcommand)]
    Db(db::DbCommand),
    /// Static chassis: tunnel endpoints that are not nodes of ours (a hardware VTEP, a host with the
    /// kernel's VXLAN, Geneve or GRE devices), for ports bound to them.
    #[command(subcommand)]
    Chassis(chassis::ChassisCommand),
}

#[derive(Args, Debug)]
struct ApiArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9696")]
    listen: String,
    #[command(flatten)]
    db: db::DbArgs,
    #[command(flatten)]
    auth: api_args::AuthArgs,
    #[command(flatten)]
    settings: api_args::ApiSettingsArgs,
}

fn api(a: &ApiArgs) -> Result<()> {
    tracing_subscriber::fmt().with_writer(std::io::stderr).init();
    let settings = a.settings.settings()?;
    let db = a.db.open()?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).context("installing the signal handler")?;
    }
    control::api::serve_until(&a.listen, db, settings, a.auth.auth(), stop)
        .with_context(|| format!("serving on {}", a.listen))
}

fn main() {
    let cli = Cli::parse();
    let role = match &cli.command {
        Command::Api(_) => Some("api"),
        Command::AllInOne(_) => Some("all-in-one"),
        Command::Node(_) => Some("node"),
        Command::Db(_) => Some("db"),
        Command::Chassis(_) => Some("chassis"),
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
        Command::Run(a) => run::run(cli.config.as_ref(), a),
        Command::Api(a) => api(a),
        Command::AllInOne(a) => node::run(a, true),
        Command::Node(a) => node::run(a, false),
        Command::Db(c) => db::run(c),
        Command::Chassis(c) => chassis::command(c),
        Command::CheckConfig(a) => run::check_config(cli.config.as_ref(), a),
    };
    if let Err(e) = result {
        eprintln!("dragonflow: error: {e:#}");
        std::process::exit(1);
    }
}
