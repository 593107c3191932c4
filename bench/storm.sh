#!/usr/bin/env bash
# The CI storm: right after a push, N identical `git clone --depth 1` of the new
# commit at once. Measures the server CPU of the storm against that of a single
# cold shallow clone, for GitClaw and for C git's `git http-backend` (under
# lighttpd) serving the same repository. GitClaw generates the pack once and lets
# the other clones share it as it is written; git generates it N times.
#
# Usage: bench/storm.sh [--repo PATH] [--commits N] [--clients N] [--rounds N]
#   --repo PATH    an existing repository (default: a generated one)
#   --commits N    size of the generated repository (default 3000)
#   --clients N    clones in the storm (default 16)
#   --rounds N     storms (and single clones) per server; medians are reported (default 5)
# Needs: lighttpd, git, python3, bc, GNU time (installed from apt when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

repo="" commits=3000 clients=16 rounds=5
while [ $# -gt 0 ]; do
  case "$1" in
    --repo) repo=$2; shift 2 ;;
    --commits) commits=$2; shift 2 ;;
    --clients) clients=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done

work=$(mktemp -d /tmp/gitclaw-storm.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null GIT_TERMINAL_PROMPT=0
. "$root/bench/lib.sh"
need_bench_tools

echo "== building gitclaw (release)"
cargo build --release --quiet --bin gitclaw
gitclaw=$root/target/release/gitclaw

if [ -z "$repo" ]; then
  echo "== generating a repository with $commits commits"
  repo=$work/src
  bash "$root/bench/make-large-repo.sh" "$repo" "$commits"
fi
git clone -q "$repo" "$work/src-work"
src=$work/src-work
branch=$(git -C "$src" symbolic-ref --short HEAD)

# Both servers serve the repository, GitClaw (filesystem + SQLite) after its gc.
serve_copy "$repo"
start_http_backend
export GITCLAW_DATA_DIR=$work/gitclaw-data RUST_LOG=warn
start_gitclaw
push_to_gitclaw "$src" "$branch"

n=0
new_commit() { # a commit on top, pushed to both servers
  n=$((n + 1))
  echo "storm $n $(date +%s%N)" > "$src/storm.txt"
  git -C "$src" add storm.txt
  git -C "$src" -c user.name=b -c user.email=b@example.com commit -qm "storm $n"
  git -C "$src" push -q "$claw_url" "$branch"
  git -C "$src" push -q "$ref_url" "$branch"
}

clones() { # clones PID URL COUNT: "cpu wall" of COUNT simultaneous shallow clones
  local pid=$1 url=$2 count=$3 c0 c1 t0 t1 i failed=0
  rm -rf "$work/c"; mkdir -p "$work/c"
  c0=$(settled_cpu "$pid"); t0=$(date +%s.%N)
  local running=()
  for i in $(seq "$count"); do
    git clone -q --bare --depth 1 "$url" "$work/c/$i" & running+=($!)
  done
  for p in "${running[@]}"; do wait "$p" || failed=$((failed + 1)); done
  t1=$(date +%s.%N); c1=$(settled_cpu "$pid")
  [ "$failed" = 0 ] || { echo "$failed clones failed" >&2; exit 1; }
  # Every clone got the new commit.
  local want; want=$(git -C "$src" rev-parse HEAD)
  for i in $(seq "$count"); do
    [ "$(git -C "$work/c/$i" rev-parse HEAD)" = "$want" ] || { echo "clone $i is stale" >&2; exit 1; }
  done
  echo "$(echo "scale=3; ($c1 - $c0) / $hz" | bc) $(echo "$t1 - $t0" | bc)"
}

declare -A one storm
for server in ref claw; do one[$server]=""; storm[$server]=""; done
for r in $(seq "$rounds"); do
  for server in ref claw; do
    if [ $server = ref ]; then pid=$ref_pid url=$ref_url; else pid=$claw_pid url=$claw_url; fi
    new_commit
    one[$server]+="$(clones "$pid" "$url" 1)"$'\n'
    new_commit
    storm[$server]+="$(clones "$pid" "$url" "$clients")"$'\n'
  done
  echo "   round $r done"
done

echo
echo "== CI storm: $clients identical --depth 1 clones of a commit just pushed, medians of $rounds"
python3 - "$clients" "${one[ref]}" "${storm[ref]}" "${one[claw]}" "${storm[claw]}" <<'PY'
import sys
clients = sys.argv[1]
def med(text, k):
    rows = [[float(x) for x in l.split()] for l in text.splitlines() if l.strip()]
    vals = sorted(r[k] for r in rows)
    return vals[(len(vals) - 1) // 2]
for name, one, storm in (("git http-backend", sys.argv[2], sys.argv[3]), ("GitClaw", sys.argv[4], sys.argv[5])):
    o, s = med(one, 0), med(storm, 0)
    ratio = f"{s / o:.2f}x" if o else "-"
    print(f"{name:17} one clone cpu {o:6.2f}s wall {med(one, 1):6.2f}s   storm of {clients} cpu {s:6.2f}s wall {med(storm, 1):6.2f}s   storm/one cpu {ratio}")
PY
echo "GitClaw peak RSS: $(awk '/VmHWM/ {print $2}' "/proc/$claw_pid/status") KiB"
