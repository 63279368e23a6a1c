//! ns per packet of what a worker does per burst, on a real EAL (`--no-huge`, net_null vdevs): the
//! rx/tx step of patch mode, the latency sample, the counter update, and a burst's alloc/free.
//! `cargo bench -p benches`; criterion reports time per burst of 32 and packets per second.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dataplane::counters::{bump, PortCounters};
use dpdk::{Burst, Eal, Mempool, Port, PortConfig, BURST_SIZE};

fn fast_path(c: &mut Criterion) {
    let prefix = format!("dfbench{}", std::process::id());
    let eal = Eal::init(
        "bench",
        &["-l", "0", "--no-huge", "-m", "512", "--no-pci", "--file-prefix", &prefix, "--log-level", "warning"],
    )
    .expect("EAL");
    let pool = Mempool::new(&eal, "bench_pool", 16383, 256, dpdk::DEFAULT_DATA_ROOM).unwrap();
    let mut src = Port::open(&eal, "net_null0,size=64").unwrap();
    let mut sink = Port::open(&eal, "net_null1,no-rx=1").unwrap();
    for p in [&mut src, &mut sink] {
        p.configure(&PortConfig::default(), &pool).unwrap();
        p.start().unwrap();
    }
    let (mut rx, mut tx) = (src.rx_queue(0).unwrap(), sink.tx_queue(0).unwrap());
    let mut burst: Burst = Burst::new();

    let mut g = c.benchmark_group("per_burst_of_32");
    g.throughput(Throughput::Elements(BURST_SIZE as u64));
    g.bench_function("patch_rx_tx_net_null", |b| {
        b.iter(|| {
            rx.rx_burst(&mut burst);
            tx.tx_burst(&mut burst);
            burst.free_all()
        })
    });
    g.bench_function("latency_sample", |b| {
        let mut h = dataplane::latency::new_histogram();
        let mut t = 0u64;
        b.iter(|| {
            let t0 = dpdk::rdtsc();
            t = t.wrapping_add(1);
            h.saturating_record(black_box(dpdk::rdtsc().wrapping_sub(t0) + (t & 255)));
        })
    });
    g.bench_function("counters", |b| {
        let c = PortCounters::default();
        b.iter(|| {
            bump(&c.rx, black_box(32));
            bump(&c.rx_bursts, 1);
            bump(&c.tx, black_box(32));
        })
    });
    g.bench_function("alloc_push_free", |b| {
        b.iter(|| {
            for _ in 0..BURST_SIZE {
                let m = pool.alloc().unwrap();
                if burst.push(m).is_err() {
                    unreachable!("burst of 32 holds 32");
                }
            }
            burst.free_all()
        })
    });
    g.finish();
    drop((rx, tx));
    drop((src, sink));
    drop(pool);
    // SAFETY: every DPDK object above was dropped.
    unsafe { eal.cleanup() };
    let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{prefix}"));
}

criterion_group!(benches, fast_path);
criterion_main!(benches);
