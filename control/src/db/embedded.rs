//! The embedded driver (the default, for a single node or the all-in-one role): in-process, persisted to
//! a data directory so that a restart keeps everything, and crash-safe.
//!
//! On disk: `snapshot.json` (every entry and the revision it is consistent at, written to a temporary
//! file, fsynced and renamed into place) and `log` (every write since, one record each: length, CRC32,
//! JSON; fsynced before the write is acknowledged). Opening loads the snapshot and replays the log; a
//! record cut short or failing its CRC ends the log there (a crash mid-write: that write was never
//! acknowledged) and the file is truncated to the last good record. Past `COMPACT_AFTER` log records the
//! store writes a new snapshot and starts an empty log.
//!
//! Watches resume from any revision still in the in-memory history (the last `HISTORY` events, and only
//! those since the store was opened); older ones get `Compacted`, as from etcd after a compaction.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use crossbeam_channel::{unbounded, Sender};

use super::{check_name, Db, DbError, Entry, Event, Result, Revision, Watch};

/// Log records after which the store compacts into a new snapshot.
pub const COMPACT_AFTER: usize = 10_000;
/// Events kept for resuming watches.
pub const HISTORY: usize = 100_000;

#[derive(serde::Serialize, serde::Deserialize)]
struct Snapshot {
    revision: Revision,
    entries: Vec<Entry>,
}

struct Watcher {
    table: Option<String>,
    tx: Sender<Event>,
}

struct Inner {
    data: BTreeMap<(String, String), Entry>,
    revision: Revision,
    history: VecDeque<Event>,
    /// Watches can resume from any revision ≥ this one.
    resumable_from: Revision,
    log: File,
    log_records: usize,
    watchers: Vec<Watcher>,
}

/// The embedded store. Cheap to share (`Arc` inside).
#[derive(Clone)]
pub struct EmbeddedDb {
    dir: PathBuf,
    inner: Arc<Mutex<Inner>>,
}

fn storage(what: &str, path: &Path, e: std::io::Error) -> DbError {
    DbError::Storage(format!("{what} {}: {e}", path.display()))
}

impl EmbeddedDb {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: impl AsRef<Path>) -> Result<EmbeddedDb> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir).map_err(|e| storage("creating", &dir, e))?;
        let snap_path = dir.join("snapshot.json");
        let (mut data, mut revision) = (BTreeMap::new(), 0);
        match std::fs::read(&snap_path) {
            Ok(bytes) => {
                let s: Snapshot = serde_json::from_slice(&bytes)
                    .map_err(|e| DbError::Storage(format!("{}: {e}", snap_path.display())))?;
                revision = s.revision;
                for e in s.entries {
                    data.insert((e.table.clone(), e.key.clone()), e);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(storage("reading", &snap_path, e)),
        }
        let log_path = dir.join("log");
        let mut log = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| storage("opening", &log_path, e))?;
        let mut bytes = Vec::new();
        log.read_to_end(&mut bytes).map_err(|e| storage("reading", &log_path, e))?;
        let (events, good) = read_records(&bytes);
        if good < bytes.len() {
            tracing::warn!(
                path = %log_path.display(),
                dropped = bytes.len() - good,
                "the log ends with a torn or corrupt record (a write cut by a crash): truncated"
            );
            log.set_len(good as u64).map_err(|e| storage("truncating", &log_path, e))?;
            log.sync_all().map_err(|e| storage("syncing", &log_path, e))?;
        }
        let log_records = events.len();
        for ev in events {
            if ev.revision() <= revision {
                continue; // already in the snapshot (a crash between snapshot and log reset)
            }
            revision = ev.revision();
            apply(&mut data, ev);
        }
        let inner = Inner {
            data,
            revision,
            history: VecDeque::new(),
            resumable_from: revision,
            log,
            log_records,
            watchers: Vec::new(),
        };
        Ok(EmbeddedDb { dir, inner: Arc::new(Mutex::new(inner)) })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent data (every write is applied after its log
        // record is durable, in one step): go on.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Logs and applies one write, notifies the watchers.
    fn commit(&self, g: &mut Inner, ev: Event) -> Result<Revision> {
        let rec = serde_json::to_vec(&ev).map_err(|e| DbError::Storage(e.to_string()))?;
        let mut buf = Vec::with_capacity(rec.len() + 8);
        buf.extend_from_slice(&(rec.len() as u32).to_le_bytes());
        buf.extend_from_slice(&crc32fast::hash(&rec).to_le_bytes());
        buf.extend_from_slice(&rec);
        let log_path = self.dir.join("log");
        g.log.write_all(&buf).map_err(|e| storage("writing", &log_path, e))?;
        g.log.sync_data().map_err(|e| storage("syncing", &log_path, e))?;
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
        if g.log_records >= COMPACT_AFTER {
            self.compact(g)?;
        }
        Ok(rev)
    }

    /// Writes a snapshot of everything and empties the log.
    fn compact(&self, g: &mut Inner) -> Result<()> {
        let snap = Snapshot { revision: g.revision, entries: g.data.values().cloned().collect() };
        let bytes = serde_json::to_vec(&snap).map_err(|e| DbError::Storage(e.to_string()))?;
        let (tmp, path) = (self.dir.join("snapshot.json.tmp"), self.dir.join("snapshot.json"));
        let mut f = File::create(&tmp).map_err(|e| storage("creating", &tmp, e))?;
        f.write_all(&bytes).map_err(|e| storage("writing", &tmp, e))?;
        f.sync_all().map_err(|e| storage("syncing", &tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| storage("renaming", &path, e))?;
        File::open(&self.dir).and_then(|d| d.sync_all()).map_err(|e| storage("syncing", &self.dir, e))?;
        // The snapshot is durable: records up to its revision are skipped at open even if this fails.
        let log_path = self.dir.join("log");
        g.log.set_len(0).map_err(|e| storage("truncating", &log_path, e))?;
        g.log.sync_all().map_err(|e| storage("syncing", &log_path, e))?;
        g.log_records = 0;
        Ok(())
    }
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

/// The log's records up to the first torn or corrupt one, and the length of the good prefix.
fn read_records(bytes: &[u8]) -> (Vec<Event>, usize) {
    let (mut out, mut at) = (Vec::new(), 0);
    while bytes.len() - at >= 8 {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().expect("4 bytes"));
        let Some(rec) = bytes.get(at + 8..at + 8 + len) else { break };
        if crc32fast::hash(rec) != crc {
            break;
        }
        let Ok(ev) = serde_json::from_slice::<Event>(rec) else { break };
        out.push(ev);
        at += 8 + len;
    }
    (out, at)
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
