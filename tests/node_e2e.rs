//! A single node end to end, driven through the Neutron API, with network namespaces as VMs: the node
//! plumbs each port bound to it as a TAP device (`tap` + 11 characters of the port id), the test moves
//! it into a namespace with the port's MAC and addresses (static: DHCP comes later), and checks:
//! - the port turns ACTIVE with `binding:vif_type` tap;
//! - ping both ways on one network, IPv4 and IPv6;
//! - a VM of a second network cannot reach the first, even knowing its MAC;
//! - two subnets joined by a router ping across it, IPv4 and IPv6;
//! - a VM's ARP for a peer is answered by the switch (the peer has ARP off; the counters show the reply);
//! - deleting a port takes its device away (and its traffic) within a second;
//! - a port unbound from the node goes DOWN and its device away;
//! - restarting the node brings every port back, with its traffic.
//!
//! Twice: the all-in-one process (API, embedded DB, node), and the API and node roles as two processes
//! over a real etcd server. Namespaces, processes and directories are removed even when a check fails.

mod common;

use std::net::TcpStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::cloud::*;
use common::*;
use serde_json::{json, Value};

/// The two scenarios each run a DPDK process polling lcore 1: one at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// How the scenario starts and stops the node (and, all-in-one, the API with it).
struct Roles {
    api: String,
    chassis: String,
    stats: PathBuf,
    start_node: Box<dyn Fn(&mut World)>,
}

/// The `replied` counter of a port in the node's stats file.
fn replied(stats: &PathBuf, tap: &str) -> u64 {
    let Ok(text) = std::fs::read_to_string(stats) else { return 0 };
    let Ok(r) = serde_json::from_str::<Value>(&text) else { return 0 };
    let name = format!("net_tap_{}", &tap[3..]);
    r["ports"].as_array().into_iter().flatten().find(|p| p["name"] == name.as_str()).map_or(0, |p| u(&p["replied"]))
}

/// A drop counter of a port (by its TAP) in the node's stats file.
fn port_drop(stats: &PathBuf, tap: &str, reason: &str) -> u64 {
    let Ok(text) = std::fs::read_to_string(stats) else { return 0 };
    let Ok(r) = serde_json::from_str::<Value>(&text) else { return 0 };
    let name = format!("net_tap_{}", &tap[3..]);
    let port = r["ports"].as_array().into_iter().flatten().find(|p| p["name"] == name.as_str());
    port.map_or(0, |p| p["drops"][reason].as_u64().unwrap_or(0))
}

/// Bytes the kernel of namespace `ns` received on `dev`.
fn rx_bytes(ns: &str, dev: &str) -> u64 {
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", ns, "cat", &format!("/sys/class/net/{dev}/statistics/rx_bytes")])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or_else(|_| panic!("rx_bytes of {dev} in {ns}"))
}

/// Echo requests of [`BURST_SIZE`] bytes of ICMP data in one [`burst`].
const BURST: u64 = 100;
const BURST_SIZE: u64 = 1000;
const BURST_BYTES: u64 = BURST * BURST_SIZE;

/// [`BURST`] pings from `ns` to `addr`, 10 ms apart, without waiting for answers.
fn burst(ns: &str, addr: &str) {
    let _ = std::process::Command::new("ip")
        .args(["netns", "exec", ns, "ping", "-q", "-c", &BURST.to_string(), "-i", "0.01", "-W", "1"])
        .args(["-s", &BURST_SIZE.to_string(), addr])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
}

fn scenario(world: &mut World, roles: &Roles, tag: &str) {
    let api = &Neutron::new(&roles.api);
    wait_for("the API answers", Duration::from_secs(30), || {
        TcpStream::connect(api.addr()).is_ok() && api.get("/").0 == 200
    });
    // Topology: net1 (v4 + v6) with vm1 and vm2; net2 with vm3; net3 (v4 + v6) with vm4, routed to net1.
    let net = |name: &str| api.create("network", json!({ "name": name }))["id"].as_str().unwrap().to_owned();
    let subnet = |net: &str, cidr: &str, v: u8| {
        api.create("subnet", json!({ "network_id": net, "cidr": cidr, "ip_version": v }))["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (n1, n2, n3) = (net("net1"), net("net2"), net("net3"));
    let s1 = subnet(&n1, "10.1.0.0/24", 4);
    let s1v6 = subnet(&n1, "2001:db8:1::/64", 6);
    let s2 = subnet(&n2, "10.2.0.0/24", 4);
    let s3 = subnet(&n3, "10.3.0.0/24", 4);
    let s3v6 = subnet(&n3, "2001:db8:3::/64", 6);
    let mut vms = Vec::new();
    for (i, (net, ips)) in [
        (&n1, vec![(&s1, "10.1.0.10", "10.1.0.1"), (&s1v6, "2001:db8:1::10", "2001:db8:1::1")]),
        (&n1, vec![(&s1, "10.1.0.11", "10.1.0.1"), (&s1v6, "2001:db8:1::11", "2001:db8:1::1")]),
        (&n2, vec![(&s2, "10.2.0.10", "10.2.0.1")]),
        (&n3, vec![(&s3, "10.3.0.10", "10.3.0.1"), (&s3v6, "2001:db8:3::10", "2001:db8:3::1")]),
    ]
    .into_iter()
    .enumerate()
    {
        let ns = format!("dfe2e-{tag}-{}-{}", i + 1, std::process::id() % 100_000);
        let ips: Vec<(&str, &str, &str)> = ips.iter().map(|(s, ip, gw)| (s.as_str(), *ip, *gw)).collect();
        vms.push(Vm::create(world, api, &ns, net, &roles.chassis, &ips));
    }
    for vm in &vms {
        vm.attach(api);
    }
    for vm in &vms {
        wait_for(&format!("port {} ACTIVE", vm.port), Duration::from_secs(10), || {
            api.show("port", &vm.port).is_some_and(|p| p["status"] == "ACTIVE" && p["binding:vif_type"] == "tap")
        });
    }
    let (vm1, vm2, vm3, vm4) = (&vms[0], &vms[1], &vms[2], &vms[3]);

    // One network, both ways, both families.
    assert!(pings(&vm1.ns, vm2.ip(false)), "vm1 -> vm2 (IPv4)");
    assert!(pings(&vm2.ns, vm1.ip(false)), "vm2 -> vm1 (IPv4)");
    assert!(pings(&vm1.ns, vm2.ip(true)), "vm1 -> vm2 (IPv6)");
    assert!(pings(&vm2.ns, vm1.ip(true)), "vm2 -> vm1 (IPv6)");

    // Isolation: vm3 (net2) knows vm1's MAC and puts its address on-link; nothing of it reaches vm1 (what
    // arrives is measured at vm1: a reply could not come back anyway, vm1 has no route to net2). The same
    // burst from vm2 (net1) shows that the measure sees such traffic.
    ns_sh(&vm3.ns, &["ip", "route", "add", "10.1.0.0/24", "dev", &vm3.tap]);
    ns_sh(&vm3.ns, &["ip", "neigh", "replace", vm1.ip(false), "lladdr", &vm1.mac, "dev", &vm3.tap]);
    let into_vm1 = |from: &Vm| {
        let before = rx_bytes(&vm1.ns, &vm1.tap);
        burst(&from.ns, vm1.ip(false));
        std::thread::sleep(Duration::from_millis(200));
        rx_bytes(&vm1.ns, &vm1.tap) - before
    };
    let dropped = || port_drop(&roles.stats, &vm3.tap, "l2_switch.no_destination");
    let dropped_before = dropped();
    let leaked = into_vm1(vm3);
    assert!(leaked < BURST_BYTES / 10, "{leaked} bytes reached vm1 while vm3 (net2) sent it {BURST_BYTES}");
    wait_for("vm3's frames counted as dropped", Duration::from_secs(3), || dropped() >= dropped_before + BURST);
    let seen = into_vm1(vm2);
    assert!(seen >= BURST_BYTES, "the same burst from vm2 brought vm1 only {seen} bytes: the measure is blind");

    // A router joins net1 and net3.
    let r = api.create("router", json!({ "name": "r1" }))["id"].as_str().unwrap().to_owned();
    for s in [&s1, &s1v6, &s3, &s3v6] {
        let (status, v) = api.put(&format!("/v2.0/routers/{r}/add_router_interface"), json!({ "subnet_id": s }));
        assert_eq!(status, 200, "add_router_interface: {v}");
    }
    assert!(pings(&vm1.ns, vm4.ip(false)), "vm1 -> vm4 across the router (IPv4)");
    assert!(pings(&vm4.ns, vm1.ip(false)), "vm4 -> vm1 across the router (IPv4)");
    assert!(pings(&vm1.ns, vm4.ip(true)), "vm1 -> vm4 across the router (IPv6)");
    assert!(pings(&vm4.ns, vm1.ip(true)), "vm4 -> vm1 across the router (IPv6)");

    // ARP answered by the switch: vm2 answers no ARP at all, yet vm1 resolves it.
    ns_sh(&vm2.ns, &["ip", "link", "set", &vm2.tap, "arp", "off"]);
    ns_sh(&vm2.ns, &["ip", "neigh", "replace", vm1.ip(false), "lladdr", &vm1.mac, "dev", &vm2.tap]);
    ns_sh(&vm1.ns, &["ip", "neigh", "flush", "dev", &vm1.tap]);
    let before = replied(&roles.stats, &vm1.tap);
    assert!(pings(&vm1.ns, vm2.ip(false)), "vm1 -> vm2 with vm2's ARP off");
    wait_for("vm1's port counts the switch's ARP reply", Duration::from_secs(5), || {
        replied(&roles.stats, &vm1.tap) > before
    });
    ns_sh(&vm2.ns, &["ip", "link", "set", &vm2.tap, "arp", "on"]);

    // Deleting vm2's port: its device (and so its traffic) is gone within a second.
    let t = Instant::now();
    let (status, _) = api.delete(&format!("/v2.0/ports/{}", vm2.port));
    assert_eq!(status, 204);
    wait_for("vm2's TAP removed", Duration::from_secs(1), || !link_in(Some(&vm2.ns), &vm2.tap));
    eprintln!("port delete -> device gone: {:?}", t.elapsed());
    // ... and the switch forgot it: vm1's ARP for its address is not answered any more, and goes nowhere
    // (vm1 is alone on net1 now).
    ns_sh(&vm1.ns, &["ip", "neigh", "flush", "dev", &vm1.tap]);
    let nowhere = port_drop(&roles.stats, &vm1.tap, "l2_switch.no_destination");
    assert!(!ping(&vm1.ns, vm2.ip(false)), "a reply from a deleted port");
    wait_for("vm1's ARP for the deleted port counted as going nowhere", Duration::from_secs(3), || {
        port_drop(&roles.stats, &vm1.tap, "l2_switch.no_destination") > nowhere
    });
    // (Read from vm1's own neighbour table: the switch's `replied` counter also counts ND answers, and
    // the stats file lags a second.)
    let neigh = std::process::Command::new("ip")
        .args(["-n", &vm1.ns, "neigh", "show", vm2.ip(false), "dev", &vm1.tap])
        .output()
        .unwrap();
    let neigh = String::from_utf8_lossy(&neigh.stdout);
    assert!(!neigh.contains("lladdr"), "the switch still answers ARP for a deleted port: {neigh}");

    // Unbinding vm3's port: DOWN, device gone.
    let (status, v) = api.put(&format!("/v2.0/ports/{}", vm3.port), json!({ "port": { "binding:host_id": "" } }));
    assert_eq!(status, 200, "unbind: {v}");
    wait_for("vm3's TAP removed", Duration::from_secs(2), || !link_in(Some(&vm3.ns), &vm3.tap));
    wait_for("vm3's port DOWN", Duration::from_secs(5), || {
        api.show("port", &vm3.port).is_some_and(|p| p["status"] == "DOWN")
    });

    // Restart: the ports bound here come back with their traffic.
    stop_node(world);
    assert!(!link_in(Some(&vm1.ns), &vm1.tap), "the node's devices go with it");
    (roles.start_node)(world);
    for vm in [vm1, vm4] {
        vm.attach(api);
    }
    assert!(pings(&vm1.ns, vm4.ip(false)), "vm1 -> vm4 after the restart (IPv4)");
    assert!(pings(&vm4.ns, vm1.ip(true)), "vm4 -> vm1 after the restart (IPv6)");
    assert!(!link_in(None, &vm3.tap) && !link_in(None, &vm2.tap), "no device for unbound or deleted ports");
}

#[test]
fn all_in_one_with_the_embedded_db() {
    require_root();
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut world = World::default();
    let dir = std::env::temp_dir().join(format!("dfe2e-aio-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    world.dirs.push(dir.clone());
    let prefix = format!("dfe2e-aio-{}", std::process::id());
    world.prefixes.push(prefix.clone());
    let api = format!("127.0.0.1:{}", free_port());
    let stats = dir.join("stats.json");
    let args = all_in_one("e2e-aio", &dir, &prefix, &api, &[]);
    let start: Box<dyn Fn(&mut World)> = Box::new(move |w: &mut World| drop(spawn_until(w, &args, "dragonflow: node")));
    start(&mut world);
    let roles = Roles { api, chassis: "e2e-aio".into(), stats, start_node: start };
    scenario(&mut world, &roles, "aio");
}

#[test]
fn api_and_node_roles_over_etcd() {
    require_root();
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut world = World::default();
    let dir = std::env::temp_dir().join(format!("dfe2e-etcd-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    world.dirs.push(dir.clone());
    let mut etcd = Etcd::new("e2e");
    etcd.start();
    let url = etcd.url.clone();
    let api = format!("127.0.0.1:{}", free_port());
    let api_args: Vec<String> =
        ["api", "--listen", &api, "--etcd", &url, "--etcd-prefix", "e2e"].map(String::from).to_vec();
    spawn_until(&mut world, &api_args, "dragonflow: Neutron API");
    let prefix = format!("dfe2e-etcd-{}", std::process::id());
    world.prefixes.push(prefix.clone());
    let stats = dir.join("stats.json");
    let node_args: Vec<String> = [
        "node",
        "--chassis",
        "e2e-etcd",
        "--etcd",
        &url,
        "--etcd-prefix",
        "e2e",
        "--stats-json",
        stats.to_str().unwrap(),
        "--",
    ]
    .map(String::from)
    .into_iter()
    .chain(eal_args(&prefix))
    .collect();
    let start: Box<dyn Fn(&mut World)> =
        Box::new(move |w: &mut World| drop(spawn_until(w, &node_args, "dragonflow: node")));
    start(&mut world);
    let roles = Roles { api, chassis: "e2e-etcd".into(), stats, start_node: start };
    scenario(&mut world, &roles, "etcd");
}

/// A port whose `binding:profile` asks for vhost-user: the node makes the socket, a real virtio-user guest
/// (testpmd, swapping MACs) connects to it, and a namespace VM's pings reach the guest and come back.
#[test]
fn a_vhost_user_port_is_plugged_for_a_virtio_guest() {
    require_root();
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut world = World::default();
    let dir = std::env::temp_dir().join(format!("dfe2e-vhu-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    world.dirs.push(dir.clone());
    let prefix = format!("dfe2e-vhu-{}", std::process::id());
    world.prefixes.push(prefix.clone());
    let api = format!("127.0.0.1:{}", free_port());
    let stats = dir.join("stats.json");
    let vhost_dir = dir.join("vhu").display().to_string();
    let args = all_in_one("e2e-vhu", &dir, &prefix, &api, &["--vhost-dir", &vhost_dir]);
    std::fs::create_dir_all(dir.join("vhu")).unwrap();
    spawn_until(&mut world, &args, "dragonflow: node");
    let neutron = Neutron::new(&api);
    wait_for("the API answers", Duration::from_secs(30), || neutron.get("/").0 == 200);
    let net = neutron.create("network", json!({ "name": "n" }))["id"].as_str().unwrap().to_owned();
    let sub = neutron.create("subnet", json!({ "network_id": net, "cidr": "10.9.0.0/24", "ip_version": 4 }));
    let sub = sub["id"].as_str().unwrap().to_owned();
    // The guest swaps MACs and sends back what it got, addresses unchanged: its port cannot pass port
    // security, as a router VM's could not either.
    let guest = neutron.create(
        "port",
        json!({ "network_id": net, "binding:host_id": "e2e-vhu", "port_security_enabled": false,
                "binding:profile": { "vif_type": "vhostuser" },
                "fixed_ips": [{ "subnet_id": sub, "ip_address": "10.9.0.20" }] }),
    );
    let gid = guest["id"].as_str().unwrap().to_owned();
    wait_for("the guest's port ACTIVE as vhostuser", Duration::from_secs(10), || {
        neutron.show("port", &gid).is_some_and(|p| p["status"] == "ACTIVE" && p["binding:vif_type"] == "vhostuser")
    });
    let sock =
        neutron.show("port", &gid).unwrap()["binding:vif_details"]["vhostuser_socket"].as_str().unwrap().to_owned();
    assert!(std::path::Path::new(&sock).exists(), "the socket {sock} exists");
    let guest_prefix = format!("dfe2e-guest-{}", std::process::id());
    let _guest = testpmd(&guest_prefix, &format!("virtio_user0,path={sock},queues=1"));

    let ns = format!("dfe2e-vhu-{}", std::process::id() % 100_000);
    let vm = Vm::create(&mut world, &neutron, &ns, &net, "e2e-vhu", &[(&sub, "10.9.0.10", "10.9.0.1")]);
    vm.attach(&neutron);
    let guest_counts = || -> (u64, u64) {
        let Ok(r) = std::fs::read_to_string(&stats).map(|t| serde_json::from_str::<Value>(&t).unwrap_or(Value::Null))
        else {
            return (0, 0);
        };
        let name = format!("net_vhost_{}", &gid[..11]);
        r["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["name"] == name.as_str())
            .map_or((0, 0), |p| (u(&p["tx"]), u(&p["rx"])))
    };
    // The switch answers the VM's ARP for the guest; the echo requests go to the guest and come back.
    wait_for("traffic to the guest and back", Duration::from_secs(20), || {
        let _ = ping(&vm.ns, "10.9.0.20");
        let (to_guest, from_guest) = guest_counts();
        to_guest > 0 && from_guest > 0
    });
    let (status, _) = neutron.delete(&format!("/v2.0/ports/{gid}"));
    assert_eq!(status, 204);
    wait_for("the socket removed with the port", Duration::from_secs(5), || !std::path::Path::new(&sock).exists());
}
