-- The audit trail (auth::audit): one row per mutation or denied attempt, from every replica.
CREATE TABLE IF NOT EXISTS audit_log (
    seq         BIGSERIAL PRIMARY KEY,
    replica     TEXT        NOT NULL,
    local_id    BIGINT      NOT NULL,
    at          TIMESTAMPTZ NOT NULL,
    principal   TEXT        NOT NULL,
    groups      TEXT[]      NOT NULL,
    action      TEXT        NOT NULL,
    target      TEXT        NOT NULL,
    decision    TEXT        NOT NULL,
    result      TEXT        NOT NULL,
    message     TEXT,
    request_id  TEXT,
    UNIQUE (replica, local_id)
);
CREATE INDEX IF NOT EXISTS audit_log_at ON audit_log (at DESC);
