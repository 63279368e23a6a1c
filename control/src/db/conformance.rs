//! The conformance suite every [`Db`] driver must pass: the same checks against the embedded store and
//! against a real etcd. `fresh` makes an empty store for each check. Each check panics with what went
//! wrong; [`run_all`] runs them in turn.

use std::sync::Arc;
use std::time::Duration;

use super::{Db, DbError, Event};

/// Every check, in order.
pub fn run_all<D: Db + 'static>(fresh: &dyn Fn() -> D) {
    create_get_list(fresh());
    compare_and_swap(fresh());
    deletes(fresh());
    revisions_only_grow(fresh());
    watch_delivers_every_change_in_order(fresh());
    watch_resumes_from_a_revision(fresh());
    concurrent_writers_lose_nothing(Arc::new(fresh()));
    bad_names_are_refused(fresh());
}

pub fn create_get_list<D: Db>(db: D) {
    let r1 = db.create("network", "n1", b"{\"name\":\"a\"}").unwrap();
    let r2 = db.create("network", "n2", b"{}").unwrap();
    db.create("port", "p1", b"{}").unwrap();
    assert!(r2 > r1);
    let e = db.get("network", "n1").unwrap().expect("created");
    assert_eq!((e.value.as_slice(), e.revision, e.created), (&b"{\"name\":\"a\"}"[..], r1, r1));
    assert_eq!(db.get("network", "nope").unwrap(), None);
    assert_eq!(db.create("network", "n1", b"{}"), Err(DbError::AlreadyExists));
    let (list, at) = db.list("network").unwrap();
    assert_eq!(list.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(), ["n1", "n2"]);
    assert!(at >= r2);
    assert!(db.list("router").unwrap().0.is_empty());
}

pub fn compare_and_swap<D: Db>(db: D) {
    let r1 = db.create("port", "p", b"1").unwrap();
    let r2 = db.update("port", "p", b"2", r1).unwrap();
    assert!(r2 > r1);
    // A writer that read revision r1 is refused: its write is stale.
    assert_eq!(db.update("port", "p", b"stale", r1), Err(DbError::Conflict { current: r2 }));
    let e = db.get("port", "p").unwrap().unwrap();
    assert_eq!((e.value.as_slice(), e.revision, e.created), (&b"2"[..], r2, r1));
    assert_eq!(db.update("port", "missing", b"x", 1), Err(DbError::NotFound));
}

pub fn deletes<D: Db>(db: D) {
    let r1 = db.create("port", "p", b"1").unwrap();
    let r2 = db.update("port", "p", b"2", r1).unwrap();
    assert_eq!(db.delete("port", "p", Some(r1)), Err(DbError::Conflict { current: r2 }));
    let r3 = db.delete("port", "p", Some(r2)).unwrap();
    assert!(r3 > r2);
    assert_eq!(db.get("port", "p").unwrap(), None);
    assert_eq!(db.delete("port", "p", None), Err(DbError::NotFound));
    // Created again: a new life, a new creation revision.
    let r4 = db.create("port", "p", b"3").unwrap();
    assert_eq!(db.get("port", "p").unwrap().unwrap().created, r4);
}

pub fn revisions_only_grow<D: Db>(db: D) {
    let mut last = db.revision().unwrap();
    for i in 0..20 {
        let r = db.create("t", &format!("k{i}"), b"v").unwrap();
        assert!(r > last, "revision {r} after {last}");
        last = r;
    }
    assert_eq!(db.revision().unwrap(), last);
}

fn next(w: &super::Watch) -> Event {
    w.events.recv_timeout(Duration::from_secs(10)).expect("an event within 10 s")
}

pub fn watch_delivers_every_change_in_order<D: Db>(db: D) {
    let start = db.revision().unwrap();
    let all = db.watch(None, start).unwrap();
    let ports = db.watch(Some("port"), start).unwrap();
    let r1 = db.create("network", "n", b"n").unwrap();
    let r2 = db.create("port", "p", b"1").unwrap();
    let r3 = db.update("port", "p", b"2", r2).unwrap();
    let r4 = db.delete("port", "p", None).unwrap();
    let got: Vec<_> = (0..4).map(|_| next(&all)).collect();
    assert_eq!(got.iter().map(Event::revision).collect::<Vec<_>>(), [r1, r2, r3, r4]);
    assert!(matches!(&got[2], Event::Put(e) if e.value == b"2"));
    assert!(matches!(&got[3], Event::Delete { key, .. } if key == "p"));
    let got: Vec<_> = (0..3).map(|_| next(&ports)).collect();
    assert_eq!(got.iter().map(Event::revision).collect::<Vec<_>>(), [r2, r3, r4], "the port table only");
}

pub fn watch_resumes_from_a_revision<D: Db>(db: D) {
    let r1 = db.create("port", "a", b"1").unwrap();
    let r2 = db.create("port", "b", b"1").unwrap();
    let r3 = db.update("port", "a", b"2", r1).unwrap();
    // A node that saw r1 and was cut off resumes from it: it gets r2 and r3, then what follows.
    let w = db.watch(Some("port"), r1).unwrap();
    let r4 = db.delete("port", "b", None).unwrap();
    let got: Vec<_> = (0..3).map(|_| next(&w).revision()).collect();
    assert_eq!(got, [r2, r3, r4]);
    drop(w);
    // A dropped watch costs the writers nothing.
    db.create("port", "c", b"1").unwrap();
}

pub fn concurrent_writers_lose_nothing<D: Db + 'static>(db: Arc<D>) {
    db.create("counter", "c", b"0").unwrap();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let db = db.clone();
            std::thread::spawn(move || {
                for _ in 0..25 {
                    // Read, modify, compare-and-swap; retry on conflict.
                    loop {
                        let e = db.get("counter", "c").unwrap().unwrap();
                        let n: u64 = std::str::from_utf8(&e.value).unwrap().parse().unwrap();
                        match db.update("counter", "c", (n + 1).to_string().as_bytes(), e.revision) {
                            Ok(_) => break,
                            Err(DbError::Conflict { .. }) => continue,
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
            })
        })
        .collect();
    // And racing creates of one key: exactly one wins.
    let creators: Vec<_> = (0..4)
        .map(|i| {
            let db = db.clone();
            std::thread::spawn(move || db.create("port", "same", format!("{i}").as_bytes()).is_ok())
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    let wins = creators.into_iter().map(|t| t.join().unwrap()).filter(|&w| w).count();
    assert_eq!(wins, 1);
    assert_eq!(db.get("counter", "c").unwrap().unwrap().value, b"100", "no update lost");
}

pub fn bad_names_are_refused<D: Db>(db: D) {
    for (t, k) in [("", "k"), ("t", ""), ("t", "a/b"), ("t/x", "k"), ("t", "line\nbreak")] {
        assert!(matches!(db.create(t, k, b"v"), Err(DbError::Invalid(_))), "{t:?} {k:?}");
    }
}
