//! Three nodes, one etcd, one API, all on this machine and driven through the Neutron API; VMs are
//! network namespaces, and the underlay is a Linux bridge in a namespace of its own, each node's
//! underlay port (a TAP the node owns) one of its ports. Checks:
//! - ping between VMs on different nodes: on a VXLAN network (IPv4 and IPv6), a Geneve one, a GRE one;
//!   and across the distributed router (routed on the source node, tunnelled to the destination's), both
//!   families, both ways;
//! - a broadcast reaches the nodes with a port on its network and no other: the VM on the other node
//!   receives every one, and the third node (no port there, a port on another network it shares with the
//!   sender's node) never sees a frame of that network (its `tunnel.unknown_segment` stays 0);
//! - each node resolves its peers' underlay MACs by ARP itself;
//! - DHCP is distributed: a VM on one node gets its address from that node, and the request goes no
//!   further;
//! - the wire format is the standard's: the Linux kernel's own `vxlan`, `geneve` and `gretap` devices, in
//!   a namespace registered as a static chassis (`dragonflow chassis add`), exchange pings with VMs on
//!   the nodes;
//! - provider networks on physnet1 (nodes 1 and 2 map it to an uplink into a bridge): VMs on different
//!   nodes ping over VLAN 100 and over the flat network; a host outside the cloud exchanges pings with a
//!   VM on VLAN 100 (scapy's 802.1Q, tagged both ways) and on the flat network (the kernel, untagged);
//!   frames of a VLAN no network has are dropped by name;
//! - the flat network as a router's external network: the API binds the gateway to node 1, and the VMs
//!   of the router's networks on every node reach a host outside through it (SNAT; node 3, without the
//!   physical network, sends its VM's packets to node 1 in a tunnel), and the host reaches a VM of node 3
//!   at its floating IP;
//! - a node that stops takes its chassis out of the DB: the others count the traffic to its ports as
//!   dropped (`tunnel.no_chassis`) and keep forwarding among themselves.
//!
//! Namespaces, processes and directories are removed even when a check fails.

mod common;

use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

use common::cloud::*;
use common::*;
use serde_json::{json, Value};

/// A node of the test: its chassis name, underlay device and counters file.
struct Node {
    chassis: String,
    underlay: String,
    stats: PathBuf,
}

/// The namespace of the underlay bridge.
fn underlay_ns() -> String {
    format!("dfmn-ul-{}", std::process::id() % 100_000)
}

/// Starts node `i` (1…) over etcd at `etcd`, its underlay 192.168.77.`i`/24 on a TAP put into the bridge.
fn start_node(world: &mut World, etcd: &str, i: u32) -> Node {
    let pid = std::process::id() % 100_000;
    let chassis = format!("dfmn-c{i}-{pid}");
    let underlay = format!("dfmnul{i}");
    let dir = std::env::temp_dir().join(format!("dfmn-{pid}-{i}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    world.dirs.push(dir.clone());
    let prefix = format!("dfmn{i}-{pid}");
    world.prefixes.push(prefix.clone());
    let stats = dir.join("stats.json");
    let mut args: Vec<String> = vec!["node".into(), "--chassis".into(), chassis.clone(), "--etcd".into(), etcd.into()];
    args.extend(["--underlay".into(), format!("net_tap_ul{i},iface={underlay}")]);
    args.extend(["--underlay-ip".into(), format!("192.168.77.{i}/24")]);
    // Nodes 1 and 2 have physnet1, on an uplink into the VLAN-filtering bridge.
    let uplink = format!("dfmnup{i}");
    if i <= 2 {
        args.extend(["--bridge-mapping".into(), format!("physnet1:net_tap_up{i},iface={uplink}")]);
    }
    // Three pollers share this machine's two cores: a worker with nothing to do sleeps.
    args.extend(["--idle-sleep-us".into(), "200".into()]);
    args.extend(["--stats-json".into(), stats.display().to_string()]);
    args.extend(["--vhost-dir".into(), dir.display().to_string(), "--".into()]);
    args.extend(eal_args(&prefix));
    spawn_until(world, &args, "running");
    // The underlay TAP is started (plugged before the node says it runs): into the bridge.
    wait_for(&format!("the underlay {underlay}"), Duration::from_secs(10), || link_in(None, &underlay));
    let ns = underlay_ns();
    sh(&["ip", "link", "set", &underlay, "netns", &ns]);
    // A TAP's kernel side starts with the node's MAC: a bridge port with it would take the node's frames
    // for the bridge itself. The cable's far end gets its own.
    let far_end = format!("02:00:00:77:00:{i:02x}");
    sh(&["ip", "-n", &ns, "link", "set", &underlay, "address", &far_end, "mtu", "1600", "master", "br0", "up"]);
    if i <= 2 {
        // A trunk port of the physical network.
        wait_for(&format!("the uplink {uplink}"), Duration::from_secs(10), || link_in(None, &uplink));
        sh(&["ip", "link", "set", &uplink, "netns", &ns]);
        let far_end = format!("02:00:00:78:00:{i:02x}");
        sh(&["ip", "-n", &ns, "link", "set", &uplink, "address", &far_end, "master", "brp", "up"]);
    }
    Node { chassis, underlay, stats }
}

/// The node's counters file.
fn stats(n: &Node) -> Value {
    std::fs::read_to_string(&n.stats).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or(Value::Null)
}

/// A drop counter of the node, added over its ports.
fn drops(n: &Node, reason: &str) -> u64 {
    let s = stats(n);
    s["ports"].as_array().into_iter().flatten().map(|p| p["drops"][reason].as_u64().unwrap_or(0)).sum()
}

/// Runs tests/peer.py (scapy's Geneve, GRE or 802.1Q) with `args` in namespace `ns`.
fn peer(ns: &str, args: &[&str]) -> std::process::Output {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peer.py");
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", ns, "/usr/bin/python3", script])
        .args(args)
        .output()
        .unwrap();
    eprintln!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    out
}

/// Prints every node's port counters if the test fails.
struct DumpOnFailure<'a>(&'a [Node]);

impl Drop for DumpOnFailure<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for n in self.0 {
                eprintln!("{} (underlay {}): {:#}", n.chassis, n.underlay, stats(n)["ports"]);
            }
        }
    }
}

/// Packets the kernel of namespace `ns` received on `dev`.
fn rx_packets(ns: &str, dev: &str) -> u64 {
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", ns, "cat", &format!("/sys/class/net/{dev}/statistics/rx_packets")])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or_else(|_| panic!("rx_packets of {dev} in {ns}"))
}

#[test]
fn three_nodes_carry_traffic_over_tunnels_and_provider_networks() {
    require_root();
    let mut world = World::default();
    let world = &mut world;
    let etcd = Etcd::started("multinode");
    let api_addr = format!("127.0.0.1:{}", free_port());
    let api_args: Vec<String> = ["api", "--listen", &api_addr, "--etcd", &etcd.url].map(String::from).to_vec();
    let mut api_args = api_args;
    api_args.extend(["--network-vlan-ranges", "physnet1:100:199", "--flat-networks", "physnet1"].map(String::from));
    spawn_logged(world, &api_args);
    let api = &Neutron::new(&api_addr);
    wait_for("the API answers", Duration::from_secs(30), || {
        TcpStream::connect(api.addr()).is_ok() && api.get("/").0 == 200
    });

    let ul = underlay_ns();
    sh(&["ip", "netns", "add", &ul]);
    world.namespaces.push(ul.clone());
    sh(&["ip", "-n", &ul, "link", "add", "br0", "type", "bridge"]);
    sh(&["ip", "-n", &ul, "link", "set", "br0", "up"]);
    // The physical network of the provider networks: a bridge. (Not VLAN-filtering: this machine's kernel
    // has neither CONFIG_BRIDGE_VLAN_FILTERING nor 802.1Q; the tags are checked by scapy below.)
    sh(&["ip", "-n", &ul, "link", "add", "brp", "type", "bridge"]);
    sh(&["ip", "-n", &ul, "link", "set", "brp", "up"]);
    let nodes: Vec<Node> = (1..=3).map(|i| start_node(world, &etcd.url, i)).collect();
    let _dump = DumpOnFailure(&nodes);
    let (c1, c2, c3) = (&nodes[0].chassis, &nodes[1].chassis, &nodes[2].chassis);

    // Networks: A (VXLAN, v4 + v6) on nodes 1 and 2; G (Geneve) on 1 and 3; R (GRE) on 2 and 3; D
    // (VXLAN, v4 + v6) on node 3, routed to A.
    let net = |name: &str, kind: &str| {
        let n = api.create("network", json!({ "name": name, "provider:network_type": kind }));
        assert_eq!(n["provider:network_type"], kind);
        assert!(n["provider:segmentation_id"].as_u64().is_some(), "{n}");
        n["id"].as_str().unwrap().to_owned()
    };
    let subnet = |net: &str, cidr: &str, v: u8| {
        api.create("subnet", json!({ "network_id": net, "cidr": cidr, "ip_version": v }))["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (a, g, r, d) = (net("A", "vxlan"), net("G", "geneve"), net("R", "gre"), net("D", "vxlan"));
    let (sa, sa6) = (subnet(&a, "10.10.0.0/24", 4), subnet(&a, "fd00:10::/64", 6));
    let sg = subnet(&g, "10.20.0.0/24", 4);
    let sr = subnet(&r, "10.30.0.0/24", 4);
    let (sd, sd6) = (subnet(&d, "10.40.0.0/24", 4), subnet(&d, "fd00:40::/64", 6));
    let pid = std::process::id() % 100_000;
    let vm = |world: &mut World, name: &str, net: &str, chassis: &str, ips: &[(&str, &str, &str)]| {
        Vm::create(world, api, &format!("dfmn-{name}-{pid}"), net, chassis, ips)
    };
    let a1 = vm(world, "a1", &a, c1, &[(&sa, "10.10.0.11", "10.10.0.1"), (&sa6, "fd00:10::11", "fd00:10::1")]);
    let a2 = vm(world, "a2", &a, c2, &[(&sa, "10.10.0.12", "10.10.0.1"), (&sa6, "fd00:10::12", "fd00:10::1")]);
    let g1 = vm(world, "g1", &g, c1, &[(&sg, "10.20.0.11", "10.20.0.1")]);
    let g3 = vm(world, "g3", &g, c3, &[(&sg, "10.20.0.13", "10.20.0.1")]);
    let r2 = vm(world, "r2", &r, c2, &[(&sr, "10.30.0.12", "10.30.0.1")]);
    let r3 = vm(world, "r3", &r, c3, &[(&sr, "10.30.0.13", "10.30.0.1")]);
    let d3 = vm(world, "d3", &d, c3, &[(&sd, "10.40.0.13", "10.40.0.1"), (&sd6, "fd00:40::13", "fd00:40::1")]);
    for v in [&a1, &a2, &g1, &g3, &r2, &r3, &d3] {
        v.attach(api);
    }

    // Same network, across nodes, over each encapsulation.
    assert!(pings(&a1.ns, a2.ip(false)), "a1 -> a2 over VXLAN (IPv4)");
    assert!(pings(&a2.ns, a1.ip(false)), "a2 -> a1 over VXLAN (IPv4)");
    assert!(pings(&a1.ns, a2.ip(true)), "a1 -> a2 over VXLAN (IPv6)");
    assert!(pings(&g1.ns, g3.ip(false)), "g1 -> g3 over Geneve");
    assert!(pings(&r3.ns, r2.ip(false)), "r3 -> r2 over GRE");

    // Across the distributed router: A (nodes 1 and 2) and D (node 3).
    let router = api.create("router", json!({ "name": "r" }))["id"].as_str().unwrap().to_owned();
    for s in [&sa, &sa6, &sd, &sd6] {
        let (status, v) = api.put(&format!("/v2.0/routers/{router}/add_router_interface"), json!({ "subnet_id": s }));
        assert_eq!(status, 200, "add_router_interface: {v}");
    }
    assert!(pings(&a1.ns, d3.ip(false)), "a1 (node 1) -> d3 (node 3) across the router (IPv4)");
    assert!(pings(&d3.ns, a2.ip(false)), "d3 (node 3) -> a2 (node 2) across the router (IPv4)");
    assert!(pings(&a1.ns, d3.ip(true)), "a1 -> d3 across the router (IPv6)");
    assert!(pings(&d3.ns, a1.ip(true)), "d3 -> a1 across the router (IPv6)");

    // A broadcast on A: to node 2 (a2 gets each one), never to node 3.
    let before = rx_packets(&a2.ns, &a2.tap);
    let _ = std::process::Command::new("ip")
        .args(["netns", "exec", &a1.ns, "ping", "-b", "-q", "-c", "30", "-i", "0.02", "-W", "1", "10.10.0.255"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    std::thread::sleep(Duration::from_millis(1500));
    let got = rx_packets(&a2.ns, &a2.tap) - before;
    assert!(got >= 30, "a2 received {got} of the 30 broadcasts");
    assert_eq!(drops(&nodes[2], "tunnel.unknown_segment"), 0, "node 3 got frames of a network it has no port on");
    // (A node learns a peer's MAC from the reply to its own request, counted, or from the peer's request
    // for its address, which it answers.)
    let learned: u64 = nodes.iter().map(|n| drops(n, "tunnel.arp_learned")).sum();
    assert!(learned > 0, "the nodes resolved each other's underlay MACs by ARP");

    // Distributed DHCP: a VM on node 2 gets its port's address from node 2 itself; its request never
    // leaves that node (node 1, with a port on A too, answers nothing).
    let p = api.create("port", json!({ "network_id": a, "binding:host_id": c2, "name": "w2" }));
    let (port, mac) = (p["id"].as_str().unwrap().to_owned(), p["mac_address"].as_str().unwrap().to_owned());
    let want =
        p["fixed_ips"].as_array().unwrap().iter().find_map(|f| f["ip_address"].as_str().filter(|a| !a.contains(':')));
    let want = want.expect("an IPv4 address on A").to_owned();
    let (ns, tap) = (format!("dfmn-w2-{pid}"), format!("tap{}", &port[..11]));
    sh(&["ip", "netns", "add", &ns]);
    world.namespaces.push(ns.clone());
    plug_into(api, &port, &tap, &mac, &ns);
    let got = std::env::temp_dir().join(format!("dfmn-w2-{pid}.lease"));
    let script = std::env::temp_dir().join(format!("dfmn-w2-{pid}.sh"));
    std::fs::write(&script, format!("#!/bin/sh\n[ \"$1\" = bound ] && echo $ip > {}\nexit 0\n", got.display()))
        .unwrap();
    sh(&["chmod", "+x", &script.display().to_string()]);
    let offered = |n: &Node| stats(n)["slowpath"]["dhcp4.offer"].as_u64().unwrap_or(0);
    let before = offered(&nodes[0]);
    let out = std::process::Command::new("timeout")
        .args(["30", "ip", "netns", "exec", &ns, "busybox", "udhcpc", "-i", &tap, "-q", "-n", "-t", "5", "-T", "2"])
        .args(["-s", &script.display().to_string()])
        .output()
        .unwrap();
    let lease = std::fs::read_to_string(&got).unwrap_or_default();
    let _ = (std::fs::remove_file(&got), std::fs::remove_file(&script));
    assert_eq!(lease.trim(), want, "udhcpc on node 2: {}", String::from_utf8_lossy(&out.stderr));
    wait_for("node 2 counts its offer", Duration::from_secs(3), || offered(&nodes[1]) > 0);
    assert_eq!(offered(&nodes[0]), before, "node 1 answered a VM of node 2");

    // A peer nobody here wrote: the kernel's vxlan, geneve and gretap devices in a namespace on the
    // underlay, registered as a static chassis, with a port bound to it on A, G and R.
    let kx = format!("dfmn-kx-{pid}");
    let kx_chassis = format!("dfmn-kernel-{pid}");
    sh(&["ip", "netns", "add", &kx]);
    world.namespaces.push(kx.clone());
    sh(&["ip", "link", "add", "dfmnkx0", "type", "veth", "peer", "name", "dfmnkx1"]);
    sh(&["ip", "link", "set", "dfmnkx0", "netns", &ul]);
    sh(&["ip", "-n", &ul, "link", "set", "dfmnkx0", "master", "br0", "up"]);
    sh(&["ip", "link", "set", "dfmnkx1", "netns", &kx]);
    sh(&["ip", "-n", &kx, "addr", "add", "192.168.77.100/24", "dev", "dfmnkx1"]);
    sh(&["ip", "-n", &kx, "link", "set", "dfmnkx1", "up"]);
    let out = std::process::Command::new(bin())
        .args(["chassis", "add", &kx_chassis, "--tunnel-ip", "192.168.77.100", "--etcd", &etcd.url])
        .output()
        .unwrap();
    assert!(out.status.success(), "dragonflow chassis add: {}", String::from_utf8_lossy(&out.stderr));
    for (net, sub, ip, dev, from, node_ip) in [
        (&a, &sa, "10.10.0.50", "kvx", &a1, "192.168.77.1"),
        (&g, &sg, "10.20.0.50", "kgn", &g1, "192.168.77.1"),
        (&r, &sr, "10.30.0.50", "kgt", &r2, "192.168.77.2"),
    ] {
        let p = api.create(
            "port",
            json!({ "network_id": net, "binding:host_id": kx_chassis,
                    "fixed_ips": [{ "subnet_id": sub, "ip_address": ip }] }),
        );
        let n = api.show("network", net).unwrap();
        let seg = n["provider:segmentation_id"].as_u64().unwrap().to_string();
        let mac = p["mac_address"].as_str().unwrap();
        if dev == "kvx" {
            let vxlan = ["vxlan", "id", &seg, "remote", node_ip, "local", "192.168.77.100", "dstport", "4789"];
            let mut add = vec!["ip", "-n", &kx, "link", "add", dev, "type"];
            add.extend(vxlan);
            sh(&add);
            sh(&["ip", "-n", &kx, "link", "set", dev, "address", mac, "mtu", "1400", "up"]);
            sh(&["ip", "-n", &kx, "addr", "add", &format!("{ip}/24"), "dev", dev]);
            assert!(pings(&from.ns, ip), "{} -> the kernel's vxlan device ({ip}) on another host", from.ns);
            continue;
        }
        // This machine's kernel has no geneve nor gretap device (CONFIG_GENEVE, CONFIG_NET_IPGRE unset):
        // scapy's own Geneve and GRE code is the peer.
        let kind = if dev == "kgn" { "geneve" } else { "gre" };
        let vm_mac = api.show("port", &from.port).unwrap()["mac_address"].as_str().unwrap().to_owned();
        let out = peer(&kx, &[kind, "dfmnkx1", "192.168.77.100", node_ip, &seg, mac, ip, &vm_mac, from.ip(false)]);
        assert!(out.status.success(), "scapy's {kind} peer -> {} ({}) and back", from.ns, from.ip(false));
    }

    // Provider networks on physnet1 (nodes 1 and 2): VLAN 100 and flat, through the VLAN-filtering bridge;
    // and a host outside the cloud on VLAN 100 (the kernel's 802.1Q sub-interface).
    let provider = |name: &str, kind: &str, vlan: Option<u32>| {
        let mut body = json!({ "name": name, "provider:network_type": kind, "provider:physical_network": "physnet1" });
        if let Some(v) = vlan {
            body["provider:segmentation_id"] = json!(v);
        }
        api.create("network", body)["id"].as_str().unwrap().to_owned()
    };
    let (v, f) = (provider("V", "vlan", Some(100)), provider("F", "flat", None));
    let (sv, sf) = (subnet(&v, "10.60.0.0/24", 4), subnet(&f, "10.70.0.0/24", 4));
    let v1 = vm(world, "v1", &v, c1, &[(&sv, "10.60.0.11", "10.60.0.1")]);
    let v2 = vm(world, "v2", &v, c2, &[(&sv, "10.60.0.12", "10.60.0.1")]);
    let f1 = vm(world, "f1", &f, c1, &[(&sf, "10.70.0.11", "10.70.0.1")]);
    let f2 = vm(world, "f2", &f, c2, &[(&sf, "10.70.0.12", "10.70.0.1")]);
    for x in [&v1, &v2, &f1, &f2] {
        x.attach(api);
    }
    // The hosts outside the cloud below are no members of the VMs' default group: as a Neutron user
    // would, an ingress rule lets their pings in (the replies to the VMs' own pings need none).
    for (x, host) in [(&v2, "10.60.0.50/32"), (&f2, "10.70.0.50/32")] {
        allow_ingress(api, &x.port, "icmp", host);
    }
    assert!(pings(&v1.ns, v2.ip(false)), "v1 -> v2 over VLAN 100");
    assert!(pings(&v2.ns, v1.ip(false)), "v2 -> v1 over VLAN 100");
    assert!(pings(&f2.ns, f1.ip(false)), "f2 -> f1 over the flat network");
    // A host outside the cloud on the physical network: scapy's 802.1Q on VLAN 100 (the VM answers it
    // and ARPs for it, both tagged), the kernel untagged on the flat network.
    let ext = format!("dfmn-ext-{pid}");
    sh(&["ip", "netns", "add", &ext]);
    world.namespaces.push(ext.clone());
    sh(&["ip", "link", "add", "dfmnpx0", "type", "veth", "peer", "name", "dfmnpx1"]);
    sh(&["ip", "link", "set", "dfmnpx0", "netns", &ul]);
    sh(&["ip", "-n", &ul, "link", "set", "dfmnpx0", "master", "brp", "up"]);
    sh(&["ip", "link", "set", "dfmnpx1", "netns", &ext]);
    sh(&["ip", "-n", &ext, "link", "set", "dfmnpx1", "up"]);
    let v2_mac = api.show("port", &v2.port).unwrap()["mac_address"].as_str().unwrap().to_owned();
    let host = ["vlan", "dfmnpx1", "-", "-", "100", "02:00:00:60:00:50", "10.60.0.50", &v2_mac, v2.ip(false)];
    let out = peer(&ext, &host);
    assert!(
        out.status.success(),
        "a host on VLAN 100 -> v2 and back, tagged: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The same to v2 on VLAN 101, which no network has: dropped by name on v2's node.
    let unknown_vlan = || drops(&nodes[1], "provider.unknown_vlan");
    let before = unknown_vlan();
    let tagged_101 = format!(
        "from scapy.all import *; conf.verb = 0; sendp(Ether(src='02:00:00:60:00:50', dst='{v2_mac}') / Dot1Q(vlan=101) / \
         IP(src='10.60.0.50', dst='{}') / ICMP(), iface='dfmnpx1', count=3)",
        v2.ip(false)
    );
    sh(&["ip", "netns", "exec", &ext, "/usr/bin/python3", "-c", &tagged_101]);
    wait_for("VLAN 101 dropped by name", Duration::from_secs(5), || unknown_vlan() >= before + 3);
    sh(&["ip", "-n", &ext, "addr", "add", "10.70.0.50/24", "dev", "dfmnpx1"]);
    assert!(pings(&f1.ns, "10.70.0.50"), "f1 -> a host on the flat network (untagged)");
    assert!(pings(&ext, f2.ip(false)), "a host on the flat network -> f2");

    // The flat network as the router's external network: its gateway, bound by the API to node 1 (the
    // first of the nodes, none serving a gateway yet), with physnet1; SNAT for the VMs of A and D
    // wherever they run (node 3 has no physnet1: its VM's packets go to node 1 in a tunnel); a floating
    // IP for d3 (node 3). The host outside has no route to A nor D: its answers prove the translation.
    let (status, v) = api.put(&format!("/v2.0/networks/{f}"), json!({ "network": { "router:external": true } }));
    assert_eq!(status, 200, "{v}");
    let (status, v) = api
        .put(&format!("/v2.0/routers/{router}"), json!({ "router": { "external_gateway_info": { "network_id": f } } }));
    assert_eq!(status, 200, "{v}");
    let (_, gw) = api.get(&format!("/v2.0/ports?device_id={router}&device_owner=network:router_gateway"));
    assert_eq!(gw["ports"][0]["binding:host_id"], c1.as_str(), "the gateway on node 1: {gw}");
    assert!(pings(&a1.ns, "10.70.0.50"), "a1 (node 1, the gateway's) -> the host outside, SNAT");
    assert!(pings(&a2.ns, "10.70.0.50"), "a2 (node 2) -> the host outside, through node 1's gateway");
    assert!(pings(&d3.ns, "10.70.0.50"), "d3 (node 3, no physnet1) -> the host outside, through node 1");
    // (d3 is of the same default group as f2: the rule above lets the host's pings in.)
    let fip = api.create("floatingip", json!({ "floating_network_id": f, "port_id": d3.port }));
    let fip = fip["floating_ip_address"].as_str().unwrap().to_owned();
    assert!(pings(&ext, &fip), "the host outside -> d3 (node 3) at its floating IP {fip}");

    // Node 3 stops: node 1 drops what it would send there, counted; nodes 1 and 2 go on.
    stop_node(world);
    let no_chassis = || drops(&nodes[0], "tunnel.no_chassis");
    let before = no_chassis();
    wait_for("node 1 counts the traffic to node 3's ports as dropped", Duration::from_secs(10), || {
        let _ = ping(&g1.ns, g3.ip(false));
        no_chassis() > before
    });
    assert!(pings(&a1.ns, a2.ip(false)), "a1 -> a2 with node 3 gone");
    assert!(pings(&a2.ns, a1.ip(true)), "a2 -> a1 (IPv6) with node 3 gone");
}
