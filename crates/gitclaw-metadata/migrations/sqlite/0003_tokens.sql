-- Access tokens: only a hash of the secret is stored.
CREATE TABLE tokens (
    id         TEXT    NOT NULL PRIMARY KEY,
    name       TEXT    NOT NULL,
    token_hash TEXT    NOT NULL UNIQUE,
    admin      INTEGER NOT NULL DEFAULT 0 CHECK (admin IN (0, 1)),
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE token_scopes (
    token_id TEXT NOT NULL REFERENCES tokens (id) ON DELETE CASCADE,
    repo_id  TEXT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    access   TEXT NOT NULL CHECK (access IN ('read', 'write')),
    PRIMARY KEY (token_id, repo_id)
) STRICT, WITHOUT ROWID;
