//! The control-plane benchmark, end to end: the real all-in-one node (API, embedded DB, controller,
//! dataplane), ports created and updated through the Neutron API, and the dataplane itself asked whether it
//! knows them: a probe port bound to the node (a TAP) sends ARP requests, and the switch's ARP responder
//! answers from the published tables.
//!
//! 1. N ports are created through the API (bound to another chassis: this node has no more than
//!    RTE_MAX_ETHPORTS = 32 devices of its own, but must know every port of its networks), with 4 clients
//!    at once; timed until the dataplane answers ARP for the last of them, and checked on a sample.
//! 2. U updates, one at a time: a port's fixed IP changes (PUT /v2.0/ports/ID); timed from the request
//!    until the dataplane answers ARP for the new address with the port's MAC. p50/p99/max.
//!
//!   cargo build --release && cargo run --release -p benches --example cp_api -- [PORTS] [UPDATES]
//!   (defaults 10000 200; run as root)

use std::io::BufRead;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use test_support::Neutron;

fn mac_bytes(s: &str) -> [u8; 6] {
    let v: Vec<u8> = s.split(':').map(|x| u8::from_str_radix(x, 16).unwrap()).collect();
    v.try_into().unwrap()
}

fn ip_bytes(s: &str) -> [u8; 4] {
    let v: Vec<u8> = s.split('.').map(|x| x.parse().unwrap()).collect();
    v.try_into().unwrap()
}

/// A raw socket on the probe's TAP: ARP requests out, replies in.
struct Probe {
    fd: i32,
    mac: [u8; 6],
    ip: [u8; 4],
}

impl Probe {
    fn open(iface: &str, mac: [u8; 6], ip: [u8; 4]) -> Probe {
        let name = std::ffi::CString::new(iface).unwrap();
        // SAFETY: plain libc calls with valid arguments; sockaddr_ll zeroed then filled.
        unsafe {
            let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0x0806u16.to_be() as i32);
            assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
            let mut sll: libc::sockaddr_ll = std::mem::zeroed();
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_protocol = 0x0806u16.to_be();
            sll.sll_ifindex = libc::if_nametoindex(name.as_ptr()) as i32;
            assert!(sll.sll_ifindex > 0, "no interface {iface}");
            let r = libc::bind(fd, (&sll as *const libc::sockaddr_ll).cast(), std::mem::size_of_val(&sll) as u32);
            assert_eq!(r, 0, "bind: {}", std::io::Error::last_os_error());
            let tv = libc::timeval { tv_sec: 0, tv_usec: 300 };
            libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVTIMEO, (&tv as *const libc::timeval).cast(), 16);
            Probe { fd, mac, ip }
        }
    }

    fn ask(&self, target: [u8; 4]) {
        let mut f = Vec::with_capacity(60);
        f.extend_from_slice(&[0xff; 6]);
        f.extend_from_slice(&self.mac);
        f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
        f.extend_from_slice(&self.mac);
        f.extend_from_slice(&self.ip);
        f.extend_from_slice(&[0; 6]);
        f.extend_from_slice(&target);
        f.resize(60, 0);
        // SAFETY: our socket, a valid buffer.
        unsafe { libc::send(self.fd, f.as_ptr().cast(), f.len(), 0) };
    }

    /// Asks for `target` until a reply says `mac` (or `limit` passes); the time it took.
    fn resolve(&self, target: [u8; 4], mac: [u8; 6], limit: Duration) -> Option<Duration> {
        let t = Instant::now();
        let mut buf = [0u8; 128];
        while t.elapsed() < limit {
            self.ask(target);
            let asked = Instant::now();
            while asked.elapsed() < Duration::from_micros(500) {
                // SAFETY: buf is writable for its length.
                let n = unsafe { libc::recv(self.fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
                if n >= 42 && buf[20..22] == [0, 2] && buf[28..32] == target && buf[22..28] == mac {
                    return Some(t.elapsed());
                }
            }
        }
        None
    }
}

struct Node(Child, String);

impl Drop for Node {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGINT) };
        let t = Instant::now();
        while self.0.try_wait().ok().flatten().is_none() && t.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

fn pct(v: &[Duration], q: f64) -> Duration {
    v[((v.len() as f64 * q) as usize).min(v.len() - 1)]
}

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let (n, updates) = (args.first().copied().unwrap_or(10_000), args.get(1).copied().unwrap_or(200));
    let bin = std::env::var("DRAGONFLOW").unwrap_or_else(|_| "target/release/dragonflow".into());
    let dir = std::env::temp_dir().join(format!("df-cp-api-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let api = format!("127.0.0.1:{port}");
    let prefix = format!("df-cp-api-{}", std::process::id());
    let mut child = Command::new(&bin)
        .args(["all-in-one", "--chassis", "bench", "--listen", &api, "--log-level", "warn", "--data-dir"])
        .arg(dir.join("db"))
        .args(["--", "-l", "0-1", "--main-lcore", "0", "--no-huge", "-m", "1024", "--no-pci", "--file-prefix", &prefix])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{bin}: {e} (cargo build --release first)"));
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.starts_with("dragonflow: node") {
                let _ = tx.send(());
            } else if !line.starts_with("dragonflow: Neutron API") {
                eprintln!("node: {line}");
            }
        }
    });
    // The release profile aborts on panic (no unwinding, no Drop): stop the node from the panic hook too.
    static NODE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    NODE.store(child.id(), std::sync::atomic::Ordering::Relaxed);
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default_hook(info);
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(NODE.load(std::sync::atomic::Ordering::Relaxed) as i32, libc::SIGINT) };
        std::thread::sleep(Duration::from_secs(3));
    }));
    let _node = Node(child, dir.display().to_string());
    rx.recv_timeout(Duration::from_secs(60)).expect("the node starts");
    while TcpStream::connect(&api).is_err() {
        std::thread::sleep(Duration::from_millis(50));
    }
    let api = Neutron::new(&api);

    let net = api.create("network", json!({"name": "bench"}))["id"].as_str().unwrap().to_owned();
    // No DHCP: its port would take 10.128.0.2, the probe's.
    let sub = api
        .create("subnet", json!({"network_id": net, "cidr": "10.128.0.0/16", "ip_version": 4, "enable_dhcp": false}));
    let sub = sub["id"].as_str().unwrap().to_owned();
    let probe = api.create(
        "port",
        json!({"network_id": net, "binding:host_id": "bench", "fixed_ips": [{"subnet_id": sub, "ip_address": "10.128.0.2"}]}),
    );
    let tap = format!("tap{}", &probe["id"].as_str().unwrap()[..11]);
    let t = Instant::now();
    while !std::path::Path::new("/sys/class/net").join(&tap).exists() {
        assert!(t.elapsed() < Duration::from_secs(10), "the node did not plumb the probe port");
        std::thread::sleep(Duration::from_millis(10));
    }
    let up = Command::new("ip").args(["link", "set", &tap, "up"]).status().unwrap();
    assert!(up.success());
    let probe = Probe::open(&tap, mac_bytes(probe["mac_address"].as_str().unwrap()), [10, 128, 0, 2]);

    // 1. N ports through the API, 4 clients at once.
    let t0 = Instant::now();
    let created: Vec<(String, String, String)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..4)
            .map(|w| {
                let (api, net) = (&api, &net);
                s.spawn(move || {
                    (w..n)
                        .step_by(4)
                        .map(|i| {
                            let p = api.create(
                                "port",
                                json!({"network_id": net, "binding:host_id": "elsewhere", "name": format!("p{i}")}),
                            );
                            let ip = p["fixed_ips"][0]["ip_address"].as_str().unwrap().to_owned();
                            (p["id"].as_str().unwrap().to_owned(), p["mac_address"].as_str().unwrap().to_owned(), ip)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
    });
    let api_done = t0.elapsed();
    let last = created.iter().max_by_key(|(_, _, ip)| ip_bytes(ip).map(u32::from)).unwrap();
    let waited = probe.resolve(ip_bytes(&last.2), mac_bytes(&last.1), Duration::from_secs(120));
    let all = t0.elapsed();
    assert!(waited.is_some(), "the dataplane never answered for {}", last.2);
    let mut missing = 0;
    for (_, mac, ip) in created.iter().step_by((n / 200).max(1)) {
        if probe.resolve(ip_bytes(ip), mac_bytes(mac), Duration::from_secs(1)).is_none() {
            missing += 1;
        }
    }
    println!(
        "ports {n}: created through the API in {api_done:.2?} ({:.0}/s); the dataplane answers for all of them {all:.2?} after the first request; sample of {} checked, {missing} missing",
        n as f64 / api_done.as_secs_f64(),
        created.iter().step_by((n / 200).max(1)).count()
    );

    // 2. One port update at a time: a new fixed IP, timed until the dataplane answers for it.
    let (mut lat, mut api_lat) = (Vec::new(), Vec::new());
    for u in 0..updates {
        let (id, mac, _) = &created[(u * 7919) % created.len()];
        let ip = format!("10.128.{}.{}", 250 + u / 250, 1 + u % 250);
        let body = json!({"port": {"fixed_ips": [{"subnet_id": sub, "ip_address": ip}]}});
        let t = Instant::now();
        let (status, v) = api.put(&format!("/v2.0/ports/{id}"), body);
        assert_eq!(status, 200, "PUT port: {v}");
        api_lat.push(t.elapsed());
        match probe.resolve(ip_bytes(&ip), mac_bytes(mac), Duration::from_secs(5)) {
            Some(_) => lat.push(t.elapsed()),
            None => panic!("update {u}: the dataplane never answered for {ip}"),
        }
    }
    lat.sort();
    api_lat.sort();
    println!(
        "ports {n}: of which the API's answer (IPAM and port written, fsynced): p50 {:.2?} p99 {:.2?}",
        pct(&api_lat, 0.5),
        pct(&api_lat, 0.99)
    );
    println!(
        "ports {n}: port update through the API -> dataplane answers: p50 {:.2?} p99 {:.2?} max {:.2?} ({} updates)",
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        lat[lat.len() - 1],
        lat.len()
    );
}
