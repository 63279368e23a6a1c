//! Benchmarks only: see `micro/` (criterion) and `run.sh` (vdevs, beside testpmd and OVS-DPDK).
