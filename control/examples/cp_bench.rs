//! Control-plane latency without the dataplane: N ports bound to this node (N/100 per network) in the
//! embedded DB, the local controller following it; then port updates (admin state toggles), each timed
//! from the DB write to the controller's publication of the patched tables, and the write alone (the
//! embedded DB fsyncs its log before it acknowledges).
//!
//!   cargo run --release -p control --example cp_bench -- [PORTS] [UPDATES]   (default 10000 200)

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use control::compile::Summary;
use control::controller::{Binding, Controller, Node};
use control::db::embedded::EmbeddedDb;
use control::model::{FixedIp, Network, Port, Store, Subnet};

/// Every port is plumbed at the index its name says; a publication is timed when it arrives.
struct BenchNode(crossbeam_channel::Sender<(Instant, Summary)>);

impl Node for BenchNode {
    fn bind(&mut self, _: &[Binding<'_>], _: bool) {}

    fn local(&self, p: &Port) -> Option<u16> {
        p.id[1..].parse::<u16>().ok()
    }

    fn publish(&mut self, _: pipelines::tables::Tables, s: Summary) {
        let _ = self.0.send((Instant::now(), s));
    }
}

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let (n, updates) = (args.first().copied().unwrap_or(10_000), args.get(1).copied().unwrap_or(200));
    let dir = std::env::temp_dir().join(format!("df-cp-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let db = Arc::new(EmbeddedDb::open(&dir).unwrap());
    let s = Store::new(&*db);
    let nets = n.div_ceil(100);
    let t0 = Instant::now();
    for k in 0..nets {
        s.create::<Network>(serde_json::from_value(serde_json::json!({"id": format!("net{k}")})).unwrap()).unwrap();
        let sub = serde_json::json!({"id": format!("s{k}"), "network_id": format!("net{k}"), "ip_version": 4,
                                     "cidr": format!("10.{}.{}.0/24", k / 256, k % 256)});
        s.create::<Subnet>(serde_json::from_value(sub).unwrap()).unwrap();
    }
    for i in 0..n {
        let k = i / 100;
        let mut p = Port::new(format!("p{i:05}"), format!("net{k}"));
        p.mac_address = format!("fa:16:3e:{:02x}:{:02x}:{:02x}", i >> 16, (i >> 8) & 0xff, i & 0xff);
        p.fixed_ips = vec![FixedIp {
            subnet_id: format!("s{k}"),
            ip_address: format!("10.{}.{}.{}", k / 256, k % 256, 2 + i % 100),
        }];
        p.host_id = "here".into();
        s.create(p).unwrap();
    }
    eprintln!("{n} ports in {nets} networks written in {:?}", t0.elapsed());

    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = crossbeam_channel::unbounded::<(Instant, Summary)>();
    let th = {
        let (db, stop) = (db.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut c = Controller::new(&*db, "here");
            c.run(&mut BenchNode(tx), &stop).unwrap();
        })
    };
    let (at, first) = rx.recv_timeout(Duration::from_secs(120)).unwrap();
    eprintln!("first compilation: {} local ports, {:?} after start", first.local_ports, at - t0);
    let (mut lat, mut writes) = (Vec::new(), Vec::new());
    for u in 0..updates {
        let id = format!("p{:05}", (u * 7919) % n);
        let mut p: Port = s.get(&id).unwrap().unwrap();
        p.admin_state_up = !p.admin_state_up;
        let t = Instant::now();
        s.update(p).unwrap();
        writes.push(t.elapsed());
        let (at, _) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        lat.push(at - t);
    }
    stop.store(true, Ordering::Relaxed);
    th.join().unwrap();
    lat.sort();
    writes.sort();
    let pct = |v: &[Duration], q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)];
    println!(
        "ports {n}: port update -> tables published: p50 {:?} p99 {:?} max {:?} ({} updates); \
         the DB write alone: p50 {:?} p99 {:?}",
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        lat[lat.len() - 1],
        lat.len(),
        pct(&writes, 0.5),
        pct(&writes, 0.99),
    );
    let _ = std::fs::remove_dir_all(&dir);
}
