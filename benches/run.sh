#!/usr/bin/env bash
# The switch beside its peers, in one run, on the shared harness (../shared/bench): same vdevs
# (net_pcap infinite_rx -> net_null), same cores (control on 0, forwarding on 1), same 2 MiB hugepages.
#
#   benches/run.sh [--setup] [--rounds N] [--seconds S] [SCENARIO...]
#
#   SCENARIO   harness scenarios (default: l2-1flow l2-1kflows l2-10kflows), or l2-1mflows (1M flows: the
#              harness's method with benches/gen_flows.py's pcap; only dragonflow and testpmd run it), or
#              routes-N-v4|v6-64|imix: a router with N routes, 131,072 frames to random hosts of random
#              routes (benches/src/routes.rs); peers testpmd-io, l3fwd (benches/build-l3fwd.sh) and ovs
#              (benches/ovs-routes.sh) get the same routes; e.g. PEERS="testpmd-io l3fwd ovs" run.sh
#              routes-1-v4-64 routes-100000-v4-64; or routes-N-mixed-imix: bursts mixing L2, routed, ARP, ND,
#              IPv4 and IPv6 of IMIX sizes over N routes per family (benches/src/mixed.rs; dragonflow and
#              testpmd only; the rate is the rate frames are taken in, all ports' rx: ARP and ND answers
#              leave by the source port, not the sink); vxlan-decap-1kflows, vxlan-encap-1kflows: the
#              harness's tunnel scenarios, dragonflow with benches/<scenario>.toml; her8-1kflows: head-end
#              replication of l2-1kflows to 8 chassis (the rate is the copies'; dragonflow and testpmd);
#              sg-1kflows, sg-10kflows (the harness's conntrack scenarios, dragonflow with benches/sg.toml),
#              sg-100kflows, sg-1mflows (the same with gen_flows.py's pcaps; dragonflow and testpmd);
#              SG_CONFIG=benches/sg-one-zone.toml: VM1's groups only (one tracked zone, as the harness's OVS);
#              dhcp-exchanges (DHCPDISCOVERs answered per second, no punt limit), dhcpflood-1kflows and
#              dhcpquiet-1kflows (l2-1kflows while a third VM floods DHCP / is silent; dragonflow only)
#   --rounds   rounds, round-robin over every (scenario, switch) so that noise is spread (default 3)
#   --seconds  measurement window per run, after the harness's 3 s warm-up (default 10)
#   --setup    first install what the peers need (ci/setup.sh --bench: OVS-DPDK, dpdk-doc, scapy, valgrind)
#   PEERS      peers to run beside dragonflow (default "testpmd-io testpmd-macswap ovs"); "ovs" runs the
#              harness's l2-* OVS flows (in_port=1 -> output:2, OVS's patch), "ovs-pipe" its Dragonflow-like
#              l2pipe-* pipeline, "l2fwd"/"l3fwd" DPDK's examples, "dragonflow-base" another build of the
#              switch, $DF_BASE_BIN (an A/B of two commits in one run: build the other one in a worktree)
#   DF_ARGS    extra arguments for `dragonflow run` (e.g. --no-latency, or --config benches/l2pipe.toml for
#              the table pipeline)
#   DF_NAME    the name dragonflow's lines and logs carry (default dragonflow)
#
# Prints one line per run as it goes, then per scenario the median (min-max) Mpps of each switch, the
# ratios of dragonflow's median to each peer's, and dragonflow's switch latency (median over the runs of
# its p50 / p99 / p99.9). Logs of every run stay in $ANCHOR_OUT (a fresh directory per invocation).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
BENCH=${SHARED_BENCH:-$REPO/../shared/bench}
ROUNDS=3 SECONDS_=10 SETUP=0 SCENARIOS=()
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    --seconds) SECONDS_=$2; shift 2 ;;
    --setup) SETUP=1; shift ;;
    -h|--help) sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "benches/run.sh: unknown option $1" >&2; exit 2 ;;
    *) SCENARIOS+=("$1"); shift ;;
  esac
done
[ ${#SCENARIOS[@]} -gt 0 ] || SCENARIOS=(l2-1flow l2-1kflows l2-10kflows)
read -r -a PEERS <<<"${PEERS:-testpmd-io testpmd-macswap ovs}"
[ -x "$BENCH/run-anchor.sh" ] || { echo "benches/run.sh: no harness at $BENCH (set SHARED_BENCH)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "benches/run.sh: run as root (hugepages, OVS namespaces)" >&2; exit 1; }

if [ "$SETUP" = 1 ]; then
  bash "$REPO/ci/setup.sh" --bench >/dev/null
fi
for p in "${PEERS[@]}"; do
  case $p in
    ovs|ovs-pipe) [ -x /usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk ] \
                    || { echo "benches/run.sh: OVS-DPDK is missing: run with --setup" >&2; exit 1; } ;;
    dragonflow-base) [ -x "${DF_BASE_BIN:-}" ] || { echo "benches/run.sh: dragonflow-base needs DF_BASE_BIN" >&2; exit 1; } ;;
    testpmd-*) command -v dpdk-testpmd >/dev/null || { echo "benches/run.sh: dpdk-testpmd missing: --setup" >&2; exit 1; } ;;
  esac
done

(cd "$REPO" && cargo build --release --locked -q && cargo build --release --locked -q -p benches --example gen_routes)
BIN=$REPO/target/release/dragonflow
GEN_ROUTES=$REPO/target/release/examples/gen_routes
export ANCHOR_OUT=${ANCHOR_OUT:-$(mktemp -d /tmp/df-bench.XXXXXX)}
mkdir -p "$ANCHOR_OUT"
export ANCHOR_SECONDS=$SECONDS_
RESULTS=$ANCHOR_OUT/results.txt
: >"$RESULTS"
echo "# $(date -u +%FT%TZ) rounds=$ROUNDS seconds=$SECONDS_ scenarios=${SCENARIOS[*]} peers=${PEERS[*]} logs=$ANCHOR_OUT"
DF=${DF_NAME:-dragonflow}
echo "# $DF: ANCHOR_SWITCH_CMD='$BIN run ${DF_ARGS:-} -- {EAL}' $BENCH/run-anchor.sh SCENARIO custom"

# l2-1mflows: the harness's l2-1kflows run (vdevs, cores, measurement) with benches/gen_flows.py's 1M-flow
# pcap and 4 GiB of hugepages instead (benches/with-pcap.sh); testpmd runs the same way, the other peers
# (OVS, l2fwd) cannot: their command lines are the harness's own. sg-100kflows, sg-1mflows: the same with
# benches/sg.toml's security groups (100,000 or 1,000,000 tracked connections, twice: one per port's zone).
BIG_PCAPS=${DF_PCAPS:-/tmp/df-pcaps}
big() {  # big SCENARIO SWITCH
  local scen=$1 sw=$2 pcap n cmd cfg=""
  n=$(sed -E 's/^(l2|sg)-([0-9]+)(k|m)flows$/\2/' <<<"$scen")
  case $scen in *kflows) n=${n}000 ;; *) n=${n}000000 ;; esac
  pcap=$BIG_PCAPS/l2-${scen#*-}.pcap
  [[ $scen == sg-* ]] && cfg="--config ${SG_CONFIG:-$HERE/sg.toml} --conntrack-max $((2 * n + n / 2))"
  [ -s "$pcap" ] || { mkdir -p "$BIG_PCAPS"; python3 "$HERE/gen_flows.py" "$n" "$pcap"; }
  case $sw in
    "$DF") cmd="$HERE/with-pcap.sh $pcap 4096 $BIN run $cfg ${DF_ARGS:-} -- {EAL}" ;;
    testpmd-*) cmd="$HERE/with-pcap.sh $pcap 4096 dpdk-testpmd {EAL} -- --forward-mode=${sw#testpmd-} --auto-start"
      cmd="$cmd --total-num-mbufs=$((n + 65536)) --stats-period 3600" ;;
    *) return 1 ;;
  esac
  mkdir -p "$ANCHOR_OUT/$scen"
  ANCHOR_OUT=$ANCHOR_OUT/$scen ANCHOR_SWITCH_NAME=$sw ANCHOR_SWITCH_CMD="$cmd" \
    "$BENCH/run-anchor.sh" l2-1kflows custom 2>>"$ANCHOR_OUT/stderr.txt" || true
}

# routes-N-FAMILY-SIZE: the harness's l3-1kflows run (vdevs, cores, measurement) with gen_routes's files;
# the warm-up grows with N (l3fwd and OVS install 100,000 routes in seconds, not milliseconds).
ROUTE_FRAMES=131072
routes() {  # routes SCENARIO SWITCH
  local scen=$1 sw=$2 n fam size dir cmd warm tx=""
  IFS=- read -r _ n fam size <<<"$scen"
  dir=$BIG_PCAPS/$scen
  [ "$fam" != mixed ] || [[ $sw =~ ^(dragonflow-base|testpmd-io)$ || $sw == "$DF" ]] || return 1
  [ -s "$dir/traffic.pcap" ] || "$GEN_ROUTES" "$n" "$fam" "$size" "$ROUTE_FRAMES" "$dir" || return 1
  warm=$((3 + n / 2000))
  case $sw in
    "$DF") cmd="$HERE/with-pcap.sh $dir/traffic.pcap 2048 $BIN run --config $dir/config.toml ${DF_ARGS:-} -- {EAL}" ;;
    dragonflow-base) cmd="$HERE/with-pcap.sh $dir/traffic.pcap 2048 $DF_BASE_BIN run --config $dir/config.toml"
      cmd="$cmd ${DF_ARGS:-} -- {EAL}" ;;
    testpmd-io) cmd="$HERE/with-pcap.sh $dir/traffic.pcap 2048 dpdk-testpmd {EAL} -- --forward-mode=io"
      cmd="$cmd --auto-start --total-num-mbufs=$((ROUTE_FRAMES + 65536)) --stats-period 3600" ;;
    l3fwd) cmd="$HERE/with-pcap.sh $dir/traffic.pcap 4096 $("$HERE/build-l3fwd.sh") -l 1 --no-pci"
      cmd="$cmd --file-prefix={PREFIX} {MEM} --vdev={SRC} --vdev={SINK} -- -p 0x3 --config=\"(0,0,1),(1,0,1)\""
      cmd="$cmd --parse-ptype --lookup=lpm --rule_ipv4=$dir/l3fwd-v4.cfg --rule_ipv6=$dir/l3fwd-v6.cfg"
      cmd="$cmd --eth-dest=1,fa:16:3e:00:00:02" ;;
    ovs) cmd="$HERE/ovs-routes.sh {PREFIX} net_pcap0,rx_pcap=$dir/traffic.pcap,infinite_rx=1 {SINK}"
      cmd="$cmd $dir/ovs-flows.txt 2048"; tx="$HERE/ovs-routes.sh --tx \$ANCHOR_PREFIX" ;;
    *) return 1 ;;
  esac
  mkdir -p "$ANCHOR_OUT/$scen"
  ANCHOR_OUT=$ANCHOR_OUT/$scen ANCHOR_SWITCH_NAME=$sw ANCHOR_SWITCH_CMD="$cmd" ANCHOR_WARMUP=$warm \
    ANCHOR_TX_COUNTER_CMD=$tx "$BENCH/run-anchor.sh" l3-1kflows custom 2>>"$ANCHOR_OUT/stderr.txt" || true
}

# DHCP (benches/dhcp.toml, benches/gen_dhcp.py's pcaps; dragonflow only: the peers have no DHCP server):
# dhcp-exchanges: the source replays DHCPDISCOVERs from VM1 with no punt limit, the rate is the OFFERs the
# source port sends (its tx counter); dhcpflood-1kflows / dhcpquiet-1kflows: the harness's l2-1kflows run
# (VM1 -> VM2, rate at the sink) with a third port, VM3's, replaying DHCPDISCOVERs at full rate / silent.
DHCP_PCAPS=$BIG_PCAPS/dhcp
dhcp() {  # dhcp SCENARIO SWITCH
  local scen=$1 sw=$2 bin=$BIN cmd tx=""
  case $sw in "$DF") ;; dragonflow-base) bin=$DF_BASE_BIN ;; *) return 1 ;; esac
  [ -s "$DHCP_PCAPS/dhcp-vm3.pcap" ] || /usr/bin/python3 "$HERE/gen_dhcp.py" "$DHCP_PCAPS" >/dev/null
  local run="$bin run --config $HERE/dhcp.toml ${DF_ARGS:-}"
  case $scen in
    dhcp-exchanges) cmd="$HERE/with-pcap.sh $DHCP_PCAPS/dhcp-vm1.pcap 1024 $run --punt-rate 0 -- {EAL} --vdev=net_null2,no-rx=1"
      tx="python3 $HERE/tx_count.py \$ANCHOR_PREFIX net_pcap0" ;;
    dhcpflood-1kflows) cmd="$run -- {EAL} --vdev=net_pcap2,rx_pcap=$DHCP_PCAPS/dhcp-vm3.pcap,infinite_rx=1" ;;
    dhcpquiet-1kflows) cmd="$run -- {EAL} --vdev=net_null2,no-rx=1" ;;
  esac
  mkdir -p "$ANCHOR_OUT/$scen"
  ANCHOR_OUT=$ANCHOR_OUT/$scen ANCHOR_SWITCH_NAME=$sw ANCHOR_SWITCH_CMD="$cmd" ANCHOR_TX_COUNTER_CMD=$tx \
    "$BENCH/run-anchor.sh" l2-1kflows custom 2>>"$ANCHOR_OUT/stderr.txt" || true
}

one() {  # one SCENARIO SWITCH
  local scen=$1 sw=$2 run_scen=$1 line
  if [[ $scen =~ ^routes-[0-9]+-(v4|v6|mixed)-(64|imix)$ ]]; then
    line=$(routes "$scen" "$sw") || return 0
    local mpps
    mpps=$(awk '{print $3}' <<<"$line")
    if [[ $scen == *-mixed-* && -n $mpps ]]; then  # all ports' rx, from the run's log
      mpps=$(ls -t "$ANCHOR_OUT/$scen"/*."$sw".*.log | head -1 | xargs grep -h 'all-ports rx Mpps' | tail -1 | awk '{print $(NF-1)}')
    fi
    echo "$scen $sw ${mpps:-FAIL}" | tee -a "$RESULTS"
    return 0
  fi
  if [[ $scen =~ ^dhcp(-exchanges|flood-1kflows|quiet-1kflows)$ ]]; then
    line=$(dhcp "$scen" "$sw") || return 0
    echo "$scen $sw $(awk '{print $3}' <<<"$line" | grep . || echo FAIL)" | tee -a "$RESULTS"
    return 0
  fi
  if [[ $scen =~ ^l2-[0-9]+mflows$ || $scen =~ ^sg-[0-9]+(00k|m)flows$ ]]; then
    line=$(big "$scen" "$sw") || return 0  # a peer that cannot run it: no line
    local mpps
    mpps=$(awk '{print $3}' <<<"$line")
    echo "$scen $sw ${mpps:-FAIL}" | tee -a "$RESULTS"
    return 0
  fi
  # A scenario with a configuration of its own here (benches/vxlan-*.toml) runs with it; herN-1kflows is
  # the harness's l2-1kflows run with benches/herN-1kflows.toml (dragonflow and testpmd only).
  # sg-1kflows and sg-10kflows (the harness's conntrack scenarios) run with benches/sg.toml's security groups.
  local cfg=""
  [ -f "$HERE/$scen.toml" ] && cfg="--config $HERE/$scen.toml"
  [[ $scen == sg-* ]] && cfg="--config ${SG_CONFIG:-$HERE/sg.toml}"
  if [[ $scen =~ ^her[0-9]+-1kflows$ ]]; then
    [[ $sw == "$DF" || $sw == testpmd-* || $sw == dragonflow-base ]] || return 0
    run_scen=l2-1kflows
  fi
  case $sw in
    "$DF")
      line=$(ANCHOR_SWITCH_NAME=$DF ANCHOR_SWITCH_CMD="$BIN run $cfg ${DF_ARGS:-} -- {EAL}" \
        "$BENCH/run-anchor.sh" "$run_scen" custom 2>>"$ANCHOR_OUT/stderr.txt") || true ;;
    dragonflow-base)
      line=$(ANCHOR_SWITCH_NAME=$sw ANCHOR_SWITCH_CMD="$DF_BASE_BIN run $cfg ${DF_ARGS:-} -- {EAL}" \
        "$BENCH/run-anchor.sh" "$run_scen" custom 2>>"$ANCHOR_OUT/stderr.txt") || true ;;
    ovs-pipe) run_scen=l2pipe-${scen#l2-}
      line=$("$BENCH/run-anchor.sh" "$run_scen" ovs 2>>"$ANCHOR_OUT/stderr.txt") || true ;;
    *) line=$("$BENCH/run-anchor.sh" "$run_scen" "$sw" 2>>"$ANCHOR_OUT/stderr.txt") || true ;;
  esac
  local mpps
  mpps=$(awk '{print $3}' <<<"$line")
  [ -n "$mpps" ] || mpps=FAIL
  echo "$scen $sw $mpps" | tee -a "$RESULTS"
}

for r in $(seq "$ROUNDS"); do
  echo "# round $r"
  for s in "${SCENARIOS[@]}"; do
    for sw in "$DF" "${PEERS[@]}"; do one "$s" "$sw"; done
  done
done

python3 - "$RESULTS" "$ANCHOR_OUT" "$DF" <<'PY'
import glob, re, statistics, sys
results, out, DF = sys.argv[1], sys.argv[2], sys.argv[3]
runs = {}
for line in open(results):
    scen, sw, v = line.split()
    runs.setdefault(scen, {}).setdefault(sw, [])
    if v != "FAIL":
        runs[scen][sw].append(float(v))
lat = {}
for log in glob.glob(f"{out}/*.{DF}.*.log") + glob.glob(f"{out}/*/*.{DF}.*.log"):
    parts = log.split("/")
    scen = parts[-2] if parts[-2] != out.split("/")[-1] else parts[-1].split(f".{DF}.")[0]
    for m in re.finditer(r"latency \(rx to tx, per burst\): samples (\d+) p50 (\d+) ns p99 (\d+) ns p99\.9 (\d+) ns", open(log, errors="replace").read()):
        lat.setdefault(scen, []).append(tuple(int(x) for x in m.groups()[1:]))
med = lambda xs: statistics.median(xs) if xs else None
print()
print(f"| scenario | switch | Mpps median (min-max) | runs | {DF} / this |")
print("|---|---|---|---|---|")
for scen, sws in runs.items():
    df = med(sws.get(DF, []))
    for sw, xs in sws.items():
        m = med(xs)
        cell = f"**{m:.2f}** ({min(xs):.2f}-{max(xs):.2f})" if xs else "FAIL"
        ratio = f"{df / m:.2f}" if (df and m and sw != DF) else ""
        print(f"| {scen} | {sw} | {cell} | {len(xs)} | {ratio} |")
print()
print(f"| scenario | {DF} latency p50 / p99 / p99.9 (ns, median of runs) |")
print("|---|---|")
for scen in runs:
    ls = lat.get(scen, [])
    if ls:
        p = [int(statistics.median(x[i] for x in ls)) for i in range(3)]
        print(f"| {scen} | {p[0]} / {p[1]} / {p[2]} ({len(ls)} runs) |")
PY
