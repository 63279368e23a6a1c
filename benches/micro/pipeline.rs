//! ns per packet of the table pipeline on heap buffers (no DPDK): each stage alone and the whole pipeline,
//! over bursts of 32 frames as the harness sends them (64-byte IPv4/UDP, VM1 → VM2 for L2, VM1 → the
//! router for L3, 1,000 distinct flows), on the tables of `benches/l2pipe.toml` and `benches/l3.toml`.
//! `cargo bench -p benches --bench pipeline`. Every iteration first restores the burst's bytes (the L3
//! stage rewrites them in place): `restore_only` is that cost, to subtract.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pipelines::buf::HeapBuf;
use pipelines::meta::Meta;
use pipelines::stages::{self, arp_responder, classify, egress, l2_switch, l3_route, port_security, WorkerState};
use pipelines::tables::Tables;

mod traffic;
use traffic::*;

fn classified(t: &Tables, pkts: &mut [HeapBuf]) -> Vec<Meta> {
    let mut meta = vec![Meta::new(0); pkts.len()];
    classify::run(t, pkts, &mut meta);
    meta
}

fn pipeline(c: &mut Criterion) {
    let l2 = tables("l2pipe.toml", &["net_pcap0", "net_null0"]);
    let l3 = tables("l3.toml", &["net_pcap0", "net_null0"]);
    let (vm2, router) = (VM2, ROUTER);
    let mut g = c.benchmark_group("pipeline_per_burst_of_32");
    g.throughput(Throughput::Elements(BURST as u64));

    let mut b2 = Bursts::new(vm2, false);
    let mut b3 = Bursts::new(router, true);
    let mut meta = vec![Meta::new(0); BURST];
    let mut w = WorkerState::new(1);
    g.bench_function("restore_only", |b| b.iter(|| black_box(b2.restore().len())));
    g.bench_function("classify", |b| {
        b.iter(|| {
            let pkts = b2.restore();
            meta.iter_mut().for_each(|m| *m = Meta::new(0));
            classify::run(&l2, pkts, &mut meta);
            black_box(&meta);
        })
    });
    // Each later stage on metas classify filled once, restored before every iteration.
    let pre2 = classified(&l2, b2.restore());
    let pre3 = classified(&l3, b3.restore());
    g.bench_function("port_security", |b| {
        b.iter(|| {
            let pkts = b2.restore();
            meta.copy_from_slice(&pre2);
            port_security::run(&l2, pkts, &mut meta);
            black_box(&meta);
        })
    });
    g.bench_function("arp_responder", |b| {
        b.iter(|| {
            let pkts = b2.restore();
            meta.copy_from_slice(&pre2);
            arp_responder::run(&l2, pkts, &mut meta);
            black_box(&meta);
        })
    });
    g.bench_function("l2_switch", |b| {
        b.iter(|| {
            let pkts = b2.restore();
            meta.copy_from_slice(&pre2);
            l2_switch::run(&l2, pkts, &mut meta);
            black_box(&meta);
        })
    });
    g.bench_function("l3_route", |b| {
        b.iter(|| {
            let pkts = b3.restore();
            meta.copy_from_slice(&pre3);
            l3_route::run(&l3, &mut w, pkts, &mut meta);
            black_box(&meta);
        })
    });
    g.bench_function("egress", |b| {
        b.iter(|| {
            let pkts = b2.restore();
            meta.iter_mut().for_each(|m| m.output(1));
            egress::run(&l2, &mut w, pkts, &mut meta);
            black_box(&meta);
        })
    });
    g.bench_function("whole_l2", |b| {
        b.iter(|| {
            let pkts = b2.restore();
            meta.iter_mut().for_each(|m| *m = Meta::new(0));
            stages::decide(&l2, &mut w, pkts, &mut meta);
            black_box(&meta);
        })
    });
    g.bench_function("whole_l3", |b| {
        b.iter(|| {
            let pkts = b3.restore();
            meta.iter_mut().for_each(|m| *m = Meta::new(0));
            stages::decide(&l3, &mut w, pkts, &mut meta);
            black_box(&meta);
        })
    });
    g.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
