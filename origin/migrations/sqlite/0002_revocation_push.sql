-- The revocation pusher's state: one row. `version` is the last version
-- assigned to a built document (strictly increasing, also across replicas:
-- it is only bumped by UPDATE inside a transaction); `delivered_version` the
-- newest the edge acknowledged. Outbox rows record the version that carried them.

CREATE TABLE revocation_push (
    id                BIGINT PRIMARY KEY NOT NULL,
    version           BIGINT NOT NULL,
    delivered_version BIGINT NOT NULL,
    delivered_at      BIGINT,
    last_attempt_at   BIGINT,
    last_error        TEXT,
    failures          BIGINT NOT NULL
);
INSERT INTO revocation_push (id, version, delivered_version, failures) VALUES (1, 0, 0, 0);

ALTER TABLE outbox ADD COLUMN version BIGINT;
CREATE INDEX outbox_pending ON outbox (delivered_at, id);
