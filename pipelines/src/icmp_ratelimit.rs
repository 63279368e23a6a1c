//! How many ICMP errors the router may send: Linux's two limits (net/ipv4/icmp.c, net/ipv6/icmp.c,
//! net/ipv4/inetpeer.c; the sysctls of Documentation/networking/ip-sysctl.rst), kept by each worker.
//!
//! - Per destination (the sender of the packet the error is about), Linux's `inet_peer_xrlim_allow`: a
//!   bucket of time. Each error costs one period; the bucket fills with the time that passes, up to
//!   [`BURST_FACTOR`] periods, and a destination seen for the first time starts full. So: a burst of 6,
//!   then one error per period. The period is `net.ipv4.icmp_ratelimit` (1000 ms) for IPv4, and
//!   `net.ipv6.icmp.ratelimit` (1000 ms) for IPv6, shortened for a wide route back to the destination
//!   as `icmpv6_xrlim_allow` does (`>> ((128 - prefix length) >> 5)`: 250 ms on a /64). Mainline Linux
//!   dropped that scaling in late 2025 (with a 100 ms default instead); this follows the kernels deployed.
//! - Overall, `icmp_global_allow` and `icmp_global_consume`: [`MSGS_BURST`] (50) credits, refilled at
//!   [`MSGS_PER_SEC`] (1000) a second in steps of at least 20 ms. An error may go while there is credit,
//!   and each one sent takes 0, 1 or 2 credits at random (1 on average; the randomness hides the exact
//!   budget from an off-path prober, as Linux has since the SAD DNS attack).
//! - In the order current Linux uses: the overall credit is looked at first, the destination's bucket
//!   next, and the credit is only charged for an error that both let through, so a flood about one
//!   sender does not spend the budget of the others.
//!
//! Which errors: Linux limits the types of its `icmp_ratemask` (IPv4: destination unreachable but for
//! "fragmentation needed", source quench, time exceeded, parameter problem) and `icmpv6.ratemask`
//! (every IPv6 error but packet too big); echo replies are not limited. The router's errors (time
//! exceeded, v4 and v6) are all of those, so every one goes through [`IcmpLimiter`].
//!
//! Where this differs from Linux, because a poll-mode worker shares nothing mutable:
//! - The limits are per worker, not per host: with N workers the overall budget is N × 1000/s. A
//!   sender's packets arrive by its port's queues; RSS keeps each of its flows on one worker.
//! - Destinations are (network, address): tenants' address spaces overlap (Linux keys them by VRF).
//! - The destinations live in a fixed table of [`PEERS`] slots, one slot per hash (allocated once, with
//!   the worker): a destination that takes another's slot starts full, as a new `inet_peer` would, and
//!   the overall budget bounds what that lets through.
//! - Time is the worker's clock in milliseconds, read once per burst (Linux: jiffies).
//!
//! Thread-safety: none needed. One limiter per worker, owned, read and written by that worker alone
//! (inside [`crate::stages::WorkerState`]); no atomics, no locks.

use crate::wire::{Ipv4Addr, Ipv6Addr};

/// Per-destination period, ms (`net.ipv4.icmp_ratelimit`, `net.ipv6.icmp.ratelimit`).
pub const RATELIMIT_MS: u32 = 1000;
/// Periods a destination's bucket holds at most (Linux's `XRLIM_BURST_FACTOR`).
pub const BURST_FACTOR: u32 = 6;
/// Overall refill rate, errors a second (`net.ipv4.icmp_msgs_per_sec`).
pub const MSGS_PER_SEC: u32 = 1000;
/// Overall credit at most (`net.ipv4.icmp_msgs_burst`).
pub const MSGS_BURST: i32 = 50;
/// The overall credit is refilled in steps of at least this many ms (Linux: `HZ / 50`).
const REFILL_STEP_MS: u64 = 20;
/// Destination slots per worker (a power of two).
pub const PEERS: usize = 1024;

const _: () = assert!(PEERS.is_power_of_two());

/// One destination's bucket.
#[derive(Debug, Clone, Copy)]
struct Peer {
    /// IPv4 destinations as `::ffff:a.b.c.d`, told apart from IPv6 ones by `v6`.
    addr: [u8; 16],
    network: u32,
    v6: bool,
    /// Milliseconds of credit, at most `BURST_FACTOR * RATELIMIT_MS`.
    tokens: u16,
    /// When `tokens` was last brought up to date.
    last: u64,
}

const _: () = assert!(BURST_FACTOR * RATELIMIT_MS <= u16::MAX as u32);

/// A slot no destination matches (ff..ff is multicast: never an error's destination).
const EMPTY: Peer = Peer { addr: [0xff; 16], network: u32::MAX, v6: true, tokens: 0, last: 0 };

/// One worker's ICMP error limits (see the module's documentation).
#[derive(Debug, Clone)]
pub struct IcmpLimiter {
    peers: Box<[Peer]>,
    /// Overall credit (may go below zero by one: the random charge comes after the check).
    credit: i32,
    /// When the overall credit was last refilled.
    stamp: u64,
    /// xorshift32 state, for the random charge.
    rng: u32,
}

impl IcmpLimiter {
    /// A limiter with full buckets; `seed` starts the random charge (a worker seeds it from its clock).
    pub fn new(seed: u32) -> IcmpLimiter {
        IcmpLimiter { peers: vec![EMPTY; PEERS].into_boxed_slice(), credit: MSGS_BURST, stamp: 0, rng: seed | 1 }
    }

    /// May one more ICMPv4 error go, at `now` (ms), to `peer` on `network`? Counts it if so.
    pub fn allow_v4(&mut self, now: u64, network: u32, peer: Ipv4Addr) -> bool {
        let mut addr = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0];
        addr[12..].copy_from_slice(&peer.0);
        self.allow(now, network, addr, false, RATELIMIT_MS)
    }

    /// As [`IcmpLimiter::allow_v4`] for ICMPv6; `prefix_len`: the route back to `peer` (the subnet it
    /// is on), which shortens its period.
    pub fn allow_v6(&mut self, now: u64, network: u32, peer: Ipv6Addr, prefix_len: u8) -> bool {
        let period = RATELIMIT_MS >> ((128 - prefix_len.min(128) as u32) >> 5);
        self.allow(now, network, peer.0, true, period)
    }

    fn allow(&mut self, now: u64, network: u32, addr: [u8; 16], v6: bool, period: u32) -> bool {
        if !self.global_allow(now) || !self.peer_allow(now, network, addr, v6, period) {
            return false;
        }
        // Linux's `get_random_u32_below(3)`: 0, 1 or 2 credits.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 17;
        self.rng ^= self.rng << 5;
        self.credit -= ((self.rng as u64 * 3) >> 32) as i32;
        true
    }

    /// Linux's `icmp_global_allow`: credit left, or refilled for the time since the last refill.
    fn global_allow(&mut self, now: u64) -> bool {
        if self.credit > 0 {
            return true;
        }
        let delta = now.saturating_sub(self.stamp).min(1000);
        let incr = (MSGS_PER_SEC as u64 * delta / 1000) as i32;
        if delta < REFILL_STEP_MS || incr == 0 {
            return false;
        }
        self.stamp = now;
        self.credit = (self.credit + incr).min(MSGS_BURST);
        true
    }

    /// Linux's `inet_peer_xrlim_allow` on the destination's slot.
    fn peer_allow(&mut self, now: u64, network: u32, addr: [u8; 16], v6: bool, period: u32) -> bool {
        let cap = (BURST_FACTOR * period) as u64;
        let p = &mut self.peers[slot(network, &addr, v6)];
        let tokens = if p.addr == addr && p.network == network && p.v6 == v6 {
            (p.tokens as u64 + now.saturating_sub(p.last)).min(cap)
        } else {
            *p = Peer { addr, network, v6, tokens: 0, last: now };
            cap
        };
        let allowed = tokens >= period as u64;
        p.tokens = (if allowed { tokens - period as u64 } else { tokens }) as u16;
        p.last = now;
        allowed
    }
}

/// The slot of a destination: a multiplicative hash of its key.
#[inline]
fn slot(network: u32, addr: &[u8; 16], v6: bool) -> usize {
    let a = u128::from_be_bytes(*addr);
    let h = (a as u64) ^ ((a >> 64) as u64).rotate_left(17) ^ ((network as u64) << 32) ^ v6 as u64;
    (h.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - PEERS.trailing_zeros())) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

    fn v6(n: u8) -> Ipv6Addr {
        let mut a = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        a[15] = n;
        Ipv6Addr(a)
    }

    /// How many of `n` errors to `peer` at `now` go.
    fn sent(l: &mut IcmpLimiter, now: u64, peer: Ipv4Addr, n: usize) -> usize {
        (0..n).filter(|_| l.allow_v4(now, 1, peer)).count()
    }

    #[test]
    fn a_sender_gets_a_burst_of_six_then_one_a_second() {
        let mut l = IcmpLimiter::new(7);
        assert_eq!(sent(&mut l, 0, A, 10), 6);
        assert_eq!(sent(&mut l, 999, A, 1), 0);
        assert_eq!(sent(&mut l, 1000, A, 5), 1);
        assert_eq!(sent(&mut l, 2500, A, 5), 1);
        // The half second left over counts: one more at 3000.
        assert_eq!(sent(&mut l, 3000, A, 5), 1);
        // Idle for a long time: a full burst again, no more.
        assert_eq!(sent(&mut l, 60_000, A, 10), 6);
    }

    #[test]
    fn senders_networks_and_families_are_apart() {
        let mut l = IcmpLimiter::new(7);
        assert_eq!(sent(&mut l, 0, A, 10), 6);
        assert_eq!(sent(&mut l, 0, Ipv4Addr::new(10, 0, 0, 2), 10), 6);
        assert_eq!((0..10).filter(|_| l.allow_v4(0, 2, A)).count(), 6, "the same address in another network");
        let mapped = Ipv6Addr([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1]);
        assert_eq!((0..10).filter(|_| l.allow_v6(0, 1, mapped, 128)).count(), 6, "IPv6 is another family");
    }

    #[test]
    fn ipv6_periods_shorten_with_the_route_prefix() {
        let mut l = IcmpLimiter::new(7);
        assert_eq!((0..10).filter(|_| l.allow_v6(0, 1, v6(1), 64)).count(), 6);
        assert!(!l.allow_v6(249, 1, v6(1), 64));
        assert!(l.allow_v6(250, 1, v6(1), 64), "/64: a period of 1000 >> 2 ms");
        assert_eq!((0..10).filter(|_| l.allow_v6(0, 1, v6(2), 128)).count(), 6);
        assert!(!l.allow_v6(999, 1, v6(2), 128));
        assert!(l.allow_v6(1000, 1, v6(2), 128), "a host route: the full period");
    }

    #[test]
    fn the_overall_budget_is_about_fifty_then_a_thousand_a_second() {
        let mut l = IcmpLimiter::new(7);
        let peer = |i: u32| Ipv4Addr((0x0a00_0000 + i).to_be_bytes());
        // Every error spends at most 2 credits, so at least 25 of 50 go; 1 on average, so about 50.
        let first = (0..200).filter(|i| l.allow_v4(0, 1, peer(*i))).count();
        assert!((25..=100).contains(&first), "{first}");
        // No refill before 20 ms; then 1 credit a ms.
        assert_eq!((200..300).filter(|i| l.allow_v4(19, 1, peer(*i))).count(), 0);
        let refilled = (300..400).filter(|i| l.allow_v4(40, 1, peer(*i))).count();
        assert!((20..=60).contains(&refilled), "{refilled}");
        // Never more than the burst, however long the wait.
        let later = (400..600).filter(|i| l.allow_v4(100_000, 1, peer(*i))).count();
        assert!((25..=100).contains(&later), "{later}");
        // The same seed, the same decisions; another seed, others.
        let run = |seed| {
            let mut l = IcmpLimiter::new(seed);
            (0..200).map(|i| l.allow_v4(0, 1, peer(i))).collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn a_limited_sender_does_not_spend_the_overall_budget() {
        let mut l = IcmpLimiter::new(7);
        // 6 errors about A went (at most 12 credits spent); the 994 refused ones spent none.
        assert_eq!(sent(&mut l, 0, A, 1000), 6);
        let others = (0..19).filter(|i| l.allow_v4(0, 1, Ipv4Addr::new(10, 1, 0, *i))).count();
        assert_eq!(others, 19, "38 credits left at least: 19 errors at 2 credits");
    }

    #[test]
    fn a_sender_that_takes_a_slot_starts_full() {
        let mut l = IcmpLimiter::new(7);
        assert_eq!(sent(&mut l, 0, A, 10), 6);
        // Another destination in A's slot (found by search), then A again: A starts anew.
        let mapped = |a: Ipv4Addr| [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a.0[0], a.0[1], a.0[2], a.0[3]];
        let want = slot(1, &mapped(A), false);
        let other = (0u32..)
            .map(|i| Ipv4Addr((0x0b00_0000 + i).to_be_bytes()))
            .find(|b| slot(1, &mapped(*b), false) == want)
            .unwrap();
        assert_eq!(sent(&mut l, 0, other, 1), 1);
        assert_eq!(sent(&mut l, 0, A, 10), 6);
    }
}
