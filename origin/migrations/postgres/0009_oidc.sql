-- OpenID Connect sessions. A browser session gains a public, random `sid`
-- (neither the cookie value nor its hash: it may appear in id_tokens and
-- logout requests), the time the user authenticated (`auth_time`) and how
-- (`amr`, space-separated, e.g. `pwd`). Sessions from before had none of
-- these: they are dropped (their users sign in again).
DROP TABLE sessions;
CREATE TABLE sessions (
    id_hash    TEXT PRIMARY KEY NOT NULL,
    sid        TEXT NOT NULL UNIQUE,
    user_id    TEXT NOT NULL,
    auth_time  BIGINT NOT NULL,
    amr        TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

-- A code carries the session it was approved in and what the id_token
-- needs (NULL for codes from before this migration and never for new ones):
-- the session's `sid`, `auth_time`, `amr`, and the request's `nonce`.
ALTER TABLE auth_codes ADD COLUMN session_sid TEXT;
ALTER TABLE auth_codes ADD COLUMN auth_time BIGINT;
ALTER TABLE auth_codes ADD COLUMN amr TEXT;
ALTER TABLE auth_codes ADD COLUMN nonce TEXT;
CREATE INDEX auth_codes_session ON auth_codes (session_sid);

-- The browser session each grant (refresh family / access token `sid`)
-- came from, written when its code is redeemed: logout finds a session's
-- grants here, and a refresh of an `openid` family re-issues id_tokens
-- with the same `sid`, `auth_time` and `amr`. Kept until the grant can no
-- longer be used (`expires_at`).
CREATE TABLE grant_sessions (
    family_id   TEXT PRIMARY KEY NOT NULL,
    session_sid TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    client_id   TEXT NOT NULL,
    auth_time   BIGINT NOT NULL,
    amr         TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX grant_sessions_session ON grant_sessions (session_sid);
CREATE INDEX grant_sessions_user ON grant_sessions (user_id);
