//! Pushed authorization requests (RFC 9126): the stored request behind a
//! `request_uri`, its lifetime and its single use.
//!
//! Lifetime: a pushed request must reach `/authorize` within
//! [`PUSHED_REQUEST_TTL_SECS`] (the `expires_in` the client is told). The
//! first `/authorize` that opens it extends its life once, to
//! [`INTERACTION_SECS`] from then, because the login and consent forms post
//! the same `client_id` + `request_uri` query back and a person needs time
//! to type a password. Issuing the code deletes the row: one code per
//! pushed request, whatever races ([`consume`]).

use crate::domain::error::Error;
use crate::store::db::Db;
use crate::store::pushed;
use crate::support::secret::PushedRequestHandle;
use gatehouse_common::UnixTime;

/// Seconds a pushed request may wait for `/authorize` (RFC 9126 §2.2 `expires_in`).
pub const PUSHED_REQUEST_TTL_SECS: i64 = 60;

/// Seconds a pushed request stays usable after `/authorize` first opened
/// it: the login and consent round trip.
pub const INTERACTION_SECS: i64 = 600;

/// The `request_uri` prefix (RFC 9126 §2.2).
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// What `/par` answers (RFC 9126 §2.2).
#[derive(Debug)]
pub struct Pushed {
    /// `urn:ietf:params:oauth:request_uri:<43 base64url characters>`.
    pub request_uri: String,
    /// Seconds until it expires.
    pub expires_in: i64,
}

/// A pushed request opened at `/authorize`.
#[derive(Debug)]
pub struct Opened {
    /// The parameters as pushed (a form string), `client_id` included.
    pub params: String,
    /// The stored handle (hash) that [`consume`] takes.
    pub handle_hash: String,
    /// When `/authorize` first opened it: a login since then is a login
    /// of this interaction (`prompt=login`, `max_age=0`).
    pub opened_at: i64,
}

/// Stores `params` (the pushed form string, already validated) for `client_id`.
pub async fn push(db: &Db, client_id: &str, params: &str, now: UnixTime) -> Result<Pushed, Error> {
    let handle = PushedRequestHandle::generate()?;
    pushed::insert(
        db,
        &handle.hash_b64(),
        client_id,
        params,
        now.0,
        now.0.saturating_add(PUSHED_REQUEST_TTL_SECS),
    )
    .await?;
    Ok(Pushed {
        request_uri: format!("{REQUEST_URI_PREFIX}{}", handle.expose()),
        expires_in: PUSHED_REQUEST_TTL_SECS,
    })
}

/// The random part of a well-formed `request_uri`: the prefix and exactly
/// 43 base64url characters, nothing else.
fn handle_of(request_uri: &str) -> Option<PushedRequestHandle> {
    let rest = request_uri.strip_prefix(REQUEST_URI_PREFIX)?;
    (rest.len() == 43
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    .then(|| PushedRequestHandle::new(rest.to_owned()))
}

/// Opens `client_id`'s pushed request `request_uri`: `None` when it is
/// malformed, unknown, expired, used, or another client's.
pub async fn open(
    db: &Db,
    client_id: &str,
    request_uri: &str,
    now: UnixTime,
) -> Result<Option<Opened>, Error> {
    let Some(handle) = handle_of(request_uri) else {
        return Ok(None);
    };
    let handle_hash = handle.hash_b64();
    let params = pushed::open(
        db,
        &handle_hash,
        client_id,
        now.0,
        now.0.saturating_add(INTERACTION_SECS),
    )
    .await?;
    Ok(params.map(|(params, opened_at)| Opened {
        params,
        handle_hash,
        opened_at,
    }))
}

/// Uses the pushed request up; `true` for exactly one caller, and only
/// while it is live.
pub async fn consume(db: &Db, handle_hash: &str, now: UnixTime) -> Result<bool, Error> {
    Ok(pushed::consume(db, handle_hash, now.0).await?)
}

#[cfg(test)]
mod tests {
    use super::handle_of;

    #[test]
    fn only_the_exact_request_uri_form_is_looked_up() {
        let good = format!("{}{}", super::REQUEST_URI_PREFIX, "a".repeat(43));
        assert!(handle_of(&good).is_some());
        for bad in [
            String::new(),
            "a".repeat(43),
            format!("{}{}", super::REQUEST_URI_PREFIX, "a".repeat(42)),
            format!("{}{}", super::REQUEST_URI_PREFIX, "a".repeat(44)),
            format!("{}{}=", super::REQUEST_URI_PREFIX, "a".repeat(42)),
            format!("URN:IETF:PARAMS:OAUTH:REQUEST_URI:{}", "a".repeat(43)),
            format!("urn:ietf:params:oauth:request_uri:{}%", "a".repeat(42)),
            format!("https://evil.example/{}", "a".repeat(43)),
        ] {
            assert!(handle_of(&bad).is_none(), "{bad}");
        }
    }
}
