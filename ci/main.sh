#!/usr/bin/env bash
# The main job: installs what is missing, builds, and runs a single all-in-one node: the Neutron API on
# 127.0.0.1:9696, the embedded DB (in /var/lib/dragonflow-demo, fresh each run) and the switch. Through the
# API, with the real OpenStack client, it makes a network, a subnet and two ports bound to this node; the
# node plumbs each as a TAP device, which goes into a network namespace ("VM") of its own, df-vm1 and
# df-vm2, where busybox's DHCP client gets the port's address (10.0.0.11, 10.0.0.12) from the node's
# distributed DHCP. Try, from another terminal:
#     ip netns exec df-vm1 ping 10.0.0.12
#     /opt/df-osc/bin/openstack --os-auth-type none --os-endpoint http://127.0.0.1:9696/ port list --long
# Ctrl-C stops the node; the namespaces are removed on exit. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
bash ci/setup.sh
cargo build --release --locked

BIN=target/release/dragonflow
PREFIX=dragonflow-main
DATA=/var/lib/dragonflow-demo
API=127.0.0.1:9696
CHASSIS=$(hostname)
LOG=$(mktemp /tmp/dragonflow-main.XXXXXX.log)
# What udhcpc runs when it gets a lease: the address, the MTU and the routes it was given.
DHCP_SCRIPT=$(mktemp /tmp/dragonflow-main-udhcpc.XXXXXX)
cat >"$DHCP_SCRIPT" <<'SH'
#!/bin/sh
[ "$1" = bound ] || exit 0
ip addr replace "$ip/$mask" dev "$interface"
[ -n "$mtu" ] && ip link set dev "$interface" mtu "$mtu"
[ -n "$router" ] && ip route replace default via "$router" dev "$interface"
echo "ci/main.sh: $interface got $ip/$mask (router ${router:-none}, DNS ${dns:-none}, MTU ${mtu:-?}) by DHCP"
SH
chmod +x "$DHCP_SCRIPT"
os() { /opt/df-osc/bin/openstack --os-auth-type none --os-endpoint "http://$API/" "$@"; }
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
  rm -rf "/var/run/dpdk/$PREFIX" "$DHCP_SCRIPT"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
ip netns del df-vm1 2>/dev/null || true
ip netns del df-vm2 2>/dev/null || true
rm -rf "$DATA"

# The node logs to a file (shown with tail): a Ctrl-C reaches the whole foreground group, and a pipe
# reader dying first would cut the node's own shutdown report short.
"$BIN" all-in-one --listen "$API" --data-dir "$DATA" --chassis "$CHASSIS" --stats-interval 10 \
  -- -l 0-1 --main-lcore 0 --no-huge -m 1024 --no-pci --file-prefix "$PREFIX" "$@" 2>"$LOG" </dev/null &
PID=$!
tail -n +1 -f "$LOG" --pid="$PID" >&2 &
TAIL=$!
for _ in $(seq 300); do grep -q "dragonflow: node" "$LOG" 2>/dev/null && break; kill -0 $PID || exit 1; sleep 0.1; done
grep -q "dragonflow: node" "$LOG" || { echo "ci/main.sh: the node did not start" >&2; exit 1; }

os network create demo-net -f value -c id
os subnet create demo-subnet --network demo-net --subnet-range 10.0.0.0/24 -f value -c id
for i in 1 2; do
  os port create "vm$i" --network demo-net --host "$CHASSIS" \
    --fixed-ip "subnet=demo-subnet,ip-address=10.0.0.1$i" -f value -c id
  read -r id mac < <(os port show "vm$i" -f value -c id -c mac_address | paste -sd' ')
  tap="tap${id:0:11}"
  # ACTIVE: the node plugged and started the device (moving a TAP before its start would fail the start).
  for _ in $(seq 50); do [ "$(os port show "vm$i" -f value -c status)" = ACTIVE ] && break; sleep 0.2; done
  for _ in $(seq 100); do ip link show "$tap" >/dev/null 2>&1 && break; sleep 0.1; done
  ip netns add "df-vm$i"
  ip link set "$tap" netns "df-vm$i"
  ip -n "df-vm$i" link set lo up
  ip -n "df-vm$i" link set "$tap" address "$mac"
  ip -n "df-vm$i" link set "$tap" up
  ip netns exec "df-vm$i" busybox udhcpc -i "$tap" -s "$DHCP_SCRIPT" -q -n -t 5 -T 2 -O mtu
done
os port list --long -c Name -c "MAC Address" -c "Fixed IP Addresses" -c Status
echo "ci/main.sh: VMs df-vm1 (10.0.0.11) and df-vm2 (10.0.0.12) are on the switch:"
ip netns exec df-vm1 ping -c 3 -i 0.2 10.0.0.12 || true
echo "ci/main.sh: try 'ip netns exec df-vm1 ping 10.0.0.12' in another terminal; Ctrl-C stops the node."
wait "$PID" || echo "ci/main.sh: the node exited with status $?" >&2
