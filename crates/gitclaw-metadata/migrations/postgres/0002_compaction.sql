-- Keys replaced by compaction, deleted from the object store once their grace
-- period is over (clones in flight may still read them until then).
CREATE TABLE pending_deletions (
    repo_id      TEXT   NOT NULL COLLATE "C",
    object_key   TEXT   NOT NULL COLLATE "C",
    delete_after BIGINT NOT NULL,
    PRIMARY KEY (repo_id, object_key)
);

CREATE INDEX pending_deletions_due ON pending_deletions (delete_after);
