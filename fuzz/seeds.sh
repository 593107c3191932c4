#!/usr/bin/env bash
# Seed the fuzz corpora with real git traffic: real git clients clone, fetch
# (v0 and v2, shallow in every form, partial, incremental) and push (creations,
# deletions, force, --atomic, push options, thin packs) against `git
# http-backend`, through a recorder that keeps every request body
# (record_traffic.py), and `git pack-objects` writes packs of every shape.
# Usage: fuzz/seeds.sh [CORPUS_DIR] (default fuzz/corpus)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
corpus=$(realpath -m "${1:-$here/corpus}")
mkdir -p "$corpus"
work=$(mktemp -d /tmp/gitclaw-seeds.XXXXXX)
recorder=""
trap '[ -n "$recorder" ] && kill $recorder 2>/dev/null; rm -rf "$work"' EXIT

export GIT_AUTHOR_NAME=A GIT_AUTHOR_EMAIL=a@example.com GIT_COMMITTER_NAME=C GIT_COMMITTER_EMAIL=c@example.com
export GIT_CONFIG_NOSYSTEM=1 HOME=$work
git config --global init.defaultBranch main
git config --global protocol.allow always
t=1700000000
tick() { t=$((t + 3600)); export GIT_AUTHOR_DATE="@$t +0000" GIT_COMMITTER_DATE="@$t +0000"; }

src=$work/src
git init -q "$src"
cd "$src"
for i in $(seq 1 12); do
  tick
  printf 'line %s\n' $(seq 1 $((i * 7))) > grow.txt
  echo "file $i" > "f$((i % 4)).txt"
  mkdir -p "dir$((i % 3))/sub"; echo "$i" > "dir$((i % 3))/sub/n.txt"
  git add -A; git commit -q -m "commit $i"
  [ "$i" = 4 ] && git tag light && git tag -a v1 -m "tag one"
  [ "$i" = 6 ] && git checkout -q -b side && echo side > side.txt && git add side.txt && tick && git commit -q -m side && git checkout -q main
done
tick; git merge -q --no-edit side
ln -s grow.txt link; chmod +x f1.txt; git add -A; tick; git commit -q -m "link and mode"

mkdir -p "$work/root"
git clone -q --bare "$src" "$work/root/repo.git"
git -C "$work/root/repo.git" config http.receivepack true
git -C "$work/root/repo.git" config receive.advertisePushOptions true
git -C "$work/root/repo.git" config uploadpack.allowFilter true
git -C "$work/root/repo.git" config uploadpack.allowAnySHA1InWant true

python3 "$here/record_traffic.py" "$work/root" "$corpus" "$work/port" & recorder=$!
for _ in $(seq 50); do [ -s "$work/port" ] && break; sleep 0.1; done
url=http://127.0.0.1:$(cat "$work/port")/repo.git
cd "$work"
for v in 0 2; do
  git -c protocol.version=$v clone -q "$url" "full$v"
  git -c protocol.version=$v clone -q --depth 1 "$url" "shallow$v"
  git -C "shallow$v" -c protocol.version=$v fetch -q --deepen 2
  git -c protocol.version=$v clone -q --shallow-since="@$((t - 20000))" "$url" "since$v"
  git -c protocol.version=$v clone -q --shallow-exclude=v1 "$url" "exclude$v"
  git -c protocol.version=$v clone -q --filter=blob:none "$url" "blobless$v"
  git -c protocol.version=$v clone -q --filter=tree:0 --no-checkout "$url" "treeless$v"
  git -c protocol.version=$v clone -q --filter=blob:limit=64 "$url" "limited$v"
  git -c protocol.version=$v clone -q --single-branch -b side "$url" "single$v"
done
git -C full2 -c protocol.version=2 fetch -q origin "$(git -C "$src" rev-parse main~3)"
# Incremental fetches and pushes: haves, thin packs, every kind of ref update.
git clone -q "$url" pusher
cd pusher
for i in 1 2 3; do tick; echo "push $i" >> grow.txt; git commit -q -am "push $i"; git push -q origin main; done
git push -q origin main:refs/heads/new HEAD~1:refs/heads/other
git push -q -o ci.skip -o "note=with space" origin HEAD:refs/heads/opts
git push -q --atomic origin HEAD:refs/heads/a1 HEAD~1:refs/heads/a2
tick; git commit -q --amend -m amended; git push -q -f origin HEAD:main
git push -q origin :refs/heads/other
git tag -a v2 -m two; git push -q origin v2
cd "$work"
git -C full0 -c protocol.version=0 fetch -q origin
git -C full2 -c protocol.version=2 fetch -q origin
git -C shallow2 -c protocol.version=2 fetch -q --unshallow origin
kill $recorder; recorder=""

# Packs as git writes them: whole, with deltas, thin against a base.
mkdir -p "$corpus/pack_ingest"
cd "$src"
git rev-list --objects --all | git pack-objects -q --stdout > "$corpus/pack_ingest/all"
printf 'main\n^main~3\n' | git pack-objects -q --stdout --thin --revs > "$corpus/pack_ingest/thin"
printf 'main\n' | git pack-objects -q --stdout --revs --no-reuse-delta --depth=3 --window=50 > "$corpus/pack_ingest/deep"
printf 'main~6\n' | git -c pack.compression=0 pack-objects -q --stdout --revs > "$corpus/pack_ingest/uncompressed"
for d in "$corpus"/*/; do echo "$(basename "$d"): $(ls "$d" | wc -l) seeds"; done
