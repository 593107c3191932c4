#!/usr/bin/env bash
# Serve one repository from GitClaw and from C git's `git http-backend` (under
# lighttpd) on this machine, run the same git operations against both, and report
# side by side: wall time, server CPU time, client CPU time, bytes on the wire,
# server peak RSS. The servers take turns run by run (which goes first
# alternates); medians are reported, with the first run beside them.
#
# Usage: bench/compare.sh [--repo PATH|URL] [--commits N] [--runs N] [--peer-gc]
#                         [--cold] [--as-pushed] [--s3 [--fresh]] [--shapes "LIST"]
#                         [--json FILE] [--hold]
#   --repo PATH|URL  benchmark an existing repository, or one cloned from URL at
#                    bench time (default: a generated one)
#   --commits N      size of the generated repository (default 3000)
#   --runs N         repetitions per operation (default 5; the median is reported)
#   --peer-gc        C git at its best: the served copy repacked with reachability
#                    bitmaps and a reverse index (`git repack -adb
#                    --write-bitmap-index`) and a commit-graph; without it, a plain
#                    `git repack -ad` with no bitmaps
#   --cold           GitClaw without its response cache, so every run is a first
#                    run (the answer is generated, not replayed)
#   --as-pushed      GitClaw serves the repository as pushed: no `gitclaw gc`
#   --s3             serve GitClaw from S3 + PostgreSQL instead of the filesystem + SQLite:
#                    the bucket and database named by S3_* and DATABASE_URL, or, when
#                    S3_BUCKET is unset, a throw-away Garage and PostgreSQL on loopback;
#                    the report adds S3 requests per operation (first run, median); bytes
#                    are counted on loopback, so in this mode they include GitClaw's own
#                    traffic with the store and the database
#   --fresh          (with --s3) a fresh GitClaw instance for every run: restarted with
#                    empty local caches (downloaded packs, responses, objects in memory)
#   --shapes LIST    the operations to run (default all): full full-bundle depth1 branch-depth1
#                    blob-none tree0 by-sha fetch-1 fetch-50 shallow-since push
#   --json FILE      also write one JSON object per operation to FILE
#   --hold           set both servers up, print their URLs and wait (Ctrl-C ends), for
#                    measuring other operations by hand against the same repository
# Server CPU is user+system time of the server process and the children it waited
# for (lighttpd: every http-backend and upload-pack); client CPU is that of the git
# command and its children (index-pack resolving the pack is most of it). "Instant
# server" is the same command against git's answers recorded once and replayed at
# once (bench/replay.py): the client's own wall, below which no server's can go.
# Needs: lighttpd, git, python3, /usr/bin/time (installed from apt when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

all_shapes="full full-bundle depth1 branch-depth1 blob-none tree0 by-sha fetch-1 fetch-50 shallow-since push"
repo="" commits=3000 runs=5 use_s3=0 hold=0 peer_gc=0 cold=0 as_pushed=0 fresh=0
shapes=$all_shapes json=""
while [ $# -gt 0 ]; do
  case "$1" in
    --repo) repo=$2; shift 2 ;;
    --commits) commits=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --s3) use_s3=1; shift ;;
    --fresh) fresh=1; shift ;;
    --peer-gc) peer_gc=1; shift ;;
    --cold) cold=1; shift ;;
    --as-pushed) as_pushed=1; shift ;;
    --shapes) shapes=$2; shift 2 ;;
    --json) json=$2; shift 2 ;;
    --hold) hold=1; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
if [ "$fresh" = 1 ] && [ "$use_s3" = 0 ]; then
  echo "--fresh needs --s3 (on the filesystem backend the store is the local disk)" >&2; exit 2
fi
for s in $shapes; do
  case " $all_shapes " in *" $s "*) ;; *) echo "unknown shape $s (of: $all_shapes)" >&2; exit 2 ;; esac
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
case "$repo" in
  "")
    echo "== generating a repository with $commits commits"
    repo=$work/src
    bash "$root/bench/make-large-repo.sh" "$repo" "$commits" ;;
  *://*)
    echo "== cloning $repo"
    git clone -q --mirror "$repo" "$work/src"
    repo=$work/src ;;
esac
branch=$(git -C "$repo" symbolic-ref --short HEAD)
other_branch=$(git -C "$repo" for-each-ref --format='%(refname:short)' refs/heads | grep -vxF "$branch" | head -1 || true)
serve_copy "$repo"
if [ "$peer_gc" = 1 ]; then
  git -C "$work/served/bench.git" -c pack.writeReverseIndex=true repack -adq -b --write-bitmap-index
  git -C "$work/served/bench.git" commit-graph write --reachable
  peer="git repack -adb --write-bitmap-index + commit-graph"
else
  git -C "$work/served/bench.git" -c repack.writeBitmaps=false repack -adq
  rm -f "$work"/served/bench.git/objects/pack/*.bitmap
  peer="git repack -ad, no bitmaps"
fi
echo "   $objects objects, pack ${packsize} KiB; C git serves it after $peer"

# --- git http-backend under lighttpd ------------------------------------------
start_http_backend

# --- git's answers, recorded and replayed at once (see op) ---------------------
start_replay() { # start_replay NAME MODE ARGS...: `replay.py MODE <free port> ARGS...`,
  # its pid and port in NAME_pid and NAME_port
  local port
  port=$(free_port)
  python3 "$root/bench/replay.py" "$2" "$port" "${@:3}" >/dev/null 2>>"$work/replay.err" &
  pids+=($!)
  printf -v "$1_pid" %s "$!"
  printf -v "$1_port" %s "$port"
  wait_port "$port"
}
start_replay record record "http://127.0.0.1:$ref_port" "$work/replay"
start_replay replay serve "$work/replay"
record_url=http://127.0.0.1:$record_port/git/bench.git
replay_url=http://127.0.0.1:$replay_port/git/bench.git

# --- GitClaw ---------------------------------------------------------------
export GITCLAW_DATA_DIR=$work/gitclaw-data RUST_LOG=warn
# Compaction only when the script runs it: `--as-pushed` is as pushed.
export GITCLAW_GC_LOOSE_THRESHOLD=0 GITCLAW_GC_PACK_THRESHOLD=0 GITCLAW_GC_CLOSURE_THRESHOLD=0
[ "$cold" = 0 ] || export GITCLAW_RESPONSE_CACHE_BYTES=0
if [ "$use_s3" = 1 ]; then
  # No store named: a throw-away Garage and PostgreSQL on loopback, as the tests use.
  services_unless_named bench
  echo "   GitClaw on S3 bucket $S3_BUCKET at ${S3_ENDPOINT:-AWS}"
  # Every S3 call is logged at DEBUG: counted per operation below.
  export RUST_LOG=warn,gitclaw_storage=debug
fi
start_gitclaw
if [ "$as_pushed" = 1 ]; then
  push_to_gitclaw "$repo" "$branch" no-gc
  echo "   GitClaw serves the repository as pushed (no gc)"
else
  push_to_gitclaw "$repo" "$branch"
  echo "   GitClaw serves the repository after gitclaw gc"
fi

if [ "$hold" = 1 ]; then
  echo "== serving (Ctrl-C ends)"
  echo "git http-backend: $ref_url"
  echo "GitClaw:          $claw_url   (pid $claw_pid, data $GITCLAW_DATA_DIR)"
  wait "$claw_pid"
  exit 0
fi

# The highest peak RSS of every GitClaw process the runs used (--fresh restarts it).
claw_hwm=0
note_claw_hwm() {
  local hwm
  hwm=$(awk '/VmHWM/ {print $2}' "/proc/$claw_pid/status" 2>/dev/null || echo 0)
  [ "${hwm:-0}" -le "$claw_hwm" ] || claw_hwm=$hwm
}
fresh_gitclaw() { # a new GitClaw process with empty local caches, same store and database
  note_claw_hwm
  kill "$claw_pid"; wait "$claw_pid" 2>/dev/null || true
  rm -rf "$GITCLAW_DATA_DIR"
  start_gitclaw
}

prep_behind() { # prep_behind N: a bare clone N commits behind on the default branch, at $work/behind-N
  local dir=$work/behind-$1
  rm -rf "$dir"
  # Not a local clone: that would hardlink every object of $repo and keep a partial
  # clone's "promisor" packs, which gc never prunes, so the client would already
  # hold the commits it is meant to fetch.
  git clone -q --bare --no-local --no-tags --single-branch --branch "$branch" "$repo" "$dir"
  # Only the default branch (no tags: another branch or tag may hold the new
  # commits), N commits back.
  git -C "$dir" update-ref "refs/heads/$branch" "$(git -C "$repo" rev-parse "$branch~$1")"
  git -C "$dir" gc -q --prune=now
}

# The operations, as functions of $URL (and of the server kind, for push).
full()           { git clone -q --bare "$URL" "$work/client"; }
# A client that asks for a bundle first (GitClaw offers its compacted pack; git
# http-backend, as configured here, none, so it is a full clone there).
full-bundle()    { git -c transfer.bundleURI=true clone -q --bare "$URL" "$work/client"; }
depth1()         { git clone -q --bare --depth 1 "$URL" "$work/client"; }
branch-depth1()  { git clone -q --bare --depth 1 --single-branch --branch "$other_branch" "$URL" "$work/client"; }
blob-none()      { git clone -q --bare --filter=blob:none "$URL" "$work/client"; }
tree0()          { git clone -q --bare --filter=tree:0 "$URL" "$work/client"; }
by-sha()         { git init -q --bare "$work/client" && git -C "$work/client" fetch -q --depth 1 "$URL" "$by_sha"; }
fetch-n()        { git -C "$work/client" fetch -q "$URL" "+refs/heads/*:refs/heads/*"; }
fetch-1()        { fetch-n; }
fetch-50()       { fetch-n; }
setup-fetch-1()  { cp -r "$work/behind-1" "$work/client"; }
setup-fetch-50() { cp -r "$work/behind-50" "$work/client"; }
shallow-since()  { git clone -q --bare --shallow-since="$since" "$URL" "$work/client"; }
push() {
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

describe() {
  case "$1" in
    full) echo "full clone" ;;
    full-bundle) echo "full clone, transfer.bundleURI=true" ;;
    depth1) echo "--depth 1 clone" ;;
    branch-depth1) echo "--depth 1 --single-branch $other_branch" ;;
    blob-none) echo "--filter=blob:none clone" ;;
    tree0) echo "--filter=tree:0 clone" ;;
    by-sha) echo "fetch --depth 1 of $branch~10 by SHA" ;;
    fetch-1) echo "fetch of 1 new commit" ;;
    fetch-50) echo "fetch of 50 new commits" ;;
    shallow-since) echo "--shallow-since ($branch~100)" ;;
    push) echo "push (new repository)" ;;
  esac
}

op() { # op SHAPE
  # The servers take turns, and which one goes first alternates, so a drift of
  # the machine (caches, clock, other load) weighs on both alike.
  # Once, untimed, git's answers are recorded; each round then also runs the
  # command against their instant replay (not for push, which changes the
  # repository): the client's own time, below which no server's can go.
  local ref_runs=() claw_runs=() floor_runs=() ref claw floor="" i
  if [ "$1" != push ]; then
    URL=$record_url run_once "$record_pid" "$1" >/dev/null || true
  fi
  instant() { [ "$1" = push ] || URL=$replay_url run_once "$replay_pid" "$1" || true; }
  for i in $(seq "$runs"); do
    if [ $((i % 2)) = 1 ]; then
      ref_runs+=("$(URL=$ref_url run_once "$ref_pid" "$1")")
      floor_runs+=("$(instant "$1")")
      [ "$fresh" = 0 ] || fresh_gitclaw
      claw_runs+=("$(URL=$claw_url run_once "$claw_pid" "$1")")
    else
      [ "$fresh" = 0 ] || fresh_gitclaw
      claw_runs+=("$(URL=$claw_url run_once "$claw_pid" "$1")")
      ref_runs+=("$(URL=$ref_url run_once "$ref_pid" "$1")")
      floor_runs+=("$(instant "$1")")
    fi
  done
  ref=$(summary "${ref_runs[@]}")
  claw=$(summary "${claw_runs[@]}")
  # Every instant run must have worked for the column to mean anything.
  if [ "$(printf '%s\n' "${floor_runs[@]}" | grep -c .)" = "$runs" ]; then
    floor=$(summary "${floor_runs[@]}" | cut -d' ' -f1)
  fi
  python3 - "$1" "$(describe "$1")" "$ref" "$claw" "$json" "$floor" <<'PY'
import json, sys
shape, label, json_file = sys.argv[1], sys.argv[2], sys.argv[5]
instant = float(sys.argv[6] or 0)
keys = ["wall", "server_cpu", "bytes", "s3_calls_first", "s3_calls", "wall_first", "server_cpu_first", "client_cpu", "client_cpu_first"]
r = dict(zip(keys, map(float, sys.argv[3].split())))
c = dict(zip(keys, map(float, sys.argv[4].split())))
def ratio(k): return f"{c[k] / r[k]:.2f}x" if r[k] else "-"
# The command against git's answers replayed at once, and what that is of git's
# wall: the lowest wall ratio any server sending those answers could reach.
instant_cell = f"{instant:.3f} s ({instant / r['wall']:.2f}x)" if instant and r["wall"] else "-"
s3 = f" | S3 requests {int(c['s3_calls_first'])} first, {int(c['s3_calls'])} median" if c["s3_calls_first"] or c["s3_calls"] else ""
print(f"| {label} | {r['wall']:.3f} / {c['wall']:.3f} s ({ratio('wall')}) | {r['wall_first']:.3f} / {c['wall_first']:.3f} s ({ratio('wall_first')})"
      f" | {r['server_cpu']:.2f} / {c['server_cpu']:.2f} s ({ratio('server_cpu')}) | {r['server_cpu_first']:.2f} / {c['server_cpu_first']:.2f} s ({ratio('server_cpu_first')})"
      f" | {r['client_cpu']:.2f} / {c['client_cpu']:.2f} s ({ratio('client_cpu')})"
      f" | {instant_cell}"
      f" | {int(r['bytes'])} / {int(c['bytes'])} ({ratio('bytes')}){s3} |", flush=True)
if json_file:
    with open(json_file, "a") as f:
        f.write(json.dumps({"shape": shape, "git_http_backend": r, "gitclaw": c, "instant_server_wall": instant}) + "\n")
PY
}

# What the shapes need.
by_sha=$(git -C "$repo" rev-parse "$branch~10")
since=$(git -C "$repo" log -1 --format=%cI "$branch~100" 2>/dev/null || git -C "$repo" log -1 --format=%cI "$branch")
for s in $shapes; do
  case "$s" in
    fetch-1) prep_behind 1 ;;
    fetch-50) prep_behind 50 ;;
  esac
done

echo
echo "== git http-backend / GitClaw (ratio = GitClaw / git), median of $runs runs, then the first run"
case "$cold$fresh" in
  00) echo "   (GitClaw answers a repeated identical clone from its response cache; the first run is the cold one)" ;;
  10) echo "   (GitClaw's response cache is off: every run is cold)" ;;
  *) echo "   (a fresh GitClaw instance with empty local caches for every run)" ;;
esac
echo "| operation | wall, median | wall, first run | server CPU, median | server CPU, first run | client CPU, median | instant server, median (x git's wall) | bytes |"
echo "|---|---|---|---|---|---|---|---|"
for s in $shapes; do
  if [ "$s" = branch-depth1 ] && [ -z "$other_branch" ]; then
    echo "| $(describe "$s") | (the repository has one branch) |"
    continue
  fi
  op "$s"
done

note_claw_hwm
echo
echo "== peak RSS"
echo "git http-backend (largest request): $(sort -n "$rsslog" | tail -1) KiB"
echo "GitClaw (whole process, all runs):   $claw_hwm KiB"
