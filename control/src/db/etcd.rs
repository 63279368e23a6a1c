//! The etcd driver (`etcd-client`, etcd v3 API): entries live under `PREFIX/TABLE/KEY`; an entry's
//! revisions are etcd's `mod_revision` and `create_revision`, so the store revision is etcd's own. Writes
//! that compare revisions are etcd transactions (`create`: the key's create revision is 0; `update` and
//! `delete`: its mod revision is the expected one); watches are etcd watches from `after + 1`, checked
//! for compaction first. The trait is synchronous: the driver owns a small tokio runtime, which also runs
//! the watch streams.

use std::sync::Arc;

use etcd_client::{Client, Compare, CompareOp, EventType, GetOptions, KeyValue, Txn, TxnOp, WatchOptions};
use tokio::runtime::Runtime;

use super::{check_name, Db, DbError, Entry, Event, Result, Revision, Watch};

/// A connection to an etcd cluster. Cheap to clone.
#[derive(Clone)]
pub struct EtcdDb {
    rt: Arc<Runtime>,
    client: Client,
    prefix: String,
}

fn unavailable(e: etcd_client::Error) -> DbError {
    DbError::Unavailable(e.to_string())
}

/// Aborts the task feeding a watch when the watch is dropped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl EtcdDb {
    /// Connects to `endpoints` (`http://127.0.0.1:2379`, ...); every key goes under `prefix`.
    pub fn connect(endpoints: &[String], prefix: &str) -> Result<EtcdDb> {
        check_name("prefix", prefix)?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("etcd")
            .enable_all()
            .build()
            .map_err(|e| DbError::Unavailable(format!("tokio runtime: {e}")))?;
        let client = rt.block_on(Client::connect(endpoints, None)).map_err(unavailable)?;
        let db = EtcdDb { rt: Arc::new(rt), client, prefix: prefix.to_owned() };
        db.revision()?; // the cluster answers
        Ok(db)
    }

    fn path(&self, table: &str, key: &str) -> String {
        format!("{}/{table}/{key}", self.prefix)
    }

    fn entry(&self, kv: &KeyValue) -> Option<Entry> {
        let rest = std::str::from_utf8(kv.key()).ok()?.strip_prefix(&self.prefix)?.strip_prefix('/')?;
        let (table, key) = rest.split_once('/')?;
        Some(Entry {
            table: table.to_owned(),
            key: key.to_owned(),
            value: kv.value().to_vec(),
            revision: kv.mod_revision() as Revision,
            created: kv.create_revision() as Revision,
        })
    }

    /// Runs `txn`; on failure, reads the key to tell `NotFound` from `Conflict`.
    fn cas(&self, path: &str, txn: Txn) -> Result<Revision> {
        let mut c = self.client.clone();
        let txn = txn.or_else([TxnOp::get(path, None)]);
        let resp = self.rt.block_on(c.txn(txn)).map_err(unavailable)?;
        let rev = resp.header().map_or(0, |h| h.revision()) as Revision;
        if resp.succeeded() {
            return Ok(rev);
        }
        for r in resp.op_responses() {
            if let etcd_client::TxnOpResponse::Get(g) = r {
                return match g.kvs().first() {
                    Some(kv) => Err(DbError::Conflict { current: kv.mod_revision() as Revision }),
                    None => Err(DbError::NotFound),
                };
            }
        }
        Err(DbError::Unavailable("transaction answered without its read".into()))
    }
}

impl Db for EtcdDb {
    fn revision(&self) -> Result<Revision> {
        let mut c = self.client.clone();
        let opts = GetOptions::new().with_count_only().with_prefix();
        let resp = self.rt.block_on(c.get(format!("{}/", self.prefix), Some(opts))).map_err(unavailable)?;
        Ok(resp.header().map_or(0, |h| h.revision()) as Revision)
    }

    fn get(&self, table: &str, key: &str) -> Result<Option<Entry>> {
        let mut c = self.client.clone();
        let resp = self.rt.block_on(c.get(self.path(table, key), None)).map_err(unavailable)?;
        Ok(resp.kvs().first().and_then(|kv| self.entry(kv)))
    }

    fn list(&self, table: &str) -> Result<(Vec<Entry>, Revision)> {
        let mut c = self.client.clone();
        let prefix = format!("{}/{table}/", self.prefix);
        let resp = self.rt.block_on(c.get(prefix, Some(GetOptions::new().with_prefix()))).map_err(unavailable)?;
        let rev = resp.header().map_or(0, |h| h.revision()) as Revision;
        Ok((resp.kvs().iter().filter_map(|kv| self.entry(kv)).collect(), rev))
    }

    fn create(&self, table: &str, key: &str, value: &[u8]) -> Result<Revision> {
        check_name("table", table)?;
        check_name("key", key)?;
        let path = self.path(table, key);
        let txn = Txn::new()
            .when([Compare::create_revision(path.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(path.clone(), value.to_vec(), None)]);
        match self.cas(&path, txn) {
            Err(DbError::Conflict { .. }) => Err(DbError::AlreadyExists),
            r => r,
        }
    }

    fn update(&self, table: &str, key: &str, value: &[u8], expected: Revision) -> Result<Revision> {
        let path = self.path(table, key);
        let txn = Txn::new()
            .when([Compare::mod_revision(path.clone(), CompareOp::Equal, expected as i64)])
            .and_then([TxnOp::put(path.clone(), value.to_vec(), None)]);
        self.cas(&path, txn)
    }

    fn delete(&self, table: &str, key: &str, expected: Option<Revision>) -> Result<Revision> {
        let path = self.path(table, key);
        let cond = match expected {
            Some(r) => Compare::mod_revision(path.clone(), CompareOp::Equal, r as i64),
            None => Compare::create_revision(path.clone(), CompareOp::NotEqual, 0),
        };
        self.cas(&path, Txn::new().when([cond]).and_then([TxnOp::delete(path.clone(), None)]))
    }

    fn watch(&self, table: Option<&str>, after: Revision) -> Result<Watch> {
        let prefix = match table {
            Some(t) => format!("{}/{t}/", self.prefix),
            None => format!("{}/", self.prefix),
        };
        // A read at `after` fails if etcd compacted it: the history to resume from is gone.
        let current = self.revision()?;
        if after > 0 && after < current {
            let mut c = self.client.clone();
            let opts = GetOptions::new().with_count_only().with_revision(after as i64);
            if let Err(e) = self.rt.block_on(c.get(prefix.clone(), Some(opts))) {
                return Err(if e.to_string().contains("compacted") {
                    DbError::Compacted { requested: after, oldest: 0 }
                } else {
                    unavailable(e)
                });
            }
        }
        let mut c = self.client.clone();
        let opts = WatchOptions::new().with_prefix().with_start_revision(after as i64 + 1);
        let mut stream = self.rt.block_on(c.watch(prefix, Some(opts))).map_err(unavailable)?;
        let (tx, rx) = crossbeam_channel::unbounded();
        let this = self.clone();
        let task = self.rt.spawn(async move {
            // Ends (disconnecting the channel) on an error, a cancel or a compaction: the consumer lists
            // again and watches from there.
            while let Ok(Some(resp)) = stream.message().await {
                if resp.canceled() {
                    break;
                }
                for ev in resp.events() {
                    let Some(kv) = ev.kv() else { continue };
                    let Some(e) = this.entry(kv) else { continue };
                    let ev = match ev.event_type() {
                        EventType::Put => Event::Put(e),
                        EventType::Delete => Event::Delete { table: e.table, key: e.key, revision: e.revision },
                    };
                    if tx.send(ev).is_err() {
                        return;
                    }
                }
            }
        });
        Ok(Watch { events: rx, _cancel: Box::new(AbortOnDrop(task.abort_handle())) })
    }
}
