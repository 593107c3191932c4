#!/usr/bin/env bash
# Start a throw-away PostgreSQL cluster on a free loopback port and print the
# environment the tests read (GITCLAW_TEST_POSTGRES_URL, GITCLAW_TEST_PG_DIR,
# GITCLAW_TEST_PG_TLS_CA). It serves TLS with a throw-away CA's certificate
# (scripts/test-certs.sh): to every client that asks for it, and as the only way
# in for the role gitclaw_tls; the role gitclaw_cert logs in only with that CA's
# client certificate (GITCLAW_TEST_PG_TLS_CLIENT_CERT and _KEY).
# Stop it with: scripts/postgres.sh stop DIR
# Take it down and bring it back on the same data and port (outage tests):
# scripts/postgres.sh down DIR; scripts/postgres.sh up DIR
# Uses Debian's PostgreSQL binaries (/usr/lib/postgresql/*/bin); initdb must not run as
# root, so as root it runs as the `postgres` user.
set -euo pipefail

bindir=${GITCLAW_PG_BIN_DIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
[ -x "$bindir/initdb" ] || { echo "PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 1; }
as_owner() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

start() { # start DIR PORT
  as_owner "$bindir/pg_ctl" -D "$1/data" -l "$1/server.log" -w \
    -o "-p $2 -k $1 -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
    start >/dev/null
}

case "${1:-}" in
  stop)
    as_owner "$bindir/pg_ctl" -D "$2/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$2"
    exit 0 ;;
  down)
    as_owner "$bindir/pg_ctl" -D "$2/data" -m fast -w stop >/dev/null
    exit 0 ;;
  up)
    start "$2" "$(cat "$2/port")"
    exit 0 ;;
esac

dir=$(mktemp -d /tmp/gitclaw-pg.XXXXXX)
chmod 755 "$dir"
[ "$(id -u)" = 0 ] && chown postgres "$dir"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
echo "$port" >"$dir/port"
as_owner "$bindir/initdb" -D "$dir/data" -A trust -U postgres >"$dir/initdb.log" 2>&1
"$(dirname "${BASH_SOURCE[0]}")/test-certs.sh" "$dir/tls"
[ "$(id -u)" = 0 ] && chown -R postgres "$dir/tls"
cat >>"$dir/data/postgresql.conf" <<CONF
ssl = on
ssl_cert_file = '$dir/tls/server.pem'
ssl_key_file = '$dir/tls/server.key'
ssl_ca_file = '$dir/tls/ca.pem'
CONF
hba=$dir/data/pg_hba.conf
{ echo "hostnossl all gitclaw_tls all reject"; echo "hostnossl all gitclaw_cert all reject"
  echo "hostssl all gitclaw_cert all cert"; cat "$hba"; } >"$hba.new"
cat "$hba.new" >"$hba" && rm "$hba.new"
start "$dir" "$port"
psql -h "$dir" -p "$port" -U postgres -d postgres -qc "CREATE ROLE gitclaw_tls LOGIN"
psql -h "$dir" -p "$port" -U postgres -d postgres -qc "CREATE ROLE gitclaw_cert LOGIN"
echo "export GITCLAW_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:$port/postgres"
echo "export GITCLAW_TEST_PG_DIR=$dir"
echo "export GITCLAW_TEST_PG_TLS_CA=$dir/tls/ca.pem"
# A copy the tests' user may read (the server's own is the postgres user's).
cp "$dir/tls/client.pem" "$dir/tls/client.key" "$dir/"
echo "export GITCLAW_TEST_PG_TLS_CLIENT_CERT=$dir/client.pem"
echo "export GITCLAW_TEST_PG_TLS_CLIENT_KEY=$dir/client.key"
