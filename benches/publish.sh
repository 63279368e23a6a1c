#!/usr/bin/env bash
# Table publications during full-rate traffic: the L2 pipeline on the harness's l2-1kflows run (same vdevs,
# cores, hugepages, measurement), once as is and once with SIGHUP sent at HZ (default 1000) from the start
# to the end of the run, each SIGHUP re-reading the topology and publishing new tables (one atomic swap).
# Rounds alternate the two. Prints per round Mpps, publications, drops and the switch latency, then the
# medians. 10 s window + 3 s warm-up at 1 kHz = 13,000 publications per run.
#
# With --routes N, the run is run.sh's routes-N-v4-64 instead (a router with N routes, traffic spread over
# them), and each SIGHUP comes after a route change: the configuration file is replaced (atomically) by
# one whose last route has another destination, then by the original, and so on, so that every
# publication removes one route and adds another (Router::set_routes edits the trie by difference). The
# reload re-reads the whole file, so at 100,000 routes keep HZ low (a reload takes ~0.2 s).
#
#   benches/publish.sh [--rounds N] [--hz HZ] [--config F | --routes N]
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
BENCH=${SHARED_BENCH:-$REPO/../shared/bench}
ROUNDS=3 HZ=1000 CONFIG=$HERE/l2pipe.toml ROUTES=""
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    --hz) HZ=$2; shift 2 ;;
    --config) CONFIG=$2; shift 2 ;;
    --routes) ROUTES=$2; shift 2 ;;
    *) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "benches/publish.sh: run as root" >&2; exit 1; }
(cd "$REPO" && cargo build --release --locked -q)
BIN=$REPO/target/release/dragonflow
export ANCHOR_OUT=${ANCHOR_OUT:-$(mktemp -d /tmp/df-publish.XXXXXX)}
mkdir -p "$ANCHOR_OUT"
SCEN=l2-1kflows WRAP="" CHURN=""
if [ -n "$ROUTES" ]; then
  # run.sh's routes-N-v4-64: its generator, traffic and warm-up (l3fwd and OVS are not run here).
  (cd "$REPO" && cargo build --release --locked -q -p benches --example gen_routes)
  dir=${DF_PCAPS:-/tmp/df-pcaps}/routes-$ROUTES-v4-64
  [ -s "$dir/traffic.pcap" ] || "$REPO/target/release/examples/gen_routes" "$ROUTES" v4 64 131072 "$dir"
  CONFIG=$ANCHOR_OUT/config.toml CHURN=$CONFIG
  cp "$dir/config.toml" "$CONFIG"
  SCEN=l3-1kflows WRAP="$HERE/with-pcap.sh $dir/traffic.pcap 2048"
  export ANCHOR_WARMUP=$((3 + ROUTES / 2000))
fi
echo "# $(date -u +%FT%TZ) rounds=$ROUNDS hz=$HZ config=$CONFIG routes=${ROUTES:-none} logs=$ANCHOR_OUT"

storm() {  # storm: SIGHUP at $HZ to the dragonflow the harness starts, until it exits (after a route change
           # of $CHURN, if set)
  python3 - "$HZ" "$BIN" "$CHURN" <<'PY'
import os, re, signal, subprocess, sys, time
hz, BIN, churn = float(sys.argv[1]), sys.argv[2], sys.argv[3]
versions = []
if churn:
    # The original file and one whose last route goes elsewhere (a /24 no other route of the generator
    # uses: it makes 11.0.0.0/8 and up); each SIGHUP follows a swap to the other.
    text = open(churn).read()
    last = list(re.finditer(r'destination = "([^"]+)"', text))[-1]
    versions = [text, text[:last.start(1)] + "198.51.100.0/24" + text[last.end(1):]]
def swap(n):
    if versions:
        tmp = churn + ".next"
        with open(tmp, "w") as f:
            f.write(versions[n % 2])
        os.replace(tmp, churn)
def find():
    # The switch itself, not the `timeout` wrapping it: timeout forwards a SIGHUP to its whole process group.
    out = subprocess.run(["pgrep", "-f", "^" + BIN + " run .*file-prefix=anchor"], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]
deadline = time.time() + 60
pids = []
while not pids and time.time() < deadline:
    pids = find()
    time.sleep(0.05)
if not pids:
    sys.exit("storm: no dragonflow found")
pid, sent, period = pids[0], 0, 1.0 / hz
time.sleep(2)  # past EAL init and the "forwarding" line: SIGHUP's handler is installed by then
t = time.time()
try:
    while True:
        swap(sent + 1)
        os.kill(pid, signal.SIGHUP)
        sent += 1
        t += period
        d = t - time.time()
        if d > 0:
            time.sleep(d)
except ProcessLookupError:
    pass
print(f"storm: {sent} SIGHUPs sent", file=sys.stderr)
PY
}

one() {  # one NAME STORM(0|1)
  local name=$1 line log storm_pid=""
  [ "$2" = 1 ] && { storm 2>>"$ANCHOR_OUT/storm.txt" & storm_pid=$!; }
  line=$(ANCHOR_SWITCH_NAME=$name ANCHOR_SWITCH_CMD="$WRAP $BIN run --config $CONFIG -- {EAL}" \
    "$BENCH/run-anchor.sh" $SCEN custom 2>>"$ANCHOR_OUT/stderr.txt") || true
  [ -n "$storm_pid" ] && wait "$storm_pid" || true
  [ -z "$CHURN" ] || cp "${DF_PCAPS:-/tmp/df-pcaps}/routes-$ROUTES-v4-64/config.toml" "$CONFIG"
  log=$(ls -t "$ANCHOR_OUT"/$SCEN."$name".*.log | head -1)
  local mpps version drops lat
  mpps=$(awk '{print $3}' <<<"$line")
  version=$(grep -o 'tables: version [0-9]*' "$log" | tail -1 | awk '{print $3}')
  drops=$(grep -E '^port .*\| drops' "$log" | tail -2 | sed 's/.*| drops //' | paste -sd' ')
  lat=$(grep -oE 'p50 [0-9]+ ns p99 [0-9]+ ns p99\.9 [0-9]+ ns' "$log" | tail -1)
  echo "$name ${mpps:-FAIL} publications=${version:-?} drops=[$drops] $lat" | tee -a "$ANCHOR_OUT/results.txt"
}

for r in $(seq "$ROUNDS"); do
  echo "# round $r"
  one df-steady 0
  one df-publishing 1
done
python3 - "$ANCHOR_OUT/results.txt" <<'PY'
import re, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, mpps = line.split()[:2]
    m = re.search(r"publications=(\d+).*p50 (\d+) ns p99 (\d+) ns p99\.9 (\d+) ns", line)
    if mpps == "FAIL" or not m:
        continue
    rows.setdefault(name, []).append((float(mpps),) + tuple(int(x) for x in m.groups()))
print("\n| run | Mpps | publications | latency p50 / p99 / p99.9 ns | runs |\n|---|---|---|---|---|")
for name, xs in rows.items():
    med = [statistics.median(x[i] for x in xs) for i in range(5)]
    print(f"| {name} | {med[0]:.2f} | {int(med[1])} | {int(med[2])} / {int(med[3])} / {int(med[4])} | {len(xs)} |")
PY
