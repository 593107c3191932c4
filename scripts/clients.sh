#!/usr/bin/env bash
# Git clients other than C git, for tests/other_clients.rs: libgit2 (through
# pygit2's wheel, which bundles it) and dulwich, pinned, in a Python virtual
# environment installed once from PyPI into $GITCLAW_TOOLS; and go-git
# (Debian's golang-github-go-git-go-git-dev, built with Debian's Go into a
# small driver, tests/clients/gogit, again whenever that changes).
#
#   scripts/clients.sh   install when missing; prints GITCLAW_TEST_CLIENTS_PYTHON
#                        and GITCLAW_TEST_GO_GIT
set -euo pipefail
cd "$(dirname "$0")/.."

PYGIT2_VERSION=1.21.0
DULWICH_VERSION=1.2.21
tools=${GITCLAW_TOOLS:-$HOME/.cache/gitclaw-tools}
venv=$tools/clients-py
stamp=$venv/installed-$PYGIT2_VERSION-$DULWICH_VERSION

if [ ! -f "$stamp" ]; then
  echo "== installing pygit2 $PYGIT2_VERSION and dulwich $DULWICH_VERSION into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check \
    "pygit2==$PYGIT2_VERSION" "dulwich==$DULWICH_VERSION" >&2
  "$venv/bin/python" -c 'import pygit2, dulwich' >&2
  touch "$stamp"
fi
echo "export GITCLAW_TEST_CLIENTS_PYTHON=$venv/bin/python"

# go-git as Debian ships it: GOPATH mode, offline. Debian lays go-git out
# without the `/v5` its import paths carry, so a scratch GOPATH adds it.
gocode=/usr/share/gocode/src
source=tests/clients/gogit/main.go
driver=$tools/clients-go/drive-go-git-$(sha256sum "$source" | cut -c1-16)
if [ ! -x "$driver" ]; then
  echo "== building the go-git driver into $driver" >&2
  gopath=$(mktemp -d)
  mkdir -p "$gopath/src/gitclawdrive" "$gopath/src/github.com/go-git/go-git" "$(dirname "$driver")"
  cp "$source" "$gopath/src/gitclawdrive/"
  [ -d "$gocode/github.com/go-git/go-git/v5" ] ||
    ln -s "$gocode/github.com/go-git/go-git" "$gopath/src/github.com/go-git/go-git/v5"
  (cd "$gopath/src/gitclawdrive" &&
    GO111MODULE=off GOPATH="$gopath:/usr/share/gocode" GOCACHE="$tools/clients-go/cache" \
      go build -o "$driver.tmp" . >&2)
  mv "$driver.tmp" "$driver"
  rm -rf "$gopath"
fi
echo "export GITCLAW_TEST_GO_GIT=$driver"
