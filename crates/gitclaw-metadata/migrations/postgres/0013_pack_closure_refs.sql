-- The refs a closure pack was taken of, by name: what the bundle a client may
-- download instead of cloning (protocol v2 `bundle-uri`) lists, so its header
-- never changes while the pack is stored.
CREATE TABLE pack_closure_refs (
    repo_id   TEXT NOT NULL,
    pack_hash TEXT NOT NULL,
    name      TEXT NOT NULL,
    oid       TEXT NOT NULL CHECK (length(oid) = 40),
    PRIMARY KEY (repo_id, pack_hash, name),
    FOREIGN KEY (repo_id, pack_hash) REFERENCES packs (repo_id, pack_hash) ON DELETE CASCADE
);
