-- Webhooks: a URL told of a repository's events (push), and the deliveries
-- owed to it. A push's deliveries are written in the push's own transaction
-- (an outbox), so a delivery exists exactly when the push committed, and
-- survives a restart until it is delivered or given up.
CREATE TABLE webhooks (
    id         TEXT PRIMARY KEY,
    repo_id    TEXT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    url        TEXT NOT NULL,
    -- The HMAC key the body is signed with; empty: unsigned.
    secret     TEXT NOT NULL,
    -- Comma-separated event names.
    events     TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX webhooks_by_repo ON webhooks (repo_id);

CREATE TABLE webhook_deliveries (
    -- In the order deliveries were queued.
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    hook_id         TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event           TEXT NOT NULL,
    payload         TEXT NOT NULL,
    -- pending, delivered or failed.
    status          TEXT NOT NULL,
    attempts        BIGINT NOT NULL,
    -- When a pending delivery is due; a claimed one's lease runs to it.
    next_attempt_at BIGINT NOT NULL,
    last_status     BIGINT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    finished_at     BIGINT
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_by_hook ON webhook_deliveries (hook_id, id);
