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
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
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
        Etcd { child: None, dir, url, peer_url, http }
    }

    /// [`Etcd::new`], started.
    pub fn started(name: &str) -> Etcd {
        let mut etcd = Etcd::new(name);
        etcd.start();
        etcd
    }

    /// Starts (or restarts, on the same data) the server; returns once it serves reads.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "etcd is running already");
        let child = Command::new("etcd")
            .args(["--name", "df", "--data-dir"])
            .arg(&self.dir)
            .args(["--listen-client-urls", &self.url, "--advertise-client-urls", &self.url])
            .args(["--listen-peer-urls", &self.peer_url, "--initial-advertise-peer-urls", &self.peer_url])
            .args(["--initial-cluster", &format!("df={}", self.peer_url), "--log-level", "error"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("etcd (apt-get install etcd-server; ci/setup.sh does)");
        self.child = Some(child);
        let start = Instant::now();
        // A range read through the JSON gateway answers once the server serves.
        while self.gateway("/v3/kv/range", json!({"key": "AA=="})).is_none_or(|(status, _)| status != 200) {
            assert!(start.elapsed() < START_LIMIT, "etcd did not answer within {START_LIMIT:?}");
            std::thread::sleep(Duration::from_millis(100));
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
