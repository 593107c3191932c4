#!/usr/bin/env bash
# How fast `gitclaw migrate` moves a repository out of the legacy
# `repo_objects` table into the object store: objects/s, MB/s, object-store
# requests per 1,000 objects and peak RSS of the copy, then the time of the
# compaction that follows.
#
# Usage: bench/migrate.sh [--repo PATH] [--commits N] [--encoding E] [-- MIGRATE-ARGS…]
#   --repo PATH    migrate a copy of this git repository (default: a generated one)
#   --commits N    size of the generated repository (default 3000, ~42k objects)
#   --encoding E   how the legacy rows hold objects: raw (default), zlib, header, mixed
#   -- ARGS        passed to `gitclaw migrate` (e.g. --batch-size 20000 --concurrency 2)
# Runs against the PostgreSQL and S3 named by DATABASE_URL and S3_* when S3_BUCKET is
# set, else a throw-away Garage and PostgreSQL on loopback.
# Needs: git, python3, psql, /usr/bin/time.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

repo="" commits=3000 encoding=raw extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --repo) repo=$2; shift 2 ;;
    --commits) commits=$2; shift 2 ;;
    --encoding) encoding=$2; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -x /usr/bin/time ] || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }

work=$(mktemp -d /tmp/gitclaw-migrate-bench.XXXXXX)
own_garage="" own_pg=""
cleanup() {
  [ -z "$own_garage" ] || "$root/scripts/garage.sh" stop "$own_garage"
  [ -z "$own_pg" ] || "$root/scripts/postgres.sh" stop "$own_pg"
  rm -rf "$work"
}
trap cleanup EXIT
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
. "$root/bench/lib.sh"

echo "== building gitclaw (release)"
cargo build --release --quiet --bin gitclaw
gitclaw=$root/target/release/gitclaw

services_unless_named migrate
export GITCLAW_DATA_DIR=$work/data

if [ -z "$repo" ]; then
  echo "== generating a repository with $commits commits"
  repo=$work/src
  bash "$root/bench/make-large-repo.sh" "$repo" "$commits"
fi
"$gitclaw" check >/dev/null   # creates GitClaw's schema
name="bench/legacy$(date +%s)"
echo "== loading it into the legacy table as $name ($encoding)"
t0=$(date +%s.%N)
"$root/fixtures/make-legacy-repo.sh" "$repo" "$name" --encoding "$encoding" >/dev/null
t1=$(date +%s.%N)
rows=$(git -C "$repo" cat-file --batch-all-objects --batch-check | wc -l)
bytes=$(git -C "$repo" cat-file --batch-all-objects --batch-check='%(objectsize)' | awk '{s+=$1} END {printf "%.0f", s}')
echo "   $rows objects, $((bytes / 1048576)) MiB inflated, loaded in $(echo "$t1 - $t0" | bc) s"

echo "== gitclaw migrate --repo $name --no-gc ${extra[*]}"
# Every S3 call is logged at DEBUG: counted below.
RUST_LOG=warn,gitclaw_storage=debug /usr/bin/time -f "%e %M" -o "$work/time" \
  "$gitclaw" migrate --repo "$name" --no-gc "${extra[@]}" >"$work/out" 2>"$work/err"
cat "$work/out"
read -r wall rss_kib < "$work/time"
calls=$(grep -c -E 'S3 call|S3 key not found' "$work/err" || true)
echo "== gitclaw gc $name"
/usr/bin/time -f "%e %M" -o "$work/gc-time" "$gitclaw" gc "$name" >/dev/null 2>&1
read -r gc_wall gc_rss_kib < "$work/gc-time"

python3 - "$rows" "$bytes" "$wall" "$rss_kib" "$calls" "$gc_wall" "$gc_rss_kib" <<'PY'
import sys
rows, size, wall, rss, calls, gc_wall, gc_rss = (float(x) for x in sys.argv[1:])
print()
print(f"copy:    {rows:.0f} objects in {wall:.2f} s = {rows / wall:,.0f} objects/s, "
      f"{size / wall / 1e6:.1f} MB/s, {calls:.0f} store requests ({calls / rows * 1000:.2f} per 1,000 objects), "
      f"peak RSS {rss / 1024:.0f} MiB")
print(f"gc:      {gc_wall:.2f} s, peak RSS {gc_rss / 1024:.0f} MiB")
PY
