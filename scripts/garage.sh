#!/usr/bin/env bash
# A throw-away Garage S3 server on free loopback ports, for the tests.
#
#   scripts/garage.sh install   build Garage once into $GITCLAW_TOOLS (~10 min; cached)
#   scripts/garage.sh           start one; prints the environment the tests read:
#                               GITCLAW_TEST_S3_ENDPOINT, _REGION, _ACCESS_KEY_ID,
#                               _SECRET_ACCESS_KEY, _BUCKET and GITCLAW_TEST_GARAGE_DIR
#   scripts/garage.sh stop DIR  stop it and remove its files
#   scripts/garage.sh down DIR  stop it, keeping its files (outage tests)
#   scripts/garage.sh up DIR    start it again where it was
#
# The key may create buckets, so tests can use a fresh bucket each.
set -euo pipefail

GARAGE_VERSION=2.5.0
tools=${GITCLAW_TOOLS:-$HOME/.cache/gitclaw-tools}
garage=${GITCLAW_GARAGE_BIN:-$tools/bin/garage}

install() {
  if [ -x "$garage" ] && "$garage" --version 2>/dev/null | grep -q "$GARAGE_VERSION"; then
    return 0
  fi
  echo "== building Garage $GARAGE_VERSION into $tools (once; about 10 minutes)" >&2
  cargo install garage --version "$GARAGE_VERSION" --locked --root "$tools" >&2
}

case "${1:-start}" in
  install) install; exit 0 ;;
  stop)
    if [ -f "$2/pid" ]; then kill "$(cat "$2/pid")" 2>/dev/null || true; fi
    sleep 0.2
    rm -rf "$2"
    exit 0 ;;
  down)
    pid=$(cat "$2/pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    exit 0 ;;
  up)
    dir=$2
    RUST_LOG=${GARAGE_LOG:-warn} "$garage" -c "$dir/garage.toml" server >>"$dir/server.log" 2>&1 &
    echo $! >"$dir/pid"
    for _ in $(seq 1 100); do
      "$garage" -c "$dir/garage.toml" status >/dev/null 2>&1 && exit 0
      sleep 0.1
    done
    echo "Garage did not start again; see $dir/server.log" >&2
    exit 1 ;;
  start) ;;
  *) echo "usage: $0 [install|start|stop DIR|down DIR|up DIR]" >&2; exit 2 ;;
esac

install
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
hex() { python3 -c "import secrets; print(secrets.token_hex($1))"; }

dir=$(mktemp -d /tmp/gitclaw-garage.XXXXXX)
rpc=$(free_port); s3=$(free_port); admin=$(free_port)
cat >"$dir/garage.toml" <<EOF
metadata_dir = "$dir/meta"
data_dir = "$dir/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$rpc"
rpc_public_addr = "127.0.0.1:$rpc"
rpc_secret = "$(hex 32)"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$s3"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:$admin"
admin_token = "$(hex 16)"
EOF
g() { "$garage" -c "$dir/garage.toml" "$@"; }
RUST_LOG=${GARAGE_LOG:-warn} "$garage" -c "$dir/garage.toml" server >"$dir/server.log" 2>&1 &
echo $! >"$dir/pid"
for _ in $(seq 1 100); do
  g status >/dev/null 2>&1 && break
  sleep 0.1
done
g status >/dev/null 2>&1 || { echo "Garage did not start; see $dir/server.log" >&2; cat "$dir/server.log" >&2; exit 1; }
node=$(g node id -q 2>/dev/null | cut -d@ -f1)
g layout assign -z dc1 -c 10G "$node" >/dev/null
g layout apply --version 1 >/dev/null
key_id="GK$(hex 12)"
secret=$(hex 32)
g key import --yes -n gitclaw-test "$key_id" "$secret" >/dev/null
g key allow --create-bucket gitclaw-test >/dev/null
g bucket create gitclaw-test >/dev/null
g bucket allow --read --write --owner gitclaw-test --key gitclaw-test >/dev/null

echo "export GITCLAW_TEST_S3_ENDPOINT=http://127.0.0.1:$s3"
echo "export GITCLAW_TEST_S3_REGION=garage"
echo "export GITCLAW_TEST_S3_ACCESS_KEY_ID=$key_id"
echo "export GITCLAW_TEST_S3_SECRET_ACCESS_KEY=$secret"
echo "export GITCLAW_TEST_S3_BUCKET=gitclaw-test"
echo "export GITCLAW_TEST_GARAGE_DIR=$dir"
