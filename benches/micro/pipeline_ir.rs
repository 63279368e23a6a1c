//! Instructions per packet of the pipeline, counted by callgrind (repeatable where timings on this shared
//! machine are not): `benches/ir.sh` runs this under `valgrind --tool=callgrind` for each MODE and
//! subtracts the `restore` run (the cost of replaying the bursts).
//!
//!   pipeline_ir MODE BURSTS    MODE: restore | l2 | l2-per-packet | l3 | l3-per-packet

use std::hint::black_box;

use pipelines::meta::Meta;
use pipelines::stages::{decide, decide_per_packet, WorkerState};

#[path = "traffic.rs"]
mod traffic;
use traffic::*;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (mode, n) = match (args.get(1), args.get(2).and_then(|n| n.parse::<usize>().ok())) {
        (Some(m), Some(n)) => (m.as_str(), n),
        _ => {
            eprintln!("usage: pipeline_ir restore|l2|l2-per-packet|l3|l3-per-packet BURSTS");
            std::process::exit(2);
        }
    };
    let names = ["net_pcap0", "net_null0"];
    let (t, mut bursts) = if mode.starts_with("l3") {
        (tables("l3.toml", &names), Bursts::new(ROUTER, true))
    } else {
        (tables("l2pipe.toml", &names), Bursts::new(VM2, false))
    };
    let mut meta = vec![Meta::new(0); BURST];
    let mut w = WorkerState::new(1);
    for _ in 0..n {
        let pkts = bursts.restore();
        meta.iter_mut().for_each(|m| *m = Meta::new(0));
        match mode {
            "restore" => {}
            "l2" | "l3" => {
                decide(&t, &mut w, pkts, &mut meta);
            }
            "l2-per-packet" | "l3-per-packet" => {
                decide_per_packet(&t, &mut w, pkts, &mut meta);
            }
            _ => {
                eprintln!("unknown mode {mode}");
                std::process::exit(2);
            }
        }
        black_box(&meta);
    }
}
