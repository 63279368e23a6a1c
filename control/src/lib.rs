//! Dragonflow's control plane, without DPDK: everything between the Neutron API and the tables the
//! dataplane runs.
//!
//! | module | what |
//! |---|---|
//! | [`config`] | the static topology of `dragonflow run`'s file (`[[port]]`, `[[router]]`), parsed and checked once for the binary, the tests and the operator |
//! | [`model`] | Neutron's objects as stored (networks, subnets, ports, routers, security groups, floating IPs) and the chassis; [`model::Store`] reads and writes them with compare-and-swap |
//! | [`db`] | the pluggable DB: the [`db::Db`] trait, the embedded driver and the etcd one, the conformance suite both pass |
//! | [`api`] | the Neutron REST API over a [`db::Db`], one file per resource |
//! | [`controller`] | the local controller: follows the DB (selectively), binds this node's ports, and publishes tables incrementally |
//! | [`compile`] | the model as one node sees it into the pipeline's tables: the node's network set, what a port and a router become (fragments), which ARP/ND claim wins; the full compilation built from them, the reference the incremental one is checked against |
//! | [`keys`] | the keys the tables know networks, logical ports, chassis and routers by, and where they come from |
//! | [`static_topology`] | tables from the config file's `[[port]]` and `[[router]]`, for `dragonflow run` (no DB) |
//! | [`cidr`] | [`cidr::Cidr`], the one address-with-prefix type of all the above |
//!
//! The binary wires them to the dataplane: the API role serves [`api::serve_until`] over a DB; the
//! node role runs a [`controller::Controller`] over the same DB, with the dataplane as its
//! [`controller::Node`].
//!
//! ```
//! use control::model::{Network, Store};
//!
//! // The static topology of `dragonflow run`'s file: unknown keys are errors.
//! let topology = control::config::StaticTopology::from_toml_str(r#"
//!     [[port]]
//!     name = "net_tap0"
//!     mac = "fa:16:3e:00:00:01"
//!     network = 1
//! "#).unwrap();
//! let tables = control::static_topology::compile(&topology.ports, &topology.routers, &["net_tap0".into()]).unwrap();
//! assert_eq!(tables.port(0).unwrap().network, 1);
//!
//! // The model in the embedded DB: a write names the revision it read, a stale one is refused.
//! let dir = std::env::temp_dir().join(format!("control-doc-{}", std::process::id()));
//! let db = control::db::embedded::EmbeddedDb::open(&dir).unwrap();
//! let store = Store::new(&db);
//! let n: Network = serde_json::from_str(r#"{"id": "net1", "provider:segmentation_id": 100}"#).unwrap();
//! let n = store.create(n).unwrap();
//! let stale = n.clone();
//! store.update(Network { name: "blue".into(), ..n }).unwrap();
//! assert!(store.update(stale).is_err());
//! # drop(db);
//! # std::fs::remove_dir_all(&dir).unwrap();
//! ```

#![forbid(unsafe_code)]

pub mod api;
pub mod cidr;
pub mod compile;
pub mod config;
pub mod controller;
pub mod db;
pub mod keys;
pub mod model;
pub mod static_topology;
