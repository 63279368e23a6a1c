//! Waiting for a DB that does not answer: exponential backoff, and sleeps that end early when the
//! process stops. Used by the node's threads (chassis registration, the controller, the status writer).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Exponential backoff for a DB that does not answer: 100 ms, doubling, up to 5 s.
pub struct Backoff(Duration);

impl Backoff {
    pub const FIRST: Duration = Duration::from_millis(100);
    pub const MAX: Duration = Duration::from_secs(5);

    pub fn new() -> Backoff {
        Backoff(Backoff::FIRST)
    }

    /// The next wait.
    pub fn next(&mut self) -> Duration {
        let d = self.0;
        self.0 = (self.0 * 2).min(Backoff::MAX);
        d
    }
}

/// Sleeps `d`, or less if `stop` is set meanwhile.
pub fn sleep_unless(stop: &AtomicBool, d: Duration) {
    let end = Instant::now() + d;
    while !stop.load(Ordering::Relaxed) {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap() {
        let mut b = Backoff::new();
        let waits: Vec<u64> = (0..8).map(|_| b.next().as_millis() as u64).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
    }

    #[test]
    fn a_stop_ends_the_sleep() {
        let stop = AtomicBool::new(true);
        let t = Instant::now();
        sleep_unless(&stop, Duration::from_secs(10));
        assert!(t.elapsed() < Duration::from_secs(1));
    }
}
