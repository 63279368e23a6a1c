//! The embedded DB's directory lock: one store per data directory, whether the second opener is another
//! process or this one.

mod common;

use common::TempDir;
use control::db::embedded::{EmbeddedDb, StoreError};

#[test]
fn a_second_opener_is_refused_while_the_first_holds_the_directory() {
    let d = TempDir::new();
    let db = EmbeddedDb::open(&d.0).unwrap();
    let e = EmbeddedDb::open(&d.0).err().expect("the directory is taken");
    assert!(matches!(&e, StoreError::Locked { dir, holder: Some(pid) } if *dir == d.0 && *pid == std::process::id()));
    let msg = e.to_string();
    assert!(msg.contains(&d.0.display().to_string()) && msg.contains("another process"), "{msg}");
    assert!(matches!(EmbeddedDb::repair(&d.0), Err(StoreError::Locked { .. })), "repair waits for the store to close");
    // Another process sees the lock too (flock(1) from util-linux: exit 99 if it cannot take it). Alone in
    // its test binary: a child between fork and exec holds copies of every descriptor, the locked ones
    // of a concurrent test included.
    let lock = d.0.join("LOCK");
    let other = || std::process::Command::new("flock").args(["-n", "-E", "99"]).arg(&lock).arg("true").status();
    assert_eq!(other().unwrap().code(), Some(99));
    // A clone keeps it; the last one dropped lets it go.
    let clone = db.clone();
    drop(db);
    assert!(EmbeddedDb::open(&d.0).is_err());
    drop(clone);
    assert_eq!(other().unwrap().code(), Some(0));
    EmbeddedDb::open(&d.0).unwrap();
}
