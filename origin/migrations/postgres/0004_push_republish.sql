-- The kid that signed the last delivered document: when the signer changes
-- (rotation), the pusher re-signs and re-publishes even with nothing pending.
ALTER TABLE revocation_push ADD COLUMN signed_kid TEXT;
