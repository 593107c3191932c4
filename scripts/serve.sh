#!/usr/bin/env bash
# Build and run GitClaw on the embedded default: filesystem object store and SQLite
# under GITCLAW_DATA_DIR (default ./gitclaw-data), listening on GITCLAW_LISTEN
# (default 127.0.0.1:8080). Extra arguments go to `gitclaw serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo run --release --locked --bin gitclaw -- serve "$@"
