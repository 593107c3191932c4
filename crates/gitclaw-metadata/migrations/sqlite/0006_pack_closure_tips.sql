-- The tips themselves, so a clone of tips that moved on since can still start
-- from the pack and walk only what is new.
CREATE TABLE pack_closure_tips (
    repo_id   TEXT NOT NULL,
    pack_hash TEXT NOT NULL,
    oid       TEXT NOT NULL CHECK (length(oid) = 40),
    PRIMARY KEY (repo_id, pack_hash, oid),
    FOREIGN KEY (repo_id, pack_hash) REFERENCES packs (repo_id, pack_hash) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
