//! What the embedded DB's test files share: a data directory removed on drop, and a store filled with
//! known writes whose record offsets in the log are known.
#![allow(dead_code)] // each test file uses its own part

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use control::db::embedded::EmbeddedDb;
use control::db::Db;

/// A fresh directory under the system's temporary one, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("df-db-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        TempDir(p)
    }

    pub fn log(&self) -> PathBuf {
        self.0.join("log")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One acknowledged write: its key, its revision, and where its record starts in the log.
#[derive(Debug, Clone)]
pub struct Written {
    pub key: String,
    pub revision: u64,
    pub offset: u64,
}

/// Creates `port/k<i>` with a value of `value_len(i)` bytes for each `i` in `0..n`, and returns the
/// writes with their record offsets (read from the log's length before each write).
pub fn fill(db: &EmbeddedDb, dir: &Path, n: usize, value_len: impl Fn(usize) -> usize) -> Vec<Written> {
    (0..n)
        .map(|i| {
            let offset = std::fs::metadata(dir.join("log")).unwrap().len();
            let key = format!("k{i}");
            let value: Vec<u8> = (0..value_len(i)).map(|j| b'a' + (j % 26) as u8).collect();
            let revision = db.create("port", &key, &value).unwrap();
            Written { key, revision, offset }
        })
        .collect()
}

/// The keys in `port`, in order.
pub fn keys(db: &EmbeddedDb) -> Vec<String> {
    db.list("port").unwrap().0.into_iter().map(|e| e.key).collect()
}

/// The keys of `w`, in order.
pub fn keys_of(w: &[Written]) -> Vec<String> {
    let mut k: Vec<String> = w.iter().map(|w| w.key.clone()).collect();
    k.sort();
    k
}
