//! Floor 3, domain: the OAuth operations (clients, client authentication,
//! users, tokens, OpenID Connect (id_tokens, authorization request
//! parameters, UserInfo), grants, exchange, introspection, revocation, keys,
//! the revocation push, DPoP, rate limits, admin operations). Returns the
//! domain [`error::Error`], which knows nothing of HTTP.

pub mod admin;
pub mod client_assertion;
pub mod client_cache;
pub mod clients;
pub mod dpop;
pub mod error;
pub mod exchange;
pub mod grant_type;
pub mod grants;
pub mod introspect;
pub mod keys;
pub mod logout;
pub mod oidc;
pub mod par;
pub mod ratelimit;

pub mod revocation_push;
pub mod state;
pub mod token;
pub mod userinfo;
pub mod users;
