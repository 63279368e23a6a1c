//! The DB conformance suite against a real etcd server (`etcd-server` from Debian, started here on free
//! loopback ports with a temporary data directory, stopped at the end even if a check fails).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use control::db::etcd::EtcdDb;
use control::db::{conformance, Db, DbError};

struct Etcd {
    child: Child,
    dir: PathBuf,
    url: String,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start_etcd(name: &str) -> Etcd {
    let dir = std::env::temp_dir().join(format!("df-etcd-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (client, peer) = (free_port(), free_port());
    let url = format!("http://127.0.0.1:{client}");
    let peer_url = format!("http://127.0.0.1:{peer}");
    let child = Command::new("etcd")
        .args(["--name", "df", "--data-dir"])
        .arg(&dir)
        .args(["--listen-client-urls", &url, "--advertise-client-urls", &url])
        .args(["--listen-peer-urls", &peer_url, "--initial-advertise-peer-urls", &peer_url])
        .args(["--initial-cluster", &format!("df={peer_url}"), "--log-level", "error"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("etcd (apt-get install etcd-server; ci/setup.sh does)");
    let etcd = Etcd { child, dir, url };
    let start = Instant::now();
    while EtcdDb::connect(std::slice::from_ref(&etcd.url), "probe").is_err() {
        assert!(start.elapsed() < Duration::from_secs(30), "etcd did not answer within 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    etcd
}

#[test]
fn etcd_passes_the_conformance_suite() {
    let etcd = start_etcd("conformance");
    static N: AtomicUsize = AtomicUsize::new(0);
    conformance::run_all(&|| {
        let prefix = format!("df-test-{}", N.fetch_add(1, Ordering::Relaxed));
        EtcdDb::connect(std::slice::from_ref(&etcd.url), &prefix).unwrap()
    });
}

/// Compacts etcd's history up to `rev`, through its v3 JSON gateway (etcdctl is another package).
fn compact(url: &str, rev: u64) {
    use std::io::{Read, Write};
    let addr = url.strip_prefix("http://").unwrap();
    let body = format!("{{\"revision\": \"{rev}\", \"physical\": true}}");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "POST /v3/kv/compaction HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/json\r\n").unwrap();
    write!(s, "Content-Length: {}\r\n\r\n{body}", body.len()).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200"), "compaction: {answer}");
}

#[test]
fn a_compacted_revision_cannot_be_resumed_from() {
    let etcd = start_etcd("compact");
    let db = EtcdDb::connect(std::slice::from_ref(&etcd.url), "df").unwrap();
    let r1 = db.create("port", "a", b"1").unwrap();
    db.update("port", "a", b"2", r1).unwrap();
    let r3 = db.update("port", "a", b"3", r1 + 1).unwrap();
    assert!(db.watch(Some("port"), r1).is_ok(), "still in etcd's history");
    compact(&etcd.url, r3);
    assert!(matches!(db.watch(Some("port"), r1), Err(DbError::Compacted { .. })));
    assert!(db.watch(Some("port"), r3).is_ok());
}
