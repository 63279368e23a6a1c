//! The DPDK runtime of the switch: ports given as devargs, poll-mode workers pinned to EAL lcores, bursts
//! of 32 through the forwarding decision, per-port and per-worker counters with a named reason for every
//! drop, a latency histogram of the time a burst spends in the switch, and a shutdown that returns every
//! mbuf to its pool. What it runs is [`DataplaneOptions`]: the `[dataplane]` section of the configuration
//! file as it is, and every flag over it.
//!
//! ```no_run
//! use dataplane::{Dataplane, DataplaneOptions};
//! let eal = dpdk::Eal::init("dragonflow", &["-l", "0-1", "--no-huge", "-m", "512", "--no-pci",
//!     "--file-prefix", "doc", "--vdev=net_null0", "--vdev=net_null1,no-rx=1"]).unwrap();
//! let main = dpdk::MainLcore::here(&eal).unwrap(); // workers are launched from the main lcore
//! let mut dp = Dataplane::start(&main, &DataplaneOptions::default(), |_| unreachable!()).unwrap(); // patch 0 <-> 1
//! std::thread::sleep(std::time::Duration::from_secs(1));
//! dp.collect_latency();
//! let report = dp.shutdown();
//! assert_eq!(report.mempool.in_use, 0);
//! ```

pub mod counters;
pub mod latency;
mod options;
mod pcap_preload;
pub mod pkt;
pub mod plan;
mod runtime;
mod slowpath;
mod worker;

pub use options::{DataplaneOptions, Mode, OptionsError, DEFAULT_EAL};
pub use pcap_preload::{pcap_frames, preloaded_frames};
pub use runtime::{
    Dataplane, DataplaneError, HwCounters, MempoolReport, PortReport, PortSummary, Report, WorkerReport, MAX_PORTS,
};
