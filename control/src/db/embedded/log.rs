//! The log file's format: its header, one record, and the reading of a whole log back into its events,
//! up to the end, a torn tail or the first corruption. The rules are in the parent module's doc; this
//! file is their one implementation, shared by `open` and `repair`.

use std::fs::File;
use std::io;

use crate::db::{Event, Revision};

/// The log's magic, its first 8 bytes.
pub const MAGIC: [u8; 8] = *b"DFDB-LOG";
/// The format this build writes and reads.
pub const VERSION: u32 = 1;
/// The file header: magic, version, CRC32 of both.
pub const FILE_HEADER_LEN: usize = 16;
/// A record's header: payload length, payload CRC32, CRC32 of those 8 bytes.
pub const RECORD_HEADER_LEN: usize = 12;
/// The unit a crash can leave unwritten in a file that grew: the smallest sector size.
pub const SECTOR: u64 = 512;

mod field {
    use std::ops::Range;
    // The file header.
    pub const MAGIC: Range<usize> = 0..8;
    pub const VERSION: Range<usize> = 8..12;
    pub const FILE_CRC: Range<usize> = 12..16;
    // A record header.
    pub const LEN: Range<usize> = 0..4;
    pub const PAYLOAD_CRC: Range<usize> = 4..8;
    pub const HEADER_CRC: Range<usize> = 8..12;
}

fn u32_at(b: &[u8], r: std::ops::Range<usize>) -> u32 {
    u32::from_le_bytes(b[r].try_into().expect("a 4-byte field"))
}

/// The operations the store performs on its open log: appends, syncs, truncations. [`File`] (opened for
/// append) in production; tests wrap one to inject failures.
pub trait LogFile: Send {
    /// Appends up to `buf.len()` bytes at the end of the file; may write fewer (returns how many).
    fn write(&mut self, buf: &[u8]) -> io::Result<usize>;
    /// Makes the appended bytes, and the file's length, durable (fdatasync).
    fn sync_data(&mut self) -> io::Result<()>;
    /// Cuts the file to `len` bytes; appends continue from there.
    fn set_len(&mut self, len: u64) -> io::Result<()>;
}

impl LogFile for File {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        io::Write::write(self, buf)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        File::sync_data(self)
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        File::set_len(self, len)
    }
}

/// Appends all of `buf`, going on after short writes; an error leaves an unknown part of it written.
pub fn append(f: &mut dyn LogFile, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match f.write(buf) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The header a log of this format starts with.
pub fn file_header() -> [u8; FILE_HEADER_LEN] {
    let mut h = [0; FILE_HEADER_LEN];
    h[field::MAGIC].copy_from_slice(&MAGIC);
    h[field::VERSION].copy_from_slice(&VERSION.to_le_bytes());
    let crc = crc32fast::hash(&h[..field::FILE_CRC.start]);
    h[field::FILE_CRC].copy_from_slice(&crc.to_le_bytes());
    h
}

/// One record, header and payload; the payload's length if it does not fit its 32-bit field.
pub fn encode(ev: &Event) -> Result<Vec<u8>, usize> {
    let payload = serde_json::to_vec(ev).expect("an event (strings, bytes, numbers) always serializes");
    let len = u32::try_from(payload.len()).map_err(|_| payload.len())?;
    let mut rec = Vec::with_capacity(RECORD_HEADER_LEN + payload.len());
    rec.extend_from_slice(&len.to_le_bytes());
    rec.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    let header_crc = crc32fast::hash(&rec[..field::HEADER_CRC.start]);
    rec.extend_from_slice(&header_crc.to_le_bytes());
    rec.extend_from_slice(&payload);
    Ok(rec)
}

/// Why the last record was read as torn (a write cut by a crash, never acknowledged).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Torn {
    /// The file ends inside the record.
    CutShort,
    /// The record is the last thing in the file and fails its checksum where a sector's data never
    /// landed (zeroes).
    ZeroFilled,
}

impl std::fmt::Display for Torn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Torn::CutShort => "cut short by the end of the file",
            Torn::ZeroFilled => "zero-filled where its data never landed",
        })
    }
}

/// Why a record (or the file header) is corrupt: damage that no crash while appending explains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Corruption {
    #[error("the file header has no magic (not a log of this store)")]
    Magic,
    #[error("the file header fails its checksum")]
    FileHeader,
    #[error("the record header fails its checksum, and it is not a torn last record")]
    RecordHeader,
    #[error("the record payload fails its checksum, and it is not a torn last record")]
    Payload,
    #[error("the record passes its checksums but is not an event")]
    Undecodable,
    #[error("the record's revision {found} does not follow the previous record's {previous}")]
    Revision { previous: Revision, found: Revision },
}

/// How reading a log ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// At the end of the file.
    Clean,
    /// The file is shorter than a header and a prefix of one (or empty): a creation that never
    /// completed, no record in it. It is written anew.
    NoHeader,
    /// At a torn last record, which starts at the scan's `good_len`.
    Torn(Torn),
    /// At damage, which starts at the scan's `good_len`.
    Corrupt(Corruption),
}

/// Why a log is not read at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Records with no file header: the format before version 1.
    OldFormat,
    /// A header of another format version.
    Version(u32),
}

/// A log read back: its events, how far they go, and how it ended.
#[derive(Debug)]
pub struct Scan {
    pub events: Vec<Event>,
    /// The length of the header and every good record; a torn or corrupt part starts here.
    pub good_len: u64,
    pub end: End,
}

/// Reads a whole log file.
pub fn scan(bytes: &[u8]) -> Result<Scan, Refusal> {
    let header = file_header();
    let stop = |end| Ok(Scan { events: Vec::new(), good_len: 0, end });
    if bytes.len() < FILE_HEADER_LEN && header.starts_with(bytes) {
        return stop(End::NoHeader);
    }
    if bytes.len() < FILE_HEADER_LEN || bytes[field::MAGIC] != MAGIC {
        return if reads_as_old_format(bytes) {
            Err(Refusal::OldFormat)
        } else {
            stop(End::Corrupt(Corruption::Magic))
        };
    }
    if crc32fast::hash(&bytes[..field::FILE_CRC.start]) != u32_at(bytes, field::FILE_CRC) {
        return stop(End::Corrupt(Corruption::FileHeader));
    }
    match u32_at(bytes, field::VERSION) {
        VERSION => {}
        v => return Err(Refusal::Version(v)),
    }
    let mut events: Vec<Event> = Vec::new();
    let mut at = FILE_HEADER_LEN;
    let end = loop {
        match record(bytes, at) {
            Read::End => break End::Clean,
            Read::Torn(t) => break End::Torn(t),
            Read::Corrupt(c) => break End::Corrupt(c),
            Read::Event(ev, next) => {
                if let Some(previous) = events.last().map(Event::revision) {
                    if ev.revision() <= previous {
                        break End::Corrupt(Corruption::Revision { previous, found: ev.revision() });
                    }
                }
                events.push(ev);
                at = next;
            }
        }
    };
    Ok(Scan { events, good_len: at as u64, end })
}

enum Read {
    End,
    Event(Event, usize),
    Torn(Torn),
    Corrupt(Corruption),
}

/// The record at `at`.
fn record(bytes: &[u8], at: usize) -> Read {
    let rest = &bytes[at..];
    if rest.is_empty() {
        return Read::End;
    }
    if rest.len() < RECORD_HEADER_LEN {
        return Read::Torn(Torn::CutShort);
    }
    let Some(len) = checked_len(rest) else {
        // The header is not what was written. A crash leaves a header unwritten only as zeroes, and only
        // in the last record: anything valid after it means this is damage in the middle.
        let header = &rest[..RECORD_HEADER_LEN];
        return if has_zero_sector(header, at as u64) && !valid_record_from(bytes, at + 1) {
            Read::Torn(Torn::ZeroFilled)
        } else {
            Read::Corrupt(Corruption::RecordHeader)
        };
    };
    let Some(payload) = rest.get(RECORD_HEADER_LEN..RECORD_HEADER_LEN + len) else {
        return Read::Torn(Torn::CutShort);
    };
    if crc32fast::hash(payload) != u32_at(rest, field::PAYLOAD_CRC) {
        let last = RECORD_HEADER_LEN + len == rest.len();
        return if last && has_zero_sector(payload, (at + RECORD_HEADER_LEN) as u64) {
            Read::Torn(Torn::ZeroFilled)
        } else {
            Read::Corrupt(Corruption::Payload)
        };
    }
    match serde_json::from_slice(payload) {
        Ok(ev) => Read::Event(ev, at + RECORD_HEADER_LEN + len),
        Err(_) => Read::Corrupt(Corruption::Undecodable),
    }
}

/// The payload length of the record header at the start of `rest`, if the header passes its checksum.
fn checked_len(rest: &[u8]) -> Option<usize> {
    let ok = crc32fast::hash(&rest[..field::HEADER_CRC.start]) == u32_at(rest, field::HEADER_CRC);
    ok.then(|| u32_at(rest, field::LEN) as usize)
}

/// Whether a whole record, both checksums good, starts at some offset from `from` on.
fn valid_record_from(bytes: &[u8], from: usize) -> bool {
    (from..bytes.len().saturating_sub(RECORD_HEADER_LEN - 1)).any(|p| {
        let rest = &bytes[p..];
        checked_len(rest).is_some_and(|len| {
            rest.get(RECORD_HEADER_LEN..RECORD_HEADER_LEN + len)
                .is_some_and(|payload| crc32fast::hash(payload) == u32_at(rest, field::PAYLOAD_CRC))
        })
    })
}

/// Whether `bytes`, found at file offset `at`, hold a sector piece (their part within one
/// `SECTOR`-aligned sector of the file) that is all zeroes: where the file grew but the data never landed.
pub fn has_zero_sector(bytes: &[u8], at: u64) -> bool {
    let mut i = 0;
    while i < bytes.len() {
        let room = (SECTOR - (at + i as u64) % SECTOR) as usize;
        let piece = &bytes[i..bytes.len().min(i + room)];
        if piece.iter().all(|&b| b == 0) {
            return true;
        }
        i += piece.len();
    }
    false
}

/// Whether `bytes` start with a record of the format before version 1 (length u32, CRC32 of the
/// payload, JSON event; no file header).
fn reads_as_old_format(bytes: &[u8]) -> bool {
    let Some(len) = bytes.get(0..4).map(|b| u32_at(b, 0..4) as usize) else { return false };
    let Some(payload) = bytes.get(8..8 + len) else { return false };
    crc32fast::hash(payload) == u32_at(bytes, 4..8) && serde_json::from_slice::<Event>(payload).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Entry;

    fn put(rev: Revision, key: &str) -> Event {
        Event::Put(Entry { table: "t".into(), key: key.into(), value: b"v".to_vec(), revision: rev, created: rev })
    }

    fn log_of(events: &[Event]) -> Vec<u8> {
        let mut b = file_header().to_vec();
        for ev in events {
            b.extend(encode(ev).unwrap());
        }
        b
    }

    #[test]
    fn the_file_header_is_magic_version_and_checksum() {
        let h = file_header();
        assert_eq!(&h[..8], b"DFDB-LOG");
        assert_eq!(&h[8..12], &[1, 0, 0, 0]);
        assert_eq!(u32::from_le_bytes(h[12..].try_into().unwrap()), crc32fast::hash(&h[..12]));
    }

    #[test]
    fn a_record_is_length_checksums_and_json() {
        let ev = Event::Delete { table: "t".into(), key: "k".into(), revision: 7 };
        let rec = encode(&ev).unwrap();
        let json = br#"{"Delete":{"table":"t","key":"k","revision":7}}"#;
        assert_eq!(&rec[12..], json);
        assert_eq!(&rec[0..4], &(json.len() as u32).to_le_bytes());
        assert_eq!(&rec[4..8], &crc32fast::hash(json).to_le_bytes());
        assert_eq!(&rec[8..12], &crc32fast::hash(&rec[0..8]).to_le_bytes());
        let s = scan(&log_of(std::slice::from_ref(&ev))).unwrap();
        assert_eq!((s.events, s.end), (vec![ev], End::Clean));
    }

    #[test]
    fn empty_and_header_prefixes_have_no_header_yet() {
        let h = file_header();
        for n in 0..FILE_HEADER_LEN {
            assert_eq!(scan(&h[..n]).unwrap().end, End::NoHeader, "{n} bytes");
        }
        assert_eq!(scan(&h).unwrap().end, End::Clean);
        assert_eq!(scan(&[0; FILE_HEADER_LEN]).unwrap().end, End::Corrupt(Corruption::Magic));
    }

    #[test]
    fn other_versions_and_the_old_format_are_refused() {
        let mut b = log_of(&[put(1, "a")]);
        b[8] = 2;
        let crc = crc32fast::hash(&b[..12]);
        b[12..16].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(scan(&b).unwrap_err(), Refusal::Version(2));
        let json = serde_json::to_vec(&put(1, "a")).unwrap();
        let mut old = (json.len() as u32).to_le_bytes().to_vec();
        old.extend(crc32fast::hash(&json).to_le_bytes());
        old.extend(json);
        assert_eq!(scan(&old).unwrap_err(), Refusal::OldFormat);
    }

    #[test]
    fn revisions_must_increase() {
        let s = scan(&log_of(&[put(1, "a"), put(3, "b"), put(3, "c")])).unwrap();
        assert_eq!(s.end, End::Corrupt(Corruption::Revision { previous: 3, found: 3 }));
        assert_eq!(s.events.len(), 2);
        assert_eq!(s.good_len as usize, log_of(&[put(1, "a"), put(3, "b")]).len());
    }

    #[test]
    fn zeroes_end_a_log_only_in_its_last_record() {
        let two = log_of(&[put(1, "a"), put(2, "b")]);
        let one = log_of(&[put(1, "a")]).len();
        // The file grew by the last record and none of it landed.
        let mut b = two.clone();
        b[one..].fill(0);
        assert_eq!(scan(&b).unwrap().end, End::Torn(Torn::ZeroFilled));
        // Its payload did not land, its header did.
        let mut b = two.clone();
        b[one + RECORD_HEADER_LEN..].fill(0);
        assert_eq!(scan(&b).unwrap().end, End::Torn(Torn::ZeroFilled));
        // The same zeroes in the first record, with the second one whole after it: damage.
        let mut b = two.clone();
        b[FILE_HEADER_LEN..FILE_HEADER_LEN + RECORD_HEADER_LEN].fill(0);
        assert_eq!(scan(&b).unwrap().end, End::Corrupt(Corruption::RecordHeader));
        let mut b = two.clone();
        b[FILE_HEADER_LEN + RECORD_HEADER_LEN..one].fill(0);
        assert_eq!(scan(&b).unwrap().end, End::Corrupt(Corruption::Payload));
        // Garbage (not zeroes) in the last record's payload: damage, not a crash.
        let mut b = two;
        let last = b.len() - 2;
        b[last] ^= 1;
        let s = scan(&b).unwrap();
        assert_eq!((s.end, s.good_len as usize), (End::Corrupt(Corruption::Payload), one));
    }

    #[test]
    fn zero_pieces_follow_the_file_sectors() {
        assert!(!has_zero_sector(&[1; 1024], 0));
        let mut b = [1u8; 20];
        b[..2].fill(0);
        // At offset 510 the first two bytes are the whole of sector 0's piece.
        assert!(has_zero_sector(&b, 510));
        assert!(!has_zero_sector(&b, 509));
        assert!(!has_zero_sector(&b, 0));
    }
}
