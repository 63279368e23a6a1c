//! The DB conformance suite against a real etcd server (`etcd-server` from Debian, started here on free
//! loopback ports with a temporary data directory, stopped at the end even if a check fails).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use control::db::etcd::{EtcdDb, REQUEST_TIMEOUT};
use control::db::{conformance, Db, DbError};
use test_support::Etcd;

#[test]
fn etcd_passes_the_conformance_suite() {
    let etcd = Etcd::started("conformance");
    static N: AtomicUsize = AtomicUsize::new(0);
    conformance::run_all(&|| {
        let prefix = format!("df-test-{}", N.fetch_add(1, Ordering::Relaxed));
        EtcdDb::connect(std::slice::from_ref(&etcd.url), &prefix).unwrap()
    });
}

#[test]
fn a_compacted_revision_cannot_be_resumed_from() {
    let etcd = Etcd::started("compact");
    let db = EtcdDb::connect(std::slice::from_ref(&etcd.url), "df").unwrap();
    let r1 = db.create("port", "a", b"1").unwrap();
    db.update("port", "a", b"2", r1).unwrap();
    let r3 = db.update("port", "a", b"3", r1 + 1).unwrap();
    assert!(db.watch(Some("port"), r1).is_ok(), "still in etcd's history");
    etcd.compact(r3);
    assert!(matches!(db.watch(Some("port"), r1), Err(DbError::Compacted { .. })));
    assert!(db.watch(Some("port"), r3).is_ok());
}

/// A frozen server (SIGSTOP: the connection stays open, nothing answers) fails calls within the request
/// deadline and ends a watch through the keepalive, instead of waiting forever; once thawed, the same
/// client works again, and so does a new watch.
#[test]
fn a_frozen_etcd_is_detected_not_waited_on() {
    let etcd = Etcd::started("frozen");
    let db = EtcdDb::connect(std::slice::from_ref(&etcd.url), "df").unwrap();
    let r = db.create("port", "a", b"1").unwrap();
    let watch = db.watch(None, r).unwrap();
    etcd.freeze();
    let t = Instant::now();
    let got = db.get("port", "a");
    assert!(matches!(got, Err(DbError::Unavailable(_))), "a read from a frozen etcd gave {got:?}");
    let waited = t.elapsed();
    assert!(waited < REQUEST_TIMEOUT + Duration::from_secs(2), "a read waited {waited:?} on a frozen etcd");
    let t = Instant::now();
    let ended = loop {
        match watch.events.recv_timeout(Duration::from_millis(100)) {
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break true,
            Ok(ev) => panic!("an event from a frozen etcd: {ev:?}"),
            Err(_) if t.elapsed() > Duration::from_secs(15) => break false,
            Err(_) => {}
        }
    };
    assert!(ended, "the watch on a frozen etcd did not end within 15 s (keepalive)");
    eprintln!("frozen etcd: a read failed after {waited:?}, the watch ended after {:?}", t.elapsed());

    etcd.thaw();
    let t = Instant::now();
    while db.probe().is_err() {
        assert!(t.elapsed() < Duration::from_secs(15), "the client did not come back after SIGCONT");
        std::thread::sleep(Duration::from_millis(100));
    }
    let watch = db.watch(None, r).unwrap();
    let r = db.update("port", "a", b"3", r).unwrap();
    assert_eq!(watch.events.recv_timeout(Duration::from_secs(5)).unwrap().revision(), r);
}

/// A client made before etcd is up works once it is, and again after etcd is stopped and restarted.
#[test]
fn the_client_waits_for_etcd_and_outlives_its_restarts() {
    let mut etcd = Etcd::new("restart");
    let db = EtcdDb::connect(std::slice::from_ref(&etcd.url), "df").expect("connecting needs no server");
    let t = Instant::now();
    assert!(matches!(db.probe(), Err(DbError::Unavailable(_))), "no server yet");
    assert!(t.elapsed() < REQUEST_TIMEOUT + Duration::from_secs(2), "a refused connection waited {:?}", t.elapsed());
    etcd.start();
    let t = Instant::now();
    let r = loop {
        match db.create("port", "a", b"1") {
            Ok(r) => break r,
            Err(e) => assert!(t.elapsed() < Duration::from_secs(15), "never reconnected: {e}"),
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    etcd.kill();
    assert!(db.get("port", "a").is_err(), "read from a stopped etcd");
    etcd.start();
    let t = Instant::now();
    let got = loop {
        match db.get("port", "a") {
            Ok(e) => break e,
            Err(e) => assert!(t.elapsed() < Duration::from_secs(15), "never reconnected: {e}"),
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(got.map(|e| (e.value, e.revision)), Some((b"1".to_vec(), r)), "the write survived the restart");
}

/// The last handle dropped on a runtime's thread (the API's) neither panics nor blocks.
#[test]
fn dropping_the_client_inside_a_runtime_is_fine() {
    let etcd = Etcd::started("drop");
    let db = EtcdDb::connect(std::slice::from_ref(&etcd.url), "df").unwrap();
    db.probe().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async move { drop(db) });
}

/// A quiet watch lives on: it is a stream, not a request (no deadline ends it), and the keepalive pings
/// stay within what etcd allows (`--grpc-keepalive-min-time`, 5 s: pinging more often makes etcd close the
/// connection, every few seconds).
#[test]
fn a_quiet_watch_lives_on() {
    let etcd = Etcd::started("quiet");
    let db = EtcdDb::connect(std::slice::from_ref(&etcd.url), "df").unwrap();
    let r = db.create("port", "a", b"1").unwrap();
    let watch = db.watch(None, r).unwrap();
    match watch.events.recv_timeout(Duration::from_secs(20)) {
        Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
        other => panic!("a quiet watch ended or delivered: {other:?}"),
    }
    let r = db.update("port", "a", b"2", r).unwrap();
    assert_eq!(watch.events.recv_timeout(Duration::from_secs(5)).unwrap().revision(), r);
}
