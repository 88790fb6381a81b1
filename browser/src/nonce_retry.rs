//! `DPoP-Nonce` handling (RFC 9449 §8 and §9) — the pure half.
//!
//! A server that wants a nonce answers `401` with a `DPoP` challenge carrying
//! `error="use_dpop_nonce"` (a resource server, §9) or `400` with the OAuth
//! error body `{"error":"use_dpop_nonce"}` (an authorization server, §8), and
//! a `DPoP-Nonce` header either way. The client retries once with that nonce
//! and keeps the latest nonce per origin for its next requests.

use crate::proof::is_valid_nonce;
use gatehouse_common::uri;
use std::collections::HashMap;

/// The parts of a response the retry decision reads.
#[derive(Clone, Copy, Debug, Default)]
pub struct NonceResponse<'a> {
    /// The HTTP status.
    pub status: u16,
    /// `WWW-Authenticate`, all values joined with `, ` (as `fetch` does).
    pub www_authenticate: Option<&'a str>,
    /// `DPoP-Nonce`.
    pub dpop_nonce: Option<&'a str>,
    /// The body, read only when [`needs_body`] says so.
    pub body: Option<&'a str>,
}

/// What to do after a response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Retry {
    /// Hand the response to the caller.
    No,
    /// Send the request again, once, with a proof carrying this nonce.
    WithNonce(String),
}

/// Whether the decision needs the response body: only for a `400` that
/// carries a `DPoP-Nonce` (an authorization server's `use_dpop_nonce`).
#[must_use]
pub fn needs_body(status: u16, dpop_nonce: Option<&str>) -> bool {
    status == 400 && dpop_nonce.is_some()
}

/// Decides whether to retry. `sent_nonce` is the nonce the refused proof
/// carried: a server that refuses it and offers the same one again is not
/// retried (that would loop).
#[must_use]
pub fn retry_decision(resp: &NonceResponse<'_>, sent_nonce: Option<&str>) -> Retry {
    let Some(nonce) = resp.dpop_nonce.map(str::trim) else {
        return Retry::No;
    };
    if !is_valid_nonce(nonce) || sent_nonce == Some(nonce) {
        return Retry::No;
    }
    let asks_for_nonce = match resp.status {
        401 => resp
            .www_authenticate
            .is_some_and(dpop_challenge_asks_for_nonce),
        400 => resp.body.is_some_and(body_asks_for_nonce),
        _ => false,
    };
    if asks_for_nonce {
        Retry::WithNonce(nonce.to_owned())
    } else {
        Retry::No
    }
}

/// Whether an RFC 6749 §5.2 error body says `use_dpop_nonce`.
#[must_use]
pub fn body_asks_for_nonce(body: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str().map(str::to_owned)))
        .is_some_and(|e| e == "use_dpop_nonce")
}

/// Whether a `WWW-Authenticate` value has a `DPoP` challenge with
/// `error="use_dpop_nonce"` (RFC 9110 §11.6.1 challenge syntax).
#[must_use]
pub fn dpop_challenge_asks_for_nonce(header: &str) -> bool {
    challenge_params(header)
        .iter()
        .any(|(scheme, name, value)| {
            scheme.eq_ignore_ascii_case("DPoP")
                && name.eq_ignore_ascii_case("error")
                && value == "use_dpop_nonce"
        })
}

/// `(scheme, param name, param value)` for every auth-param in `header`.
fn challenge_params(header: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut scheme = String::new();
    let mut rest = header;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            return out;
        }
        let end = rest.find([' ', '\t', ',', '=']).unwrap_or(rest.len());
        let (token, after) = rest.split_at(end);
        let after_ws = after.trim_start_matches([' ', '\t']);
        if let Some(value_part) = after_ws.strip_prefix('=') {
            let value_part = value_part.trim_start_matches([' ', '\t']);
            let (value, remaining) = read_param_value(value_part);
            out.push((scheme.clone(), token.to_owned(), value));
            rest = remaining;
        } else {
            // A new challenge's scheme (or a token68, which has no params).
            if !token.is_empty() {
                scheme = token.to_owned();
            }
            rest = after;
            if token.is_empty() {
                // Defensive: never loop without progress.
                rest = rest.get(1..).unwrap_or("");
            }
        }
    }
}

/// Reads a quoted-string or token; returns it unescaped and the rest.
fn read_param_value(s: &str) -> (String, &str) {
    if let Some(quoted) = s.strip_prefix('"') {
        let mut value = String::new();
        let mut chars = quoted.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, escaped)) = chars.next() {
                        value.push(escaped);
                    }
                }
                '"' => return (value, quoted.get(i + 1..).unwrap_or("")),
                other => value.push(other),
            }
        }
        (value, "")
    } else {
        let end = s.find([',', ' ', '\t']).unwrap_or(s.len());
        let (v, r) = s.split_at(end);
        (v.to_owned(), r)
    }
}

/// The origin (`scheme://host[:port]`, normalized) a nonce belongs to.
#[must_use]
pub fn origin_of(url: &str) -> Option<String> {
    let target = uri::normalize(url).ok()?.target;
    let after_scheme = target.find("://")?.checked_add(3)?;
    let path_start = target
        .get(after_scheme..)?
        .find('/')
        .map_or(target.len(), |i| i + after_scheme);
    target.get(..path_start).map(str::to_owned)
}

/// The latest nonce each origin gave us.
#[derive(Clone, Debug, Default)]
pub struct NonceStore {
    by_origin: HashMap<String, String>,
}

impl NonceStore {
    /// The nonce to put in the next proof for `url`, if its origin gave one.
    #[must_use]
    pub fn get(&self, url: &str) -> Option<&str> {
        self.by_origin.get(&origin_of(url)?).map(String::as_str)
    }

    /// Remembers `nonce` (from a `DPoP-Nonce` header of a response to `url`).
    /// Malformed nonces are ignored.
    pub fn remember(&mut self, url: &str, nonce: &str) {
        let nonce = nonce.trim();
        if let (Some(origin), true) = (origin_of(url), is_valid_nonce(nonce)) {
            self.by_origin.insert(origin, nonce.to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHALLENGE: &str = r#"DPoP algs="ES256 EdDSA", error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof""#;

    #[test]
    fn resource_server_401_with_challenge_and_nonce_retries() {
        let r = NonceResponse {
            status: 401,
            www_authenticate: Some(CHALLENGE),
            dpop_nonce: Some("eyJ7S_zG.eyJH0-Z.HX4w-7v"),
            body: None,
        };
        assert_eq!(
            retry_decision(&r, None),
            Retry::WithNonce("eyJ7S_zG.eyJH0-Z.HX4w-7v".into())
        );
        // Same nonce refused again: no loop.
        assert_eq!(
            retry_decision(&r, Some("eyJ7S_zG.eyJH0-Z.HX4w-7v")),
            Retry::No
        );
        // A different, newer nonce is worth one retry.
        assert_eq!(
            retry_decision(&r, Some("old")),
            Retry::WithNonce("eyJ7S_zG.eyJH0-Z.HX4w-7v".into())
        );
    }

    #[test]
    fn no_retry_without_nonce_header_or_right_error() {
        let base = NonceResponse {
            status: 401,
            www_authenticate: Some(CHALLENGE),
            dpop_nonce: None,
            body: None,
        };
        assert_eq!(retry_decision(&base, None), Retry::No);
        let other_error = NonceResponse {
            www_authenticate: Some(r#"DPoP error="invalid_token""#),
            dpop_nonce: Some("n"),
            ..base
        };
        assert_eq!(retry_decision(&other_error, None), Retry::No);
        let bearer_only = NonceResponse {
            www_authenticate: Some(r#"Bearer error="use_dpop_nonce""#),
            dpop_nonce: Some("n"),
            ..base
        };
        assert_eq!(retry_decision(&bearer_only, None), Retry::No);
        let bad_nonce = NonceResponse {
            dpop_nonce: Some("has space"),
            ..base
        };
        assert_eq!(retry_decision(&bad_nonce, None), Retry::No);
        let ok_200 = NonceResponse {
            status: 200,
            dpop_nonce: Some("n"),
            ..base
        };
        assert_eq!(retry_decision(&ok_200, None), Retry::No);
        let server_error = NonceResponse {
            status: 500,
            dpop_nonce: Some("n"),
            ..base
        };
        assert_eq!(retry_decision(&server_error, None), Retry::No);
    }

    #[test]
    fn challenge_parsing_handles_several_challenges_and_quoting() {
        assert!(dpop_challenge_asks_for_nonce(
            r#"Bearer realm="x", DPoP algs="ES256", error="use_dpop_nonce""#
        ));
        assert!(dpop_challenge_asks_for_nonce(
            r#"dpop error=use_dpop_nonce, Bearer"#
        ));
        assert!(dpop_challenge_asks_for_nonce(
            r#"DPoP error_description="a \"quoted\", comma", error="use_dpop_nonce""#
        ));
        assert!(!dpop_challenge_asks_for_nonce(
            r#"DPoP error_description="error=\"use_dpop_nonce\"""#
        ));
        assert!(!dpop_challenge_asks_for_nonce(
            r#"DPoP error="use_dpop_nonce", Bearer"#.replace("DPoP", "Bearer").as_str()
        ));
        assert!(!dpop_challenge_asks_for_nonce(""));
        assert!(!dpop_challenge_asks_for_nonce("Basic dXNlcjpwYXNz=="));
        assert!(!dpop_challenge_asks_for_nonce("= , =\""));
    }

    #[test]
    fn token_endpoint_400_reads_the_body() {
        assert!(needs_body(400, Some("n")));
        assert!(!needs_body(400, None));
        assert!(!needs_body(401, Some("n")));
        let r = NonceResponse {
            status: 400,
            www_authenticate: None,
            dpop_nonce: Some("n-1"),
            body: Some(r#"{"error":"use_dpop_nonce","error_description":"nonce required"}"#),
        };
        assert_eq!(retry_decision(&r, None), Retry::WithNonce("n-1".into()));
        let other = NonceResponse {
            body: Some(r#"{"error":"invalid_grant"}"#),
            ..r
        };
        assert_eq!(retry_decision(&other, None), Retry::No);
        let junk = NonceResponse {
            body: Some("<html>"),
            ..r
        };
        assert_eq!(retry_decision(&junk, None), Retry::No);
    }

    #[test]
    fn nonces_are_kept_per_origin() {
        assert_eq!(
            origin_of("HTTPS://Api.Example.com:443/x?y").as_deref(),
            Some("https://api.example.com")
        );
        assert_eq!(
            origin_of("http://127.0.0.1:8787").as_deref(),
            Some("http://127.0.0.1:8787")
        );
        assert_eq!(origin_of("/relative"), None);
        let mut s = NonceStore::default();
        s.remember("https://api.example.com/a", "n1");
        s.remember("https://as.example.com/token", "n2");
        assert_eq!(s.get("https://api.example.com/other?q"), Some("n1"));
        assert_eq!(s.get("https://as.example.com/"), Some("n2"));
        assert_eq!(s.get("https://api.example.com:8443/"), None);
        s.remember("https://api.example.com/b", "n3");
        assert_eq!(s.get("https://api.example.com/a"), Some("n3"));
        s.remember("https://api.example.com/b", "bad nonce");
        assert_eq!(s.get("https://api.example.com/a"), Some("n3"));
    }
}
