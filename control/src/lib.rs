//! Dragonflow's control plane: the static topology of the `run` role's configuration file (`config`:
//! `[[port]]` and `[[router]]`, parsed and validated here so that the binary, the tests and the operator
//! see the same rules; `static_topology` compiles it), the model (`model`), the pluggable DB (`db`: the
//! trait, the embedded and etcd drivers, the conformance suite), the local controller and the Neutron API.
//! No DPDK here.
//!
//! ```
//! let topology = control::config::StaticTopology::from_toml_str(r#"
//!     [[port]]
//!     name = "net_tap0"
//!     mac = "fa:16:3e:00:00:01"
//!     network = 1
//! "#).unwrap();
//! let tables = control::static_topology::compile(&topology.ports, &topology.routers, &["net_tap0".into()]).unwrap();
//! assert_eq!(tables.port(0).unwrap().network, 1);
//! ```

pub mod api;
pub mod compile;
pub mod config;
pub mod controller;
pub mod db;
pub mod model;
pub mod static_topology;
