//! Request extractors that refuse with [`Error`]: OAuth forms (RFC 6749
//! §3.2: form-encoded, no repeated parameters, empty means absent), client
//! credentials from `Authorization: Basic` or the form, and the peer IP.

use crate::domain::error::Error;
use crate::domain::state::AppState;
use crate::support::secret::ClientSecret;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use base64::Engine as _;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

/// Largest accepted form body.
pub const MAX_FORM_BYTES: usize = 16 * 1024;

/// A parsed `application/x-www-form-urlencoded` body.
#[derive(Default)]
pub struct OAuthForm {
    params: BTreeMap<String, String>,
}

/// Names only: values include secrets, tokens, codes and verifiers.
impl std::fmt::Debug for OAuthForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthForm")
            .field("params", &self.params.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl OAuthForm {
    /// Parses a body: UTF-8 only, at most 64 parameters, each at most once.
    pub fn parse(body: &[u8]) -> Result<Self, Error> {
        if std::str::from_utf8(body).is_err() {
            return Err(Error::InvalidRequest("the body is not UTF-8".into()));
        }
        let mut params = BTreeMap::new();
        for (k, v) in form_urlencoded::parse(body) {
            if k.contains('\u{FFFD}') || v.contains('\u{FFFD}') {
                return Err(Error::InvalidRequest(
                    "a parameter is not valid UTF-8".into(),
                ));
            }
            // No OAuth parameter holds control characters, and a NUL would
            // reach the database (PostgreSQL refuses it in text: a 500).
            if k.chars().chain(v.chars()).any(char::is_control) {
                return Err(Error::InvalidRequest(
                    "a parameter contains a control character".into(),
                ));
            }
            // RFC 6749 §3.1: parameters sent without a value are treated as omitted.
            if v.is_empty() {
                continue;
            }
            if params.len() >= 64 {
                return Err(Error::InvalidRequest("too many parameters".into()));
            }
            if params.contains_key(k.as_ref()) {
                let name =
                    if k.len() <= 40 && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                        k.into_owned()
                    } else {
                        "a parameter".to_owned()
                    };
                return Err(Error::InvalidRequest(format!("{name} is repeated").into()));
            }
            params.insert(k.into_owned(), v.into_owned());
        }
        Ok(Self { params })
    }

    /// A parameter's value, if present and non-empty.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    /// Every parameter, by name.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.params.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// A required parameter.
    pub fn require(&self, name: &'static str) -> Result<&str, Error> {
        self.get(name)
            .ok_or_else(|| Error::InvalidRequest(format!("{name} is required").into()))
    }
}

impl<S: Send + Sync> FromRequest<S> for OAuthForm {
    type Rejection = Error;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Error> {
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|m| {
                m.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !is_form {
            return Err(Error::UnsupportedMediaType(
                "the body must be application/x-www-form-urlencoded",
            ));
        }
        let body = axum::body::to_bytes(req.into_body(), MAX_FORM_BYTES)
            .await
            .map_err(|_| Error::PayloadTooLarge)?;
        Self::parse(&body)
    }
}

pub use crate::domain::token::PresentedClient;

/// RFC 7523 §2.2 `client_assertion_type`.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Reads client credentials from `Authorization: Basic` or the form. A
/// request must use one method only (RFC 6749 §2.3).
pub fn presented_client(headers: &HeaderMap, form: &OAuthForm) -> Result<PresentedClient, Error> {
    let mut auth = headers.get_all(header::AUTHORIZATION).iter();
    let basic = match (auth.next(), auth.next()) {
        (None, _) => None,
        (Some(_), Some(_)) => {
            return Err(Error::InvalidRequest(
                "more than one Authorization header".into(),
            ))
        }
        (Some(v), None) => Some(parse_basic(v.as_bytes())?),
    };
    let form_id = form.get("client_id");
    let form_secret = form.get("client_secret");
    match (
        form.get("client_assertion_type"),
        form.get("client_assertion"),
    ) {
        (None, None) => {}
        (Some(JWT_BEARER), Some(assertion)) => {
            if basic.is_some() || form_secret.is_some() {
                return Err(Error::InvalidRequest(
                    "use only one client authentication method".into(),
                ));
            }
            let claimed = crate::domain::client_assertion::unverified_sub(assertion)
                .ok_or(Error::InvalidClient)?;
            if form_id.is_some_and(|f| f != claimed) {
                return Err(Error::InvalidClient);
            }
            return Ok(PresentedClient::Assertion {
                client_id: claimed,
                assertion: assertion.to_owned(),
            });
        }
        _ => return Err(Error::InvalidClient),
    }
    match (basic, form_id, form_secret) {
        (Some(_), _, Some(_)) => Err(Error::InvalidRequest(
            "use only one client authentication method".into(),
        )),
        (Some((id, _)), Some(fid), None) if fid != id => Err(Error::InvalidRequest(
            "client_id does not match the Authorization header".into(),
        )),
        (Some((client_id, secret)), _, None) => Ok(PresentedClient::Secret { client_id, secret }),
        (None, Some(id), Some(secret)) => Ok(PresentedClient::Secret {
            client_id: id.to_owned(),
            secret: ClientSecret::new(secret.to_owned()),
        }),
        (None, Some(id), None) => Ok(PresentedClient::Public {
            client_id: id.to_owned(),
        }),
        (None, None, _) => Err(Error::InvalidClient),
    }
}

/// `Basic base64(urlencode(id):urlencode(secret))`. Any other scheme is an
/// unsupported authentication method: `invalid_client`.
fn parse_basic(value: &[u8]) -> Result<(String, ClientSecret), Error> {
    let value = std::str::from_utf8(value).map_err(|_| Error::InvalidClient)?;
    let (scheme, rest) = value.split_once(' ').ok_or(Error::InvalidClient)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(Error::InvalidClient);
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .map_err(|_| Error::InvalidClient)?;
    let decoded = String::from_utf8(decoded).map_err(|_| Error::InvalidClient)?;
    let (id, secret) = decoded.split_once(':').ok_or(Error::InvalidClient)?;
    let unescape = |s: &str| -> String {
        form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let (id, secret) = (unescape(id), unescape(secret));
    if id.is_empty() || secret.is_empty() || id.chars().any(char::is_control) {
        return Err(Error::InvalidClient);
    }
    Ok((id, ClientSecret::new(secret)))
}

/// The client's IP address: the TCP peer's, or, when the peer is one of
/// `GATEHOUSE_TRUSTED_PROXIES`, the address it forwarded ([`forwarded_client`]).
#[derive(Clone, Copy, Debug)]
pub struct ClientIp(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        Ok(Self(peer.map(|peer| {
            forwarded_client(peer, &parts.headers, &state.config.trusted_proxies)
        })))
    }
}

/// The client address of a request from `peer`. Only a trusted proxy's
/// `X-Forwarded-For` (or, when there is none, RFC 7239 `Forwarded`) is
/// read, from the right: each trusted hop is skipped, and the first
/// untrusted one is the client (left of it anyone may write anything). A hop
/// that is not an IP address (`unknown`, obfuscated) stops the walk at the
/// proxy that wrote it. The proxy must append to `X-Forwarded-For` (as
/// nginx, HAProxy, Envoy and cloud load balancers do), or, if it writes only
/// `Forwarded`, drop a client's `X-Forwarded-For`.
#[must_use]
pub fn forwarded_client(peer: IpAddr, headers: &HeaderMap, trusted: &[ipnet::IpNet]) -> IpAddr {
    // IPv4 peers of a dual-stack listener arrive as `::ffff:a.b.c.d`.
    let peer = peer.to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    // Lossy, not skipped: a proxy that appends its hop to the client's line
    // leaves the right-most hops readable even after bytes that are not
    // UTF-8 (skipping the line would fall back to the client's `Forwarded`
    // or to the proxy's own address).
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .flat_map(|v| {
                String::from_utf8_lossy(v.as_bytes())
                    .split(',')
                    .map(|hop| hop.trim().to_owned())
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let xff = values("x-forwarded-for");
    let hops: Vec<Option<IpAddr>> = if !xff.is_empty() {
        xff.iter().map(|h| parse_hop(h)).collect()
    } else {
        values("forwarded")
            .iter()
            .map(|element| {
                element
                    .split(';')
                    .filter_map(|pair| pair.trim().split_once('='))
                    .find(|(k, _)| k.trim().eq_ignore_ascii_case("for"))
                    .and_then(|(_, v)| parse_hop(v.trim().trim_matches('"')))
            })
            .collect()
    };
    let mut client = peer;
    for hop in hops.iter().rev() {
        match hop {
            Some(ip) => {
                client = ip.to_canonical();
                if !is_trusted(ip) {
                    break;
                }
            }
            None => break,
        }
    }
    client
}

/// One hop: `198.51.100.1`, `198.51.100.1:4711`, `2001:db8::1`, `[2001:db8::1]:4711`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = hop.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    hop.parse::<SocketAddr>().ok().map(|s| s.ip())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn forwarded(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn forwarded_addresses_count_only_from_trusted_proxies() {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let stranger: IpAddr = "192.0.2.9".parse().unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let xff = forwarded(&[("x-forwarded-for", "198.51.100.1, 203.0.113.5, 10.0.0.7")]);
        // Right-most untrusted hop, not the spoofable left-most one.
        assert_eq!(forwarded_client(proxy, &xff, &trusted), ip("203.0.113.5"));
        // From an untrusted peer the header is ignored.
        assert_eq!(forwarded_client(stranger, &xff, &trusted), stranger);
        assert_eq!(forwarded_client(proxy, &xff, &[]), proxy);
        // Several header lines are one list.
        let two = forwarded(&[
            ("x-forwarded-for", "203.0.113.1"),
            ("x-forwarded-for", "203.0.113.2"),
        ]);
        assert_eq!(forwarded_client(proxy, &two, &trusted), ip("203.0.113.2"));
        // RFC 7239 when there is no X-Forwarded-For; IPv6 with a port.
        let fwd = forwarded(&[(
            "forwarded",
            "for=198.51.100.1, for=\"[2001:db8::1]:4711\";proto=https",
        )]);
        assert_eq!(forwarded_client(proxy, &fwd, &trusted), ip("2001:db8::1"));
        // X-Forwarded-For first: a client's own `Forwarded` passed through
        // by a proxy that only appends to X-Forwarded-For picks nothing.
        let both = forwarded(&[
            ("forwarded", "for=198.51.100.1"),
            ("x-forwarded-for", "203.0.113.9"),
        ]);
        assert_eq!(forwarded_client(proxy, &both, &trusted), ip("203.0.113.9"));
        // An unknown hop stops at the proxy that wrote it.
        let unknown = forwarded(&[("forwarded", "for=198.51.100.1, for=unknown, for=10.0.0.3")]);
        assert_eq!(forwarded_client(proxy, &unknown, &trusted), ip("10.0.0.3"));
        // Only trusted hops: the left-most.
        let all = forwarded(&[("x-forwarded-for", "10.1.1.1, 10.2.2.2")]);
        assert_eq!(forwarded_client(proxy, &all, &trusted), ip("10.1.1.1"));
        assert_eq!(forwarded_client(proxy, &HeaderMap::new(), &trusted), proxy);
        // A trusted IPv4 proxy seen through a dual-stack listener is still trusted.
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(forwarded_client(mapped, &xff, &trusted), ip("203.0.113.5"));
        // A line that is not UTF-8 still gives its right-most hops (a proxy
        // appended to it); it is not skipped in favour of `Forwarded`.
        let mut raw = forwarded(&[("forwarded", "for=198.51.100.1")]);
        raw.append(
            "x-forwarded-for",
            HeaderValue::from_bytes(b"\xff, 203.0.113.66").unwrap(),
        );
        assert_eq!(forwarded_client(proxy, &raw, &trusted), ip("203.0.113.66"));
    }

    #[test]
    fn control_characters_are_refused() {
        assert!(OAuthForm::parse(b"client_id=a%00b").is_err());
        assert!(OAuthForm::parse(b"client_id=a%0Ab").is_err());
        assert!(OAuthForm::parse(b"a%01=b").is_err());
        assert!(OAuthForm::parse(b"client_id=a%C2%85b").is_err());
        let mut h = HeaderMap::new();
        let v = base64::engine::general_purpose::STANDARD.encode("a\0b:secret");
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {v}")).unwrap(),
        );
        assert!(matches!(
            presented_client(&h, &OAuthForm::default()),
            Err(Error::InvalidClient)
        ));
    }

    #[test]
    fn debug_shows_parameter_names_only() {
        let f = OAuthForm::parse(b"client_secret=hunter2&token=tok-xyz&grant_type=x").unwrap();
        let shown = format!("{f:?}");
        assert!(shown.contains("client_secret") && shown.contains("grant_type"));
        assert!(
            !shown.contains("hunter2") && !shown.contains("tok-xyz"),
            "{shown}"
        );
    }

    #[test]
    fn forms_refuse_repeats_and_ignore_empty_values() {
        assert!(OAuthForm::parse(b"a=1&a=2").is_err());
        let f = OAuthForm::parse(b"a=1&b=&c=x%20y").unwrap();
        assert_eq!(f.get("a"), Some("1"));
        assert_eq!(f.get("b"), None);
        assert_eq!(f.get("c"), Some("x y"));
        assert!(OAuthForm::parse(b"a=%ff").is_err());
        assert!(OAuthForm::parse(b"\xff").is_err());
    }

    #[test]
    fn basic_credentials_are_url_decoded() {
        let mut h = HeaderMap::new();
        let v = base64::engine::general_purpose::STANDARD.encode("my%3Aid:s%2Bcret");
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {v}")).unwrap(),
        );
        let p = presented_client(&h, &OAuthForm::default()).unwrap();
        assert_eq!(p.client_id(), "my:id");
        match p {
            PresentedClient::Secret { secret, .. } => assert_eq!(secret.expose(), "s+cret"),
            PresentedClient::Public { .. } | PresentedClient::Assertion { .. } => unreachable!(),
        }
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert!(matches!(
            presented_client(&h, &OAuthForm::default()),
            Err(Error::InvalidClient)
        ));
    }
}
