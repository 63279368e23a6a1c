//! Switch latency: the time from the call of the `rx_burst` that returned a burst (or the end of the
//! worker's previous burst, if it polled other queues in between) to the return of the `tx_burst` that
//! sent it, in TSC cycles, one sample per burst, in an HDR histogram per worker.
//!
//! Thread-safety and the exchange protocol: the worker owns its histogram and records without locks. To
//! read it, the control thread sends an empty histogram on `request`; the worker, which looks at that
//! channel every [`SERVICE_EVERY`] polls, swaps it with its own and sends the full one back on `reply`.
//! No allocation or lock happens on the worker; the control thread merges the replies into a running total.

use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, Sender};
use hdrhistogram::Histogram;

/// The worker checks for a histogram request once per this many polls.
pub const SERVICE_EVERY: u32 = 1024;

/// A histogram of TSC cycles: 1 cycle to 2^40 (minutes), 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 1 << 40, 3).expect("valid histogram bounds")
}

/// The worker's half.
pub struct LatencyRecorder {
    hist: Histogram<u64>,
    request: Receiver<Histogram<u64>>,
    reply: Sender<Histogram<u64>>,
}

/// The control thread's half.
pub struct LatencyReader {
    request: Sender<Histogram<u64>>,
    reply: Receiver<Histogram<u64>>,
    spare: Option<Histogram<u64>>,
}

pub fn channel() -> (LatencyRecorder, LatencyReader) {
    let (req_tx, req_rx) = bounded(1);
    let (rep_tx, rep_rx) = bounded(1);
    (
        LatencyRecorder { hist: new_histogram(), request: req_rx, reply: rep_tx },
        LatencyReader { request: req_tx, reply: rep_rx, spare: Some(new_histogram()) },
    )
}

impl LatencyRecorder {
    #[inline(always)]
    pub fn record(&mut self, cycles: u64) {
        self.hist.saturating_record(cycles.max(1));
    }

    /// Answers a pending request, if any. Called by the worker between bursts.
    #[inline]
    pub fn service(&mut self) {
        if let Ok(mut fresh) = self.request.try_recv() {
            std::mem::swap(&mut self.hist, &mut fresh);
            // The reader sent one request and waits for one reply: the channel has room.
            let _ = self.reply.try_send(fresh);
        }
    }

    /// What is left at the end of the worker's run.
    pub fn into_histogram(self) -> Histogram<u64> {
        self.hist
    }
}

impl LatencyReader {
    /// Takes the samples the worker recorded since the last call; `None` if it did not answer in `wait`
    /// (then the samples stay with the worker and come with the next call or at shutdown).
    pub fn take(&mut self, wait: Duration) -> Option<Histogram<u64>> {
        if let Some(mut h) = self.spare.take() {
            h.reset();
            if self.request.try_send(h).is_err() {
                return None;
            }
        }
        let got = self.reply.recv_timeout(wait).ok()?;
        // The next request reuses a cleared histogram; the caller gets a copy to keep.
        let out = got.clone();
        self.spare = Some(got);
        Some(out)
    }
}

/// Latency percentiles in nanoseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct LatencySummary {
    pub samples: u64,
    pub p50_ns: f64,
    pub p99_ns: f64,
    pub p999_ns: f64,
    pub max_ns: f64,
}

impl LatencySummary {
    pub fn from_cycles(h: &Histogram<u64>, tsc_hz: u64) -> LatencySummary {
        let ns = |c: u64| c as f64 * 1e9 / tsc_hz as f64;
        if h.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            samples: h.len(),
            p50_ns: ns(h.value_at_quantile(0.50)),
            p99_ns: ns(h.value_at_quantile(0.99)),
            p999_ns: ns(h.value_at_quantile(0.999)),
            max_ns: ns(h.max()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exchange_moves_samples_to_the_reader_once() {
        let (mut w, mut r) = channel();
        for c in [100, 200, 300] {
            w.record(c);
        }
        // The worker has not looked yet: the reader times out and its request stays pending.
        assert!(r.take(Duration::from_millis(1)).is_none());
        w.service();
        w.record(1000);
        // The late reply is collected by the next call, without a second request.
        let h = r.take(Duration::from_millis(100)).unwrap();
        assert_eq!((h.len(), h.max()), (3, 300));
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(5));
            w.service();
            w
        });
        let h2 = r.take(Duration::from_secs(5)).unwrap();
        assert_eq!((h2.len(), h2.max()), (1, 1000));
        assert!(t.join().unwrap().into_histogram().is_empty());
    }

    #[test]
    fn summary_converts_cycles_to_ns() {
        let mut h = new_histogram();
        for c in 1..=1000u64 {
            h.record(c * 1000).unwrap();
        }
        let s = LatencySummary::from_cycles(&h, 1_000_000_000);
        assert_eq!(s.samples, 1000);
        assert!((s.p50_ns - 500_000.0).abs() / 500_000.0 < 0.01, "{s:?}");
        assert!((s.p99_ns - 990_000.0).abs() / 990_000.0 < 0.01, "{s:?}");
    }
}
