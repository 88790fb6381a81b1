-- `gatehouse-origin audit --jti J` (following an edge log line's jti to the
-- origin's rows) filtered audit_events by jti with no index, scanning the
-- whole table. Ordered by id within a jti like the listing (newest first).
-- The request-id filter has its index since 0013. One more index on every
-- audit insert (token issuance writes a row with its jti): the listing an
-- operator runs during an incident is worth it.
CREATE INDEX audit_events_jti ON audit_events (jti, id);
