-- Store keys that a push is about to record ('upload') or that a sweep or a
-- failed push is about to delete ('delete'). Each row is a lease: past
-- `expires_at` it no longer counts (its holder died). A key is deleted only
-- while no other lease names it and no row records it, and uploaded only
-- while no deletion of it is under way.
CREATE TABLE store_claims (
    repo_id    TEXT   NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    object_key TEXT   COLLATE "C" NOT NULL,
    claim_id   TEXT   NOT NULL,
    purpose    TEXT   NOT NULL CHECK (purpose IN ('upload', 'delete')),
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (repo_id, object_key, claim_id)
);

CREATE INDEX store_claims_by_claim ON store_claims (claim_id);
