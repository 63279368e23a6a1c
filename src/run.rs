//! The `run` role: the switch alone on static ports, no DB, no API (the benchmarks' mode), and
//! `check-config`, which prints the settings `run` would use. Patch mode cross-connects port pairs; pipeline
//! mode compiles the file's `[[port]]` and `[[router]]` into tables, and re-reads them on SIGHUP.
//!
//! Threads: none of its own; the main thread runs the [`Lifecycle`] and, on SIGHUP, the reload.

use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::{Context, Result};
use clap::Args;
use control::static_topology;
use dataplane::{Dataplane, Mode};

use crate::config::{RunConfig, SwitchArgs};
use crate::lifecycle::{Lifecycle, StatsJson};

#[derive(Args, Debug, Default)]
pub struct RunArgs {
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

/// `check-config`: the settings, file and flags, checked and printed as TOML.
pub fn check_config(file: Option<&PathBuf>, a: &RunArgs) -> Result<()> {
    let cfg = resolve(file, a)?;
    print!("{}", toml::to_string_pretty(&cfg)?);
    Ok(())
}

/// Runs the switch until a signal or `--duration`.
pub fn run(file: Option<&PathBuf>, args: &RunArgs) -> Result<()> {
    let cfg = resolve(file, args)?;
    let life = Lifecycle::start(&cfg.log, &args.switch, StatsJson::AtExit)?;
    let tables = |names: &[String]| {
        let t = static_topology::compile_over(None, &cfg.static_topology(), names).map_err(|e| e.to_string())?;
        tracing::info!(bound = t.ports.iter().flatten().count(), "tables compiled from the [[port]] bindings");
        Ok(t)
    };
    // SAFETY: the dataplane is the only DPDK object made; `finish` shuts it down (joining its workers), as
    // `start` does on its error path, before the closure returns.
    unsafe {
        life.with_eal(&cfg.dataplane.eal_args(), |main| {
            let dp = Dataplane::start(main, &cfg.dataplane, tables)?;
            let names: Vec<String> = dp.ports().map(|(_, p)| p.name.clone()).collect();
            eprintln!("dragonflow: forwarding on {} (Ctrl-C to stop)", names.join(", "));
            let mut reload = Reload { file: file.cloned(), args, names, running: &cfg, reloads: 0 };
            let dp = Mutex::new(dp);
            life.watch(&dp, |dp| reload.on_sighup(dp));
            life.finish(dp.into_inner().expect("poisoned"))
        })
    }
    .map(drop)
}

/// What a SIGHUP re-reads: the topology ([[port]], [[router]]) of the configuration file, with the same
/// flags over it. The [dataplane] section takes a restart; a change there is reported and ignored.
struct Reload<'a> {
    file: Option<PathBuf>,
    args: &'a RunArgs,
    /// The dataplane's ports, in index order.
    names: Vec<String>,
    running: &'a RunConfig,
    reloads: u64,
}

impl Reload<'_> {
    fn on_sighup(&mut self, dp: &mut Dataplane) {
        match self.apply(dp) {
            Ok(v) => {
                self.reloads += 1;
                // Logged at debug past the first few: a benchmark reloads thousands of times.
                if self.reloads <= 3 {
                    tracing::info!(version = v, "SIGHUP: topology reloaded and published");
                } else {
                    tracing::debug!(version = v, "SIGHUP: topology reloaded and published");
                }
            }
            Err(e) => tracing::error!("SIGHUP: reload failed, the tables in use stay: {e:#}"),
        }
    }

    fn apply(&self, dp: &mut Dataplane) -> Result<u64> {
        let cfg = resolve(self.file.as_ref(), self.args)?;
        if cfg.dataplane != self.running.dataplane {
            tracing::warn!("the [dataplane] section changed: it takes effect at the next start");
        }
        let t = static_topology::compile_over(dp.tables(), &cfg.static_topology(), &self.names)?;
        dp.publish(t).context("patch mode has no tables to reload")
    }
}
