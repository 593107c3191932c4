-- Tokens that expire and record their last use; `admin` as a third
-- per-repository access level (it may delete the repository); `owner/name`
-- unique regardless of letter case.

ALTER TABLE tokens ADD COLUMN expires_at INTEGER;
ALTER TABLE tokens ADD COLUMN last_used_at INTEGER;

-- SQLite cannot change a CHECK constraint in place: rebuild the table.
CREATE TABLE token_scopes_new (
    token_id TEXT NOT NULL REFERENCES tokens (id) ON DELETE CASCADE,
    repo_id  TEXT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    access   TEXT NOT NULL CHECK (access IN ('read', 'write', 'admin')),
    PRIMARY KEY (token_id, repo_id)
) STRICT, WITHOUT ROWID;
INSERT INTO token_scopes_new (token_id, repo_id, access)
    SELECT token_id, repo_id, access FROM token_scopes;
DROP TABLE token_scopes;
ALTER TABLE token_scopes_new RENAME TO token_scopes;

-- Names that differ only in letter case cannot both stay. Rather than pick one
-- and lose the other's data, stop here with a message saying what to do (the
-- migration then rolls back as a whole and nothing changes).
CREATE TEMP TABLE case_duplicates_check (x INTEGER);
CREATE TEMP TRIGGER case_duplicates_guard BEFORE INSERT ON case_duplicates_check
WHEN EXISTS (
    SELECT 1 FROM main.repositories
    GROUP BY lower(owner), lower(name) HAVING count(*) > 1
)
BEGIN
    SELECT RAISE(ABORT, 'repositories whose OWNER/NAME differ only in letter case exist; rename or delete all but one of each (SELECT owner, name FROM repositories ORDER BY lower(owner), lower(name)), then start again');
END;
INSERT INTO case_duplicates_check (x) VALUES (1);
DROP TRIGGER case_duplicates_guard;
DROP TABLE case_duplicates_check;

CREATE UNIQUE INDEX repositories_owner_name_nocase
    ON repositories (lower(owner), lower(name));
