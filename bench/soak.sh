#!/usr/bin/env bash
# The fault soak, long: real git clients push (loose and pack sized, several
# refs, --atomic, tags, races on one branch) and clone through a release
# `gitclaw serve` on Garage + PostgreSQL while a proxy fails a share of its
# object-store calls in every way it can (500, 503 SlowDown, dropped
# connections, read timeouts, bodies cut short, slow bodies). It checks that
# every push that succeeded is there, every push that failed left its refs as
# they were, every clone that succeeded is fsck-clean, gc leaves exactly the
# keys the database records and memory returns near its start; and reports
# pushes ok / refused / failed, retries, p99 latency, keys swept, RSS.
# `scripts/test.sh` runs the same test, short (tests/soak.rs).
#
# Usage: bench/soak.sh [--pushes N] [--clients N] [--readers N] [--rate F] [--seed N] [--report FILE]
#   --pushes N    pushes in all (default 1000)
#   --clients N   pushing clients at once (default 8)
#   --readers N   cloning clients at once (default 2)
#   --rate F      share of object-store calls that fail (default 0.10)
#   --seed N      seed of the fault draw (default: from the clock; printed)
#   --report FILE where to write the report as JSON (default bench/results/soak.json)
# Starts PostgreSQL and Garage for the run unless GITCLAW_TEST_* name them.
set -euo pipefail
cd "$(dirname "$0")/.."

export GITCLAW_SOAK_PUSHES=1000 GITCLAW_SOAK_CLIENTS=8 GITCLAW_SOAK_READERS=2 GITCLAW_SOAK_FAULT_RATE=0.10
report=bench/results/soak.json
while [ $# -gt 0 ]; do
  case "$1" in
    --pushes) GITCLAW_SOAK_PUSHES=$2; shift 2 ;;
    --clients) GITCLAW_SOAK_CLIENTS=$2; shift 2 ;;
    --readers) GITCLAW_SOAK_READERS=$2; shift 2 ;;
    --rate) GITCLAW_SOAK_FAULT_RATE=$2; shift 2 ;;
    --seed) export GITCLAW_SOAK_SEED=$2; shift 2 ;;
    --report) report=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$(dirname "$report")"
export GITCLAW_SOAK_REPORT
GITCLAW_SOAK_REPORT=$(realpath "$report")

cleanup=()
on_exit() { for c in "${cleanup[@]}"; do $c || true; done; }
trap on_exit EXIT
if [ -z "${GITCLAW_TEST_POSTGRES_URL:-}" ]; then
  eval "$(scripts/postgres.sh)"
  cleanup+=("scripts/postgres.sh stop $GITCLAW_TEST_PG_DIR")
fi
if [ -z "${GITCLAW_TEST_S3_ENDPOINT:-}" ]; then
  scripts/garage.sh install
  eval "$(scripts/garage.sh)"
  cleanup+=("scripts/garage.sh stop $GITCLAW_TEST_GARAGE_DIR")
fi

echo "== soak: $GITCLAW_SOAK_PUSHES pushes, $GITCLAW_SOAK_CLIENTS clients, $GITCLAW_SOAK_READERS readers, fault rate $GITCLAW_SOAK_FAULT_RATE"
# The server's log of every retry goes to soak.log beside the report.
cargo test --release --locked --test soak -- --nocapture >"${GITCLAW_SOAK_REPORT%.json}.log" 2>&1 || {
  tail -40 "${GITCLAW_SOAK_REPORT%.json}.log" >&2
  echo "== soak FAILED; the whole log is in ${GITCLAW_SOAK_REPORT%.json}.log" >&2
  exit 1
}
echo "== report ($report)"
cat "$GITCLAW_SOAK_REPORT"
