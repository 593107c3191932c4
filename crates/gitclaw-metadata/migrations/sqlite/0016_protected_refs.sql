-- Protected refs: rules a push must keep to for the refs a pattern names
-- (no force-push, no deletion, unless the rule allows it). Booleans are
-- INTEGER 0/1, as in 0001.
CREATE TABLE protected_refs (
    id               TEXT PRIMARY KEY,
    repo_id          TEXT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    -- A full ref name; `*` stands for any run of characters but `/`, `**` for any.
    pattern          TEXT NOT NULL,
    allow_force_push INTEGER NOT NULL CHECK (allow_force_push IN (0, 1)),
    allow_deletion   INTEGER NOT NULL CHECK (allow_deletion IN (0, 1)),
    created_at       INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX protected_refs_by_pattern ON protected_refs (repo_id, pattern);
