//! What the dataplane is asked to run: [`DataplaneOptions`], one struct for every place that carries
//! these settings. It is the `[dataplane]` section of the `run` role's configuration file as it is
//! (serde, every field optional, unknown keys refused), the binary's flags apply over it, and
//! [`Dataplane::start`](crate::Dataplane::start) takes it.
//!
//! ```
//! use dataplane::{DataplaneOptions, Mode};
//! let opts = DataplaneOptions { mode: Mode::Pipeline, rx_desc: 512, ..DataplaneOptions::default() };
//! opts.validate().unwrap();
//! assert_eq!(opts.eal_args().file_prefix(), Some("dragonflow")); // no `eal` given: DEFAULT_EAL
//! assert!(DataplaneOptions { rx_desc: 1000, ..opts }.validate().is_err());
//! ```

use dpdk::EalArgs;
use serde::{Deserialize, Serialize};

/// How the dataplane forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Cross-connect: port A to port B and back, untouched (testpmd's `io`).
    #[default]
    Patch,
    /// Dragonflow's table pipeline (classification, port security, ARP/ND responders, L2, L3), tables
    /// given at start and with [`Dataplane::publish`](crate::Dataplane::publish).
    Pipeline,
}

/// The dataplane's settings; field names are the `[dataplane]` keys of the configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataplaneOptions {
    /// DPDK EAL arguments, passed through as given (`-l 0-1`, `--vdev=…`, `--no-huge`, …). Empty means
    /// [`DEFAULT_EAL`] ([`DataplaneOptions::eal_args`]). The dataplane reads their `--vdev` devargs only to
    /// size the pool (a `net_pcap` port with `infinite_rx=1` preloads its whole pcap into mbufs).
    pub eal: Vec<String>,
    /// Ports as DPDK devargs (`net_tap0,iface=dtap0`, `net_pcap0,rx_pcap=in.pcap`, `0000:01:00.0`). Empty
    /// means every port the EAL probed (from `--vdev` and the PCI bus).
    pub ports: Vec<String>,
    pub mode: Mode,
    /// Patch pairs by port name or index; empty means 0 ↔ 1, 2 ↔ 3, …
    pub patch: Vec<(String, String)>,
    /// Mbufs in the packet pool (0 = sized from the ports, queues and preloaded pcaps).
    pub mbufs: u32,
    /// Per-lcore mbuf cache.
    pub mbuf_cache: u32,
    /// Rx descriptors per queue.
    pub rx_desc: u16,
    /// Tx descriptors per queue.
    pub tx_desc: u16,
    /// Times a worker retries the unsent tail of a burst before it drops it (counted as `tx_full`).
    pub tx_retries: u32,
    /// Microseconds a worker sleeps once it found nothing in [`IDLE_PASSES_BEFORE_SLEEP`] passes in a
    /// row (0: never; it polls at full speed, the default). OVS-DPDK's `pmd-maxsleep`: for nodes that
    /// share their cores (tests, small hosts), at the cost of up to that much latency on the first packet
    /// after a quiet spell.
    pub idle_sleep_us: u32,
    /// Record the rx-to-tx time of every burst in a latency histogram.
    pub latency: bool,
    /// Requests (DHCP, router solicitations) each port may hand to the slow path per second, per worker
    /// (0: no limit); over it they are dropped and counted (`punt.rate_limited`), never the port blocked.
    pub punt_rate: u32,
    /// How many of those a port may send at once after a quiet while.
    pub punt_burst: u32,
    /// Connections each worker may track for its ports' security groups (a connection between two
    /// local ports takes two: one per port's zone). When full, new connections are dropped and counted
    /// (`conntrack.full`); established ones keep flowing. Memory: about 84 bytes per connection, taken
    /// as connections come.
    pub conntrack_max: u32,
    /// Connections each worker may translate for routers' SNAT (`pipelines::nat`). When full, new
    /// connections are dropped and counted (`nat.full`). Memory: about 120 bytes per connection, reserved
    /// at start and touched as connections come.
    pub nat_max: u32,
    /// Pipeline mode: ports that may be plugged at runtime ([`Dataplane::plug`](crate::Dataplane::plug)),
    /// for sizing the pool. With it, the dataplane may start with no port at all. Set by the role that
    /// plugs ports, never by the file.
    #[serde(skip)]
    pub hotplug_ports: u16,
}

/// Empty passes in a row after which a worker with [`DataplaneOptions::idle_sleep_us`] sleeps.
pub const IDLE_PASSES_BEFORE_SLEEP: u32 = 1024;

/// The EAL arguments used when none are given: two lcores (control on 0, one worker on 1), 4 KiB pages,
/// no PCI scan, and a file prefix of our own so that other DPDK processes do not collide with us.
pub const DEFAULT_EAL: &[&str] =
    &["-l", "0-1", "--main-lcore", "0", "--no-huge", "-m", "512", "--no-pci", "--file-prefix", "dragonflow"];

impl Default for DataplaneOptions {
    fn default() -> Self {
        DataplaneOptions {
            eal: Vec::new(),
            ports: Vec::new(),
            mode: Mode::Patch,
            patch: Vec::new(),
            mbufs: 0,
            mbuf_cache: 256,
            rx_desc: 1024,
            tx_desc: 1024,
            tx_retries: 0,
            idle_sleep_us: 0,
            latency: true,
            punt_rate: pipelines::stages::punt::DEFAULT_RATE,
            punt_burst: pipelines::stages::punt::DEFAULT_BURST,
            conntrack_max: 1_000_000,
            nat_max: 65_536,
            hotplug_ports: 0,
        }
    }
}

/// A setting that parses but cannot be used, and why.
#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
    #[error("dataplane.{field} = {value}: {why}")]
    Invalid { field: &'static str, value: u64, why: &'static str },
}

impl DataplaneOptions {
    /// The EAL arguments to use: [`DataplaneOptions::eal`], or [`DEFAULT_EAL`] if it is empty.
    pub fn eal_args(&self) -> EalArgs {
        if self.eal.is_empty() {
            EalArgs::new(DEFAULT_EAL.iter().copied())
        } else {
            EalArgs::new(self.eal.iter().cloned())
        }
    }

    /// Checks the values that parse but make no sense.
    pub fn validate(&self) -> Result<(), OptionsError> {
        let invalid = |field, value: u64, why| Err(OptionsError::Invalid { field, value, why });
        for (field, v) in [("rx_desc", self.rx_desc), ("tx_desc", self.tx_desc)] {
            if v == 0 || !v.is_power_of_two() {
                return invalid(field, v.into(), "must be a power of two above 0");
            }
        }
        if self.idle_sleep_us > 10_000 {
            return invalid(
                "idle_sleep_us",
                self.idle_sleep_us.into(),
                "at most 10000 (10 ms): a port change waits for it",
            );
        }
        if self.punt_burst == 0 {
            return invalid("punt_burst", 0, "must be at least 1");
        }
        if !(8..=1 << 30).contains(&self.conntrack_max) {
            return invalid("conntrack_max", self.conntrack_max.into(), "must be from 8 to 2^30");
        }
        if !(8..=1 << 26).contains(&self.nat_max) {
            return invalid("nat_max", self.nat_max.into(), "must be from 8 to 2^26");
        }
        if self.mbuf_cache > 512 {
            return invalid("mbuf_cache", self.mbuf_cache.into(), "DPDK caps the per-lcore cache at 512");
        }
        if self.mbufs != 0 && self.mbufs < 1024 {
            return invalid("mbufs", self.mbufs.into(), "must be 0 (automatic) or at least 1024");
        }
        Ok(())
    }

    pub(crate) fn pipeline(&self) -> bool {
        self.mode == Mode::Pipeline
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_values_are_refused_by_name() {
        let ok = DataplaneOptions::default();
        ok.validate().unwrap();
        let e = |o: DataplaneOptions| o.validate().unwrap_err().to_string();
        assert_eq!(
            e(DataplaneOptions { rx_desc: 1000, ..ok.clone() }),
            "dataplane.rx_desc = 1000: must be a power of two above 0"
        );
        assert!(e(DataplaneOptions { tx_desc: 0, ..ok.clone() }).starts_with("dataplane.tx_desc = 0"));
        assert!(e(DataplaneOptions { mbuf_cache: 4096, ..ok.clone() }).contains("mbuf_cache"));
        assert!(e(DataplaneOptions { mbufs: 10, ..ok.clone() }).contains("mbufs"));
        DataplaneOptions { mbufs: 1024, ..ok }.validate().unwrap();
    }

    #[test]
    fn eal_arguments_default_when_none_are_given() {
        let d = DataplaneOptions::default();
        assert_eq!(d.eal_args().as_slice(), DEFAULT_EAL);
        let given = DataplaneOptions { eal: vec!["-l".into(), "0-3".into()], ..d };
        assert_eq!(given.eal_args().as_slice(), ["-l", "0-3"]);
    }
}
