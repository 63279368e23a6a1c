#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what is missing, then format, lints and every test
# (unit, safe-layer DPDK tests on --no-huge vdevs, the binary over pcap/null vdevs, TAP ports in
# network namespaces). Run as root from anywhere.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"

# Each phase's start, in minutes:seconds since the suite began (where a slow run spent its time).
SECONDS=0
phase() { printf '== [%d:%02d] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"; }
trap 'phase "done (exit $?)"' EXIT

phase "ci/setup.sh: what is missing"
bash ci/setup.sh
export CARGO_TERM_COLOR=never

phase "every file the build and the tests use comes from a package ci/setup.sh installs"
bash ci/check-deps.sh

phase "cargo fmt --check"
cargo fmt --all -- --check
phase "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
phase "pipelines and control build and test without DPDK"
cargo test --locked -p pipelines -p control
phase "loom: every interleaving of the table publication protocol (pipelines/src/publish.rs)"
RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test --locked -p pipelines --lib --release publish::loom_model
phase "the rest of the workspace (pipelines' and control's tests ran above)"
# DPDK tests each start their own EAL with a unique --file-prefix; one test thread per CPU is plenty.
cargo test --workspace --exclude pipelines --exclude control --locked -- --test-threads 2
phase "the binary's end-to-end tests again, on the release binary (panic = abort, wrapping arithmetic: as users run it)"
cargo build --release --locked --bin dragonflow
DRAGONFLOW_BIN="$PWD/target/release/dragonflow" cargo test --locked -p dragonflow --tests -- --test-threads 2
