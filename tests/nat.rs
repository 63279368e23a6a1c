//! A router's gateway end to end (Neutron's `ext-gw-mode` and floating IPs): one all-in-one node whose
//! physical network `public` is an uplink TAP into a namespace that plays the world outside the cloud
//! (172.24.4.1/24, no route to the cloud's private networks), a VM on a private network behind a router
//! with its gateway on the external network, everything made through the Neutron API. Checks:
//! - the API binds the gateway port to the node (the only one up), and lists `ext-gw-mode`;
//! - SNAT (the default): the VM pings the outside host and opens a TCP connection to it, which the host
//!   sees coming from the router's gateway address; the node resolved the host's MAC by ARP itself;
//! - the outside host pings the gateway address (answered by the router) and gets nothing from a port of
//!   it that no connection opened;
//! - a floating IP: the outside host pings the VM at its floating IP (a security group rule lets it
//!   in), and the VM's connections leave from the floating IP;
//! - `enable_snat: false`: the VM's packets leave with its own address: the host, without a route back,
//!   does not answer; given one (via the gateway address), it does and sees the VM's address.
//!
//! Namespaces, processes and directories are removed even when a check fails.

mod common;

use std::net::TcpStream;
use std::time::Duration;

use common::cloud::*;
use common::tcp::{connect, serve_logged, udp_probe};
use common::*;
use serde_json::{json, Value};

/// The node's last report (null while there is none).
fn report(stats: &std::path::Path) -> Value {
    std::fs::read_to_string(stats).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or(Value::Null)
}

/// The drop counters of the node, added over its ports.
fn drops(stats: &std::path::Path, reason: &str) -> u64 {
    report(stats)["ports"].as_array().into_iter().flatten().map(|p| p["drops"][reason].as_u64().unwrap_or(0)).sum()
}

/// The report's NAT counter `name` (`nat.made`, …) once it reaches `at_least`, or what it is after 5 s (the
/// stats file is written every second).
fn nat_counter(stats: &std::path::Path, name: &str, at_least: u64) -> u64 {
    let read = || report(stats)["nat"][name].as_u64().unwrap_or(0);
    for _ in 0..50 {
        if read() >= at_least {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    read()
}

/// A datagram from `ns` to `addr`:`port` refused by an ICMP port unreachable (`"refused"`), tried up to
/// four times (a rule just added may not be in the tables yet), or what the last try got.
fn refused(ns: &str, addr: &str, port: u16) -> String {
    let mut said = String::new();
    for _ in 0..4 {
        said = udp_probe(ns, addr, port);
        if said == "refused" {
            break;
        }
    }
    said
}

#[test]
fn a_router_gateway_translates_to_and_from_the_outside() {
    require_root();
    let mut world = World::default();
    let pid = std::process::id() % 100_000;
    let dir = std::env::temp_dir().join(format!("dfnat-{pid}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    world.dirs.push(dir.clone());
    let prefix = format!("dfnat-{pid}");
    world.prefixes.push(prefix.clone());
    let chassis = format!("dfnat-{pid}");
    let api_addr = format!("127.0.0.1:{}", free_port());
    let uplink = format!("dfnatup{}", pid % 1000);
    let mapping = format!("public:net_tap_nat{pid},iface={uplink}");
    let extra = ["--idle-sleep-us", "100", "--bridge-mapping", &mapping, "--flat-networks", "public"];
    let args = all_in_one(&chassis, &dir, &prefix, &api_addr, &extra);
    spawn_until(&mut world, &args, "dragonflow: node");
    let api = Neutron::new(&api_addr);
    wait_for("the API answers", Duration::from_secs(30), || {
        TcpStream::connect(api.addr()).is_ok() && api.get("/").0 == 200
    });
    let stats = dir.join("stats.json");

    // The outside: a namespace on the far end of the uplink.
    let outside = format!("dfnat-out-{pid}");
    sh(&["ip", "netns", "add", &outside]);
    world.namespaces.push(outside.clone());
    wait_for("the uplink", Duration::from_secs(10), || link_in(None, &uplink));
    sh(&["ip", "link", "set", &uplink, "netns", &outside]);
    sh(&["ip", "-n", &outside, "link", "set", &uplink, "address", "02:00:00:24:04:01", "up"]);
    sh(&["ip", "-n", &outside, "link", "set", "lo", "up"]);
    sh(&["ip", "-n", &outside, "addr", "add", "172.24.4.1/24", "dev", &uplink]);

    let (_, ext) = api.get("/v2.0/extensions/ext-gw-mode");
    assert_eq!(ext["extension"]["alias"], "ext-gw-mode", "the API lists ext-gw-mode: {ext}");

    let id = |v: Value| v["id"].as_str().unwrap().to_owned();
    let public = id(api.create(
        "network",
        json!({ "name": "public", "router:external": true, "provider:network_type": "flat",
                "provider:physical_network": "public" }),
    ));
    api.create(
        "subnet",
        json!({ "network_id": public, "cidr": "172.24.4.0/24", "ip_version": 4, "gateway_ip": "172.24.4.1",
                "enable_dhcp": false, "allocation_pools": [{ "start": "172.24.4.10", "end": "172.24.4.99" }] }),
    );
    let private = id(api.create("network", json!({ "name": "private" })));
    let subnet = id(api.create("subnet", json!({ "network_id": private, "cidr": "10.60.0.0/24", "ip_version": 4 })));
    let router = api.create("router", json!({ "name": "r1", "external_gateway_info": { "network_id": public } }));
    let rid = router["id"].as_str().unwrap().to_owned();
    assert_eq!(router["external_gateway_info"]["enable_snat"], true, "SNAT by default: {router}");
    let gw_ip = router["external_gateway_info"]["external_fixed_ips"][0]["ip_address"].as_str().unwrap().to_owned();
    let (status, v) = api.put(&format!("/v2.0/routers/{rid}/add_router_interface"), json!({ "subnet_id": subnet }));
    assert_eq!(status, 200, "{v}");
    let (_, ports) = api.get(&format!("/v2.0/ports?device_id={rid}&device_owner=network:router_gateway"));
    assert_eq!(ports["ports"][0]["binding:host_id"], chassis.as_str(), "the gateway bound to the node: {ports}");

    let vm = Vm::create(
        &mut world,
        &api,
        &format!("dfnat-vm-{pid}"),
        &private,
        &chassis,
        &[(&subnet, "10.60.0.5", "10.60.0.1")],
    );
    vm.attach(&api);
    let mut failed = Vec::new();
    let mut check = |ok: bool, what: &str| {
        eprintln!("nat: {} {what}", if ok { "ok  " } else { "FAIL" });
        if !ok {
            failed.push(what.to_owned());
        }
    };

    // SNAT.
    check(pings(&vm.ns, "172.24.4.1"), "the VM pings the outside host (SNAT, the host's MAC resolved)");
    let served = serve_logged(&mut world, &outside, &[8080]);
    check(connect(&vm.ns, "172.24.4.1", 8080).is_ok(), "the VM connects to the outside host over TCP");
    let from = served.all();
    check(from.contains(&format!("from {gw_ip}")), &format!("the host sees the gateway address {gw_ip}: {from:?}"));
    check(pings(&outside, &gw_ip), "the outside host pings the router's gateway address");
    check(connect(&outside, &gw_ip, 8080).is_err(), "the gateway address opens nothing to the outside");
    check(drops(&stats, "nat.arp_learned") >= 1, "the node learned the host's MAC from its ARP reply");
    let made = nat_counter(&stats, "nat.made", 2);
    check(made >= 2, &format!("the report counts the translations made (ping, TCP): nat.made {made}"));
    check(nat_counter(&stats, "nat.live", 1) >= 1, "the report counts the translations held (nat.live)");
    let said = refused(&vm.ns, "172.24.4.1", 9);
    check(said == "refused", &format!("the host's port unreachable reaches the VM's socket through SNAT: {said}"));
    // Path MTU discovery through SNAT: behind the host, a link of MTU 1000; the host's "fragmentation
    // needed" about the VM's ping reaches the VM's kernel, which keeps the path's MTU.
    ns_sh(&outside, &["ip", "link", "add", "far0", "mtu", "1000", "type", "veth", "peer", "name", "far1"]);
    ns_sh(&outside, &["ip", "link", "set", "far0", "up"]);
    ns_sh(&outside, &["ip", "addr", "add", "192.0.2.254/24", "dev", "far0"]);
    ns_sh(&outside, &["sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"]);
    let _ = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &vm.ns,
            "ping",
            "-c",
            "2",
            "-i",
            "0.3",
            "-W",
            "1",
            "-M",
            "do",
            "-s",
            "1300",
            "192.0.2.1",
        ])
        .output();
    let route = std::process::Command::new("ip").args(["-n", &vm.ns, "route", "get", "192.0.2.1"]).output().unwrap();
    let route = String::from_utf8_lossy(&route.stdout).into_owned();
    let route = route.split_whitespace().collect::<Vec<_>>().join(" ");
    check(route.contains("mtu 1000"), &format!("the VM learns the path's MTU through SNAT: {route}"));

    // A floating IP.
    allow_ingress(&api, &vm.port, "icmp", "0.0.0.0/0");
    let fip = api.create("floatingip", json!({ "floating_network_id": public, "port_id": vm.port }));
    let fip_ip = fip["floating_ip_address"].as_str().unwrap().to_owned();
    check(pings(&outside, &fip_ip), &format!("the outside host pings the VM at its floating IP {fip_ip}"));
    allow_ingress(&api, &vm.port, "udp", "0.0.0.0/0");
    let said = refused(&outside, &fip_ip, 9);
    check(said == "refused", &format!("the VM's port unreachable reaches the host's socket from {fip_ip}: {said}"));
    check(connect(&vm.ns, "172.24.4.1", 8080).is_ok(), "the VM with a floating IP connects out");
    let from = served.all();
    check(from.contains(&format!("from {fip_ip}")), &format!("the host sees the floating IP {fip_ip}: {from:?}"));
    let (status, _) = api.delete(&format!("/v2.0/floatingips/{}", id(fip)));
    assert_eq!(status, 204);

    // No SNAT: the VM's own address goes out.
    let (status, v) = api.put(
        &format!("/v2.0/routers/{rid}"),
        json!({ "router": { "external_gateway_info": { "network_id": public, "enable_snat": false } } }),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["router"]["external_gateway_info"]["enable_snat"], false, "{v}");
    std::thread::sleep(Duration::from_secs(1));
    check(!ping(&vm.ns, "172.24.4.1"), "without SNAT, the host has no route back to the VM");
    sh(&["ip", "-n", &outside, "route", "add", "10.60.0.0/24", "via", &gw_ip]);
    check(pings(&vm.ns, "172.24.4.1"), "without SNAT, the host with a route back answers");
    check(connect(&vm.ns, "172.24.4.1", 8080).is_ok(), "without SNAT, the VM connects out");
    let from = served.all();
    check(from.contains(&"from 10.60.0.5".to_owned()), &format!("the host sees the VM's own address: {from:?}"));
    check(pings(&outside, "10.60.0.5"), "without SNAT, the host reaches the VM at its own address");

    if !failed.is_empty() {
        let s = std::fs::read_to_string(&stats).unwrap_or_default();
        panic!("{} claim(s) failed:\n  {}\nstats: {s}", failed.len(), failed.join("\n  "));
    }
}
