//! Helpers for the tests that run the real `dragonflow` binary over DPDK vdevs (no hugepages, no NIC).
#![allow(dead_code)]

pub mod cloud;
pub mod tcp;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

/// The binary under test: this build's, or the one `DRAGONFLOW_BIN` names (CI runs the end-to-end tests
/// on the release binary too, as users run it: `panic = "abort"`, wrapping arithmetic).
pub fn bin() -> String {
    std::env::var("DRAGONFLOW_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_dragonflow").to_owned())
}

/// A file prefix no other DPDK process on the machine uses.
pub fn prefix(test: &str) -> String {
    format!("dft-{test}-{}", std::process::id())
}

/// EAL arguments for a test: two lcores, 4 KiB pages, no PCI, our own prefix, the given vdevs.
pub fn eal(prefix: &str, vdevs: &[String]) -> Vec<String> {
    let mut v: Vec<String> =
        ["-l", "0-1", "--main-lcore", "0", "--no-huge", "-m", "512", "--no-pci", "--file-prefix", prefix]
            .iter()
            .map(|s| s.to_string())
            .collect();
    v.extend(vdevs.iter().map(|d| format!("--vdev={d}")));
    v
}

/// A scratch directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(test: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("dft-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn join(&self, f: &str) -> PathBuf {
        self.0.join(f)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `dragonflow run ARGS -- EAL` to completion (it must stop by itself, e.g. with --duration) within
/// `limit`; panics with its output if it fails or overruns.
pub fn run_to_end(args: &[String], eal: &[String], limit: Duration) -> Output {
    let mut child = spawn(args, eal, Stdio::piped());
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            if let Some(i) = eal.iter().position(|a| a == "--file-prefix") {
                let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{}", eal[i + 1]));
            }
            let out = child.wait_with_output().unwrap();
            panic!("dragonflow overran {limit:?}:\n{}", String::from_utf8_lossy(&out.stderr));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "dragonflow failed ({}):\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    out
}

/// As [`run_to_end`], with `global` flags (e.g. `--config F`) before the `run` subcommand's own.
pub fn run_to_end_global(global_then_args: &[String], eal: &[String], limit: Duration) -> Output {
    run_to_end(global_then_args, eal, limit)
}

pub fn spawn(args: &[String], eal: &[String], stderr: Stdio) -> Child {
    Command::new(bin())
        .arg("run")
        .args(args)
        .arg("--")
        .args(eal)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("starting dragonflow")
}

/// The `--stats-json` report.
pub fn report(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("stats json written")).expect("valid json")
}

/// The report of the port named `name`.
pub fn port<'a>(r: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    r["ports"].as_array().unwrap().iter().find(|p| p["name"] == name).unwrap_or_else(|| panic!("no port {name}"))
}

pub fn u(v: &serde_json::Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// Ethernet frames of varied lengths and contents, deterministic.
pub fn frames(count: usize, seed: u8) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| {
            let len = 60 + (i * 97 + seed as usize * 13) % 1455; // 60..1514
            let mut f: Vec<u8> = (0..len).map(|j| (j as u8).wrapping_mul(31).wrapping_add(i as u8 ^ seed)).collect();
            f[0..6].copy_from_slice(&[0x02, 0, 0, 0, seed, 2]);
            f[6..12].copy_from_slice(&[0x02, 0, 0, 0, seed, 1]);
            f[12..14].copy_from_slice(&[0x08, 0x00]);
            f
        })
        .collect()
}

pub fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
    let file = std::fs::File::create(path).unwrap();
    let mut w = PcapWriter::with_header(file, PcapHeader::default()).unwrap();
    for (i, f) in frames.iter().enumerate() {
        let ts = Duration::from_micros(i as u64);
        w.write_packet(&PcapPacket::new(ts, f.len() as u32, f)).unwrap();
    }
}

pub fn read_pcap(path: &Path) -> Vec<Vec<u8>> {
    use pcap_file::pcap::PcapReader;
    let mut r = PcapReader::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut out = Vec::new();
    while let Some(p) = r.next_packet() {
        out.push(p.unwrap().data.into_owned());
    }
    out
}

/// Fails the test early, with a clear reason, where it cannot run.
pub fn require_root() {
    let uid = std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m)).unwrap_or(1);
    assert_eq!(uid, 0, "this test drives DPDK, TAP devices and namespaces: run it as root (ci/test.sh does)");
}

/// Sends `signal` to the switch and collects its output; kills it if it is not gone within 15 s.
pub fn stop(mut child: Child, signal: i32) -> Output {
    // SAFETY: kill(2) on our own child's pid, which has not been reaped yet.
    unsafe { libc::kill(child.id() as i32, signal) };
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(15) {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("dragonflow did not stop within 15 s of signal {signal}:\n{}", String::from_utf8_lossy(&out.stderr));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// Copies the child's stderr to ours, and returns once it printed its "forwarding" line (false if it
/// exited or took more than 30 s).
pub fn wait_until_forwarding(child: &mut Child) -> bool {
    let lines = watch_lines(child.stderr.take().unwrap(), "dragonflow: forwarding on", true);
    lines.recv_timeout(Duration::from_secs(30)).is_ok()
}

/// Reads `from` to its end in a thread of its own (so that the writer never blocks on a full pipe), copied
/// to our stderr if `echo`; the receiver gets a message for each line that contains `marker`.
fn watch_lines(from: impl std::io::Read + Send + 'static, marker: &'static str, echo: bool) -> Receiver<()> {
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(from).lines().map_while(Result::ok) {
            if echo {
                eprintln!("{line}");
            }
            if line.contains(marker) {
                let _ = tx.send(());
            }
        }
    });
    rx
}

/// A DPDK peer process (`dpdk-testpmd`, from Debian's `dpdk`) as the far end of a memif or vhost-user
/// port: it swaps MACs and sends every packet back. Stopped (SIGINT, then killed) on drop.
pub struct Peer {
    child: Child,
    prefix: String,
    forwarding: Receiver<()>,
}

impl Peer {
    /// Whether testpmd started forwarding (its port up, connected to the switch's) within `timeout`:
    /// how long that takes depends on how busy the CPUs are, not on the switch.
    pub fn wait_forwarding(&self, timeout: Duration) -> bool {
        self.forwarding.recv_timeout(timeout).is_ok()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        for _ in 0..100 {
            if self.child.try_wait().ok().flatten().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{}", self.prefix));
    }
}

pub fn testpmd(prefix: &str, vdev: &str) -> Peer {
    // Line-buffered (coreutils' stdbuf), so that "start packet forwarding" is read when testpmd prints it.
    let mut child = Command::new("stdbuf")
        .args(["-oL", "dpdk-testpmd"])
        .args(["-l", "0-1", "--no-huge", "-m", "512", "--no-pci", "--file-prefix", prefix])
        .arg(format!("--vdev={vdev}"))
        .args(["--", "--forward-mode=macswap", "--auto-start", "--stats-period", "3600", "--total-num-mbufs", "8192"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("dpdk-testpmd (apt-get install dpdk-dev)");
    let forwarding = watch_lines(child.stdout.take().unwrap(), "start packet forwarding", false);
    Peer { child, prefix: prefix.to_owned(), forwarding }
}
