//! The embedded DB on damaged files: only a torn tail is dropped, everything else refuses to start naming
//! the file and the offset; `repair` keeps what is before the damage and deletes nothing; a corrupt
//! snapshot and an older format are refused. (The lock: `db_lock.rs`.)

mod common;

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;

use common::{fill, keys, keys_of, TempDir, Written};
use control::db::embedded::{Corruption, Cut, EmbeddedDb, Options, StoreError, Torn, Why};
use control::db::Db;

/// The offset of the record holding byte `b` of the log (0 for the file header).
fn record_at(writes: &[Written], b: u64) -> u64 {
    writes.iter().rev().find(|w| w.offset <= b).map_or(0, |w| w.offset)
}

/// Flips one bit of `path` in place (the file keeps its length, inode and blocks: cheaper than writing
/// it anew, which thousands of cases would pay for in journal commits).
fn flip(path: &Path, bit: usize) {
    let f = OpenOptions::new().read(true).write(true).open(path).unwrap();
    let mut byte = [0];
    f.read_exact_at(&mut byte, (bit / 8) as u64).unwrap();
    f.write_all_at(&[byte[0] ^ (1 << (bit % 8))], (bit / 8) as u64).unwrap();
}

/// Flips every bit of the log in turn and opens it: each flip must refuse naming the offset of the
/// record it is in, except that one in the last record may instead read as a torn tail, and then every
/// record before it must be there.
fn flip_every_bit(d: &TempDir, writes: &[Written]) -> usize {
    let original = std::fs::read(d.log()).unwrap();
    let last = writes.last().unwrap().offset;
    let mut torn = 0;
    for bit in 0..original.len() * 8 {
        let b = (bit / 8) as u64;
        flip(&d.log(), bit);
        match EmbeddedDb::open(&d.0) {
            Err(StoreError::CorruptLog { offset, .. }) => {
                assert_eq!(offset, record_at(writes, b), "bit {bit}: the offset named is the bad record's")
            }
            Ok(db) => {
                assert!(b >= last, "bit {bit} (byte {b}) is before the last record, at {last}: no flip there may open");
                assert_eq!(keys(&db), keys_of(&writes[..writes.len() - 1]), "bit {bit}: every record before the last");
                torn += 1;
                // Opening cut the torn record: put the log back whole.
                drop(db);
                std::fs::write(d.log(), &original).unwrap();
            }
            Err(e) => panic!("bit {bit}: {e}"),
        }
        flip(&d.log(), bit);
    }
    assert_eq!(std::fs::read(d.log()).unwrap(), original);
    torn
}

#[test]
fn every_bit_flip_in_a_small_log_refuses_to_open_naming_its_record() {
    let d = TempDir::new();
    let writes = fill(&EmbeddedDb::open(&d.0).unwrap(), &d.0, 4, |i| 3 + i);
    assert!(std::fs::metadata(d.log()).unwrap().len() < 512, "no sector boundary inside the log");
    // Within one sector no single flip leaves zeroes where data was: none may pass for a torn tail.
    assert_eq!(flip_every_bit(&d, &writes), 0);
    assert_eq!(keys(&EmbeddedDb::open(&d.0).unwrap()), keys_of(&writes));
}

#[test]
fn bit_flips_across_sectors_never_lose_an_acknowledged_write() {
    let d = TempDir::new();
    // Records of 60 to 400 bytes: several cross a 512-byte boundary, headers included.
    let writes = fill(&EmbeddedDb::open(&d.0).unwrap(), &d.0, 8, |i| [7, 120, 40, 90, 3, 55, 30, 10][i]);
    let len = std::fs::metadata(d.log()).unwrap().len();
    assert!(len > 1024, "{len} bytes: the log spans three sectors");
    let torn = flip_every_bit(&d, &writes);
    eprintln!("{torn} flips in the last record read as a torn tail");
}

#[test]
fn a_torn_tail_at_every_length_keeps_every_complete_record() {
    let d = TempDir::new();
    let writes = fill(&EmbeddedDb::open(&d.0).unwrap(), &d.0, 4, |i| [5, 120, 10, 40][i]);
    let original = std::fs::read(d.log()).unwrap();
    assert!(original.len() > 512);
    let ends: Vec<u64> = writes.iter().skip(1).map(|w| w.offset).chain([original.len() as u64]).collect();
    for cut in 0..=original.len() {
        // In place, as `flip`: the original bytes, then cut.
        let f = OpenOptions::new().write(true).open(d.log()).unwrap();
        f.write_all_at(&original, 0).unwrap();
        f.set_len(cut as u64).unwrap();
        let complete = ends.iter().filter(|&&e| e <= cut as u64).count();
        let db = EmbeddedDb::open(&d.0).unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        assert_eq!(keys(&db), keys_of(&writes[..complete]), "cut at {cut}");
        let expected_revision = writes[..complete].last().map_or(0, |w| w.revision);
        assert_eq!(db.revision().unwrap(), expected_revision, "cut at {cut}");
        // The torn bytes are gone from the file: a new write lands right after the last complete record
        // and reads back. (At every third cut: each costs two fsyncs.)
        if cut % 3 != 0 {
            continue;
        }
        let r = db.create("port", "after", b"x").unwrap();
        assert_eq!(r, expected_revision + 1);
        drop(db);
        let db = EmbeddedDb::open(&d.0).unwrap_or_else(|e| panic!("cut at {cut}, reopened: {e}"));
        assert_eq!(db.get("port", "after").unwrap().unwrap().revision, r, "cut at {cut}");
    }
}

#[test]
fn zeroes_are_a_torn_tail_only_in_the_last_record() {
    let d = TempDir::new();
    let writes = fill(&EmbeddedDb::open(&d.0).unwrap(), &d.0, 5, |i| [10, 300, 20, 200, 30][i]);
    let original = std::fs::read(d.log()).unwrap();
    let len = original.len();
    let open_with = |bytes: &[u8]| {
        std::fs::write(d.log(), bytes).unwrap();
        EmbeddedDb::open(&d.0)
    };
    let last = writes[4].offset as usize;
    // The file grew by the last record; none of it, or only its header, landed.
    for from in [last, last + 12] {
        let mut b = original.clone();
        b[from..].fill(0);
        assert_eq!(keys(&open_with(&b).unwrap()), keys_of(&writes[..4]), "zeroes from {from}");
    }
    // The file grew (pre-allocation, a crash between growing it and writing) but nothing landed.
    let mut b = original.clone();
    b.extend([0; 700]);
    assert_eq!(keys(&open_with(&b).unwrap()), keys_of(&writes));
    // The same zeroes in any earlier record, or a whole sector in mid-log: damage, refused at that record.
    for w in &writes[..4] {
        let o = w.offset as usize;
        for range in [o..o + 12, o + 12..o + 20] {
            let mut b = original.clone();
            b[range.clone()].fill(0);
            match open_with(&b) {
                Err(StoreError::CorruptLog { offset, .. }) => assert_eq!(offset, w.offset, "zeroes at {range:?}"),
                other => panic!("zeroes at {range:?}: {:?}", other.map(|_| ())),
            }
        }
    }
    assert!(len > 1024);
    let mut b = original.clone();
    b[512..1024].fill(0);
    assert!(matches!(open_with(&b), Err(StoreError::CorruptLog { offset, .. }) if offset == record_at(&writes, 512)));
    std::fs::write(d.log(), &original).unwrap();
}

#[test]
fn a_record_whose_revision_does_not_increase_refuses_to_open() {
    let d = TempDir::new();
    let writes = fill(&EmbeddedDb::open(&d.0).unwrap(), &d.0, 3, |_| 4);
    // The last record written twice: both checksums good, the revision repeated.
    let mut bytes = std::fs::read(d.log()).unwrap();
    let copy_at = bytes.len() as u64;
    let last = bytes[writes[2].offset as usize..].to_vec();
    bytes.extend(last);
    std::fs::write(d.log(), &bytes).unwrap();
    match EmbeddedDb::open(&d.0) {
        Err(StoreError::CorruptLog { offset, reason: Corruption::Revision { previous: 3, found: 3 }, .. }) => {
            assert_eq!(offset, copy_at)
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
}

#[test]
fn a_corrupt_log_names_the_file_the_offset_and_the_repair_command() {
    let d = TempDir::new();
    let writes = fill(&EmbeddedDb::open(&d.0).unwrap(), &d.0, 5, |_| 20);
    let original = std::fs::read(d.log()).unwrap();
    let bad = writes[2].offset as usize;
    let mut bytes = original.clone();
    bytes[bad + 20] ^= 0x04;
    std::fs::write(d.log(), &bytes).unwrap();
    let e = EmbeddedDb::open(&d.0).err().expect("refused");
    let msg = e.to_string();
    for part in [
        d.log().display().to_string(),
        format!("corrupt at byte {bad}"),
        format!("dragonflow db repair --data-dir {}", d.0.display()),
    ] {
        assert!(msg.contains(&part), "{msg:?} does not say {part:?}");
    }

    let report = EmbeddedDb::repair(&d.0).unwrap();
    println!("{report}");
    let saved_as = d.0.join(format!("log.corrupt-{bad}"));
    assert_eq!((report.kept, report.last_revision), (2, Some(writes[1].revision)));
    match &report.cut {
        Some(Cut { offset, bytes: n, saved_as: s, why: Why::Corrupt(Corruption::Payload) }) => {
            assert_eq!((*offset, *n, s), (bad as u64, (original.len() - bad) as u64, &saved_as))
        }
        other => panic!("{other:?}"),
    }
    assert!(report.to_string().contains(&saved_as.display().to_string()));
    // Nothing deleted: the log and the copy are the damaged file, split at the bad record.
    let (log, aside) = (std::fs::read(d.log()).unwrap(), std::fs::read(&saved_as).unwrap());
    assert_eq!([log, aside].concat(), bytes);

    let db = EmbeddedDb::open(&d.0).unwrap();
    assert_eq!(keys(&db), keys_of(&writes[..2]));
    assert_eq!(db.create("port", "new", b"x").unwrap(), writes[1].revision + 1);
    drop(db);
    assert!(EmbeddedDb::repair(&d.0).unwrap().cut.is_none(), "a second repair finds nothing to do");
}

#[test]
fn repair_sets_a_torn_tail_aside_too_and_never_overwrites_a_copy() {
    let d = TempDir::new();
    let writes = fill(&EmbeddedDb::open(&d.0).unwrap(), &d.0, 2, |_| 20);
    let original = std::fs::read(d.log()).unwrap();
    let cut = writes[1].offset as usize + 5;
    for copy in ["", ".1"] {
        std::fs::write(d.log(), &original[..cut]).unwrap();
        let report = EmbeddedDb::repair(&d.0).unwrap();
        let c = report.cut.expect("cut");
        assert_eq!(c.why, Why::Torn(Torn::CutShort));
        assert_eq!(c.saved_as, d.0.join(format!("log.torn-{}{copy}", writes[1].offset)));
        assert_eq!(std::fs::read(&c.saved_as).unwrap(), &original[writes[1].offset as usize..cut]);
    }
}

#[test]
fn a_corrupt_snapshot_refuses_to_start_naming_the_file() {
    let d = TempDir::new();
    {
        let db = EmbeddedDb::open_with(&d.0, Options { compact_after: 3, ..Options::default() }).unwrap();
        fill(&db, &d.0, 3, |_| 4);
    }
    let path = d.0.join("snapshot");
    let original = std::fs::read(&path).unwrap();
    assert_eq!(keys(&EmbeddedDb::open(&d.0).unwrap()).len(), 3, "everything is in the snapshot");
    let refused = |case: &str| match EmbeddedDb::open(&d.0) {
        Err(e @ StoreError::CorruptSnapshot { .. }) => {
            assert!(e.to_string().contains(&path.display().to_string()), "{case}: {e}")
        }
        other => panic!("{case}: {:?}", other.map(|_| ())),
    };
    for bit in 0..original.len() * 8 {
        flip(&path, bit);
        refused(&format!("bit {bit}"));
        flip(&path, bit);
    }
    for len in [original.len() - 1, 15, 0] {
        std::fs::write(&path, &original[..len]).unwrap();
        refused(&format!("cut to {len} bytes"));
        assert!(EmbeddedDb::repair(&d.0).is_err(), "repair does not pretend to mend a snapshot");
    }
    std::fs::write(&path, &original).unwrap();
    assert_eq!(keys(&EmbeddedDb::open(&d.0).unwrap()).len(), 3);
}

#[test]
fn the_previous_format_is_refused_saying_so() {
    // A record as the format before version 1 wrote it: length, CRC32, JSON; no file header.
    let json = br#"{"Put":{"table":"port","key":"p","value":[120],"revision":1,"created":1}}"#;
    let mut old = (json.len() as u32).to_le_bytes().to_vec();
    old.extend(crc32fast::hash(json).to_le_bytes());
    old.extend(json);
    let d = TempDir::new();
    std::fs::create_dir_all(&d.0).unwrap();
    std::fs::write(d.log(), &old).unwrap();
    let e = EmbeddedDb::open(&d.0).err().expect("refused");
    assert!(matches!(e, StoreError::OldFormat { .. }), "{e}");
    assert!(e.to_string().contains("earlier format"), "{e}");
    assert_eq!(std::fs::read(d.log()).unwrap(), old, "left as it was");
    // Its snapshot, even with an empty log.
    let d = TempDir::new();
    std::fs::create_dir_all(&d.0).unwrap();
    std::fs::write(d.0.join("snapshot.json"), br#"{"revision":0,"entries":[]}"#).unwrap();
    assert!(matches!(EmbeddedDb::open(&d.0), Err(StoreError::OldFormat { .. })));
    // Anything else without the magic is corruption at byte 0.
    let d = TempDir::new();
    std::fs::create_dir_all(&d.0).unwrap();
    std::fs::write(d.log(), b"not a log at all").unwrap();
    let e = EmbeddedDb::open(&d.0).err().expect("refused");
    assert!(matches!(e, StoreError::CorruptLog { offset: 0, reason: Corruption::Magic, .. }), "{e}");
}
