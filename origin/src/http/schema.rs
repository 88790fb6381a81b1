//! The wire shapes of the HTTP API as OpenAPI schemas (utoipa `ToSchema`),
//! for [`super::openapi`].
//!
//! Most are mirrors: the values themselves are built by the domain (typed
//! admin answers, the token response) or by `serde_json` (introspection, the
//! JWKS, metadata, error bodies), and the forms are read field by field by
//! [`super::form::OAuthForm`] (repeats refused, empty means absent), so these
//! types are never constructed. They live on the http floor so that `domain`
//! and `store` stay free of any API-description dependency; the integration
//! tests (`tests/it/openapi.rs`) validate real answers of the app against
//! them with every object closed, so a member added to or dropped from a
//! domain type without its mirror fails there.

use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

// ---- /token, /introspect, /revoke ---------------------------------------

/// A grant type `/token` serves (`domain::grant_type::GrantType`).
#[derive(Serialize, ToSchema)]
pub enum GrantType {
    /// RFC 6749 §4.1 with PKCE (RFC 7636).
    #[serde(rename = "authorization_code")]
    AuthorizationCode,
    /// RFC 6749 §6, with rotation.
    #[serde(rename = "refresh_token")]
    RefreshToken,
    /// RFC 6749 §4.4.
    #[serde(rename = "client_credentials")]
    ClientCredentials,
    /// RFC 8693.
    #[serde(rename = "urn:ietf:params:oauth:grant-type:token-exchange")]
    TokenExchange,
}

/// RFC 7523 §2.2: the only `client_assertion_type`.
#[derive(Serialize, ToSchema)]
pub enum ClientAssertionType {
    /// A JWT signed with a key of the client's registered JWK set.
    #[serde(rename = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")]
    JwtBearer,
}

/// `POST /token` (RFC 6749 §3.2), form-encoded. Which members a grant
/// needs: `authorization_code`: `code`, `code_verifier`, `redirect_uri`;
/// `refresh_token`: `refresh_token`; `client_credentials`: none;
/// token exchange: `subject_token` (and `subject_token_type`). Client
/// authentication: `Authorization: Basic` (client_secret_basic), or
/// `client_id` and `client_secret` here (client_secret_post), or
/// `client_assertion_type` and `client_assertion` (private_key_jwt,
/// RFC 7523), or `client_id` alone (a public client). One method per
/// request; a parameter may not repeat; an empty value counts as absent.
#[derive(Serialize, ToSchema)]
pub struct TokenRequest {
    /// The grant.
    pub grant_type: GrantType,
    /// Space-separated scopes (at most those registered).
    pub scope: Option<String>,
    /// RFC 8707: the audience, as a URI.
    pub resource: Option<String>,
    /// RFC 8693: the audience, by name.
    pub audience: Option<String>,
    /// authorization_code: the code.
    pub code: Option<String>,
    /// authorization_code: the redirect URI of the authorization request.
    pub redirect_uri: Option<String>,
    /// authorization_code: the PKCE verifier (RFC 7636).
    pub code_verifier: Option<String>,
    /// refresh_token: the refresh token.
    pub refresh_token: Option<String>,
    /// Token exchange: the token exchanged.
    pub subject_token: Option<String>,
    /// Token exchange: its type (`urn:ietf:params:oauth:token-type:access_token`).
    pub subject_token_type: Option<String>,
    /// Token exchange: the acting party's token.
    pub actor_token: Option<String>,
    /// Token exchange: its type.
    pub actor_token_type: Option<String>,
    /// Token exchange: the type wanted (an access token).
    pub requested_token_type: Option<String>,
    /// client_secret_post, private_key_jwt (optional, must match the
    /// assertion's `sub`) or a public client.
    pub client_id: Option<String>,
    /// client_secret_post.
    pub client_secret: Option<String>,
    /// private_key_jwt.
    pub client_assertion_type: Option<ClientAssertionType>,
    /// private_key_jwt: the signed assertion.
    pub client_assertion: Option<String>,
}

/// `POST /introspect` (RFC 7662 §2.1) and `POST /revoke` (RFC 7009 §2.1),
/// form-encoded; the caller authenticates as at `/token` (public clients
/// may revoke, not introspect).
#[derive(Serialize, ToSchema)]
pub struct TokenRequestByClient {
    /// The token (an access token; at `/revoke` also a refresh token).
    pub token: String,
    /// `access_token` or `refresh_token` (a hint; the server looks anyway).
    pub token_type_hint: Option<String>,
    /// client_secret_post, private_key_jwt or a public client.
    pub client_id: Option<String>,
    /// client_secret_post.
    pub client_secret: Option<String>,
    /// private_key_jwt.
    pub client_assertion_type: Option<ClientAssertionType>,
    /// private_key_jwt: the signed assertion.
    pub client_assertion: Option<String>,
}

/// How an access token is to be presented.
#[derive(Serialize, ToSchema)]
pub enum TokenType {
    /// RFC 6750.
    Bearer,
    /// RFC 9449: bound to the proof's key.
    DPoP,
}

/// The token endpoint's answer (RFC 6749 §5.1; `domain::token::TokenResponse`).
#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    /// The access token (a JWT).
    pub access_token: String,
    /// `Bearer`, or `DPoP` when a proof was sent.
    pub token_type: TokenType,
    /// Lifetime in seconds.
    pub expires_in: i64,
    /// Granted scopes, space-separated.
    pub scope: String,
    /// A rotating refresh token (authorization_code and refresh_token grants).
    pub refresh_token: Option<String>,
    /// OpenID Connect: the id_token (authorization_code and refresh_token
    /// grants of a request with the `openid` scope).
    pub id_token: Option<String>,
    /// RFC 8693 §2.2.1 (token exchange only).
    pub issued_token_type: Option<String>,
}

/// An error answer (RFC 6749 §5.2; RFC 7009, RFC 7662 and RFC 9449 reuse it).
#[derive(Serialize, ToSchema)]
pub struct OAuthError {
    /// `invalid_request`, `invalid_client`, `invalid_grant`,
    /// `unauthorized_client`, `unsupported_grant_type`, `invalid_scope`,
    /// `invalid_target`, `invalid_dpop_proof`, `use_dpop_nonce`,
    /// `rate_limited`, `not_found`, `server_error`, …
    pub error: String,
    /// A human-readable reason (never a secret).
    pub error_description: String,
    /// The request's id, as in its `Gatehouse-Request-Id` response header:
    /// what an operator searches the origin's log and audit rows by. An
    /// extension member: RFC 6749 §5.2 names `error`, `error_description`
    /// and `error_uri` without forbidding others, and §8.2 lets extensions
    /// add response parameters; a client ignores a member it does not know.
    pub request_id: String,
}

/// RFC 7800 confirmation.
#[derive(Serialize, ToSchema)]
pub struct Confirmation {
    /// RFC 9449 §6.1: the JWK thumbprint the token is bound to.
    pub jkt: String,
}

/// The introspection answer (RFC 7662 §2.2): `{"active": false}` for a
/// token the caller may not see, or else the token's claims.
#[derive(Serialize, ToSchema)]
pub struct Introspection {
    /// Whether the token is live and the caller may see it.
    pub active: bool,
    /// Issuer.
    pub iss: Option<String>,
    /// Subject.
    pub sub: Option<String>,
    /// Audiences.
    pub aud: Option<Vec<String>>,
    /// Expiry (seconds since the epoch).
    pub exp: Option<i64>,
    /// Issued at.
    pub iat: Option<i64>,
    /// Not before.
    pub nbf: Option<i64>,
    /// Token id.
    pub jti: Option<String>,
    /// The client it was issued to.
    pub client_id: Option<String>,
    /// Space-separated scopes.
    pub scope: Option<String>,
    /// `Bearer` or `DPoP`.
    pub token_type: Option<TokenType>,
    /// The session id (authorization_code and refresh_token grants).
    pub sid: Option<String>,
    /// The DPoP binding.
    pub cnf: Option<Confirmation>,
}

// ---- discovery ------------------------------------------------------------

/// A published public key (RFC 7517 §4; RFC 7518 §6).
#[derive(Serialize, ToSchema)]
pub struct Jwk {
    /// `EC`, `OKP` or `RSA`.
    pub kty: String,
    /// Always `sig`.
    #[serde(rename = "use")]
    pub use_: String,
    /// Key id.
    pub kid: Option<String>,
    /// The one algorithm the key signs with.
    pub alg: Option<String>,
    /// EC and OKP: the curve.
    pub crv: Option<String>,
    /// EC and OKP: the x coordinate / public key (base64url).
    pub x: Option<String>,
    /// EC: the y coordinate (base64url).
    pub y: Option<String>,
    /// RSA: the modulus (base64url).
    pub n: Option<String>,
    /// RSA: the exponent (base64url).
    pub e: Option<String>,
}

/// The published signing keys (RFC 7517 §5).
#[derive(Serialize, ToSchema)]
pub struct Jwks {
    /// The keys, the signer and the next and previous ones.
    pub keys: Vec<Jwk>,
}

/// Authorization server metadata (RFC 8414 §2): only what is served.
#[derive(Serialize, ToSchema)]
pub struct Metadata {
    /// The issuer.
    pub issuer: String,
    /// `{issuer}/token`.
    pub token_endpoint: String,
    /// `{issuer}/.well-known/jwks.json`.
    pub jwks_uri: String,
    /// `{issuer}/introspect`.
    pub introspection_endpoint: String,
    /// `{issuer}/revoke`.
    pub revocation_endpoint: String,
    /// OpenID Connect UserInfo (Core 1.0 §5.3).
    pub userinfo_endpoint: String,
    /// `{issuer}/authorize`.
    pub authorization_endpoint: String,
    /// `{issuer}/par` (RFC 9126 §5).
    pub pushed_authorization_request_endpoint: String,
    /// RFC 9126 §5: whether every client must push (`GATEHOUSE_REQUIRE_PAR`;
    /// a client can be required to on its own, `require_pushed_authorization_requests`).
    pub require_pushed_authorization_requests: bool,
    /// The grants `/token` serves.
    pub grant_types_supported: Vec<GrantType>,
    /// `code`.
    pub response_types_supported: Vec<String>,
    /// `query`.
    pub response_modes_supported: Vec<String>,
    /// `S256`.
    pub code_challenge_methods_supported: Vec<String>,
    /// RFC 9207: `iss` in the authorization response.
    pub authorization_response_iss_parameter_supported: bool,
    /// RFC 9101 request objects: refused.
    pub request_parameter_supported: bool,
    /// RFC 9101 request URIs from elsewhere: refused (`false`); those from
    /// `/par` work regardless (RFC 9126 §5).
    pub request_uri_parameter_supported: bool,
    /// `client_secret_basic`, `client_secret_post`, `private_key_jwt`, `none`.
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// private_key_jwt assertion algorithms.
    pub token_endpoint_auth_signing_alg_values_supported: Vec<String>,
    /// As at `/token` but without `none`.
    pub introspection_endpoint_auth_methods_supported: Vec<String>,
    /// As at `/token`.
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    /// private_key_jwt assertion algorithms at `/introspect` (as at `/token`).
    pub introspection_endpoint_auth_signing_alg_values_supported: Vec<String>,
    /// private_key_jwt assertion algorithms at `/revoke` (as at `/token`).
    pub revocation_endpoint_auth_signing_alg_values_supported: Vec<String>,
    /// RFC 9449 §5.1: proof algorithms.
    pub dpop_signing_alg_values_supported: Vec<String>,
    /// Algorithms of the published keys.
    pub access_token_signing_alg_values_supported: Vec<String>,
    /// `{issuer}/openapi.json`.
    pub service_documentation: String,
    /// `openid`, `profile`, `email`: the scopes the origin itself acts on.
    pub scopes_supported: Vec<String>,
}

/// OpenID Provider metadata (OpenID Connect Discovery 1.0 §3): the
/// authorization server metadata ([`Metadata`]: the same fields, kept equal —
/// the OpenAPI test checks real answers of both against their closed
/// schemas) and the fields after `scopes_supported`.
#[derive(Serialize, ToSchema)]
pub struct OpenIdConfiguration {
    /// The issuer.
    pub issuer: String,
    /// `{issuer}/token`.
    pub token_endpoint: String,
    /// `{issuer}/.well-known/jwks.json`.
    pub jwks_uri: String,
    /// `{issuer}/introspect`.
    pub introspection_endpoint: String,
    /// `{issuer}/revoke`.
    pub revocation_endpoint: String,
    /// OpenID Connect UserInfo (Core 1.0 §5.3).
    pub userinfo_endpoint: String,
    /// `{issuer}/authorize`.
    pub authorization_endpoint: String,
    /// `{issuer}/par` (RFC 9126 §5).
    pub pushed_authorization_request_endpoint: String,
    /// RFC 9126 §5: whether every client must push.
    pub require_pushed_authorization_requests: bool,
    /// The grants `/token` serves.
    pub grant_types_supported: Vec<GrantType>,
    /// `code`.
    pub response_types_supported: Vec<String>,
    /// `query`.
    pub response_modes_supported: Vec<String>,
    /// `S256`.
    pub code_challenge_methods_supported: Vec<String>,
    /// RFC 9207: `iss` in the authorization response.
    pub authorization_response_iss_parameter_supported: bool,
    /// RFC 9101 request objects: refused.
    pub request_parameter_supported: bool,
    /// RFC 9101 request URIs: refused.
    pub request_uri_parameter_supported: bool,
    /// `client_secret_basic`, `client_secret_post`, `private_key_jwt`, `none`.
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// private_key_jwt assertion algorithms.
    pub token_endpoint_auth_signing_alg_values_supported: Vec<String>,
    /// As at `/token` but without `none`.
    pub introspection_endpoint_auth_methods_supported: Vec<String>,
    /// As at `/token`.
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    /// private_key_jwt assertion algorithms at `/introspect` (as at `/token`).
    pub introspection_endpoint_auth_signing_alg_values_supported: Vec<String>,
    /// private_key_jwt assertion algorithms at `/revoke` (as at `/token`).
    pub revocation_endpoint_auth_signing_alg_values_supported: Vec<String>,
    /// RFC 9449 §5.1: proof algorithms.
    pub dpop_signing_alg_values_supported: Vec<String>,
    /// Algorithms of the published keys.
    pub access_token_signing_alg_values_supported: Vec<String>,
    /// `{issuer}/openapi.json`.
    pub service_documentation: String,
    /// `openid`, `profile`, `email`: the scopes the origin itself acts on.
    pub scopes_supported: Vec<String>,
    /// The id_token's algorithms: those of the published keys.
    pub id_token_signing_alg_values_supported: Vec<String>,
    /// `public`: `sub` is the user id.
    pub subject_types_supported: Vec<String>,
    /// The claims an id_token may carry.
    pub claims_supported: Vec<String>,
    /// `none`, `login`, `consent`.
    pub prompt_values_supported: Vec<String>,
    /// `false`: the `claims` request parameter is not supported.
    pub claims_parameter_supported: bool,
    /// `normal`.
    pub claim_types_supported: Vec<String>,
    /// `{issuer}/logout` (OpenID Connect RP-Initiated Logout 1.0 §2.1).
    pub end_session_endpoint: String,
}

/// `GET /readyz`'s answer.
#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` (200) or `not_ready` (503).
    pub status: ReadyStatus,
    /// Why not (503 only).
    pub reason: Option<NotReadyReason>,
}

/// Ready or not.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReadyStatus {
    /// 200.
    Ready,
    /// 503.
    NotReady,
}

/// Why the replica is not ready (`http::probe::NotReady`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotReadyReason {
    /// The database did not answer in time.
    DatabaseUnavailable,
    /// No key of the loaded ring signs now.
    NoSigningKey,
}

// ---- /authorize -------------------------------------------------------------

/// `GET /authorize` (OAuth 2.1 §4.1.1, RFC 7636, RFC 9449 §10).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuthorizeQuery {
    /// `code` (not with `request_uri`).
    pub response_type: Option<String>,
    /// The client.
    pub client_id: String,
    /// RFC 9126: a `request_uri` from `/par`; the pushed parameters are then
    /// used and every other one here but `client_id` is ignored.
    pub request_uri: Option<String>,
    /// One of the client's registered redirect URIs (optional if it has one).
    pub redirect_uri: Option<String>,
    /// Space-separated scopes.
    pub scope: Option<String>,
    /// Returned unchanged.
    pub state: Option<String>,
    /// The PKCE challenge (required, unless pushed).
    pub code_challenge: Option<String>,
    /// `S256` (required, unless pushed).
    pub code_challenge_method: Option<String>,
    /// RFC 8707 resource.
    pub resource: Option<String>,
    /// The audience, by name.
    pub audience: Option<String>,
    /// RFC 9449 §10: bind the code to this key thumbprint.
    pub dpop_jkt: Option<String>,
}

/// `POST /par` (RFC 9126 §2.1), form-encoded: the authorization request's
/// parameters (as at `/authorize`) and the client's authentication (as at `/token`).
#[derive(Serialize, ToSchema)]
pub struct PushedAuthorizationRequest {
    /// `code`.
    pub response_type: String,
    /// client_secret_post, private_key_jwt or a public client.
    pub client_id: Option<String>,
    /// client_secret_post.
    pub client_secret: Option<String>,
    /// private_key_jwt.
    pub client_assertion_type: Option<ClientAssertionType>,
    /// private_key_jwt: the signed assertion.
    pub client_assertion: Option<String>,
    /// One of the client's registered redirect URIs (optional if it has one).
    pub redirect_uri: Option<String>,
    /// Space-separated scopes.
    pub scope: Option<String>,
    /// Returned unchanged.
    pub state: Option<String>,
    /// The PKCE challenge.
    pub code_challenge: String,
    /// `S256`.
    pub code_challenge_method: String,
    /// RFC 8707 resource.
    pub resource: Option<String>,
    /// The audience, by name.
    pub audience: Option<String>,
    /// RFC 9449 §10: bind the code to this key thumbprint (a DPoP proof header does the same).
    pub dpop_jkt: Option<String>,
    /// OpenID Connect: echoed in the id_token (at most 255 bytes).
    pub nonce: Option<String>,
    /// OpenID Connect: `none`, or any of `login` and `consent`,
    /// space-separated. `none` answers `login_required` or
    /// `consent_required` instead of showing a page.
    pub prompt: Option<String>,
    /// OpenID Connect: the longest time since the user authenticated,
    /// seconds; older sessions sign in again (`0` is like `prompt=login`).
    pub max_age: Option<u32>,
    /// OpenID Connect: pre-fills the username on the sign-in page.
    pub login_hint: Option<String>,
    /// OpenID Connect: an id_token naming (`sub`) the only user this request
    /// may be served for; another signed-in user is `login_required` with
    /// `prompt=none`, else the sign-in page. Malformed: `invalid_request`.
    pub id_token_hint: Option<String>,
}

/// `POST /par`'s answer (RFC 9126 §2.2), 201.
#[derive(Serialize, ToSchema)]
pub struct PushedAuthorizationResponse {
    /// `urn:ietf:params:oauth:request_uri:…`, for `/authorize?client_id=…&request_uri=…`.
    pub request_uri: String,
    /// Seconds it stays usable (60).
    pub expires_in: i64,
}

/// `POST /authorize/login`, form-encoded.
#[derive(Serialize, ToSchema)]
pub struct LoginForm {
    /// The original authorization request's query.
    pub request: String,
    /// The CSRF token of the page (double-submitted with its cookie).
    pub csrf: String,
    /// The login name.
    pub username: Option<String>,
    /// The password.
    pub password: Option<String>,
}

/// `approve` or `deny`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Remember the consent and redirect with a code.
    Approve,
    /// Redirect with `access_denied`.
    Deny,
}

/// `POST /authorize/consent`, form-encoded.
#[derive(Serialize, ToSchema)]
pub struct ConsentForm {
    /// The original authorization request's query.
    pub request: String,
    /// The CSRF token of the page.
    pub csrf: String,
    /// The user's answer.
    pub decision: Decision,
}

// ---- /logout ----------------------------------------------------------------

/// `GET`/`POST /logout` (OpenID Connect RP-Initiated Logout 1.0 §2). Every
/// parameter is optional: without any, the user is asked to confirm.
#[derive(IntoParams, Serialize, ToSchema)]
#[into_params(parameter_in = Query)]
pub struct LogoutQuery {
    /// An id_token this server issued to the client (expired ones accepted).
    /// When its `sid` is the browser's session, no confirmation is asked.
    pub id_token_hint: Option<String>,
    /// The client asking (must be the hint's audience when both are sent).
    pub client_id: Option<String>,
    /// Where to send the user afterwards: exactly one of the client's
    /// registered `post_logout_redirect_uris`.
    pub post_logout_redirect_uri: Option<String>,
    /// Echoed on that redirect (at most 1024 bytes).
    pub state: Option<String>,
    /// The user the RP believes is signed in; when it names someone else,
    /// the user confirms.
    pub logout_hint: Option<String>,
    /// Accepted and ignored (the pages are in English).
    pub ui_locales: Option<String>,
}

/// `POST /logout` from the confirmation page, form-encoded.
#[derive(Serialize, ToSchema)]
pub struct LogoutConfirmForm {
    /// The CSRF token of the page (double-submitted with its cookie).
    pub csrf: String,
    /// `logout` signs out; anything else stays signed in.
    pub decision: String,
    /// The client the request named.
    pub client_id: Option<String>,
    /// The registered post-logout redirect URI.
    pub post_logout_redirect_uri: Option<String>,
    /// Echoed on the redirect.
    pub state: Option<String>,
}

// ---- /admin -----------------------------------------------------------------

/// What an operator sees of a client (`domain::clients::ClientView`).
#[derive(Serialize, ToSchema)]
pub struct ClientView {
    /// The client identifier.
    pub client_id: String,
    /// Name.
    pub name: String,
    /// Whether the client is public.
    pub public: bool,
    /// `client_secret_basic` or `none`.
    pub token_endpoint_auth_method: String,
    /// Allowed scopes, space-separated.
    pub scope: String,
    /// Allowed audiences.
    pub audiences: Vec<String>,
    /// Allowed grant types.
    pub grant_types: Vec<GrantType>,
    /// Redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Whether DPoP is required.
    pub dpop_required: bool,
    /// The audiences this client serves as a resource server.
    pub serves: Vec<String>,
    /// Whether a private_key_jwt assertion may name the token endpoint.
    pub legacy_assertion_audience: bool,
    /// Where RP-initiated logout may send the user back (exact match).
    pub post_logout_redirect_uris: Vec<String>,
    /// Whether authorization requests must be pushed (RFC 9126 §6).
    pub require_pushed_authorization_requests: bool,
    /// When a rotated-out secret stops working.
    pub previous_secret_expires_at: Option<i64>,
    /// Creation time.
    pub created_at: i64,
    /// Last update.
    pub updated_at: i64,
}

/// A registered client and, for a confidential one, its secret, shown
/// only in this answer (`domain::admin::CreatedClient`).
#[derive(Serialize, ToSchema)]
pub struct CreatedClient {
    /// The client identifier.
    pub client_id: String,
    /// Name.
    pub name: String,
    /// Whether the client is public.
    pub public: bool,
    /// `client_secret_basic` or `none`.
    pub token_endpoint_auth_method: String,
    /// Allowed scopes, space-separated.
    pub scope: String,
    /// Allowed audiences.
    pub audiences: Vec<String>,
    /// Allowed grant types.
    pub grant_types: Vec<GrantType>,
    /// Redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Whether DPoP is required.
    pub dpop_required: bool,
    /// The audiences this client serves as a resource server.
    pub serves: Vec<String>,
    /// Whether a private_key_jwt assertion may name the token endpoint.
    pub legacy_assertion_audience: bool,
    /// Where RP-initiated logout may send the user back (exact match).
    pub post_logout_redirect_uris: Vec<String>,
    /// Whether authorization requests must be pushed (RFC 9126 §6).
    pub require_pushed_authorization_requests: bool,
    /// When a rotated-out secret stops working.
    pub previous_secret_expires_at: Option<i64>,
    /// Creation time.
    pub created_at: i64,
    /// Last update.
    pub updated_at: i64,
    /// The secret (confidential clients), shown once.
    pub client_secret: Option<String>,
}

/// Every client (`domain::admin::ClientList`).
#[derive(Serialize, ToSchema)]
pub struct ClientList {
    /// Oldest first.
    pub clients: Vec<ClientView>,
}

/// A deleted client (`domain::admin::Deleted`).
#[derive(Serialize, ToSchema)]
pub struct Deleted {
    /// The client id.
    pub deleted: String,
}

/// A rotated client secret (`domain::admin::RotatedSecret`).
#[derive(Serialize, ToSchema)]
pub struct RotatedSecret {
    /// The client id.
    pub client_id: String,
    /// The new secret (shown once).
    pub client_secret: String,
    /// Until when the previous secret still works.
    pub previous_secret_expires_at: i64,
}

/// A key's schedule (`domain::keys::KeyMeta`).
#[derive(Serialize, ToSchema)]
pub struct KeyMeta {
    /// Key id.
    pub kid: String,
    /// Algorithm name.
    pub alg: String,
    /// Created.
    pub created_at: i64,
    /// In the JWKS from.
    pub published_at: i64,
    /// Signs from (until a newer key's `active_at`).
    pub active_at: i64,
    /// Stopped signing at.
    pub retired_at: Option<i64>,
    /// Left the JWKS at.
    pub removed_at: Option<i64>,
}

/// A key's state now.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    /// Not yet published.
    Pending,
    /// In the JWKS, not signing.
    Published,
    /// The signer.
    Active,
    /// No longer signing, still published.
    Retired,
    /// Out of the JWKS.
    Removed,
}

/// A signing key and its state (`domain::keys::KeyView`).
#[derive(Serialize, ToSchema)]
pub struct KeyView {
    /// Key id.
    pub kid: String,
    /// Algorithm name.
    pub alg: String,
    /// Created.
    pub created_at: i64,
    /// In the JWKS from.
    pub published_at: i64,
    /// Signs from.
    pub active_at: i64,
    /// Stopped signing at.
    pub retired_at: Option<i64>,
    /// Left the JWKS at.
    pub removed_at: Option<i64>,
    /// Its state now.
    pub state: KeyState,
}

/// Every signing key (`domain::admin::KeyList`).
#[derive(Serialize, ToSchema)]
pub struct KeyList {
    /// In the store's order.
    pub keys: Vec<KeyView>,
}

/// What a retirement did (`domain::keys::Retirement`).
#[derive(Serialize, ToSchema)]
pub struct Retirement {
    /// The key retired.
    pub kid: String,
    /// It stopped signing at.
    pub retired_at: i64,
    /// It left the JWKS at (with `now=true`).
    pub removed_at: Option<i64>,
    /// The key created to sign in its place.
    pub created: Option<String>,
    /// What happens to the tokens it signed.
    pub warning: String,
}

/// What a revocation names.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RevocationKind {
    /// One token.
    Jti,
    /// A session.
    Sid,
    /// A subject.
    Sub,
    /// Every token of a client.
    ClientId,
}

/// A revocation in force (`store::revocation::Revocation`).
#[derive(Serialize, ToSchema)]
pub struct Revocation {
    /// What it names.
    pub kind: RevocationKind,
    /// The revoked identifier.
    pub value: String,
    /// When (tokens with `iat <= revoked_at` are refused for sid/sub/client_id).
    pub revoked_at: i64,
    /// When the entry may be dropped.
    pub drop_after: i64,
    /// Why (`rfc7009`, `admin api`, `cli`, …).
    pub reason: String,
}

/// A live browser session (`domain::admin::SessionView`).
#[derive(Serialize, ToSchema)]
pub struct SessionView {
    /// The public session id (the id_tokens' `sid`).
    pub sid: String,
    /// When it started.
    pub created_at: i64,
    /// When the user last authenticated in it.
    pub auth_time: i64,
    /// When it ends unless the user logs out first.
    pub expires_at: i64,
}

/// A live grant, a refresh family (`domain::admin::GrantView`).
#[derive(Serialize, ToSchema)]
pub struct GrantView {
    /// The grant id: the refresh family, the `sid` of its access tokens.
    pub grant_id: String,
    /// The browser session it was approved in.
    pub session_sid: String,
    /// The client.
    pub client_id: String,
    /// When it started.
    pub created_at: i64,
    /// Its latest refresh rotation, or its issue.
    pub last_used: i64,
    /// Offline (`offline_access`): survives the session's logout.
    pub offline: bool,
    /// When its current refresh token expires unless used.
    pub expires_at: i64,
    /// When the grant ends whatever happens.
    pub family_expires_at: i64,
}

/// A user's live sessions and grants (`domain::admin::UserSessions`).
#[derive(Serialize, ToSchema)]
pub struct UserSessions {
    /// The login name.
    pub username: String,
    /// Their id (`sub`).
    pub user_id: String,
    /// Live browser sessions, oldest first.
    pub sessions: Vec<SessionView>,
    /// Grants with a usable refresh token, oldest first.
    pub grants: Vec<GrantView>,
}

/// What a session revocation ended (`domain::admin::RevokedSession`).
#[derive(Serialize, ToSchema)]
pub struct RevokedSession {
    /// The user.
    pub username: String,
    /// The session id or grant id asked for.
    pub revoked: String,
    /// Whether a live browser session was ended.
    pub session_ended: bool,
    /// The grants revoked.
    pub grants_revoked: Vec<String>,
}

/// Revocations in force (`domain::admin::RevocationList`).
#[derive(Serialize, ToSchema)]
pub struct RevocationList {
    /// The entries.
    pub revocations: Vec<Revocation>,
}

/// The revocation pusher (`domain::revocation_push::PushStatus`).
#[derive(Serialize, ToSchema)]
pub struct PushStatus {
    /// `edge` or `cloudflare`, as the server's pusher last delivered.
    pub mode: Option<String>,
    /// The kid that signed the last delivered document.
    pub signed_kid: Option<String>,
    /// The last version assigned to a document.
    pub latest_version: i64,
    /// The newest version the receiver acknowledged.
    pub delivered_version: i64,
    /// When it was acknowledged.
    pub delivered_at: Option<i64>,
    /// Outbox rows not yet delivered.
    pub pending: i64,
    /// When the oldest of them was written.
    pub oldest_pending_at: Option<i64>,
    /// When a push was last tried.
    pub last_attempt_at: Option<i64>,
    /// The last failure, cleared by the next success.
    pub last_error: Option<String>,
    /// Consecutive failures.
    pub failures: i64,
    /// Live revocations.
    pub live_revocations: i64,
}

/// An audit event (`store::audit::AuditEvent`).
#[derive(Serialize, ToSchema)]
pub struct AuditEvent {
    /// Row id.
    pub id: i64,
    /// When.
    pub at: i64,
    /// `token_issued`, `key_rotated`, … and the refusals: `authentication_failed`,
    /// `login_failed`, `admin_auth_failed`, `token_exchange_refused`,
    /// `code_replayed`, `refresh_reuse`.
    pub event: String,
    /// The client concerned.
    pub client_id: Option<String>,
    /// The subject concerned.
    pub subject: Option<String>,
    /// The token id concerned.
    pub jti: Option<String>,
    /// The caller's IP address.
    pub source_ip: Option<String>,
    /// A short, non-secret note.
    pub detail: Option<String>,
    /// The request the event came from (its `Gatehouse-Request-Id`), when known.
    pub request_id: Option<String>,
}

/// Recent audit events (`domain::admin::AuditList`).
#[derive(Serialize, ToSchema)]
pub struct AuditList {
    /// Newest first.
    pub events: Vec<AuditEvent>,
}

// ---- users and /userinfo ------------------------------------------------------

/// A user as operators see it, never the password hash (`domain::users::User`).
#[derive(Serialize, ToSchema)]
pub struct User {
    /// Stable id: the `sub` of their tokens.
    pub user_id: String,
    /// Login name (OIDC `preferred_username`).
    pub username: String,
    /// Creation time.
    pub created_at: i64,
    /// Full name (OIDC `name`), if set.
    pub name: Option<String>,
    /// Email address (OIDC `email`), if set.
    pub email: Option<String>,
    /// Whether the email address is verified (OIDC `email_verified`).
    pub email_verified: bool,
    /// Creation or the last profile change (OIDC `updated_at`).
    pub updated_at: i64,
}

/// Every user (`domain::admin::UserList`).
#[derive(Serialize, ToSchema)]
pub struct UserList {
    /// Oldest first.
    pub users: Vec<User>,
}

/// A deleted user (`domain::admin::DeletedUser`).
#[derive(Serialize, ToSchema)]
pub struct DeletedUser {
    /// The login name.
    pub deleted: String,
    /// Their id.
    pub user_id: String,
}

/// The UserInfo response (OpenID Connect Core 1.0 §5.3.2): `sub` always,
/// the others by the token's scopes (`profile`: `name`,
/// `preferred_username`, `updated_at`; `email`: `email`, `email_verified`),
/// absent values omitted.
#[derive(Serialize, ToSchema)]
pub struct UserInfo {
    /// The user's stable id (the token's `sub`).
    pub sub: String,
    /// `profile`: full name.
    pub name: Option<String>,
    /// `profile`: the login name.
    pub preferred_username: Option<String>,
    /// `profile`: last change of the profile, seconds since the epoch.
    pub updated_at: Option<i64>,
    /// `email`: the address.
    pub email: Option<String>,
    /// `email`: whether the address is verified.
    pub email_verified: Option<bool>,
}

/// An RFC 6750 §3 / RFC 9449 §7.1 refusal at a protected resource (also
/// in `WWW-Authenticate`).
#[derive(Serialize, ToSchema)]
pub struct BearerError {
    /// `invalid_request`, `invalid_token`, `insufficient_scope`,
    /// `invalid_dpop_proof` or `use_dpop_nonce`.
    pub error: String,
    /// A fixed human-readable text (never the token).
    pub error_description: String,
    /// For an expired token, its `exp`.
    pub expires_at: Option<i64>,
}
