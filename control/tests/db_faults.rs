//! The embedded DB on a failing disk, through a log file layer that injects failures: a failed or short
//! append leaves no partial record behind, a failed fsync (or a failed cut) poisons the store, and no
//! revision is ever given twice, before or after a reopen.

mod common;

use std::fs::File;
use std::io;
use std::sync::{Arc, Mutex};

use common::{keys, TempDir};
use control::db::embedded::{EmbeddedDb, LogFile, Options};
use control::db::{Db, DbError, Entry};

/// What the next operations on the log do instead of succeeding.
#[derive(Default)]
struct Faults {
    /// The next `write` fails without writing anything.
    fail_write: bool,
    /// The next `write` writes only this many bytes; with `then_fail`, every later one fails (a disk
    /// filling up), without it they go on normally (a short write, as a signal can cause).
    short_write: Option<usize>,
    then_fail: bool,
    fail_sync: bool,
    fail_set_len: bool,
}

/// The real log file, failing where the test says.
struct FaultyLog {
    file: File,
    faults: Arc<Mutex<Faults>>,
}

fn enospc() -> io::Error {
    io::Error::from_raw_os_error(28)
}

fn eio() -> io::Error {
    io::Error::from_raw_os_error(5)
}

impl LogFile for FaultyLog {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut f = self.faults.lock().unwrap();
        if std::mem::take(&mut f.fail_write) {
            return Err(enospc());
        }
        if let Some(n) = f.short_write.take() {
            f.fail_write = f.then_fail;
            return LogFile::write(&mut self.file, &buf[..n.min(buf.len())]);
        }
        LogFile::write(&mut self.file, buf)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        if std::mem::take(&mut self.faults.lock().unwrap().fail_sync) {
            return Err(eio());
        }
        LogFile::sync_data(&mut self.file)
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        if std::mem::take(&mut self.faults.lock().unwrap().fail_set_len) {
            return Err(eio());
        }
        LogFile::set_len(&mut self.file, len)
    }
}

fn open_faulty(d: &TempDir, compact_after: usize) -> (EmbeddedDb, Arc<Mutex<Faults>>) {
    let faults = Arc::new(Mutex::new(Faults::default()));
    let f = faults.clone();
    let opts = Options { compact_after, log_file: Box::new(move |file| Box::new(FaultyLog { file, faults: f })) };
    (EmbeddedDb::open_with(&d.0, opts).unwrap(), faults)
}

/// Every entry, checked for the revision rules: each entry's revision unique and at most the store's.
fn consistent(db: &EmbeddedDb) -> Vec<Entry> {
    let (entries, at) = db.list("port").unwrap();
    let mut revs: Vec<u64> = entries.iter().map(|e| e.revision).collect();
    revs.sort();
    revs.dedup();
    assert_eq!(revs.len(), entries.len(), "two entries share a revision: {entries:?}");
    assert!(revs.last().is_none_or(|&r| r <= at), "an entry is above the store's revision {at}");
    assert_eq!(db.revision().unwrap(), at);
    entries
}

fn is_storage(r: Result<u64, DbError>) -> bool {
    matches!(r, Err(DbError::Storage(_)))
}

#[test]
fn a_short_append_then_an_error_leaves_no_partial_record() {
    // Cut inside the record header, at its end, inside the payload, one byte short.
    for n in [1, 5, 11, 12, 20, 60] {
        let d = TempDir::new();
        let (db, faults) = open_faulty(&d, 1000);
        let r1 = db.create("port", "a", b"1").unwrap();
        let log_len = std::fs::metadata(d.log()).unwrap().len();
        *faults.lock().unwrap() = Faults { short_write: Some(n), then_fail: true, ..Faults::default() };
        assert!(is_storage(db.create("port", "failed", b"a value long enough to be cut anywhere")), "n={n}");
        assert_eq!(std::fs::metadata(d.log()).unwrap().len(), log_len, "n={n}: the partial record is cut off");
        assert!(!db.is_poisoned(), "n={n}: the cut worked, the store goes on");
        assert_eq!(db.get("port", "failed").unwrap(), None);
        // The next record lands where the failed one started, not behind its bytes.
        let r2 = db.create("port", "b", b"2").unwrap();
        assert_eq!(r2, r1 + 1, "n={n}: the failed write's revision was never seen: it is the next one");
        drop(db);
        let db = EmbeddedDb::open(&d.0).unwrap_or_else(|e| panic!("n={n}: {e}"));
        assert_eq!(keys(&db), ["a", "b"], "n={n}");
        assert_eq!(consistent(&db).iter().map(|e| e.revision).collect::<Vec<_>>(), [r1, r2]);
    }
}

#[test]
fn a_write_that_fails_outright_changes_nothing() {
    let d = TempDir::new();
    let (db, faults) = open_faulty(&d, 1000);
    db.create("port", "a", b"1").unwrap();
    faults.lock().unwrap().fail_write = true;
    let e = db.create("port", "failed", b"x").unwrap_err();
    assert!(e.to_string().contains("No space left on device") && e.to_string().contains("log"), "{e}");
    assert_eq!(db.create("port", "b", b"2").unwrap(), 2);
    drop(db);
    assert_eq!(keys(&EmbeddedDb::open(&d.0).unwrap()), ["a", "b"]);
}

#[test]
fn a_short_write_that_goes_on_completes_the_record() {
    let d = TempDir::new();
    let (db, faults) = open_faulty(&d, 1000);
    faults.lock().unwrap().short_write = Some(7);
    assert_eq!(db.create("port", "a", b"1").unwrap(), 1);
    drop(db);
    assert_eq!(keys(&EmbeddedDb::open(&d.0).unwrap()), ["a"]);
}

#[test]
fn a_failed_cut_after_a_failed_append_poisons_the_store() {
    let d = TempDir::new();
    let (db, faults) = open_faulty(&d, 1000);
    db.create("port", "a", b"1").unwrap();
    *faults.lock().unwrap() =
        Faults { short_write: Some(20), then_fail: true, fail_set_len: true, ..Faults::default() };
    assert!(is_storage(db.create("port", "failed", b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")));
    assert!(db.is_poisoned());
    faults.lock().unwrap().fail_write = false;
    // The disk is back, but the log ends with a partial record: no write may land behind it.
    match db.create("port", "b", b"2") {
        Err(DbError::Storage(m)) => assert!(m.contains("writes are refused") && m.contains("truncation"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(keys(&db), ["a"], "reads go on");
    drop(db);
    // Reopened: the partial record is a torn tail, dropped; the store writes again.
    let db = EmbeddedDb::open(&d.0).unwrap();
    assert_eq!(keys(&db), ["a"]);
    assert_eq!(db.create("port", "b", b"2").unwrap(), 2);
}

#[test]
fn a_failed_fsync_poisons_the_store_and_no_revision_is_given_twice() {
    let d = TempDir::new();
    let (db, faults) = open_faulty(&d, 1000);
    let r1 = db.create("port", "a", b"1").unwrap();
    let watch = db.watch(None, r1).unwrap();
    faults.lock().unwrap().fail_sync = true;
    match db.create("port", "failed", b"x") {
        Err(DbError::Storage(m)) => assert!(m.contains("fsync") && m.contains("Input/output error"), "{m}"),
        other => panic!("the write that failed must say so: {other:?}"),
    }
    assert!(db.is_poisoned());
    // Not acknowledged: not applied, not seen by a watcher, the revision unmoved.
    assert_eq!(db.get("port", "failed").unwrap(), None);
    assert!(watch.events.try_recv().is_err());
    assert_eq!(db.revision().unwrap(), r1);
    // The fsync would work now; it proves nothing about what the failed one lost: still refused.
    for _ in 0..3 {
        match db.create("port", "b", b"2") {
            Err(DbError::Storage(m)) => assert!(m.contains("writes are refused"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(is_storage(db.update("port", "a", b"3", r1)));
        assert!(is_storage(db.delete("port", "a", None)));
    }
    assert_eq!(keys(&db), ["a"], "reads go on");
    drop((db, watch));

    // Reopened: the failed record reached the file (only its fsync failed), so it is replayed with its
    // own revision, and the next write takes the one after it.
    let db = EmbeddedDb::open(&d.0).unwrap();
    let failed = db.get("port", "failed").unwrap().expect("the record is in the file");
    assert_eq!(failed.revision, r1 + 1);
    let r3 = db.create("port", "b", b"2").unwrap();
    assert_eq!(r3, r1 + 2);
    drop(db);
    let db = EmbeddedDb::open(&d.0).unwrap();
    assert_eq!(consistent(&db).len(), 3);
    assert_eq!(db.revision().unwrap(), r3);
}

#[test]
fn a_failed_fsync_whose_record_never_landed_gives_its_revision_to_nobody() {
    let d = TempDir::new();
    let (db, faults) = open_faulty(&d, 1000);
    let r1 = db.create("port", "a", b"1").unwrap();
    let good_len = std::fs::metadata(d.log()).unwrap().len();
    faults.lock().unwrap().fail_sync = true;
    assert!(is_storage(db.create("port", "lost", b"x")));
    drop(db);
    // The kernel dropped the page: the record is not in the file after the crash.
    File::options().write(true).open(d.log()).unwrap().set_len(good_len).unwrap();
    let db = EmbeddedDb::open(&d.0).unwrap();
    assert_eq!(db.get("port", "lost").unwrap(), None);
    // Its revision was never acknowledged nor seen: the next write may take it.
    assert_eq!(db.create("port", "b", b"2").unwrap(), r1 + 1);
    drop(db);
    assert_eq!(consistent(&EmbeddedDb::open(&d.0).unwrap()).len(), 2);
}

#[test]
fn a_failed_compaction_never_fails_the_write_that_triggered_it() {
    let d = TempDir::new();
    let (db, faults) = open_faulty(&d, 3);
    db.create("port", "a", b"1").unwrap();
    db.create("port", "b", b"2").unwrap();
    // The third write is durable, then the snapshot is written and the log cannot be cut.
    faults.lock().unwrap().fail_set_len = true;
    assert_eq!(db.create("port", "c", b"3").unwrap(), 3, "the write itself was durable: acknowledged");
    assert!(d.0.join("snapshot").exists());
    assert!(db.is_poisoned(), "the log's length is unknown after the failed cut");
    assert!(matches!(db.create("port", "d", b"4"), Err(DbError::Storage(_))));
    drop(db);
    // The snapshot holds all three, the log's records (all at or below its revision) are skipped.
    let db = EmbeddedDb::open(&d.0).unwrap();
    assert_eq!(keys(&db), ["a", "b", "c"]);
    assert_eq!(db.create("port", "d", b"4").unwrap(), 4);
}

#[test]
fn the_poisoned_error_names_the_log_and_the_way_out() {
    let d = TempDir::new();
    let (db, faults) = open_faulty(&d, 1000);
    faults.lock().unwrap().fail_sync = true;
    let _ = db.create("port", "a", b"1");
    match db.create("port", "b", b"2") {
        Err(DbError::Storage(m)) => {
            assert!(m.contains(&d.log().display().to_string()) && m.contains("reopen the store"), "{m}")
        }
        other => panic!("{other:?}"),
    }
}
