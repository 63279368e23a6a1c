//! Golden tests: every case in `tests/golden/<case>/` (made by `tests/golden/make.py` with scapy, from the
//! protocols' rules rather than from this switch) sends `in.pcap` into port `net_pcap0` of the topology
//! in `tests/golden/topology.toml` (or the case's own `topology.toml`) and expects each port's frames,
//! byte for byte and in order, in `net_pcapN.pcap`, with the drops of `drops.json` counted by name. Each
//! case runs twice: through the pipeline over heap buffers (bursts of 32, dispatched as the dataplane
//! does, the slow path's answers sent out of their port) and through the real binary over DPDK with one
//! `net_pcap` vdev per port. The slow path's unsolicited router advertisements come on a timer: the DPDK
//! run leaves them out of what it compares.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use control::config::StaticTopology;
use pipelines::buf::HeapBuf;
use pipelines::drop::{DropCounters, Reason};
use pipelines::fate::Fate;
use pipelines::meta::Meta;
use pipelines::stages;

const PORTS: usize = 5;

fn golden() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn names() -> Vec<String> {
    (0..PORTS).map(|i| format!("net_pcap{i}")).collect()
}

struct Case {
    dir: PathBuf,
    /// The topology the case runs on.
    topology: PathBuf,
    input: Vec<Vec<u8>>,
    expected: Vec<Vec<Vec<u8>>>,
    drops: BTreeMap<String, u64>,
}

fn load(name: &str) -> Case {
    let dir = golden().join(name);
    let input = read_pcap(&dir.join("in.pcap"));
    assert!(!input.is_empty(), "{name}: empty input");
    let expected = names().iter().map(|n| read_pcap(&dir.join(format!("{n}.pcap")))).collect();
    let drops = serde_json::from_str(&std::fs::read_to_string(dir.join("drops.json")).unwrap()).unwrap();
    let own = dir.join("topology.toml");
    let topology = if own.exists() { own } else { golden().join("topology.toml") };
    Case { dir, topology, input, expected, drops }
}

/// The pipeline over heap buffers, each packet sent where its `Fate` says (`Decided::fates`, as
/// `dataplane::worker` reads them): what leaves each port, and the non-zero drop counters by name. One
/// worker for the whole case, its clock stopped at 0, so the ICMP error limits decide as at one instant
/// (the DPDK run reads a real clock, but replays a case in far less than the 1 s that would refill a
/// sender's limit).
fn through_heap(case: &Case) -> (Vec<Vec<Vec<u8>>>, BTreeMap<String, u64>) {
    let input = &case.input;
    let cfg = StaticTopology::load(&case.topology).unwrap();
    let t = control::static_topology::compile_over(None, &cfg, &names()).unwrap();
    let mut out = vec![Vec::new(); PORTS];
    let mut drops = DropCounters::default();
    let mut worker = stages::WorkerState::new(1);
    let mut slow = pipelines::services::SlowPath::new(1);
    for burst in input.chunks(32) {
        let mut pkts: Vec<HeapBuf> = burst.iter().map(|f| HeapBuf::new(f)).collect();
        let mut meta = vec![Meta::new(0); pkts.len()];
        let decided = stages::run(&t, &mut worker, &mut pkts, &mut meta, &mut drops);
        for (p, fate) in pkts.iter().zip(decided.fates(&t)) {
            let bytes = p.clone().into_vec();
            match fate {
                Fate::Output(port) | Fate::Reply(port) => out[port as usize].push(bytes),
                Fate::Flood(ports) => {
                    for q in ports {
                        out[q as usize].push(bytes.clone());
                    }
                }
                // The slow path's answer goes out of its port, as the dataplane sends it.
                Fate::Punt(port) => {
                    if let Some(a) = slow.handle(&t, port, &bytes, 0) {
                        out[a.port as usize].push(a.frame);
                    }
                }
                Fate::Drop(_) => {}
            }
        }
    }
    let drops =
        Reason::ALL.iter().filter(|r| drops.get(**r) > 0).map(|r| (r.name().to_string(), drops.get(*r))).collect();
    (out, drops)
}

/// The real binary over DPDK, one `net_pcap` port per topology port.
fn through_dpdk(case: &Case, name: &str) -> (Vec<Vec<Vec<u8>>>, BTreeMap<String, u64>) {
    require_root();
    let tmp = TempDir::new(&format!("golden-{name}"));
    write_pcap(&tmp.join("empty.pcap"), &[]);
    let json = tmp.join("stats.json");
    let mut argv: Vec<String> = vec!["--config".into(), case.topology.display().to_string()];
    for (i, n) in names().iter().enumerate() {
        let rx = if i == 0 { case.dir.join("in.pcap") } else { tmp.join("empty.pcap") };
        let tx = tmp.join(&format!("{n}.out.pcap"));
        argv.push("--port".into());
        argv.push(format!("{n},rx_pcap={},tx_pcap={}", rx.display(), tx.display()));
    }
    argv.extend(["--duration".into(), "2".into(), "--stats-json".into(), json.display().to_string()]);
    let eal = eal(&prefix(&format!("golden-{name}")), &[]);
    run_to_end(&argv, &eal, Duration::from_secs(60));
    let unsolicited_ra =
        |f: &Vec<u8>| f.len() > 54 && f[..6] == [0x33, 0x33, 0, 0, 0, 1] && f[20] == 58 && f[54] == 134;
    let out = names()
        .iter()
        .map(|n| read_pcap(&tmp.join(&format!("{n}.out.pcap"))).into_iter().filter(|f| !unsolicited_ra(f)).collect())
        .collect();
    let r = report(&json);
    let p0 = port(&r, "net_pcap0");
    assert_eq!(u(&p0["rx"]), case.input.len() as u64, "{name}: every frame read");
    assert_eq!(u(&r["mempool"]["in_use"]), 0, "{name}: every mbuf back");
    let drops =
        p0["drops"].as_object().unwrap().iter().filter(|(_, v)| u(v) > 0).map(|(k, v)| (k.clone(), u(v))).collect();
    (out, drops)
}

fn check(name: &str, how: &str, case: &Case, out: &[Vec<Vec<u8>>], drops: &BTreeMap<String, u64>) {
    for (i, (got, want)) in out.iter().zip(&case.expected).enumerate() {
        assert_eq!(got.len(), want.len(), "{name} ({how}): frame count out of net_pcap{i}");
        for (k, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(g == w, "{name} ({how}): frame {k} out of net_pcap{i} differs\n got {g:02x?}\nwant {w:02x?}");
        }
    }
    assert_eq!(drops, &case.drops, "{name} ({how}): drop counters");
}

fn golden_case(name: &str) {
    let case = load(name);
    let (out, drops) = through_heap(&case);
    check(name, "heap buffers", &case, &out, &drops);
    let (out, drops) = through_dpdk(&case, name);
    check(name, "DPDK net_pcap", &case, &out, &drops);
}

macro_rules! golden {
    ($($case:ident),* $(,)?) => {
        $(#[test] fn $case() { golden_case(stringify!($case)); })*

        #[test]
        fn every_case_directory_has_a_test() {
            let known = [$(stringify!($case)),*];
            for e in std::fs::read_dir(golden()).unwrap() {
                let e = e.unwrap();
                if e.file_type().unwrap().is_dir() {
                    let n = e.file_name().into_string().unwrap();
                    assert!(known.contains(&n.as_str()), "tests/golden/{n} has no test in tests/golden.rs");
                }
            }
        }
    };
}

golden!(
    classify,
    port_security,
    arp_responder,
    nd_responder,
    l2_switch,
    l3_route,
    egress,
    pipeline,
    dhcp,
    security_groups
);
