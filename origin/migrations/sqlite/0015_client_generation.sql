-- The token path caches client registrations (issue 21.3): one counter,
-- bumped by the database itself in the same transaction as any change to a
-- `clients` row, whatever made it (the admin API, the CLI, another replica,
-- an operator's SQL). The issuing write of a token served from the cache
-- reads the counter in its own transaction and commits only if it is the
-- generation the cached record was read at (docs/security.md, "Client
-- cache"). SQLite triggers run per row.
CREATE TABLE client_generation (
    id BIGINT PRIMARY KEY NOT NULL CHECK (id = 1),
    n  BIGINT NOT NULL
);
INSERT INTO client_generation (id, n) VALUES (1, 0);

CREATE TRIGGER clients_generation_insert AFTER INSERT ON clients
BEGIN
    UPDATE client_generation SET n = n + 1 WHERE id = 1;
END;

CREATE TRIGGER clients_generation_update AFTER UPDATE ON clients
BEGIN
    UPDATE client_generation SET n = n + 1 WHERE id = 1;
END;

CREATE TRIGGER clients_generation_delete AFTER DELETE ON clients
BEGIN
    UPDATE client_generation SET n = n + 1 WHERE id = 1;
END;
