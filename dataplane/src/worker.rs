//! The poll-mode worker: one per worker lcore, pinned by the EAL. It polls its rx queues in bursts of 32,
//! runs the forwarding decision over each burst, transmits, and counts. It never blocks, allocates or
//! locks; it checks the stop flag once per pass over its queues and serves latency requests every
//! [`SERVICE_EVERY`](crate::latency::SERVICE_EVERY) passes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use dpdk::{rdtsc, Burst, RxQueue, TxQueue};
use hdrhistogram::Histogram;

use crate::counters::{bump, DropReason, WorkerCounters};
use crate::latency::{LatencyRecorder, SERVICE_EVERY};

/// One rx queue the worker polls, and where its packets go.
pub(crate) struct RxAssignment {
    pub queue: RxQueue,
    /// Index of the port the queue belongs to.
    pub port: usize,
    /// Patch mode: the port index the packets leave by.
    pub out: Option<usize>,
}

pub(crate) struct Worker {
    pub rx: Vec<RxAssignment>,
    /// This worker's tx queue on each port it sends to, by port index.
    pub tx: Vec<Option<TxQueue>>,
    pub counters: Arc<WorkerCounters>,
    pub stop: Arc<AtomicBool>,
    pub latency: LatencyRecorder,
    pub tx_retries: u32,
    pub measure_latency: bool,
}

/// What a worker hands back when it stops.
pub(crate) struct WorkerExit {
    pub lcore: u32,
    pub latency: Histogram<u64>,
}

impl Worker {
    /// Polls until the stop flag is set; returns the latency samples not yet collected.
    pub fn run(mut self, lcore: u32) -> WorkerExit {
        if self.measure_latency {
            self.poll_loop::<true>();
        } else {
            self.poll_loop::<false>();
        }
        WorkerExit {
            lcore,
            latency: self.latency.into_histogram(),
        }
    }

    /// The loop, with latency measurement decided at compile time so the untimed loop has no branch for it.
    ///
    /// Timing costs one TSC read per burst: the read that ends one burst's sample (after its tx) starts the
    /// next one, and a pass that found no packet on any queue restarts the clock. So a sample spans the
    /// `rx_burst` call that returned the packets, the forwarding decision and the `tx_burst` that sent them,
    /// plus the empty polls of the worker's other queues since the previous burst (time the packets spent
    /// waiting in their rx ring for this worker).
    fn poll_loop<const TIMED: bool>(&mut self) {
        let Worker {
            rx,
            tx,
            counters,
            stop,
            latency,
            tx_retries,
            ..
        } = self;
        let mut burst: Burst = Burst::new();
        let mut passes: u32 = 0;
        let mut t = if TIMED { rdtsc() } else { 0 };
        while !stop.load(Ordering::Relaxed) {
            let mut got = 0;
            for a in rx.iter_mut() {
                let n = a.queue.rx_burst(&mut burst);
                if n == 0 {
                    continue;
                }
                got += n;
                let c_in = &counters.ports[a.port];
                bump(&c_in.rx, n as u64);
                bump(&c_in.rx_bursts, 1);
                match a.out.and_then(|o| tx[o].as_mut().map(|q| (o, q))) {
                    Some((o, q)) => {
                        let mut sent = q.tx_burst(&mut burst);
                        let mut tries = 0;
                        while !burst.is_empty() && tries < *tx_retries {
                            sent += q.tx_burst(&mut burst);
                            tries += 1;
                        }
                        bump(&counters.ports[o].tx, sent as u64);
                        if !burst.is_empty() {
                            c_in.drop(DropReason::TxFull, burst.free_all() as u64);
                        }
                    }
                    None => c_in.drop(DropReason::PatchNoPeer, burst.free_all() as u64),
                }
                if TIMED {
                    let now = rdtsc();
                    latency.record(now.wrapping_sub(t));
                    t = now;
                }
            }
            if got == 0 {
                bump(&counters.idle_polls, 1);
                if TIMED {
                    t = rdtsc();
                }
            }
            passes = passes.wrapping_add(1);
            if passes % SERVICE_EVERY == 0 {
                latency.service();
                if TIMED {
                    t = rdtsc();
                }
            }
        }
    }
}
