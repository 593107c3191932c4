#!/usr/bin/env bash
# Archive downloads against C git's own `git archive`: GitClaw (release build,
# filesystem + SQLite, the repository pushed and compacted) answering
# `GET …/archive/main.tar` and `.tar.gz` with curl, side by side with
# `git archive --format=tar|tar.gz main` run in a repacked bare copy of the same
# repository (what a host that shells out to git would do, without the HTTP).
# Interleaved runs; reports the median and first-run wall time, GitClaw's server
# CPU against git archive's own CPU, the bytes of each, and the ratios. Both
# produce the same tar bytes (the tests check it); gzip and zip output may
# differ in their deflated bytes.
#
# GitClaw keeps an archive it made in its response cache, so every run after
# the first of a format is a cached one; the first-run column is the archive
# made. With --cold the cache is off and every run makes it.
#
# Usage: bench/archive.sh [--repo PATH] [--commits N] [--runs N] [--cold]
#   --repo PATH    an existing repository (default: bench/make-large-repo.sh's)
#   --commits N    size of the generated repository (default 3000)
#   --runs N       runs of each (default 7)
#   --cold         GitClaw without its response cache: every run makes the archive
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

repo="" commits=3000 runs=7 cold=0
while [ $# -gt 0 ]; do
  case "$1" in
    --cold) cold=1; shift ;;
    --repo) repo=$2; shift 2 ;;
    --commits) commits=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
command -v bc >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq bc >/dev/null; }

cargo build --release --quiet --bin gitclaw
gitclaw=$root/target/release/gitclaw
if [ -z "$repo" ]; then
  repo=$work/src
  bash "$root/bench/make-large-repo.sh" "$repo" "$commits"
fi
serve_copy "$repo"
bare=$work/served/bench.git
branch=$(git -C "$bare" symbolic-ref --short HEAD)

export GITCLAW_DATA_DIR=$work/gitclaw-data
unset DATABASE_URL S3_BUCKET
[ "$cold" = 0 ] || export GITCLAW_RESPONSE_CACHE_BYTES=0
start_gitclaw
push_to_gitclaw "$repo" "$branch"
api=${claw_url%/bench/bench.git}/api/v1/repos/bench/bench/archive

files=$(git -C "$bare" ls-tree -r "$branch" | wc -l)
echo "repository: $objects objects, pack $packsize KiB; archive of $branch: $files files"

git_archive() { git -C "$bare" archive --format="$1" --prefix=bench/ "$branch" > "$work/out"; }
claw_archive() { curl -fsS -o "$work/out" "$api/$branch.$1?prefix=bench/"; }

# One run: "wall cpu bytes", cpu being the server's (GitClaw) or git archive's own.
time_git() {
  local t0 t1 k0 k1 me=$BASHPID
  k0=$(awk '{print $16+$17}' "/proc/$me/stat"); t0=$(date +%s.%N)
  git_archive "$1"
  t1=$(date +%s.%N); k1=$(awk '{print $16+$17}' "/proc/$me/stat")
  echo "$(echo "$t1 - $t0" | bc) $(echo "scale=3; ($k1 - $k0) / $hz" | bc) $(stat -c %s "$work/out")"
}
time_claw() {
  local t0 t1 c0 c1
  c0=$(settled_cpu "$claw_pid"); t0=$(date +%s.%N)
  claw_archive "$1"
  t1=$(date +%s.%N); c1=$(settled_cpu "$claw_pid")
  echo "$(echo "$t1 - $t0" | bc) $(echo "scale=3; ($c1 - $c0) / $hz" | bc) $(stat -c %s "$work/out")"
}

median() { # median first of "wall cpu bytes" lines, then the first run's wall
  printf '%s\n' "$@" | python3 -c '
import sys
runs = [[float(x) for x in line.split()] for line in sys.stdin if line.strip()]
med = lambda k: sorted(r[k] for r in runs)[(len(runs) - 1) // 2]
print(med(0), med(1), int(med(2)), runs[0][0])'
}

printf '\n| format | wall, git archive / GitClaw (median) | first run | CPU, git / GitClaw server | bytes, git / GitClaw |\n|---|---|---|---|---|\n'
for format in tar tar.gz zip; do
  gits=() claws=()
  for _ in $(seq "$runs"); do
    gits+=("$(time_git "$format")")
    claws+=("$(time_claw "$format")")
  done
  read -r gw gc gb g1 <<<"$(median "${gits[@]}")"
  read -r cw cc cb c1 <<<"$(median "${claws[@]}")"
  ratio() { if [ "$(echo "$1 > 0" | bc)" = 1 ]; then echo "scale=2; $2 / $1" | bc; else echo "-"; fi; }
  printf '| %s | %.3f / %.3f s (%s×) | %.3f / %.3f s | %.2f / %.2f s (%s×) | %s / %s |\n' \
    "$format" "$gw" "$cw" "$(ratio "$gw" "$cw")" "$g1" "$c1" "$gc" "$cc" "$(ratio "$gc" "$cc")" "$gb" "$cb"
done
rss=$(awk '/VmHWM/ {print $2}' "/proc/$claw_pid/status")
echo
echo "GitClaw peak RSS: $((rss / 1024)) MiB"
