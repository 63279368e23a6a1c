//! Settings: the `run` role's TOML file ([`RunConfig`], `dragonflow.example.toml`) and the flags every
//! role that runs a dataplane takes over it ([`SwitchArgs`]).
//!
//! One struct per setting, wherever it comes from: `[dataplane]` is [`dataplane::DataplaneOptions`] as it
//! is, `[[port]]`/`[[router]]` are control's static topology types, `[log]` is [`LogConfig`]. Defaults are
//! those structs' `Default`; the file (`run` and `check-config` only) replaces them key by key; a flag given
//! replaces the file's value. The node roles start from their own defaults (pipeline mode, hot-plugged
//! ports) and apply the same flags.

use std::path::{Path, PathBuf};

use clap::Args;
use control::config::{StaticPort, StaticRouter, StaticServices, StaticTunnels};
use dataplane::DataplaneOptions;
use serde::{Deserialize, Serialize};

/// The `run` role's whole file; every key is optional, unknown keys are errors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    pub dataplane: DataplaneOptions,
    pub log: LogConfig,
    /// Static port bindings for `mode = "pipeline"` (`control::static_topology` compiles them).
    #[serde(rename = "port")]
    pub ports: Vec<StaticPort>,
    /// Static routers for `mode = "pipeline"`.
    #[serde(rename = "router")]
    pub routers: Vec<StaticRouter>,
    /// Static tunnels for `mode = "pipeline"` (`control::config::StaticTunnels`).
    pub tunnels: StaticTunnels,
    /// Static DHCP and router advertisements for `mode = "pipeline"` (`control::config::StaticServices`).
    pub services: StaticServices,
    /// Security groups of the static ports (`control::config::StaticSecurityGroup`).
    #[serde(rename = "security_group")]
    pub security_groups: Vec<control::config::StaticSecurityGroup>,
}

/// `[log]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `error`, `warn`, `info`, `debug`, `trace`, or a filter as `RUST_LOG` takes it.
    pub level: String,
    /// Seconds between two counter lines in the log; 0 for none.
    pub stats_interval: u64,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { level: "info".to_owned(), stats_interval: 0 }
    }
}

/// A configuration that cannot be used, and why.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: {source}")]
    Parse { path: String, source: toml::de::Error },
    #[error(transparent)]
    Dataplane(#[from] dataplane::OptionsError),
    #[error(transparent)]
    Topology(#[from] control::config::ConfigError),
}

impl RunConfig {
    /// The file's static topology (`[[port]]`, `[[router]]`, `[tunnels]`, `[services]`,
    /// `[[security_group]]`), for `control::static_topology`.
    pub fn static_topology(&self) -> control::config::StaticTopology {
        control::config::StaticTopology {
            ports: self.ports.clone(),
            routers: self.routers.clone(),
            tunnels: self.tunnels.clone(),
            services: self.services.clone(),
            security_groups: self.security_groups.clone(),
        }
    }

    pub fn load(path: &Path) -> Result<RunConfig, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
        Self::parse(&text, &path.display().to_string())
    }

    fn parse(text: &str, path: &str) -> Result<RunConfig, ConfigError> {
        let cfg: RunConfig =
            toml::from_str(text).map_err(|source| ConfigError::Parse { path: path.to_owned(), source })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks the values that parse but make no sense.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.dataplane.validate()?;
        control::config::validate(&self.ports, &self.routers)?;
        self.tunnels.parse()?;
        self.services.validate()?;
        Ok(())
    }
}

/// The flags of every role that runs a dataplane (`run`, `node`, `all-in-one`): over `[dataplane]` and
/// `[log]` ([`SwitchArgs::apply`]), and how long the process runs and where its counters go.
#[derive(Args, Debug, Default, Clone)]
pub struct SwitchArgs {
    /// Mbufs in the packet pool (default: sized from the ports and queues).
    #[arg(long)]
    pub mbufs: Option<u32>,
    /// Per-lcore mbuf cache (default 256).
    #[arg(long)]
    pub mbuf_cache: Option<u32>,
    /// Rx descriptors per queue (default 1024).
    #[arg(long)]
    pub rx_desc: Option<u16>,
    /// Tx descriptors per queue (default 1024).
    #[arg(long)]
    pub tx_desc: Option<u16>,
    /// Retries of a burst's unsent tail before it is dropped as tx.full (default 0, as testpmd).
    #[arg(long)]
    pub tx_retries: Option<u32>,
    /// Microseconds a worker sleeps after 1024 empty polls in a row (default 0: it never sleeps), as
    /// OVS-DPDK's pmd-maxsleep: for nodes sharing their cores; costs up to that much latency after a
    /// quiet spell.
    #[arg(long, value_name = "MICROSECONDS")]
    pub idle_sleep_us: Option<u32>,
    /// Do not measure the switch latency (saves a TSC read per burst).
    #[arg(long)]
    pub no_latency: bool,
    /// DHCP requests and router solicitations each port may send to the slow path per second, per worker
    /// (default 100; 0: no limit). Over it they are dropped and counted (punt.rate_limited).
    #[arg(long, value_name = "PER_SECOND")]
    pub punt_rate: Option<u32>,
    /// How many of those a port may send at once after a quiet while (default 200).
    #[arg(long)]
    pub punt_burst: Option<u32>,
    /// Connections each worker may track for security groups (default 1000000; about 84 bytes each, taken
    /// as they come). When full, new connections are dropped and counted (conntrack.full).
    #[arg(long, value_name = "CONNECTIONS")]
    pub conntrack_max: Option<u32>,
    /// Connections each worker may translate for routers' SNAT (default 65536; about 120 bytes each).
    /// When full, new connections are dropped and counted (nat.full).
    #[arg(long, value_name = "CONNECTIONS")]
    pub nat_max: Option<u32>,
    /// Log filter: error, warn, info, debug, trace, or a RUST_LOG-style filter (default info).
    #[arg(long)]
    pub log_level: Option<String>,
    /// Seconds between two counter lines in the log (default 0: none).
    #[arg(long)]
    pub stats_interval: Option<u64>,
    /// Stop by itself after this many seconds.
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<f64>,
    /// Write the final counters, latency and mempool check as JSON to this file on exit (the node roles:
    /// every second too).
    #[arg(long, value_name = "FILE")]
    pub stats_json: Option<PathBuf>,
    /// DPDK EAL arguments, after `--` (default: -l 0-1 --main-lcore 0 --no-huge -m 512 --no-pci
    /// --file-prefix dragonflow; the node roles: -m 1024 and --file-prefix dragonflow-CHASSIS).
    #[arg(last = true, value_name = "EAL")]
    pub eal: Vec<String>,
}

impl SwitchArgs {
    /// The flags given, over `d` and `log`; a flag not given leaves its setting as it is.
    pub fn apply(&self, d: &mut DataplaneOptions, log: &mut LogConfig) {
        if !self.eal.is_empty() {
            d.eal = self.eal.clone();
        }
        d.mbufs = self.mbufs.unwrap_or(d.mbufs);
        d.mbuf_cache = self.mbuf_cache.unwrap_or(d.mbuf_cache);
        d.rx_desc = self.rx_desc.unwrap_or(d.rx_desc);
        d.tx_desc = self.tx_desc.unwrap_or(d.tx_desc);
        d.tx_retries = self.tx_retries.unwrap_or(d.tx_retries);
        d.idle_sleep_us = self.idle_sleep_us.unwrap_or(d.idle_sleep_us);
        d.latency &= !self.no_latency;
        d.punt_rate = self.punt_rate.unwrap_or(d.punt_rate);
        d.punt_burst = self.punt_burst.unwrap_or(d.punt_burst);
        d.conntrack_max = self.conntrack_max.unwrap_or(d.conntrack_max);
        d.nat_max = self.nat_max.unwrap_or(d.nat_max);
        if let Some(l) = &self.log_level {
            log.level = l.clone();
        }
        log.stats_interval = self.stats_interval.unwrap_or(log.stats_interval);
    }
}

#[cfg(test)]
mod tests {
    use dataplane::Mode;

    use super::*;

    fn parse(text: &str) -> Result<RunConfig, ConfigError> {
        RunConfig::parse(text, "<config>")
    }

    #[test]
    fn empty_file_gives_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c, RunConfig::default());
        assert_eq!(c.dataplane.eal_args().as_slice(), dataplane::DEFAULT_EAL);
    }

    #[test]
    fn full_file_parses() {
        let c = parse(
            r#"
            [dataplane]
            eal = ["-l", "0-2", "--no-huge"]
            ports = ["net_null0", "net_null1"]
            mode = "patch"
            patch = [["net_null0", "net_null1"]]
            mbufs = 8192
            tx_retries = 3
            latency = false
            [log]
            level = "debug"
            stats_interval = 5
            "#,
        )
        .unwrap();
        assert_eq!(c.dataplane.patch, vec![("net_null0".to_owned(), "net_null1".to_owned())]);
        assert_eq!((c.dataplane.mbufs, c.dataplane.tx_retries, c.dataplane.latency), (8192, 3, false));
        assert_eq!((c.log.level.as_str(), c.log.stats_interval), ("debug", 5));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        let e = parse("[dataplane]\nprots = []").unwrap_err().to_string();
        assert!(e.contains("unknown field `prots`"), "{e}");
        let e = parse("[dataplane]\nrx_desc = 1000").unwrap_err().to_string();
        assert!(e.contains("rx_desc"), "{e}");
        let e = parse("[dataplane]\nmode = \"l9\"").unwrap_err().to_string();
        assert!(e.contains("unknown variant"), "{e}");
        let e = parse("[dataplane]\nhotplug_ports = 4").unwrap_err().to_string();
        assert!(e.contains("unknown field `hotplug_ports`"), "not a file setting: {e}");
        assert!(parse("[dataplane]\nmbufs = 10").is_err());
        assert!(parse("[dataplane]\nmbuf_cache = 4096").is_err());
        let e = parse("[[port]]\nname = \"x\"\nnetwork = 1\nmac = \"ff:ff:ff:ff:ff:ff\"").unwrap_err().to_string();
        assert!(e.contains("mac"), "{e}");
    }

    #[test]
    fn static_ports_come_with_the_pipeline_mode() {
        let c = parse(
            r#"
            [dataplane]
            mode = "pipeline"
            [[port]]
            name = "net_tap0"
            mac = "fa:16:3e:00:00:01"
            network = 1
            ips = ["10.0.0.1", "10.0.0.0/24", "2001:db8::1"]
            "#,
        )
        .unwrap();
        assert_eq!(c.dataplane.mode, Mode::Pipeline);
        assert_eq!(c.ports[0].ips.len(), 3);
    }

    #[test]
    fn flags_replace_what_they_give_and_nothing_else() {
        let mut c = parse("[dataplane]\nmbufs = 8192\nrx_desc = 512\n[log]\nlevel = \"debug\"").unwrap();
        let flags = SwitchArgs { rx_desc: Some(256), no_latency: true, stats_interval: Some(3), ..Default::default() };
        flags.apply(&mut c.dataplane, &mut c.log);
        assert_eq!((c.dataplane.mbufs, c.dataplane.rx_desc, c.dataplane.latency), (8192, 256, false));
        assert_eq!((c.log.level.as_str(), c.log.stats_interval), ("debug", 3));
        assert!(c.dataplane.eal.is_empty(), "no EAL arguments given: the file's (none) stay");
    }

    #[test]
    fn the_shipped_files_parse() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let example = RunConfig::load(&root.join("dragonflow.example.toml")).unwrap();
        assert_eq!(example.dataplane.ports.len(), 2);
        for f in ["benches/l2pipe.toml", "benches/l3.toml", "tests/golden/topology.toml"] {
            let c = RunConfig::load(&root.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
            assert_eq!(c.dataplane.mode, Mode::Pipeline, "{f}");
        }
    }
}
