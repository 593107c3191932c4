-- Git LFS. Keep in step with ../postgres/0011_lfs.sql.
--
-- lfs_objects: the LFS objects a repository has, recorded only once the store
-- holds the content under `{repo_id}/lfs/…` with this size (and, for bytes a
-- client wrote straight to the store, this SHA-256). A row is what makes an
-- object downloadable; a stored key without one is not there.
CREATE TABLE lfs_objects (
    repo_id    TEXT    NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    oid        TEXT    NOT NULL CHECK (length(oid) = 64),
    size       INTEGER NOT NULL CHECK (size >= 0),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (repo_id, oid)
) STRICT, WITHOUT ROWID;

-- lfs_locks: one lock per path of a repository (the unique key decides a race
-- between two creators). `owner_id` identifies who holds it (compared to tell
-- "ours" from "theirs"); `owner_name` is what clients are shown.
CREATE TABLE lfs_locks (
    id         TEXT    NOT NULL PRIMARY KEY,
    repo_id    TEXT    NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    path       TEXT    NOT NULL,
    owner_id   TEXT    NOT NULL,
    owner_name TEXT    NOT NULL,
    locked_at  INTEGER NOT NULL,
    UNIQUE (repo_id, path)
) STRICT;

CREATE INDEX lfs_locks_by_repo ON lfs_locks (repo_id, id);
