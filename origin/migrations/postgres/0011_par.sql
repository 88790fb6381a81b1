-- Pushed authorization requests (RFC 9126): the parameters a client pushed
-- to /par, as the form string the origin re-validates at /authorize. The
-- request_uri's random part is stored only as its SHA-256 (base64url).
-- `expires_at` starts at push + 60 s; the first /authorize that opens the
-- request (`opened_at`) extends it once, for the login and consent round
-- trip; approving deletes the row (single use).
CREATE TABLE pushed_requests (
    handle_hash TEXT PRIMARY KEY NOT NULL,
    client_id   TEXT NOT NULL,
    params      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    opened_at   BIGINT
);
CREATE INDEX pushed_requests_expires ON pushed_requests (expires_at);
-- RFC 9126 §6: this client's authorization requests must be pushed.
ALTER TABLE clients ADD COLUMN require_pushed_authorization_requests BIGINT NOT NULL DEFAULT 0;
