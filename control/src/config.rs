//! The node's TOML configuration. Every field has a default and a command-line flag of the same name
//! (the binary applies flags over the file); unknown keys are errors, so a typo never passes silently.

use std::path::Path;

use pipelines::routing::RouterIface;
use pipelines::tables::IpNet;
use pipelines::wire::Mac;
use serde::{Deserialize, Serialize};

/// How the dataplane forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Cross-connect: port A to port B and back, untouched (testpmd's `io`).
    #[default]
    Patch,
    /// Dragonflow's table pipeline (classification, port security, ARP/ND responders, L2), over the
    /// ports bound in `[[port]]` (until the control plane binds them from the DB).
    Pipeline,
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    pub dataplane: DataplaneConfig,
    pub log: LogConfig,
    /// Static port bindings for `mode = "pipeline"`.
    #[serde(rename = "port")]
    pub ports: Vec<StaticPort>,
    /// Static routers for `mode = "pipeline"`.
    #[serde(rename = "router")]
    pub routers: Vec<StaticRouter>,
}

/// `[[router]]`: a distributed router joining networks, by configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticRouter {
    pub key: u32,
    pub interfaces: Vec<StaticRouterIface>,
    #[serde(default)]
    pub routes: Vec<StaticRoute>,
}

/// One interface of a `[[router]]`: its network, MAC and gateway address with the subnet's prefix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticRouterIface {
    pub network: u32,
    pub mac: String,
    /// `10.0.0.254/24`, `2001:db8::fe/64`.
    pub ip: String,
}

/// An extra route of a `[[router]]` (Neutron's `routes`: destination and nexthop).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticRoute {
    pub destination: String,
    pub nexthop: String,
}

/// `[[port]]`: a dataplane port bound to a logical port, by configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticPort {
    /// The dataplane port: its DPDK name (`net_tap0`) or index.
    pub name: String,
    /// The VM's MAC (`fa:16:3e:00:00:01`).
    pub mac: String,
    /// Network key: ports of one network switch to each other, never to another network's.
    pub network: u32,
    /// Addresses the port owns or may send from: hosts (`10.0.0.1`, `2001:db8::1`) or prefixes.
    #[serde(default)]
    pub ips: Vec<String>,
    #[serde(default = "yes")]
    pub port_security: bool,
    #[serde(default = "yes")]
    pub admin_state_up: bool,
}

fn yes() -> bool {
    true
}

/// `[dataplane]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataplaneConfig {
    /// DPDK EAL arguments, passed through as given (`-l 0-1`, `--vdev=…`, `--no-huge`, …). Empty means
    /// [`DEFAULT_EAL`].
    pub eal: Vec<String>,
    /// Ports as DPDK devargs (`net_tap0,iface=dtap0`, `net_pcap0,rx_pcap=in.pcap`, `0000:01:00.0`). Empty
    /// means every port the EAL probed (from `--vdev` and the PCI bus).
    pub ports: Vec<String>,
    pub mode: Mode,
    /// Patch pairs by port name or index; empty means 0 ↔ 1, 2 ↔ 3, …
    pub patch: Vec<(String, String)>,
    /// Mbufs in the packet pool (0 = sized from the ports and queues).
    pub mbufs: u32,
    /// Per-lcore mbuf cache.
    pub mbuf_cache: u32,
    pub rx_desc: u16,
    pub tx_desc: u16,
    /// Times a worker retries the unsent tail of a burst before it drops it (counted as `tx_full`).
    pub tx_retries: u32,
    /// Record the rx-to-tx time of every burst in a latency histogram.
    pub latency: bool,
}

/// The EAL arguments used when none are given: two lcores (control on 0, one worker on 1), 4 KiB pages,
/// no PCI scan, and a file prefix of our own so that other DPDK processes do not collide with us.
pub const DEFAULT_EAL: &[&str] =
    &["-l", "0-1", "--main-lcore", "0", "--no-huge", "-m", "512", "--no-pci", "--file-prefix", "dragonflow"];

impl Default for DataplaneConfig {
    fn default() -> Self {
        DataplaneConfig {
            eal: Vec::new(),
            ports: Vec::new(),
            mode: Mode::Patch,
            patch: Vec::new(),
            mbufs: 0,
            mbuf_cache: 256,
            rx_desc: 1024,
            tx_desc: 1024,
            tx_retries: 0,
            latency: true,
        }
    }
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
    #[error("dataplane.{field} = {value}: {why}")]
    Invalid { field: &'static str, value: String, why: &'static str },
    #[error("port {port:?}: {field} = {value:?}: {why}")]
    InvalidPort { port: String, field: &'static str, value: String, why: &'static str },
}

impl NodeConfig {
    pub fn load(path: &Path) -> Result<NodeConfig, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
        Self::parse(&text, &path.display().to_string())
    }

    pub fn from_toml_str(text: &str) -> Result<NodeConfig, ConfigError> {
        Self::parse(text, "<config>")
    }

    fn parse(text: &str, path: &str) -> Result<NodeConfig, ConfigError> {
        let cfg: NodeConfig =
            toml::from_str(text).map_err(|source| ConfigError::Parse { path: path.to_owned(), source })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks the values that parse but make no sense.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let d = &self.dataplane;
        let pow2_desc = |field, v: u16| {
            if v == 0 || !v.is_power_of_two() {
                Err(ConfigError::Invalid { field, value: v.to_string(), why: "must be a power of two above 0" })
            } else {
                Ok(())
            }
        };
        pow2_desc("rx_desc", d.rx_desc)?;
        pow2_desc("tx_desc", d.tx_desc)?;
        if d.mbuf_cache > 512 {
            return Err(ConfigError::Invalid {
                field: "mbuf_cache",
                value: d.mbuf_cache.to_string(),
                why: "DPDK caps the per-lcore cache at 512",
            });
        }
        for p in &self.ports {
            p.parse()?;
        }
        for r in &self.routers {
            r.parse()?;
        }
        if d.mbufs != 0 && d.mbufs < 1024 {
            return Err(ConfigError::Invalid {
                field: "mbufs",
                value: d.mbufs.to_string(),
                why: "must be 0 (automatic) or at least 1024",
            });
        }
        Ok(())
    }

    /// The EAL arguments to use: the configured ones, or [`DEFAULT_EAL`].
    pub fn eal_args(&self) -> Vec<String> {
        if self.dataplane.eal.is_empty() {
            DEFAULT_EAL.iter().map(|s| (*s).to_owned()).collect()
        } else {
            self.dataplane.eal.clone()
        }
    }
}

impl StaticPort {
    /// The port's MAC and addresses, checked.
    pub fn parse(&self) -> Result<(Mac, Vec<IpNet>), ConfigError> {
        let bad = |field, value: &str, why| ConfigError::InvalidPort {
            port: self.name.clone(),
            field,
            value: value.to_owned(),
            why,
        };
        let mac =
            Mac::parse(&self.mac).filter(Mac::is_unicast).ok_or_else(|| bad("mac", &self.mac, "not a unicast MAC"))?;
        let ips = self
            .ips
            .iter()
            .map(|s| parse_net(s).ok_or_else(|| bad("ips", s, "not an IP address or prefix")))
            .collect::<Result<_, _>>()?;
        Ok((mac, ips))
    }
}

impl StaticRouter {
    /// The router's interfaces and extra routes, checked.
    #[allow(clippy::type_complexity)]
    pub fn parse(&self) -> Result<(Vec<RouterIface>, Vec<(IpNet, IpNet)>), ConfigError> {
        let bad = |field, value: &str, why| ConfigError::InvalidPort {
            port: format!("router {}", self.key),
            field,
            value: value.to_owned(),
            why,
        };
        let ifaces = self
            .interfaces
            .iter()
            .map(|i| {
                let mac = Mac::parse(&i.mac)
                    .filter(Mac::is_unicast)
                    .ok_or_else(|| bad("mac", &i.mac, "not a unicast MAC"))?;
                let ip = parse_net(&i.ip).ok_or_else(|| bad("ip", &i.ip, "not an address with a prefix length"))?;
                Ok(RouterIface { network: i.network, mac, ip })
            })
            .collect::<Result<_, ConfigError>>()?;
        let routes = self
            .routes
            .iter()
            .map(|r| {
                let d = parse_net(&r.destination).ok_or_else(|| bad("destination", &r.destination, "not a prefix"))?;
                let n = parse_net(&r.nexthop).ok_or_else(|| bad("nexthop", &r.nexthop, "not an address"))?;
                Ok((d, n))
            })
            .collect::<Result<_, ConfigError>>()?;
        Ok((ifaces, routes))
    }
}

/// `10.0.0.1`, `10.0.0.0/24`, `2001:db8::1`, `2001:db8::/64`.
pub fn parse_net(s: &str) -> Option<IpNet> {
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l.parse::<u8>().ok()?)),
        None => (s, None),
    };
    match addr.parse::<std::net::IpAddr>().ok()? {
        std::net::IpAddr::V4(a) => {
            let len = len.unwrap_or(32);
            (len <= 32).then(|| IpNet::V4(a.into(), len))
        }
        std::net::IpAddr::V6(a) => {
            let len = len.unwrap_or(128);
            (len <= 128).then(|| IpNet::V6(a.into(), len))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        let c = NodeConfig::from_toml_str("").unwrap();
        assert_eq!(c, NodeConfig::default());
        assert_eq!(c.eal_args(), DEFAULT_EAL.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    }

    #[test]
    fn full_file_parses() {
        let c = NodeConfig::from_toml_str(
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
        let e = NodeConfig::from_toml_str("[dataplane]\nprots = []").unwrap_err().to_string();
        assert!(e.contains("unknown field `prots`"), "{e}");
        let e = NodeConfig::from_toml_str("[dataplane]\nrx_desc = 1000").unwrap_err().to_string();
        assert!(e.contains("rx_desc"), "{e}");
        let e = NodeConfig::from_toml_str("[dataplane]\nmode = \"l9\"").unwrap_err().to_string();
        assert!(e.contains("unknown variant"), "{e}");
        assert!(NodeConfig::from_toml_str("[dataplane]\nmbufs = 10").is_err());
        assert!(NodeConfig::from_toml_str("[dataplane]\nmbuf_cache = 4096").is_err());
    }

    #[test]
    fn static_ports_parse_and_bad_ones_are_refused() {
        let c = NodeConfig::from_toml_str(
            r#"
            [dataplane]
            mode = "pipeline"
            [[port]]
            name = "net_tap0"
            mac = "fa:16:3e:00:00:01"
            network = 1
            ips = ["10.0.0.1", "10.0.0.0/24", "2001:db8::1"]
            [[port]]
            name = "1"
            mac = "fa:16:3e:00:00:02"
            network = 1
            port_security = false
            "#,
        )
        .unwrap();
        assert_eq!(c.dataplane.mode, Mode::Pipeline);
        let (mac, ips) = c.ports[0].parse().unwrap();
        assert_eq!(mac.to_string(), "fa:16:3e:00:00:01");
        assert_eq!(ips.len(), 3);
        assert!(ips[1].contains_v4(pipelines::wire::Ipv4Addr::new(10, 0, 0, 200)));
        assert!(!c.ports[1].port_security && c.ports[1].admin_state_up);
        for (field, bad) in [("mac", "mac = \"ff:ff:ff:ff:ff:ff\""), ("ips", "ips = [\"10.0.0.0/33\"]")] {
            let text = format!(
                "[[port]]\nname = \"x\"\nnetwork = 1\n{}\n{}",
                if field == "mac" { bad } else { "mac = \"fa:16:3e:00:00:01\"" },
                if field == "ips" { bad } else { "" }
            );
            let e = NodeConfig::from_toml_str(&text).unwrap_err().to_string();
            assert!(e.contains(field), "{e}");
        }
    }
}

#[cfg(test)]
mod example_file {
    #[test]
    fn the_shipped_example_parses() {
        let c = super::NodeConfig::from_toml_str(include_str!("../../dragonflow.example.toml")).unwrap();
        assert_eq!(c.dataplane.ports.len(), 2);
    }
}
