//! The browser cookies of `/authorize` (the login session and the CSRF
//! cookie), read and written with axum-extra's [`CookieJar`] (the `cookie`
//! crate's parser and serializer) instead of hand-split strings.
//!
//! Both are `__Host-` cookies: Secure, `Path=/`, no `Domain` (a sibling
//! subdomain cannot set them), HttpOnly and `SameSite=Lax`. A cookie sent
//! twice is refused rather than guessed at: the jar keeps only one value
//! per name, so the names are counted with the same parser first.
//!
//! Plain `CookieJar`, not `SignedCookieJar`/`PrivateCookieJar`: neither value
//! needs the server's signature in the cookie. The session cookie is a
//! random id the database knows by its hash, and the CSRF cookie is a random
//! value whose form token is an HMAC bound to the session (see
//! `authorize::csrf_token`); a forged cookie matches nothing.

use crate::domain::error::Error;
use axum::http::{header, HeaderMap};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};

/// The login session cookie.
pub const SESSION: &str = "__Host-gh_session";
/// The CSRF cookie.
pub const CSRF: &str = "__Host-gh_csrf";

/// The value of the request's cookie `name`, refusing a request that sends
/// it more than once (one of them planted, e.g. by a sibling domain before
/// `__Host-`). Pairs the parser refuses are ignored, as the jar ignores them.
///
/// # Errors
///
/// [`Error::AuthorizePage`] if `name` is sent twice.
pub fn get(headers: &HeaderMap, name: &str) -> Result<Option<String>, Error> {
    let sent = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse_encoded)
        .filter_map(Result::ok)
        .filter(|c| c.name() == name)
        .count();
    if sent > 1 {
        return Err(Error::AuthorizePage(
            "this site's cookies were sent twice; clear them and start again",
        ));
    }
    Ok(CookieJar::from_headers(headers)
        .get(name)
        .map(|c| c.value().to_owned()))
}

/// A jar that sets the `__Host-` cookie `name` to `value` for `max_age`
/// seconds: Secure, `Path=/`, no `Domain`, HttpOnly, `SameSite=Lax`.
pub fn set(name: &'static str, value: String, max_age: i64) -> CookieJar {
    CookieJar::new().add(
        Cookie::build((name, value))
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .max_age(cookie::time::Duration::seconds(max_age))
            .secure(true),
    )
}

#[cfg(test)]
mod tests {
    use super::{get, set, CSRF, SESSION};
    use axum::http::{header, HeaderMap, HeaderValue};
    use axum::response::IntoResponse as _;

    fn headers(lines: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for l in lines {
            h.append(header::COOKIE, HeaderValue::from_str(l).unwrap());
        }
        h
    }

    #[test]
    fn one_cookie_is_read_among_others() {
        let h = headers(&["a=1; __Host-gh_session=abc; b=2", "c=3"]);
        assert_eq!(get(&h, SESSION).unwrap().as_deref(), Some("abc"));
        assert_eq!(get(&h, CSRF).unwrap(), None);
        // Attribute-looking pairs in a request are just other cookies.
        let h = headers(&["__Host-gh_csrf=v; Path=/; Domain=evil.example; Secure"]);
        assert_eq!(get(&h, CSRF).unwrap().as_deref(), Some("v"));
        // A prefix or a different case is another cookie.
        let h = headers(&["gh_session=x; __host-gh_session=y; __Secure-gh_session=z"]);
        assert_eq!(get(&h, SESSION).unwrap(), None);
    }

    /// Issue 17.10: a planted second cookie is refused, in one header line or two.
    #[test]
    fn a_cookie_sent_twice_is_refused() {
        for lines in [
            &["__Host-gh_session=planted; __Host-gh_session=real"][..],
            &["__Host-gh_session=real", "__Host-gh_session=planted"][..],
            &["__Host-gh_session=same; __Host-gh_session=same"][..],
            &[" __Host-gh_session =a;__Host-gh_session=b"][..],
        ] {
            assert!(get(&headers(lines), SESSION).is_err(), "{lines:?}");
        }
    }

    #[test]
    fn a_host_cookie_keeps_its_attributes() {
        let resp = (set(SESSION, "v".into(), 28800), ()).into_response();
        let lines: Vec<_> = resp.headers().get_all(header::SET_COOKIE).iter().collect();
        assert_eq!(
            lines,
            ["__Host-gh_session=v; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=28800"]
        );
    }
}
