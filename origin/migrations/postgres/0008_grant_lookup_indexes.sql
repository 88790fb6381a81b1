-- Ending a user's or a client's grants (revoking a `sub` or `client_id`,
-- deleting a user) finds their refresh tokens and codes by these columns;
-- without an index each such revocation scanned both tables. Families are
-- found by `refresh_tokens_family` (0005); codes by session id here.
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_client ON refresh_tokens (client_id);
CREATE INDEX auth_codes_sid ON auth_codes (sid);
CREATE INDEX auth_codes_user ON auth_codes (user_id);
CREATE INDEX auth_codes_client ON auth_codes (client_id);
