-- GitClaw metadata, SQLite flavour. Keep in step with ../postgres/0001_init.sql:
-- same tables, columns and constraints; only the types differ.
--
-- Notes on SQLite specifics:
-- * STRICT tables, so a wrong type is an error instead of a silent conversion.
-- * `private` is an INTEGER 0/1: sqlx's `Any` driver cannot read columns
--   declared BOOLEAN on SQLite.
-- * Text compares with BINARY collation: names are case-sensitive and sort
--   bytewise, the order Git expects for refs.
-- * Timestamps are unix seconds.

CREATE TABLE repositories (
    id         TEXT    NOT NULL PRIMARY KEY,
    owner      TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    private    INTEGER NOT NULL DEFAULT 0 CHECK (private IN (0, 1)),
    head_ref   TEXT    NOT NULL DEFAULT 'refs/heads/main',
    state      TEXT    NOT NULL DEFAULT 'active',
    created_at INTEGER NOT NULL,
    UNIQUE (owner, name)
) STRICT;

CREATE TABLE refs (
    repo_id TEXT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    name    TEXT NOT NULL,
    oid     TEXT NOT NULL CHECK (length(oid) = 40),
    PRIMARY KEY (repo_id, name)
) STRICT, WITHOUT ROWID;

CREATE TABLE packs (
    repo_id      TEXT    NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    pack_hash    TEXT    NOT NULL CHECK (length(pack_hash) = 40),
    object_count INTEGER NOT NULL CHECK (object_count >= 0),
    pack_bytes   INTEGER NOT NULL CHECK (pack_bytes >= 0),
    index_bytes  INTEGER NOT NULL CHECK (index_bytes >= 0),
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (repo_id, pack_hash)
) STRICT, WITHOUT ROWID;

CREATE TABLE loose_objects (
    repo_id     TEXT    NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    oid         TEXT    NOT NULL CHECK (length(oid) = 40),
    object_type TEXT    NOT NULL CHECK (object_type IN ('commit', 'tree', 'blob', 'tag')),
    size        INTEGER NOT NULL CHECK (size >= 0),
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (repo_id, oid)
) STRICT, WITHOUT ROWID;

-- No foreign key on repo_id: events outlive the repository they describe.
CREATE TABLE audit_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    repo_id    TEXT,
    owner      TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    action     TEXT    NOT NULL,
    actor      TEXT    NOT NULL,
    details    TEXT    NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL
) STRICT;

CREATE INDEX audit_events_by_repo ON audit_events (repo_id, id);
