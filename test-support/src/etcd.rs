//! A real etcd server (Debian's `etcd-server`) for tests: free loopback ports, a data directory of its
//! own, started, killed and restarted on the same data, frozen (SIGSTOP) and thawed (SIGCONT). Killed
//! and its directory removed on drop, even when a check fails.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::free_port;

/// One etcd member, a cluster of its own.
pub struct Etcd {
    child: Option<Child>,
    /// The data directory (kept across restarts).
    pub dir: PathBuf,
    /// The client URL, `http://127.0.0.1:<port>`.
    pub url: String,
    peer_url: String,
    /// Its v3 JSON gateway, on the client URL.
    http: ureq::Agent,
    /// Whether it ever served: until then its ports may still change.
    served: bool,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_file(self.log());
    }
}

/// How long a start may take before the test fails.
const START_LIMIT: Duration = Duration::from_secs(30);

impl Etcd {
    /// An etcd on free loopback ports with an empty data directory, not started yet.
    pub fn new(name: &str) -> Etcd {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("df-etcd-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let url = format!("http://127.0.0.1:{}", free_port());
        let peer_url = format!("http://127.0.0.1:{}", free_port());
        let http = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_idle_connections(0)
            .timeout_global(Some(Duration::from_secs(5)))
            .build()
            .into();
        Etcd { child: None, dir, url, peer_url, http, served: false }
    }

    /// [`Etcd::new`], started.
    pub fn started(name: &str) -> Etcd {
        let mut etcd = Etcd::new(name);
        etcd.start();
        etcd
    }

    /// Where its log goes (errors only), beside its data directory.
    fn log(&self) -> PathBuf {
        self.dir.with_extension("log")
    }

    /// Starts (or restarts, on the same data) the server; returns once it serves reads. A first start
    /// whose server exits at once (a port that [`free_port`] gave was taken before etcd bound it: by
    /// another test's connection) tries again on other ports.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "etcd is running already");
        let start = Instant::now();
        for attempt in 1.. {
            let log = std::fs::File::create(self.log()).expect("etcd's log file");
            let child = Command::new("etcd")
                .args(["--name", "df", "--data-dir"])
                .arg(&self.dir)
                .args(["--listen-client-urls", &self.url, "--advertise-client-urls", &self.url])
                .args(["--listen-peer-urls", &self.peer_url, "--initial-advertise-peer-urls", &self.peer_url])
                .args(["--initial-cluster", &format!("df={}", self.peer_url), "--log-level", "error"])
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("etcd (apt-get install etcd-server; ci/setup.sh does)");
            self.child = Some(child);
            // A range read through the JSON gateway answers once the server serves.
            let exited = loop {
                if self.gateway("/v3/kv/range", json!({"key": "AA=="})).is_some_and(|(status, _)| status == 200) {
                    self.served = true;
                    return;
                }
                if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                    break status;
                }
                let log = std::fs::read_to_string(self.log()).unwrap_or_default();
                assert!(start.elapsed() < START_LIMIT, "etcd did not answer within {START_LIMIT:?}; its log:\n{log}");
                std::thread::sleep(Duration::from_millis(100));
            };
            self.child = None;
            let log = std::fs::read_to_string(self.log()).unwrap_or_default();
            assert!(!self.served && attempt < 3, "etcd exited ({exited}) before it served; its log:\n{log}");
            let _ = std::fs::remove_dir_all(&self.dir);
            self.url = format!("http://127.0.0.1:{}", free_port());
            self.peer_url = format!("http://127.0.0.1:{}", free_port());
        }
    }

    /// Stops the server at once (SIGKILL: nothing flushed that etcd had not made durable).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends `sig` to the running server.
    pub fn signal(&self, sig: i32) {
        let pid = self.child.as_ref().expect("etcd running").id() as i32;
        // SAFETY: kill(2) on our own child, which is not reaped yet (it is reaped only in `kill`, which
        // takes it out of `self.child`), so the pid is still its own.
        assert_eq!(unsafe { libc::kill(pid, sig) }, 0, "kill({pid}, {sig})");
    }

    /// SIGSTOP: the connections stay open and nothing answers.
    pub fn freeze(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// SIGCONT: the frozen server goes on.
    pub fn thaw(&self) {
        self.signal(libc::SIGCONT);
    }

    /// Compacts the history up to revision `rev` (physically), through the JSON gateway.
    pub fn compact(&self, rev: u64) {
        let answer = self.gateway("/v3/kv/compaction", json!({"revision": rev.to_string(), "physical": true}));
        assert!(answer.as_ref().is_some_and(|(status, _)| *status == 200), "compaction: {answer:?}");
    }

    /// A POST to the v3 JSON gateway; `None` if nothing answers.
    fn gateway(&self, path: &str, body: Value) -> Option<(u16, Value)> {
        let mut res = self.http.post(format!("{}{path}", self.url)).send_json(&body).ok()?;
        let status = res.status().as_u16();
        Some((status, res.body_mut().read_json().unwrap_or(Value::Null)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The race `start` gets past: a port taken between `free_port` and etcd's bind.
    #[test]
    fn a_first_start_on_a_taken_port_moves_to_another() {
        let mut etcd = Etcd::new("taken");
        let port = etcd.url.rsplit(':').next().unwrap().to_owned();
        let _taken = std::net::TcpListener::bind(format!("127.0.0.1:{port}")).unwrap();
        let before = etcd.url.clone();
        etcd.start();
        assert_ne!(etcd.url, before);
        assert!(etcd.gateway("/v3/kv/range", json!({"key": "AA=="})).is_some());
    }
}
