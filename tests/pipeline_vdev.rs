//! The table pipeline through the real binary and DPDK: frames in on a `net_pcap` port, the expected
//! frames out of each port, byte for byte, with the drops counted by name.

mod common;

use std::time::Duration;

use common::*;
use pipelines::fixtures::*;
use pipelines::wire::{ArpOperation, Ipv4Addr, Mac};

const CONFIG: &str = r#"
[dataplane]
mode = "pipeline"

[[port]]
name = "net_pcap0"
mac = "fa:16:3e:00:00:01"
network = 1
ips = ["10.0.0.1", "2001:db8::1"]

[[port]]
name = "net_pcap1"
mac = "fa:16:3e:00:00:02"
network = 1
ips = ["10.0.0.2", "2001:db8::2"]
"#;

#[test]
fn pipeline_switches_answers_and_drops_through_dpdk() {
    require_root();
    let dir = TempDir::new("pipeline");
    let spoofed = udp4(Mac([2, 0, 0, 0, 0, 0x66]), VM2, IP1, IP2);
    let bcast = udp4(VM1, Mac::BROADCAST, IP1, Ipv4Addr::BROADCAST);
    let input = vec![
        udp4(VM1, VM2, IP1, IP2),
        spoofed,
        arp_request(VM1, IP1, IP2),
        bcast.clone(),
        neighbor_solicit(VM1, ip6(1), ip6(2)),
        udp4(VM1, VM2, Ipv4Addr::new(10, 0, 0, 99), IP2),
    ];
    write_pcap(&dir.join("a.pcap"), &input);
    write_pcap(&dir.join("b.pcap"), &[]);
    std::fs::write(dir.join("df.toml"), CONFIG).unwrap();
    let p = |f: &str| dir.join(f).display().to_string();
    let json = dir.join("stats.json");
    let args = vec![
        "--config".into(),
        p("df.toml"),
        "--port".into(),
        format!("net_pcap0,rx_pcap={},tx_pcap={}", p("a.pcap"), p("a_out.pcap")),
        "--port".into(),
        format!("net_pcap1,rx_pcap={},tx_pcap={}", p("b.pcap"), p("b_out.pcap")),
        "--duration".into(),
        "2".into(),
        "--stats-json".into(),
        json.display().to_string(),
    ];
    // The config file comes before the subcommand's own flags.
    let mut argv = vec![args[0].clone(), args[1].clone()];
    argv.extend(args[2..].iter().cloned());
    run_to_end_global(&argv, &eal(&prefix("pipeline"), &[]), Duration::from_secs(60));

    // To VM2: the unicast and the broadcast; back to VM1: the switch's ARP reply and NA.
    assert_eq!(read_pcap(&dir.join("b_out.pcap")), vec![udp4(VM1, VM2, IP1, IP2), bcast]);
    assert_eq!(
        read_pcap(&dir.join("a_out.pcap")),
        vec![arp(ArpOperation::Reply, VM2, IP2, VM1, IP1, VM1), neighbor_advert(VM2, ip6(2), VM1, ip6(1), false)]
    );
    let r = report(&json);
    let a = port(&r, "net_pcap0");
    assert_eq!(u(&a["rx"]), 6);
    assert_eq!(u(&a["drops"]["port_security.mac_spoof"]), 1);
    assert_eq!(u(&a["drops"]["port_security.ip_spoof"]), 1);
    assert_eq!(u(&r["mempool"]["in_use"]), 0);
}

/// SIGHUP re-reads the topology and publishes it while traffic runs at full rate: hundreds of
/// publications lose no packet (every frame the source's driver replayed reaches the sink's driver), and a changed topology takes
/// effect (the sink's port set down: its traffic is dropped as `egress.port_down` from then on).
#[test]
fn sighup_publishes_new_tables_under_traffic_without_loss() {
    require_root();
    let dir = TempDir::new("reload");
    write_pcap(&dir.join("in.pcap"), &[udp4(VM1, VM2, IP1, IP2), udp4(VM1, VM2, IP1, IP2)]);
    let config = |up: bool| {
        format!(
            "[dataplane]\nmode = \"pipeline\"\n\n[[port]]\nname = \"net_pcap0\"\nmac = \"{VM1}\"\nnetwork = 1\n\
             ips = [\"10.0.0.1\"]\n\n[[port]]\nname = \"net_null0\"\nmac = \"{VM2}\"\nnetwork = 1\n\
             ips = [\"10.0.0.2\"]\nadmin_state_up = {up}\n"
        )
    };
    let cfg = dir.join("df.toml");
    std::fs::write(&cfg, config(true)).unwrap();
    let json = dir.join("stats.json");
    let p = |f: &str| dir.join(f).display().to_string();
    let args = vec![
        "--config".into(),
        p("df.toml"),
        "--stats-json".into(),
        json.display().to_string(),
        "--port".into(),
        format!("net_pcap0,rx_pcap={},infinite_rx=1", p("in.pcap")),
        "--port".into(),
        "net_null0,no-rx=1".into(),
    ];
    let pfx = prefix("reload");
    let mut child = spawn(&args, &eal(&pfx, &[]), std::process::Stdio::piped());
    assert!(wait_until_forwarding(&mut child), "the switch did not start");
    let hup = |n: usize| {
        for _ in 0..n {
            // SAFETY: kill(2) on our own, not yet reaped, child.
            unsafe { libc::kill(child.id() as i32, libc::SIGHUP) };
            std::thread::sleep(Duration::from_millis(2));
        }
    };
    hup(300);
    std::thread::sleep(Duration::from_millis(300));
    let before = std::fs::metadata(&cfg).unwrap().modified().unwrap();
    std::fs::write(&cfg, config(false)).unwrap();
    assert!(std::fs::metadata(&cfg).unwrap().modified().unwrap() >= before);
    hup(1);
    std::thread::sleep(Duration::from_millis(500));
    let out = stop(child, libc::SIGTERM);
    assert!(out.status.success(), "exit {}", out.status);
    let r = report(&json);
    let (src, sink) = (port(&r, "net_pcap0"), port(&r, "net_null0"));
    let version = u(&r["tables_version"]);
    // Signals sent closer together than the reload loop takes one may merge: most must have published.
    assert!((150..=301).contains(&version), "tables version {version} after 301 SIGHUPs");
    let (rx, tx, down) = (u(&src["rx"]), u(&sink["tx"]), u(&src["drops"]["egress.port_down"]));
    assert!(tx > 100_000 && down > 1_000, "rx {rx} tx {tx} port_down {down}");
    // Counted by the drivers at both ends, not by the switch: every frame the pcap port replayed was
    // either taken by the sink (before its port went down) or dropped as port_down (after).
    let (replayed, taken) = (u(&src["hw"]["ipackets"]), u(&sink["hw"]["opackets"]));
    assert_eq!(replayed, taken + down, "frames lost across {version} publications: {src} {sink}");
    assert_eq!((rx, tx), (replayed, taken), "the switch's counters disagree with the drivers'");
    let total_drops: u64 = src["drops"].as_object().unwrap().values().map(u).sum();
    assert_eq!(total_drops, down, "drops other than port_down: {src}");
    assert_eq!(u(&r["mempool"]["in_use"]), 0);
}

/// Two workers, each polling one single-queue port: a client's datagrams come in on one worker, the
/// server's answers on the other. The client's group lets nothing in, so the answers pass only where its
/// datagrams were tracked: they meet on the worker that owns the address pair (`pipelines::steer`), and
/// reach the client. Both pcaps replay in a loop; only the answers decided before the first datagram may
/// be refused.
#[test]
fn two_workers_meet_a_connection_on_the_worker_that_owns_it() {
    require_root();
    let dir = TempDir::new("handoff");
    let config = r#"
[dataplane]
mode = "pipeline"

[[port]]
name = "net_pcap0"
mac = "fa:16:3e:00:00:01"
network = 1
ips = ["10.0.0.1"]
security_groups = ["client"]

[[port]]
name = "net_pcap1"
mac = "fa:16:3e:00:00:02"
network = 1
ips = ["10.0.0.2"]
security_groups = ["server"]

[[security_group]]
name = "client"
rules = [{ direction = "egress", protocol = "udp" }]

[[security_group]]
name = "server"
rules = [{ direction = "ingress", protocol = "udp", port_range_min = 5000, port_range_max = 5000 }, { direction = "egress" }]
"#;
    std::fs::write(dir.join("df.toml"), config).unwrap();
    write_pcap(&dir.join("client.pcap"), &[udp4_ports(VM1, VM2, IP1, IP2, 40000, 5000)]);
    write_pcap(&dir.join("server.pcap"), &[udp4_ports(VM2, VM1, IP2, IP1, 5000, 40000)]);
    let p = |f: &str| dir.join(f).display().to_string();
    let json = dir.join("stats.json");
    // One rx queue each (one rx_pcap), a tx queue per worker (two tx_pcap).
    let pcap =
        |i: usize, rx: &str| format!("net_pcap{i},rx_pcap={},infinite_rx=1,tx_pcap=/dev/null,tx_pcap=/dev/null", p(rx));
    let args: Vec<String> = vec![
        "--config".into(),
        p("df.toml"),
        "--port".into(),
        pcap(0, "client.pcap"),
        "--port".into(),
        pcap(1, "server.pcap"),
        "--duration".into(),
        "2".into(),
        "--stats-json".into(),
        json.display().to_string(),
    ];
    // Two worker lcores on CPU 1, so that the test also runs on a two-core machine.
    let mut eal_args = eal(&prefix("handoff"), &[]);
    eal_args.splice(0..2, ["--lcores".to_string(), "0@0,1@1,2@1".to_string()]);
    run_to_end_global(&args, &eal_args, Duration::from_secs(60));

    let r = report(&json);
    let queues: Vec<&serde_json::Value> = r["workers"].as_array().unwrap().iter().map(|w| &w["queues"]).collect();
    assert_eq!(queues, [&serde_json::json!(["net_pcap0:0"]), &serde_json::json!(["net_pcap1:0"])], "{r:#}");
    let (client, server) = (port(&r, "net_pcap0"), port(&r, "net_pcap1"));
    let (answers, datagrams) = (u(&client["tx"]), u(&server["tx"]));
    let refused = u(&server["drops"]["security_groups.ingress_denied"]);
    let handed = u(&client["handed_off"]) + u(&server["handed_off"]);
    let summary = format!("answers {answers}, datagrams {datagrams}, answers refused {refused}, handed off {handed}");
    eprintln!("{summary}");
    assert!(datagrams > 10_000, "{summary}: {client:#} {server:#}");
    assert!(answers > 10_000 && refused * 10 < answers, "{summary}: {client:#} {server:#}");
    assert!(handed > 10_000, "{summary}");
    assert_eq!(u(&r["mempool"]["in_use"]), 0);
}
