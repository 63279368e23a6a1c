//! Software counters of the workers: per worker and per port, packets in, packets out, and every drop by
//! its named reason (`pipelines::drop::Reason`: the stages' and the dataplane's own, one list).
//!
//! Thread-safety: each [`PortCounters`] block has exactly one writer, the worker that owns it, which adds
//! with a relaxed load and store (a plain `mov` on x86: no atomic read-modify-write on the fast path);
//! the control thread reads with relaxed loads and may see a count a burst late, never a torn one. Blocks
//! are cache-line aligned so two workers never share a line.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use pipelines::drop::Reason;

/// One worker's counters for one port.
#[repr(align(64))]
pub struct PortCounters {
    /// Packets received on this port by the worker.
    pub rx: AtomicU64,
    /// Packets the worker handed to this port's tx queue and the driver accepted.
    pub tx: AtomicU64,
    /// Bursts received (non-empty rx polls).
    pub rx_bursts: AtomicU64,
    /// Packets received on this port that the switch answered itself (ARP and ND responders), sent back
    /// out of it: the peer they asked for never saw them.
    pub replied: AtomicU64,
    /// Packets received on this port handed to the slow path (DHCP, router solicitations).
    pub punted: AtomicU64,
    /// Packets received on this port handed to another worker, the owner of their connection
    /// (`pipelines::steer`), which decides and counts them from then on.
    pub handed_off: AtomicU64,
    /// Drops of packets received on this port, by reason (`Reason as usize`; `Reason::None` stays 0).
    pub drops: [AtomicU64; Reason::COUNT],
}

impl Default for PortCounters {
    fn default() -> Self {
        PortCounters {
            rx: AtomicU64::new(0),
            tx: AtomicU64::new(0),
            rx_bursts: AtomicU64::new(0),
            replied: AtomicU64::new(0),
            punted: AtomicU64::new(0),
            handed_off: AtomicU64::new(0),
            drops: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

/// Adds `n` to a counter that only the calling thread writes.
#[inline(always)]
pub fn bump(c: &AtomicU64, n: u64) {
    c.store(c.load(Relaxed).wrapping_add(n), Relaxed);
}

impl PortCounters {
    #[inline(always)]
    pub fn drop(&self, reason: Reason, n: u64) {
        bump(&self.drops[reason as usize], n);
    }

    /// Zeroes every counter: only while no worker writes this block (a port slot being reused).
    pub fn reset(&self) {
        for c in [&self.rx, &self.tx, &self.rx_bursts, &self.replied, &self.punted, &self.handed_off]
            .into_iter()
            .chain(&self.drops)
        {
            c.store(0, Relaxed);
        }
    }

    pub fn snapshot(&self) -> CounterSnapshot {
        CounterSnapshot {
            rx: self.rx.load(Relaxed),
            tx: self.tx.load(Relaxed),
            rx_bursts: self.rx_bursts.load(Relaxed),
            replied: self.replied.load(Relaxed),
            punted: self.punted.load(Relaxed),
            handed_off: self.handed_off.load(Relaxed),
            drops: std::array::from_fn(|i| self.drops[i].load(Relaxed)),
        }
    }
}

/// Plain copy of counters, added up over workers or ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CounterSnapshot {
    pub rx: u64,
    pub tx: u64,
    pub rx_bursts: u64,
    pub replied: u64,
    pub punted: u64,
    pub handed_off: u64,
    pub drops: [u64; Reason::COUNT],
}

impl Default for CounterSnapshot {
    fn default() -> Self {
        CounterSnapshot { rx: 0, tx: 0, rx_bursts: 0, replied: 0, punted: 0, handed_off: 0, drops: [0; Reason::COUNT] }
    }
}

impl CounterSnapshot {
    pub fn add(&mut self, o: &CounterSnapshot) {
        self.rx += o.rx;
        self.tx += o.tx;
        self.rx_bursts += o.rx_bursts;
        self.replied += o.replied;
        self.punted += o.punted;
        self.handed_off += o.handed_off;
        for (a, b) in self.drops.iter_mut().zip(o.drops) {
            *a += b;
        }
    }

    pub fn dropped(&self) -> u64 {
        self.drops.iter().sum()
    }

    /// `(name, count)` for every reason but `none`, in `Reason::ALL`'s order.
    pub fn named_drops(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        Reason::ALL.iter().filter(|r| **r != Reason::None).map(|r| (r.name(), self.drops[*r as usize]))
    }
}

/// Everything one worker counts: a block per port, and its idle polls.
pub struct WorkerCounters {
    pub ports: Box<[PortCounters]>,
    /// Passes over all the worker's queues that found no packet.
    pub idle_polls: AtomicU64,
    /// The worker's connection tracking (`pipelines::conntrack::Stats` and the connections held), copied
    /// from its table once per pass.
    pub conntrack: ConntrackCounters,
    /// The same for the worker's NAT translations.
    pub nat: NatCounters,
}

/// One worker's connection table, as the report names its counters.
#[derive(Default)]
#[repr(align(64))]
pub struct ConntrackCounters {
    pub live: AtomicU64,
    pub created: AtomicU64,
    pub expired: AtomicU64,
    pub revoked: AtomicU64,
    pub full: AtomicU64,
    pub evicted: AtomicU64,
}

impl ConntrackCounters {
    /// Copies the table's counters (the worker, once per pass).
    #[inline]
    pub fn update(&self, ct: &pipelines::conntrack::Conntrack) {
        let s = ct.stats;
        for (c, v) in [
            (&self.live, ct.live() as u64),
            (&self.created, s.created),
            (&self.expired, s.expired),
            (&self.revoked, s.revoked),
            (&self.full, s.full),
            (&self.evicted, s.evicted),
        ] {
            c.store(v, Relaxed);
        }
    }

    /// `(name, value)` for the report.
    pub fn named(&self) -> [(&'static str, u64); 6] {
        [
            ("conntrack.live", self.live.load(Relaxed)),
            ("conntrack.created", self.created.load(Relaxed)),
            ("conntrack.expired", self.expired.load(Relaxed)),
            ("conntrack.revoked", self.revoked.load(Relaxed)),
            ("conntrack.full", self.full.load(Relaxed)),
            ("conntrack.evicted", self.evicted.load(Relaxed)),
        ]
    }
}

/// One worker's NAT translations (`pipelines::nat`), as the report names its counters.
#[derive(Default)]
#[repr(align(64))]
pub struct NatCounters {
    pub live: AtomicU64,
    pub made: AtomicU64,
    pub expired: AtomicU64,
    pub full: AtomicU64,
    pub no_port: AtomicU64,
}

impl NatCounters {
    /// Copies the table's counters (the worker, once per pass).
    #[inline]
    pub fn update(&self, nat: &pipelines::nat::Nat) {
        let s = nat.stats;
        for (c, v) in [
            (&self.live, nat.live() as u64),
            (&self.made, s.made),
            (&self.expired, s.expired),
            (&self.full, s.full),
            (&self.no_port, s.no_port),
        ] {
            c.store(v, Relaxed);
        }
    }

    /// `(name, value)` for the report.
    pub fn named(&self) -> [(&'static str, u64); 5] {
        [
            ("nat.live", self.live.load(Relaxed)),
            ("nat.made", self.made.load(Relaxed)),
            ("nat.expired", self.expired.load(Relaxed)),
            ("nat.full", self.full.load(Relaxed)),
            ("nat.no_port", self.no_port.load(Relaxed)),
        ]
    }
}

impl WorkerCounters {
    pub fn new(ports: usize) -> WorkerCounters {
        WorkerCounters {
            ports: (0..ports).map(|_| PortCounters::default()).collect(),
            idle_polls: AtomicU64::new(0),
            conntrack: ConntrackCounters::default(),
            nat: NatCounters::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_add_up_and_name_their_drops() {
        let w = WorkerCounters::new(2);
        bump(&w.ports[0].rx, 32);
        bump(&w.ports[1].tx, 30);
        w.ports[0].drop(Reason::TxFull, 2);
        let mut total = w.ports[0].snapshot();
        total.add(&w.ports[1].snapshot());
        assert_eq!((total.rx, total.tx, total.dropped()), (32, 30, 2));
        assert_eq!(total.named_drops().count(), Reason::COUNT - 1);
        w.ports[1].drop(Reason::PortSecurityMac, 3);
        let mut total = w.ports[0].snapshot();
        total.add(&w.ports[1].snapshot());
        assert_eq!(total.dropped(), 5);
        let named: Vec<_> = total.named_drops().filter(|(_, n)| *n > 0).collect();
        assert_eq!(named, vec![("port_security.mac_spoof", 3), ("tx.full", 2)]);
        assert_eq!(std::mem::align_of::<PortCounters>(), 64);
    }
}
