#!/usr/bin/env bash
# The main job: installs what is missing, builds, and runs the switch on two TAP ports, each in a network
# namespace ("VM") of its own: df-vm1 (10.0.0.1/24) and df-vm2 (10.0.0.2/24). Until the control plane
# lands, the switch cross-connects the two ports (patch mode). Try, from another terminal:
#     ip netns exec df-vm1 ping 10.0.0.2
# Ctrl-C stops the switch; the namespaces are removed on exit. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
bash ci/setup.sh
cargo build --release --locked

BIN=target/release/dragonflow
PREFIX=dragonflow-main
LOG=$(mktemp /tmp/dragonflow-main.XXXXXX.log)
cleanup() {
  set +e
  if [ -n "${PID:-}" ]; then
    kill -INT "$PID" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$PID" 2>/dev/null
    wait "$PID" 2>/dev/null
  fi
  [ -n "${TAIL:-}" ] && kill "$TAIL" 2>/dev/null
  ip netns del df-vm1 2>/dev/null || true
  ip netns del df-vm2 2>/dev/null || true
  rm -rf "/var/run/dpdk/$PREFIX"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
ip netns del df-vm1 2>/dev/null || true
ip netns del df-vm2 2>/dev/null || true

# The switch logs to a file (shown with tail): a Ctrl-C reaches the whole foreground group, and a pipe
# reader dying first would cut the switch's own shutdown report short.
"$BIN" run --port net_tap0,iface=dtap0 --port net_tap1,iface=dtap1 --stats-interval 10 \
  -- -l 0-1 --main-lcore 0 --no-huge -m 512 --no-pci --file-prefix "$PREFIX" "$@" 2>"$LOG" </dev/null &
PID=$!
tail -n +1 -f "$LOG" --pid="$PID" >&2 &
TAIL=$!
for _ in $(seq 300); do grep -q "dragonflow: forwarding on" "$LOG" 2>/dev/null && break; kill -0 $PID || exit 1; sleep 0.1; done
grep -q "dragonflow: forwarding on" "$LOG" || { echo "ci/main.sh: the switch did not start" >&2; exit 1; }
for i in 1 2; do
  ip netns add df-vm$i
  ip link set dtap$((i - 1)) netns df-vm$i
  ip -n df-vm$i link set lo up
  ip -n df-vm$i addr add 10.0.0.$i/24 dev dtap$((i - 1))
  ip -n df-vm$i link set dtap$((i - 1)) up
done
echo "ci/main.sh: VMs df-vm1 (10.0.0.1) and df-vm2 (10.0.0.2) are on the switch:"
ip netns exec df-vm1 ping -c 3 -i 0.2 10.0.0.2 || true
echo "ci/main.sh: try 'ip netns exec df-vm1 ping 10.0.0.2' in another terminal; Ctrl-C stops the switch."
wait "$PID" || echo "ci/main.sh: the switch exited with status $?" >&2
