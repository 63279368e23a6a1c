#!/usr/bin/env bash
# Installs what the project needs on Debian 12 and is missing; changes nothing that is already there.
# Run as root (or with sudo). Idempotent and non-interactive. `--bench` adds what benches/ needs.
set -euo pipefail

PACKAGES=(
  build-essential pkg-config      # the C shim over DPDK's static-inline functions
  libdpdk-dev dpdk                # DPDK 22.11: headers, libraries, PMDs (net_tap, net_pcap, net_null, ...)
  dpdk-dev                        # dpdk-testpmd: the peer in the NFV-port tests and the benchmarks
  libclang-dev                    # bindgen (libclang and clang's resource headers)
  iproute2 iputils-ping           # namespaces as VMs in the end-to-end tests
  kmod                            # the TAP PMD loads sch_multiq/cls_flower when it can
  protobuf-compiler libprotobuf-dev  # etcd-client's build compiles etcd's gRPC protos (and the well-known ones)
  etcd-server                     # the etcd driver's tests run against a real etcd
  python3-venv                    # the OpenStack client (from PyPI) in a venv of its own
  python3-scapy                   # tests/tunnel_peer.py (a Geneve/GRE peer); the harness's pcaps; tests/golden/make.py
  busybox isc-dhcp-client dhcpcd-base  # tests/dhcp.rs: the DHCP clients VMs run (udhcpc, dhclient, dhcpcd)
)

# What benches/ runs besides (ci/setup.sh --bench): the peers and the tools. ci/check-deps.sh reads both lists.
BENCH_PACKAGES=(
  openvswitch-switch-dpdk         # OVS-DPDK, the peer (../shared/bench)
  dpdk-doc                        # DPDK's l2fwd/l3fwd example sources, built by the harness
  valgrind                        # benches/ir.sh: instructions per packet
)
[ "${1:-}" = --bench ] && PACKAGES+=("${BENCH_PACKAGES[@]}")

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "ci/setup.sh: missing packages: ${missing[*]}; run as root to install them" >&2
    exit 1
  fi
  echo "ci/setup.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# The real OpenStack command-line client, from PyPI, for the Neutron API tests (tests/openstack_client.rs).
OSC_VENV=${DF_OSC_VENV:-/opt/df-osc}
OSC_VERSION=10.5.0
osc_installed=$("$OSC_VENV/bin/pip" show python-openstackclient 2>/dev/null || true)
osc_python=$(readlink -f "$OSC_VENV/bin/python3" 2>/dev/null || true)
if ! grep -q "^Version: $OSC_VERSION$" <<<"$osc_installed" || [[ $osc_python != /usr/bin/* ]]; then
  echo "ci/setup.sh: installing python-openstackclient $OSC_VERSION into $OSC_VENV"
  /usr/bin/python3 -m venv --clear "$OSC_VENV"  # Debian's python (python3-venv), not whatever is on PATH
  "$OSC_VENV/bin/pip" install -q --disable-pip-version-check "python-openstackclient==$OSC_VERSION"
fi

# The TUN device the TAP PMD opens.
[ -c /dev/net/tun ] || { mkdir -p /dev/net && mknod /dev/net/tun c 10 200 && chmod 0666 /dev/net/tun; }

# Rust: the workspace needs 1.89 or newer with rustfmt and clippy (rustup's toolchain; Debian's is too old).
if ! command -v cargo >/dev/null 2>&1; then
  [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
fi
command -v cargo >/dev/null 2>&1 || { echo "ci/setup.sh: no cargo: install Rust 1.89+ with rustup (https://rustup.rs)" >&2; exit 1; }
ver=$(rustc --version | awk '{print $2}')
if [ "$(printf '%s\n1.89.0\n' "$ver" | sort -V | head -1)" != 1.89.0 ]; then
  echo "ci/setup.sh: rustc $ver is older than 1.89" >&2
  exit 1
fi
if command -v rustup >/dev/null 2>&1; then
  for c in rustfmt clippy; do
    rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c"
  done
fi
echo "ci/setup.sh: ready ($(rustc --version), $(pkg-config --modversion libdpdk | sed 's/^/DPDK /'))"
