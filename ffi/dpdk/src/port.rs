//! Ethernet ports (`rte_ethdev`): found by name or hot-plugged from devargs, configured, started, read
//! for stats and link, and split into per-queue handles that one worker each owns.
//!
//! Thread-safety: a [`Port`] is the one owner of its device (opening a port that has an owner is
//! [`DpdkError::PortInUse`]); it is `Send` and `Sync`, not `Clone`. Reading it (info, stats, link, MAC)
//! takes `&self` and may run on the control thread while workers poll. Changing it (`configure`, `start`,
//! `stop`, taking a queue) takes `&mut self`, so no two changes race. An [`RxQueue`] or [`TxQueue`] is
//! `Send` but not `Sync` and is taken once per configuration: DPDK queues are single-producer/
//! single-consumer. DPDK's configure, start and stop must not run while a burst is in progress on the
//! port (stop releases what the queues hold; start and stop rewrite the port's burst functions and queue
//! pointers, which a burst reads without synchronisation), so `configure`, `start` and `stop` refuse with
//! [`DpdkError::QueuesInUse`] while any queue handle of the port is alive. That check cannot be raced:
//! handles are made only through `&mut Port`, so under `&mut self` their number can only fall, and it is
//! read by `Arc::get_mut`, whose acquire pairs with each handle's drop, so every burst made through a
//! handle happened before. None of this is on the fast path: a burst is one FFI call on a handle the worker
//! owns, as before. The port is closed when the last handle (port or queue) is dropped, before its mempool.

use std::ffi::{CStr, CString};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::error::{DpdkError, Errno, Result};
use crate::mbuf::Burst;
use crate::mempool::Mempool;
use crate::ring::Ring;

/// A DPDK port id.
pub type PortId = u16;

/// An Ethernet address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MacAddr(pub [u8; 6]);

impl std::fmt::Display for MacAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let b = self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3], b[4], b[5])
    }
}

impl std::fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// How to set a port up.
#[derive(Clone, Debug)]
pub struct PortConfig {
    pub rx_queues: u16,
    pub tx_queues: u16,
    pub rx_desc: u16,
    pub tx_desc: u16,
    /// Spread packets over the rx queues with RSS (ignored with one rx queue).
    pub rss: bool,
    pub promiscuous: bool,
}

impl Default for PortConfig {
    fn default() -> Self {
        PortConfig { rx_queues: 1, tx_queues: 1, rx_desc: 1024, tx_desc: 1024, rss: true, promiscuous: true }
    }
}

/// What the device says it can do.
#[derive(Clone, Debug)]
pub struct PortInfo {
    pub driver: String,
    pub max_rx_queues: u16,
    pub max_tx_queues: u16,
    pub rss_offloads: u64,
}

/// The port's hardware/driver counters (`rte_eth_stats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortStats {
    pub ipackets: u64,
    pub opackets: u64,
    pub ibytes: u64,
    pub obytes: u64,
    /// Dropped by the device because no rx descriptor was free (the switch was too slow).
    pub imissed: u64,
    pub ierrors: u64,
    pub oerrors: u64,
    /// Rx failed for want of an mbuf.
    pub rx_nombuf: u64,
}

/// Link state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    pub up: bool,
    pub speed_mbps: u32,
    pub full_duplex: bool,
}

struct PortState {
    id: PortId,
    name: String,
    // Kept so they outlive the port: the pool (the driver holds its mbufs until close) and any rings.
    pool: Option<Mempool>,
    _rings: Vec<Ring>,
    started: bool,
    /// Made by `rte_dev_probe` here (not by the EAL's arguments): its device is removed from its bus with
    /// the port, so that the name can be probed again (a TAP device is deleted from the kernel with it).
    hotplugged: bool,
}

/// The ids some [`Port`] owns: a port has one owner at a time. Held across a port's close, so that an id
/// the close frees and a new probe reuses is never seen still owned, and across a hot-plug probe and the
/// search for the port it made ([`Port::open`]), so that hot-plug never runs twice at once.
static OWNED: Mutex<Vec<PortId>> = Mutex::new(Vec::new());

fn owned() -> MutexGuard<'static, Vec<PortId>> {
    OWNED.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Drop for PortState {
    fn drop(&mut self) {
        let mut owned = owned();
        // SAFETY: no queue handle is left (they hold this Arc), so nobody polls the port; stop then close
        // release every mbuf the driver holds back to the pool, which we still keep alive. The device
        // pointer is read before the close and stays valid until `rte_dev_remove`, which, once the port is
        // closed, only takes the device off its bus.
        unsafe {
            if self.started {
                dpdk_sys::rte_eth_dev_stop(self.id);
            }
            // The device outlives the closing of its port: it stays on its bus until removed.
            let mut info = dpdk_sys::rte_eth_dev_info::default();
            let device = match dpdk_sys::rte_eth_dev_info_get(self.id, &mut info) {
                0 => info.device,
                _ => std::ptr::null_mut(),
            };
            dpdk_sys::rte_eth_dev_close(self.id);
            if self.hotplugged && !device.is_null() {
                let ret = dpdk_sys::rte_dev_remove(device);
                if ret < 0 {
                    eprintln!("dpdk: removing the device of port {} ({}): error {ret}", self.id, self.name);
                }
            }
        }
        owned.retain(|&id| id != self.id);
        drop(owned);
        // After the close: the driver gave its mbufs back.
        drop(self.pool.take());
    }
}

/// The owner of one DPDK port.
///
/// ```no_run
/// # use dpdk::{Eal, Mempool, Port, PortConfig};
/// # let eal = Eal::init("demo", &["--no-huge", "--no-pci", "--vdev=net_null0"]).unwrap();
/// # let pool = Mempool::new(&eal, "pool", 8191, 256, dpdk::DEFAULT_DATA_ROOM).unwrap();
/// let mut port = Port::open(&eal, "net_null0").unwrap();
/// port.configure(&PortConfig::default(), &pool).unwrap();
/// port.start().unwrap();
/// let rx = port.rx_queue(0).unwrap(); // to a worker
/// assert!(port.stop().is_err(), "a queue handle is alive: a burst may be running");
/// drop(rx); // the worker is done
/// port.stop().unwrap();
/// ```
///
/// There is no second owner to change the port behind the first one's back:
/// ```compile_fail,E0599
/// fn second_owner(port: &dpdk::Port) -> dpdk::Port {
///     dpdk::Port::clone(port)
/// }
/// ```
///
/// and a thread that shares the port (to read its counters) cannot stop or reconfigure it, nor take
/// its queues:
/// ```compile_fail,E0596
/// fn from_the_stats_thread(port: &dpdk::Port) {
///     port.stop().unwrap();
/// }
/// ```
pub struct Port {
    state: Arc<PortState>,
    /// Per queue, since the last `configure`: its handle was taken.
    taken_rx: Vec<bool>,
    taken_tx: Vec<bool>,
}

impl std::fmt::Debug for Port {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Port").field("id", &self.state.id).field("name", &self.state.name).finish()
    }
}

/// The port's state to change, if no queue handle is alive (see the module's thread-safety note).
fn exclusive<'s>(state: &'s mut Arc<PortState>, call: &'static str) -> Result<&'s mut PortState> {
    let port = state.id;
    Arc::get_mut(state).ok_or(DpdkError::QueuesInUse { port, call })
}

fn port_name(id: PortId) -> String {
    let mut buf = [0 as std::ffi::c_char; dpdk_sys::RTE_ETH_NAME_MAX_LEN as usize];
    // SAFETY: buf is RTE_ETH_NAME_MAX_LEN bytes, as the call requires.
    let ret = unsafe { dpdk_sys::rte_eth_dev_get_name_by_port(id, buf.as_mut_ptr()) };
    if ret != 0 {
        return format!("port{id}");
    }
    // SAFETY: on success buf holds a NUL-terminated name.
    unsafe { CStr::from_ptr(buf.as_ptr()) }.to_string_lossy().into_owned()
}

fn find_by_name(name: &str) -> Option<PortId> {
    let c = CString::new(name).ok()?;
    let mut id: u16 = 0;
    // SAFETY: c is a valid C string, id a valid out pointer.
    let ret = unsafe { dpdk_sys::rte_eth_dev_get_port_by_name(c.as_ptr(), &mut id) };
    (ret == 0).then_some(id)
}

fn check(port: PortId, call: &'static str, ret: i32) -> Result<()> {
    if ret < 0 {
        Err(DpdkError::Port { port, call, errno: Errno::from_ret(ret) })
    } else {
        Ok(())
    }
}

impl Port {
    /// Takes ownership of port `id`; [`DpdkError::PortInUse`] if a `Port` owns it already.
    fn own(id: PortId, rings: Vec<Ring>, hotplugged: bool) -> Result<Port> {
        Port::own_in(&mut owned(), id, rings, hotplugged)
    }

    /// [`Port::own`] under the lock of the owned ids, held by the caller.
    fn own_in(owned: &mut Vec<PortId>, id: PortId, rings: Vec<Ring>, hotplugged: bool) -> Result<Port> {
        if owned.contains(&id) {
            return Err(DpdkError::PortInUse { port: id, name: port_name(id) });
        }
        owned.push(id);
        let state = PortState { id, name: port_name(id), pool: None, _rings: rings, started: false, hotplugged };
        Ok(Port { state: Arc::new(state), taken_rx: Vec::new(), taken_tx: Vec::new() })
    }

    /// The port for `devargs` (`net_tap0,iface=x`, `net_pcap0,rx_pcap=…`, a PCI address, …): the one the
    /// EAL already made from `--vdev`/`-a` if its name matches, else hot-plugged now (`rte_dev_probe`).
    /// [`DpdkError::PortInUse`] if another `Port` owns it.
    pub fn open(_eal: &crate::Eal, devargs: &str) -> Result<Port> {
        let name = devargs.split(',').next().unwrap_or("").trim();
        if name.is_empty() {
            return Err(DpdkError::Devargs(devargs.to_owned()));
        }
        // Hot-plug is not safe against itself in DPDK: a probe, and the search for the port it made,
        // under the same lock as another port's close and removal (`PortState::drop`). Without it, two
        // threads opening ports (tests do) once saw a probe succeed and its port not be found.
        let mut owned = owned();
        if let Some(id) = find_by_name(name) {
            return Port::own_in(&mut owned, id, Vec::new(), false);
        }
        let c = CString::new(devargs).map_err(|_| DpdkError::Devargs(devargs.to_owned()))?;
        // SAFETY: the EAL is initialised; c is a valid C string.
        let ret = unsafe { dpdk_sys::rte_dev_probe(c.as_ptr()) };
        if ret < 0 {
            return Err(DpdkError::Probe { devargs: devargs.to_owned(), errno: Errno::from_ret(ret) });
        }
        let id = find_by_name(name).ok_or_else(|| DpdkError::PortNotFound(name.to_owned()))?;
        Port::own_in(&mut owned, id, Vec::new(), true)
    }

    /// Every port the EAL probed (from `--vdev` and the PCI bus) that no `Port` owns yet, in port-id
    /// order; the owned ones stay their owners'.
    pub fn all(_eal: &crate::Eal) -> Vec<Port> {
        let mut out = Vec::new();
        // SAFETY: the EAL is initialised; rte_eth_find_next only reads the port table.
        let mut id = unsafe { dpdk_sys::rte_eth_find_next(0) };
        while id < dpdk_sys::RTE_MAX_ETHPORTS as u16 {
            out.extend(Port::own(id, Vec::new(), false).ok());
            // SAFETY: as above.
            id = unsafe { dpdk_sys::rte_eth_find_next(id + 1) };
        }
        out
    }

    /// A `net_ring` port that receives from `rx` rings and transmits into `tx` rings; DPDK names it
    /// `net_ring_<name>`.
    pub fn from_rings(_eal: &crate::Eal, name: &str, rx: &[Ring], tx: &[Ring]) -> Result<Port> {
        let c = CString::new(name).map_err(|_| DpdkError::Devargs(name.to_owned()))?;
        let rxp: Vec<*mut dpdk_sys::rte_ring> = rx.iter().map(Ring::as_ptr).collect();
        let txp: Vec<*mut dpdk_sys::rte_ring> = tx.iter().map(Ring::as_ptr).collect();
        // SAFETY: the ring pointers are valid and kept alive by the port state (the clones below).
        let ret = unsafe {
            dpdk_sys::rte_eth_from_rings(
                c.as_ptr(),
                rxp.as_ptr(),
                rxp.len() as u32,
                txp.as_ptr(),
                txp.len() as u32,
                dpdk_sys::rte_socket_id(),
            )
        };
        if ret < 0 {
            return Err(DpdkError::Probe { devargs: name.to_owned(), errno: Errno::last() });
        }
        Port::own(ret as PortId, rx.iter().chain(tx).cloned().collect(), false)
    }

    pub fn id(&self) -> PortId {
        self.state.id
    }

    /// The DPDK device name (`net_tap0`, `0000:01:00.0`, …).
    pub fn name(&self) -> &str {
        &self.state.name
    }

    pub fn info(&self) -> Result<PortInfo> {
        let mut info = dpdk_sys::rte_eth_dev_info::default();
        // SAFETY: info is a valid out pointer for the call.
        check(self.state.id, "rte_eth_dev_info_get", unsafe {
            dpdk_sys::rte_eth_dev_info_get(self.state.id, &mut info)
        })?;
        let driver = if info.driver_name.is_null() {
            String::new()
        } else {
            // SAFETY: the driver name is a static NUL-terminated string of the PMD.
            unsafe { CStr::from_ptr(info.driver_name) }.to_string_lossy().into_owned()
        };
        Ok(PortInfo {
            driver,
            max_rx_queues: info.max_rx_queues,
            max_tx_queues: info.max_tx_queues,
            rss_offloads: info.flow_type_rss_offloads,
        })
    }

    /// Configures the queues and descriptors, with rx buffers from `pool`. The port must be stopped, and no
    /// handle of its queues alive ([`DpdkError::QueuesInUse`]); the queues can be taken again after.
    pub fn configure(&mut self, cfg: &PortConfig, pool: &Mempool) -> Result<()> {
        let id = self.state.id;
        let info = self.info()?;
        for (kind, asked, max) in [("rx", cfg.rx_queues, info.max_rx_queues), ("tx", cfg.tx_queues, info.max_tx_queues)]
        {
            if asked == 0 || asked > max {
                return Err(DpdkError::TooManyQueues { port: id, kind, asked, max });
            }
        }
        let state = exclusive(&mut self.state, "configure")?;
        // No queue of the old configuration is taken any more (no handle is alive); none of the new one
        // may be taken before it is set up.
        self.taken_rx.clear();
        self.taken_tx.clear();
        let mut conf = dpdk_sys::rte_eth_conf::default();
        if cfg.rss && cfg.rx_queues > 1 {
            // SAFETY: reading exported constants.
            let want =
                unsafe { dpdk_sys::VS_RTE_ETH_RSS_IP | dpdk_sys::VS_RTE_ETH_RSS_UDP | dpdk_sys::VS_RTE_ETH_RSS_TCP };
            let hf = want & info.rss_offloads;
            if hf != 0 {
                conf.rxmode.mq_mode = dpdk_sys::rte_eth_rx_mq_mode_RTE_ETH_MQ_RX_RSS;
                conf.rx_adv_conf.rss_conf.rss_hf = hf;
            }
        }
        // SAFETY: conf is a valid, fully initialised configuration.
        check(id, "rte_eth_dev_configure", unsafe {
            dpdk_sys::rte_eth_dev_configure(id, cfg.rx_queues, cfg.tx_queues, &conf)
        })?;
        let (mut nrx, mut ntx) = (cfg.rx_desc, cfg.tx_desc);
        // SAFETY: valid out pointers.
        check(id, "rte_eth_dev_adjust_nb_rx_tx_desc", unsafe {
            dpdk_sys::rte_eth_dev_adjust_nb_rx_tx_desc(id, &mut nrx, &mut ntx)
        })?;
        // SAFETY: plain query.
        let socket = unsafe { dpdk_sys::rte_eth_dev_socket_id(id) };
        let socket = if socket < 0 { -1 } else { socket } as u32;
        for q in 0..cfg.rx_queues {
            // SAFETY: NULL conf means the driver's defaults; the pool outlives the port (kept below).
            check(id, "rte_eth_rx_queue_setup", unsafe {
                dpdk_sys::rte_eth_rx_queue_setup(id, q, nrx, socket, std::ptr::null(), pool.as_ptr())
            })?;
        }
        for q in 0..cfg.tx_queues {
            // SAFETY: NULL conf means the driver's defaults.
            check(id, "rte_eth_tx_queue_setup", unsafe {
                dpdk_sys::rte_eth_tx_queue_setup(id, q, ntx, socket, std::ptr::null())
            })?;
        }
        if cfg.promiscuous {
            // SAFETY: plain call; some virtual devices do not support it (ENOTSUP), which is fine.
            unsafe { dpdk_sys::rte_eth_promiscuous_enable(id) };
        }
        state.pool = Some(pool.clone());
        self.taken_rx = vec![false; cfg.rx_queues as usize];
        self.taken_tx = vec![false; cfg.tx_queues as usize];
        Ok(())
    }

    /// Starts the port. Refused while a handle of its queues is alive ([`DpdkError::QueuesInUse`]): start
    /// rewrites the burst functions a running burst reads. Take the queues after.
    pub fn start(&mut self) -> Result<()> {
        let id = self.state.id;
        let state = exclusive(&mut self.state, "start")?;
        // SAFETY: no queue handle is alive, so no burst runs on the port; if it is not configured, DPDK
        // returns an error.
        check(id, "rte_eth_dev_start", unsafe { dpdk_sys::rte_eth_dev_start(id) })?;
        state.started = true;
        Ok(())
    }

    /// Stops the port. Refused while a handle of its queues is alive ([`DpdkError::QueuesInUse`]): stop
    /// releases what the queues hold under a running burst. Stop the workers and drop their queues first.
    pub fn stop(&mut self) -> Result<()> {
        let id = self.state.id;
        let state = exclusive(&mut self.state, "stop")?;
        if !std::mem::replace(&mut state.started, false) {
            return Ok(());
        }
        // SAFETY: no queue handle is alive, so no burst runs on the port.
        check(id, "rte_eth_dev_stop", unsafe { dpdk_sys::rte_eth_dev_stop(id) })
    }

    /// Takes the handle of rx queue `q`; once per queue and configuration.
    pub fn rx_queue(&mut self, q: u16) -> Result<RxQueue> {
        take(&mut self.taken_rx, self.state.id, "rx", q)?;
        Ok(RxQueue { port: self.state.id, queue: q, _state: self.state.clone() })
    }

    /// Takes the handle of tx queue `q`; once per queue and configuration.
    pub fn tx_queue(&mut self, q: u16) -> Result<TxQueue> {
        take(&mut self.taken_tx, self.state.id, "tx", q)?;
        Ok(TxQueue { port: self.state.id, queue: q, _state: self.state.clone() })
    }

    pub fn stats(&self) -> Result<PortStats> {
        let mut s = dpdk_sys::rte_eth_stats::default();
        // SAFETY: s is a valid out pointer.
        check(self.state.id, "rte_eth_stats_get", unsafe { dpdk_sys::rte_eth_stats_get(self.state.id, &mut s) })?;
        Ok(PortStats {
            ipackets: s.ipackets,
            opackets: s.opackets,
            ibytes: s.ibytes,
            obytes: s.obytes,
            imissed: s.imissed,
            ierrors: s.ierrors,
            oerrors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
        })
    }

    pub fn reset_stats(&self) -> Result<()> {
        // SAFETY: plain call.
        check(self.state.id, "rte_eth_stats_reset", unsafe { dpdk_sys::rte_eth_stats_reset(self.state.id) })
    }

    pub fn link(&self) -> Result<Link> {
        let mut l = dpdk_sys::rte_eth_link::default();
        // SAFETY: l is a valid out pointer.
        check(self.state.id, "rte_eth_link_get_nowait", unsafe {
            dpdk_sys::rte_eth_link_get_nowait(self.state.id, &mut l)
        })?;
        Ok(Link { up: l.link_status() != 0, speed_mbps: l.link_speed, full_duplex: l.link_duplex() != 0 })
    }

    pub fn mac(&self) -> Result<MacAddr> {
        let mut a = dpdk_sys::rte_ether_addr::default();
        // SAFETY: a is a valid out pointer.
        check(self.state.id, "rte_eth_macaddr_get", unsafe { dpdk_sys::rte_eth_macaddr_get(self.state.id, &mut a) })?;
        Ok(MacAddr(a.addr_bytes))
    }
}

fn take(taken: &mut [bool], port: PortId, kind: &'static str, q: u16) -> Result<()> {
    match taken.get_mut(q as usize) {
        Some(slot) if !*slot => {
            *slot = true;
            Ok(())
        }
        _ => Err(DpdkError::QueueTaken { port, kind, queue: q }),
    }
}

/// One receive queue, owned by one worker. While it lives, its port is neither reconfigured, started nor
/// stopped.
pub struct RxQueue {
    port: PortId,
    queue: u16,
    _state: Arc<PortState>,
}

/// One transmit queue, owned by one worker. While it lives, its port is neither reconfigured, started nor
/// stopped.
pub struct TxQueue {
    port: PortId,
    queue: u16,
    _state: Arc<PortState>,
}

impl RxQueue {
    pub fn port(&self) -> PortId {
        self.port
    }

    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// Receives into the burst's free slots; returns how many packets came.
    #[inline]
    pub fn rx_burst<const N: usize>(&mut self, burst: &mut Burst<N>) -> usize {
        let (ptr, room) = burst.spare_raw();
        // SAFETY: ptr points to `room` free slots; the queue is ours alone (&mut self, taken once).
        let n = unsafe { dpdk_sys::vs_rte_eth_rx_burst(self.port, self.queue, ptr, room as u16) } as usize;
        // SAFETY: rx_burst wrote n <= room owned mbufs into those slots.
        unsafe { burst.commit_spare(n) };
        n
    }
}

impl TxQueue {
    pub fn port(&self) -> PortId {
        self.port
    }

    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// Transmits from the front of the burst; the sent mbufs leave it, the unsent tail stays for the caller
    /// to retry or free. Returns how many were sent.
    #[inline]
    pub fn tx_burst<const N: usize>(&mut self, burst: &mut Burst<N>) -> usize {
        let n = burst.len();
        if n == 0 {
            return 0;
        }
        // SAFETY: the live range holds n owned mbufs; the queue is ours alone.
        let sent = unsafe { dpdk_sys::vs_rte_eth_tx_burst(self.port, self.queue, burst.live_raw(), n as u16) } as usize;
        // SAFETY: the driver took ownership of exactly the first `sent` mbufs.
        unsafe { burst.consume_front(sent) };
        sent
    }
}
