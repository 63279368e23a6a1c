//! Instructions per packet of the pipeline, counted by callgrind (repeatable where timings on this shared
//! machine are not): `benches/ir.sh` runs this under `valgrind --tool=callgrind` for each MODE and
//! subtracts the `restore` run (the cost of replaying the bursts).
//!
//!   pipeline_ir MODE BURSTS    MODE: restore | l2 | l2-per-packet | l3 | l3-per-packet
//!                              | l3-routes:N:v4|v6 (a router with N routes, `benches::routes`)
//!                              | restore-routes:N:v4|v6 (its replay cost)
//!                              | mixed:N | mixed-per-packet:N | restore-mixed:N (`benches::mixed`)
//!                              | encap | restore-encap | decap | restore-decap (the VXLAN scenarios:
//!                              benches/vxlan-encap-1kflows.toml, vxlan-decap-1kflows.toml)
//!                              | sg (the L2 traffic through benches/sg.toml's security groups)
//!                              | snat | snat-per-packet (the L3 traffic routed out of the router's
//!                              gateway and translated, `traffic::snat_tables`)

use std::hint::black_box;

use pipelines::buf::PacketBuf;
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
            eprintln!("usage: pipeline_ir MODE BURSTS (modes: see the file's head)");
            std::process::exit(2);
        }
    };
    let names = ["net_pcap0", "net_null0"];
    let routed = routed(mode.strip_prefix("restore-").map_or(mode.to_owned(), |m| format!("l3-{m}")).as_str(), &names);
    let spec = mode.strip_prefix("restore-").unwrap_or(mode);
    let mixed =
        mixed(spec.strip_prefix("mixed-per-packet").map_or(spec.to_owned(), |m| format!("mixed{m}")).as_str(), &names);
    let (t, mut bursts) = if let Some(r) = routed.or(mixed) {
        r
    } else if spec == "encap" {
        (tables("vxlan-encap-1kflows.toml", &names), Bursts::new(VM2, false))
    } else if spec == "sg" {
        (tables("sg.toml", &names), Bursts::new(VM2, false))
    } else if spec == "decap" {
        (tables("vxlan-decap-1kflows.toml", &names), Bursts::of(vxlan_frames()))
    } else if spec.starts_with("snat") {
        (snat_tables(&names), Bursts::new(ROUTER, true))
    } else if mode.starts_with("l3") {
        (tables("l3.toml", &names), Bursts::new(ROUTER, true))
    } else {
        (tables("l2pipe.toml", &names), Bursts::new(VM2, false))
    };
    let mut meta = vec![Meta::new(0); BURST];
    let mut w = WorkerState::new(1);
    if spec.starts_with("snat") {
        // What is counted must be the translation, not a drop: the first burst leaves by the uplink
        // from the gateway's address.
        let pkts = bursts.restore();
        decide(&t, &mut w, pkts, &mut meta);
        for (p, m) in pkts.iter().zip(&meta) {
            assert_eq!((m.action, m.out_port), (pipelines::meta::Action::Output, 1), "{:?}", m.reason);
            assert_eq!(&p.data()[26..30], &[10, 2, 0, 254], "translated source");
        }
    }
    for _ in 0..n {
        let pkts = bursts.restore();
        meta.iter_mut().for_each(|m| *m = Meta::new(0));
        match mode {
            m if m.starts_with("restore") => {}
            m if m.starts_with("l3-routes:") || m.starts_with("mixed:") => {
                decide(&t, &mut w, pkts, &mut meta);
            }
            m if m.starts_with("mixed-per-packet:") => {
                decide_per_packet(&t, &mut w, pkts, &mut meta);
            }
            "l2" | "l3" | "encap" | "decap" | "sg" | "snat" => {
                decide(&t, &mut w, pkts, &mut meta);
            }
            "l2-per-packet" | "l3-per-packet" | "snat-per-packet" => {
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
