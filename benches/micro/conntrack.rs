//! Connection tracking in the whole pipeline, on heap buffers (no DPDK), with `benches/sg.toml`'s security
//! groups (both VMs filtered: every packet tracked in two zones):
//! - `new_connections`: bursts of 32 TCP SYNs, each opening a connection (the rules checked, two entries
//!   made), from a table that starts empty: ns per new connection, so new connections per second per core;
//! - `established/N`: bursts of 32 UDP packets of N connections already tracked (N = 1,000, 100,000 and
//!   1,000,000; random order, so the large tables miss the caches as a real mix would): ns per packet.
//!
//! Prints the table's memory per connection first. `cargo bench -p benches --bench conntrack`
//! (`CONNTRACK_SIZES=1000` for one size).

use std::hint::black_box;
use std::time::{Duration, Instant};

use benches::routes::Rng;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pipelines::buf::HeapBuf;
use pipelines::conntrack::tcp::SYN;
use pipelines::fixtures::{tcp4, udp4_ports};
use pipelines::meta::Meta;
use pipelines::stages::{decide, WorkerState};
use pipelines::wire::Ipv4Addr;

mod traffic;
use traffic::*;

/// The `i`th of distinct (source, destination, source port) triples in 10.0.0.0/24 (as the harness's
/// flows).
fn ends(i: usize) -> (Ipv4Addr, Ipv4Addr, u16) {
    let src = Ipv4Addr::new(10, 0, 0, 1 + (i % 200) as u8);
    let dst = Ipv4Addr::new(10, 0, 0, 201 + (i / 200 % 50) as u8);
    (src, dst, 1024 + (i / 10_000) as u16)
}

/// Runs `frames` through the pipeline in bursts of 32 on `w`; the time taken.
fn run(t: &pipelines::tables::Tables, w: &mut WorkerState, frames: &[Vec<u8>]) -> Duration {
    let mut meta = [Meta::new(0); BURST];
    let mut bufs: Vec<HeapBuf> = frames[..BURST].iter().map(|f| HeapBuf::new(f)).collect();
    let start = Instant::now();
    for chunk in frames.chunks_exact(BURST) {
        for (b, f) in bufs.iter_mut().zip(chunk) {
            assert!(b.refill(f));
        }
        meta.iter_mut().for_each(|m| *m = Meta::new(0));
        black_box(decide(t, w, &mut bufs, &mut meta).one_port());
    }
    start.elapsed()
}

fn conntrack(c: &mut Criterion) {
    let t = tables("sg.toml", &["net_pcap0", "net_null0"]);
    let (vm1, vm2) = (pipelines::fixtures::VM1, VM2);
    println!(
        "conntrack: {} bytes per connection (entry, buckets, free list)",
        WorkerState::new(1).conntrack.bytes_per_connection()
    );

    const NEW: usize = 65_536;
    let syns: Vec<Vec<u8>> = (0..NEW)
        .map(|i| {
            let (s, d, sp) = ends(i);
            tcp4(vm1, vm2, s, d, sp, 443 + (i % 7) as u16, SYN)
        })
        .collect();
    let mut g = c.benchmark_group("conntrack");
    g.throughput(Throughput::Elements(NEW as u64));
    g.bench_function("new_connections", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut w = WorkerState::with_conntrack(1, 4 * NEW);
                total += run(&t, &mut w, &syns);
                assert_eq!(w.conntrack.stats.created, 2 * NEW as u64, "every SYN opened a connection, twice");
            }
            total
        })
    });
    // CONNTRACK_SIZES=1000,100000 picks the table sizes (a profile of one size only).
    let sizes: Vec<usize> = std::env::var("CONNTRACK_SIZES")
        .map(|v| v.split(',').filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_else(|_| vec![1_000, 100_000, 1_000_000]);
    for n in sizes {
        const FRAMES: usize = 65_536;
        let mut rng = Rng::new(n as u64);
        let flows: Vec<Vec<u8>> = (0..n)
            .map(|i| {
                let (s, d, sp) = ends(i);
                udp4_ports(vm1, vm2, s, d, sp, 5001 + (i % 7) as u16)
            })
            .collect();
        let mut w = WorkerState::with_conntrack(1, 3 * n);
        for chunk in flows.chunks(FRAMES) {
            let whole = chunk.len() / BURST * BURST;
            run(&t, &mut w, &chunk[..whole]);
        }
        let live = w.conntrack.live();
        println!("conntrack: {live} connections tracked for {n} flows");
        let sample: Vec<Vec<u8>> = (0..FRAMES).map(|_| flows[rng.below(n as u64) as usize].clone()).collect();
        g.throughput(Throughput::Elements(FRAMES as u64));
        g.bench_function(format!("established/{n}"), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| run(&t, &mut w, &sample)).sum())
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = conntrack
}
criterion_main!(benches);
