-- Protected refs: rules a push must keep to for the refs a pattern names
-- (no force-push, no deletion, unless the rule allows it).
CREATE TABLE protected_refs (
    id               TEXT PRIMARY KEY,
    repo_id          TEXT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    -- A full ref name; `*` stands for any run of characters but `/`, `**` for any.
    pattern          TEXT NOT NULL,
    allow_force_push BOOLEAN NOT NULL,
    allow_deletion   BOOLEAN NOT NULL,
    created_at       BIGINT NOT NULL
);
CREATE UNIQUE INDEX protected_refs_by_pattern ON protected_refs (repo_id, pattern);
