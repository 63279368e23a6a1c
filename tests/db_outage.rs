//! The node and the API over etcd as a deployment sees it: etcd comes up after them, is stopped,
//! restarted and frozen (SIGSTOP: the connection stays open and nothing answers) under traffic.
//! - Both roles start before etcd answers, and go on once it does.
//! - The dataplane keeps forwarding on its last tables through every outage: a steady ping between two
//!   VMs (namespaces on the node's TAP ports) loses nothing, not even while the node resyncs.
//! - The node resyncs by difference: nothing changed, so it re-plugs nothing and publishes nothing, and
//!   says so in its log; a change after the outage is applied.
//! - With etcd frozen, the node and the API stop on SIGTERM within 5 s, exit status 0.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::cloud::*;
use common::*;
use serde_json::json;

/// A steady ping, 100 a second for `secs`, in the background: (sent, received) when joined.
fn steady(ns: &str, addr: &str, secs: u64) -> std::thread::JoinHandle<(u64, u64)> {
    let (ns, addr) = (ns.to_owned(), addr.to_owned());
    std::thread::spawn(move || {
        let out = Command::new("ip")
            .args(["netns", "exec", &ns, "ping", "-q", "-i", "0.01", "-W", "1", "-c", &(secs * 100).to_string(), &addr])
            .stderr(Stdio::null())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        // "N packets transmitted, M received, ..."
        let line = text.lines().find(|l| l.contains("packets transmitted")).unwrap_or_else(|| panic!("ping: {text}"));
        let num = |i: usize| line.split_whitespace().nth(i).and_then(|n| n.parse().ok()).unwrap();
        (num(0), num(3))
    })
}

fn no_loss(phase: &str, ping: std::thread::JoinHandle<(u64, u64)>) {
    let (sent, received) = ping.join().unwrap();
    eprintln!("{phase}: {received}/{sent} echo replies");
    assert!(sent >= 100, "{phase}: only {sent} pings sent");
    assert_eq!(received, sent, "{phase}: {} of {sent} pings lost", sent - received);
}

/// Sends `sig` to the child `i` of `world` and waits for it to exit: its status and how long it took.
fn signal_and_wait(world: &mut World, i: usize, sig: i32) -> (std::process::ExitStatus, Duration) {
    let child = &mut world.children[i];
    // SAFETY: kill(2) on our own child, not reaped yet.
    unsafe { libc::kill(child.id() as i32, sig) };
    let t = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status, t.elapsed());
        }
        assert!(t.elapsed() < Duration::from_secs(20), "not stopped within 20 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_node_forwards_through_etcd_outages_and_resyncs_by_difference() {
    require_root();
    let mut world = World::default();
    let dir = std::env::temp_dir().join(format!("dft-outage-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    world.dirs.push(dir.clone());
    let prefix = format!("dft-outage-{}", std::process::id());
    world.prefixes.push(prefix.clone());
    let mut etcd = Etcd::new("outage");
    let api = format!("127.0.0.1:{}", free_port());

    // Both roles first, etcd afterwards.
    let api_args: Vec<String> =
        ["api", "--listen", &api, "--etcd", &etcd.url, "--etcd-prefix", "outage"].map(String::from).to_vec();
    spawn_until(&mut world, &api_args, "dragonflow: Neutron API");
    let mut node_args: Vec<String> =
        ["node", "--chassis", "outage", "--etcd", &etcd.url, "--etcd-prefix", "outage"].map(String::from).to_vec();
    node_args.extend(["--stats-json".into(), dir.join("stats.json").display().to_string(), "--".into()]);
    node_args.extend(eal_args(&prefix));
    let node = spawn_logged(&mut world, &node_args);
    assert!(node.wait_for("the DB does not answer", 2, Duration::from_secs(10)), "the node waits for etcd");
    assert!(node.lines_with("dragonflow: node").is_empty(), "the node ran without its DB");
    let neutron = Neutron::new(&api);
    let (status, v) = neutron.get("/v2.0/networks");
    assert_eq!(status, 503, "the API without etcd: {v}");
    etcd.start();
    assert!(node.wait_for("dragonflow: node", 1, Duration::from_secs(15)), "the node started once etcd answered");
    wait_for("the API answers", Duration::from_secs(10), || neutron.get("/v2.0/networks").0 == 200);

    // Two VMs on one network.
    let net = neutron.create("network", json!({ "name": "n" }))["id"].as_str().unwrap().to_owned();
    let sub = neutron.create("subnet", json!({ "network_id": net, "cidr": "10.7.0.0/24", "ip_version": 4 }));
    let sub = sub["id"].as_str().unwrap().to_owned();
    let vm = |i: usize, world: &mut World| {
        let (ip, ns) = (format!("10.7.0.{}", 10 + i), format!("dft-outage-{i}-{}", std::process::id() % 100_000));
        let vm = Vm::create(world, &neutron, &ns, &net, "outage", &[(&sub, &ip, "10.7.0.1")]);
        vm.attach(&neutron);
        vm
    };
    let (vm1, vm2) = (vm(1, &mut world), vm(2, &mut world));
    let stats = dir.join("stats.json");
    let counters = || std::fs::read_to_string(&stats).unwrap_or_default();
    assert!(pings(&vm1.ns, vm2.ip(false)), "vm1 -> vm2; the node's counters: {}", counters());
    let target = vm2.ip(false).to_owned();

    // etcd stopped (killed), then restarted on its data.
    let lost = node.lines_with("the controller lost the DB").len();
    let ping = steady(&vm1.ns, &target, 8);
    std::thread::sleep(Duration::from_millis(500));
    etcd.kill();
    assert!(node.wait_for("the controller lost the DB", lost + 1, Duration::from_secs(5)), "the node saw etcd go");
    no_loss("etcd stopped", ping);
    let ping = steady(&vm1.ns, &target, 10);
    etcd.start();
    assert!(node.wait_for("resync: the tables are unchanged", 1, Duration::from_secs(10)), "resync after the restart");
    no_loss("etcd restarted, the node resyncing", ping);

    // etcd frozen: found by the controller's liveness read within seconds, not waited on.
    let lost = node.lines_with("the controller lost the DB").len();
    let ping = steady(&vm1.ns, &target, 12);
    std::thread::sleep(Duration::from_millis(500));
    etcd.signal(libc::SIGSTOP);
    let t = Instant::now();
    assert!(node.wait_for("the controller lost the DB", lost + 1, Duration::from_secs(8)), "the node saw etcd freeze");
    eprintln!("a frozen etcd was noticed after {:?}", t.elapsed());
    std::thread::sleep(Duration::from_secs(2));
    etcd.signal(libc::SIGCONT);
    assert!(node.wait_for("resync: the tables are unchanged", 2, Duration::from_secs(15)), "resync after the thaw");
    no_loss("etcd frozen and thawed", ping);

    // Each resync re-plugged nothing: both ports kept.
    let resyncs = node.lines_with("resync: ports bound here");
    assert!(resyncs.len() >= 3, "{resyncs:?}");
    for line in &resyncs[1..] {
        assert!(line.contains("kept=2") && line.contains("plug=0") && line.contains("unplug=0"), "{line}");
    }
    assert!(node.lines_with("resync: the tables changed").is_empty(), "a resync published changed tables");

    // The watch is back: a change is applied.
    let p = neutron.create("port", json!({ "network_id": net, "binding:host_id": "outage" }));
    let tap = format!("tap{}", &p["id"].as_str().unwrap()[..11]);
    wait_for("the node plumbs a port made after the outage", Duration::from_secs(10), || link_in(None, &tap));
    no_loss("after the outages", steady(&vm1.ns, &target, 1));

    // With etcd frozen (worse than down: calls hang until their deadline instead of being refused), both
    // stop promptly and cleanly; the node's DOWN status writes are given up.
    etcd.signal(libc::SIGSTOP);
    let node_index = world.children.len() - 1;
    let (status, took) = signal_and_wait(&mut world, node_index, libc::SIGTERM);
    assert!(status.success(), "the node exited with {status}");
    assert!(took < Duration::from_secs(5), "the node took {took:?} to stop with etcd frozen");
    let (status, took) = signal_and_wait(&mut world, 0, libc::SIGTERM);
    assert!(status.success(), "the API exited with {status}");
    assert!(took < Duration::from_secs(5), "the API took {took:?} to stop with etcd frozen");
}
