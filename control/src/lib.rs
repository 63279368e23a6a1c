//! Dragonflow's control plane: the node's configuration file (`dragonflow.toml`, parsed and validated
//! here so that the binary, the tests and the operator see the same rules), the model (`model`), the
//! pluggable DB (`db`: the trait, the embedded and etcd drivers, the conformance suite). The Neutron API
//! and the local controller come next. No DPDK here.
//!
//! ```
//! let cfg = control::config::NodeConfig::from_toml_str(r#"
//!     [dataplane]
//!     ports = ["net_tap0,iface=dtap0", "net_tap1,iface=dtap1"]
//! "#).unwrap();
//! assert_eq!(cfg.dataplane.ports.len(), 2);
//! ```

#![forbid(unsafe_code)]

pub mod api;
pub mod cidr;
pub mod compile;
pub mod config;
pub mod controller;
pub mod db;
pub mod model;
pub mod static_topology;
