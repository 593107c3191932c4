"""One network operation by a Git client other than C git, for tests/other_clients.rs.

    drive.py CLIENT OP ARGS...

CLIENT is `libgit2` (through pygit2) or `dulwich-v0` / `dulwich-v2` (dulwich on
protocol version 0 or 2). OP is one of

    clone URL DEST DEPTH BRANCH [FILTER]
                                  DEPTH 0 for all history, BRANCH `-` for the
                                  default; with FILTER (dulwich only) a bare
                                  partial clone
    fetch REPO DEPTH              from the clone's origin; DEPTH 0 keeps the
                                  shallow boundary, -1 unshallows
    push REPO URL REFSPEC...      `src:dst`, `:dst` deletes, `+src:dst` forces;
                                  dulwich takes `--atomic` and `--push-option=X`
                                  among them
    fetch-sha DEST URL SHA DEPTH  a new bare repository fetching one commit by
                                  its id into `refs/commit/SHA`, as Cargo
                                  fetches a git dependency's `rev`

It prints one JSON object: {"ok": true, ...} with what the client reported
(the refs a fetch saw, each pushed ref's result: null for ok, else the
server's reason), or {"ok": false, "error": "..."} when the client raised.
Local work (commits, inspecting the result) is left to C git. With
`DRIVE_TOKEN` set, the client answers the server's `401` with it as the
HTTP Basic password.
"""

import io
import json
import os
import sys

TOKEN = os.environ.get("DRIVE_TOKEN")


def libgit2(op, args):
    import pygit2

    class Callbacks(pygit2.RemoteCallbacks):
        def __init__(self):
            super().__init__()
            self.results = {}

        def credentials(self, url, username_from_url, allowed_types):
            if TOKEN is None:
                raise pygit2.GitError("the server asks for credentials")
            return pygit2.UserPass("token", TOKEN)

        def push_update_reference(self, refname, message):
            self.results[refname] = message

    if op == "clone":
        url, dest, depth, branch = args
        pygit2.clone_repository(
            url,
            dest,
            depth=int(depth),
            checkout_branch=None if branch == "-" else branch,
            callbacks=Callbacks(),
        )
        return {}
    if op == "fetch":
        repo, depth = args
        depth = int(depth)
        remote = pygit2.Repository(repo).remotes["origin"]
        # GIT_FETCH_DEPTH_UNSHALLOW
        stats = remote.fetch(
            depth=2147483647 if depth < 0 else depth, callbacks=Callbacks()
        )
        return {"received": stats.received_objects > 0}
    if op == "push":
        repo, url, *specs = args
        callbacks = Callbacks()
        pygit2.Repository(repo).remotes.create_anonymous(url).push(
            specs, callbacks=callbacks
        )
        return {"refs": callbacks.results}
    if op == "fetch-sha":
        dest, url, sha, depth = args
        remote = pygit2.init_repository(dest, bare=True).remotes.create_anonymous(url)
        remote.fetch([f"+{sha}:refs/commit/{sha}"], depth=int(depth), callbacks=Callbacks())
        return {}
    raise SystemExit(f"unknown operation {op}")


def dulwich(version, op, args):
    from dulwich import porcelain
    from dulwich.client import get_transport_and_path
    from dulwich.repo import Repo

    quiet = io.BytesIO()
    auth = {} if TOKEN is None else {"username": "token", "password": TOKEN}
    if op == "clone":
        url, dest, depth, branch, *spec = args
        porcelain.clone(
            url,
            dest,
            bare=bool(spec),
            depth=int(depth) or None,
            branch=None if branch == "-" else branch,
            filter_spec=spec[0] if spec else None,
            protocol_version=version,
            errstream=quiet,
            **auth,
        ).close()
        return {}
    if op == "fetch":
        path, depth = args
        depth = int(depth)
        with Repo(path) as repo:
            url = repo.get_config().get((b"remote", b"origin"), b"url").decode()
            client, remote_path = get_transport_and_path(url, **auth)
            kwargs = {"protocol_version": version}
            if depth > 0:
                kwargs["depth"] = depth

                # dulwich's own wants fail to deepen a ref naming a tag it
                # has ("'Tag' object has no attribute 'parents'", with any
                # server): deepen the branches only.
                def branches(refs, depth=None):
                    heads = {n: s for n, s in refs.items() if n.startswith(b"refs/heads/")}
                    return repo.object_store.determine_wants_all(heads, depth=depth)

                kwargs["determine_wants"] = branches
            elif depth < 0:
                # What `git fetch --unshallow` asks for.
                kwargs["depth"] = 2147483647
            result = client.fetch(remote_path.encode(), repo, **kwargs)
            # Keep what was fetched reachable, as a real fetch's remote-tracking refs do.
            for name, sha in result.refs.items():
                if name.startswith(b"refs/heads/") and sha:
                    repo.refs[b"refs/remotes/origin/" + name[len(b"refs/heads/") :]] = sha
                elif name.startswith(b"refs/tags/") and not name.endswith(b"^{}") and sha:
                    repo.refs[name] = sha
            seen = sorted(
                name.decode() for name in result.refs if not name.endswith(b"^{}")
            )
        return {"refs": seen}
    if op == "push":
        path, url, *specs = args
        options = [s[len("--push-option=") :] for s in specs if s.startswith("--push-option=")]
        result = porcelain.push(
            path,
            url,
            [s.encode() for s in specs if not s.startswith("--")],
            errstream=quiet,
            outstream=quiet,
            atomic="--atomic" in specs,
            push_options=options or None,
            **auth,
        )
        return {
            "refs": {
                name.decode(): None if error is None else str(error)
                for name, error in (result.ref_status or {}).items()
            }
        }
    if op == "fetch-sha":
        dest, url, sha, depth = args
        with Repo.init_bare(dest, mkdir=True) as repo:
            client, remote_path = get_transport_and_path(url, **auth)
            client.fetch(
                remote_path.encode(),
                repo,
                determine_wants=lambda refs, depth=None: [sha.encode()],
                depth=int(depth) or None,
                protocol_version=version,
            )
            repo.refs[f"refs/commit/{sha}".encode()] = sha.encode()
        return {}
    raise SystemExit(f"unknown operation {op}")


def main():
    client, op, *args = sys.argv[1:]
    try:
        if client == "libgit2":
            out = libgit2(op, args)
        elif client in ("dulwich-v0", "dulwich-v2"):
            out = dulwich(int(client[-1]), op, args)
        else:
            raise SystemExit(f"unknown client {client}")
        out["ok"] = True
    except Exception as err:  # the test compares failures too
        out = {"ok": False, "error": f"{type(err).__name__}: {err}"}
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
