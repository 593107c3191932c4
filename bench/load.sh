#!/usr/bin/env bash
# Load both servers with gitclaw-load, side by side: GitClaw (release build,
# filesystem + SQLite) and C git's `git http-backend` under lighttpd, serving the
# same repository, at several concurrencies for a few scenario mixes. Reports per
# cell: scenario runs per second, p99 latency, errors, server CPU (total and per
# run), server peak RSS and the harness's own CPU, then GitClaw / http-backend
# ratios.
#
# Usage: bench/load.sh [--repo PATH] [--commits N] [--duration 10s]
#                      [--concurrency "1 8 32"] [--mixes "shallow full mixed"]
#                      [--verify full|light] [--no-response-cache] [--keep DIR]
#   --repo PATH          load an existing repository (default: a generated one)
#   --commits N          size of the generated repository (default 2000)
#   --duration D         length of each cell (default 10s)
#   --concurrency LIST   concurrencies to run (default "1 8 32")
#   --mixes LIST         mixes to run, of: shallow, full, mixed (default all three)
#   --verify MODE        how the harness checks packs (default full: indexes every
#                        pack, which for a clone costs the harness about what git
#                        index-pack costs, often more than the server spends; light:
#                        header, count and checksum only, which leaves the shared
#                        CPU to the servers)
#   --no-response-cache  GitClaw without its response cache (GITCLAW_RESPONSE_CACHE_BYTES=0);
#                        by default it is on, and repeated identical clones, which a
#                        load test is made of, are answered from it
#   --keep DIR           keep each cell's JSON report in DIR
#
# Both servers and the harness share this machine's cores: the harness's CPU is
# reported so it can be weighed. Server CPU is user+system time of the server
# process and the children it waited for (lighttpd: every http-backend and
# upload-pack). Peak RSS: GitClaw's high-water mark (reset before each cell);
# for http-backend, the largest sum over lighttpd and its children, sampled
# every 0.2 s.
# Needs: lighttpd, git, python3, /usr/bin/time (installed from apt when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

repo="" commits=2000 duration=10s concurrencies="1 8 32" mixes="shallow full mixed"
verify=full no_cache=0 keep=""
while [ $# -gt 0 ]; do
  case "$1" in
    --repo) repo=$2; shift 2 ;;
    --commits) commits=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --concurrency) concurrencies=$2; shift 2 ;;
    --mixes) mixes=$2; shift 2 ;;
    --verify) verify=$2; shift 2 ;;
    --no-response-cache) no_cache=1; shift ;;
    --keep) keep=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done

mix_of() {
  case "$1" in
    shallow) echo "shallow=1" ;;
    full) echo "full=1" ;;
    mixed) echo "ls-refs=4,shallow=4,incremental=2,by-sha=1,blob-none=1,full=1,push=1" ;;
    *) echo "unknown mix $1 (shallow, full, mixed)" >&2; exit 2 ;;
  esac
}
for m in $mixes; do mix_of "$m" >/dev/null; done

work=$(mktemp -d /tmp/gitclaw-load.XXXXXX)
pids=()
sampler=""
cleanup() {
  [ -z "$sampler" ] || kill "$sampler" 2>/dev/null || true
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null GIT_TERMINAL_PROMPT=0
. "$root/bench/lib.sh"
need_bench_tools

echo "== building gitclaw and gitclaw-load (release)"
cargo build --release --quiet -p gitclaw -p gitclaw-load
bin=${CARGO_TARGET_DIR:-$root/target}/release
gitclaw=$bin/gitclaw
load=$bin/gitclaw-load

if [ -z "$repo" ]; then
  echo "== generating a repository with $commits commits"
  repo=$work/src
  bash "$root/bench/make-large-repo.sh" "$repo" "$commits"
fi
branch=$(git -C "$repo" symbolic-ref --short HEAD)
serve_copy "$repo"
echo "   $objects objects, pack ${packsize} KiB"

start_http_backend
export GITCLAW_DATA_DIR=$work/gitclaw-data RUST_LOG=warn
[ "$no_cache" = 0 ] || export GITCLAW_RESPONSE_CACHE_BYTES=0
start_gitclaw
push_to_gitclaw "$repo" "$branch"

tree_rss() { # KiB of a process and all its descendants
  ps -e -o pid=,ppid=,rss= | awk -v root="$1" '
    { parent[$1] = $2; rss[$1] = $3 }
    END {
      inside[root] = 1
      do { grew = 0; for (p in parent) if (!(p in inside) && (parent[p] in inside)) { inside[p] = 1; grew = 1 } } while (grew)
      for (p in inside) sum += rss[p]
      print sum + 0
    }'
}
sample_peak() { # sample_peak PID FILE: the largest tree_rss seen, written to FILE, until killed
  local peak=0 now
  while :; do
    now=$(tree_rss "$1")
    if [ "$now" -gt "$peak" ]; then peak=$now; echo "$peak" > "$2"; fi
    sleep 0.2
  done
}

results=$work/results.txt
: > "$results"
cell() { # cell SERVER PID URL MIX-NAME CONCURRENCY
  local server=$1 pid=$2 url=$3 mix=$4 conc=$5 c0 c1 peak json=$work/cell.json status=0
  if [ "$server" = gitclaw ]; then
    echo 5 2>/dev/null > "/proc/$pid/clear_refs" || true # resets VmHWM (needs root or the owner)
  else
    echo 0 > "$work/peak"
    sample_peak "$pid" "$work/peak" & sampler=$!
  fi
  c0=$(settled_cpu "$pid")
  /usr/bin/time -o "$work/client-time" -f "%U %S" \
    "$load" --url "$url" --mix "$(mix_of "$mix")" --concurrency "$conc" --duration "$duration" \
    --verify "$verify" --cleanup --quiet --json "$json" > "$work/cell.txt" 2> "$work/cell.err" || status=$?
  c1=$(settled_cpu "$pid")
  if [ "$server" = gitclaw ]; then
    peak=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
  else
    kill "$sampler" 2>/dev/null || true; wait "$sampler" 2>/dev/null || true; sampler=""
    peak=$(cat "$work/peak")
  fi
  if [ "$status" -gt 1 ] || ! [ -s "$json" ]; then
    echo "gitclaw-load failed against $server ($mix, concurrency $conc):" >&2
    cat "$work/cell.err" >&2
    exit 1
  fi
  [ -z "$keep" ] || { mkdir -p "$keep"; cp "$json" "$keep/$mix-c$conc-$server.json"; }
  # The cell's line: mix conc server runs/s p99 errors ok cpu-s rss-kib client-cpu-s first-error
  python3 - "$json" "$mix" "$conc" "$server" "$(echo "scale=3; ($c1 - $c0) / $hz" | bc)" "$peak" \
    "$(tail -1 "$work/client-time" | awk '{print $1 + $2}')" >> "$results" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
t = report["total"]
first = ""
for line in report["scenarios"]:
    for kind, example in line["error_examples"].items():
        # One field: every kind of whitespace (messages may hold newlines) becomes "_".
        first = first or "_".join(f'{line["scenario"]}: {kind}: {example}'.split())[:120]
print(sys.argv[2], sys.argv[3], sys.argv[4], f'{t["runs_per_sec"]:.2f}', f'{t["latency"]["p99_ms"]:.1f}',
      t["errors"], t["ok"], sys.argv[5], sys.argv[6], sys.argv[7], first or "-")
PY
  tail -1 "$results" | awk '{printf "   %-8s c=%-3s %-12s %8s runs/s  p99 %9s ms  errors %s\n", $1, $2, $3, $4, $5, $6}'
}

echo "== cells of $duration (harness verify=$verify; GitClaw response cache $([ "$no_cache" = 1 ] && echo off || echo on))"
i=0
for mix in $mixes; do
  for conc in $concurrencies; do
    # The servers take turns going first, so a drift of the machine weighs on both.
    if [ $((i % 2)) = 0 ]; then
      cell http-backend "$ref_pid" "$ref_url" "$mix" "$conc"
      cell gitclaw "$claw_pid" "$claw_url" "$mix" "$conc"
    else
      cell gitclaw "$claw_pid" "$claw_url" "$mix" "$conc"
      cell http-backend "$ref_pid" "$ref_url" "$mix" "$conc"
    fi
    i=$((i + 1))
  done
done

echo
python3 - "$results" <<'PY'
import sys
rows = [line.split() for line in open(sys.argv[1]) if line.strip()]
cells = {}
for mix, conc, server, rate, p99, errors, ok, cpu, rss, client, first in rows:
    cells.setdefault((mix, int(conc)), {})[server] = dict(
        rate=float(rate), p99=float(p99), errors=int(errors), ok=int(ok), cpu=float(cpu),
        rss=int(rss), client=float(client), first=first)
def per_run(c): return 1000 * c["cpu"] / c["ok"] if c["ok"] else float("nan")
def ratio(a, b): return f"{b / a:.2f}x" if a else "-"
head = f'{"mix":<8} {"conc":>4}  {"server":<12} {"runs/s":>8} {"p99 ms":>9} {"errors":>6} {"CPU s":>7} {"CPU ms/run":>10} {"peak RSS MiB":>12} {"harness CPU s":>13}'
print(head)
for (mix, conc), pair in cells.items():
    for server in ("http-backend", "gitclaw"):
        c = pair.get(server)
        if c:
            print(f'{mix:<8} {conc:>4}  {server:<12} {c["rate"]:>8.1f} {c["p99"]:>9.1f} {c["errors"]:>6} {c["cpu"]:>7.2f} {per_run(c):>10.1f} {c["rss"] / 1024:>12.1f} {c["client"]:>13.2f}')
print()
print("GitClaw / http-backend:")
print(f'{"mix":<8} {"conc":>4}  {"runs/s":>8} {"p99":>8} {"CPU/run":>8} {"peak RSS":>9}')
for (mix, conc), pair in cells.items():
    r, c = pair.get("http-backend"), pair.get("gitclaw")
    if r and c:
        print(f'{mix:<8} {conc:>4}  {ratio(r["rate"], c["rate"]):>8} {ratio(r["p99"], c["p99"]):>8} {ratio(per_run(r), per_run(c)):>8} {ratio(r["rss"], c["rss"]):>9}')
errors = [(k, s, v["first"]) for k, pair in cells.items() for s, v in pair.items() if v["errors"]]
for (mix, conc), server, first in errors:
    print(f"errors: {mix} c={conc} {server}: {first.replace('_', ' ')}")
PY
