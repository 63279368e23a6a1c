//! The etcd driver (`etcd-client`, etcd v3 API): entries live under `PREFIX/TABLE/KEY`; an entry's
//! revisions are etcd's `mod_revision` and `create_revision`, so the store revision is etcd's own. Writes
//! that compare revisions are etcd transactions (`create`: the key's create revision is 0; `update` and
//! `delete`: its mod revision is the expected one); watches are etcd watches from `after + 1`, checked
//! for compaction first. The trait is synchronous: the driver owns a small tokio runtime, which also runs
//! the watch streams.
//!
//! As a deployment sees etcd: the connection is lazy and comes back by itself (a node may start before
//! etcd, and outlives its restarts); every request has a deadline ([`REQUEST_TIMEOUT`]), so a call never
//! waits on a dead or frozen server for longer; HTTP/2 keepalive pings ([`KEEPALIVE`]) find a half-open
//! connection (a server stopped with SIGSTOP, a peer gone without a FIN) and end the watch on it, so the
//! consumer lists again once the server answers. (The local controller does not wait for the keepalive:
//! it reads the revision when its watch has been quiet for a while, see `Controller::run`.) Compaction is told by etcd's error code (`OutOfRange`,
//! etcd's `ErrCompacted`), not by its message.

use std::sync::Arc;
use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, EventType, GetOptions, KeyValue, Txn, TxnOp, WatchOptions,
};
use tokio::runtime::Runtime;

use super::{check_name, Db, DbError, Entry, Event, Result, Revision, Watch};

/// The longest any one request (and a connection attempt) waits for etcd.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// HTTP/2 keepalive while a call or a watch is open: a ping this often (etcd closes the connection of a
/// client that pings more often than its `--grpc-keepalive-min-time`, 5 s by default, or that pings with
/// nothing open), the connection dropped if one is not answered within [`KEEPALIVE_TIMEOUT`].
pub const KEEPALIVE: Duration = Duration::from_secs(6);
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(3);

/// A connection to an etcd cluster. Cheap to clone.
#[derive(Clone)]
pub struct EtcdDb {
    rt: Arc<OwnRuntime>,
    client: Client,
    prefix: String,
}

/// The driver's runtime, shut down without blocking when the last handle goes: the last `EtcdDb` may be
/// dropped on another runtime's thread (the API's), where dropping a runtime the usual way panics.
struct OwnRuntime(Option<Runtime>);

impl OwnRuntime {
    fn get(&self) -> &Runtime {
        self.0.as_ref().expect("present until dropped")
    }
}

impl Drop for OwnRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

fn unavailable(e: etcd_client::Error) -> DbError {
    DbError::Unavailable(e.to_string())
}

/// Whether etcd refused a read because the revision asked for is compacted (`ErrCompacted` is gRPC's
/// `OutOfRange`).
fn is_compacted(e: &etcd_client::Error) -> bool {
    matches!(e, etcd_client::Error::GRpcStatus(s) if s.code() == tonic::Code::OutOfRange)
}

/// Aborts the task feeding a watch when the watch is dropped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl EtcdDb {
    /// A client of the cluster at `endpoints` (`http://127.0.0.1:2379`, ...); every key goes under
    /// `prefix`. It does not wait for etcd: the connection is made by the first request and again after a
    /// loss (see [`EtcdDb::probe`]).
    pub fn connect(endpoints: &[String], prefix: &str) -> Result<EtcdDb> {
        check_name("prefix", prefix)?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("etcd")
            .enable_all()
            .build()
            .map_err(|e| DbError::Unavailable(format!("tokio runtime: {e}")))?;
        let opts = ConnectOptions::new()
            .with_connect_timeout(REQUEST_TIMEOUT)
            .with_timeout(REQUEST_TIMEOUT)
            .with_keep_alive(KEEPALIVE, KEEPALIVE_TIMEOUT);
        let client = rt.block_on(Client::connect(endpoints, Some(opts))).map_err(|e| match e {
            etcd_client::Error::InvalidArgs(m) => DbError::Invalid(m),
            etcd_client::Error::InvalidUri(u) => DbError::Invalid(format!("etcd endpoint: {u}")),
            e => unavailable(e),
        })?;
        Ok(EtcdDb { rt: Arc::new(OwnRuntime(Some(rt))), client, prefix: prefix.to_owned() })
    }

    /// Whether the cluster answers now (one read, within [`REQUEST_TIMEOUT`]).
    pub fn probe(&self) -> Result<()> {
        self.revision().map(drop)
    }

    /// Runs `f` on the driver's runtime with a deadline of [`REQUEST_TIMEOUT`] on top of the transport's
    /// own (which does not cover every stage of a call): etcd's answer, or `Unavailable` past it.
    fn run<T>(
        &self,
        f: impl std::future::Future<Output = std::result::Result<T, etcd_client::Error>>,
    ) -> Result<std::result::Result<T, etcd_client::Error>> {
        // (The timer is made inside the runtime: it needs its reactor.)
        let deadline = REQUEST_TIMEOUT + Duration::from_millis(500);
        self.rt
            .get()
            .block_on(async { tokio::time::timeout(deadline, f).await })
            .map_err(|_| DbError::Unavailable(format!("etcd did not answer within {REQUEST_TIMEOUT:?}")))
    }

    /// As [`EtcdDb::run`], every etcd error `Unavailable`.
    fn call<T>(&self, f: impl std::future::Future<Output = std::result::Result<T, etcd_client::Error>>) -> Result<T> {
        self.run(f)?.map_err(unavailable)
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
        let resp = self.call(c.txn(txn))?;
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
        let resp = self.call(c.get(format!("{}/", self.prefix), Some(opts)))?;
        Ok(resp.header().map_or(0, |h| h.revision()) as Revision)
    }

    fn get(&self, table: &str, key: &str) -> Result<Option<Entry>> {
        let mut c = self.client.clone();
        let resp = self.call(c.get(self.path(table, key), None))?;
        Ok(resp.kvs().first().and_then(|kv| self.entry(kv)))
    }

    fn list(&self, table: &str) -> Result<(Vec<Entry>, Revision)> {
        let mut c = self.client.clone();
        let prefix = format!("{}/{table}/", self.prefix);
        let resp = self.call(c.get(prefix, Some(GetOptions::new().with_prefix())))?;
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
            match self.run(c.get(prefix.clone(), Some(opts)))? {
                Ok(_) => {}
                Err(e) if is_compacted(&e) => return Err(DbError::Compacted { requested: after, oldest: 0 }),
                Err(e) => return Err(unavailable(e)),
            }
        }
        let mut c = self.client.clone();
        let opts = WatchOptions::new().with_prefix().with_start_revision(after as i64 + 1);
        let mut stream = self.call(c.watch(prefix, Some(opts)))?;
        let (tx, rx) = crossbeam_channel::unbounded();
        let this = self.clone();
        let task = self.rt.get().spawn(async move {
            // Ends (disconnecting the channel) on an error (a keepalive that went unanswered among them), a
            // cancel or a compaction: the consumer lists again and watches from there.
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
