#!/usr/bin/env bash
# OVS-DPDK with the route-count scenario's OpenFlow tables (benches/src/routes.rs: one flow per route,
# prioritised by prefix length), run as the shared harness runs OVS (private ovsdb-server and
# ovs-vswitchd in a network namespace of their own, one PMD thread on core 1, the main threads on core 0,
# bridge br0 of datapath_type netdev, the source on ofport 1 and the sink on ofport 2), for
# ../shared/bench/run-anchor.sh as a "custom" switch: it runs until SIGINT and cleans up after itself.
#
#   ovs-routes.sh PREFIX SRC SINK FLOWS MEGABYTES     (SRC/SINK: the vdevs' devargs; FLOWS: ovs-ofctl add-flows)
#   ovs-routes.sh --tx PREFIX                         the sink's transmitted packets (ANCHOR_TX_COUNTER_CMD)
set -uo pipefail
if [ "${1:-}" = --tx ]; then
  OVS_RUNDIR=/tmp/df-ovs-$2 ovs-ofctl -O OpenFlow13 dump-ports br0 2 | sed -n 's/.*tx pkts=\([0-9]*\).*/\1/p'
  exit 0
fi
[ $# -eq 5 ] || { sed -n '2,10p' "$0" >&2; exit 2; }
PFX=$1 SRC=$2 SINK=$3 FLOWS=$4 MB=$5
VSWITCHD=/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk
[ -x "$VSWITCHD" ] || { echo "ovs-routes.sh: OVS-DPDK missing: ci/setup.sh --bench" >&2; exit 1; }
RUN=/tmp/df-ovs-$PFX NS=df-ovs-$PFX
export OVS_RUNDIR=$RUN OVS_LOGDIR=$RUN OVS_DBDIR=$RUN
DB=unix:$RUN/db.sock
V="ovs-vsctl --db=$DB --timeout=60"
OVSDB_PID="" VSWITCHD_PID=""
stop() {
  local p=$1 i
  [ -n "$p" ] && kill -0 "$p" 2>/dev/null || return 0
  kill -TERM "$p" 2>/dev/null
  for i in $(seq 50); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null
}
cleanup() {
  trap - EXIT INT TERM
  stop "$VSWITCHD_PID"; stop "$OVSDB_PID"
  ip netns del "$NS" 2>/dev/null
  rm -rf "$RUN" "/var/run/dpdk/$PFX"
}
trap cleanup EXIT
trap 'exit 0' INT TERM
fail() { echo "ovs-routes.sh: $*" >&2; exit 1; }

rm -rf "$RUN"; mkdir -p "$RUN"
ip netns add "$NS" || fail "ip netns add"
ovsdb-tool create "$RUN/conf.db" /usr/share/openvswitch/vswitch.ovsschema || fail ovsdb-tool
ovsdb-server "$RUN/conf.db" --remote=punix:"$RUN/db.sock" --unixctl="$RUN/ovsdb.ctl" \
  --log-file="$RUN/ovsdb.log" </dev/null &
OVSDB_PID=$!
for _ in $(seq 50); do [ -S "$RUN/db.sock" ] && break; sleep 0.1; done
$V --no-wait init || fail "ovsdb-server did not start"
$V --no-wait set Open_vSwitch . other_config:dpdk-extra="--no-pci --file-prefix=$PFX" \
  other_config:dpdk-socket-mem="$MB" other_config:dpdk-init=true other_config:pmd-cpu-mask=0x2
ip netns exec "$NS" taskset -c 0 "$VSWITCHD" "$DB" --unixctl="$RUN/vswitchd.ctl" --log-file="$RUN/vswitchd.log" \
  -vconsole:warn </dev/null &
VSWITCHD_PID=$!
for _ in $(seq 150); do [ -S "$RUN/vswitchd.ctl" ] && break; kill -0 $VSWITCHD_PID 2>/dev/null || break; sleep 0.2; done
[ -S "$RUN/vswitchd.ctl" ] || fail "ovs-vswitchd did not start"
$V add-br br0 -- set bridge br0 datapath_type=netdev fail_mode=secure || fail "add-br"
$V add-port br0 p2 -- set Interface p2 type=dpdk options:dpdk-devargs="$SINK" ofport_request=2 || fail "p2"
ovs-ofctl -O OpenFlow13 add-flows br0 "$FLOWS" || fail "add-flows"
echo "ovs-routes.sh: $(ovs-ofctl -O OpenFlow13 dump-aggregate br0 | tr -d '\n')" >&2
$V add-port br0 p1 -- set Interface p1 type=dpdk options:dpdk-devargs="$SRC" ofport_request=1 || fail "p1"
while kill -0 "$VSWITCHD_PID" 2>/dev/null; do sleep 1; done
fail "ovs-vswitchd exited"
