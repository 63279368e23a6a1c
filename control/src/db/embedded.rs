//! The embedded driver (the default, for a single node or the all-in-one role): in-process, persisted to
//! a data directory. Its promise: **an acknowledged write is never lost.** A write returns only once its
//! record is fsynced; a store whose files cannot be read back in full refuses to start rather than drop
//! what follows the damage; only a torn tail (the one write a crash cut, never acknowledged) is dropped.
//!
//! # On disk
//!
//! The data directory holds:
//! - `LOCK`: locked (flock, exclusive) by whoever has the store open, and holding that process's pid; a
//!   second open, from another process or the same one, fails with [`StoreError::Locked`].
//! - `snapshot` (from the first compaction on): every entry and the revision they are consistent at.
//!   ```text
//!   0..8     magic "DFDB-SNP"
//!   8..12    format version, u32 LE: 1
//!   12..n-4  JSON {"revision": R, "entries": [Entry, ...]}
//!   n-4..n   CRC32 (IEEE) of bytes 0..n-4, u32 LE
//!   ```
//!   Written to `snapshot.tmp`, fsynced, renamed over `snapshot`, the directory fsynced: it is whole or
//!   the previous one, never torn, so any mismatch is corruption: [`StoreError::CorruptSnapshot`].
//! - `log`: every write since the snapshot, in revision order.
//!   ```text
//!   file header  0..8   magic "DFDB-LOG"
//!                8..12  format version, u32 LE: 1
//!                12..16 CRC32 of bytes 0..12, u32 LE
//!   each record  0..4   payload length, u32 LE
//!                4..8   CRC32 of the payload, u32 LE
//!                8..12  CRC32 of bytes 0..8 of the record (the header checksum), u32 LE
//!                12..   payload: the JSON of the Event (Put with the whole entry, or Delete)
//!   ```
//!   The header checksum makes a record's length self-checking: a flipped bit in a length is caught
//!   where it is, instead of sending the reader past the end of the file, where it would look like a
//!   write cut by a crash. Revisions strictly increase from record to record. A new log (header only) is
//!   written as `log.tmp`, fsynced and renamed into place, so its header is never torn either.
//!
//! # Writing
//!
//! A write appends one record and fsyncs it (fdatasync); only then is it applied in memory, sent to the
//! watchers and acknowledged. If the append fails or stops short, the file is cut back to its last good
//! length, so no partial record stays for a later append to land behind, and the write returns an error.
//! If that cut fails too, or the fsync fails, the store is **poisoned**: every later write returns
//! [`StoreError::Poisoned`] until the process reopens the store, while reads and watches go on. After a
//! failed fsync the kernel may have dropped the dirty pages and marked them clean (PostgreSQL's
//! "fsyncgate"; etcd's WAL treats it as fatal too), so retrying proves nothing. No write follows a
//! poisoned one in the process, so no revision is given twice: after a reopen the failed record is
//! either on disk (replayed; the next write takes the revision after it) or not (and nobody saw its
//! revision: readers and watchers only see durable writes). A write that returned an error was not
//! acknowledged; like an etcd request that timed out, it may still be there after a restart.
//!
//! Past [`Options::compact_after`] records the store writes a snapshot and cuts the log back to its
//! header. If the snapshot cannot be written the log simply goes on (it is retried that many records
//! later); if the log cannot be cut after a durable snapshot, the store is poisoned.
//!
//! # Opening: what may be dropped
//!
//! Opening loads the snapshot and reads the log from its header on, record by record, skipping records
//! at or below the snapshot's revision (a crash between writing a snapshot and cutting the log). The
//! log ends:
//! - **cleanly**, at the end of the file;
//! - at a **torn tail**, which is dropped (the file is cut there, a warning logged): the write a crash
//!   interrupted, which was never acknowledged. As etcd's WAL decides it:
//!   - a record cut short by the end of the file (fewer than 12 header bytes, or fewer payload bytes
//!     than its valid header says);
//!   - a record whose header is valid, whose payload ends exactly at the end of the file and fails its
//!     checksum, and whose payload has a zero-filled sector piece;
//!   - a record whose header fails its checksum and has a zero-filled sector piece, with no valid record
//!     (both checksums good) starting anywhere after it;
//!
//!   where a sector piece is the part of the bytes within one 512-byte-aligned sector of the file: a
//!   crash after the file grew but before a sector's data landed leaves that piece zero;
//! - at **corruption**, anything else: a header or payload checksum that fails with valid data after
//!   it, or with no zeroes to explain it; a checksum-valid payload that is not an event; a revision not
//!   above the previous record's. `open` refuses with [`StoreError::CorruptLog`], which names the file,
//!   the byte offset where the bad record starts, and `dragonflow db repair`.
//!
//! A log shorter than its header and a prefix of it (an interrupted creation, or an empty file) holds no
//! record and is written anew. Files of the format before version 1 (records with no file header,
//! `snapshot.json`) are refused with [`StoreError::OldFormat`]: there is no migration (pre-release).
//!
//! # Repair
//!
//! [`EmbeddedDb::repair`] (`dragonflow db repair --data-dir D`) copies the log from the first torn or
//! corrupt record to its end into `log.corrupt-<offset>` (`log.torn-<offset>` for a torn tail), fsyncs
//! the copy and the directory, then cuts the log at that offset: every record before it is kept, nothing
//! is deleted. The writes set aside are no longer in the store and their revisions will be given again.
//! A corrupt snapshot is not repaired (the log only holds what came after it): restore it from a backup.
//!
//! # Watches
//!
//! Watches resume from any revision still in the in-memory history (the last `HISTORY` events, and only
//! those since the store was opened); older ones get `Compacted`, as from etcd after a compaction.

mod log;
mod repair;
mod snapshot;

use std::collections::{BTreeMap, VecDeque};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use crossbeam_channel::{unbounded, Sender};

pub use self::log::{Corruption, LogFile, Torn};
use self::log::{End, Refusal};
pub use self::repair::{Cut, RepairReport, Why};
pub use self::snapshot::SnapshotCorruption;
use self::snapshot::Unreadable;
use super::{check_name, Db, DbError, Entry, Event, Result, Revision, Watch};

/// Log records after which the store compacts into a new snapshot, by default.
pub const COMPACT_AFTER: usize = 10_000;
/// Events kept for resuming watches.
pub const HISTORY: usize = 100_000;

const LOCK: &str = "LOCK";
const LOG: &str = "log";
const LOG_TMP: &str = "log.tmp";
const SNAPSHOT: &str = "snapshot";
const SNAPSHOT_TMP: &str = "snapshot.tmp";
/// The snapshot of the format before version 1.
const OLD_SNAPSHOT: &str = "snapshot.json";

/// What goes wrong with the store's files.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{op} {}: {cause}", .path.display())]
    Io { op: &'static str, path: PathBuf, cause: io::Error },
    #[error("{} is in use: another process (or another open in this one) holds its lock {}{}", .dir.display(), .dir.join(LOCK).display(), pid_note(.holder))]
    Locked { dir: PathBuf, holder: Option<u32> },
    #[error(
        "{}: corrupt at byte {offset}: {reason}. The records before it are intact; the store refuses to start rather than drop the acknowledged writes after it. `dragonflow db repair --data-dir {}` keeps the records before byte {offset} and saves the rest aside",
        .dir.join(LOG).display(), .dir.display()
    )]
    CorruptLog { dir: PathBuf, offset: u64, reason: Corruption },
    #[error("{}: corrupt snapshot: {reason}. The store refuses to start; `db repair` mends the log, not the snapshot: restore it from a backup", .path.display())]
    CorruptSnapshot { path: PathBuf, reason: SnapshotCorruption },
    #[error("{}: written by an earlier format of the embedded DB (no magic header); this pre-release build does not read or migrate it: move {} aside and start again", .path.display(), .dir.display())]
    OldFormat { path: PathBuf, dir: PathBuf },
    #[error("{}: format version {found}; this build reads version {supported}", .path.display())]
    Version { path: PathBuf, found: u32, supported: u32 },
    #[error("{}: writes are refused since a failed {op} ({cause}): what reached the disk is unknown. Reads go on; reopen the store (restart the process) once the disk is sound", .path.display())]
    Poisoned { path: PathBuf, op: &'static str, cause: Arc<io::Error> },
    #[error("a record of {bytes} bytes does not fit the log (4 GiB at most)")]
    TooLarge { bytes: usize },
}

fn pid_note(pid: &Option<u32>) -> String {
    pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
}

impl From<StoreError> for DbError {
    fn from(e: StoreError) -> DbError {
        DbError::Storage(e.to_string())
    }
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |cause| StoreError::Io { op, path: path.to_path_buf(), cause }
}

/// How to open the store; `Options::default()` is what [`EmbeddedDb::open`] uses.
pub struct Options {
    /// Log records after which the store writes a snapshot and empties the log.
    pub compact_after: usize,
    /// Wraps the open log file (opened for append) in the [`LogFile`] the store writes through: the file
    /// itself in production, a fault-injecting layer in tests.
    pub log_file: Box<dyn FnOnce(File) -> Box<dyn LogFile>>,
}

impl Default for Options {
    fn default() -> Options {
        Options { compact_after: COMPACT_AFTER, log_file: Box::new(|f| Box::new(f)) }
    }
}

struct Watcher {
    table: Option<String>,
    tx: Sender<Event>,
}

/// A failed operation after which the log's state on disk is unknown.
struct Poison {
    op: &'static str,
    cause: Arc<io::Error>,
}

struct Inner {
    data: BTreeMap<(String, String), Entry>,
    revision: Revision,
    history: VecDeque<Event>,
    /// Watches can resume from any revision ≥ this one.
    resumable_from: Revision,
    log: Box<dyn LogFile>,
    /// The log's length up to its last durable record: where the next record goes.
    log_len: u64,
    log_records: usize,
    /// Compact when `log_records` reaches this.
    compact_at: usize,
    compact_after: usize,
    poisoned: Option<Poison>,
    watchers: Vec<Watcher>,
    /// Held (locked) as long as the store is open.
    _lock: File,
}

/// The embedded store. Cheap to share (`Arc` inside).
///
/// Thread-safety: everything, the log file included, is behind one mutex; a write holds it from its
/// checks to its fsync and the watchers' notification, so records reach the log in revision order and a
/// reader never sees a write that is not durable.
#[derive(Clone)]
pub struct EmbeddedDb {
    dir: PathBuf,
    inner: Arc<Mutex<Inner>>,
}

impl EmbeddedDb {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: impl AsRef<Path>) -> std::result::Result<EmbeddedDb, StoreError> {
        EmbeddedDb::open_with(dir, Options::default())
    }

    /// Opens (or creates) the store in `dir` with `opts`: where it compacts, and the layer its log is
    /// written through.
    pub fn open_with(dir: impl AsRef<Path>, opts: Options) -> std::result::Result<EmbeddedDb, StoreError> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir).map_err(io_err("creating", &dir))?;
        let lock = lock_dir(&dir)?;
        let (mut data, mut revision) = (BTreeMap::new(), 0);
        if let Some(s) = read_snapshot(&dir)? {
            revision = s.revision;
            data.extend(s.entries.into_iter().map(|e| ((e.table.clone(), e.key.clone()), e)));
        }
        let (events, log_len, file) = open_log(&dir)?;
        let log_records = events.len();
        // Records up to the snapshot's revision are in it already (a crash before the log was cut).
        let in_snapshot = revision;
        for ev in events.into_iter().filter(|ev| ev.revision() > in_snapshot) {
            revision = ev.revision();
            apply(&mut data, ev);
        }
        let inner = Inner {
            data,
            revision,
            history: VecDeque::new(),
            resumable_from: revision,
            log: (opts.log_file)(file),
            log_len,
            log_records,
            compact_at: opts.compact_after,
            compact_after: opts.compact_after,
            poisoned: None,
            watchers: Vec::new(),
            _lock: lock,
        };
        Ok(EmbeddedDb { dir, inner: Arc::new(Mutex::new(inner)) })
    }

    /// Mends a log that refuses to open: keeps every record before the first torn or corrupt one and
    /// moves the rest into `log.corrupt-<offset>` (or `log.torn-<offset>`) beside it. Deletes nothing.
    /// Takes the directory's lock: the store must not be open.
    pub fn repair(dir: impl AsRef<Path>) -> std::result::Result<RepairReport, StoreError> {
        repair::repair(dir.as_ref())
    }

    /// Whether writes are refused since a failed append or fsync (until the store is reopened).
    pub fn is_poisoned(&self) -> bool {
        self.lock().poisoned.is_some()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent data (every write is applied after its log
        // record is durable, in one step): go on.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn poisoned(&self, p: &Poison) -> StoreError {
        StoreError::Poisoned { path: self.dir.join(LOG), op: p.op, cause: p.cause.clone() }
    }

    fn poison(&self, g: &mut Inner, op: &'static str, cause: io::Error) -> StoreError {
        tracing::error!(path = %self.dir.join(LOG).display(), "{op} failed ({cause}): writes are refused until the store is reopened");
        let p = Poison { op, cause: Arc::new(cause) };
        let e = self.poisoned(&p);
        g.poisoned = Some(p);
        e
    }

    /// Logs and applies one write, notifies the watchers.
    fn commit(&self, g: &mut Inner, ev: Event) -> Result<Revision> {
        if let Some(p) = &g.poisoned {
            return Err(self.poisoned(p).into());
        }
        let rec = log::encode(&ev).map_err(|bytes| StoreError::TooLarge { bytes })?;
        if let Err(e) = log::append(&mut *g.log, &rec) {
            // Part of the record may be in the file: cut it off, or the next record lands behind it.
            if let Err(cut) = g.log.set_len(g.log_len) {
                return Err(self.poison(g, "truncation after a failed append", cut).into());
            }
            return Err(StoreError::Io { op: "appending a record to", path: self.dir.join(LOG), cause: e }.into());
        }
        if let Err(e) = g.log.sync_data() {
            return Err(self.poison(g, "fsync", e).into());
        }
        g.log_len += rec.len() as u64;
        g.log_records += 1;
        let rev = ev.revision();
        g.revision = rev;
        apply(&mut g.data, ev.clone());
        g.watchers.retain(|w| w.table.as_deref().is_some_and(|t| t != ev.table()) || w.tx.send(ev.clone()).is_ok());
        g.history.push_back(ev);
        if g.history.len() > HISTORY {
            if let Some(old) = g.history.pop_front() {
                g.resumable_from = old.revision();
            }
        }
        if g.log_records >= g.compact_at {
            self.compact(g);
        }
        Ok(rev)
    }

    /// Writes a snapshot of everything and empties the log. The write that triggered it is durable
    /// already: a failure here is logged, never returned to it.
    fn compact(&self, g: &mut Inner) {
        let bytes = snapshot::encode(g.revision, g.data.values().cloned().collect());
        if let Err(e) = write_atomically(&self.dir, SNAPSHOT_TMP, SNAPSHOT, &bytes) {
            tracing::warn!("compaction: {e}; the log goes on and the snapshot is tried again later");
            g.compact_at = g.log_records + g.compact_after;
            return;
        }
        // The snapshot is durable: the records up to its revision are skipped at open whatever happens to
        // the log now. But a failed cut leaves its length unknown.
        let header = log::FILE_HEADER_LEN as u64;
        if let Err(e) = g.log.set_len(header) {
            self.poison(g, "truncation of the log after a snapshot", e);
            return;
        }
        if let Err(e) = g.log.sync_data() {
            self.poison(g, "fsync of the log after a snapshot", e);
            return;
        }
        g.log_len = header;
        g.log_records = 0;
        g.compact_at = g.compact_after;
    }
}

/// Takes the directory's lock and writes our pid in it.
fn lock_dir(dir: &Path) -> std::result::Result<File, StoreError> {
    let path = dir.join(LOCK);
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(io_err("opening", &path))?;
    match f.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let holder = std::fs::read_to_string(&path).ok().and_then(|s| s.trim().parse().ok());
            return Err(StoreError::Locked { dir: dir.to_path_buf(), holder });
        }
        Err(TryLockError::Error(e)) => return Err(io_err("locking", &path)(e)),
    }
    // The pid is for the message of whoever finds the lock taken; the lock works without it. Written over
    // the last one, at a fixed width, rather than truncating: cheaper on a journaled file system.
    let pid = format!("{:>10}\n", std::process::id());
    let _ = f.write_all_at(pid.as_bytes(), 0).and_then(|()| f.set_len(pid.len() as u64));
    Ok(f)
}

fn read_snapshot(dir: &Path) -> std::result::Result<Option<snapshot::Snapshot>, StoreError> {
    let old = dir.join(OLD_SNAPSHOT);
    if old.exists() {
        return Err(StoreError::OldFormat { path: old, dir: dir.to_path_buf() });
    }
    let path = dir.join(SNAPSHOT);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("reading", &path)(e)),
    };
    match snapshot::decode(&bytes) {
        Ok(s) => Ok(Some(s)),
        Err(Unreadable::Corrupt(reason)) => Err(StoreError::CorruptSnapshot { path, reason }),
        Err(Unreadable::Version(found)) => Err(StoreError::Version { path, found, supported: snapshot::VERSION }),
    }
}

/// The log's bytes (empty if there is none) and how they read.
fn read_log(dir: &Path) -> std::result::Result<(Vec<u8>, log::Scan), StoreError> {
    let path = dir.join(LOG);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io_err("reading", &path)(e)),
    };
    let scan = log::scan(&bytes).map_err(|r| match r {
        Refusal::OldFormat => StoreError::OldFormat { path: path.clone(), dir: dir.to_path_buf() },
        Refusal::Version(found) => StoreError::Version { path: path.clone(), found, supported: log::VERSION },
    })?;
    Ok((bytes, scan))
}

/// Reads the log, drops a torn tail, refuses corruption; returns its events, its good length and the
/// file open for appending.
fn open_log(dir: &Path) -> std::result::Result<(Vec<Event>, u64, File), StoreError> {
    let path = dir.join(LOG);
    let (bytes, scan) = read_log(dir)?;
    let mut len = scan.good_len;
    match scan.end {
        End::Clean => {}
        End::NoHeader => {
            write_atomically(dir, LOG_TMP, LOG, &log::file_header())?;
            len = log::FILE_HEADER_LEN as u64;
        }
        End::Torn(why) => tracing::warn!(
            path = %path.display(),
            offset = len,
            dropped = bytes.len() as u64 - len,
            ?why,
            "the log ends with a torn record (a write cut by a crash, never acknowledged): dropped"
        ),
        End::Corrupt(reason) => return Err(StoreError::CorruptLog { dir: dir.to_path_buf(), offset: len, reason }),
    }
    let file = OpenOptions::new().append(true).open(&path).map_err(io_err("opening", &path))?;
    if matches!(scan.end, End::Torn(_)) {
        file.set_len(len).map_err(io_err("cutting the torn tail of", &path))?;
        file.sync_data().map_err(io_err("syncing", &path))?;
    }
    Ok((scan.events, len, file))
}

/// Writes `name` in `dir` whole or not at all: to `tmp`, fsynced, renamed, the directory fsynced.
fn write_atomically(dir: &Path, tmp: &str, name: &str, bytes: &[u8]) -> std::result::Result<(), StoreError> {
    let (tmp, path) = (dir.join(tmp), dir.join(name));
    let mut f = File::create(&tmp).map_err(io_err("creating", &tmp))?;
    f.write_all(bytes).map_err(io_err("writing", &tmp))?;
    f.sync_all().map_err(io_err("syncing", &tmp))?;
    std::fs::rename(&tmp, &path).map_err(io_err("renaming into place", &path))?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> std::result::Result<(), StoreError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err("syncing the directory", dir))
}

fn apply(data: &mut BTreeMap<(String, String), Entry>, ev: Event) {
    match ev {
        Event::Put(e) => {
            data.insert((e.table.clone(), e.key.clone()), e);
        }
        Event::Delete { table, key, .. } => {
            data.remove(&(table, key));
        }
    }
}

impl Db for EmbeddedDb {
    fn revision(&self) -> Result<Revision> {
        Ok(self.lock().revision)
    }

    fn get(&self, table: &str, key: &str) -> Result<Option<Entry>> {
        Ok(self.lock().data.get(&(table.to_owned(), key.to_owned())).cloned())
    }

    fn list(&self, table: &str) -> Result<(Vec<Entry>, Revision)> {
        let g = self.lock();
        let t = table.to_owned();
        let entries =
            g.data.range((t.clone(), String::new())..).take_while(|((tb, _), _)| *tb == t).map(|(_, e)| e.clone());
        Ok((entries.collect(), g.revision))
    }

    fn create(&self, table: &str, key: &str, value: &[u8]) -> Result<Revision> {
        check_name("table", table)?;
        check_name("key", key)?;
        let mut g = self.lock();
        if g.data.contains_key(&(table.to_owned(), key.to_owned())) {
            return Err(DbError::AlreadyExists);
        }
        let rev = g.revision + 1;
        let e = Entry { table: table.into(), key: key.into(), value: value.to_vec(), revision: rev, created: rev };
        self.commit(&mut g, Event::Put(e))
    }

    fn update(&self, table: &str, key: &str, value: &[u8], expected: Revision) -> Result<Revision> {
        let mut g = self.lock();
        let Some(cur) = g.data.get(&(table.to_owned(), key.to_owned())) else { return Err(DbError::NotFound) };
        if cur.revision != expected {
            return Err(DbError::Conflict { current: cur.revision });
        }
        let rev = g.revision + 1;
        let e = Entry { value: value.to_vec(), revision: rev, ..cur.clone() };
        self.commit(&mut g, Event::Put(e))
    }

    fn delete(&self, table: &str, key: &str, expected: Option<Revision>) -> Result<Revision> {
        let mut g = self.lock();
        let Some(cur) = g.data.get(&(table.to_owned(), key.to_owned())) else { return Err(DbError::NotFound) };
        if expected.is_some_and(|r| r != cur.revision) {
            return Err(DbError::Conflict { current: cur.revision });
        }
        let rev = g.revision + 1;
        self.commit(&mut g, Event::Delete { table: table.into(), key: key.into(), revision: rev })
    }

    fn watch(&self, table: Option<&str>, after: Revision) -> Result<Watch> {
        let mut g = self.lock();
        if after < g.resumable_from {
            return Err(DbError::Compacted { requested: after, oldest: g.resumable_from });
        }
        let (tx, rx) = unbounded();
        for ev in g.history.iter().filter(|e| e.revision() > after && table.is_none_or(|t| e.table() == t)) {
            let _ = tx.send(ev.clone());
        }
        g.watchers.push(Watcher { table: table.map(str::to_owned), tx });
        // Dropping the watch drops the receiver: the next send fails and the watcher is removed.
        Ok(Watch { events: rx, _cancel: Box::new(()) })
    }
}
