//! Distributed DHCP and IPv6 address configuration, end to end with real clients: one all-in-one node
//! (API, embedded DB, switch), VMs as network namespaces holding the TAP devices the node plumbs, and the
//! clients a VM image carries, installed by `ci/setup.sh`:
//! - busybox `udhcpc`, ISC `dhclient` and `dhcpcd` each obtain the port's address, the gateway, the DNS
//!   server, the MTU and the static routes, then ping the gateway (a router interface);
//! - a renewal is observed, and it brings the DNS server, host route and MTU changed (through the API)
//!   during the lease to the client;
//! - the kernel's own SLAAC gives a VM the address the API shows for its port (EUI-64), from the router's
//!   advertisements, and the VM pings its IPv6 gateway;
//! - `dhclient -6` (stateful DHCPv6) obtains the port's IPv6 address;
//! - a VM on a subnet without DHCP gets no answer.
//!
//! Namespaces (and what runs in them), the node and its files are removed even when a check fails.

mod common;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::cloud::*;
use common::*;
use serde_json::{json, Value};

/// Seconds: short, so that the renewal (at half of it) comes within the test.
const LEASE: u64 = 16;

/// A VM without an address yet: its namespace and port.
struct Guest {
    ns: String,
    tap: String,
    port: String,
    mac: String,
    /// The port's addresses, as the API gave them (IPv4 first).
    ips: Vec<String>,
}

impl Guest {
    /// A port on `network` bound here (addresses from the API's IPAM) and a namespace holding its TAP.
    fn new(world: &mut World, api: &Neutron, tag: &str, network: &str, chassis: &str) -> Guest {
        let ns = format!("dfdh-{tag}-{}", std::process::id() % 100_000);
        let p = api.create("port", json!({ "network_id": network, "binding:host_id": chassis, "name": tag }));
        sh(&["ip", "netns", "add", &ns]);
        world.namespaces.push(ns.clone());
        let id = p["id"].as_str().unwrap().to_owned();
        let mut ips: Vec<String> =
            p["fixed_ips"].as_array().unwrap().iter().map(|f| f["ip_address"].as_str().unwrap().to_owned()).collect();
        ips.sort_by_key(|a| a.contains(':'));
        let g = Guest {
            tap: format!("tap{}", &id[..11]),
            port: id,
            mac: p["mac_address"].as_str().unwrap().into(),
            ns,
            ips,
        };
        plug_into(api, &g.port, &g.tap, &g.mac, &g.ns);
        let n = g.ns.as_str();
        // What a client writes to /etc/resolv.conf lands here (`ip netns exec` mounts it over the host's).
        std::fs::create_dir_all(format!("/etc/netns/{n}")).unwrap();
        std::fs::write(format!("/etc/netns/{n}/resolv.conf"), "# the VM's\n").unwrap();
        g
    }

    fn v4(&self) -> &str {
        &self.ips[0]
    }

    /// `ip -n NS ARGS`'s output.
    fn ip(&self, args: &[&str]) -> String {
        let out = Command::new("ip").arg("-n").arg(&self.ns).args(args).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn resolv_conf(&self) -> String {
        std::fs::read_to_string(format!("/etc/netns/{}/resolv.conf", self.ns)).unwrap_or_default()
    }

    /// Runs `cmd` in the VM, up to `limit`; its status and output.
    fn run(&self, cmd: &[&str], limit: Duration) -> (bool, String) {
        let secs = limit.as_secs().to_string();
        let mut v = vec!["timeout", secs.as_str(), "ip", "netns", "exec", self.ns.as_str()];
        v.extend_from_slice(cmd);
        let out = Command::new(v[0]).args(&v[1..]).stdin(Stdio::null()).output().unwrap();
        (
            out.status.success(),
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
        )
    }

    /// Checks what a client configured: the port's address, the gateway, the MTU (the link's, or, as
    /// dhcpcd applies it, its routes') and the host route.
    fn check_configured(&self, client: &str, gw: &str, mtu: u32, route: &str) {
        let addr = self.ip(&["-4", "addr", "show", &self.tap]);
        let routes = self.ip(&["-4", "route"]);
        assert!(addr.contains(&format!("inet {}/24", self.v4())), "{client}: the port's address {}: {addr}", self.v4());
        let on_routes = routes
            .lines()
            .filter(|l| !l.is_empty())
            .all(|l| l.ends_with(&format!("mtu {mtu} ")) || l.contains(&format!("mtu {mtu}")));
        assert!(addr.contains(&format!("mtu {mtu} ")) || on_routes, "{client}: MTU {mtu}: {addr}{routes}");
        assert!(routes.contains(&format!("default via {gw}")), "{client}: the gateway: {routes}");
        assert!(routes.contains(route), "{client}: the host route {route}: {routes}");
        assert!(pings(&self.ns, gw), "{client}: pings the gateway {gw}");
    }
}

/// A script udhcpc runs on each event: it configures the interface as busybox's default script does,
/// and appends what it got to `log` (one line per event).
fn udhcpc_script(dir: &Path, log: &Path) -> PathBuf {
    let path = dir.join("udhcpc.sh");
    let script = format!(
        r#"#!/bin/sh
echo "$1 ip=$ip mask=$mask router=$router dns=$dns mtu=$mtu routes=$staticroutes lease=$lease serverid=$serverid" >> {log}
case "$1" in
  bound|renew)
    ip addr replace $ip/$mask dev $interface
    [ -n "$mtu" ] && ip link set dev $interface mtu $mtu
    set -- $staticroutes
    while [ $# -ge 2 ]; do
      if [ "$1" = 0.0.0.0/0 ]; then ip route replace default via $2 dev $interface; else ip route replace $1 via $2 dev $interface; fi
      shift 2
    done
    ;;
esac
"#,
        log = log.display()
    );
    std::fs::write(&path, script).unwrap();
    sh(&["chmod", "+x", &path.display().to_string()]);
    path
}

/// The node's slow-path counter `name` (stats JSON, written every second).
fn slowpath(stats: &Path, name: &str) -> u64 {
    let Ok(text) = std::fs::read_to_string(stats) else { return 0 };
    let Ok(r) = serde_json::from_str::<Value>(&text) else { return 0 };
    r["slowpath"][name].as_u64().unwrap_or(0)
}

#[test]
fn real_clients_configure_vms_from_the_api() {
    require_root();
    for tool in ["busybox", "dhclient", "dhcpcd"] {
        let found = Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().unwrap().status.success();
        assert!(found, "{tool} is missing: ci/setup.sh installs it");
    }
    let mut world = World::default();
    let dir = TempDir::new("dhcp");
    let (chassis, prefix) = ("dhcp-node", prefix("dhcp"));
    world.prefixes.push(prefix.clone());
    let api_addr = format!("127.0.0.1:{}", free_port());
    let lease = LEASE.to_string();
    let args =
        all_in_one(chassis, &dir.0, &prefix, &api_addr, &["--dhcp-lease-time", &lease, "--idle-sleep-us", "100"]);
    spawn_until(&mut world, &args, "dragonflow: Neutron API");
    let api = &Neutron::new(&api_addr);
    wait_for("the API answers", Duration::from_secs(30), || {
        TcpStream::connect(api.addr()).is_ok() && api.get("/").0 == 200
    });
    let stats = dir.join("stats.json");

    // net1: IPv4 with DHCP (DNS, a host route, MTU 1400), IPv6 SLAAC; a router on both.
    let net1 = api.create("network", json!({ "name": "dh1", "mtu": 1400 }))["id"].as_str().unwrap().to_owned();
    let s4 = api.create(
        "subnet",
        json!({ "network_id": net1, "cidr": "10.20.0.0/24", "ip_version": 4, "dns_nameservers": ["10.20.0.53"],
                "host_routes": [{ "destination": "10.99.0.0/16", "nexthop": "10.20.0.7" }] }),
    )["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let s6 = api.create(
        "subnet",
        json!({ "network_id": net1, "cidr": "2001:db8:20::/64", "ip_version": 6,
                "ipv6_ra_mode": "slaac", "ipv6_address_mode": "slaac" }),
    )["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let router = api.create("router", json!({ "name": "dh-r1" }))["id"].as_str().unwrap().to_owned();
    for s in [&s4, &s6] {
        let (status, v) = api.put(&format!("/v2.0/routers/{router}/add_router_interface"), json!({ "subnet_id": s }));
        assert_eq!(status, 200, "add_router_interface: {v}");
    }
    let (gw, gw6) = ("10.20.0.1", "2001:db8:20::1");

    // busybox udhcpc: bound, then a renewal that brings what changed meanwhile.
    let vm1 = Guest::new(&mut world, api, "udhcpc", &net1, chassis);
    let log = dir.join("udhcpc.log");
    let script = udhcpc_script(&dir.0, &log);
    let (ok, out) = vm1.run(
        &[
            "busybox",
            "udhcpc",
            "-i",
            &vm1.tap,
            "-s",
            &script.display().to_string(),
            "-q",
            "-n",
            "-t",
            "5",
            "-T",
            "2",
            "-O",
            "staticroutes",
            "-O",
            "mtu",
        ],
        Duration::from_secs(30),
    );
    assert!(ok, "udhcpc: {out}");
    let events = std::fs::read_to_string(&log).unwrap();
    let bound = events.lines().find(|l| l.starts_with("bound")).unwrap_or_else(|| panic!("udhcpc bound: {events}"));
    assert!(bound.contains("dns=10.20.0.53") && bound.contains("serverid=10.20.0.2"), "{bound}");
    assert!(bound.contains(&format!("lease={LEASE}")), "{bound}");
    vm1.check_configured("udhcpc", gw, 1400, "10.99.0.0/16 via 10.20.0.7");

    // ISC dhclient, with Debian's dhclient-script (resolv.conf, classless routes, MTU).
    let vm2 = Guest::new(&mut world, api, "dhclient", &net1, chassis);
    let conf = dir.join("dhclient.conf");
    std::fs::write(
        &conf,
        "option rfc3442-classless-static-routes code 121 = array of unsigned integer 8;\n\
         request subnet-mask, broadcast-address, routers, domain-name, domain-name-servers, host-name, interface-mtu, rfc3442-classless-static-routes;\n",
    )
    .unwrap();
    let (leases, pid) = (dir.join("dhclient.leases"), dir.join("dhclient.pid"));
    let dhclient = |g: &Guest, extra: &[&str]| {
        let (c, l, p) = (conf.display().to_string(), leases.display().to_string(), pid.display().to_string());
        let mut cmd = vec!["dhclient", "-v", "-1", "-cf", &c, "-lf", &l, "-pf", &p];
        cmd.extend_from_slice(extra);
        cmd.push(&g.tap);
        g.run(&cmd, Duration::from_secs(40))
    };
    let (ok, out) = dhclient(&vm2, &[]);
    assert!(ok && out.contains(&format!("DHCPACK of {}", vm2.v4())), "dhclient: {out}");
    vm2.check_configured("dhclient", gw, 1400, "10.99.0.0/16 via 10.20.0.7");
    assert!(vm2.resolv_conf().contains("nameserver 10.20.0.53"), "dhclient's resolv.conf: {}", vm2.resolv_conf());

    // dhcpcd: one shot, its own configuration of the interface; the options it got, from its hook's
    // environment.
    let vm3 = Guest::new(&mut world, api, "dhcpcd", &net1, chassis);
    let env = dir.join("dhcpcd.env");
    let hook = dir.join("dhcpcd-hook.sh");
    std::fs::write(&hook, format!("#!/bin/sh\nenv >> {}\n", env.display())).unwrap();
    sh(&["chmod", "+x", &hook.display().to_string()]);
    let (h, t) = (hook.display().to_string(), vm3.tap.clone());
    let (ok, out) = vm3.run(
        &["dhcpcd", "-4", "-1", "-w", "--nobackground", "-f", "/dev/null", "-c", &h, "-o", "interface_mtu", &t],
        Duration::from_secs(40),
    );
    let _ = std::fs::remove_file(format!("/var/lib/dhcpcd/{}.lease", vm3.tap));
    assert!(ok, "dhcpcd: {out}");
    vm3.check_configured("dhcpcd", gw, 1400, "10.99.0.0/16 via 10.20.0.7");
    let got = std::fs::read_to_string(&env).unwrap_or_default();
    assert!(got.contains("new_domain_name_servers=10.20.0.53"), "dhcpcd's DNS: {got}");

    // A renewal (udhcpc in the background, at half the lease) brings the DNS server, host route and MTU
    // changed since the client got its lease.
    let renewed_before = slowpath(&stats, "dhcp4.renew");
    let lines = |prefix: &str| -> Vec<String> {
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        log.lines().filter(|l| l.starts_with(prefix)).map(String::from).collect()
    };
    let bound_before = lines("bound").len();
    let mut bg = Command::new("ip")
        .args(["netns", "exec", &vm1.ns, "busybox", "udhcpc", "-f", "-i", &vm1.tap])
        .args(["-s", &script.display().to_string(), "-O", "staticroutes", "-O", "mtu"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("udhcpc bound again", Duration::from_secs(10), || lines("bound").len() > bound_before);
    let bound = lines("bound").pop().unwrap();
    assert!(bound.contains("dns=10.20.0.53") && bound.contains("mtu=1400"), "the lease before the change: {bound}");
    let (s, v) = api.put(
        &format!("/v2.0/subnets/{s4}"),
        json!({ "subnet": { "dns_nameservers": ["10.20.0.54"], "host_routes": [{ "destination": "10.98.0.0/16", "nexthop": "10.20.0.8" }] } }),
    );
    assert_eq!(s, 200, "subnet update: {v}");
    let (s, v) = api.put(&format!("/v2.0/networks/{net1}"), json!({ "network": { "mtu": 1300 } }));
    assert_eq!(s, 200, "network update: {v}");
    let renewed = (0..(LEASE * 10)).any(|_| {
        std::thread::sleep(Duration::from_millis(200));
        !lines("renew").is_empty()
    });
    let _ = bg.kill();
    let _ = bg.wait();
    assert!(renewed, "udhcpc renewed within the lease: {:?}", lines(""));
    let renew = lines("renew").remove(0);
    assert!(renew.contains("dns=10.20.0.54") && renew.contains("mtu=1300"), "the renewal's options: {renew}");
    assert!(renew.contains("10.98.0.0/16 10.20.0.8"), "the renewal's routes: {renew}");
    wait_for("the node counts the renewal", Duration::from_secs(3), || {
        slowpath(&stats, "dhcp4.renew") > renewed_before
    });

    // SLAAC: the kernel takes the router's advertisements and makes the address the API shows.
    let vm4 = Guest::new(&mut world, api, "slaac", &net1, chassis);
    let want6 = vm4.ips.iter().find(|a| a.contains(':')).expect("an EUI-64 address on the SLAAC subnet").clone();
    ns_sh(&vm4.ns, &["sysctl", "-qw", &format!("net.ipv6.conf.{}.accept_ra=2", vm4.tap)]);
    sh(&["ip", "-n", &vm4.ns, "link", "set", &vm4.tap, "down"]);
    sh(&["ip", "-n", &vm4.ns, "link", "set", &vm4.tap, "up"]);
    wait_for("SLAAC gives the API's address", Duration::from_secs(20), || {
        vm4.ip(&["-6", "addr", "show", &vm4.tap]).contains(&format!("inet6 {want6}/64"))
    });
    assert!(vm4.ip(&["-6", "route"]).contains("default via fe80::"), "a default route from the advertisement");
    assert!(pings(&vm4.ns, gw6), "pings its IPv6 gateway");

    // Stateful DHCPv6 (dhclient -6) on a network of its own, with its router.
    let net2 = api.create("network", json!({ "name": "dh2" }))["id"].as_str().unwrap().to_owned();
    let s6b = api.create(
        "subnet",
        json!({ "network_id": net2, "cidr": "2001:db8:21::/64", "ip_version": 6,
                "ipv6_ra_mode": "dhcpv6-stateful", "ipv6_address_mode": "dhcpv6-stateful" }),
    )["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, v) = api.put(&format!("/v2.0/routers/{router}/add_router_interface"), json!({ "subnet_id": s6b }));
    assert_eq!(status, 200, "add_router_interface: {v}");
    let vm5 = Guest::new(&mut world, api, "dhcp6", &net2, chassis);
    let want6 = vm5.ips.iter().find(|a| a.contains(':')).expect("a stateful address").clone();
    ns_sh(&vm5.ns, &["sysctl", "-qw", &format!("net.ipv6.conf.{}.accept_dad=0", vm5.tap)]);
    wait_for("the link-local address", Duration::from_secs(10), || {
        let a = vm5.ip(&["-6", "addr", "show", &vm5.tap]);
        a.contains("fe80::") && !a.contains("tentative")
    });
    let (leases6, pid6) = (dir.join("dhclient6.leases"), dir.join("dhclient6.pid"));
    let (l6, p6, c6) = (leases6.display().to_string(), pid6.display().to_string(), conf.display().to_string());
    let (ok, out) = vm5.run(
        &["dhclient", "-6", "-v", "-1", "-cf", &c6, "-lf", &l6, "-pf", &p6, &vm5.tap.clone()],
        Duration::from_secs(40),
    );
    assert!(ok, "dhclient -6: {out}");
    assert!(
        vm5.ip(&["-6", "addr", "show", &vm5.tap]).contains(&format!("inet6 {want6}/")),
        "the port's IPv6 address {want6}: {out}"
    );

    // No DHCP on the subnet: no answer.
    let net3 = api.create("network", json!({ "name": "dh3" }))["id"].as_str().unwrap().to_owned();
    api.create("subnet", json!({ "network_id": net3, "cidr": "10.23.0.0/24", "ip_version": 4, "enable_dhcp": false }));
    let vm6 = Guest::new(&mut world, api, "nodhcp", &net3, chassis);
    let offers = slowpath(&stats, "dhcp4.offer");
    let (ok, out) = vm6.run(
        &["busybox", "udhcpc", "-i", &vm6.tap, "-s", "/bin/true", "-q", "-n", "-t", "3", "-T", "1"],
        Duration::from_secs(20),
    );
    assert!(!ok && !out.contains("obtained"), "no lease without DHCP: {out}");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(slowpath(&stats, "dhcp4.offer"), offers, "nothing offered");
}
