#!/usr/bin/env bash
# Generate a benchmark repository with real git: COMMITS commits over a tree of
# FILES (default 300) source-like files in nested directories, each commit editing
# a few files (so history has realistic deltas), a branch every 500 commits and a
# tag every 250.
# Usage: bench/make-large-repo.sh DIR [COMMITS [FILES]]
set -euo pipefail
dir=${1:?usage: make-large-repo.sh DIR [COMMITS [FILES]]}
commits=${2:-3000}
files=${3:-300}
mkdir -p "$dir"
git -C "$dir" init -q -b main
python3 - "$commits" "$files" <<'PY' | git -C "$dir" fast-import --quiet
import random, sys
commits, nfiles = int(sys.argv[1]), int(sys.argv[2])
rng = random.Random(7)
words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau".split()
files = {}
for i in range(nfiles):
    path = f"src/{words[i % 19]}/{words[(i // 19) % 19]}/mod_{i}.rs"
    lines = [f"fn f_{i}_{j}() -> u32 {{ {rng.randrange(1000)} }} // {' '.join(rng.choices(words, k=6))}" for j in range(rng.randrange(20, 200))]
    files[path] = lines
out = sys.stdout.buffer
def data(b):
    out.write(f"data {len(b)}\n".encode()); out.write(b); out.write(b"\n")
t = 1600000000
for c in range(1, commits + 1):
    t += 600
    out.write(b"commit refs/heads/main\n")
    out.write(f"mark :{c}\n".encode())
    out.write(f"author A U Thor <author@example.com> {t} +0000\n".encode())
    out.write(f"committer C O Mitter <committer@example.com> {t} +0000\n".encode())
    data(f"change {c}: {' '.join(rng.choices(words, k=5))}\n".encode())
    if c > 1:
        out.write(f"from :{c-1}\n".encode())
    touched = rng.sample(sorted(files), k=rng.randrange(1, 6)) if c > 1 else sorted(files)
    for path in touched:
        lines = files[path]
        for _ in range(rng.randrange(1, 6)):
            k = rng.randrange(len(lines) + 1)
            if rng.random() < 0.7:
                lines.insert(k, f"fn g_{c}_{k}() -> u32 {{ {rng.randrange(1000)} }} // {' '.join(rng.choices(words, k=4))}")
            elif lines:
                del lines[min(k, len(lines) - 1)]
        out.write(f"M 100644 inline {path}\n".encode())
        data(("\n".join(lines) + "\n").encode())
    if c % 250 == 0:
        out.write(f"tag v{c // 250}.0\nfrom :{c}\ntagger T <t@example.com> {t} +0000\n".encode())
        data(f"release {c // 250}\n".encode())
    if c % 500 == 0:
        out.write(f"reset refs/heads/branch-{c // 500}\nfrom :{c}\n\n".encode())
PY
git -C "$dir" checkout -q main
git -C "$dir" gc -q --aggressive --prune=now 2>/dev/null || git -C "$dir" gc -q
