-- Gatehouse origin schema (PostgreSQL). Times are Unix seconds; booleans are 0/1;
-- lists are JSON arrays of strings. Keep in step with ../sqlite/0001_init.sql.

CREATE TABLE clients (
    client_id                  TEXT PRIMARY KEY NOT NULL,
    name                       TEXT NOT NULL,
    is_public                  BIGINT NOT NULL,
    secret_hash                BYTEA,
    previous_secret_hash       BYTEA,
    previous_secret_expires_at BIGINT,
    redirect_uris              TEXT NOT NULL,
    grant_types                TEXT NOT NULL,
    scopes                     TEXT NOT NULL,
    audiences                  TEXT NOT NULL,
    dpop_required              BIGINT NOT NULL,
    created_at                 BIGINT NOT NULL,
    updated_at                 BIGINT NOT NULL
);

CREATE TABLE signing_keys (
    kid          TEXT PRIMARY KEY NOT NULL,
    alg          TEXT NOT NULL,
    private_key  BYTEA NOT NULL,
    created_at   BIGINT NOT NULL,
    published_at BIGINT NOT NULL,
    active_at    BIGINT NOT NULL,
    retired_at   BIGINT,
    removed_at   BIGINT
);

CREATE TABLE revocations (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind       TEXT NOT NULL,
    value      TEXT NOT NULL,
    revoked_at BIGINT NOT NULL,
    drop_after BIGINT NOT NULL,
    reason     TEXT NOT NULL,
    UNIQUE (kind, value)
);

CREATE TABLE outbox (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic        TEXT NOT NULL,
    payload      TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    delivered_at BIGINT
);

CREATE TABLE audit_events (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at        BIGINT NOT NULL,
    event     TEXT NOT NULL,
    client_id TEXT,
    subject   TEXT,
    jti       TEXT,
    source_ip TEXT,
    detail    TEXT
);
CREATE INDEX audit_events_at ON audit_events (at);

CREATE TABLE dpop_jtis (
    jti        TEXT PRIMARY KEY NOT NULL,
    expires_at BIGINT NOT NULL
);
