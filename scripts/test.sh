#!/usr/bin/env bash
# Run the whole test suite: formatting, lints, unit, property and end-to-end tests.
# Installs what the tests need when it is missing (git, python3 for fixtures,
# lighttpd for the reference git http-backend, promtool, libgit2, dulwich and
# go-git for the other-clients test, PostgreSQL, Garage) and starts a
# throw-away PostgreSQL cluster and S3 server for the run.
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1; }
# What the build has left on disk, so a full disk shows up as such in the log
# (a linker killed by SIGBUS looks like a linker bug otherwise).
disk() { echo "== disk: $(df -h --output=avail . | tail -1 | tr -d ' ') free, target $(du -sh target 2>/dev/null | cut -f1)"; }
# A run from scratch gains nothing from incremental state, which is several GiB.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
apt_install() {
  if need apt-get; then
    if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq "$@"; else sudo apt-get update -qq && sudo apt-get install -y -qq "$@"; fi
  else
    echo "please install: $*" >&2; exit 1
  fi
}
need git || apt_install git
need git-lfs || apt_install git-lfs
need python3 || apt_install python3
# git http-backend under lighttpd is the reference server of the parity tests.
[ -x /usr/sbin/lighttpd ] || [ -x /usr/bin/lighttpd ] || apt_install lighttpd
# A real Redis for the shared metadata cache tests (they start their own servers).
need redis-server || apt_install redis-server
# openssl makes the throw-away CA of the TLS tests (scripts/test-certs.sh).
need openssl || apt_install openssl
# promtool (Debian's prometheus package) checks the /metrics text.
need promtool || apt_install prometheus
# Git clients other than C git: libgit2 through pygit2 and dulwich from PyPI
# into a virtual environment cached in ~/.cache/gitclaw-tools; go-git from
# Debian, built with Debian's Go.
python3 -c 'import ensurepip, venv' 2>/dev/null || apt_install python3-venv
{ need go && [ -d /usr/share/gocode/src/github.com/go-git/go-git ]; } ||
  apt_install golang-go golang-github-go-git-go-git-dev
eval "$(scripts/clients.sh)"
cleanup=()
on_exit() { for c in "${cleanup[@]}"; do $c || true; done; }
trap on_exit EXIT
# A real PostgreSQL for the metadata and end-to-end tests, on a free loopback port.
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || apt_install postgresql
if [ -z "${GITCLAW_TEST_POSTGRES_URL:-}" ]; then
  eval "$(scripts/postgres.sh)"
  cleanup+=("scripts/postgres.sh stop $GITCLAW_TEST_PG_DIR")
fi
echo "== PostgreSQL for tests: $GITCLAW_TEST_POSTGRES_URL"
# A real S3 server (Garage, built once with cargo install and cached in
# ~/.cache/gitclaw-tools) on free loopback ports.
if [ -z "${GITCLAW_TEST_S3_ENDPOINT:-}" ]; then
  scripts/garage.sh install
  eval "$(scripts/garage.sh)"
  cleanup+=("scripts/garage.sh stop $GITCLAW_TEST_GARAGE_DIR")
fi
echo "== S3 for tests: $GITCLAW_TEST_S3_ENDPOINT"

disk
echo "== cargo fmt --check"
cargo fmt --all -- --check
(cd fuzz && cargo fmt -- --check)
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
disk
echo "== cargo test"
cargo test --workspace --locked -- --test-threads="${TEST_THREADS:-4}"
# Every fuzz target for a short smoke (a debug build with overflow checks; the
# long runs are `scripts/fuzz.sh` by hand, see README "Reliability").
disk
echo "== fuzz smoke"
FUZZ_BUILD=dev scripts/fuzz.sh "${FUZZ_SECONDS:-20}"
disk
