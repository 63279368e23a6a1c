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
