#!/usr/bin/env bash
# Start a throw-away PostgreSQL cluster on a free loopback port and print the
# environment the tests read (GITCLAW_TEST_POSTGRES_URL, GITCLAW_TEST_PG_DIR).
# Stop it with: scripts/postgres.sh stop DIR
# Uses Debian's PostgreSQL binaries (/usr/lib/postgresql/*/bin); initdb must not run as
# root, so as root it runs as the `postgres` user.
set -euo pipefail

bindir=${GITCLAW_PG_BIN_DIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
[ -x "$bindir/initdb" ] || { echo "PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 1; }
as_owner() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

if [ "${1:-}" = stop ]; then
  as_owner "$bindir/pg_ctl" -D "$2/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$2"
  exit 0
fi

dir=$(mktemp -d /tmp/gitclaw-pg.XXXXXX)
chmod 755 "$dir"
[ "$(id -u)" = 0 ] && chown postgres "$dir"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
as_owner "$bindir/initdb" -D "$dir/data" -A trust -U postgres >"$dir/initdb.log" 2>&1
as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
  -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
  start >/dev/null
echo "export GITCLAW_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:$port/postgres"
echo "export GITCLAW_TEST_PG_DIR=$dir"
