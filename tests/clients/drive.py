"""One network operation by a Git client other than C git, for tests/other_clients.rs.

    drive.py CLIENT OP ARGS...

CLIENT is `libgit2` (through pygit2) or `dulwich-v0` / `dulwich-v2` (dulwich on
protocol version 0 or 2). OP is one of

    clone URL DEST DEPTH BRANCH   DEPTH 0 for all history, BRANCH `-` for the default
    fetch REPO DEPTH              from the clone's origin; DEPTH 0 keeps the
                                  shallow boundary, -1 unshallows
    push REPO URL REFSPEC...      `src:dst`, `:dst` deletes, `+src:dst` forces

It prints one JSON object: {"ok": true, ...} with what the client reported
(the refs a fetch saw, each pushed ref's result: null for ok, else the
server's reason), or {"ok": false, "error": "..."} when the client raised.
Local work (commits, inspecting the result) is left to C git.
"""

import io
import json
import sys


def libgit2(op, args):
    import pygit2

    if op == "clone":
        url, dest, depth, branch = args
        pygit2.clone_repository(
            url,
            dest,
            depth=int(depth),
            checkout_branch=None if branch == "-" else branch,
        )
        return {}
    if op == "fetch":
        repo, depth = args
        depth = int(depth)
        remote = pygit2.Repository(repo).remotes["origin"]
        # GIT_FETCH_DEPTH_UNSHALLOW
        stats = remote.fetch(depth=2147483647 if depth < 0 else depth)
        return {"received": stats.received_objects > 0}
    if op == "push":
        repo, url, *specs = args
        results = {}

        class Report(pygit2.RemoteCallbacks):
            def push_update_reference(self, refname, message):
                results[refname] = message

        pygit2.Repository(repo).remotes.create_anonymous(url).push(
            specs, callbacks=Report()
        )
        return {"refs": results}
    raise SystemExit(f"unknown operation {op}")


def dulwich(version, op, args):
    from dulwich import porcelain
    from dulwich.client import get_transport_and_path
    from dulwich.repo import Repo

    quiet = io.BytesIO()
    if op == "clone":
        url, dest, depth, branch = args
        porcelain.clone(
            url,
            dest,
            depth=int(depth) or None,
            branch=None if branch == "-" else branch,
            protocol_version=version,
            errstream=quiet,
        ).close()
        return {}
    if op == "fetch":
        path, depth = args
        depth = int(depth)
        with Repo(path) as repo:
            url = repo.get_config().get((b"remote", b"origin"), b"url").decode()
            client, remote_path = get_transport_and_path(url)
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
        result = porcelain.push(
            path, url, [s.encode() for s in specs], errstream=quiet, outstream=quiet
        )
        return {
            "refs": {
                name.decode(): None if error is None else str(error)
                for name, error in (result.ref_status or {}).items()
            }
        }
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
