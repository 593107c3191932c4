-- GitClaw metadata, PostgreSQL flavour. Keep in step with ../sqlite/0001_init.sql:
-- same tables, columns and constraints; only the types differ.
--
-- Notes on PostgreSQL specifics:
-- * Names use COLLATE "C": case-sensitive, bytewise order, the same as
--   SQLite's BINARY and the order Git expects for refs, whatever the
--   database's default locale is.
-- * Timestamps are unix seconds (BIGINT), as on SQLite.

CREATE TABLE repositories (
    id         TEXT    NOT NULL PRIMARY KEY,
    owner      TEXT    COLLATE "C" NOT NULL,
    name       TEXT    COLLATE "C" NOT NULL,
    private    BOOLEAN NOT NULL DEFAULT FALSE,
    head_ref   TEXT    COLLATE "C" NOT NULL DEFAULT 'refs/heads/main',
    state      TEXT    NOT NULL DEFAULT 'active',
    created_at BIGINT  NOT NULL,
    UNIQUE (owner, name)
);

CREATE TABLE refs (
    repo_id TEXT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    name    TEXT COLLATE "C" NOT NULL,
    oid     TEXT NOT NULL CHECK (length(oid) = 40),
    PRIMARY KEY (repo_id, name)
);

CREATE TABLE packs (
    repo_id      TEXT   NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    pack_hash    TEXT   COLLATE "C" NOT NULL CHECK (length(pack_hash) = 40),
    object_count BIGINT NOT NULL CHECK (object_count >= 0),
    pack_bytes   BIGINT NOT NULL CHECK (pack_bytes >= 0),
    index_bytes  BIGINT NOT NULL CHECK (index_bytes >= 0),
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (repo_id, pack_hash)
);

CREATE TABLE loose_objects (
    repo_id     TEXT   NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    oid         TEXT   COLLATE "C" NOT NULL CHECK (length(oid) = 40),
    object_type TEXT   NOT NULL CHECK (object_type IN ('commit', 'tree', 'blob', 'tag')),
    size        BIGINT NOT NULL CHECK (size >= 0),
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (repo_id, oid)
);

-- No foreign key on repo_id: events outlive the repository they describe.
CREATE TABLE audit_events (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    repo_id    TEXT,
    owner      TEXT   NOT NULL,
    name       TEXT   NOT NULL,
    action     TEXT   NOT NULL,
    actor      TEXT   NOT NULL,
    details    TEXT   NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL
);

CREATE INDEX audit_events_by_repo ON audit_events (repo_id, id);
