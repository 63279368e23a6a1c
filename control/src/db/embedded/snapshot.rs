//! The snapshot file's format: magic, version, the JSON of every entry and the revision they are
//! consistent at, and a CRC32 of all of it at the end. Written whole (temporary file, fsync, rename,
//! directory fsync), so it is never torn: any mismatch is corruption.

use crate::db::{Entry, Revision};

pub const MAGIC: [u8; 8] = *b"DFDB-SNP";
pub const VERSION: u32 = 1;
/// Magic, version, and the trailing CRC32.
const OVERHEAD: usize = 16;

#[derive(serde::Serialize, serde::Deserialize)]
pub struct Snapshot {
    pub revision: Revision,
    pub entries: Vec<Entry>,
}

/// Why a snapshot does not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotCorruption {
    #[error("shorter than its header and checksum")]
    TooShort,
    #[error("it fails its checksum")]
    Checksum,
    #[error("no magic (not a snapshot of this store)")]
    Magic,
    #[error("it passes its checksum but is not a snapshot")]
    Undecodable,
}

/// Why a snapshot is not read at all, or does not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreadable {
    Corrupt(SnapshotCorruption),
    Version(u32),
}

pub fn encode(revision: Revision, entries: Vec<Entry>) -> Vec<u8> {
    let mut b = MAGIC.to_vec();
    b.extend_from_slice(&VERSION.to_le_bytes());
    serde_json::to_writer(&mut b, &Snapshot { revision, entries }).expect("entries always serialize");
    let crc = crc32fast::hash(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    b
}

pub fn decode(bytes: &[u8]) -> Result<Snapshot, Unreadable> {
    use SnapshotCorruption::*;
    if bytes.len() < OVERHEAD {
        return Err(Unreadable::Corrupt(TooShort));
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    if crc32fast::hash(body) != u32::from_le_bytes(crc.try_into().expect("4 bytes")) {
        return Err(Unreadable::Corrupt(Checksum));
    }
    if body[0..8] != MAGIC {
        return Err(Unreadable::Corrupt(Magic));
    }
    match u32::from_le_bytes(body[8..12].try_into().expect("4 bytes")) {
        VERSION => serde_json::from_slice(&body[12..]).map_err(|_| Unreadable::Corrupt(Undecodable)),
        v => Err(Unreadable::Version(v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_flip_is_caught() {
        let e = Entry { table: "t".into(), key: "k".into(), value: b"v".to_vec(), revision: 3, created: 2 };
        let b = encode(3, vec![e.clone()]);
        assert_eq!(&b[..12], b"DFDB-SNP\x01\0\0\0");
        let s = decode(&b).unwrap();
        assert_eq!((s.revision, s.entries), (3, vec![e]));
        for i in 0..b.len() * 8 {
            let mut c = b.clone();
            c[i / 8] ^= 1 << (i % 8);
            assert_eq!(decode(&c).err(), Some(Unreadable::Corrupt(SnapshotCorruption::Checksum)), "bit {i}");
        }
        assert_eq!(decode(&b[..10]).err(), Some(Unreadable::Corrupt(SnapshotCorruption::TooShort)));
    }
}
