//! Which worker polls which rx queue, and which tx queue each worker uses on each port: pure arithmetic,
//! decided once at start.
//!
//! Every port gets as many rx queues as there are workers (fewer if the device has fewer; RSS spreads
//! the packets), dealt round-robin to the workers port by port. A port gets one tx queue for each worker
//! that sends to it, so no tx queue is ever shared and tx needs no lock.

use pipelines::patch::PatchMap;

/// The queues of the whole dataplane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuePlan {
    /// Rx queues per port.
    pub rx_queues: Vec<u16>,
    /// Tx queues per port (at least 1, as DPDK requires).
    pub tx_queues: Vec<u16>,
    /// Per worker: the (port, rx queue) pairs it polls.
    pub rx: Vec<Vec<(usize, u16)>>,
    /// Per worker, per port: its tx queue there, if it sends to that port.
    pub tx: Vec<Vec<Option<u16>>>,
}

/// A port that needs more tx queues than its device has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxQueueShortage {
    pub port: usize,
    pub needed: u16,
    pub max: u16,
}

impl QueuePlan {
    /// `max_rx`/`max_tx`: the devices' queue limits, by port index.
    pub fn new(workers: usize, max_rx: &[u16], max_tx: &[u16], patch: &PatchMap) -> Result<QueuePlan, TxQueueShortage> {
        let ports = max_rx.len();
        let rx_queues: Vec<u16> = max_rx.iter().map(|&m| (workers as u16).min(m).max(1)).collect();
        let mut rx = vec![Vec::new(); workers];
        let mut next = 0;
        for (p, &n) in rx_queues.iter().enumerate() {
            for q in 0..n {
                rx[next % workers].push((p, q));
                next += 1;
            }
        }
        let mut tx = vec![vec![None; ports]; workers];
        let mut tx_queues = vec![0u16; ports];
        for (w, polled) in rx.iter().enumerate() {
            for &(p, _) in polled {
                if let Some(o) = patch.peer(p) {
                    if tx[w][o].is_none() {
                        tx[w][o] = Some(tx_queues[o]);
                        tx_queues[o] += 1;
                    }
                }
            }
        }
        for (p, n) in tx_queues.iter_mut().enumerate() {
            if *n > max_tx[p] {
                return Err(TxQueueShortage { port: p, needed: *n, max: max_tx[p] });
            }
            *n = (*n).max(1);
        }
        Ok(QueuePlan { rx_queues, tx_queues, rx, tx })
    }
}

impl QueuePlan {
    /// As [`QueuePlan::new`] where any worker may send to any port (the table pipeline): every worker
    /// gets a tx queue on every port.
    pub fn full_mesh(workers: usize, max_rx: &[u16], max_tx: &[u16]) -> Result<QueuePlan, TxQueueShortage> {
        let ports = max_rx.len();
        let mut plan = QueuePlan::new(workers, max_rx, max_tx, &PatchMap::adjacent(0))?;
        for (p, &max) in max_tx.iter().enumerate() {
            if (workers as u16) > max {
                return Err(TxQueueShortage { port: p, needed: workers as u16, max });
            }
        }
        plan.tx_queues = vec![workers as u16; ports];
        plan.tx = (0..workers).map(|w| vec![Some(w as u16); ports]).collect();
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_worker_polls_everything() {
        let p = QueuePlan::new(1, &[1, 1], &[1, 1], &PatchMap::adjacent(2)).unwrap();
        assert_eq!(p.rx, vec![vec![(0, 0), (1, 0)]]);
        assert_eq!(p.tx, vec![vec![Some(0), Some(0)]]);
        assert_eq!((p.rx_queues, p.tx_queues), (vec![1, 1], vec![1, 1]));
    }

    #[test]
    fn multi_queue_ports_get_a_queue_per_worker_and_private_tx_queues() {
        let p = QueuePlan::new(2, &[16, 16], &[16, 16], &PatchMap::adjacent(2)).unwrap();
        assert_eq!(p.rx, vec![vec![(0, 0), (1, 0)], vec![(0, 1), (1, 1)]]);
        assert_eq!(p.tx, vec![vec![Some(0), Some(0)], vec![Some(1), Some(1)]]);
        assert_eq!(p.tx_queues, vec![2, 2]);
    }

    #[test]
    fn single_queue_ports_are_spread_over_workers() {
        // Two pcap-like ports of one queue each, two workers: each worker polls one port and is the only
        // sender to the other, so one tx queue per port is enough.
        let p = QueuePlan::new(2, &[1, 1], &[1, 1], &PatchMap::adjacent(2)).unwrap();
        assert_eq!(p.rx, vec![vec![(0, 0)], vec![(1, 0)]]);
        assert_eq!(p.tx, vec![vec![None, Some(0)], vec![Some(0), None]]);
        assert_eq!(p.tx_queues, vec![1, 1]);
    }

    #[test]
    fn too_few_tx_queues_is_an_error_not_a_shared_queue() {
        let e = QueuePlan::new(2, &[4, 4], &[4, 1], &PatchMap::adjacent(2)).unwrap_err();
        assert_eq!(e, TxQueueShortage { port: 1, needed: 2, max: 1 });
    }

    #[test]
    fn full_mesh_gives_every_worker_a_tx_queue_everywhere() {
        let p = QueuePlan::full_mesh(2, &[4, 1], &[4, 4]).unwrap();
        assert_eq!(p.rx, vec![vec![(0, 0), (1, 0)], vec![(0, 1)]]);
        assert_eq!(p.tx, vec![vec![Some(0), Some(0)], vec![Some(1), Some(1)]]);
        assert_eq!(p.tx_queues, vec![2, 2]);
        assert!(QueuePlan::full_mesh(2, &[1, 1], &[1, 1]).is_err());
    }

    #[test]
    fn unpaired_port_gets_no_sender() {
        let p = QueuePlan::new(1, &[1, 1, 1], &[1, 1, 1], &PatchMap::adjacent(3)).unwrap();
        assert_eq!(p.tx, vec![vec![Some(0), Some(0), None]]);
        assert_eq!(p.tx_queues, vec![1, 1, 1]);
    }
}
