-- The audiences (resource-server URIs) a client serves: it may introspect
-- tokens for them and exchange tokens whose audience they are (the
-- requesting client must be an audience of the subject token).
ALTER TABLE clients ADD COLUMN serves TEXT NOT NULL DEFAULT '[]';
-- private_key_jwt compatibility: also accept the token endpoint URL as the
-- assertion's audience (draft-ietf-oauth-rfc7523bis wants the issuer only).
ALTER TABLE clients ADD COLUMN legacy_assertion_audience BIGINT NOT NULL DEFAULT 0;
