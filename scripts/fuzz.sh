#!/usr/bin/env bash
# Fuzz every parser that reads client or store bytes (the targets in fuzz/) with
# libFuzzer, each for SECONDS (default 60), from seed corpora of real git traffic
# (fuzz/seeds.sh, made on the first run) plus what earlier runs found.
#
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
#   SECONDS   how long each target runs (CI's smoke: 20)
#   TARGET    only these (default: every target, see `cargo +nightly fuzz list` in fuzz/)
# Environment: FUZZ_RUNS   stop each target after this many executions instead (the
#                          long run: FUZZ_RUNS=1000000)
#              FUZZ_BUILD  release (default: optimized, for long runs) or dev (builds
#                          in a fraction of the time, with overflow checks: CI's smoke)
#
# Limits, from the server's promise that no input makes it hold memory in
# proportion to a number the client wrote: no single allocation above 256 MiB,
# no more than 2 GiB resident (ASan's shadow and quarantine included), no input
# taking more than 10 s. A crash, leak, timeout or out-of-memory stops the
# target, leaves the input in fuzz/artifacts/TARGET/ and makes this script fail.
# Needs the nightly toolchain and cargo-fuzz (installed into ~/.cache/gitclaw-tools
# when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
seconds=${1:-60}
shift || true
tools=${GITCLAW_TOOLS:-$HOME/.cache/gitclaw-tools}
export PATH="$tools/bin:$PATH"

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "== installing cargo-fuzz into $tools (once)" >&2
  cargo install cargo-fuzz --locked --root "$tools" >&2
fi

cd fuzz
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo +nightly fuzz list)
if [ ! -d corpus/pktline ]; then
  echo "== recording real git traffic for the seed corpora" >&2
  bash seeds.sh "$root/fuzz/corpus" >&2
fi
profile=()
[ "${FUZZ_BUILD:-release}" = dev ] && profile=(--dev)
echo "== building ${#targets[@]} fuzz targets (${FUZZ_BUILD:-release})" >&2
cargo +nightly fuzz build "${profile[@]}" >&2

limits=(-rss_limit_mb=2048 -malloc_limit_mb=256 -timeout=10 -max_len=262144 -print_final_stats=1)
if [ -n "${FUZZ_RUNS:-}" ]; then limits+=(-runs="$FUZZ_RUNS"); else limits+=(-max_total_time="$seconds"); fi
failed=()
summary=()
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target" "artifacts/$target"
  log=$(mktemp /tmp/gitclaw-fuzz-"$target".XXXXXX)
  echo "== $target" >&2
  if cargo +nightly fuzz run "${profile[@]}" "$target" "corpus/$target" -- \
      "${limits[@]}" -artifact_prefix="artifacts/$target/" >"$log" 2>&1; then
    status=ok
  else
    status=FAILED
    failed+=("$target")
    tail -40 "$log" >&2
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | awk '{s+=$2} END {print s+0}')
  rss=$(grep -o 'stat::peak_rss_mb: *[0-9]*' "$log" | awk '{if ($2>m) m=$2} END {print m+0}')
  summary+=("$(printf '%-24s %-7s %12s runs  peak RSS %5s MiB  corpus %s' "$target" "$status" "$runs" "$rss" "$(ls "corpus/$target" | wc -l)")")
  rm -f "$log"
done
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzing found problems in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
  exit 1
fi
