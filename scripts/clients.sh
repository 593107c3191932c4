#!/usr/bin/env bash
# Git clients other than C git, for tests/other_clients.rs: libgit2 (through
# pygit2's wheel, which bundles it) and dulwich, pinned, in a Python virtual
# environment installed once from PyPI into $GITCLAW_TOOLS.
#
#   scripts/clients.sh   install when missing; prints GITCLAW_TEST_CLIENTS_PYTHON
set -euo pipefail

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
