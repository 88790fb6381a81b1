-- RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): the exact
-- URIs a client may be sent back to after logout (JSON list, like
-- `redirect_uris`; none registered: logout never redirects to it).
ALTER TABLE clients ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '[]';

-- Offline access (OpenID Connect Core §11): a grant approved with
-- `offline_access` outlives the browser session it came from (logout does
-- not revoke it; only its absolute lifetime, the operator or the client's
-- own revocation end it). Grants from before were all online.
ALTER TABLE grant_sessions ADD COLUMN offline BIGINT NOT NULL DEFAULT 0;
