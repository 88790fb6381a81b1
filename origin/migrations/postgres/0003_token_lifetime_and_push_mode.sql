-- `max_token_ttl`: the longest access-token lifetime any replica was ever
-- configured with. sid/sub/client_id revocations must cover every token
-- issued before them, so their `until` is based on it, not on the current
-- (possibly lowered) GATEHOUSE_ACCESS_TOKEN_TTL.
-- `mode`: the push mode of the process whose pusher last ran (for
-- `revocations status` run from a CLI with another configuration).
-- `published_at`: when a document was last delivered (periodic re-publish).
ALTER TABLE revocation_push ADD COLUMN max_token_ttl BIGINT NOT NULL DEFAULT 0;
ALTER TABLE revocation_push ADD COLUMN mode TEXT;
