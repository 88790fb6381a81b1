//! The server-rendered pages of `/authorize`: sign-in, consent and the
//! error page shown when a request cannot be redirected back
//! (RFC 6749 §4.1.2.1); and of `/logout`: the confirmation and the
//! signed-out page. No front-end framework, no script, no style.
//!
//! Templates: maud. Every value interpolated with `(…)` is HTML-escaped
//! (`&`, `<`, `>`, `"`; attribute values are always double-quoted), so no
//! reflected value — client name, scope, audience, the original request
//! with its `state`, an error message — can open a tag or leave an
//! attribute. maud rather than askama: the pages are small and live next
//! to the code that fills them, checked and compiled with it (no template
//! files to ship or find at run time). Nothing here may use `PreEscaped`:
//! the tests below fail if a value is written unescaped.
//!
//! The pages take plain strings, not domain types, so they depend on
//! nothing but maud.

use maud::{html, Markup, DOCTYPE};

/// A page with `title` as its `<title>` and heading, and `body` under it.
fn page(title: &str, body: &Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width";
                title { (title) }
            }
            body {
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
    .into_string()
}

/// The page shown when the request cannot be redirected back (RFC 6749 §4.1.2.1).
#[must_use]
pub fn error(reason: &str) -> String {
    page("Authorization error", &html! { p { (reason) } })
}

/// The sign-in form: it posts the original authorization request (`query`,
/// the raw query string of `GET /authorize`) back with the CSRF token and
/// the credentials; `error` is shown above it; `username` pre-fills the
/// username field (OpenID Connect `login_hint`).
#[must_use]
pub fn login(query: &str, csrf: &str, error: Option<&str>, username: Option<&str>) -> String {
    page(
        "Sign in",
        &html! {
            @if let Some(e) = error {
                p role="alert" { (e) }
            }
            form method="post" action="/authorize/login" {
                input type="hidden" name="request" value=(query);
                input type="hidden" name="csrf" value=(csrf);
                label {
                    "Username "
                    input name="username" autocomplete="username" required value=[username];
                }
                label {
                    "Password "
                    input name="password" type="password" autocomplete="current-password" required;
                }
                button type="submit" { "Sign in" }
            }
        },
    )
}

/// The consent form: `client` asks for `scopes` at `audience`.
#[must_use]
pub fn consent(query: &str, csrf: &str, client: &str, audience: &str, scopes: &[String]) -> String {
    page(
        "Allow access?",
        &html! {
            p { strong { (client) } " asks for access to " code { (audience) } " with:" }
            ul {
                @for s in scopes {
                    li { (s) }
                }
            }
            @if scopes.iter().any(|s| s == "offline_access") {
                p role="note" {
                    "offline_access: " (client) " keeps access after you sign out, until you or an administrator revoke it."
                }
            }
            form method="post" action="/authorize/consent" {
                input type="hidden" name="request" value=(query);
                input type="hidden" name="csrf" value=(csrf);
                button type="submit" name="decision" value="approve" { "Allow" }
                button type="submit" name="decision" value="deny" { "Deny" }
            }
            p { a href="/logout" { "Sign out" } }
        },
    )
}

/// The hidden fields a logout confirmation carries back: the validated
/// request (`client_id`, `post_logout_redirect_uri`, `state`).
#[derive(Clone, Copy, Debug, Default)]
pub struct LogoutFields<'a> {
    /// The client the request named.
    pub client_id: Option<&'a str>,
    /// The registered post-logout redirect URI.
    pub post_logout_redirect_uri: Option<&'a str>,
    /// `state`.
    pub state: Option<&'a str>,
}

/// The logout confirmation (OpenID Connect RP-Initiated Logout §2): a
/// CSRF-protected form; `client` names the app that asked, if any.
#[must_use]
pub fn logout_confirm(csrf: &str, client: Option<&str>, fields: &LogoutFields<'_>) -> String {
    page(
        "Sign out?",
        &html! {
            @if let Some(c) = client {
                p { strong { (c) } " asks to sign you out." }
            }
            p { "Sign out of this server? Apps that keep offline access keep it." }
            form method="post" action="/logout" {
                input type="hidden" name="csrf" value=(csrf);
                @if let Some(v) = fields.client_id {
                    input type="hidden" name="client_id" value=(v);
                }
                @if let Some(v) = fields.post_logout_redirect_uri {
                    input type="hidden" name="post_logout_redirect_uri" value=(v);
                }
                @if let Some(v) = fields.state {
                    input type="hidden" name="state" value=(v);
                }
                button type="submit" name="decision" value="logout" { "Sign out" }
                button type="submit" name="decision" value="stay" { "Stay signed in" }
            }
        },
    )
}

/// The page after a logout, or when there was no session to end.
#[must_use]
pub fn signed_out() -> String {
    page("Signed out", &html! { p { "You are signed out." } })
}

/// The page when the user chose to stay signed in.
#[must_use]
pub fn still_signed_in() -> String {
    page(
        "Still signed in",
        &html! { p { "You are still signed in." } },
    )
}

#[cfg(test)]
mod tests {
    use super::{consent, error, login, logout_confirm, LogoutFields};

    /// Markup that would run or break out if it reached the page as is:
    /// element content, a double-quoted attribute, a single-quoted one.
    const HOSTILE: &str = "\"'><script>alert(1)</script><img src=x onerror=alert(2)>&amp;";

    /// `html` has no tag or attribute of `HOSTILE`'s, and every reflected
    /// value appears escaped.
    fn assert_inert(html: &str) {
        for raw in ["<script", "<img", "\"'>"] {
            assert!(!html.contains(raw), "{raw} reached the page: {html}");
        }
        assert!(
            html.contains("&quot;'&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;&amp;amp;"),
            "{html}"
        );
    }

    #[test]
    fn every_reflected_value_is_escaped() {
        let query = format!("client_id=c&state={HOSTILE}");
        assert_inert(&error(HOSTILE));
        assert_inert(&login(&query, HOSTILE, None, None));
        assert_inert(&login("state=x", "t", Some(HOSTILE), None));
        assert_inert(&login("state=x", "t", None, Some(HOSTILE)));
        assert_inert(&consent(&query, "t", "web", "https://a.example", &[]));
        assert_inert(&consent("q", HOSTILE, "web", "https://a.example", &[]));
        assert_inert(&consent("q", "t", HOSTILE, "https://a.example", &[]));
        assert_inert(&consent("q", "t", "web", HOSTILE, &[]));
        assert_inert(&consent(
            "q",
            "t",
            "web",
            "a",
            &["read".into(), HOSTILE.into()],
        ));
        assert_inert(&consent("q", "t", HOSTILE, "a", &["offline_access".into()]));
        assert_inert(&logout_confirm(HOSTILE, None, &LogoutFields::default()));
        assert_inert(&logout_confirm(
            "t",
            Some(HOSTILE),
            &LogoutFields::default(),
        ));
        for f in [
            LogoutFields {
                client_id: Some(HOSTILE),
                ..LogoutFields::default()
            },
            LogoutFields {
                post_logout_redirect_uri: Some(HOSTILE),
                ..LogoutFields::default()
            },
            LogoutFields {
                state: Some(HOSTILE),
                ..LogoutFields::default()
            },
        ] {
            assert_inert(&logout_confirm("t", None, &f));
        }
    }

    #[test]
    fn the_forms_carry_the_request_and_the_token() {
        let html = login(
            "a=1&state=x%20y",
            "tok",
            Some("Wrong username or password."),
            None,
        );
        assert!(
            html.starts_with("<!DOCTYPE html><html lang=\"en\">"),
            "{html}"
        );
        assert!(html.contains("<title>Sign in</title>"), "{html}");
        assert!(
            html.contains("<p role=\"alert\">Wrong username or password.</p>"),
            "{html}"
        );
        assert!(
            html.contains(
                "<input type=\"hidden\" name=\"request\" value=\"a=1&amp;state=x%20y\">\
                 <input type=\"hidden\" name=\"csrf\" value=\"tok\">"
            ),
            "{html}"
        );
        assert!(html.contains("<input name=\"password\" type=\"password\" autocomplete=\"current-password\" required>"), "{html}");
        assert!(
            html.contains("<input name=\"username\" autocomplete=\"username\" required>"),
            "{html}"
        );
        let html = login("a=1", "tok", None, Some("alice"));
        assert!(
            html.contains(
                "<input name=\"username\" autocomplete=\"username\" required value=\"alice\">"
            ),
            "{html}"
        );
        let html = consent(
            "q",
            "tok",
            "web",
            "https://a.example",
            &["read".into(), "write".into()],
        );
        assert!(
            html.contains("<p><strong>web</strong> asks for access to <code>https://a.example</code> with:</p><ul><li>read</li><li>write</li></ul>"),
            "{html}"
        );
        assert!(
            html.contains(
                "<button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button></form>"
            ),
            "{html}"
        );
    }
}
