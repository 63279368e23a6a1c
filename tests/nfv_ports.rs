//! The ports VMs and NFV workloads use, driven by a real DPDK peer (`dpdk-testpmd`, from Debian's `dpdk`):
//! a memif port (the switch is the server, testpmd the client) and a vhost-user port (the switch is the
//! vhost backend, testpmd a virtio-user guest). Traffic crosses both ways: net_null generates packets,
//! the switch sends them to the peer, testpmd swaps their MACs and sends them back.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;

/// Runs the switch with the port `devargs` (patched to a packet-generating net_null) and testpmd looping the
/// traffic back through `peer_vdev`, for 3 seconds once both forward, then the switch stopped (SIGTERM; 30 s
/// at most), testpmd first if `peer_leaves`; checks traffic went both ways and was all accounted for, and
/// that the port's link went up with the peer (and down as it left).
fn both_ways(test: &str, devargs: &str, port_name: &str, peer_vdev: &str, peer_leaves: bool) {
    require_root();
    let dir = TempDir::new(test);
    let json = dir.join("stats.json");
    let args: Vec<String> = vec![
        "--port".into(),
        devargs.to_owned(),
        "--port".into(),
        "net_null0,size=64".into(),
        "--duration".into(),
        "30".into(),
        "--stats-json".into(),
        json.display().to_string(),
    ];
    let mut switch = spawn(&args, &eal(&prefix(test), &[]), Stdio::piped());
    assert!(wait_until_forwarding(&mut switch), "the switch did not start forwarding");
    let peer = testpmd(&format!("{}-peer", prefix(test)), peer_vdev);
    // (Started on two CPUs shared with the switch and another test's pair, testpmd may take seconds.)
    let connected = peer.wait_forwarding(Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(3));
    // The peer leaving before the switch stops takes its port's link down (the switch looks once a second).
    let peer = if peer_leaves {
        drop(peer);
        std::thread::sleep(Duration::from_millis(2500));
        None
    } else {
        Some(peer)
    };
    let out = stop(switch, libc::SIGTERM);
    drop(peer);
    assert!(connected, "testpmd did not start forwarding within 20 s");
    assert!(out.status.success(), "the switch failed, {}: {}", out.status, String::from_utf8_lossy(&out.stdout));
    let r = report(&json);
    let (p, null) = (port(&r, port_name), port(&r, "net_null0"));
    // Out to the peer, and back from it after testpmd's MAC swap.
    assert!(u(&p["tx"]) > 1000, "nothing reached the peer: {r:#}");
    assert!(u(&p["rx"]) > 1000, "nothing came back from the peer: {r:#}");
    // Up when the peer connected, down when it left; the generator's link up throughout.
    let link = if peer_leaves { (false, 2) } else { (true, 1) };
    assert_eq!((&p["link_up"], u(&p["link_changes"])), (&serde_json::json!(link.0), link.1), "{r:#}");
    assert_eq!((&null["link_up"], u(&null["link_changes"])), (&serde_json::json!(true), 0), "{r:#}");
    for (from, to) in [(null, p), (p, null)] {
        let dropped: u64 = from["drops"].as_object().unwrap().values().map(u).sum();
        assert_eq!(u(&from["rx"]), u(&to["tx"]) + dropped, "{r:#}");
    }
    assert_eq!(u(&r["mempool"]["in_use"]), 0);
}

#[test]
fn memif_port_carries_traffic_both_ways() {
    let sock = std::env::temp_dir().join(format!("dft-memif-{}.sock", std::process::id()));
    let s = sock.display();
    both_ways(
        "memif",
        &format!("net_memif0,role=server,socket={s}"),
        "net_memif0",
        &format!("net_memif0,role=client,socket={s}"),
        // Not while the switch forwards: once in CI (a012c69) the switch exited with a failure, and no log
        // line, as the memif client left (not seen in 12 runs by hand). Suspected, not shown: net_memif
        // handling the disconnect in its interrupt thread while the worker is in a burst.
        false,
    );
    let _ = std::fs::remove_file(&sock);
}

#[test]
fn vhost_user_port_carries_traffic_both_ways() {
    let sock = std::env::temp_dir().join(format!("dft-vhost-{}.sock", std::process::id()));
    let s = sock.display();
    both_ways("vhost", &format!("net_vhost0,iface={s}"), "net_vhost0", &format!("virtio_user0,path={s}"), true);
    let _ = std::fs::remove_file(&sock);
}
