//! `dragonflow db repair`: the way back when the store refuses to start on a damaged log. It keeps every
//! record before the first torn or corrupt one, copies the rest aside, and deletes nothing.

use std::fmt;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::log::End;
use super::{io_err, lock_dir, read_log, read_snapshot, sync_dir, Corruption, Torn, LOG};
use super::{Revision, StoreError};

/// What a repair did.
#[derive(Debug)]
pub struct RepairReport {
    pub log: PathBuf,
    /// The records kept.
    pub kept: usize,
    /// The revision of the last record kept.
    pub last_revision: Option<Revision>,
    /// What was moved out of the log, if anything.
    pub cut: Option<Cut>,
}

/// The part of the log a repair moved aside.
#[derive(Debug)]
pub struct Cut {
    /// Where it started in the log (the log's length now).
    pub offset: u64,
    pub bytes: u64,
    /// The copy.
    pub saved_as: PathBuf,
    pub why: Why,
}

/// Why the log was cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    Torn(Torn),
    Corrupt(Corruption),
}

impl fmt::Display for RepairReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = if self.kept == 1 { "" } else { "s" };
        let upto = self.last_revision.map(|r| format!(", up to revision {r}")).unwrap_or_default();
        let Some(c) = &self.cut else {
            return write!(f, "{}: nothing to repair ({} record{plural}{upto})", self.log.display(), self.kept);
        };
        let why = match c.why {
            Why::Torn(t) => format!("a torn last record ({t})"),
            Why::Corrupt(reason) => format!("corruption ({reason})"),
        };
        write!(
            f,
            "{}: {why} at byte {}. Kept the {} record{plural} before it{upto}; moved the {} bytes from there on to {}",
            self.log.display(),
            c.offset,
            self.kept,
            c.bytes,
            c.saved_as.display()
        )
    }
}

pub(super) fn repair(dir: &Path) -> Result<RepairReport, StoreError> {
    let _lock = lock_dir(dir)?;
    // A corrupt or old snapshot is an error here too: the log cannot make up for it.
    read_snapshot(dir)?;
    let path = dir.join(LOG);
    let (bytes, scan) = read_log(dir)?;
    let mut report = RepairReport {
        log: path.clone(),
        kept: scan.events.len(),
        last_revision: scan.events.last().map(|e| e.revision()),
        cut: None,
    };
    let why = match scan.end {
        End::Clean | End::NoHeader => return Ok(report),
        End::Torn(t) => Why::Torn(t),
        End::Corrupt(c) => Why::Corrupt(c),
    };
    let offset = scan.good_len;
    let rest = &bytes[offset as usize..];
    let kind = if matches!(why, Why::Torn(_)) { "torn" } else { "corrupt" };
    let saved_as = save_aside(dir, &format!("log.{kind}-{offset}"), rest)?;
    // The copy is durable: only now is the log cut.
    let log = OpenOptions::new().write(true).open(&path).map_err(io_err("opening", &path))?;
    log.set_len(offset).map_err(io_err("cutting", &path))?;
    log.sync_all().map_err(io_err("syncing", &path))?;
    tracing::info!(log = %path.display(), offset, saved_as = %saved_as.display(), "log repaired");
    report.cut = Some(Cut { offset, bytes: rest.len() as u64, saved_as, why });
    Ok(report)
}

/// Writes `bytes` to a new file `name` in `dir` (`name.1`, `name.2`, ... if taken), durably.
fn save_aside(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf, StoreError> {
    for n in 0.. {
        let path = if n == 0 { dir.join(name) } else { dir.join(format!("{name}.{n}")) };
        let mut f = match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_err("creating", &path)(e)),
        };
        f.write_all(bytes).map_err(io_err("writing", &path))?;
        f.sync_all().map_err(io_err("syncing", &path))?;
        sync_dir(dir)?;
        return Ok(path);
    }
    unreachable!("some name is free")
}
