//! Dragonflow's packet pipeline, in pure Rust: what a worker core decides for every packet. Nothing here
//! knows DPDK; the `dataplane` crate runs these decisions over mbufs, and tests run them over heap buffers.
//!
//! Today it holds the cross-connect ("patch") map, the first forwarding mode; the packet views, tables and
//! Dragonflow's stages (classification, port security, L2, L3, …) come next, one file per stage.
//!
//! ```
//! use pipelines::patch::PatchMap;
//! let names = ["net_tap0", "net_tap1"];
//! let map = PatchMap::from_pairs(&names, &[("net_tap0", "net_tap1")]).unwrap();
//! assert_eq!(map.peer(0), Some(1));
//! assert_eq!(map.peer(1), Some(0));
//! ```

pub mod buf;
pub mod drop;
pub mod fate;
pub mod fixtures;
pub mod icmp_ratelimit;
pub mod meta;
pub mod patch;
pub mod publish;
pub mod routing;
pub mod stages;
pub mod tables;
pub mod wire;
