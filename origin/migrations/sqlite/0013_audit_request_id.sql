-- The request an audit row came from (`X-Request-Id`), filled by the
-- request-id work; NULL for rows written before it or outside a request
-- (CLI commands). The audit listing filters on it and on the event kind.
ALTER TABLE audit_events ADD COLUMN request_id TEXT;
CREATE INDEX audit_events_request_id ON audit_events (request_id);
CREATE INDEX audit_events_event ON audit_events (event, id);
