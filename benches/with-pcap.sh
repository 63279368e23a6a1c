#!/usr/bin/env bash
# Runs a DPDK switch command line as the harness built it, with another source pcap and more memory: for
# traffic the harness does not make (1M flows: benches/gen_flows.py) and whose replay from memory needs more
# mbufs than its fixed `-m 1024` holds. Everything else (vdevs, cores, hugepages, the measurement through
# telemetry) stays the harness's. Used by benches/run.sh as the harness's ANCHOR_SWITCH_CMD:
#
#   with-pcap.sh PCAP MEGABYTES CMD ARGS...   (in ARGS: rx_pcap=... -> rx_pcap=PCAP, -m 1024 -> -m MEGABYTES)
set -euo pipefail
PCAP=$1 MB=$2
shift 2
[ -s "$PCAP" ] || { echo "with-pcap.sh: no $PCAP" >&2; exit 1; }
args=() prev=""
for a in "$@"; do
  if [ "$prev" = -m ]; then a=$MB; fi
  if [[ $a == --vdev=net_pcap* ]]; then a=$(sed -E "s#rx_pcap=[^,]*#rx_pcap=$PCAP#" <<<"$a"); fi
  args+=("$a") prev=$a
done
# The harness reserved 512 free 2 MiB pages; this run needs MEGABYTES/2 of them.
need=$((MB / 2))
free=$(awk '/HugePages_Free/{print $2}' /proc/meminfo)
if ! grep -q -- --no-huge <<<"${args[*]}" && [ "$free" -lt "$need" ]; then
  echo $(($(awk '/HugePages_Total/{print $2}' /proc/meminfo) + need - free)) >/proc/sys/vm/nr_hugepages
fi
echo "with-pcap.sh: ${args[*]}" >&2
exec "${args[@]}"
