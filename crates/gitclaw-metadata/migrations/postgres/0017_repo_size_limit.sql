-- A repository's own size limit in bytes, over the server's
-- GITCLAW_MAX_REPO_BYTES; NULL: the server's; 0: none.
ALTER TABLE repositories ADD COLUMN max_bytes BIGINT;
