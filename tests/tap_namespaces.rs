//! Two TAP ports of the switch, each moved into a network namespace of its own ("VMs"), ping each other
//! across the switch in patch mode, both ways. Namespaces, devices and the process are removed even when
//! the test fails.

mod common;

use std::process::{Child, Command, Stdio};

use common::*;

struct Cleanup {
    child: Option<Child>,
    namespaces: Vec<String>,
    prefix: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in &self.namespaces {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        // A killed switch leaves its DPDK runtime directory behind.
        let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{}", self.prefix));
    }
}

fn sh(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn link_exists(name: &str) -> bool {
    Command::new("ip")
        .args(["link", "show", name])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

fn ping(ns: &str, addr: &str) -> (bool, String) {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "ping", "-c", "3", "-i", "0.2", "-W", "2", addr])
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[test]
fn namespaces_ping_each_other_through_two_tap_ports() {
    require_root();
    let id = std::process::id() % 100_000;
    let (tap_a, tap_b) = (format!("dfta{id}"), format!("dftb{id}"));
    let (ns_a, ns_b) = (format!("dfvm-a-{id}"), format!("dfvm-b-{id}"));
    let dir = TempDir::new("tap");
    let json = dir.join("stats.json");
    let args = vec![
        "--port".to_string(),
        format!("net_tap0,iface={tap_a}"),
        "--port".into(),
        format!("net_tap1,iface={tap_b}"),
        "--stats-json".into(),
        json.display().to_string(),
    ];
    let mut guard = Cleanup { child: None, namespaces: vec![], prefix: prefix("tap") };
    guard.child = Some(spawn(&args, &eal(&guard.prefix, &[]), Stdio::piped()));
    // The devices may only move once the ports have started: wait for the switch to say it forwards.
    let ready = wait_until_forwarding(guard.child.as_mut().unwrap());
    assert!(ready, "dragonflow did not start forwarding");
    assert!(link_exists(&tap_a) && link_exists(&tap_b), "the TAP devices are missing");
    for (ns, tap, addr) in [(&ns_a, &tap_a, "10.200.0.1/24"), (&ns_b, &tap_b, "10.200.0.2/24")] {
        sh(&["ip", "netns", "add", ns]);
        guard.namespaces.push(ns.clone());
        sh(&["ip", "link", "set", tap, "netns", ns]);
        sh(&["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"]);
        sh(&["ip", "netns", "exec", ns, "ip", "addr", "add", addr, "dev", tap]);
        sh(&["ip", "netns", "exec", ns, "ip", "link", "set", tap, "up"]);
    }
    let (ok, out) = ping(&ns_a, "10.200.0.2");
    assert!(ok, "ping A -> B failed:\n{out}");
    let (ok, out) = ping(&ns_b, "10.200.0.1");
    assert!(ok, "ping B -> A failed:\n{out}");

    // Stop with SIGINT, as an operator would; the switch must exit cleanly and account for the traffic.
    let status = stop(guard.child.take().unwrap(), libc::SIGINT).status;
    assert!(status.success(), "dragonflow exited with {status}");
    let r = report(&json);
    for (p, q) in [("net_tap0", "net_tap1"), ("net_tap1", "net_tap0")] {
        let (rx, tx) = (u(&port(&r, p)["rx"]), u(&port(&r, q)["tx"]));
        let dropped: u64 = port(&r, p)["drops"].as_object().unwrap().values().map(u).sum();
        // At least the 3 echo requests (or replies) and an ARP each way crossed the switch; a packet sent
        // while the peer TAP was still moving may be refused by the kernel, but then it is counted.
        assert!(rx >= 4 && tx >= 4 && tx + dropped == rx, "{p} -> {q}: rx {rx} tx {tx} dropped {dropped}: {r:#}");
    }
    assert_eq!(u(&r["mempool"]["in_use"]), 0);
}
