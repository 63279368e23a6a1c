//! What the API's test files share: the API over a fresh embedded DB on a loopback port, and the client
//! for it.
#![allow(dead_code)] // each test file uses its own part

use std::sync::Arc;

use control::api::Settings;
use control::db::embedded::EmbeddedDb;
use test_support::Neutron;

/// The API on a loopback port, and the client for it (`s.post(…)`, `s.call(…)`); its data directory is
/// removed on drop.
pub struct Server {
    api: Neutron,
    _rt: tokio::runtime::Runtime,
    dir: std::path::PathBuf,
}

impl std::ops::Deref for Server {
    type Target = Neutron;
    fn deref(&self) -> &Neutron {
        &self.api
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The API over a fresh embedded DB (named for the test) on a loopback port.
pub fn serve(name: &str) -> Server {
    serve_with(name, |routes| routes)
}

/// The API over a fresh embedded DB on a loopback port, its routes passed through `wrap`.
pub fn serve_with(name: &str, wrap: impl FnOnce(axum::Router) -> axum::Router) -> Server {
    serve_settings(name, Settings::default(), wrap)
}

/// The same, with `settings`.
pub fn serve_settings(name: &str, settings: Settings, wrap: impl FnOnce(axum::Router) -> axum::Router) -> Server {
    let dir = std::env::temp_dir().join(format!("df-api-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let db = Arc::new(EmbeddedDb::open(&dir).unwrap());
    serve_db(db, dir, settings, wrap)
}

/// The API over `db` (in `dir`) on a loopback port: several may share one DB, as API servers do.
pub fn serve_db(
    db: Arc<EmbeddedDb>,
    dir: std::path::PathBuf,
    settings: Settings,
    wrap: impl FnOnce(axum::Router) -> axum::Router,
) -> Server {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let routes = wrap(control::api::router(db, settings));
    rt.spawn(async move { axum::serve(listener, routes).await });
    Server { api: Neutron::new(&addr), _rt: rt, dir }
}
