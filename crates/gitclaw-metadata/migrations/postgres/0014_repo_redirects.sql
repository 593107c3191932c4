-- Names a repository had before it was renamed or moved to another owner:
-- git URLs with the old name keep leading to it until a repository takes the
-- name. Looked up in any letter case, as repository names are.
CREATE TABLE repo_redirects (
    owner      TEXT NOT NULL,
    name       TEXT NOT NULL,
    repo_id    TEXT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX repo_redirects_by_name ON repo_redirects (lower(owner), lower(name));
CREATE INDEX repo_redirects_by_repo ON repo_redirects (repo_id);
