#!/usr/bin/env bash
# Serve one repository from GitClaw and from C git's `git http-backend` (under
# lighttpd) on this machine, run the same git operations against both, and report
# side by side: wall time, server CPU time, bytes on the wire, server peak RSS.
#
# Usage: bench/compare.sh [--repo PATH] [--commits N] [--runs N] [--s3]
#   --repo PATH   benchmark an existing repository (default: a generated one)
#   --commits N   size of the generated repository (default 3000)
#   --runs N      repetitions per operation (default 5; the median is reported)
#   --hold        set both servers up, print their URLs and wait (Ctrl-C ends), for
#                 measuring other operations by hand against the same repository
#   --s3          serve GitClaw from S3 + PostgreSQL instead of the filesystem + SQLite:
#                 the bucket and database named by S3_* and DATABASE_URL, or, when
#                 S3_BUCKET is unset, a throw-away Garage and PostgreSQL on loopback;
#                 the report adds S3 requests per operation (first run, median); bytes
#                 are counted on loopback, so in this mode they include GitClaw's own
#                 traffic with the store and the database
# Needs: lighttpd, git, python3, /usr/bin/time (installed from apt when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

repo="" commits=3000 runs=5 use_s3=0 hold=0
while [ $# -gt 0 ]; do
  case "$1" in
    --repo) repo=$2; shift 2 ;;
    --commits) commits=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --s3) use_s3=1; shift ;;
    --hold) hold=1; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done

work=$(mktemp -d /tmp/gitclaw-bench.XXXXXX)
own_garage="" own_pg=""
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -z "$own_garage" ] || "$root/scripts/garage.sh" stop "$own_garage"
  [ -z "$own_pg" ] || "$root/scripts/postgres.sh" stop "$own_pg"
  rm -rf "$work"
}
trap cleanup EXIT

export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null GIT_TERMINAL_PROMPT=0
. "$root/bench/lib.sh"
need_bench_tools

echo "== building gitclaw (release)"
cargo build --release --quiet --bin gitclaw
gitclaw=$root/target/release/gitclaw

# --- the repository ---------------------------------------------------------
if [ -z "$repo" ]; then
  echo "== generating a repository with $commits commits"
  repo=$work/src
  bash "$root/bench/make-large-repo.sh" "$repo" "$commits"
fi
branch=$(git -C "$repo" symbolic-ref --short HEAD)
serve_copy "$repo"
echo "   $objects objects, pack ${packsize} KiB"

# --- git http-backend under lighttpd ------------------------------------------
start_http_backend

# --- GitClaw ---------------------------------------------------------------
export GITCLAW_DATA_DIR=$work/gitclaw-data RUST_LOG=warn
export GITCLAW_GC_LOOSE_THRESHOLD=0 GITCLAW_GC_PACK_THRESHOLD=0
if [ "$use_s3" = 1 ]; then
  # No store named: a throw-away Garage and PostgreSQL on loopback, as the tests use.
  services_unless_named bench
  echo "   GitClaw on S3 bucket $S3_BUCKET at ${S3_ENDPOINT:-AWS}"
  # Every S3 call is logged at DEBUG: counted per operation below.
  export RUST_LOG=warn,gitclaw_storage=debug
fi
start_gitclaw
push_to_gitclaw "$repo" "$branch"

if [ "$hold" = 1 ]; then
  echo "== serving (Ctrl-C ends)"
  echo "git http-backend: $ref_url"
  echo "GitClaw:          $claw_url   (pid $claw_pid, data $GITCLAW_DATA_DIR)"
  wait "$claw_pid"
  exit 0
fi

prep_incremental() { # a clone 50 commits behind, reused for every fetch run
  rm -rf "$work/behind"
  git clone -q --bare "$repo" "$work/behind"
  git -C "$work/behind" update-ref "refs/heads/$branch" "$(git -C "$repo" rev-parse "$branch~50")"
  git -C "$work/behind" for-each-ref --format='delete %(refname)' refs/tags | git -C "$work/behind" update-ref --stdin
  git -C "$work/behind" gc -q --prune=now
}

# The operations, as functions of $URL (and of the server kind, for push).
full_clone()    { git clone -q --bare "$URL" "$work/client"; }
shallow_clone() { git clone -q --bare --depth 1 "$URL" "$work/client"; }
partial_clone() { git clone -q --bare --filter=blob:none "$URL" "$work/client"; }
incremental()   { rm -rf "$work/inc"; cp -r "$work/behind" "$work/inc"; git -C "$work/inc" fetch -q "$URL" "+refs/heads/*:refs/heads/*"; }
push_new() {
  local url
  if [ "$URL" = "$ref_url" ]; then
    rm -rf "$work/served/push.git"
    git init -q --bare "$work/served/push.git"
    git -C "$work/served/push.git" config http.receivepack true
    url=${URL%bench.git}push.git
  else
    local name="p$(date +%s%N)"
    "$gitclaw" repo create "bench/$name" >/dev/null 2>>"$work/cli.err"
    url=${URL%bench.git}$name.git
  fi
  git -C "$repo" push -q "$url" "$branch"
}

op() { # op LABEL FUNCTION
  # The servers take turns, and which one goes first alternates, so a drift of
  # the machine (caches, clock, other load) weighs on both alike.
  local ref_runs=() claw_runs=() ref claw i
  for i in $(seq "$runs"); do
    if [ $((i % 2)) = 1 ]; then
      ref_runs+=("$(URL=$ref_url run_once "$ref_pid" "$2")")
      claw_runs+=("$(URL=$claw_url run_once "$claw_pid" "$2")")
    else
      claw_runs+=("$(URL=$claw_url run_once "$claw_pid" "$2")")
      ref_runs+=("$(URL=$ref_url run_once "$ref_pid" "$2")")
    fi
  done
  ref=$(summary "${ref_runs[@]}")
  claw=$(summary "${claw_runs[@]}")
  printf '%-18s' "$1"
  python3 - "$ref" "$claw" <<'PY'
import sys
r = [float(x) for x in sys.argv[1].split()]
c = [float(x) for x in sys.argv[2].split()]
def ratio(a, b): return f"{b / a:.2f}x" if a else "-"
s3 = f"   S3 requests {int(c[3])} first, {int(c[4])} median" if c[3] or c[4] else ""
print(f"wall {r[0]:7.3f}s / {c[0]:7.3f}s ({ratio(r[0], c[0])}, first run {r[5]:.3f}s / {c[5]:.3f}s)   cpu {r[1]:6.2f}s / {c[1]:6.2f}s ({ratio(r[1], c[1])}, first run {r[6]:.2f}s / {c[6]:.2f}s)   bytes {int(r[2]):>11} / {int(c[2]):>11} ({ratio(r[2], c[2])}){s3}")
PY
}

echo
echo "== git http-backend / GitClaw (ratio = GitClaw / git), median of $runs runs"
echo "   (GitClaw answers a repeated identical clone from its pack cache; the first run is the cold one)"
op "full clone" full_clone
op "shallow clone" shallow_clone
op "partial clone" partial_clone
prep_incremental
op "incremental fetch" incremental
op "push (new repo)" push_new

echo
echo "== peak RSS"
echo "git http-backend (largest request): $(sort -n "$rsslog" | tail -1) KiB"
echo "GitClaw (whole process, all runs):   $(awk '/VmHWM/ {print $2}' "/proc/$claw_pid/status") KiB"
