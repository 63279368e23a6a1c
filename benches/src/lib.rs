//! Benchmarks only: see `micro/` (criterion), `run.sh` (vdevs, beside testpmd and OVS-DPDK) and
//! [`routes`] (the route-count scenarios' configuration and traffic).

pub mod routes;
