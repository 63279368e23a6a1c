//! The Neutron API driven by the real OpenStack command-line client (`python-openstackclient` from PyPI,
//! installed by ci/setup.sh into /opt/df-osc; `DF_OPENSTACK` points elsewhere), with authentication off:
//! `dragonflow api` over the embedded DB, then network, subnet, port and router create / list / show /
//! `router add subnet` / delete, ports' `--extra-dhcp-option`, the network's DHCP port, and Neutron's
//! errors as the client shows them.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

struct Api {
    child: Child,
    dir: std::path::PathBuf,
    endpoint: String,
}

impl Drop for Api {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own, not yet reaped, child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start_api() -> Api {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = std::env::temp_dir().join(format!("df-osc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let listen = format!("127.0.0.1:{port}");
    let child = Command::new(common::bin())
        .args(["api", "--listen", &listen, "--network-vlan-ranges", "physnet1:100:199", "--flat-networks", "public"])
        .arg("--data-dir")
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while std::net::TcpStream::connect(&listen).is_err() {
        assert!(start.elapsed() < Duration::from_secs(20), "the API did not listen within 20 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    Api { child, dir, endpoint: format!("http://{listen}/") }
}

/// `openstack ARGS` against the API; its status, stdout and stderr.
fn openstack(api: &Api, args: &[&str]) -> (bool, String, String) {
    let bin = std::env::var("DF_OPENSTACK").unwrap_or_else(|_| "/opt/df-osc/bin/openstack".into());
    let out = Command::new(&bin)
        .args(["--os-auth-type", "none", "--os-endpoint", &api.endpoint])
        .args(args)
        .env_remove("OS_CLOUD")
        .output()
        .unwrap_or_else(|e| panic!("{bin}: {e} (ci/setup.sh installs python-openstackclient)"));
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

fn json(api: &Api, args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.extend(["-f", "json"]);
    let (ok, out, err) = openstack(api, &a);
    assert!(ok, "openstack {args:?} failed: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("openstack {args:?}: {e}: {out}"))
}

#[test]
fn the_openstack_client_drives_networks_subnets_ports_and_routers() {
    let api = start_api();
    let net = json(&api, &["network", "create", "net1"]);
    assert_eq!(
        (net["name"].as_str(), net["mtu"].as_u64(), net["status"].as_str()),
        (Some("net1"), Some(1450), Some("ACTIVE")),
        "a VXLAN tenant network on a 1500 underlay: {net}"
    );
    assert_eq!((&net["provider:network_type"], &net["provider:segmentation_id"]), (&"vxlan".into(), &1.into()));
    let sub = json(&api, &["subnet", "create", "sub1", "--network", "net1", "--subnet-range", "10.0.0.0/24"]);
    assert_eq!(sub["gateway_ip"], "10.0.0.1");
    let v6 = json(
        &api,
        &["subnet", "create", "sub6", "--network", "net1", "--ip-version", "6", "--subnet-range", "2001:db8::/64"],
    );
    assert_eq!(v6["ip_version"], 6);
    let port =
        json(&api, &["port", "create", "p1", "--network", "net1", "--fixed-ip", "subnet=sub1,ip-address=10.0.0.10"]);
    assert!(port["mac_address"].as_str().unwrap().starts_with("fa:16:3e:"));
    assert_eq!(port["fixed_ips"][0]["ip_address"], "10.0.0.10");
    // Neutron's extra_dhcp_opt extension, as the client sends it (ip-version as a string) and shows it; a
    // `port set` merges by name and IP version.
    let mtu = "name=mtu,value=1400,ip-version=4";
    let create = ["port", "create", "pdhcp", "--network", "net1", "--extra-dhcp-option", mtu, "--extra-dhcp-option"];
    let with_opts = json(&api, &[&create[..], &["name=ntp-server,value=10.0.0.9"]].concat());
    let shown = json(&api, &["port", "show", "pdhcp"]);
    let want = serde_json::json!([
        {"opt_name": "mtu", "opt_value": "1400", "ip_version": 4},
        {"opt_name": "ntp-server", "opt_value": "10.0.0.9", "ip_version": 4},
    ]);
    assert_eq!((&with_opts["extra_dhcp_opts"], &shown["extra_dhcp_opts"]), (&want, &want), "{shown}");
    let (ok, _, err) =
        openstack(&api, &["port", "set", "pdhcp", "--extra-dhcp-option", "name=mtu,value=1280,ip-version=4"]);
    assert!(ok, "{err}");
    assert_eq!(json(&api, &["port", "show", "pdhcp"])["extra_dhcp_opts"][0]["opt_value"], "1280");
    let (ok, _, err) = openstack(
        &api,
        &["port", "create", "bad", "--network", "net1", "--extra-dhcp-option", "name=mtu,value=1,ip-version=5"],
    );
    assert!(!ok && err.contains("No valid key specs matched"), "{err}");
    let (ok, _, err) = openstack(&api, &["port", "delete", "pdhcp"]);
    assert!(ok, "{err}");
    let router = json(&api, &["router", "create", "r1"]);
    assert_eq!(router["name"], "r1");
    let (ok, _, err) = openstack(&api, &["router", "add", "subnet", "r1", "sub1"]);
    assert!(ok, "{err}");

    // Provider networks as an admin makes them, and Neutron's refusals as the client shows them.
    let vlan = ["network", "create", "--provider-network-type", "vlan", "--provider-physical-network", "physnet1"];
    let v = json(&api, &[&vlan[..], &["--provider-segment", "150", "vlan150"]].concat());
    assert_eq!(
        (&v["provider:network_type"], &v["provider:physical_network"], &v["provider:segmentation_id"], &v["mtu"]),
        (&"vlan".into(), &"physnet1".into(), &150.into(), &1500.into()),
        "{v}"
    );
    let (ok, _, err) = openstack(&api, &[&vlan[..], &["--provider-segment", "150", "again"]].concat());
    assert!(!ok && err.contains("The VLAN 150 on physical network physnet1 is in use"), "{err}");
    let (ok, _, err) = openstack(&api, &[&vlan[..], &["--provider-segment", "4095", "toobig"]].concat());
    assert!(!ok && err.contains("out of range"), "{err}");
    let flat = ["network", "create", "--provider-network-type", "flat", "--provider-physical-network", "public", "ext"];
    assert_eq!(json(&api, &flat)["provider:physical_network"], "public");
    let (ok, _, err) = openstack(
        &api,
        &["network", "create", "--provider-network-type", "flat", "--provider-physical-network", "nowhere", "x"],
    );
    assert!(!ok && err.contains("physical_network 'nowhere' unknown"), "{err}");
    for n in ["vlan150", "ext"] {
        let (ok, _, err) = openstack(&api, &["network", "delete", n]);
        assert!(ok, "{err}");
    }

    let nets = json(&api, &["network", "list"]);
    assert_eq!(nets.as_array().unwrap().len(), 1);
    let ports = json(&api, &["port", "list", "--network", "net1"]);
    assert_eq!(ports.as_array().unwrap().len(), 3, "p1, the router's interface, the DHCP port: {ports}");
    let dhcp = json(&api, &["port", "list", "--network", "net1", "--device-owner", "network:dhcp"]);
    assert_eq!(dhcp[0]["Fixed IP Addresses"][0]["ip_address"], "10.0.0.2", "the network's DHCP port: {dhcp}");
    assert_eq!(json(&api, &["subnet", "list"]).as_array().unwrap().len(), 2);
    assert_eq!(json(&api, &["router", "list"]).as_array().unwrap().len(), 1);
    assert_eq!(json(&api, &["network", "show", "net1"])["subnets"].as_array().unwrap().len(), 2);
    assert_eq!(json(&api, &["port", "show", "p1"])["name"], "p1");
    assert_eq!(json(&api, &["router", "show", "r1"])["name"], "r1");

    // Neutron's errors, as the client reports them.
    let (ok, _, err) =
        openstack(&api, &["port", "create", "p2", "--network", "net1", "--fixed-ip", "ip-address=10.0.0.10"]);
    assert!(!ok && err.contains("10.0.0.10"), "a duplicate address: {err}");
    let (ok, _, err) = openstack(&api, &["network", "delete", "net1"]);
    assert!(!ok && err.contains("ports still in use"), "{err}");
    let (ok, _, _) =
        openstack(&api, &["subnet", "create", "bad", "--network", "net1", "--subnet-range", "10.0.0.128/25"]);
    assert!(!ok, "an overlapping subnet");

    for args in [
        &["router", "remove", "subnet", "r1", "sub1"][..],
        &["router", "delete", "r1"],
        &["port", "delete", "p1"],
        &["subnet", "delete", "sub1"],
        &["subnet", "delete", "sub6"],
        &["network", "delete", "net1"],
    ] {
        let (ok, _, err) = openstack(&api, args);
        assert!(ok, "openstack {args:?}: {err}");
    }
    assert!(json(&api, &["network", "list"]).as_array().unwrap().is_empty());
    let (ok, _, _) = openstack(&api, &["network", "show", "net1"]);
    assert!(!ok);
}
