-- Moving objects out of the legacy `repo_objects` table (one row per object,
-- kept by earlier versions) into the object store: `gitclaw migrate`.
--
-- repo_migration_status: one row per repository a migration has touched.
-- `lease_until` is the running migration's lease (renewed while it runs; a
-- killed run's lease lapses and another run may take over).
CREATE TABLE repo_migration_status (
    repo_id           TEXT   NOT NULL PRIMARY KEY REFERENCES repositories (id) ON DELETE CASCADE,
    state             TEXT   NOT NULL CHECK (state IN ('pending', 'in_progress', 'migrated', 'failed')),
    objects_total     INTEGER NOT NULL DEFAULT 0,
    objects_copied    INTEGER NOT NULL DEFAULT 0,
    bytes_copied      INTEGER NOT NULL DEFAULT 0,
    corrupt_rows      INTEGER NOT NULL DEFAULT 0,
    batches_in_flight INTEGER NOT NULL DEFAULT 0,
    lease_until       INTEGER NOT NULL DEFAULT 0,
    started_at        INTEGER,
    updated_at        INTEGER NOT NULL,
    finished_at       INTEGER,
    verified_at       INTEGER,
    source_dropped_at INTEGER,
    last_error        TEXT
);

-- Each legacy row a migration has dealt with: 'copied' (in the store, its
-- SHA-1 checked, recorded in the same transaction as the pack or loose object
-- holding it) or 'corrupt' (no reading of its bytes hashes to its oid; never
-- written to the store).
CREATE TABLE object_migration_log (
    repo_id    TEXT   NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    oid        TEXT   NOT NULL CHECK (length(oid) = 40),
    outcome    TEXT   NOT NULL CHECK (outcome IN ('copied', 'corrupt')),
    bytes      INTEGER NOT NULL,
    pack_hash  TEXT,
    detail     TEXT,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (repo_id, oid)
);
