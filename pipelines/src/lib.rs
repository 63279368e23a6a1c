//! Dragonflow's packet pipeline, in pure Rust: everything a worker core decides for a packet, and nothing
//! of DPDK. The `dataplane` crate runs these decisions over mbufs (it implements [`buf::PacketBuf`] for
//! its `Mbuf`) and carries them out; tests, benchmarks and fuzz targets run them over [`buf::HeapBuf`].
//!
//! The contract. [`stages::decide`] takes the tables (an immutable [`tables::Tables`] snapshot), the
//! worker's [`stages::WorkerState`], a burst of packets and one fresh [`meta::Meta`] per packet. It may
//! rewrite a packet in place (an ARP or ND answer, a routed packet's MACs and TTL, an echo reply, an ICMP
//! error), and returns the burst [`fate::Decided`]: each packet's [`fate::Fate`] is its output port, its
//! reply port, its flood set or its drop reason, all the caller needs to move the packet and count. It
//! neither allocates, locks nor fails: a packet it cannot forward is a drop with a named reason
//! ([`drop::Reason`], `<stage>.<reason>`, the one list of drop counters, the dataplane's own included).
//!
//! Where things are:
//! - [`wire`]: zero-copy packet views, one protocol per file, smoltcp style;
//! - [`tables`] and [`routing`]: the compiled snapshot the control plane builds ([`tables::TablesBuilder`])
//!   and [`publish`] hands to the workers (immutable snapshots, one atomic swap, reclaimed by the
//!   publisher);
//! - [`stages`]: the pipeline, one stage per file, in the order its `packet` function lists them;
//!   [`meta`]: the per-packet record the stages share; [`fate`]: what a decided packet becomes;
//!   [`drop`](mod@drop): why a packet is dropped; [`icmp_ratelimit`]: the router's ICMP error limits;
//! - [`patch`]: the cross-connect map of the patch mode, the other forwarding mode;
//! - [`acl`]: security groups, a port's allow rules of one direction compiled for a lookup whose cost
//!   does not grow with the rule count;
//! - [`nat`]: a router's NAT on its external network (the state; `stages/nat.rs` decides);
//! - [`steer`]: which worker owns a packet's connection, when several track connections;
//! - [`fixtures`]: frames and small topologies for tests, goldens and benchmarks.
//!
//! Two VM ports of one network, and a burst from the first one:
//!
//! ```
//! use pipelines::buf::HeapBuf;
//! use pipelines::drop::Reason;
//! use pipelines::fate::Fate;
//! use pipelines::fixtures::{udp4, IP1, IP2, VM1, VM2};
//! use pipelines::meta::Meta;
//! use pipelines::stages::{decide, WorkerState};
//! use pipelines::tables::{PortEntry, TablesBuilder};
//! use pipelines::wire::{IpNet, Ipv4Addr, Mac};
//!
//! let vm = |lport, mac, ip| PortEntry {
//!     lport, // the Neutron port's key
//!     network: 1,
//!     mac,
//!     up: true,
//!     security: true,
//!     allowed: vec![(mac, IpNet::host_v4(ip))],
//!     sg: None,
//! };
//! let mut b = TablesBuilder::new();
//! b.local_port(0, vm(101, VM1, IP1)).local_port(1, vm(102, VM2, IP2)); // dataplane ports 0 and 1
//! let tables = b.build();
//!
//! let mut pkts = [
//!     HeapBuf::new(&udp4(VM1, VM2, IP1, IP2)),                            // to VM2
//!     HeapBuf::new(&udp4(VM1, Mac::BROADCAST, IP1, Ipv4Addr::BROADCAST)), // to everyone else
//!     HeapBuf::new(&udp4(VM1, VM2, Ipv4Addr::new(10, 0, 0, 66), IP2)),    // from an address not VM1's
//! ];
//! let mut meta = [Meta::new(0); 3]; // all came in on port 0
//! let decided = decide(&tables, &mut WorkerState::new(1), &mut pkts, &mut meta);
//!
//! let mut fates = decided.fates(&tables);
//! assert!(matches!(fates.next(), Some(Fate::Output(1))));
//! let Some(Fate::Flood(ports)) = fates.next() else { panic!("a flood") };
//! assert_eq!(ports.collect::<Vec<u16>>(), [1]); // the network's ports but the one it came in by
//! assert!(matches!(fates.next(), Some(Fate::Drop(Reason::PortSecurityIp))));
//! assert_eq!(Reason::PortSecurityIp.name(), "port_security.ip_spoof");
//! ```

pub mod acl;
pub mod buf;
pub mod conntrack;
pub mod drop;
pub mod fate;
pub mod fixtures;
pub mod icmp_ratelimit;
pub mod lpm;
pub mod meta;
pub mod nat;
pub mod patch;
pub mod publish;
pub mod routing;
pub mod services;
pub mod stages;
pub mod steer;
pub mod tables;
pub mod tunnel;
pub mod wire;
