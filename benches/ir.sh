#!/usr/bin/env bash
# Instructions per packet of the table pipeline (heap buffers, the harness's 1k-flow traffic, bursts of 32),
# counted by callgrind: repeatable to a few instructions, unlike timings on this machine.
#   benches/ir.sh [BURSTS]     (default 20000)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-20000}
cargo build --release --locked -q -p benches --example pipeline_ir
BIN=target/release/examples/pipeline_ir
ir() {
  local out
  out=$(mktemp)
  valgrind --tool=callgrind --callgrind-out-file="$out" "$BIN" "$1" "$N" >/dev/null 2>&1
  callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/{gsub(",","",$1); print $1}'
  rm -f "$out"
}
base=$(ir restore)
echo "| mode | instructions per packet |"
echo "|---|---|"
for m in l2 l2-per-packet l3 l3-per-packet; do
  echo "| $m | $(( ($(ir "$m") - base) / (N * 32) )) |"
done
