#![no_main]
//! Whole bursts through every stage: up to 32 arbitrary frames from arbitrary ports, on one of three
//! topologies (two VM ports with and without port security; two networks joined by a router with an
//! extra route). Every frame is decided (never left pending, never a panic), a rewritten frame never
//! grows past its buffer (HeapBuf panics if one would), and the burst fast path decides every frame,
//! bytes included, exactly as each frame decided alone through every stage (`fixtures::decide_burst`, the
//! oracle of `pipelines/tests/burst_equivalence.rs`, here on whatever libFuzzer finds).
//!
//! Input: byte 0 picks the topology and the clock; then records `[in_port, length, bytes...]`.
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use pipelines::fixtures::{decide_burst, routed_tables, two_port_tables};
use pipelines::meta::Action;
use pipelines::tables::Tables;

static TABLES: LazyLock<[Tables; 3]> =
    LazyLock::new(|| [two_port_tables(true), two_port_tables(false), routed_tables()]);

fuzz_target!(|data: &[u8]| {
    let Some((&head, mut rest)) = data.split_first() else { return };
    let t = &TABLES[head as usize % 3];
    let now_ms = (head as u64 / 3) * 250;
    let mut frames = Vec::new();
    while let [port, len, tail @ ..] = rest {
        let n = (*len as usize).min(tail.len());
        frames.push(((*port % 4) as u16, &tail[..n]));
        rest = &tail[n..];
        if frames.len() == 32 {
            break;
        }
    }
    if frames.is_empty() {
        return;
    }
    let (fast_meta, fast_bytes) = decide_burst(t, now_ms, &frames, true);
    let (slow_meta, slow_bytes) = decide_burst(t, now_ms, &frames, false);
    for i in 0..frames.len() {
        assert_ne!(fast_meta[i].action, Action::Continue, "frame {i} left undecided");
        assert_eq!(fast_meta[i], slow_meta[i], "frame {i}: the fast path decided otherwise");
        assert_eq!(fast_bytes[i], slow_bytes[i], "frame {i}: the fast path wrote other bytes");
    }
});
