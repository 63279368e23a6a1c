//! The pluggable distributed DB: one trait, [`Db`], that every driver implements (get, list, create,
//! update and delete with compare-and-swap on the revision, and watch from a revision, resumable after a
//! disconnect), and the drivers. Values are opaque bytes (the model's JSON); tables are namespaces
//! (`network`, `port`, `chassis`, ...). Adding a driver is implementing [`Db`] and passing the
//! conformance suite ([`conformance`]), nothing else.
//!
//! Revisions are one counter per store, as etcd's: every write gets the next one, and each entry carries
//! the revision of its last write (`revision`) and of its creation (`created`). A write that names an
//! expected revision fails with [`DbError::Conflict`] if the entry moved since: a stale write is refused,
//! and a node can always tell old from new.

pub mod conformance;
pub mod embedded;
pub mod etcd;

use crossbeam_channel::Receiver;

pub type Revision = u64;

/// One stored object.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    pub table: String,
    pub key: String,
    pub value: Vec<u8>,
    /// The revision of the last write.
    pub revision: Revision,
    /// The revision of the creation.
    pub created: Revision,
}

/// A change, as a watch delivers it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Event {
    /// Created or updated: the entry as written.
    Put(Entry),
    /// Deleted at `revision`.
    Delete { table: String, key: String, revision: Revision },
}

impl Event {
    pub fn revision(&self) -> Revision {
        match self {
            Event::Put(e) => e.revision,
            Event::Delete { revision, .. } => *revision,
        }
    }

    pub fn table(&self) -> &str {
        match self {
            Event::Put(e) => &e.table,
            Event::Delete { table, .. } => table,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DbError {
    #[error("not found")]
    NotFound,
    #[error("already exists")]
    AlreadyExists,
    /// The entry's revision is not the one the write expected (someone wrote it since).
    #[error("revision conflict: the entry is at revision {current}")]
    Conflict { current: Revision },
    /// The history needed to resume a watch from that revision is gone: list again, then watch from the
    /// list's revision.
    #[error("revision {requested} is compacted (history starts after {oldest})")]
    Compacted { requested: Revision, oldest: Revision },
    #[error("invalid argument: {0}")]
    Invalid(String),
    #[error("storage: {0}")]
    Storage(String),
    #[error("unavailable: {0}")]
    Unavailable(String),
}

pub type Result<T> = std::result::Result<T, DbError>;

/// A stream of events with revisions after the one the watch started from, in revision order, with no
/// gap. It ends (the channel disconnects) when the store goes away or the connection is lost; resume
/// with a new watch from the last revision received.
pub struct Watch {
    pub events: Receiver<Event>,
    /// Dropped with the watch: tells the driver to stop feeding it.
    pub(crate) _cancel: Box<dyn Send>,
}

/// The DB every driver provides.
pub trait Db: Send + Sync {
    /// The store's current revision.
    fn revision(&self) -> Result<Revision>;
    fn get(&self, table: &str, key: &str) -> Result<Option<Entry>>;
    /// Every entry of `table`, by key, and the store revision the list is consistent at (watch from it).
    fn list(&self, table: &str) -> Result<(Vec<Entry>, Revision)>;
    /// Creates `key`; `AlreadyExists` if it is there. Returns the write's revision.
    fn create(&self, table: &str, key: &str, value: &[u8]) -> Result<Revision>;
    /// Replaces `key`'s value if its revision is still `expected`; `NotFound`, or `Conflict` otherwise.
    fn update(&self, table: &str, key: &str, value: &[u8], expected: Revision) -> Result<Revision>;
    /// Deletes `key` (if its revision is still `expected`, when given). Returns the write's revision.
    fn delete(&self, table: &str, key: &str, expected: Option<Revision>) -> Result<Revision>;
    /// The events of `table` (every table if `None`) with revisions after `after`.
    fn watch(&self, table: Option<&str>, after: Revision) -> Result<Watch>;
}

/// Table and key names: non-empty, printable, no `/` (drivers build paths and etcd keys from them).
pub(crate) fn check_name(what: &str, s: &str) -> Result<()> {
    if s.is_empty() || s.len() > 255 || s.contains('/') || s.chars().any(|c| c.is_control()) {
        return Err(DbError::Invalid(format!("{what} {s:?}: 1-255 printable characters, no '/'")));
    }
    Ok(())
}
