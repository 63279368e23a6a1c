//! Benchmarks only: see `micro/` (criterion), `run.sh` (vdevs, beside testpmd and OVS-DPDK) and
//! [`routes`] (the route-count scenarios' configuration and traffic), [`mixed`] (bursts that mix L2,
//! routed, ARP, ND, IPv4 and IPv6 frames of IMIX sizes).

pub mod mixed;
pub mod routes;
