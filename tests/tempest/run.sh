#!/usr/bin/env bash
# Tempest's network API tests against this project's Neutron API, as the Neutron community measures a
# Neutron: Keystone in front (from PyPI, SQLite, fernet tokens, served by gunicorn), `dragonflow all-in-one`
# registered in its catalog as the `network` endpoint, Tempest configured for that cloud with the network
# extensions the API lists, and the tests run. From a fresh Debian 12 machine, as root:
#
#   tests/tempest/run.sh [--plugin] [REGEX]
#
#   REGEX     the tests to run (default '^tempest\.api\.network')
#   --plugin  neutron-tempest-plugin's API tests instead (REGEX default '^neutron_tempest_plugin\.api')
#
# Prints passed / failed / skipped; keeps the results in tests/tempest/out/ (the subunit stream, the
# failing tests, tempest.conf, the node's and Keystone's logs). Not part of ci/test.sh: installing and
# running takes 5 to 10 minutes. Everything it starts is stopped on exit, even on failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"

PLUGIN=0
if [ "${1:-}" = --plugin ]; then PLUGIN=1; shift; fi
if [ "$PLUGIN" = 1 ]; then REGEX=${1:-'^neutron_tempest_plugin\.api'}; else REGEX=${1:-'^tempest\.api\.network'}; fi
# The plugin's tests make more routers per project than Neutron's default quota (10): its upstream job
# (neutron-tempest-plugin-base, zuul.d/base.yaml) raises these defaults in neutron.conf, and so does this.
QUOTAS=
if [ "$PLUGIN" = 1 ]; then QUOTAS=router=100,floatingip=500,security_group=150,security_group_rule=1000; fi

# What is missing: the project's packages and Rust (and the OpenStack client, /opt/df-osc), then the
# Python pieces, each in a venv of Debian's python, at the versions verified here (../shared/notes/tempest-here.md).
bash ci/setup.sh
VENVS=${DF_TEMPEST_VENVS:-/opt/df-tempest}
venv() { # DIR PACKAGE==VERSION...
  local dir=$1
  shift
  if ! "$dir/bin/pip" freeze 2>/dev/null | grep -qxF "$1"; then
    echo "tests/tempest/run.sh: installing $* into $dir"
    /usr/bin/python3 -m venv --clear "$dir"
    "$dir/bin/pip" install -q --disable-pip-version-check "$@"
  fi
}
venv "$VENVS/keystone" keystone==30.0.0 gunicorn==27.0.1
venv "$VENVS/tempest" tempest==47.0.0 neutron-tempest-plugin==3.3.0
cargo build --release --locked --bin dragonflow
BIN=$PWD/target/release/dragonflow
OS=/opt/df-osc/bin/openstack

OUT=$PWD/tests/tempest/out
rm -rf "$OUT"
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/df-tempest.XXXXXX)
free_port() { /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
KS_PORT=$(free_port)
API_PORT=$(free_port)
KS=http://127.0.0.1:$KS_PORT/v3
API=http://127.0.0.1:$API_PORT/
PASSWORD=df-tempest-admin

cleanup() {
  set +e
  for pid in ${DF_PID:-} ${KS_PID:-}; do
    kill -INT "$pid" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
  done
  cp "$WORK"/*.log "$OUT/" 2>/dev/null
  [ -n "${WS_NAME:-}" ] && "$VENVS/tempest/bin/tempest" workspace remove --name "$WS_NAME" >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT

# serving URL PID NAME: waits (up to a minute) until URL answers; fails with NAME's log if PID exits.
serving() {
  for _ in $(seq 300); do
    /usr/bin/python3 -c "import urllib.request; urllib.request.urlopen('$1')" 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || { tail -20 "$WORK/$3.log"; echo "tests/tempest/run.sh: $3 exited" >&2; exit 1; }
    sleep 0.2
  done
  echo "tests/tempest/run.sh: $3 did not answer at $1 within a minute" >&2
  exit 1
}

# Keystone: SQLite, fernet tokens, bootstrapped with an admin in project admin, served by gunicorn.
cat >"$WORK/keystone.conf" <<EOF
[database]
connection = sqlite:///$WORK/keystone.db
[token]
provider = fernet
[fernet_tokens]
key_repository = $WORK/fernet-keys
[fernet_receipts]
key_repository = $WORK/fernet-receipts
[credential]
key_repository = $WORK/credential-keys
EOF
KM() { "$VENVS/keystone/bin/keystone-manage" --config-file "$WORK/keystone.conf" "$@" >>"$WORK/keystone-manage.log" 2>&1; }
KM db_sync
KM fernet_setup --keystone-user root --keystone-group root
KM receipt_setup --keystone-user root --keystone-group root
KM credential_setup --keystone-user root --keystone-group root
KM bootstrap --bootstrap-password "$PASSWORD" --bootstrap-region-id RegionOne \
  --bootstrap-admin-url "$KS" --bootstrap-public-url "$KS" --bootstrap-internal-url "$KS"
# oslo.config reads the process's command line: under gunicorn it would see gunicorn's flags and the
# workers would exit in a loop. The application is imported with the command line cut to the program.
cat >"$WORK/keystone_wsgi.py" <<'EOF'
import sys
sys.argv = sys.argv[:1]
from keystone.wsgi.api import application  # noqa: E402,F401
EOF
OS_KEYSTONE_CONFIG_FILES=$WORK/keystone.conf "$VENVS/keystone/bin/gunicorn" --chdir "$WORK" \
  --bind "127.0.0.1:$KS_PORT" --workers 2 keystone_wsgi:application >"$WORK/keystone.log" 2>&1 &
KS_PID=$!
serving "$KS" "$KS_PID" keystone
export OS_AUTH_URL=$KS OS_USERNAME=admin OS_PASSWORD=$PASSWORD OS_PROJECT_NAME=admin \
  OS_USER_DOMAIN_NAME=Default OS_PROJECT_DOMAIN_NAME=Default OS_IDENTITY_API_VERSION=3 OS_REGION_NAME=RegionOne
"$OS" service create --name neutron network >/dev/null
for iface in public internal admin; do
  "$OS" endpoint create --region RegionOne network "$iface" "$API" >/dev/null
done

# The node: the API (validating Keystone's tokens), the embedded DB, the local controller and the switch
# (no port is bound here).
"$BIN" all-in-one --listen "127.0.0.1:$API_PORT" --keystone "$KS" --data-dir "$WORK/db" --chassis df-tempest --idle-sleep-us 100 \
  --default-quotas "$QUOTAS" \
  -- -l 0-1 --main-lcore 0 --no-huge -m 1024 --no-pci --file-prefix "df-tempest-$$" >"$WORK/dragonflow.log" 2>&1 &
DF_PID=$!
serving "$API" "$DF_PID" dragonflow

# The external network Tempest's router tests attach gateways to.
PUBLIC=$("$OS" network create --external --share public -f value -c id)
"$OS" subnet create --network "$PUBLIC" --subnet-range 172.24.4.0/24 public-v4 >/dev/null
TOKEN=$("$OS" token issue -f value -c id)
EXTENSIONS=$(/usr/bin/python3 -c "
import json, urllib.request
req = urllib.request.Request('${API}v2.0/extensions', headers={'X-Auth-Token': '$TOKEN'})
d = json.load(urllib.request.urlopen(req))
print(','.join(sorted({e['alias'] for e in d['extensions']})))")

# Tempest, for this cloud: dynamic credentials (a project and user per test class) made by the admin.
TEMPEST=$VENVS/tempest/bin
# (A workspace of its own name: Tempest registers workspaces by name in ~/.tempest, and refuses a name
# it has.)
WS_NAME=df-$(basename "$WORK")
(cd "$WORK" && "$TEMPEST/tempest" init --name "$WS_NAME" ws >"$WORK/tempest-init.log" 2>&1) ||
  { cat "$WORK/tempest-init.log"; exit 1; }
cat >"$WORK/ws/etc/tempest.conf" <<EOF
[DEFAULT]
log_file = $WORK/tempest.log
[auth]
use_dynamic_credentials = true
create_isolated_networks = false
admin_username = admin
admin_password = $PASSWORD
admin_project_name = admin
admin_domain_name = Default
[identity]
uri_v3 = $KS
auth_version = v3
region = RegionOne
[identity-feature-enabled]
api_v2 = false
[service_available]
neutron = true
nova = false
cinder = false
glance = false
swift = false
[validation]
run_validation = false
[network]
public_network_id = $PUBLIC
project_network_cidr = 10.100.0.0/16
project_network_mask_bits = 28
project_network_v6_cidr = 2001:db8::/48
project_network_v6_mask_bits = 64
[neutron_plugin_options]
available_type_drivers = vxlan,geneve,gre
[network-feature-enabled]
api_extensions = $EXTENSIONS
ipv6 = true
ipv6_subnet_attributes = true
port_security = true
EOF
cp "$WORK/ws/etc/tempest.conf" "$OUT/"
cd "$WORK/ws"
set +e
"$TEMPEST/tempest" run --regex "$REGEX" --concurrency 1 >"$OUT/run.txt" 2>&1
set -e
"$TEMPEST/stestr" last --subunit >"$OUT/results.subunit" 2>/dev/null || true
"$TEMPEST/stestr" failing --list >"$OUT/failing.txt" 2>/dev/null || true
# tempest run ends with "Totals": Ran, Passed, Failed, Skipped.
TOTALS=$(sed -n '/^Totals/,/Sum of execute time/p' "$OUT/run.txt")
[ -n "$TOTALS" ] || { tail -30 "$OUT/run.txt"; echo "tests/tempest/run.sh: tempest printed no totals" >&2; exit 1; }
echo "tests/tempest/run.sh: $REGEX"
echo "$TOTALS" | grep -E 'Ran|Passed|Failed|Skipped'
echo "tests/tempest/run.sh: results in $OUT (run.txt, failing.txt, results.subunit)"
