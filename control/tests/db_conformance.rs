//! The DB conformance suite against the embedded driver, and the embedded driver's own promises:
//! everything survives a restart, and a write torn by a crash is dropped, never the ones before it.
//! (Damage and repair: `db_recovery.rs`; failing disks: `db_faults.rs`; the lock: `db_lock.rs`.)

mod common;

use std::io::Write;

use common::TempDir;
use control::db::embedded::{Corruption, EmbeddedDb, StoreError};
use control::db::{conformance, Db, DbError};

#[test]
fn embedded_passes_the_conformance_suite() {
    let dirs = std::sync::Mutex::new(Vec::new());
    conformance::run_all(&|| {
        let d = TempDir::new();
        let db = EmbeddedDb::open(&d.0).unwrap();
        dirs.lock().unwrap().push(d);
        db
    });
}

#[test]
fn a_restart_keeps_everything_and_the_revision() {
    let d = TempDir::new();
    let (r_update, r_last);
    {
        let db = EmbeddedDb::open(&d.0).unwrap();
        let r = db.create("network", "n1", b"net").unwrap();
        r_update = db.update("network", "n1", b"net2", r).unwrap();
        db.create("port", "p1", b"port").unwrap();
        r_last = db.delete("port", "p1", None).unwrap();
    }
    let db = EmbeddedDb::open(&d.0).unwrap();
    assert_eq!(db.revision().unwrap(), r_last);
    let e = db.get("network", "n1").unwrap().unwrap();
    assert_eq!((e.value.as_slice(), e.revision), (&b"net2"[..], r_update));
    assert_eq!(db.get("port", "p1").unwrap(), None);
    // History from before the restart is gone: a watch from there must list again.
    assert!(matches!(db.watch(None, 1), Err(DbError::Compacted { .. })));
    assert!(db.watch(None, r_last).is_ok());
    assert!(db.create("port", "p2", b"x").unwrap() > r_last);
}

#[test]
fn a_torn_last_write_is_dropped_and_the_rest_kept() {
    let d = TempDir::new();
    let r;
    {
        let db = EmbeddedDb::open(&d.0).unwrap();
        db.create("network", "n1", b"a").unwrap();
        r = db.create("network", "n2", b"b").unwrap();
    }
    // A crash in the middle of the next record: part of its header only.
    let mut log = std::fs::OpenOptions::new().append(true).open(d.0.join("log")).unwrap();
    log.write_all(&200u32.to_le_bytes()).unwrap();
    log.write_all(&[1, 2, 3, 4, 5, 6, 7]).unwrap();
    drop(log);
    let db = EmbeddedDb::open(&d.0).unwrap();
    assert_eq!(db.revision().unwrap(), r);
    assert_eq!(db.list("network").unwrap().0.len(), 2);
    let r3 = db.create("network", "n3", b"c").unwrap();
    drop(db);
    // The torn bytes were cut: the write after them is read back.
    let db = EmbeddedDb::open(&d.0).unwrap();
    assert_eq!(db.get("network", "n3").unwrap().unwrap().revision, r3);
    drop(db);
    // A flipped bit in the last record is not what a crash leaves (no zeroes, not cut short): damage, and
    // the store refuses to start rather than drop an acknowledged write.
    let path = d.0.join("log");
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 3;
    bytes[last] ^= 0x40;
    std::fs::write(&path, bytes).unwrap();
    match EmbeddedDb::open(&d.0) {
        Err(StoreError::CorruptLog { reason: Corruption::Payload, .. }) => {}
        other => panic!("expected the last record to be refused as corrupt, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn compaction_keeps_everything() {
    let d = TempDir::new();
    let n = control::db::embedded::COMPACT_AFTER + 10;
    {
        let db = EmbeddedDb::open(&d.0).unwrap();
        for i in 0..n {
            db.create("port", &format!("p{i:05}"), i.to_string().as_bytes()).unwrap();
        }
    }
    assert!(d.0.join("snapshot").exists());
    assert!(std::fs::metadata(d.0.join("log")).unwrap().len() < 10_000, "the log restarted at the snapshot");
    let db = EmbeddedDb::open(&d.0).unwrap();
    let (list, rev) = db.list("port").unwrap();
    assert_eq!((list.len(), rev), (n, n as u64));
    assert_eq!(db.get("port", "p00007").unwrap().unwrap().value, b"7");
}
