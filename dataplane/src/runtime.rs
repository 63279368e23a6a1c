//! The dataplane's lifetime: open and configure the ports, plan which worker polls which queue, launch
//! the workers on their lcores, report counters and latency while they run, and stop cleanly with every
//! mbuf back in its pool.
//! Which worker polls which queue is decided by [`QueuePlan`].
//!
//! No worker outlives what it uses: a start that fails half way stops and joins the workers it launched
//! before it returns the error (a guard, on every error path), and the running dataplane does the same
//! when shut down or dropped; a port is stopped and reconfigured only once the workers have dropped its
//! queues (the `dpdk` crate refuses otherwise).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{unbounded, Receiver};
use dpdk::{Eal, Launched, MainLcore, Mempool, Port, PortConfig, PortStats};
use hdrhistogram::Histogram;
use pipelines::patch::{PatchError, PatchMap};
use pipelines::publish::Publisher;
use pipelines::tables::Tables;

use crate::counters::{CounterSnapshot, WorkerCounters};
use crate::latency::{self, LatencyReader, LatencySummary};
use crate::options::DataplaneOptions;
use crate::pcap_preload::preloaded_frames;
use crate::plan::QueuePlan;
use crate::slowpath::{Channels, SlowPathThread};
use crate::worker::{Change, Forwarding, Mailbox, RxAssignment, Worker, WorkerExit};

#[derive(Debug, thiserror::Error)]
pub enum DataplaneError {
    #[error(transparent)]
    Dpdk(#[from] dpdk::DpdkError),
    #[error("no worker lcore: give the EAL at least two lcores, e.g. `-l 0-1` (lcore 0 runs the control thread)")]
    NoWorkerLcore,
    #[error("no port: give ports with --port DEVARGS or EAL --vdev arguments")]
    NoPorts,
    #[error(transparent)]
    Patch(#[from] PatchError),
    #[error("port {port}: {needed} workers send to it but the device has {max} tx queues; use fewer worker lcores")]
    TxQueues { port: String, needed: usize, max: u16 },
    #[error("tables: {0}")]
    Tables(String),
    #[error("ports are plugged at runtime in pipeline mode only")]
    NotPipeline,
    #[error("no free port slot: the dataplane has {0} ports (RTE_MAX_ETHPORTS)")]
    NoPortSlot(usize),
    #[error("no port at index {0}")]
    NoSuchPort(u16),
    #[error("worker lcore {0} did not take the port change within a second")]
    WorkerStuck(u32),
}

/// Port slots (a port's index in the tables and counters): DPDK's own limit on ports.
pub const MAX_PORTS: usize = dpdk::MAX_PORTS;

/// Descriptors per queue of a port plugged at runtime (a VM's TAP or vhost-user port): enough for a VM,
/// and 30 of them fit a 512 MiB EAL.
const HOTPLUG_DESC: u16 = 512;

/// A port as the dataplane sees it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PortSummary {
    pub name: String,
    pub driver: String,
    pub mac: String,
    pub rx_queues: u16,
    pub tx_queues: u16,
    /// The link as last seen (at start, then every second by [`Dataplane::poll_links`]).
    pub link_up: bool,
    /// Times the link went up or down since the port started (a VM's vhost-user or memif peer
    /// connecting and leaving, a TAP set down).
    pub link_changes: u64,
}

/// Counters of one port: the driver's and the workers' (added over workers).
#[derive(Debug, Clone, serde::Serialize)]
pub struct PortReport {
    /// The port's index (slot), as the tables name it.
    pub index: u16,
    pub name: String,
    /// The link as last seen, and how many times it went up or down ([`PortSummary`]).
    pub link_up: bool,
    pub link_changes: u64,
    pub hw: HwCounters,
    pub rx: u64,
    pub tx: u64,
    pub rx_bursts: u64,
    /// Packets received on this port that the switch answered itself (ARP/ND responders).
    pub replied: u64,
    /// Packets received on this port handed to the slow path (DHCP, router solicitations).
    pub punted: u64,
    /// Packets received on this port handed to another worker, the owner of their connection (with
    /// stateful security groups and more than one worker; `pipelines::steer`).
    pub handed_off: u64,
    /// Drops of packets received on this port, by `<stage>.<reason>`.
    pub drops: std::collections::BTreeMap<&'static str, u64>,
}

/// The driver's counters (`rte_eth_stats`).
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct HwCounters {
    pub ipackets: u64,
    pub opackets: u64,
    pub imissed: u64,
    pub ierrors: u64,
    pub oerrors: u64,
    pub rx_nombuf: u64,
}

impl From<PortStats> for HwCounters {
    fn from(s: PortStats) -> Self {
        HwCounters {
            ipackets: s.ipackets,
            opackets: s.opackets,
            imissed: s.imissed,
            ierrors: s.ierrors,
            oerrors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
        }
    }
}

/// Counters of one worker (added over ports).
#[derive(Debug, Clone, serde::Serialize)]
pub struct WorkerReport {
    pub lcore: u32,
    pub queues: Vec<String>,
    pub rx: u64,
    pub tx: u64,
    pub dropped: u64,
    pub idle_polls: u64,
}

/// A snapshot of everything the dataplane counts.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub ports: Vec<PortReport>,
    pub workers: Vec<WorkerReport>,
    /// Switch latency (from the rx_burst call to the tx_burst return, per burst) since start.
    pub latency: LatencySummary,
    pub mempool: MempoolReport,
    /// Table publications since start (pipeline mode; 0: still the tables the switch started with).
    pub tables_version: u64,
    /// The slow path's counters (`pipelines::services`: DHCP and router advertisement messages in and
    /// out, and what was left unanswered and why).
    pub slowpath: std::collections::BTreeMap<&'static str, u64>,
    /// Connection tracking, added over the workers: connections held (`conntrack.live`), made, expired,
    /// closed by a rule change (`revoked`), refused for a full table (`full`).
    pub conntrack: std::collections::BTreeMap<&'static str, u64>,
    /// SNAT, added over the workers: translations held (`nat.live`), made, expired, refused for a full
    /// table (`full`) or for want of a free port toward the remote end (`no_port`).
    pub nat: std::collections::BTreeMap<&'static str, u64>,
}

/// Named counters added over the workers.
fn summed(named: impl Iterator<Item = (&'static str, u64)>) -> std::collections::BTreeMap<&'static str, u64> {
    let mut c = std::collections::BTreeMap::new();
    for (name, v) in named {
        *c.entry(name).or_insert(0) += v;
    }
    c
}

#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct MempoolReport {
    pub size: u32,
    /// Mbufs out of the pool once the ports had started, before any worker ran.
    pub in_use_at_start: u32,
    /// Mbufs out of the pool now (after shutdown: after every port was closed; 0 unless mbufs leaked).
    pub in_use: u32,
}

struct RunningWorker {
    lcore: u32,
    /// `None` once joined.
    launched: Option<Launched>,
    queues: Vec<String>,
    counters: Arc<WorkerCounters>,
    latency: LatencyReader,
    mailbox: Arc<Mailbox>,
}

/// The running dataplane. [`Dataplane::shutdown`] stops it and reports; dropping it (on an error path)
/// stops and joins the workers too. `Send`: the control threads may share it; the workers are joined
/// through their [`Launched`] handles, from whichever thread.
pub struct Dataplane {
    eal: Eal,
    pool: Mempool,
    /// By port index (slot); `None`: a free slot.
    ports: Vec<Option<(Port, PortSummary)>>,
    workers: Vec<RunningWorker>,
    stop: Arc<AtomicBool>,
    exits: Receiver<WorkerExit>,
    latency_total: Histogram<u64>,
    in_use_at_start: u32,
    publisher: Option<Publisher<Tables>>,
    /// Pipeline mode: the slow path, and its queues to and from each worker.
    slowpath: Option<SlowPathThread>,
    channels: Vec<Arc<Channels>>,
    rx_desc: u16,
    tx_desc: u16,
}

/// The workers [`Dataplane::start`] launched, until it succeeds: on any error after the first launch,
/// dropping this stops them and waits until each has returned and its lcore is free again, so the error
/// leaves nothing running (the caller may clean the EAL up next).
struct Launching<'m> {
    main: &'m MainLcore,
    stop: Arc<AtomicBool>,
    launched: Vec<Launched>,
}

impl Launching<'_> {
    /// Start succeeded: the handles go to the running workers.
    fn succeed(mut self) -> Vec<Launched> {
        std::mem::take(&mut self.launched)
    }
}

impl Drop for Launching<'_> {
    fn drop(&mut self) {
        if self.launched.is_empty() {
            return;
        }
        self.stop.store(true, Ordering::SeqCst);
        for l in self.launched.drain(..) {
            let lcore = l.lcore();
            let code = l.join();
            // The worker has returned; this waits for DPDK to count its lcore free too.
            let _ = self.main.wait(lcore);
            tracing::info!(lcore, code, "worker stopped: the dataplane did not start");
        }
    }
}

fn round_pool_size(n: u64) -> u32 {
    // A mempool is most memory-efficient at 2^k - 1 elements.
    let n = n.clamp(4095, u32::MAX as u64 / 2);
    ((n + 1).next_power_of_two() - 1) as u32
}

impl Dataplane {
    /// Opens and starts the ports and launches one worker per worker lcore that has a queue to poll; on
    /// the main lcore (the token). On an error, whatever was launched has stopped and returned first.
    ///
    /// In pipeline mode, `tables` builds the first tables from the port names (in port-index order)
    /// before any worker runs, so no packet meets empty tables; later ones come with [`Dataplane::publish`].
    pub fn start(
        main: &MainLcore,
        opts: &DataplaneOptions,
        tables: impl FnOnce(&[String]) -> Result<Tables, String>,
    ) -> Result<Dataplane, DataplaneError> {
        let eal = main.eal();
        let lcores = eal.worker_lcores();
        if lcores.is_empty() {
            return Err(DataplaneError::NoWorkerLcore);
        }
        let mut ports: Vec<Port> = if opts.ports.is_empty() {
            Port::all(&eal)
        } else {
            opts.ports.iter().map(|d| Port::open(&eal, d)).collect::<Result<_, _>>()?
        };
        if ports.is_empty() && !(opts.pipeline() && opts.hotplug_ports > 0) {
            return Err(DataplaneError::NoPorts);
        }
        let names: Vec<String> = ports.iter().map(|p| p.name().to_owned()).collect();
        let patch = if opts.patch.is_empty() {
            PatchMap::adjacent(ports.len())
        } else {
            PatchMap::from_pairs(&names, &opts.patch)?
        };

        let infos = ports.iter().map(|p| p.info()).collect::<Result<Vec<_>, _>>()?;
        let max_rx: Vec<u16> = infos.iter().map(|i| i.max_rx_queues).collect();
        let max_tx: Vec<u16> = infos.iter().map(|i| i.max_tx_queues).collect();
        let plan = if opts.pipeline() {
            QueuePlan::full_mesh(lcores.len(), &max_rx, &max_tx)
        } else {
            QueuePlan::new(lcores.len(), &max_rx, &max_tx, &patch)
        };
        let plan = plan.map_err(|e| DataplaneError::TxQueues {
            port: names[e.port].clone(),
            needed: e.needed as usize,
            max: e.max,
        })?;
        let (nrxq, ntxq) = (&plan.rx_queues, &plan.tx_queues);

        let mbufs = if opts.mbufs != 0 {
            opts.mbufs
        } else {
            let rings: u64 = (0..ports.len())
                .map(|p| nrxq[p] as u64 * opts.rx_desc as u64 + ntxq[p] as u64 * opts.tx_desc as u64)
                .sum();
            let eal_args = opts.eal_args();
            let preload: u64 =
                opts.ports.iter().map(String::as_str).chain(eal_args.vdevs()).map(preloaded_frames).sum();
            let caches = (lcores.len() as u64 + 1) * (opts.mbuf_cache as u64 * 3 / 2 + 64);
            // What the slow path's queues may hold (punted and to be injected) and the hand-off queue, per
            // worker.
            let slow = if opts.pipeline() { lcores.len() as u64 * 3 * crate::slowpath::QUEUE_LEN as u64 } else { 0 };
            let hotplug = opts.hotplug_ports as u64 * (lcores.len() as u64 + 1) * HOTPLUG_DESC as u64;
            round_pool_size(rings + preload + caches + hotplug + slow + 4096)
        };
        let pool = Mempool::new(&eal, "df_pkt_pool", mbufs, opts.mbuf_cache, dpdk::DEFAULT_DATA_ROOM)?;
        tracing::info!(mbufs, cache = opts.mbuf_cache, "packet pool created");

        let mut summaries = Vec::new();
        for (p, port) in ports.iter_mut().enumerate() {
            let cfg = PortConfig {
                rx_queues: nrxq[p],
                tx_queues: ntxq[p],
                rx_desc: opts.rx_desc,
                tx_desc: opts.tx_desc,
                ..PortConfig::default()
            };
            port.configure(&cfg, &pool)?;
            port.start()?;
            let s = PortSummary {
                name: names[p].clone(),
                driver: infos[p].driver.clone(),
                mac: port.mac().map(|m| m.to_string()).unwrap_or_default(),
                rx_queues: nrxq[p],
                tx_queues: ntxq[p],
                link_up: port.link().map(|l| l.up).unwrap_or(false),
                link_changes: 0,
            };
            tracing::info!(port = %s.name, driver = %s.driver, mac = %s.mac, rxq = s.rx_queues, txq = s.tx_queues,
                peer = ?patch.peer(p).map(|o| names[o].as_str()), "port started");
            summaries.push(s);
        }
        let in_use_at_start = pool.in_use_count();

        let stop = Arc::new(AtomicBool::new(false));
        let mut publisher = match opts.pipeline() {
            // One reader per worker, and the slow path's.
            true => {
                let t = tables(&names).map_err(DataplaneError::Tables)?;
                Some(Publisher::new(t, lcores.len() + 1))
            }
            false => None,
        };
        let (exit_tx, exits) = unbounded();
        let mut workers = Vec::new();
        // Every worker's queues, made first: each worker hands packets to the others' (pipeline mode).
        let channels: Vec<Arc<Channels>> = lcores.iter().map(|_| Arc::new(Channels::new())).collect();
        // Declared after the ports, the pool and the publisher: on an error it is dropped first, and the
        // workers are joined before any of those goes.
        let mut launching = Launching { main, stop: stop.clone(), launched: Vec::new() };
        for (wi, &lcore) in lcores.iter().enumerate() {
            // A pipeline worker with nothing to poll yet runs anyway: ports may be plugged later.
            if plan.rx[wi].is_empty() && !opts.pipeline() {
                tracing::warn!(lcore, "worker lcore has no queue to poll; left idle");
                continue;
            }
            let counters = Arc::new(WorkerCounters::new(MAX_PORTS));
            let mailbox = Arc::new(Mailbox::default());
            let (recorder, reader) = latency::channel();
            let mut rx = Vec::new();
            let mut queues = Vec::new();
            for &(p, q) in &plan.rx[wi] {
                rx.push(RxAssignment { queue: ports[p].rx_queue(q)?, port: p, out: patch.peer(p), skip: 0 });
                queues.push(format!("{}:{q}", names[p]));
            }
            let tx = plan.tx[wi]
                .iter()
                .enumerate()
                .map(|(p, q)| q.map(|q| ports[p].tx_queue(q)).transpose())
                .collect::<Result<Vec<_>, _>>()?;
            let worker = Worker {
                rx,
                tx,
                counters: counters.clone(),
                stop: stop.clone(),
                latency: recorder,
                tx_retries: opts.tx_retries,
                idle_sleep_us: opts.idle_sleep_us,
                measure_latency: opts.latency,
                forwarding: match publisher.as_mut().and_then(Publisher::reader) {
                    Some(tables) => Forwarding::Pipeline { tables, pool: pool.clone(), tsc_hz: eal.tsc_hz() },
                    None => Forwarding::Patch,
                },
                mailbox: mailbox.clone(),
                peers: channels.clone(),
                me: wi,
                punt_rate: opts.punt_rate,
                punt_burst: opts.punt_burst,
                conntrack_max: opts.conntrack_max,
                nat_max: opts.nat_max,
            };
            let exit_tx = exit_tx.clone();
            launching.launched.push(main.launch(lcore, move || {
                let exit = worker.run(lcore);
                let _ = exit_tx.send(exit);
                0
            })?);
            tracing::info!(lcore, queues = ?queues, "worker started");
            workers.push(RunningWorker { lcore, launched: None, queues, counters, latency: reader, mailbox });
        }
        let slowpath = match publisher.as_mut().and_then(Publisher::reader) {
            Some(reader) => Some(
                SlowPathThread::start(reader, channels.clone(), pool.clone())
                    .map_err(|e| DataplaneError::Tables(format!("the slow-path thread: {e}")))?,
            ),
            None => None,
        };
        for (w, l) in workers.iter_mut().zip(launching.succeed()) {
            w.launched = Some(l);
        }
        Ok(Dataplane {
            eal,
            pool,
            ports: ports.into_iter().zip(summaries).map(Some).collect(),
            workers,
            stop,
            exits,
            latency_total: latency::new_histogram(),
            in_use_at_start,
            publisher,
            slowpath,
            channels,
            rx_desc: opts.rx_desc,
            tx_desc: opts.tx_desc,
        })
    }

    /// Publishes new tables to the pipeline's workers (one atomic swap; the old tables are freed once every
    /// worker has crossed a burst boundary). Returns the tables' version, or `None` in patch mode.
    pub fn publish(&mut self, tables: Tables) -> Option<u64> {
        self.publisher.as_mut().map(|p| p.publish(tables))
    }

    /// Frees the retired tables the workers are done with; returns how many still wait.
    pub fn reclaim(&mut self) -> usize {
        self.publisher.as_mut().map_or(0, Publisher::reclaim)
    }

    /// The ports, by index (`None`: a free slot).
    pub fn ports(&self) -> impl Iterator<Item = (u16, &PortSummary)> {
        self.ports.iter().enumerate().filter_map(|(i, p)| Some((i as u16, &p.as_ref()?.1)))
    }

    /// The running workers (a device plugged at runtime needs a tx queue for each).
    pub fn worker_count(&self) -> usize {
        self.workers.len()
    }

    /// The tables the workers read now (pipeline mode).
    pub fn tables(&self) -> Option<&Tables> {
        self.publisher.as_ref().map(Publisher::current)
    }

    /// Plugs a port at runtime (pipeline mode): probes `devargs` (`net_tap_x,iface=tapx`,
    /// `net_vhost_x,iface=SOCK`, …), configures one rx queue per worker (as the device allows) and a tx queue
    /// for each, starts it, and hands the queues to the running workers. Returns the port's index, the one
    /// the tables name it by: the lowest free slot.
    pub fn plug(&mut self, devargs: &str) -> Result<u16, DataplaneError> {
        if self.publisher.is_none() {
            return Err(DataplaneError::NotPipeline);
        }
        let slot = match self.ports.iter().position(Option::is_none) {
            Some(i) => i,
            None if self.ports.len() < MAX_PORTS => self.ports.len(),
            None => return Err(DataplaneError::NoPortSlot(MAX_PORTS)),
        };
        let mut port = Port::open(&self.eal, devargs)?;
        let info = port.info()?;
        let workers = self.workers.len() as u16;
        if info.max_tx_queues < workers {
            return Err(DataplaneError::TxQueues {
                port: port.name().to_owned(),
                needed: workers as usize,
                max: info.max_tx_queues,
            });
        }
        let rxq = workers.min(info.max_rx_queues).max(1);
        let cfg = PortConfig {
            rx_queues: rxq,
            tx_queues: workers,
            rx_desc: HOTPLUG_DESC.min(self.rx_desc),
            tx_desc: HOTPLUG_DESC.min(self.tx_desc),
            ..PortConfig::default()
        };
        port.configure(&cfg, &self.pool)?;
        port.start()?;
        for w in &self.workers {
            // The slot's counters are zero before its first use and after `unplug`; nobody writes them.
            w.counters.ports[slot].reset();
        }
        // Rx queues to the workers that poll the fewest, then every worker its own tx queue.
        let mut changes: Vec<Vec<Change>> = self.workers.iter().map(|_| Vec::new()).collect();
        for q in 0..rxq {
            let w =
                (0..self.workers.len()).min_by_key(|&w| self.workers[w].queues.len() + changes[w].len()).unwrap_or(0);
            changes[w].push(Change::Rx(RxAssignment { queue: port.rx_queue(q)?, port: slot, out: None, skip: 0 }));
            self.workers[w].queues.push(format!("{}:{q}", port.name()));
        }
        for (w, c) in changes.iter_mut().enumerate() {
            c.push(Change::Tx(slot, port.tx_queue(w as u16)?));
        }
        for (w, c) in self.workers.iter().zip(changes) {
            w.mailbox.post(c);
        }
        let s = PortSummary {
            name: port.name().to_owned(),
            driver: info.driver,
            mac: port.mac().map(|m| m.to_string()).unwrap_or_default(),
            rx_queues: rxq,
            tx_queues: workers,
            link_up: port.link().map(|l| l.up).unwrap_or(false),
            link_changes: 0,
        };
        tracing::info!(port = %s.name, index = slot, driver = %s.driver, rxq, "port plugged");
        if self.ports.len() <= slot {
            self.ports.resize_with(slot + 1, || None);
        }
        self.ports[slot] = Some((port, s));
        Ok(slot as u16)
    }

    /// Unplugs port `index`: the workers drop its queues (waited for), then it is stopped, closed and its
    /// device removed (a TAP leaves the kernel). Publish tables that no longer name it first: packets still
    /// sent to it are dropped as `tx.no_queue`.
    pub fn unplug(&mut self, index: u16) -> Result<(), DataplaneError> {
        let slot = index as usize;
        if self.ports.get(slot).and_then(Option::as_ref).is_none() {
            return Err(DataplaneError::NoSuchPort(index));
        }
        let generations: Vec<u64> = self.workers.iter().map(|w| w.mailbox.post([Change::Remove(slot)])).collect();
        let deadline = std::time::Instant::now() + Duration::from_secs(1);
        for (w, g) in self.workers.iter().zip(generations) {
            while w.mailbox.applied() < g {
                if std::time::Instant::now() > deadline {
                    // The port stays plugged (closing it under a worker would be unsafe); its slot stays taken.
                    return Err(DataplaneError::WorkerStuck(w.lcore));
                }
                std::thread::sleep(Duration::from_micros(50));
            }
        }
        let Some((mut port, s)) = self.ports[slot].take() else { return Err(DataplaneError::NoSuchPort(index)) };
        let prefix = format!("{}:", s.name);
        for w in &mut self.workers {
            w.queues.retain(|q| !q.starts_with(&prefix));
            w.counters.ports[slot].reset();
        }
        if let Err(e) = port.stop() {
            tracing::warn!(port = %s.name, "stop: {e}");
        }
        drop(port);
        while self.ports.last().is_some_and(Option::is_none) {
            self.ports.pop();
        }
        tracing::info!(port = %s.name, index, "port unplugged");
        Ok(())
    }

    /// Collects the latency samples the workers recorded since the last call into the running total.
    pub fn collect_latency(&mut self) {
        for w in &mut self.workers {
            if let Some(h) = w.latency.take(Duration::from_millis(50)) {
                let _ = self.latency_total.add(&h);
            }
        }
    }

    /// Every counter now.
    pub fn report(&self) -> Report {
        let mut ports = Vec::new();
        for (p, (port, summary)) in self.ports.iter().enumerate().filter_map(|(i, s)| Some((i, s.as_ref()?))) {
            let mut c = CounterSnapshot::default();
            for w in &self.workers {
                c.add(&w.counters.ports[p].snapshot());
            }
            ports.push(PortReport {
                index: p as u16,
                name: port.name().to_owned(),
                link_up: summary.link_up,
                link_changes: summary.link_changes,
                hw: port.stats().map(HwCounters::from).unwrap_or_default(),
                rx: c.rx,
                tx: c.tx,
                rx_bursts: c.rx_bursts,
                replied: c.replied,
                punted: c.punted,
                handed_off: c.handed_off,
                drops: c.named_drops().collect(),
            });
        }
        let workers = self
            .workers
            .iter()
            .map(|w| {
                let mut c = CounterSnapshot::default();
                for pc in w.counters.ports.iter() {
                    c.add(&pc.snapshot());
                }
                WorkerReport {
                    lcore: w.lcore,
                    queues: w.queues.clone(),
                    rx: c.rx,
                    tx: c.tx,
                    dropped: c.dropped(),
                    idle_polls: w.counters.idle_polls.load(Ordering::Relaxed),
                }
            })
            .collect();
        Report {
            ports,
            workers,
            latency: LatencySummary::from_cycles(&self.latency_total, self.eal.tsc_hz()),
            mempool: MempoolReport {
                size: self.pool.size(),
                in_use_at_start: self.in_use_at_start,
                in_use: self.pool.in_use_count(),
            },
            tables_version: self.publisher.as_ref().map_or(0, Publisher::version),
            slowpath: self
                .slowpath
                .as_ref()
                .and_then(|s| s.stats.lock().ok().map(|s| s.iter().collect()))
                .unwrap_or_default(),
            conntrack: summed(self.workers.iter().flat_map(|w| w.counters.conntrack.named())),
            nat: summed(self.workers.iter().flat_map(|w| w.counters.nat.named())),
        }
    }

    /// Sets the stop flag and joins every worker (their queue handles are dropped when this returns), and
    /// the slow path; frees what was left in their queues.
    fn stop_workers(&mut self) {
        if let Some(s) = self.slowpath.as_mut() {
            s.stop();
        }
        self.stop.store(true, Ordering::SeqCst);
        for w in &mut self.workers {
            let Some(launched) = w.launched.take() else { continue };
            let code = launched.join();
            if code != 0 {
                tracing::error!(lcore = w.lcore, code, "worker exited abnormally");
            }
        }
        for ch in &self.channels {
            ch.clear();
        }
    }

    /// Reads every port's link state (without waiting) and logs each change: called once a second by the
    /// main thread. A port whose driver cannot tell keeps what was last seen.
    pub fn poll_links(&mut self) {
        for (port, s) in self.ports.iter_mut().flatten() {
            let Ok(link) = port.link() else { continue };
            if link.up != s.link_up {
                s.link_up = link.up;
                s.link_changes += 1;
                if link.up {
                    tracing::info!(port = %s.name, speed_mbps = link.speed_mbps, full_duplex = link.full_duplex, "link up");
                } else {
                    tracing::info!(port = %s.name, "link down");
                }
            }
        }
    }

    /// Stops the workers, takes the last counters and latency samples, then stops and closes every port
    /// and checks that every mbuf came back to the pool (`mempool.in_use` of the report).
    pub fn shutdown(mut self) -> Report {
        self.stop_workers();
        while let Ok(exit) = self.exits.try_recv() {
            tracing::debug!(lcore = exit.lcore, "worker stopped");
            let _ = self.latency_total.add(&exit.latency);
        }
        let mut report = self.report();
        for (p, _) in self.ports.iter_mut().flatten() {
            if let Err(e) = p.stop() {
                tracing::warn!(port = p.name(), "stop: {e}");
            }
        }
        // The workers dropped their queue handles when they returned; dropping the ports closes them, which
        // gives back every mbuf the drivers held (net_pcap's preloaded frames among them).
        self.ports.clear();
        report.mempool.in_use = self.pool.in_use_count();
        report
    }
}

impl Drop for Dataplane {
    fn drop(&mut self) {
        // After `shutdown` the workers are already joined and this does nothing. The fields (ports, pool,
        // publisher) are dropped after this, once no worker runs.
        self.stop_workers();
    }
}
