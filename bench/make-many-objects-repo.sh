#!/usr/bin/env bash
# Generate a benchmark repository with many objects and a small tip, with real
# git: BATCHES commits each adding a directory of FILES small distinct files
# (100 subdirectories) and removing the one added KEEP commits earlier, then 60
# commits editing a few files of the tip. About BATCHES × (FILES + 102) objects
# in all (the default: 2.5M, a pack index of about 70 MB), of which the tip
# holds KEEP × FILES blobs: a history far larger than its checkout, where a
# shallow clone or a small fetch needs a sliver of the pack and of its index.
# Usage: bench/make-many-objects-repo.sh DIR [BATCHES [FILES [KEEP]]]
set -euo pipefail
dir=${1:?usage: make-many-objects-repo.sh DIR [BATCHES [FILES [KEEP]]]}
batches=${2:-250}
files=${3:-10000}
keep=${4:-4}
mkdir -p "$dir"
git -C "$dir" init -q -b main
python3 - "$batches" "$files" "$keep" <<'PY' | git -C "$dir" fast-import --quiet
import sys
batches, nfiles, keep = (int(a) for a in sys.argv[1:4])
out = sys.stdout.buffer
def data(b):
    out.write(f"data {len(b)}\n".encode()); out.write(b); out.write(b"\n")
t, mark = 1600000000, 0
def commit(message, ops):
    global t, mark
    t += 600
    mark += 1
    out.write(b"commit refs/heads/main\n")
    out.write(f"mark :{mark}\n".encode())
    out.write(f"author A U Thor <author@example.com> {t} +0000\n".encode())
    out.write(f"committer C O Mitter <committer@example.com> {t} +0000\n".encode())
    data(message.encode())
    if mark > 1:
        out.write(f"from :{mark - 1}\n".encode())
    ops()
for b in range(batches):
    def ops():
        for f in range(nfiles):
            out.write(f"M 100644 inline batch-{b}/part-{f % 100}/item-{f}.txt\n".encode())
            data(f"batch {b} item {f}\n".encode())
        if b >= keep:
            out.write(f"D batch-{b - keep}\n".encode())
    commit(f"batch {b}\n", ops)
    if b % 50 == 49:
        out.write(f"reset refs/heads/batch-{b + 1}\nfrom :{mark}\n\n".encode())
first = batches - keep if batches > keep else 0
for e in range(60):
    def ops():
        for k in range(3):
            f = (e * 37 + k * 1009) % nfiles
            out.write(f"M 100644 inline batch-{first}/part-{f % 100}/item-{f}.txt\n".encode())
            data(f"batch {first} item {f}, edit {e}\n".encode())
    commit(f"edit {e}\n", ops)
PY
git -C "$dir" gc -q
