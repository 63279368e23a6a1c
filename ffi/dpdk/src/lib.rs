//! A safe layer over `dpdk-sys`: the pieces a poll-mode switch needs, each owning what it must free.
//!
//! - [`Eal`]: `rte_eal_init` once per process, EAL arguments ([`EalArgs`]) passed through, a cleanup that
//!   leaves no runtime directory behind; [`MainLcore`]: the main lcore's token, launching on worker
//!   lcores, each launch a [`Launched`] handle that waits for its end.
//! - [`Mempool`]: packet-buffer pools; [`Mbuf`]: one owned buffer, freed on drop; [`Burst`]: a fixed array
//!   of up to 32 owned mbufs, the unit of rx and tx.
//! - [`Port`]: one owner per device, found by name or hot-plugged from devargs, configured, started,
//!   counters, link, MAC; [`RxQueue`]/[`TxQueue`]: one per worker, taken once; the port is not changed
//!   (configured, started, stopped) while any of them lives.
//! - [`Ring`]: MP/MC rings, for `net_ring` ports and punt paths.
//!
//! ```no_run
//! use dpdk::{Burst, Eal, Mempool, Port, PortConfig};
//! let eal = Eal::init("demo", &["--no-huge", "-m", "256", "--no-pci", "--file-prefix", "demo",
//!                                "--vdev=net_null0", "--vdev=net_null1"]).unwrap();
//! let pool = Mempool::new(&eal, "pool", 8191, 256, dpdk::DEFAULT_DATA_ROOM).unwrap();
//! let (mut a, mut b) = (Port::open(&eal, "net_null0").unwrap(), Port::open(&eal, "net_null1").unwrap());
//! for p in [&mut a, &mut b] { p.configure(&PortConfig::default(), &pool).unwrap(); p.start().unwrap(); }
//! let (mut rx, mut tx) = (a.rx_queue(0).unwrap(), b.tx_queue(0).unwrap());
//! let mut burst: Burst = Burst::new();
//! rx.rx_burst(&mut burst);
//! tx.tx_burst(&mut burst);
//! burst.free_all(); // the unsent tail is the caller's
//! ```

mod eal;
mod error;
mod mbuf;
mod mempool;
mod port;
mod ring;

pub use eal::{rdtsc, Eal, EalArgs, Launched, Lcore, MainLcore};
pub use error::{DpdkError, Errno, Result};
pub use mbuf::{Burst, Mbuf, BURST_SIZE};
pub use mempool::{Mempool, DEFAULT_DATA_ROOM};
pub use port::{Link, MacAddr, Port, PortConfig, PortId, PortInfo, PortStats, RxQueue, TxQueue};
pub use ring::Ring;

/// The most ports the system DPDK handles (`RTE_MAX_ETHPORTS`, a build-time constant: 32 in Debian's).
pub const MAX_PORTS: usize = dpdk_sys::RTE_MAX_ETHPORTS as usize;

/// The DPDK version this was built against, e.g. "DPDK 22.11.11".
pub fn version() -> String {
    // SAFETY: rte_version returns a static NUL-terminated string.
    unsafe { std::ffi::CStr::from_ptr(dpdk_sys::rte_version()) }.to_string_lossy().into_owned()
}
