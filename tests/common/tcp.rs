//! TCP between VMs (network namespaces), for the end-to-end tests: an echo server on some ports, a
//! one-shot client that says whether it got through, and a long-lived client that sends a line every
//! 200 ms and counts the echoes. The programs are `tcp.py` beside this file, run by Debian's python;
//! what runs in a namespace goes with it ([`World`]'s drop).
#![allow(dead_code)]

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::cloud::{wait_for, World};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/common/tcp.py");

/// How long a one-shot client waits for its connection and its echo.
pub const CONNECT_TIMEOUT: &str = "1.5";

/// The lines a program in a namespace printed, as they come.
#[derive(Clone, Default)]
pub struct Lines(Arc<Mutex<Vec<String>>>);

impl Lines {
    /// The lines that start with `prefix`.
    pub fn count(&self, prefix: &str) -> usize {
        self.0.lock().unwrap().iter().filter(|l| l.starts_with(prefix)).count()
    }

    pub fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

/// Starts `tcp.py ARGS` in namespace `ns` (a child of `world`), its output followed.
fn spawn(world: &mut World, ns: &str, args: &[&str]) -> Lines {
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, "/usr/bin/python3", SCRIPT])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("ip netns exec ... /usr/bin/python3");
    let out = child.stdout.take().unwrap();
    world.children.push(child);
    let lines = Lines::default();
    let kept = lines.0.clone();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            kept.lock().unwrap().push(line);
        }
    });
    lines
}

/// An echo server in `ns` on `ports` (IPv4 and IPv6), listening when this returns.
pub fn serve(world: &mut World, ns: &str, ports: &[u16]) {
    serve_logged(world, ns, ports);
}

/// As [`serve`]; what the server prints: a line "from ADDR" per connection it accepted.
pub fn serve_logged(world: &mut World, ns: &str, ports: &[u16]) -> Lines {
    let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
    let mut args = vec!["serve"];
    args.extend(ports.iter().map(String::as_str));
    let out = spawn(world, ns, &args);
    wait_for(&format!("the echo server in {ns}"), Duration::from_secs(10), || out.count("listening") == 1);
    out
}

/// One connection from `ns` to `addr`:`port` and one line echoed, within [`CONNECT_TIMEOUT`]: `Ok`, or
/// what happened instead (`timeout`, `refused`).
pub fn connect(ns: &str, addr: &str, port: u16) -> Result<(), String> {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "/usr/bin/python3", SCRIPT, "connect", addr, &port.to_string(), CONNECT_TIMEOUT])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{said}{}", String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// One datagram from a connected UDP socket in `ns` to `addr`:`port`, and what came back within
/// [`CONNECT_TIMEOUT`]: `refused` (an ICMP port unreachable that named the socket: its quote matched),
/// `reply` or `timeout`.
pub fn udp_probe(ns: &str, addr: &str, port: u16) -> String {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "/usr/bin/python3", SCRIPT, "udp", addr, &port.to_string(), CONNECT_TIMEOUT])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    format!("{}{}", String::from_utf8_lossy(&out.stdout).trim(), String::from_utf8_lossy(&out.stderr).trim())
}

/// A long-lived connection from `ns` to `addr`:`port`: a line every 200 ms; [`Lines::count`]`("echo")`
/// counts what came back.
pub fn stream(world: &mut World, ns: &str, addr: &str, port: u16) -> Lines {
    let out = spawn(world, ns, &["stream", addr, &port.to_string(), "0.2"]);
    wait_for(&format!("{ns} connected to {addr}:{port}"), Duration::from_secs(5), || out.count("connected") == 1);
    out
}
