-- The token path caches client registrations (issue 21.3): one counter,
-- bumped by the database itself in the same transaction as any change to
-- `clients` rows, whatever made it (the admin API, the CLI, another
-- replica, an operator's SQL, a TRUNCATE). The issuing write of a token
-- served from the cache reads the counter in its own transaction and
-- commits only if it is the generation the cached record was read at
-- (docs/security.md, "Client cache"). One bump per statement: the counter
-- only has to change, not count rows. The counter bumped is the one in
-- the schema of the `clients` that changed (TG_TABLE_SCHEMA), not the first
-- the writer's search_path finds: an operator's `UPDATE other.clients`
-- from a session on another path must move `other`'s counter.
CREATE TABLE client_generation (
    id BIGINT PRIMARY KEY NOT NULL CHECK (id = 1),
    n  BIGINT NOT NULL
);
INSERT INTO client_generation (id, n) VALUES (1, 0);

CREATE FUNCTION bump_client_generation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('UPDATE %I.client_generation SET n = n + 1 WHERE id = 1', TG_TABLE_SCHEMA);
    RETURN NULL;
END
$$;

CREATE TRIGGER clients_generation
AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON clients
FOR EACH STATEMENT EXECUTE FUNCTION bump_client_generation();
