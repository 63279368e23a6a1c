//! The cloud around a node, for the end-to-end tests: the Neutron API over HTTP, namespaces as VMs, the
//! processes a test starts (removed with everything else it made, even when a check fails), a real etcd.
#![allow(dead_code)]

use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::bin;
#[allow(unused_imports)] // (each test binary uses a part)
pub use test_support::{free_port, Etcd, Neutron};

/// Everything a test started, removed on drop.
#[derive(Default)]
pub struct World {
    pub children: Vec<Child>,
    pub namespaces: Vec<String>,
    pub dirs: Vec<PathBuf>,
    pub prefixes: Vec<String>,
}

impl Drop for World {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in &self.namespaces {
            // What a test ran inside (a DHCP client) outlives the namespace's name otherwise.
            if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace().filter_map(|p| p.parse::<i32>().ok())
                {
                    // SAFETY: kill(2) on a process of the namespace the test made; nothing is borrowed.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
            let _ = std::fs::remove_dir_all(format!("/etc/netns/{ns}"));
        }
        for d in &self.dirs {
            let _ = std::fs::remove_dir_all(d);
        }
        for p in &self.prefixes {
            let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{p}"));
        }
    }
}

pub fn sh(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

pub fn ns_sh(ns: &str, args: &[&str]) {
    let mut v = vec!["ip", "netns", "exec", ns];
    v.extend_from_slice(args);
    sh(&v);
}

pub fn ping(ns: &str, addr: &str) -> bool {
    let v6 = addr.contains(':');
    Command::new("ip")
        .args(["netns", "exec", ns, "ping", if v6 { "-6" } else { "-4" }, "-c", "2", "-i", "0.2", "-W", "1", addr])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

/// Pings until one succeeds (a first ping may wait for neighbour discovery or a publication), up to 10 s.
pub fn pings(ns: &str, addr: &str) -> bool {
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        if ping(ns, addr) {
            return true;
        }
    }
    false
}

pub fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < end, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn link_in(ns: Option<&str>, dev: &str) -> bool {
    let mut c = Command::new("ip");
    if let Some(ns) = ns {
        c.args(["-n", ns]);
    }
    c.args(["link", "show", dev]).stdout(Stdio::null()).stderr(Stdio::null()).status().unwrap().success()
}

/// A VM: a namespace and the port it is plugged into.
pub struct Vm {
    pub ns: String,
    pub port: String,
    pub mac: String,
    pub tap: String,
    /// (address, prefix length, gateway)
    pub addrs: Vec<(String, u8, String)>,
}

impl Vm {
    /// A port on `network` bound to `chassis` with fixed IPs `ips` (subnet id, address, gateway; /24 for
    /// IPv4, /64 for IPv6) made through `api`, and a namespace `ns` for it, removed with
    /// `world`. Not attached yet.
    pub fn create(
        world: &mut World,
        api: &Neutron,
        ns: &str,
        network: &str,
        chassis: &str,
        ips: &[(&str, &str, &str)],
    ) -> Vm {
        Vm::create_with(world, api, ns, network, chassis, ips, json!({}))
    }

    /// As [`Vm::create`], the port made with the attributes `extra` besides (`security_groups`,
    /// `project_id`, `port_security_enabled`, …).
    pub fn create_with(
        world: &mut World,
        api: &Neutron,
        ns: &str,
        network: &str,
        chassis: &str,
        ips: &[(&str, &str, &str)],
        extra: Value,
    ) -> Vm {
        let fixed: Vec<Value> = ips.iter().map(|(s, ip, _)| json!({ "subnet_id": s, "ip_address": ip })).collect();
        let mut body = json!({ "network_id": network, "fixed_ips": fixed, "binding:host_id": chassis, "name": ns });
        body.as_object_mut().unwrap().extend(extra.as_object().expect("attributes").clone());
        let p = api.create("port", body);
        let id = p["id"].as_str().unwrap().to_owned();
        sh(&["ip", "netns", "add", ns]);
        world.namespaces.push(ns.to_owned());
        let addrs = ips
            .iter()
            .map(|(_, ip, gw)| (ip.to_string(), if ip.contains(':') { 64 } else { 24 }, gw.to_string()))
            .collect();
        Vm {
            ns: ns.to_owned(),
            tap: format!("tap{}", &id[..11]),
            port: id,
            mac: p["mac_address"].as_str().unwrap().to_owned(),
            addrs,
        }
    }

    /// Moves the port's TAP into the namespace ([`plug_into`]) and configures it as the VM.
    pub fn attach(&self, api: &Neutron) {
        plug_into(api, &self.port, &self.tap, &self.mac, &self.ns);
        let n = self.ns.as_str();
        for (a, len, gw) in &self.addrs {
            let cidr = format!("{a}/{len}");
            if a.contains(':') {
                sh(&["ip", "-n", n, "-6", "addr", "add", &cidr, "dev", &self.tap, "nodad"]);
                sh(&["ip", "-n", n, "-6", "route", "add", "default", "via", gw, "dev", &self.tap]);
            } else {
                sh(&["ip", "-n", n, "addr", "add", &cidr, "dev", &self.tap]);
                sh(&["ip", "-n", n, "route", "add", "default", "via", gw, "dev", &self.tap]);
            }
        }
    }

    pub fn ip(&self, v6: bool) -> &str {
        &self.addrs.iter().find(|(a, _, _)| a.contains(':') == v6).expect("an address of that family").0
    }
}

/// Moves port `port`'s TAP `tap` into namespace `ns` once the node says the port is plugged (ACTIVE
/// through `api`: its device is started; moving a TAP before that fails the device's start), with the
/// port's MAC, up, router advertisements off (a test that wants them turns them on).
pub fn plug_into(api: &Neutron, port: &str, tap: &str, mac: &str, ns: &str) {
    wait_for(&format!("the node plugs {port}"), Duration::from_secs(10), || {
        api.show("port", port).is_some_and(|p| p["status"] == "ACTIVE")
    });
    wait_for(&format!("the node plumbs {tap}"), Duration::from_secs(10), || link_in(None, tap));
    sh(&["ip", "link", "set", tap, "netns", ns]);
    ns_sh(ns, &["sysctl", "-qw", "net.ipv6.conf.all.accept_ra=0", "net.ipv6.conf.default.accept_ra=0"]);
    ns_sh(ns, &["sysctl", "-qw", &format!("net.ipv6.conf.{tap}.accept_ra=0")]);
    sh(&["ip", "-n", ns, "link", "set", tap, "address", mac]);
    sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
    sh(&["ip", "-n", ns, "link", "set", tap, "up"]);
}

/// `openstack ARGS` (the real client: `python-openstackclient`, installed by ci/setup.sh into
/// /opt/df-osc; `DF_OPENSTACK` names another) against `api` with authentication off; its status, stdout
/// and stderr.
pub fn openstack(api: &Neutron, args: &[&str]) -> (bool, String, String) {
    let bin = std::env::var("DF_OPENSTACK").unwrap_or_else(|_| "/opt/df-osc/bin/openstack".into());
    let endpoint = format!("http://{}/", api.addr());
    let out = Command::new(&bin)
        .args(["--os-auth-type", "none", "--os-endpoint", &endpoint])
        .args(args)
        .env_remove("OS_CLOUD")
        .output()
        .unwrap_or_else(|e| panic!("{bin}: {e} (ci/setup.sh installs python-openstackclient)"));
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// `openstack ARGS -f json`, which must succeed: what it printed.
pub fn openstack_json(api: &Neutron, args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.extend(["-f", "json"]);
    let (ok, out, err) = openstack(api, &a);
    assert!(ok, "openstack {args:?} failed: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("openstack {args:?}: {e}: {out}"))
}

/// Lets `protocol` (`icmp`, `tcp`, …) in to port `port` from `remote_ip_prefix`, IPv4: an ingress rule on
/// the port's first security group, as a Neutron user opens a VM to what is no member of its group (a
/// host outside the cloud); its id.
pub fn allow_ingress(api: &Neutron, port: &str, protocol: &str, remote_ip_prefix: &str) -> String {
    let p = api.show("port", port).expect("the port");
    let group = p["security_groups"][0].as_str().expect("a port with a security group").to_owned();
    let rule = json!({ "security_group_rule": { "security_group_id": group, "direction": "ingress",
                       "ethertype": "IPv4", "protocol": protocol, "remote_ip_prefix": remote_ip_prefix } });
    let (status, v) = api.post("/v2.0/security-group-rules", rule);
    assert_eq!(status, 201, "an ingress rule for {port}: {v}");
    v["security_group_rule"]["id"].as_str().unwrap().to_owned()
}

pub fn eal_args(prefix: &str) -> Vec<String> {
    ["-l", "0-1", "--main-lcore", "0", "--no-huge", "-m", "1024", "--no-pci", "--file-prefix", prefix]
        .map(String::from)
        .to_vec()
}

/// `dragonflow all-in-one` over an embedded DB in `dir`, the API on `api`, counters in `dir/stats.json`,
/// with `extra` flags.
pub fn all_in_one(chassis: &str, dir: &std::path::Path, prefix: &str, api: &str, extra: &[&str]) -> Vec<String> {
    let (db, stats) = (dir.join("db"), dir.join("stats.json"));
    let mut v: Vec<String> = ["all-in-one", "--chassis", chassis, "--listen", api].map(String::from).to_vec();
    v.extend(["--data-dir".into(), db.display().to_string(), "--stats-json".into(), stats.display().to_string()]);
    v.extend(extra.iter().map(|s| s.to_string()));
    v.push("--".into());
    v.extend(eal_args(prefix));
    v
}

/// Starts `dragonflow ARGS -- EAL`, echoing its stderr, and returns once it printed `ready`.
pub fn spawn_until(world: &mut World, args: &[String], ready: &str) -> Log {
    let log = spawn_logged(world, args);
    assert!(log.wait_for(ready, 1, Duration::from_secs(60)), "dragonflow {args:?} did not print {ready:?}");
    log
}

/// Starts `dragonflow ARGS`, its stderr echoed and kept in the returned log.
pub fn spawn_logged(world: &mut World, args: &[String]) -> Log {
    let mut child = Command::new(bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting dragonflow");
    let log = Log::follow(child.stderr.take().unwrap());
    world.children.push(child);
    log
}

/// A process's stderr lines, echoed to ours as they come and kept for the test to read.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    pub fn follow(stderr: std::process::ChildStderr) -> Log {
        let log = Log::default();
        let lines = log.0.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("{line}");
                lines.lock().unwrap().push(line);
            }
        });
        log
    }

    /// The lines that contain `s`.
    pub fn lines_with(&self, s: &str) -> Vec<String> {
        self.0.lock().unwrap().iter().filter(|l| l.contains(s)).cloned().collect()
    }

    /// Waits until `n` lines contain `s`.
    pub fn wait_for(&self, s: &str, n: usize, limit: Duration) -> bool {
        let end = Instant::now() + limit;
        while self.lines_with(s).len() < n {
            if Instant::now() > end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }
}

/// Stops the node (the last child started as one) with SIGTERM and waits for it.
pub fn stop_node(world: &mut World) {
    let mut child = world.children.pop().expect("a node running");
    // SAFETY: kill(2) on our own child, not reaped yet.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(start.elapsed() < Duration::from_secs(20), "the node did not stop within 20 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(child.wait().unwrap().success(), "the node exits cleanly (every mbuf back)");
}
