//! `GET /openapi.json`: an OpenAPI 3.1 description of every endpoint,
//! written out by hand next to the router (a test checks they agree).

use crate::domain::state::AppState;
use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

/// Every documented (path, method), for the router-coverage test.
pub const OPERATIONS: [(&str, &str); 24] = [
    ("/token", "post"),
    ("/authorize", "get"),
    ("/authorize/login", "post"),
    ("/authorize/consent", "post"),
    ("/introspect", "post"),
    ("/revoke", "post"),
    ("/.well-known/jwks.json", "get"),
    ("/.well-known/oauth-authorization-server", "get"),
    ("/openapi.json", "get"),
    ("/metrics", "get"),
    ("/healthz", "get"),
    ("/readyz", "get"),
    ("/admin/clients", "get"),
    ("/admin/clients", "post"),
    ("/admin/clients/{client_id}", "get"),
    ("/admin/clients/{client_id}", "delete"),
    ("/admin/clients/{client_id}/rotate-secret", "post"),
    ("/admin/keys", "get"),
    ("/admin/keys/rotate", "post"),
    ("/admin/keys/{kid}/retire", "post"),
    ("/admin/revocations", "get"),
    ("/admin/revocations", "post"),
    ("/admin/revocations/status", "get"),
    ("/admin/audit", "get"),
];

fn oauth_error() -> Value {
    json!({"description": "RFC 6749 §5.2 error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OAuthError"}}}})
}

fn form(props: Value, required: &[&str]) -> Value {
    json!({"required": true, "content": {"application/x-www-form-urlencoded": {"schema": {"type": "object", "properties": props, "required": required}}}})
}

fn ok_json(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"type": "object"}}}})
}

fn admin(summary: &str, ok: &str) -> Value {
    json!({"summary": summary, "tags": ["admin"], "security": [{"adminToken": []}],
           "responses": {"200": ok_json(ok), "401": oauth_error(), "404": oauth_error()}})
}

/// The document.
pub async fn document(State(state): State<AppState>) -> Json<Value> {
    Json(build(&state.config.issuer))
}

/// Builds the document for `issuer`.
#[must_use]
pub fn build(issuer: &str) -> Value {
    let client_auth = json!([{"clientSecretBasic": []}, {"clientSecretPost": []}]);
    let client_id_param = json!([{"name": "client_id", "in": "path", "required": true, "schema": {"type": "string"}}]);
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Gatehouse origin", "version": env!("CARGO_PKG_VERSION"),
                 "description": "OAuth 2.1 authorization server: token issuance, discovery, introspection, revocation, administration."},
        "servers": [{"url": issuer}],
        "paths": {
            "/token": {"post": {
                "summary": "Token endpoint (RFC 6749 §3.2; authorization_code with PKCE, refresh_token with rotation, client_credentials; DPoP per RFC 9449 §5)",
                "security": client_auth,
                "parameters": [{"name": "DPoP", "in": "header", "required": false, "schema": {"type": "string"}, "description": "DPoP proof JWT"}],
                "requestBody": form(json!({"grant_type": {"type": "string", "enum": ["authorization_code", "refresh_token", "client_credentials", "urn:ietf:params:oauth:grant-type:token-exchange"]}, "scope": {"type": "string"},
                    "subject_token": {"type": "string"}, "subject_token_type": {"type": "string"}, "actor_token": {"type": "string"}, "actor_token_type": {"type": "string"}, "requested_token_type": {"type": "string"},
                    "code": {"type": "string"}, "redirect_uri": {"type": "string"}, "code_verifier": {"type": "string"}, "refresh_token": {"type": "string"},
                    "audience": {"type": "string"}, "resource": {"type": "string"}, "client_id": {"type": "string"}, "client_secret": {"type": "string"}}), &["grant_type"]),
                "responses": {"200": {"description": "Access token (Cache-Control: no-store)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TokenResponse"}}}},
                    "400": oauth_error(), "401": oauth_error(), "413": oauth_error(), "415": oauth_error(), "429": oauth_error()}}},
            "/authorize": {"get": {
                "summary": "Authorization endpoint (OAuth 2.1 §4.1.1): response_type=code, PKCE S256 required; login and consent pages; redirects with code, state and iss (RFC 9207)",
                "parameters": [{"name": "response_type", "in": "query", "required": true, "schema": {"type": "string", "enum": ["code"]}},
                    {"name": "client_id", "in": "query", "required": true, "schema": {"type": "string"}},
                    {"name": "redirect_uri", "in": "query", "required": false, "schema": {"type": "string"}},
                    {"name": "scope", "in": "query", "required": false, "schema": {"type": "string"}},
                    {"name": "state", "in": "query", "required": false, "schema": {"type": "string"}},
                    {"name": "code_challenge", "in": "query", "required": true, "schema": {"type": "string"}},
                    {"name": "code_challenge_method", "in": "query", "required": true, "schema": {"type": "string", "enum": ["S256"]}},
                    {"name": "dpop_jkt", "in": "query", "required": false, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "Login or consent page", "content": {"text/html": {"schema": {"type": "string"}}}},
                    "303": {"description": "Redirect to the client with code or error"}, "400": {"description": "Error page (untrusted redirect)"}}}},
            "/authorize/login": {"post": {"summary": "Login form (CSRF-protected)",
                "requestBody": form(json!({"request": {"type": "string"}, "csrf": {"type": "string"}, "username": {"type": "string"}, "password": {"type": "string"}}), &["request", "csrf"]),
                "responses": {"303": {"description": "Back to /authorize with a session cookie"}, "401": {"description": "Login page with an error"}, "400": {"description": "Error page"}}}},
            "/authorize/consent": {"post": {"summary": "Consent form (CSRF-protected)",
                "requestBody": form(json!({"request": {"type": "string"}, "csrf": {"type": "string"}, "decision": {"type": "string", "enum": ["approve", "deny"]}}), &["request", "csrf", "decision"]),
                "responses": {"303": {"description": "Redirect to the client with code or access_denied"}, "400": {"description": "Error page"}}}},
            "/introspect": {"post": {
                "summary": "Token introspection (RFC 7662)", "security": client_auth,
                "requestBody": form(json!({"token": {"type": "string"}, "token_type_hint": {"type": "string"}}), &["token"]),
                "responses": {"200": ok_json("{active: false} or the token's claims"), "400": oauth_error(), "401": oauth_error()}}},
            "/revoke": {"post": {
                "summary": "Token revocation (RFC 7009); 200 for unknown tokens", "security": client_auth,
                "requestBody": form(json!({"token": {"type": "string"}, "token_type_hint": {"type": "string"}}), &["token"]),
                "responses": {"200": {"description": "Revoked, or nothing to revoke"}, "400": oauth_error(), "401": oauth_error()}}},
            "/.well-known/jwks.json": {"get": {"summary": "Published signing keys (RFC 7517)", "responses": {"200": ok_json("JWK set")}}},
            "/.well-known/oauth-authorization-server": {"get": {"summary": "Authorization server metadata (RFC 8414)", "responses": {"200": ok_json("Metadata")}}},
            "/openapi.json": {"get": {"summary": "This document", "responses": {"200": ok_json("OpenAPI document")}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "Text exposition format", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
            "/healthz": {"get": {"summary": "Liveness", "responses": {"200": {"description": "ok", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
            "/readyz": {"get": {"summary": "Readiness: the database answers and a signing key is loaded", "responses": {
                "200": {"description": "ready", "content": {"application/json": {"schema": {"type": "object", "properties": {"status": {"const": "ready"}}}}}},
                "503": {"description": "not ready", "content": {"application/json": {"schema": {"type": "object", "properties": {"status": {"const": "not_ready"}, "reason": {"enum": ["database_unavailable", "no_signing_key"]}}}}}}}}},
            "/admin/clients": {
                "get": admin("List clients", "{clients: [...]}"),
                "post": {"summary": "Register a client; the secret is shown once", "tags": ["admin"], "security": [{"adminToken": []}],
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CreateClient"}}}},
                    "responses": {"201": ok_json("The client with client_secret"), "400": oauth_error(), "401": oauth_error(), "415": oauth_error()}}},
            "/admin/clients/{client_id}": {
                "parameters": client_id_param,
                "get": admin("Show a client", "The client"),
                "delete": admin("Delete a client", "{deleted}")},
            "/admin/clients/{client_id}/rotate-secret": {
                "parameters": client_id_param,
                "post": admin("New secret; the old one works for the grace period (?grace=seconds)", "{client_id, client_secret, previous_secret_expires_at}")},
            "/admin/keys": {"get": admin("Signing keys and their schedule", "{keys: [...]}")},
            "/admin/keys/rotate": {"post": admin("Publish a new key now; it signs after the publish lead (?immediate=true: at once)", "The new key")},
            "/admin/keys/{kid}/retire": {
                "parameters": [{"name": "kid", "in": "path", "required": true, "schema": {"type": "string"}}],
                "post": admin("Retire a key: it never signs again (a new key signs at once if it was the signer); ?now=true also unpublishes it, so every token it signed dies (after a leak)", "{kid, retired_at, removed_at, created, warning}")},
            "/admin/revocations": {
                "get": admin("Revocations in force", "{revocations: [...]}"),
                "post": {"summary": "Revoke by jti, sid, sub or client_id", "tags": ["admin"], "security": [{"adminToken": []}],
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["kind", "value"],
                        "properties": {"kind": {"type": "string", "enum": ["jti", "sid", "sub", "client_id"]}, "value": {"type": "string"}}}}}},
                    "responses": {"201": ok_json("The revocation"), "400": oauth_error(), "401": oauth_error()}}},
            "/admin/revocations/status": {"get": admin("The revocation pusher: latest and delivered versions, pending outbox rows, last error", "{mode, latest_version, delivered_version, pending, last_error, ...}")},
            "/admin/audit": {"get": admin("Audit events, newest first (?limit, ?client_id)", "{events: [...]}")},
        },
        "components": {
            "securitySchemes": {
                "clientSecretBasic": {"type": "http", "scheme": "basic"},
                "clientSecretPost": {"type": "apiKey", "in": "query", "name": "client_secret", "description": "client_id and client_secret in the form body"},
                "adminToken": {"type": "http", "scheme": "bearer"},
            },
            "schemas": {
                "OAuthError": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}}},
                "TokenResponse": {"type": "object", "required": ["access_token", "token_type", "expires_in", "scope"], "properties": {
                    "access_token": {"type": "string"}, "token_type": {"type": "string", "enum": ["Bearer", "DPoP"]}, "expires_in": {"type": "integer"}, "scope": {"type": "string"}}},
                "CreateClient": {"type": "object", "required": ["name"], "additionalProperties": false, "properties": {
                    "name": {"type": "string"}, "scope": {"type": "string"}, "audiences": {"type": "array", "items": {"type": "string"}},
                    "grant_types": {"type": "array", "items": {"type": "string"}}, "redirect_uris": {"type": "array", "items": {"type": "string"}},
                    "public": {"type": "boolean"}, "dpop_required": {"type": "boolean"}, "jwks": {"type": "object"},
                    "serves": {"type": "array", "items": {"type": "string"}, "description": "audiences the client serves as a resource server (introspection, token exchange)"},
                    "legacy_assertion_audience": {"type": "boolean", "description": "private_key_jwt: also accept the token endpoint URL as aud"}}},
            },
        },
    })
}
