#!/usr/bin/env bash
# DPDK's l3fwd (from Debian's dpdk-doc) built for the route-count scenarios: the shared harness's two
# changes (a pool that holds a preloaded pcap, no RX checksum offload on vdevs; ../shared/bench/
# build-examples.sh) plus LPM tables large enough for 100,000 routes and more (l3fwd's own limits are
# 1,024 rules and 256 IPv4 tbl8 groups). Nothing else of l3fwd changes.
#
#   benches/build-l3fwd.sh [DIR]     default /tmp/df-l3fwd; prints the binary's path
set -euo pipefail
DIR=${1:-/tmp/df-l3fwd}
SRC=/usr/share/dpdk/examples
BIN=$DIR/l3fwd/build/l3fwd
if [ -x "$BIN" ]; then echo "$BIN"; exit 0; fi
[ -f "$SRC/l3fwd/main.c" ] || { echo "build-l3fwd.sh: no $SRC: ci/setup.sh --bench (dpdk-doc)" >&2; exit 1; }
rm -rf "$DIR"; mkdir -p "$DIR"
cp -r "$SRC/l3fwd" "$SRC/common" "$DIR/"
sed -i 's/(unsigned)8192)/(unsigned)262144)/' "$DIR/l3fwd/main.c"
sed -i 's/\.offloads = RTE_ETH_RX_OFFLOAD_CHECKSUM,/.offloads = 0, \/* vdevs have no RX checksum offload *\//' "$DIR/l3fwd/main.c"
sed -i -E 's/^#define IPV4_L3FWD_LPM_MAX_RULES .*/#define IPV4_L3FWD_LPM_MAX_RULES (1 << 21)/;
           s/^#define IPV4_L3FWD_LPM_NUMBER_TBL8S .*/#define IPV4_L3FWD_LPM_NUMBER_TBL8S (1 << 18)/;
           s/^#define IPV6_L3FWD_LPM_MAX_RULES .*/#define IPV6_L3FWD_LPM_MAX_RULES (1 << 21)/;
           s/^#define IPV6_L3FWD_LPM_NUMBER_TBL8S .*/#define IPV6_L3FWD_LPM_NUMBER_TBL8S (1 << 20)/' "$DIR/l3fwd/l3fwd_lpm.c"
grep -q '(unsigned)262144' "$DIR/l3fwd/main.c" && grep -q 'vdevs have no RX' "$DIR/l3fwd/main.c" \
  && grep -q 'IPV4_L3FWD_LPM_MAX_RULES (1 << 21)' "$DIR/l3fwd/l3fwd_lpm.c" \
  && grep -q 'IPV6_L3FWD_LPM_NUMBER_TBL8S (1 << 20)' "$DIR/l3fwd/l3fwd_lpm.c" \
  || { echo "build-l3fwd.sh: a change did not apply" >&2; exit 1; }
timeout 600 make -C "$DIR/l3fwd" -j2 >"$DIR/build.log" 2>&1 || { echo "build-l3fwd.sh: see $DIR/build.log" >&2; exit 1; }
echo "$BIN"
