//! The real binary forwarding between DPDK vdevs: pcap in, pcap out, byte for byte; a million packets
//! through net_null with every mbuf back in the pool; a preloaded pcap replayed forever.

mod common;

use std::time::Duration;

use common::*;

#[test]
fn pcap_in_is_pcap_out_byte_for_byte_both_ways() {
    require_root();
    let dir = TempDir::new("pcap");
    let (a, b) = (frames(500, 1), frames(300, 2));
    write_pcap(&dir.join("a.pcap"), &a);
    write_pcap(&dir.join("b.pcap"), &b);
    let p = |f: &str| dir.join(f).display().to_string();
    let ports = [
        format!("net_pcap0,rx_pcap={},tx_pcap={}", p("a.pcap"), p("a_out.pcap")),
        format!("net_pcap1,rx_pcap={},tx_pcap={}", p("b.pcap"), p("b_out.pcap")),
    ];
    let json = dir.join("stats.json");
    let args = vec![
        "--port".into(),
        ports[0].clone(),
        "--port".into(),
        ports[1].clone(),
        "--duration".into(),
        "2".into(),
        "--stats-json".into(),
        json.display().to_string(),
    ];
    run_to_end(&args, &eal(&prefix("pcap"), &[]), Duration::from_secs(60));

    // What came in on port 0 left by port 1, in order, unchanged; and the other way.
    assert_eq!(read_pcap(&dir.join("b_out.pcap")), a);
    assert_eq!(read_pcap(&dir.join("a_out.pcap")), b);
    let r = report(&json);
    let (p0, p1) = (port(&r, "net_pcap0"), port(&r, "net_pcap1"));
    assert_eq!((u(&p0["rx"]), u(&p1["tx"])), (500, 500));
    assert_eq!((u(&p1["rx"]), u(&p0["tx"])), (300, 300));
    assert_eq!(u(&p1["hw"]["opackets"]), 500);
    assert_eq!(u(&r["mempool"]["in_use"]), 0);
}

/// Runs until a million packets went through (whatever time that takes on a busy machine: the switch's
/// counter lines in the log say when), then stops on SIGTERM.
#[test]
fn a_million_packets_leave_no_mbuf_behind() {
    require_root();
    let dir = TempDir::new("null");
    let json = dir.join("stats.json");
    let args: Vec<String> =
        vec!["--stats-interval".into(), "1".into(), "--stats-json".into(), json.display().to_string()];
    let vdevs = ["net_null0".to_string(), "net_null1,no-rx=1".to_string()];
    let mut child = spawn(&args, &eal(&prefix("null"), &vdevs), std::process::Stdio::piped());
    let sent = sink_tx(&mut child, "net_null1");
    let start = std::time::Instant::now();
    while *sent.lock().unwrap() < 1_000_000 {
        assert!(start.elapsed() < Duration::from_secs(120), "not a million packets in 120 s");
        assert!(child.try_wait().unwrap().is_none(), "the switch exited");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = stop(child, libc::SIGTERM);
    assert!(out.status.success(), "exit {}", out.status);
    let r = report(&json);
    let (src, sink) = (port(&r, "net_null0"), port(&r, "net_null1"));
    let rx = u(&src["rx"]);
    assert!(u(&sink["tx"]) >= 1_000_000, "{r:#}");
    // Every packet the driver handed over is received, and either sent (as the sink's driver counts it)
    // or dropped for a named reason.
    assert_eq!(u(&src["hw"]["ipackets"]), rx);
    let dropped: u64 = src["drops"].as_object().unwrap().values().map(u).sum();
    assert_eq!(u(&sink["hw"]["opackets"]) + dropped, rx, "unaccounted packets: {r:#}");
    assert_eq!(u(&sink["hw"]["opackets"]), u(&sink["tx"]));
    // net_null holds no mbuf between bursts: the pool is back to where it was before the first packet.
    assert_eq!(u(&r["mempool"]["in_use_at_start"]), 0);
    assert_eq!(u(&r["mempool"]["in_use"]), 0);
    assert!(u(&r["latency"]["samples"]) > 0);
}

/// Follows the switch's counter lines (`--stats-interval`) on its stderr: the `tx` of port `name`.
fn sink_tx(child: &mut std::process::Child, name: &str) -> std::sync::Arc<std::sync::Mutex<u64>> {
    use std::io::BufRead;
    let tx = std::sync::Arc::new(std::sync::Mutex::new(0));
    let (out, stderr, head) = (tx.clone(), child.stderr.take().unwrap(), format!("port {name}: "));
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("{line}");
            if let Some(rest) = line.strip_prefix(&head) {
                // "rx N tx N | ..."
                if let Some(n) = rest.split_whitespace().nth(3).and_then(|n| n.parse().ok()) {
                    *out.lock().unwrap() = n;
                }
            }
        }
    });
    tx
}

#[test]
fn preloaded_pcap_replays_forever_and_its_mbufs_come_back() {
    require_root();
    let dir = TempDir::new("infinite");
    write_pcap(&dir.join("in.pcap"), &frames(1000, 3));
    let json = dir.join("stats.json");
    let args: Vec<String> = vec!["--duration".into(), "1".into(), "--stats-json".into(), json.display().to_string()];
    let vdevs =
        [format!("net_pcap0,rx_pcap={},infinite_rx=1", dir.join("in.pcap").display()), "net_null0,no-rx=1".into()];
    run_to_end(&args, &eal(&prefix("infinite"), &vdevs), Duration::from_secs(60));
    let r = report(&json);
    assert!(u(&port(&r, "net_null0")["tx"]) > 100_000, "{r:#}");
    // The 1,000 preloaded frames were out of the pool while the port ran, and came back at close.
    assert!(u(&r["mempool"]["in_use_at_start"]) >= 1000, "{r:#}");
    assert_eq!(u(&r["mempool"]["in_use"]), 0);
}

#[test]
fn bad_arguments_fail_with_a_clear_message() {
    let out = std::process::Command::new(bin()).args(["run", "--patch", "a"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected A,B"));
    let out = std::process::Command::new(bin())
        .args(["run", "--port", "net_null0", "--patch", "net_null0,nope", "--"])
        .args(eal(&prefix("badpatch"), &[]))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("\"nope\", which is not among the configured ports"), "{err}");
    let out = std::process::Command::new(bin()).args(["run", "--rx-desc", "1000"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("rx_desc = 1000"));
}

#[test]
fn two_workers_share_multi_queue_ports_and_sigterm_stops_them() {
    require_root();
    let dir = TempDir::new("multiq");
    let json = dir.join("stats.json");
    let args: Vec<String> = vec!["--stats-json".into(), json.display().to_string()];
    // Two worker lcores on CPU 1 (lcores 1 and 2), so that the test also runs on a two-core machine.
    let mut eal_args = eal(&prefix("multiq"), &["net_null0".into(), "net_null1".into()]);
    eal_args.splice(0..2, ["--lcores".to_string(), "0@0,1@1,2@1".to_string()]);
    let child = spawn(&args, &eal_args, std::process::Stdio::piped());
    std::thread::sleep(Duration::from_secs(3));
    let out = stop(child, libc::SIGTERM);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let r = report(&json);
    let workers = r["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 2, "{r:#}");
    for w in workers {
        // Each worker polls its own queue of each port and forwards what it gets.
        assert_eq!(w["queues"].as_array().unwrap().len(), 2, "{r:#}");
        assert!(u(&w["rx"]) > 0 && u(&w["rx"]) == u(&w["tx"]) + u(&w["dropped"]), "{r:#}");
    }
    assert!(err.contains("rxq=2 txq=2"), "{err}");
    assert_eq!(u(&r["mempool"]["in_use"]), 0);
}
