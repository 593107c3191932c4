#!/usr/bin/env bash
# What observability costs: two GitClaw servers on the same repository, one
# sending OpenTelemetry traces (to a local OTLP sink that accepts and drops
# them), one not; the same clones and pushes against both, taking turns.
# Both keep /metrics (it is always on); to price the metrics too, give the
# quiet one a binary built before them with --baseline.
#
# Usage: bench/telemetry-cost.sh [--commits N] [--runs N] [--baseline BIN]
#   --commits N     size of the generated repository (default 3000)
#   --runs N        repetitions per operation (default 7; medians reported)
#   --baseline BIN  the gitclaw binary of the quiet server (default: this one), e.g.
#                   git worktree add /tmp/old REV && (cd /tmp/old && cargo build --release)
# The response cache is off on both, so every clone does its whole work.
# Needs: git, python3, bc.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

commits=3000 runs=7 baseline=""
while [ $# -gt 0 ]; do
  case "$1" in
    --commits) commits=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --baseline) baseline=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
command -v bc >/dev/null || { apt-get update -qq && apt-get install -y -qq bc >/dev/null; }

work=$(mktemp -d /tmp/gitclaw-telemetry.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null GIT_TERMINAL_PROMPT=0
. "$root/bench/lib.sh"

echo "== building gitclaw (release)"
cargo build --release --quiet --bin gitclaw
gitclaw=$root/target/release/gitclaw
quiet_bin=${baseline:-$gitclaw}

echo "== generating a repository with $commits commits"
repo=$work/src
bash "$root/bench/make-large-repo.sh" "$repo" "$commits"
branch=$(git -C "$repo" symbolic-ref --short HEAD)

# An OTLP/HTTP sink: reads each export whole, answers 200, counts the bytes.
sink_port=$(free_port)
python3 - "$sink_port" "$work/sink-bytes" <<'PY' & pids+=($!)
import http.server, sys
port, tally = int(sys.argv[1]), sys.argv[2]
total = 0
class Sink(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        global total
        total += len(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        open(tally, "w").write(str(total))
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *args): pass
http.server.ThreadingHTTPServer(("127.0.0.1", port), Sink).serve_forever()
PY
wait_port "$sink_port"

start_server() { # start_server NAME BIN [ENV=VALUE…]: prints "PID PORT"
  local name=$1 bin=$2; shift 2
  local port; port=$(free_port)
  env GITCLAW_DATA_DIR="$work/$name" GITCLAW_LISTEN="127.0.0.1:$port" RUST_LOG=warn \
    GITCLAW_GC_LOOSE_THRESHOLD=0 GITCLAW_GC_PACK_THRESHOLD=0 GITCLAW_GC_CLOSURE_THRESHOLD=0 GITCLAW_RESPONSE_CACHE_BYTES=0 \
    "$@" "$bin" repo create bench/bench >/dev/null
  env GITCLAW_DATA_DIR="$work/$name" GITCLAW_LISTEN="127.0.0.1:$port" RUST_LOG=warn \
    GITCLAW_GC_LOOSE_THRESHOLD=0 GITCLAW_GC_PACK_THRESHOLD=0 GITCLAW_GC_CLOSURE_THRESHOLD=0 GITCLAW_RESPONSE_CACHE_BYTES=0 \
    "$@" "$bin" serve >/dev/null 2>"$work/$name.err" &
  local pid=$!
  wait_port "$port"
  git -C "$repo" push -q "http://127.0.0.1:$port/bench/bench.git" "$branch"
  git -C "$repo" push -q "http://127.0.0.1:$port/bench/bench.git" 'refs/heads/*:refs/heads/*' 'refs/tags/*:refs/tags/*'
  env GITCLAW_DATA_DIR="$work/$name" "$bin" gc bench/bench >/dev/null 2>&1
  echo "$pid $port"
}
read -r quiet_pid quiet_port < <(start_server quiet "$quiet_bin")
pids+=("$quiet_pid")
read -r traced_pid traced_port < <(start_server traced "$gitclaw" \
  OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$sink_port" OTEL_BSP_SCHEDULE_DELAY=200)
pids+=("$traced_pid")

full_clone()    { git clone -q --bare "$URL/bench/bench.git" "$work/client"; }
shallow_clone() { git clone -q --bare --depth 1 "$URL/bench/bench.git" "$work/client"; }
push_new() {
  local name="p$(date +%s%N)"
  env GITCLAW_DATA_DIR="$DATA" "$BIN" repo create "bench/$name" >/dev/null 2>&1
  git -C "$repo" push -q "$URL/bench/$name.git" "$branch"
}

op() { # op LABEL FUNCTION: both servers in turns, which goes first alternating
  local quiet_runs=() traced_runs=() i
  for i in $(seq "$runs"); do
    local q t
    if [ $((i % 2)) = 1 ]; then
      q=$(URL=http://127.0.0.1:$quiet_port DATA=$work/quiet BIN=$quiet_bin run_once "$quiet_pid" "$2")
      t=$(URL=http://127.0.0.1:$traced_port DATA=$work/traced BIN=$gitclaw run_once "$traced_pid" "$2")
    else
      t=$(URL=http://127.0.0.1:$traced_port DATA=$work/traced BIN=$gitclaw run_once "$traced_pid" "$2")
      q=$(URL=http://127.0.0.1:$quiet_port DATA=$work/quiet BIN=$quiet_bin run_once "$quiet_pid" "$2")
    fi
    quiet_runs+=("$q"); traced_runs+=("$t")
  done
  printf '%-15s' "$1"
  python3 - "$(summary "${quiet_runs[@]}")" "$(summary "${traced_runs[@]}")" <<'PY'
import sys
q = [float(x) for x in sys.argv[1].split()]
t = [float(x) for x in sys.argv[2].split()]
def delta(a, b): return f"{(b / a - 1) * 100:+.1f}%" if a else "-"
print(f"wall {q[0]:6.3f}s / {t[0]:6.3f}s ({delta(q[0], t[0])})   server cpu {q[1]:5.2f}s / {t[1]:5.2f}s ({delta(q[1], t[1])})")
PY
}

echo
echo "== quiet / traced (medians of $runs runs; + means tracing costs that much more)"
[ -z "$baseline" ] || echo "   quiet server: $baseline (no tracing)"
op "full clone" full_clone
op "shallow clone" shallow_clone
op "push (new repo)" push_new
echo
echo "spans exported: $(cat "$work/sink-bytes" 2>/dev/null || echo 0) bytes of OTLP"
echo "peak RSS quiet / traced: $(awk '/VmHWM/ {print $2}' "/proc/$quiet_pid/status") / $(awk '/VmHWM/ {print $2}' "/proc/$traced_pid/status") KiB"
