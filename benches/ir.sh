#!/usr/bin/env bash
# Instructions per packet of the table pipeline (heap buffers, the harness's 1k-flow traffic, bursts of 32),
# counted by callgrind: repeatable to a few instructions, unlike timings on this machine.
#   benches/ir.sh [BURSTS]            (default 20000)
#   benches/ir.sh --routes [BURSTS]   the route-count scenarios instead: L3 with 1 to 100,000 routes, IPv4
#                                     and IPv6, destinations spread over the routes (benches/src/routes.rs)
#   benches/ir.sh --tunnels [BURSTS]  VXLAN encapsulation and decapsulation (benches/vxlan-*-1kflows.toml)
#   benches/ir.sh --sg [BURSTS]       the L2 traffic with benches/sg.toml's security groups (two tracked zones)
#   benches/ir.sh --mixed [BURSTS]    the mixed bursts (benches/src/mixed.rs: L2, routed, ARP, ND, IPv4 and
#                                     IPv6, IMIX) with 1 and 100,000 routes, burst fast path and per packet
set -euo pipefail
cd "$(dirname "$0")/.."
ROUTES=0 MIXED=0 TUNNELS=0 SG=0
if [ "${1:-}" = --routes ]; then ROUTES=1; shift; fi
if [ "${1:-}" = --tunnels ]; then TUNNELS=1; shift; fi
if [ "${1:-}" = --mixed ]; then MIXED=1; shift; fi
if [ "${1:-}" = --sg ]; then SG=1; shift; fi
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
if [ "$ROUTES" = 1 ]; then
  echo "| routes | IPv4 instructions per packet | IPv6 instructions per packet |"
  echo "|---|---|---|"
  for r in 1 100 1000 10000 100000; do
    row="| $r |"
    for f in v4 v6; do
      row="$row $(( ($(ir "l3-routes:$r:$f") - $(ir "restore-routes:$r:$f")) / (N * 32) )) |"
    done
    echo "$row"
  done
  exit 0
fi
if [ "$MIXED" = 1 ]; then
  echo "| routes per family | burst fast path (decide) | per packet (decide_per_packet) |"
  echo "|---|---|---|"
  for r in 1 100000; do
    base=$(ir "restore-mixed:$r")
    echo "| $r | $(( ($(ir "mixed:$r") - base) / (N * 32) )) | $(( ($(ir "mixed-per-packet:$r") - base) / (N * 32) )) |"
  done
  exit 0
fi
if [ "$SG" = 1 ]; then
  base=$(ir restore)
  echo "| mode | instructions per packet |"
  echo "|---|---|"
  for m in l2 sg; do
    echo "| $m | $(( ($(ir "$m") - base) / (N * 32) )) |"
  done
  exit 0
fi
if [ "$TUNNELS" = 1 ]; then
  echo "| mode | instructions per packet |"
  echo "|---|---|"
  for m in encap decap; do
    echo "| $m | $(( ($(ir "$m") - $(ir "restore-$m")) / (N * 32) )) |"
  done
  exit 0
fi
base=$(ir restore)
echo "| mode | instructions per packet |"
echo "|---|---|"
for m in l2 l2-per-packet l3 l3-per-packet snat snat-per-packet; do
  echo "| $m | $(( ($(ir "$m") - base) / (N * 32) )) |"
done
