#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what is missing, then format, lints and every test
# (unit, safe-layer DPDK tests on --no-huge vdevs, the binary over pcap/null vdevs, TAP ports in
# network namespaces). Run as root from anywhere.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"

bash ci/setup.sh
export CARGO_TERM_COLOR=never

echo "== every file the build and the tests use comes from a package ci/setup.sh installs"
bash ci/check-deps.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== pipelines and control build and test without DPDK"
cargo test --locked -p pipelines -p control
echo "== loom: every interleaving of the table publication protocol (pipelines/src/publish.rs)"
RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test --locked -p pipelines --lib --release publish::loom_model
echo "== the whole workspace"
# DPDK tests each start their own EAL with a unique --file-prefix; one test thread per CPU is plenty.
cargo test --workspace --locked -- --test-threads 2
echo "== the binary's end-to-end tests again, on the release binary (panic = abort, wrapping arithmetic: as users run it)"
cargo build --release --locked --bin dragonflow
DRAGONFLOW_BIN="$PWD/target/release/dragonflow" cargo test --locked -p dragonflow --tests -- --test-threads 2
