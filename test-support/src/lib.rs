//! What the project's tests share, written once: a client for the Neutron API ([`Neutron`]) and a real
//! etcd server a test starts, stops, restarts on the same data, freezes and thaws ([`Etcd`]). Not
//! published; a dev-dependency only. It knows nothing of the project's crates (a test crate of
//! `control` may use it without a second copy of `control`): it speaks HTTP and runs processes.
//!
//! ```no_run
//! use serde_json::json;
//! use test_support::{error_type, Etcd, Neutron};
//!
//! let api = Neutron::new("127.0.0.1:9696");
//! let net = api.create("network", json!({"name": "n1"}));
//! let (status, v) = api.get(&format!("/v2.0/networks/{}", net["id"].as_str().unwrap()));
//! assert_eq!((status, v["network"]["name"].as_str()), (200, Some("n1")));
//! let (status, v) = api.get("/v2.0/networks/nope");
//! assert_eq!((status, error_type(&v)), (404, "NetworkNotFound"));
//!
//! let mut etcd = Etcd::started("example"); // free loopback ports, a data directory of its own
//! etcd.freeze(); // SIGSTOP: connections stay open, nothing answers
//! etcd.thaw();
//! etcd.kill();
//! etcd.start(); // the same data
//! ```

mod etcd;
mod neutron;

pub use etcd::Etcd;
pub use neutron::{error_type, Neutron};

/// A free TCP port on 127.0.0.1 (free when asked: another process may take it before it is used).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}
