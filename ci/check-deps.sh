#!/usr/bin/env bash
# Setup that cannot drift: every file the build, the main job and the tests use (headers, protos,
# libraries, programs) must come from a Debian package that ci/setup.sh installs, from one of their
# dependencies, or from a package every Debian has (priority required or important). A green run on a
# machine that happens to have something else installed proves nothing on a fresh one; this check fails
# instead, naming the file and its package. What benches/ uses is checked the same way against
# ci/setup.sh --bench, where it is installed (a CI machine has no benchmark peers).
#
#   ci/check-deps.sh        (ci/test.sh runs it; read-only, needs dpkg)
set -euo pipefail
cd "$(dirname "$0")/.."

# The packages named in ci/setup.sh: PACKAGES (build, main job, tests) and BENCH_PACKAGES (benches/).
# shellcheck disable=SC1090
eval "$(sed -n '/^PACKAGES=(/,/^)/p; /^BENCH_PACKAGES=(/,/^)/p' ci/setup.sh)"

# The installed packages each list pulls in (Depends and Pre-Depends, every installed alternative and
# provider, transitively), the listed ones included; and every installed package's priority. One awk over
# one dpkg-query: a fork per package took minutes. Tab-separated: Depends holds '|' between alternatives.
declare -A priority from_setup=() from_bench=()
while read -r kind pkg prio; do
  case $kind in
    P) priority[$pkg]=$prio ;;
    S) from_setup[$pkg]=1 ;;
    B) from_bench[$pkg]=1 ;;
  esac
done < <(dpkg-query -W -f='${db:Status-Abbrev}\t${Package}\t${Priority}\t${Depends}, ${Pre-Depends}\t${Provides}\n' |
  awk -F'\t' -v setup="${PACKAGES[*]}" -v bench="${BENCH_PACKAGES[*]}" '
    function names(list, out,   n, i, a, x) {  # "a (>= 1) | b:any, c" -> out[1..n]
      n = split(list, a, /[,|]/)
      for (i = 1; i <= n; i++) { x = a[i]; sub(/\(.*/, "", x); sub(/\[.*/, "", x); sub(/:any/, "", x); gsub(/ /, "", x); out[i] = x }
      return n
    }
    function walk(roots, tag,   q, seen, head, tail, n, i, p, d, ds, v, vs) {
      n = split(roots, q, " "); head = 1; tail = n
      while (head <= tail) {
        p = q[head++]
        if (p in seen || !(p in inst)) continue
        seen[p] = 1; print tag, p
        n = names(dep[p], ds)
        for (i = 1; i <= n; i++) {
          d = ds[i]; if (d == "") continue
          q[++tail] = d
          split(prov[d], vs, " "); for (v in vs) q[++tail] = vs[v]
        }
      }
    }
    substr($1, 1, 2) == "ii" {
      inst[$2] = 1; dep[$2] = $4; print "P", $2, $3
      n = names($5, ps); for (i = 1; i <= n; i++) if (ps[i] != "") prov[ps[i]] = prov[ps[i]] " " $2
    }
    END { walk(setup, "S"); walk(setup " " bench, "B") }')

# The package owning a file (dpkg knows merged-/usr files under either path).
owner() {
  local f p
  f=$(readlink -f "$1")
  for p in "$f" "${f#/usr}" "/usr$f"; do
    dpkg -S "$p" 2>/dev/null | grep -v '^diversion' | head -1 | cut -d: -f1 | cut -d, -f1 && return 0
  done
  return 1
}

failures=0
# check GROUP WHAT FILE: FILE (a path, or a command looked up on PATH) must be installed and come from
# GROUP's packages.
check() {
  local group=$1 what=$2 file=$3 pkg
  local -n allowed=$group
  if [[ $file != /* ]]; then
    file=$(command -v "$file" 2>/dev/null) || file=""
  fi
  if [ -z "$file" ] || [ ! -e "$file" ]; then
    if [ "$group" = from_bench ]; then
      echo "check-deps: $what: not installed (ci/setup.sh --bench installs it)"
      return
    fi
    echo "check-deps: FAIL $what: not installed: ci/setup.sh must install it" >&2
    failures=$((failures + 1))
    return
  fi
  if ! pkg=$(owner "$file"); then
    echo "check-deps: FAIL $what: $file belongs to no Debian package" >&2
    failures=$((failures + 1))
    return
  fi
  case ${priority[$pkg]:-} in required | important) return ;; esac
  [ -n "${allowed[$pkg]:-}" ] && return
  echo "check-deps: FAIL $what: $file comes from $pkg, which ci/setup.sh does not install" >&2
  failures=$((failures + 1))
}

# The build: the C shim and bindgen over DPDK, etcd-client's protos.
dpdk_inc=$(pkg-config --variable=includedir libdpdk)
check from_setup "pkg-config" pkg-config
check from_setup "the C compiler" cc
check from_setup "libdpdk.pc" "$(pkg-config --variable=pcfiledir libdpdk)/libdpdk.pc"
check from_setup "DPDK's headers" "$dpdk_inc/rte_ethdev.h"
check from_setup "DPDK's ethdev library" "$(pkg-config --variable=libdir libdpdk)/librte_ethdev.so"
for pmd in net_tap net_pcap net_null net_ring net_memif net_vhost net_virtio; do
  lib=$(find /usr/lib -path '*dpdk/pmds-*' -name "librte_${pmd}.so*" 2>/dev/null | head -1)
  check from_setup "the $pmd PMD" "${lib:-librte_$pmd}"
done
libclang=$(ls /usr/lib/llvm-*/lib/libclang.so* /usr/lib/x86_64-linux-gnu/libclang*.so* 2>/dev/null | head -1)
check from_setup "libclang (bindgen)" "${libclang:-libclang.so}"
stddef=$(ls /usr/lib/llvm-*/lib/clang/*/include/stddef.h 2>/dev/null | head -1)
check from_setup "clang's resource headers (bindgen)" "${stddef:-clang/include/stddef.h}"
check from_setup "protoc" protoc
check from_setup "protoc's well-known protos" /usr/include/google/protobuf/descriptor.proto
# What the main job and the tests run: every program the Rust code starts, and the scripts' own.
mapfile -t programs < <(grep -rhoE --include='*.rs' 'Command::new\("[A-Za-z0-9_.+-]+"\)' \
  src control dataplane ffi pipelines tests benches 2>/dev/null | sed -E 's/.*"(.*)".*/\1/' | sort -u)
for p in "${programs[@]}" sysctl modprobe /usr/bin/python3; do
  check from_setup "$p (run by the code or the tests)" "$p"
done
check from_setup "the TUN device's tools (the TAP PMD)" ip
# The OpenStack client comes from PyPI into a venv of Debian's python (ci/setup.sh).
osc=${DF_OSC_VENV:-/opt/df-osc}
if [ ! -x "$osc/bin/openstack" ]; then
  echo "check-deps: FAIL the OpenStack client: $osc/bin/openstack missing (ci/setup.sh installs it)" >&2
  failures=$((failures + 1))
fi
check from_setup "the OpenStack client's python" "$osc/bin/python3"
# benches/: the peers and the tools, where installed.
check from_bench "OVS-DPDK (benches/run.sh)" ovs-vswitchd
check from_bench "valgrind (benches/ir.sh)" valgrind
check from_bench "DPDK's example sources (l2fwd/l3fwd)" /usr/share/dpdk/examples/l2fwd/main.c
check from_setup "scapy (tests/tunnel_peer.py, the harness's pcaps, tests/golden/make.py)" /usr/lib/python3/dist-packages/scapy/__init__.py

if [ "$failures" -gt 0 ]; then
  echo "check-deps: $failures file(s) a fresh machine would not have: add their packages to ci/setup.sh" >&2
  exit 1
fi
echo "check-deps: every file checked comes from a package ci/setup.sh installs (or from Debian's base)"
