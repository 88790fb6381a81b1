-- private_key_jwt (RFC 7523): a client's registered public keys (a JWK set
-- as JSON). A client with a JWKS authenticates only with signed assertions.
ALTER TABLE clients ADD COLUMN jwks TEXT;
