//! The slow path: the thread that answers what the workers punt (`pipelines::services`: DHCP, router
//! solicitations) and sends the node's own packets (unsolicited router advertisements) out of any port.
//!
//! Between each worker and this thread there are two bounded queues ([`Channels`]): `punt`, worker →
//! slow path (the packet and the port it came in by), and `inject`, slow path → worker (a packet and the
//! port to send it out of, through the worker's own tx queue there: no tx queue is shared, no port needs
//! one more). A full `punt` queue drops and counts (`punt.ring_full`), never stalls a worker; a full
//! `inject` queue drops the answer and counts it (`slowpath.inject_full`). The workers' punt limits
//! (`pipelines::stages::punt`) bound what one port can put in.
//!
//! The thread runs on the control core, reads the tables the workers read (its own reader of the
//! publication, offline while it sleeps), drains at most [`BATCH`] packets per worker per pass so that
//! no worker's queue waits on another's, and sleeps a millisecond when it found nothing: a request waits
//! at most about a millisecond for it. It owns the mbufs it takes and frees them; answers are copied
//! into mbufs of the packet pool.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;
use dpdk::{Mbuf, Mempool};
use pipelines::publish::Reader;
use pipelines::services::{Answer, SlowPath, Stats};
use pipelines::tables::Tables;

/// Packets per queue (each way, per worker).
pub const QUEUE_LEN: usize = 1024;
/// Packets the thread takes from one worker's queue before it looks at the next.
const BATCH: usize = 64;
/// How often unsolicited router advertisements are looked at, and the counters published, ms.
const TICK_MS: u64 = 100;

/// The queues between one worker and the slow path, and the one into the worker from the others.
pub(crate) struct Channels {
    /// Worker → slow path: a punted packet and its in-port.
    pub punt: ArrayQueue<(Mbuf, u16)>,
    /// Slow path → worker: a packet to send out of a port.
    pub inject: ArrayQueue<(Mbuf, u16)>,
    /// Other workers → this one: packets of connections this worker owns (`pipelines::steer`) and their
    /// in-port, as received. Used with more than one worker and stateful security groups only.
    pub handoff: ArrayQueue<(Mbuf, u16)>,
}

impl Channels {
    pub fn new() -> Channels {
        Channels {
            punt: ArrayQueue::new(QUEUE_LEN),
            inject: ArrayQueue::new(QUEUE_LEN),
            handoff: ArrayQueue::new(QUEUE_LEN),
        }
    }

    /// Frees whatever is still queued (at shutdown, while the pool exists).
    pub fn clear(&self) {
        while self.punt.pop().is_some() {}
        while self.inject.pop().is_some() {}
        while self.handoff.pop().is_some() {}
    }
}

/// The running thread's handle.
pub(crate) struct SlowPathThread {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
    /// The thread's counters, published every [`TICK_MS`].
    pub stats: Arc<Mutex<Stats>>,
}

impl SlowPathThread {
    /// Starts the thread over the workers' `channels`, reading the tables with `reader`.
    pub fn start(reader: Reader<Tables>, channels: Vec<Arc<Channels>>, pool: Mempool) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Mutex::new(Stats::default()));
        let (s, st) = (stop.clone(), stats.clone());
        let handle = std::thread::Builder::new()
            .name("df-slowpath".into())
            .spawn(move || run(reader, &channels, &pool, &s, &st))?;
        Ok(SlowPathThread { stop, handle: Some(handle), stats })
    }

    /// Stops the thread and waits for it.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            if h.join().is_err() {
                tracing::error!("the slow-path thread panicked");
            }
        }
    }
}

impl Drop for SlowPathThread {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(mut reader: Reader<Tables>, channels: &[Arc<Channels>], pool: &Mempool, stop: &AtomicBool, out: &Mutex<Stats>) {
    let start = Instant::now();
    let wall = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let mut sp = SlowPath::new(wall ^ u64::from(std::process::id()));
    let mut answers = Vec::new();
    let mut next_tick = 0;
    let mut declined = 0;
    while !stop.load(Ordering::Relaxed) {
        let now = start.elapsed().as_millis() as u64;
        let mut busy = false;
        {
            let tables = reader.enter();
            for ch in channels {
                for _ in 0..BATCH {
                    let Some((m, port)) = ch.punt.pop() else { break };
                    busy = true;
                    if let Some(a) = sp.handle(&tables, port, m.data(), now) {
                        inject(ch, pool, a, &mut sp);
                    }
                }
            }
            if now >= next_tick {
                next_tick = now + TICK_MS;
                sp.tick(&tables, now, &mut answers);
                if let Some(ch) = channels.first() {
                    for a in answers.drain(..) {
                        inject(ch, pool, a, &mut sp);
                    }
                }
                let d = sp.stats().get("dhcp4.decline") + sp.stats().get("dhcp6.decline");
                if d > declined {
                    tracing::warn!(
                        declines = d,
                        "a DHCP client declined its address: it is in use by another host of its network"
                    );
                    declined = d;
                }
                if let Ok(mut o) = out.lock() {
                    *o = sp.stats().clone();
                }
            }
        }
        if !busy {
            reader.offline();
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    reader.offline();
    if let Ok(mut o) = out.lock() {
        *o = sp.stats().clone();
    }
}

/// Hands an answer to a worker, copied into an mbuf; counts what could not go.
fn inject(ch: &Channels, pool: &Mempool, a: Answer, sp: &mut SlowPath) {
    let Some(m) = Mbuf::from_bytes(pool, &a.frame) else {
        sp.count("slowpath.no_mbuf");
        return;
    };
    if ch.inject.push((m, a.port)).is_err() {
        sp.count("slowpath.inject_full");
    } else {
        sp.count("slowpath.out");
    }
}
