-- Tokens that expire and record their last use; `admin` as a third
-- per-repository access level (it may delete the repository); `owner/name`
-- unique regardless of letter case.

ALTER TABLE tokens
    ADD COLUMN expires_at BIGINT,
    ADD COLUMN last_used_at BIGINT;

ALTER TABLE token_scopes DROP CONSTRAINT token_scopes_access_check;
ALTER TABLE token_scopes ADD CONSTRAINT token_scopes_access_check
    CHECK (access IN ('read', 'write', 'admin'));

-- Names that differ only in letter case cannot both stay. Rather than pick one
-- and lose the other's data, stop here with a message saying what to do (the
-- migration then rolls back as a whole and nothing changes).
DO $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM repositories
        GROUP BY lower(owner), lower(name) HAVING count(*) > 1
    ) THEN
        RAISE EXCEPTION 'repositories whose OWNER/NAME differ only in letter case exist; rename or delete all but one of each (SELECT owner, name FROM repositories ORDER BY lower(owner), lower(name)), then start again';
    END IF;
END
$$;

CREATE UNIQUE INDEX repositories_owner_name_nocase
    ON repositories (lower(owner), lower(name));
