-- What the objects tag refs point to peel to (the object itself when it is not
-- an annotated tag), so the ref advertisement needs only the database. Keyed by
-- object id: what a tag object peels to never changes.
CREATE TABLE peeled_refs (
    repo_id TEXT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    oid     TEXT NOT NULL CHECK (length(oid) = 40),
    peeled  TEXT NOT NULL CHECK (length(peeled) = 40),
    PRIMARY KEY (repo_id, oid)
);
