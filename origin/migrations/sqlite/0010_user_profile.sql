-- OpenID Connect profile claims served at /userinfo (OIDC Core §5.1):
-- `name` (profile scope), `email` and `email_verified` (email scope),
-- `updated_at` (profile scope; set at creation and on every profile
-- change). `preferred_username` is `username`. Booleans are 0/1.
ALTER TABLE users ADD COLUMN name TEXT;
ALTER TABLE users ADD COLUMN email TEXT;
ALTER TABLE users ADD COLUMN email_verified BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;
UPDATE users SET updated_at = created_at;
